package gatewayapi

// TCPRoute and TLSRoute: attachment to TCP and TLS listeners, backends, and
// the TCP proxies they become. Connections are told apart only by port
// (TCP) and SNI (TLS), so each TCP port and each SNI of a port serves one
// route: the oldest (creationTimestamp, then namespace/name) wins, the
// others get Accepted=False on that parent.

import (
	"fmt"
	"sort"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/hxds/hxds/translate/input"
	"github.com/hxds/hxds/translate/ir"
)

// l4Route is what attachment needs of a TCPRoute or TLSRoute.
type l4Route struct {
	kind      input.Kind
	meta      *metav1.ObjectMeta
	parents   []gwv1.ParentReference
	hostnames []gwv1.Hostname // TLSRoute only
	// rules are the backendRefs of each rule.
	rules  [][]gwv1.BackendRef
	status func(parents []gwv1.RouteParentStatus)
}

func (r *l4Route) nn() string { return r.meta.Namespace + "/" + r.meta.Name }

// sortedL4Routes returns TLSRoutes then TCPRoutes, each oldest first, then
// by namespace/name: the order in which they claim SNIs and ports. The two
// kinds never attach to the same listener.
func (t *translator) sortedL4Routes() []*l4Route {
	var tls, tcp []*l4Route
	for _, k := range input.SortedKeys(t.snap.TLSRoutes) {
		tls = append(tls, t.tlsRouteSource(t.snap.TLSRoutes[k]))
	}
	for _, k := range input.SortedKeys(t.snap.TCPRoutes) {
		tcp = append(tcp, t.tcpRouteSource(t.snap.TCPRoutes[k]))
	}
	oldest := func(rs []*l4Route) {
		sort.SliceStable(rs, func(i, j int) bool {
			a, b := rs[i].meta.CreationTimestamp, rs[j].meta.CreationTimestamp
			return !a.Equal(&b) && a.Before(&b)
		})
	}
	oldest(tls)
	oldest(tcp)
	return append(tls, tcp...)
}

func (t *translator) translateL4Routes() {
	for _, r := range t.sortedL4Routes() {
		t.translateL4Route(r)
	}
}

func (t *translator) translateL4Route(r *l4Route) {
	obj := routeObjectOf(r.kind, r.meta.Namespace, r.meta.Name)
	gen := r.meta.Generation
	var parents []gwv1.RouteParentStatus
	var targets []l4Attachment
	for i, ref := range r.parents {
		nn, field, ok := t.ourParent(obj, r.meta.Namespace, i, ref)
		if !ok {
			continue
		}
		ls, reason, msg := t.attachL4(r, ref, nn)
		parents = append(parents, t.parentStatus(obj, field, ref, nn, reason, msg, gen))
		if reason == "" {
			targets = append(targets, ls...)
		}
	}
	if len(parents) == 0 {
		t.d.Ignore(obj, "no-parent", "no parentRef names a Gateway served by this controller")
		return
	}
	dests, refsReason, refsMsg := t.l4Destinations(r)
	accepted := false
	for i := range parents {
		ps := &parents[i]
		if refsReason != "" {
			ps.Conditions = append(ps.Conditions, condition(string(gwv1.RouteConditionResolvedRefs), false, refsReason, refsMsg, gen))
		} else {
			ps.Conditions = append(ps.Conditions, condition(string(gwv1.RouteConditionResolvedRefs), true, string(gwv1.RouteReasonResolvedRefs), "", gen))
		}
		if ps.Conditions[0].Status == metav1.ConditionTrue {
			accepted = true
		}
	}
	if !accepted {
		t.d.Reject(obj, "not-accepted", "spec.parentRefs", "no parent Gateway accepts the route")
	} else {
		t.d.Accept(obj)
		counted := map[*listener]bool{}
		for _, tg := range targets {
			if !counted[tg.l] {
				counted[tg.l] = true
				tg.l.status.AttachedRoutes++
			}
			tg.proxy.Destinations = dests
		}
	}
	r.status(parents)
}

// l4Attachment is a TCP proxy a route takes on a listener.
type l4Attachment struct {
	l     *listener
	proxy *ir.TCPProxy
}

// attachL4 finds the listeners of Gateway nn the route attaches to through
// ref and claims their proxies (the TCP port, or one passthrough chain per
// SNI), or returns the Accepted=False reason.
func (t *translator) attachL4(r *l4Route, ref gwv1.ParentReference, nn input.NamespacedName) ([]l4Attachment, string, string) {
	candidates := t.refListeners(ref, nn)
	if len(candidates) == 0 {
		return nil, string(gwv1.RouteReasonNoMatchingParent), "no served listener matches the parentRef's sectionName/port"
	}
	var allowed []*listener
	kindOK := false
	for _, l := range candidates {
		if !l.allowL4Route || l4RouteKind(l.spec.Protocol) != r.kind {
			continue
		}
		kindOK = true
		if t.namespaceAllowed(l, r.meta.Namespace) {
			allowed = append(allowed, l)
		}
	}
	if !kindOK {
		return nil, string(gwv1.RouteReasonNotAllowedByListeners), fmt.Sprintf("no listener of the parentRef takes %ss", r.kind)
	}
	if len(allowed) == 0 {
		return nil, string(gwv1.RouteReasonNotAllowedByListeners), fmt.Sprintf("no listener allows %ss from namespace %s", r.kind, r.meta.Namespace)
	}
	var out []l4Attachment
	conflict, hostMatched := "", false
	claim := func(l *listener, p *ir.TCPProxy, what string) {
		switch {
		case p.Route == "" || p.Route == r.nn():
			p.Route, p.Source = r.nn(), routeObjectOf(r.kind, r.meta.Namespace, r.meta.Name)
			out = append(out, l4Attachment{l: l, proxy: p})
		case conflict == "":
			conflict = fmt.Sprintf("%s of listener %s is already served by %s %s (the oldest route takes it)", what, l.spec.Name, r.kind, p.Route)
		}
	}
	for _, l := range allowed {
		port := uint32(l.spec.Port)
		if r.kind == input.KindTCPRoute {
			p, _ := t.b.TCPProxy(port)
			claim(l, p, fmt.Sprintf("port %d", port))
			continue
		}
		for _, h := range intersectHosts(l.host, r.hostnames) {
			hostMatched = true
			if s, ok := t.b.TLSServer(port, h); ok {
				// An HTTPS server terminates this SNI on the port.
				if conflict == "" {
					conflict = fmt.Sprintf("SNI %s on port %d is terminated by %s", h, port, s.Source)
				}
				continue
			}
			p, _ := t.b.Passthrough(port, h)
			if p.Route == "" {
				p.Certificate = l.terminate
			}
			claim(l, p, "SNI "+h)
		}
	}
	if len(out) == 0 {
		if r.kind == input.KindTLSRoute && !hostMatched {
			return nil, string(gwv1.RouteReasonNoMatchingListenerHostname), "no route hostname matches a listener hostname"
		}
		return nil, string(gwv1.RouteReasonNotAllowedByListeners), conflict
	}
	if conflict != "" {
		t.d.Warn(routeObjectOf(r.kind, r.meta.Namespace, r.meta.Name), "partially-attached", "spec.parentRefs", "%s", conflict)
	}
	return out, "", ""
}

// l4Destinations resolves every rule's backendRefs into one weighted set
// (default weight 1; weight 0 takes no connection). An invalid backendRef
// sets ResolvedRefs=False, and its weight goes to the black hole: the spec
// asks that the connections it would get be refused, in proportion. A
// route with no backend at all refuses every connection.
func (t *translator) l4Destinations(r *l4Route) (dests []ir.Destination, reason, msg string) {
	src := &routeSource{kind: r.kind, meta: r.meta}
	rr := &ruleResult{}
	obj := routeObjectOf(r.kind, r.meta.Namespace, r.meta.Name)
	weights := map[string]uint32{}
	var order []string
	add := func(name string, w uint32) {
		if _, ok := weights[name]; !ok {
			order = append(order, name)
		}
		weights[name] += w
	}
	for ri, refs := range r.rules {
		for bi, br := range refs {
			field := fmt.Sprintf("spec.rules[%d].backendRefs[%d]", ri, bi)
			w := int32(1)
			if br.Weight != nil {
				w = min(*br.Weight, maxWeight)
			}
			name, why, what := t.backend(src, field, br, rr)
			if why != "" {
				rr.refs(why, what)
				t.d.Error(obj, "invalid-backend", field, "%s (%s); its share of connections is refused", what, why)
				name = ir.BlackHoleBackend
			}
			if w > 0 {
				add(name, uint32(w))
			}
		}
	}
	if len(order) == 0 {
		t.d.Warn(obj, "no-backend", "spec.rules", "no backendRef with a weight above 0: connections are refused")
		add(ir.BlackHoleBackend, 1)
	}
	for _, name := range order {
		dests = append(dests, ir.Destination{Backend: name, Weight: weights[name]})
	}
	return dests, rr.refsReason, rr.refsMessage
}
