// Package ingress translates Kubernetes Ingresses into the gateway IR with
// Higress's semantics (higress-semantics §2): class selection, defaulting,
// path types, regex mode, route ordering, duplicates, defaultBackend and TLS.
package ingress

import (
	"crypto/tls"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/hxds/hxds/translate/diag"
	"github.com/hxds/hxds/translate/higress"
	"github.com/hxds/hxds/translate/input"
	"github.com/hxds/hxds/translate/ir"
	"github.com/hxds/hxds/translate/template"
)

// DefaultHost is the host of rules that name none.
const DefaultHost = "*"

// translator holds the state of one translation run.
type translator struct {
	snap *input.Snapshot
	opts input.Options
	b    *ir.Builder
	d    *diag.Set

	// routes per host in the order they were produced (oldest Ingress first).
	hosts     map[string][]*ir.Route
	hostOrder []string
	// ruleKeys detects duplicates: rule key → the Ingress that owns it.
	ruleKeys map[string]diag.Object
	order    int
	// appRoots holds the app-root redirect route of each host.
	appRoots map[string]*ir.Route
	// baseRoutes maps a rule key to the non-canary route canaries bind to.
	baseRoutes    map[string]*ir.Route
	canaryWeights map[*ir.Route]*canaryWeights
	// keyPairs remembers each Secret's certificate check: parsing a key
	// pair is costly and many hosts share one Secret.
	keyPairs map[input.NamespacedName]error
	https    *higress.HTTPS
	// expanded caches each Ingress's annotations with templates expanded.
	expanded map[*networkingv1.Ingress]annotations
	dests    map[*networkingv1.Ingress]destResult
	// pendingFallbacks are custom-http-errors fallback routes of the path
	// being translated, added to its host with it.
	pendingFallbacks []*ir.Route
	fallbackAdded    map[string]bool
	// redirected keeps the destinations of routes a redirect replaced.
	redirected map[*ir.Route]*ir.Forward
}

// Translate adds every Ingress of snap that this controller serves to b, and
// records for each Ingress what was served and what was not in d.
func Translate(snap *input.Snapshot, opts input.Options, b *ir.Builder, d *diag.Set) {
	t := &translator{
		snap: snap, opts: opts, b: b, d: d,
		hosts:    map[string][]*ir.Route{},
		ruleKeys: map[string]diag.Object{},
		appRoots: map[string]*ir.Route{},

		baseRoutes:    map[string]*ir.Route{},
		canaryWeights: map[*ir.Route]*canaryWeights{},
		keyPairs:      map[input.NamespacedName]error{},
		https:         higress.ParseHTTPS(snap, opts.SystemNamespace, d),
		expanded:      map[*networkingv1.Ingress]annotations{},
		dests:         map[*networkingv1.Ingress]destResult{},
		fallbackAdded: map[string]bool{},
		redirected:    map[*ir.Route]*ir.Forward{},
	}
	ingresses := t.selectIngresses()
	// Canary Ingresses bind to routes of normal ones, so they come after all
	// of them (§3.3), each still oldest first.
	var canaries []*networkingv1.Ingress
	specs := map[*networkingv1.Ingress]*canary{}
	for _, ing := range ingresses {
		if c := parseCanary(ing, parser{ann: t.annotationsOf(ing), obj: objectOf(ing), d: d}); c != nil {
			specs[ing] = c
			canaries = append(canaries, ing)
			continue
		}
		t.translateIngress(ing, nil)
	}
	for _, ing := range canaries {
		t.translateIngress(ing, specs[ing])
	}
	for _, ing := range ingresses {
		if specs[ing] == nil {
			t.applyDefaultBackend(ing)
		}
	}
	t.emit()
}

func objectOf(ing *networkingv1.Ingress) diag.Object {
	return diag.Object{Kind: string(input.KindIngress), Namespace: ing.Namespace, Name: ing.Name}
}

// selectIngresses returns the Ingresses of our class, oldest first
// (creationTimestamp, then "<name>.<namespace>"), which is the order in which
// "first wins" is decided everywhere below.
func (t *translator) selectIngresses() []*networkingv1.Ingress {
	var out []*networkingv1.Ingress
	for _, key := range input.SortedKeys(t.snap.Ingresses) {
		ing := t.snap.Ingresses[key]
		if !selected(ing, t.snap, t.opts.IngressClass) {
			t.d.Ignore(objectOf(ing), "ignored-class",
				"ingress class %q is not served by this controller (ingress class %q)", className(ing), t.opts.IngressClass)
			continue
		}
		out = append(out, ing)
	}
	sort.SliceStable(out, func(i, j int) bool {
		ti, tj := out[i].CreationTimestamp, out[j].CreationTimestamp
		if !ti.Equal(&tj) {
			return ti.Before(&tj)
		}
		return out[i].Name+"."+out[i].Namespace < out[j].Name+"."+out[j].Namespace
	})
	return out
}

func className(ing *networkingv1.Ingress) string {
	if v, ok := ing.Annotations[classAnnotation]; ok {
		return v
	}
	if ing.Spec.IngressClassName != nil {
		return *ing.Spec.IngressClassName
	}
	return ""
}

// routeName is the Envoy route name of an Ingress (§2.4): its name in the
// system namespace, <namespace>/<name> elsewhere.
func (t *translator) routeName(ing *networkingv1.Ingress) string {
	if ing.Namespace == t.opts.SystemNamespace {
		return ing.Name
	}
	return ing.Namespace + "/" + ing.Name
}

// translateIngress adds the routes of one Ingress; a canary Ingress (c set)
// instead binds each path to the base route with the same rule key and
// contributes no TLS, app-root or default backend.
func (t *translator) translateIngress(ing *networkingv1.Ingress, c *canary) {
	obj := objectOf(ing)
	t.d.Accept(obj)
	ann := t.annotationsOf(ing)
	t.reportUnknownAnnotations(ing)
	bad := func(key, value string, err error) {
		t.d.Warn(obj, "invalid-annotation", "metadata.annotations", "annotation %s=%q ignored: %v", key, value, err)
	}
	if len(ing.Spec.Rules) == 0 && ing.Spec.DefaultBackend == nil {
		t.d.Warn(obj, "empty-rule", "spec", "Ingress has no rules and no defaultBackend; nothing to serve")
	}
	regex := parseRegexMode(ann, bad)
	pol := parsePolicy(ing, ann, t.d)
	if pol.appRoot != "" && c == nil {
		for _, rule := range ing.Spec.Rules {
			if rule.HTTP != nil {
				t.setAppRoot(ing, hostOf(rule), pol.appRoot)
			}
		}
	}

	for ri, rule := range ing.Spec.Rules {
		if rule.HTTP == nil {
			t.d.Warn(obj, "empty-rule", fmt.Sprintf("spec.rules[%d]", ri), "rule has no http paths; ignored")
			continue
		}
		host := rule.Host
		if host == "" {
			host = DefaultHost
		}
		hostHasRoute := false
		for pi, p := range rule.HTTP.Paths {
			field := fmt.Sprintf("spec.rules[%d].http.paths[%d]", ri, pi)
			t.pendingFallbacks = t.pendingFallbacks[:0]
			route, key, ok := t.pathRoute(ing, regex, pol, host, p, field)
			if !ok {
				continue
			}
			if c != nil {
				base := t.baseRoutes[key]
				if base == nil {
					t.d.Warn(obj, "canary-unbound", field,
						"no non-canary route for host %q path %q with the same match conditions; canary path ignored", host, p.Path)
					continue
				}
				for _, r := range t.applyCanary(c, base, route) {
					t.addRoute(host, r)
				}
				continue
			}
			if owner, dup := t.ruleKeys[key]; dup {
				t.d.Error(obj, "duplicated-route", field,
					"host %q path %q (%s) is already served by %s/%s with the same match conditions; the oldest Ingress wins",
					host, p.Path, route.SortKey.PathKind, owner.Namespace, owner.Name)
				continue
			}
			t.ruleKeys[key] = obj
			t.baseRoutes[key] = route
			hostHasRoute = true
			t.addRoute(host, route)
			for _, fb := range t.pendingFallbacks {
				if k := host + "\x00" + fb.Name; !t.fallbackAdded[k] {
					t.fallbackAdded[k] = true
					t.addRoute(host, fb)
				}
			}
		}
		if hostHasRoute && c == nil {
			t.tlsForHost(ing, host, pol.downstream)
		}
	}
}

// pathRoute turns one Ingress path into a route, or reports why it can't.
// pathRoute builds the route of one Ingress path and its rule key (§2.4);
// the caller decides about duplicates and canary binding.
func (t *translator) pathRoute(ing *networkingv1.Ingress, mode regexMode, pol policy, host string, p networkingv1.HTTPIngressPath, field string) (*ir.Route, string, bool) {
	obj := objectOf(ing)

	// Defaulting (§2.2), on copies: the input snapshot is never modified.
	path := p.Path
	if path == "" {
		path = "/"
	}
	pathType := networkingv1.PathTypePrefix
	if p.PathType == nil {
		if !mode.forIngress() {
			path = strings.TrimSuffix(path, ".*")
			path = strings.TrimSuffix(path, "/*")
			if path == "" {
				path = "/"
			}
		}
	} else if *p.PathType == networkingv1.PathTypeExact {
		pathType = networkingv1.PathTypeExact
	} else if *p.PathType != networkingv1.PathTypePrefix && *p.PathType != networkingv1.PathTypeImplementationSpecific {
		t.d.Error(obj, "invalid-path", field+".pathType", "unknown pathType %q; path not served", *p.PathType)
		return nil, "", false
	}

	var dests []ir.Destination
	if isRegistryBackend(p.Backend) {
		ds, ok := t.destinations(ing, t.annotationsOf(ing), field+".backend")
		if !ok {
			return nil, "", false
		}
		dests = ds
	} else {
		backend, ok := t.resolveBackend(ing, p.Backend, field+".backend")
		if !ok {
			return nil, "", false
		}
		t.applyBackendPolicy(ing, t.b.Backend(backend), pol.backend)
		dests = []ir.Destination{{Backend: backend, Weight: 100}}
	}

	// Higress decides regex mode before looking at the path type, so under
	// use-regex even an Exact path is a regex (as in ingress-nginx).
	regex := mode.forPath(path)
	var matches []ir.Match
	var kind ir.PathMatchKind
	switch {
	case regex:
		kind = ir.PathRegex
		expr := path + ".*"
		if mode.fullPathRegex {
			expr = path + "$"
		}
		if _, err := regexp.Compile(expr); err != nil {
			t.d.Error(obj, "invalid-path", field+".path", "path %q is not a valid regular expression: %v; path not served", path, err)
			return nil, "", false
		}
		matches = []ir.Match{{PathKind: ir.PathRegex, Path: expr, CaseSensitive: true}}
	case !strings.HasPrefix(path, "/"):
		t.d.Error(obj, "invalid-path", field+".path", "path %q must begin with '/'; path not served", path)
		return nil, "", false
	case pathType == networkingv1.PathTypeExact:
		kind = ir.PathExact
		matches = []ir.Match{{PathKind: ir.PathExact, Path: path, CaseSensitive: true}}
	case path == "/":
		kind = ir.PathPrefix
		matches = []ir.Match{{PathKind: ir.PathPrefix, Path: "/", CaseSensitive: true}}
	default:
		// /foo matches /foo, /foo/ and /foo/x but not /foobar.
		kind = ir.PathPrefix
		trimmed := strings.TrimRight(path, "/")
		matches = []ir.Match{
			{PathKind: ir.PathExact, Path: trimmed, CaseSensitive: true},
			{PathKind: ir.PathPrefix, Path: trimmed + "/", CaseSensitive: true},
		}
	}

	// Match annotations add their conditions to every match.
	for i := range matches {
		matches[i].Headers = append(matches[i].Headers, pol.match.headers...)
		matches[i].Query = append(matches[i].Query, pol.match.query...)
		if len(pol.match.methods) > 0 {
			matches[i].Headers = append(matches[i].Headers, ir.HeaderMatch{
				Name: ":method", Match: ir.StringMatch{Kind: ir.MatchRegex, Value: strings.Join(pol.match.methods, "|")},
			})
		}
		if pol.ignoreCase {
			matches[i].CaseSensitive = false
		}
	}

	key := fmt.Sprintf("%s-%s-%s%s", host, kind, path, pol.match.key())

	class := 0
	if kind == ir.PathPrefix && path == "/" && len(pol.match.methods)+len(pol.match.headers)+len(pol.match.query) == 0 {
		class = 1 // user catch-all: sorted after every other user route
	}
	methodLength := 0
	if len(pol.match.methods) > 0 {
		methodLength = len(strings.Join(pol.match.methods, "|"))
	}
	t.order++
	r := &ir.Route{
		Name:    t.routeName(ing),
		Source:  obj,
		Matches: matches,
		Forward: &ir.Forward{Destinations: dests, TotalWeight: 100},
		SortKey: ir.SortKey{Class: class, PathKind: kind, PathLength: len(path), Order: t.order,
			MethodLength: methodLength, HeaderCount: len(pol.match.headers), QueryCount: len(pol.match.query)},
	}
	t.applyPolicy(ing, pol, r, host, kind, path)
	return r, key, true
}

func (t *translator) addRoute(host string, r *ir.Route) {
	if _, ok := t.hosts[host]; !ok {
		t.hostOrder = append(t.hostOrder, host)
	}
	t.hosts[host] = append(t.hosts[host], r)
}

// resolveBackend registers the cluster of an Ingress backend and returns its name.
func (t *translator) resolveBackend(ing *networkingv1.Ingress, be networkingv1.IngressBackend, field string) (string, bool) {
	obj := objectOf(ing)
	if be.Resource != nil {
		r := be.Resource
		t.d.Error(obj, "invalid-backend-service", field+".resource",
			"backend resource %s/%s is not supported (only networking.higress.io McpBridge \"default\", with higress.io/destination); path not served", r.Kind, r.Name)
		return "", false
	}
	if be.Service == nil || be.Service.Name == "" {
		t.d.Error(obj, "invalid-backend-service", field, "backend names no service; path not served")
		return "", false
	}
	svcRef := input.NamespacedName{Namespace: ing.Namespace, Name: be.Service.Name}
	svc := t.snap.Services[svcRef]
	port := be.Service.Port.Number
	portName := ""
	if be.Service.Port.Name != "" {
		if svc == nil {
			t.d.Error(obj, "port-name-resolve-error", field+".service.port.name",
				"Service %s not found, so port name %q cannot be resolved; path not served", svcRef, be.Service.Port.Name)
			return "", false
		}
		found := false
		for _, sp := range svc.Spec.Ports {
			if sp.Name == be.Service.Port.Name {
				port, portName, found = sp.Port, sp.Name, true
				break
			}
		}
		if !found {
			t.d.Error(obj, "port-name-resolve-error", field+".service.port.name",
				"Service %s has no port named %q; path not served", svcRef, be.Service.Port.Name)
			return "", false
		}
	} else if port <= 0 {
		t.d.Error(obj, "invalid-backend-service", field+".service.port", "backend service port must be a name or a number in 1-65535; path not served")
		return "", false
	} else if svc != nil {
		for _, sp := range svc.Spec.Ports {
			if sp.Port == port {
				portName = sp.Name
				break
			}
		}
	}
	switch {
	case svc == nil:
		t.d.Warn(obj, "service-not-found", field+".service",
			"Service %s does not exist; requests get 503 until it does", svcRef)
	case svc.Spec.Type == corev1.ServiceTypeExternalName:
		return t.addDNSBackend(svc, uint32(port)), true
	case portName == "" && !hasPort(svc, port):
		t.d.Warn(obj, "service-port-not-found", field+".service.port.number",
			"Service %s has no port %d; requests get 503 until it does", svcRef, port)
	}
	host := fmt.Sprintf("%s.%s.svc.%s", svcRef.Name, svcRef.Namespace, t.opts.DomainSuffix)
	name := ClusterName(uint32(port), host)
	t.b.AddBackend(&ir.Backend{
		Name: name, Kind: ir.BackendService, Host: host, Port: uint32(port),
		Service: ir.ServiceRef{Namespace: svcRef.Namespace, Name: svcRef.Name}, TargetPortName: portName,
	})
	return name, true
}

func hasPort(svc *corev1.Service, port int32) bool {
	for _, sp := range svc.Spec.Ports {
		if sp.Port == port {
			return true
		}
	}
	return false
}

// addDNSBackend serves an ExternalName Service as a DNS cluster, as Istio does.
func (t *translator) addDNSBackend(svc *corev1.Service, port uint32) string {
	host := fmt.Sprintf("%s.%s.svc.%s", svc.Name, svc.Namespace, t.opts.DomainSuffix)
	name := ClusterName(port, host)
	t.b.AddBackend(&ir.Backend{
		Name: name, Kind: ir.BackendDNS, Host: svc.Spec.ExternalName, Port: port,
		Service: ir.ServiceRef{Namespace: svc.Namespace, Name: svc.Name},
	})
	return name
}

// ClusterName is Istio's outbound cluster name outbound|<port>||<host>.
func ClusterName(port uint32, host string) string {
	return fmt.Sprintf("outbound|%d||%s", port, host)
}

// SecretName is the SDS name of a Kubernetes TLS Secret (§1):
// kubernetes-ingress://<cluster>/<namespace>/<name>.
func SecretName(clusterID, namespace, name string) string {
	if clusterID == "" {
		clusterID = "Kubernetes"
	}
	return fmt.Sprintf("kubernetes-ingress://%s/%s/%s", clusterID, namespace, name)
}

// tlsForHost gives host an HTTPS server (§2.6): the Secret of the Ingress's
// tls entry that lists the host exactly; when no entry lists it, the
// higress-https credentialConfig Secret for the host; and when the entry's
// Secret is missing or unusable and fallbackForInvalidSecret is set, the
// credentialConfig Secret too. As in Higress, only Ingresses with some
// spec.tls get HTTPS at all.
func (t *translator) tlsForHost(ing *networkingv1.Ingress, host string, downstream downstreamTLS) {
	if len(ing.Spec.TLS) == 0 {
		return
	}
	obj := objectOf(ing)
	var ref input.NamespacedName
	listed := false
	for i, entry := range ing.Spec.TLS {
		hosts := entry.Hosts
		if len(hosts) == 0 {
			hosts = []string{DefaultHost}
		}
		if !slices.Contains(hosts, host) {
			continue
		}
		if entry.SecretName == "" {
			t.d.Error(obj, "missing-secret", fmt.Sprintf("spec.tls[%d].secretName", i), "tls entry for host %q names no Secret; host served over HTTP only", host)
			return
		}
		ref, listed = input.NamespacedName{Namespace: ing.Namespace, Name: entry.SecretName}, true
		break
	}
	if !listed {
		cref, ok := t.https.SecretFor(host, t.opts.SystemNamespace)
		if !ok {
			return
		}
		ref = cref
	}
	cert, key, problem := t.keyPairOf(ref)
	if problem != "" && listed && t.https.FallbackForInvalidSecret {
		if cref, ok := t.https.SecretFor(host, t.opts.SystemNamespace); ok {
			t.d.Warn(obj, "fallback-secret", "spec.tls",
				"Secret %s for host %q %s; serving credentialConfig Secret %s (fallbackForInvalidSecret)", ref, host, problem, cref)
			ref = cref
			cert, key, problem = t.keyPairOf(ref)
		}
	}
	if problem != "" {
		reason := "missing-secret"
		if t.snap.Secrets[ref] != nil {
			reason = "invalid-secret"
		}
		t.d.Error(obj, reason, "spec.tls", "Secret %s for host %q %s; host served over HTTP only", ref, host, problem)
		return
	}
	sdsName := SecretName(t.opts.ClusterID, ref.Namespace, ref.Name)
	server, existing := t.b.TLSHost(t.opts.HTTPSPort, host, sdsName, obj)
	t.applyDownstreamTLS(ing, server, ref, downstream)
	if existing && server.Source != obj {
		t.d.Warn(obj, "duplicated-tls", "spec.tls",
			"host %q already has TLS from %s/%s; that Ingress's certificate is used", host, server.Source.Namespace, server.Source.Name)
		return
	}
	t.b.AddSecret(&ir.Secret{Name: sdsName, Namespace: ref.Namespace, SecretName: ref.Name, Cert: cert, Key: key})
}

// keyPairOf returns a Secret's certificate and key, or why they are unusable.
func (t *translator) keyPairOf(ref input.NamespacedName) (cert, key []byte, problem string) {
	secret := t.snap.Secrets[ref]
	if secret == nil {
		return nil, nil, "not found"
	}
	cert, key = secret.Data[corev1.TLSCertKey], secret.Data[corev1.TLSPrivateKeyKey]
	if err := t.checkKeyPair(ref, cert, key); err != nil {
		return nil, nil, fmt.Sprintf("has no usable tls.crt/tls.key: %v", err)
	}
	return cert, key, ""
}

// applyDefaultBackend implements spec.defaultBackend as Higress's
// ApplyDefaultBackend does (read from its code; higress-semantics §2.8 says
// "replaced", which the code never reaches for a user route): a host that
// already has a Prefix "/" route keeps it. On the "*" host a later Ingress's
// default backend replaces an earlier one (Higress never marks "*" as
// configured); on every other rule host of the Ingress without a "/" route a
// catch-all "<name>-default" is added, and the first one stays.
func (t *translator) applyDefaultBackend(ing *networkingv1.Ingress) {
	if ing.Spec.DefaultBackend == nil {
		return
	}
	obj := objectOf(ing)
	backend, ok := t.resolveBackend(ing, *ing.Spec.DefaultBackend, "spec.defaultBackend")
	if !ok {
		return
	}
	mk := func() *ir.Route {
		t.order++
		return &ir.Route{
			Name:    t.routeName(ing) + "-default",
			Source:  obj,
			Matches: []ir.Match{{PathKind: ir.PathPrefix, Path: "/", CaseSensitive: true}},
			Forward: &ir.Forward{Destinations: []ir.Destination{{Backend: backend, Weight: 100}}, TotalWeight: 100},
			SortKey: ir.SortKey{Class: 2, PathKind: ir.PathPrefix, PathLength: 1, Order: t.order},
		}
	}

	routes := t.hosts[DefaultHost]
	userRoot, defaultAt := false, -1
	for i, r := range routes {
		switch r.SortKey.Class {
		case 1:
			userRoot = true
		case 2:
			defaultAt = i
		}
	}
	switch {
	case userRoot:
		t.d.Warn(obj, "default-backend-unused", "spec.defaultBackend",
			"host \"*\" already has a \"/\" route, which keeps serving; the default backend is not used there")
	case defaultAt >= 0:
		prev := routes[defaultAt].Source
		t.d.Warn(obj, "default-backend-replaced", "spec.defaultBackend",
			"replaces the default backend of host \"*\" set by %s/%s (the newest Ingress wins, as in Higress)", prev.Namespace, prev.Name)
		routes[defaultAt] = mk()
	default:
		t.addRoute(DefaultHost, mk())
	}

	for _, rule := range ing.Spec.Rules {
		host := rule.Host
		if host == "" || host == DefaultHost || rule.HTTP == nil {
			continue
		}
		hasRoot := false
		for _, r := range t.hosts[host] {
			if r.SortKey.Class >= 1 {
				hasRoot = true
				break
			}
		}
		if !hasRoot {
			t.addRoute(host, mk())
		}
	}
}

// emit sorts every host's routes (§2.3) and hands them to the builder, on the
// HTTP port always and on the HTTPS port for hosts with a TLS server.
func (t *translator) emit() {
	for _, host := range t.hostOrder {
		if ar := t.appRoots[host]; ar != nil {
			t.hosts[host] = append([]*ir.Route{ar}, t.hosts[host]...) // sorted first (class -1)
		}
		SortRoutes(t.hosts[host])
	}
	for _, host := range t.hostOrder {
		routes := t.hosts[host]
		// A request for an exact host that matches none of its routes is
		// served by the routes of the most specific wildcard host covering
		// it, as Higress's scoped-RDS fallback does (HTTPRouteExactDomain
		// Fallback): in Envoy the exact host's routes end with them.
		// Nothing after an unconditional catch-all can match, so hosts that
		// end with one (most do) do not grow.
		if w := t.wildcardFor(host); w != "" && !endsWithCatchAll(routes) {
			routes = append(append([]*ir.Route(nil), routes...), t.hosts[w]...)
		}
		vh := t.b.HTTPHost(t.opts.HTTPPort, host)
		vh.Routes = append(vh.Routes, routes...)
		if server, ok := t.b.TLSServer(t.opts.HTTPSPort, host); ok {
			server.Routes.VirtualHosts[0].Routes = append(server.Routes.VirtualHosts[0].Routes, routes...)
		}
	}
}

// SortRoutes orders the routes of one host as Higress does (§2.3): default
// backend last, user catch-all before it; otherwise exact before prefix before
// regex; then longer paths, method matches (shorter method regexes first),
// more header and query matches; input order breaks ties.
func SortRoutes(routes []*ir.Route) { ir.SortRoutes(routes, true) }

// wildcardFor returns the most specific other host whose wildcard covers
// host (*.b.example.com before *.example.com before *), or "".
func (t *translator) wildcardFor(host string) string {
	if host == DefaultHost {
		return ""
	}
	best := ""
	for _, w := range t.hostOrder {
		if w == host || !strings.HasPrefix(w, "*") {
			continue
		}
		suffix := strings.TrimPrefix(w, "*")
		if w != DefaultHost && (!strings.HasSuffix(host, suffix) || len(host) <= len(suffix)) {
			continue
		}
		if best == "" || best == DefaultHost || (w != DefaultHost && len(w) > len(best)) {
			best = w
		}
	}
	return best
}

// endsWithCatchAll reports whether the last route matches every request.
func endsWithCatchAll(routes []*ir.Route) bool {
	if len(routes) == 0 {
		return false
	}
	k := routes[len(routes)-1].SortKey
	return k.Class >= 1 && k.HeaderCount == 0 && k.QueryCount == 0 && k.MethodLength == 0
}

func (t *translator) checkKeyPair(ref input.NamespacedName, cert, key []byte) error {
	if err, done := t.keyPairs[ref]; done {
		return err
	}
	_, err := tls.X509KeyPair(cert, key)
	t.keyPairs[ref] = err
	return err
}

// annotationsOf returns an Ingress's annotations with ${secret...} references
// expanded (§2.10). A value whose reference cannot be resolved is dropped
// with a warning, rather than served with the raw reference in it (§13.18).
// Secret changes re-run translation, so values follow their Secrets.
func (t *translator) annotationsOf(ing *networkingv1.Ingress) annotations {
	if a, ok := t.expanded[ing]; ok {
		return a
	}
	a := annotations(ing.Annotations)
	copied := false
	for _, k := range slices.Sorted(maps.Keys(ing.Annotations)) {
		v := ing.Annotations[k]
		if !template.Contains(v) {
			continue
		}
		if !copied {
			a, copied = maps.Clone(a), true // the input is never modified
		}
		out, _, err := template.Expand(v, t.snap, t.opts.SystemNamespace)
		if err != nil {
			t.d.Warn(objectOf(ing), "unresolved-template", "metadata.annotations["+k+"]", "%v; annotation ignored", err)
			delete(a, k)
			continue
		}
		a[k] = out
	}
	t.expanded[ing] = a
	return a
}

// isRegistryBackend reports whether a backend is the McpBridge resource,
// whose destinations come from higress.io/destination (§2.5).
func isRegistryBackend(be networkingv1.IngressBackend) bool {
	r := be.Resource
	return r != nil && r.APIGroup != nil && *r.APIGroup == "networking.higress.io" && r.Kind == "McpBridge" && r.Name == "default"
}
