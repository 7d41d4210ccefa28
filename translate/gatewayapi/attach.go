package gatewayapi

// Code shared by HTTPRoute and GRPCRoute: attachment to listeners (with the
// HTTPRoute/GRPCRoute hostname conflict), status, virtual hosts, backends
// and their upstream protocol.

import (
	"fmt"
	corev1 "k8s.io/api/core/v1"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/hxds/hxds/translate/diag"
	"github.com/hxds/hxds/translate/ingress"
	"github.com/hxds/hxds/translate/input"
	"github.com/hxds/hxds/translate/ir"
)

func routeObjectOf(kind input.Kind, namespace, name string) diag.Object {
	return diag.Object{Kind: string(kind), Namespace: namespace, Name: name}
}

// routeSource is what attachment, status and backends need of a route of
// either kind (HTTPRoute, GRPCRoute).
type routeSource struct {
	kind      input.Kind
	meta      *metav1.ObjectMeta
	parents   []gwv1.ParentReference
	hostnames []gwv1.Hostname
	rules     int
	// translate translates the rules once, for every attachment.
	translate func() *ruleResult
	// status records the computed parent statuses.
	status func(parents []gwv1.RouteParentStatus)
}

func (src *routeSource) grpc() bool { return src.kind == input.KindGRPCRoute }

func (src *routeSource) object() diag.Object {
	return routeObjectOf(src.kind, src.meta.Namespace, src.meta.Name)
}

func (src *routeSource) nn() string { return src.meta.Namespace + "/" + src.meta.Name }

// sortedRoutes returns every HTTPRoute and GRPCRoute oldest first, then by
// namespace/name (HTTPRoute first on a tie): the tie-break order of Gateway
// API route precedence and of the HTTPRoute/GRPCRoute hostname conflict.
func (t *translator) sortedRoutes() []*routeSource {
	var out []*routeSource
	for _, k := range input.SortedKeys(t.snap.HTTPRoutes) {
		out = append(out, t.httpRouteSource(t.snap.HTTPRoutes[k]))
	}
	for _, k := range input.SortedKeys(t.snap.GRPCRoutes) {
		out = append(out, t.grpcRouteSource(t.snap.GRPCRoutes[k]))
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i].meta.CreationTimestamp, out[j].meta.CreationTimestamp
		if !a.Equal(&b) {
			return a.Before(&b)
		}
		if out[i].meta.Namespace != out[j].meta.Namespace {
			return out[i].meta.Namespace < out[j].meta.Namespace
		}
		return out[i].meta.Name < out[j].meta.Name
	})
	return out
}

func (t *translator) httpRouteSource(hr *gwv1.HTTPRoute) *routeSource {
	return &routeSource{
		kind: input.KindHTTPRoute, meta: &hr.ObjectMeta, parents: hr.Spec.ParentRefs,
		hostnames: hr.Spec.Hostnames, rules: len(hr.Spec.Rules),
		translate: func() *ruleResult { return t.translateRules(hr) },
		status: func(parents []gwv1.RouteParentStatus) {
			t.st.HTTPRoutes = append(t.st.HTTPRoutes, HTTPRouteStatus{Namespace: hr.Namespace, Name: hr.Name,
				Status: gwv1.HTTPRouteStatus{RouteStatus: gwv1.RouteStatus{Parents: parents}}})
		},
	}
}

// attachment is where one route's rules go: a listener and the hostnames
// the route gets on it.
type attachment struct {
	l     *listener
	hosts []string
}

func (t *translator) translateRoutes() {
	for _, src := range t.sortedRoutes() {
		t.translateRoute(src)
	}
}

func (t *translator) translateRoute(src *routeSource) {
	obj := src.object()
	gen := src.meta.Generation
	var parents []gwv1.RouteParentStatus
	var attachments []attachment
	var acceptedBy []input.NamespacedName
	for i, ref := range src.parents {
		nn, field, ok := t.ourParent(obj, src.meta.Namespace, i, ref)
		if !ok {
			continue
		}
		att, reason, msg := t.attach(src, ref, nn)
		parents = append(parents, t.parentStatus(obj, field, ref, nn, reason, msg, gen))
		if reason == "" {
			attachments = append(attachments, att...)
			acceptedBy = append(acceptedBy, nn)
		}
	}
	if len(parents) == 0 {
		t.d.Ignore(obj, "no-parent", "no parentRef names a Gateway served by this controller")
		return
	}

	// Rules are translated once; every attachment gets the same routes.
	rr := src.translate()
	for i := range parents {
		ps := &parents[i]
		if ps.Conditions[0].Status == metav1.ConditionTrue && rr.rulesDropped > 0 {
			if rr.rulesDropped == src.rules {
				ps.Conditions[0] = condition(string(gwv1.RouteConditionAccepted), false, string(gwv1.RouteReasonUnsupportedValue), rr.unsupported, gen)
			} else {
				ps.Conditions = append(ps.Conditions, condition(string(gwv1.RouteConditionPartiallyInvalid), true, string(gwv1.RouteReasonUnsupportedValue), rr.unsupported, gen))
			}
		}
		if c := &ps.Conditions[0]; c.Status == metav1.ConditionTrue && c.Reason == string(gwv1.RouteReasonAccepted) && rr.notes != "" {
			c.Message = rr.notes
		}
		if rr.refsReason != "" {
			ps.Conditions = append(ps.Conditions, condition(string(gwv1.RouteConditionResolvedRefs), false, rr.refsReason, rr.refsMessage, gen))
		} else {
			ps.Conditions = append(ps.Conditions, condition(string(gwv1.RouteConditionResolvedRefs), true, string(gwv1.RouteReasonResolvedRefs), "", gen))
		}
	}
	accepted := false
	for _, ps := range parents {
		if ps.Conditions[0].Status == metav1.ConditionTrue {
			accepted = true
		}
	}
	if !accepted {
		t.d.Reject(obj, "not-accepted", "spec.parentRefs", "no parent Gateway accepts the route")
	} else {
		t.d.Accept(obj)
		t.useClusters(src, rr.clusters)
		t.applyBackendClientCerts(src, acceptedBy, rr.clusters)
		t.policyAncestors(acceptedBy, rr)
		counted := map[*listener]bool{}
		hosts := t.hosts
		if src.grpc() {
			hosts = t.grpcHosts
		}
		for _, a := range attachments {
			if !counted[a.l] {
				counted[a.l] = true
				a.l.status.AttachedRoutes++
			}
			if a.l.unserved {
				continue
			}
			for _, h := range a.hosts {
				a.l.claims = append(a.l.claims, hostClaim{host: h, kind: src.kind, route: src.nn()})
				vh := t.virtualHost(a.l, h)
				if _, ok := t.hosts[vh]; !ok {
					if _, ok := t.grpcHosts[vh]; !ok {
						t.hostOrder = append(t.hostOrder, vh)
					}
				}
				hosts[vh] = append(hosts[vh], rr.routes...)
			}
		}
	}
	src.status(parents)
}

// refListeners are the served listeners of Gateway nn that ref selects by
// sectionName and port (HTTP and L4 routes alike).
func (t *translator) refListeners(ref gwv1.ParentReference, nn input.NamespacedName) []*listener {
	var out []*listener
	for _, l := range t.listeners[nn] {
		if ref.SectionName != nil && *ref.SectionName != l.spec.Name {
			continue
		}
		if ref.Port != nil && *ref.Port != l.spec.Port {
			continue
		}
		out = append(out, l)
	}
	return out
}

// attach finds the listeners of Gateway nn the route attaches to through
// ref, or the Accepted=False reason.
func (t *translator) attach(src *routeSource, ref gwv1.ParentReference, nn input.NamespacedName) ([]attachment, string, string) {
	candidates := t.refListeners(ref, nn)
	if len(candidates) == 0 {
		return nil, string(gwv1.RouteReasonNoMatchingParent), "no served listener matches the parentRef's sectionName/port"
	}
	var allowed []*listener
	kindAllowed := false
	for _, l := range candidates {
		kindOK := l.allowHTTPRoute
		if src.grpc() {
			kindOK = l.allowGRPCRoute
		}
		kindAllowed = kindAllowed || kindOK
		if kindOK && t.namespaceAllowed(l, src.meta.Namespace) {
			allowed = append(allowed, l)
		}
	}
	if len(allowed) == 0 {
		if !kindAllowed {
			return nil, string(gwv1.RouteReasonNotAllowedByListeners), fmt.Sprintf("no listener allows the kind %s", src.kind)
		}
		return nil, string(gwv1.RouteReasonNotAllowedByListeners), fmt.Sprintf("no listener allows %ss from namespace %s", src.kind, src.meta.Namespace)
	}
	var out []attachment
	conflict := ""
	for _, l := range allowed {
		hosts := intersectHosts(l.host, src.hostnames)
		if len(hosts) == 0 {
			continue
		}
		if c := kindConflict(l, src.kind, hosts); c != nil {
			// An HTTPRoute and a GRPCRoute with intersecting hostnames on one
			// listener: the older route (then namespace/name) is accepted.
			// Routes are translated in that order, so the claim wins.
			if conflict == "" {
				conflict = fmt.Sprintf("listener %s already has %s %s for hostname %s", l.spec.Name, c.kind, c.route, c.host)
			}
			continue
		}
		// Attached, but a more specific listener takes some hostnames.
		out = append(out, attachment{l: l, hosts: t.isolatedHosts(l, hosts)})
	}
	if len(out) == 0 {
		if conflict != "" {
			return nil, string(gwv1.RouteReasonNotAllowedByListeners), conflict
		}
		return nil, string(gwv1.RouteReasonNoMatchingListenerHostname), "no route hostname matches a listener hostname"
	}
	return out, "", ""
}

// kindConflict returns a hostname claim of the other route kind
// (HTTPRoute vs GRPCRoute) on l that intersects hosts, or nil.
func kindConflict(l *listener, kind input.Kind, hosts []string) *hostClaim {
	for i := range l.claims {
		c := &l.claims[i]
		if c.kind == kind {
			continue
		}
		for _, h := range hosts {
			if c.host == h || c.host == "*" || h == "*" || covers(c.host, h) || covers(h, c.host) {
				return c
			}
		}
	}
	return nil
}

func (t *translator) namespaceAllowed(l *listener, ns string) bool {
	from := gwv1.NamespacesFromSame
	var sel *metav1.LabelSelector
	if ar := l.spec.AllowedRoutes; ar != nil && ar.Namespaces != nil {
		if ar.Namespaces.From != nil {
			from = *ar.Namespaces.From
		}
		sel = ar.Namespaces.Selector
	}
	switch from {
	case gwv1.NamespacesFromAll:
		return true
	case gwv1.NamespacesFromSame:
		return ns == l.gw.Namespace
	case gwv1.NamespacesFromSelector:
		s, err := metav1.LabelSelectorAsSelector(sel)
		if err != nil {
			return false
		}
		n := t.snap.Namespaces[ns]
		if n == nil {
			return false
		}
		// The API server labels every namespace with its name (Kubernetes
		// ≥ 1.22); namespaces read from files may lack the label.
		set := labels.Set{corev1.LabelMetadataName: n.Name}
		for k, v := range n.Labels {
			set[k] = v
		}
		return s.Matches(set)
	}
	return false
}

// intersectHosts returns the hostnames a route serves on a listener
// (Gateway API hostname matching): a route without hostnames takes the
// listener's; a wildcard on either side narrows to the more specific name.
func intersectHosts(listenerHost string, routeHosts []gwv1.Hostname) []string {
	if len(routeHosts) == 0 {
		return []string{listenerHost}
	}
	var out []string
	seen := map[string]bool{}
	add := func(h string) {
		if !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	for _, rh := range routeHosts {
		r := strings.ToLower(string(rh))
		l := strings.ToLower(listenerHost)
		if r == "" || !validValue(r) || strings.ContainsAny(r, "/ ") {
			continue
		}
		switch {
		case l == "*" || r == l:
			add(r)
		case covers(l, r):
			add(r)
		case covers(r, l):
			add(l)
		}
	}
	return out
}

// covers reports whether wildcard w ("*.example.com") matches host h, which
// may itself be a more specific wildcard: at least one more label.
func covers(w, h string) bool {
	if !strings.HasPrefix(w, "*.") {
		return false
	}
	suffix := w[1:] // ".example.com"
	return strings.HasSuffix(h, suffix) && len(h) > len(suffix) && h != w
}

// virtualHost returns the IR virtual host of host on a listener.
func (t *translator) virtualHost(l *listener, host string) *ir.VirtualHost {
	port := uint32(l.spec.Port)
	if !l.https {
		return t.b.HTTPHost(port, host)
	}
	rt := l.server.Routes
	for _, vh := range rt.VirtualHosts {
		if vh.Host == host {
			return vh
		}
	}
	domains := []string{host}
	if host != "*" {
		domains = append(domains, fmt.Sprintf("%s:%d", host, port))
	}
	vh := &ir.VirtualHost{Name: fmt.Sprintf("%s:%d", host, port), Host: host, Domains: domains}
	rt.VirtualHosts = append(rt.VirtualHosts, vh)
	return vh
}

// emit sorts each virtual host's Gateway API routes by precedence and
// appends them after whatever the Ingress front-end put there: HTTPRoute
// routes, then GRPCRoute routes, then the HTTPRoute catch-alls.
func (t *translator) emit() {
	for _, vh := range t.hostOrder {
		routes := t.hosts[vh]
		sortRoutes(routes)
		n := len(routes)
		for n > 0 && routes[n-1].SortKey.Class > 0 {
			n--
		}
		grpc := t.grpcHosts[vh]
		t.sortGRPCRoutes(grpc)
		vh.Routes = append(vh.Routes, routes[:n]...)
		vh.Routes = append(vh.Routes, grpc...)
		vh.Routes = append(vh.Routes, routes[n:]...)
	}
}

// forwardTo resolves a rule's backendRefs and RequestMirror filters: the
// forward action, or a 500 when no backend of weight > 0 is left. Invalid
// refs set the route's ResolvedRefs reason; invalid mirrors are left out.
func (t *translator) forwardTo(src *routeSource, field string, backends []routeBackend, mirrors []pendingMirror, pol *rulePolicies, rr *ruleResult) (*ir.Forward, *ir.DirectResponse) {
	obj := src.object()
	forward := &ir.Forward{}
	for bi, b := range backends {
		br := b.ref
		bf := fmt.Sprintf("%s.backendRefs[%d]", field, bi)
		name, reason, msg := t.backend(src, bf, br, rr)
		if reason == reasonBackendTLSInvalid {
			// The ref resolves; the spec wants its requests to fail (5xx).
			t.d.Error(obj, "invalid-backend-tls", bf, "%s; its share of requests is not forwarded", msg)
			continue
		}
		if reason != "" {
			rr.refs(reason, msg)
			t.d.Error(obj, "invalid-backend", bf, "%s (%s); its share of requests is not forwarded", msg, reason)
			continue
		}
		w := int32(1)
		if br.Weight != nil {
			w = *br.Weight
		}
		if w <= 0 {
			continue
		}
		if w > maxWeight {
			w = maxWeight
		}
		forward.Destinations = append(forward.Destinations, ir.Destination{
			Backend: name, Weight: uint32(w), RequestHeaders: b.reqH, ResponseHeaders: b.respH,
		})
		forward.TotalWeight += uint32(w)
	}
	var direct *ir.DirectResponse
	if len(forward.Destinations) == 0 {
		forward, direct = nil, &ir.DirectResponse{Status: 500}
	}
	// Mirrors resolve like backendRefs; an invalid one is not configured
	// and the rule is served without it.
	for _, m := range mirrors {
		name, reason, msg := t.backend(src, m.field+".requestMirror.backendRef", gwv1.BackendRef{BackendObjectReference: m.filter.BackendRef}, rr)
		if reason != "" {
			if reason != reasonBackendTLSInvalid {
				rr.refs(reason, msg)
			}
			t.d.Error(obj, "invalid-backend", m.field+".requestMirror.backendRef", "%s (%s); requests are not mirrored there", msg, reason)
			continue
		}
		pol.mirrors = append(pol.mirrors, ir.Mirror{Backend: name, Percent: m.percent})
	}
	return forward, direct
}

// refs records the first ResolvedRefs=False reason of a route.
func (rr *ruleResult) refs(reason, msg string) {
	if rr.refsReason == "" {
		rr.refsReason, rr.refsMessage = reason, msg
	}
}

// backend resolves a Service backendRef and registers its cluster (recorded
// in rr.clusters), or returns the ResolvedRefs reason why it cannot be used.
// The protocol of the cluster is settled when the route is accepted (see
// useClusters).
func (t *translator) backend(src *routeSource, field string, br gwv1.BackendRef, rr *ruleResult) (name, reason, msg string) {
	if isRegistryRef(br) {
		return t.registryBackend(src, field, br, rr)
	}
	if (br.Group != nil && *br.Group != "") || (br.Kind != nil && *br.Kind != "Service") {
		g, k := "", "Service"
		if br.Group != nil {
			g = string(*br.Group)
		}
		if br.Kind != nil {
			k = string(*br.Kind)
		}
		return "", string(gwv1.RouteReasonInvalidKind), fmt.Sprintf("backend kind %s (group %q) is not supported; only core Service and %s Service (registry hosts)", k, g, RegistryGroup)
	}
	ns := src.meta.Namespace
	if br.Namespace != nil && *br.Namespace != "" {
		ns = string(*br.Namespace)
	}
	if ns != src.meta.Namespace && !t.granted(src.kind, src.meta.Namespace, "", "Service", ns, string(br.Name)) {
		return "", string(gwv1.RouteReasonRefNotPermitted),
			fmt.Sprintf("Service %s/%s is in another namespace and no ReferenceGrant allows it", ns, br.Name)
	}
	svcRef := input.NamespacedName{Namespace: ns, Name: string(br.Name)}
	if br.Port == nil {
		return "", string(gwv1.RouteReasonBackendNotFound), fmt.Sprintf("backendRef to Service %s has no port", svcRef)
	}
	svc := t.snap.Services[svcRef]
	if svc == nil {
		return "", string(gwv1.RouteReasonBackendNotFound), fmt.Sprintf("Service %s not found", svcRef)
	}
	port := int32(*br.Port)
	portName, found, h2c := "", false, false
	for _, sp := range svc.Spec.Ports {
		if sp.Port == port {
			portName, found, h2c = sp.Name, true, speaksH2C(sp.AppProtocol)
			break
		}
	}
	if !found {
		return "", string(gwv1.RouteReasonBackendNotFound), fmt.Sprintf("Service %s has no port %d", svcRef, port)
	}
	svcPortName := portName // before ExternalName clears it: policies name Service ports
	host := fmt.Sprintf("%s.%s.svc.%s", svcRef.Name, svcRef.Namespace, t.opts.DomainSuffix)
	name = ingress.ClusterName(uint32(port), host)
	kind, beHost := ir.BackendService, host
	if svc.Spec.Type == "ExternalName" {
		kind, beHost, portName = ir.BackendDNS, svc.Spec.ExternalName, ""
	}
	if old := t.b.Backend(name); old != nil && !t.registered[name] && !old.HTTP2 {
		t.ingressHTTP1[name] = true // registered as HTTP/1 by the Ingress front-end
	}
	if ok, msg := t.backendTLSUsable(svcRef, svcPortName, rr); !ok {
		return "", reasonBackendTLSInvalid, msg
	}
	t.registered[name] = true
	if h2c {
		t.h2cClusters[name] = true
	}
	be := t.b.AddBackend(&ir.Backend{
		Name: name, Kind: kind, Host: beHost, Port: uint32(port),
		Service: ir.ServiceRef{Namespace: svcRef.Namespace, Name: svcRef.Name}, TargetPortName: portName,
	})
	t.applyBackendTLS(src, field, svcRef, svcPortName, be)
	rr.clusters = append(rr.clusters, clusterUse{field: field, name: name})
	return name, "", ""
}

// speaksH2C says whether a Service port's appProtocol declares HTTP/2
// without TLS: the Gateway API's kubernetes.io/h2c, and the names Istio (so
// Higress) reads as HTTP/2 (http2, grpc, grpc-web, h2c).
func speaksH2C(appProtocol *string) bool {
	if appProtocol == nil {
		return false
	}
	switch strings.ToLower(*appProtocol) {
	case "kubernetes.io/h2c", "h2c", "http2", "grpc", "grpc-web":
		return true
	}
	return false
}

// clusterUse is a cluster a rule forwards or mirrors to.
type clusterUse struct{ field, name string }

// useClusters settles the upstream protocol of an accepted route's
// clusters: GRPCRoute clusters speak HTTP/2. Clusters are per Service port,
// so a Service port also used as HTTP/1 (by an Ingress or an accepted
// HTTPRoute) keeps HTTP/2 for gRPC, and the conflict is reported on the
// route translated last.
func (t *translator) useClusters(src *routeSource, uses []clusterUse) {
	for _, u := range uses {
		be := t.b.Backend(u.name)
		if be == nil {
			continue
		}
		if t.h2cClusters[u.name] {
			// The Service port declares HTTP/2 (prior knowledge): every
			// route kind reaches it over HTTP/2.
			be.HTTP2 = true
			continue
		}
		if src.grpc() {
			if t.ingressHTTP1[u.name] || t.http1Clusters[u.name] {
				t.d.Warn(src.object(), "protocol-conflict", u.field,
					"cluster %s is also used as HTTP/1 by an Ingress or HTTPRoute; it speaks HTTP/2 for gRPC", u.name)
			}
			be.HTTP2 = true
			if be.TLS != nil && len(be.TLS.ALPN) == 0 {
				be.TLS.ALPN = []string{"h2"} // gRPC over TLS negotiates h2
			}
			t.grpcClusters[u.name] = true
			continue
		}
		if t.grpcClusters[u.name] && !t.http1Clusters[u.name] {
			t.d.Warn(src.object(), "protocol-conflict", u.field,
				"cluster %s is also used by a GRPCRoute; it speaks HTTP/2, not HTTP/1", u.name)
		}
		t.http1Clusters[u.name] = true
	}
}

// ourParent resolves parentRefs[i] of a route in namespace ns to a Gateway
// this controller serves. ok is false for parents of other kinds and for
// Gateways of other classes; a Gateway that does not exist is reported.
func (t *translator) ourParent(obj diag.Object, ns string, i int, ref gwv1.ParentReference) (nn input.NamespacedName, field string, ok bool) {
	field = fmt.Sprintf("spec.parentRefs[%d]", i)
	if (ref.Group != nil && string(*ref.Group) != input.GatewayAPIGroup) || (ref.Kind != nil && *ref.Kind != "Gateway") {
		return nn, field, false
	}
	if ref.Namespace != nil && *ref.Namespace != "" {
		ns = string(*ref.Namespace)
	}
	nn = input.NamespacedName{Namespace: ns, Name: string(ref.Name)}
	if _, ours := t.gateways[nn]; !ours {
		if t.snap.Gateways[nn] == nil {
			t.d.Warn(obj, "parent-not-found", field, "Gateway %s does not exist", nn)
		}
		return nn, field, false
	}
	return nn, field, true
}

// parentStatus is a route's status for one of our parents with its Accepted
// condition: rejected with reason and msg (reported), or accepted.
func (t *translator) parentStatus(obj diag.Object, field string, ref gwv1.ParentReference, nn input.NamespacedName, reason, msg string, gen int64) gwv1.RouteParentStatus {
	ps := gwv1.RouteParentStatus{ParentRef: ref, ControllerName: ControllerName}
	if reason != "" {
		ps.Conditions = append(ps.Conditions, condition(string(gwv1.RouteConditionAccepted), false, reason, msg, gen))
		t.d.Error(obj, "not-attached", field, "not attached to Gateway %s: %s (%s)", nn, msg, reason)
		return ps
	}
	ps.Conditions = append(ps.Conditions, condition(string(gwv1.RouteConditionAccepted), true, string(gwv1.RouteReasonAccepted), "", gen))
	return ps
}
