package ingress

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/hxds/hxds/translate/input"
	"github.com/hxds/hxds/translate/ir"
)

func hostOf(rule networkingv1.IngressRule) string {
	if rule.Host == "" {
		return DefaultHost
	}
	return rule.Host
}

// applyPolicy puts an Ingress's route-level annotations on one of its routes.
// kind and path are the route's path type and Ingress path (before the
// Prefix expansion), which decide how rewrites are expressed.
func (t *translator) applyPolicy(ing *networkingv1.Ingress, pol policy, r *ir.Route, host string, kind ir.PathMatchKind, path string) {
	r.Timeout = pol.timeout
	r.Retry = pol.retry
	r.Cors = pol.cors
	r.RequestHeaders = pol.reqHdr
	r.ResponseHeaders = pol.respHdr
	r.IPAllow = pol.ipAllow
	r.RateLimit = pol.rateLimit
	r.HTTPSRedirect = pol.httpsRedirect
	r.Rewrite = rewriteFor(pol, kind, path)
	if pol.mirror != nil {
		if be, ok := t.mirrorBackend(ing, pol.mirror); ok {
			r.Mirrors = []ir.Mirror{{Backend: be, Percent: pol.mirror.percent}}
		}
	}
	if pol.redirect != nil {
		red := *pol.redirect
		// Kept aside: if this Ingress is a canary, its redirect is ignored
		// and only its backend counts (Higress ApplyCanaryIngress).
		t.redirected[r] = r.Forward
		r.Redirect, r.Forward = &red, nil
	}
	if pol.defaultBackend != "" && r.Forward != nil {
		if fb, ok := t.defaultBackendCluster(ing, pol.defaultBackend); ok {
			r.Forward.Destinations[0].Fallbacks = []string{fb}
			if len(pol.customErrors) > 0 {
				t.setErrorFallback(ing, r, host, fb, pol)
			}
		}
	}
}

// setErrorFallback implements custom-http-errors (§3.2, §3.5): upstream
// responses with those codes are internally redirected to "/" with two
// headers, which only the route "<route>-fallback" matches, and which sends
// them to the default backend.
func (t *translator) setErrorFallback(ing *networkingv1.Ingress, r *ir.Route, host, defaultCluster string, pol policy) {
	ref := secretRef(pol.defaultBackend, ing.Namespace)
	fallbackName := r.Name + "-fallback"
	headers := []ir.Header{
		{Name: ir.HeaderFallbackRoute, Value: fallbackName},
		{Name: ir.HeaderFallbackService, Value: ref.Namespace + "/" + ref.Name},
	}
	r.ErrorFallback = &ir.ErrorFallback{Codes: pol.customErrors, Path: "/", Headers: headers}
	if pol.upstreamVhost != "" {
		// The router rewrote the Host in place; the redirect must restore
		// it to reach this host's fallback route.
		if strings.Contains(host, "*") {
			t.d.Warn(objectOf(ing), "invalid-annotation", "metadata.annotations",
				"custom-http-errors with upstream-vhost on wildcard host %q cannot be redirected (the original host is unknown); errors pass through", host)
			r.ErrorFallback = nil
			return
		}
		r.ErrorFallback.Host = host
	}
	var conds []ir.HeaderMatch
	for _, h := range headers {
		conds = append(conds, ir.HeaderMatch{Name: h.Name, Match: ir.StringMatch{Kind: ir.MatchExact, Value: h.Value}})
	}
	t.pendingFallbacks = append(t.pendingFallbacks, &ir.Route{
		Name:    fallbackName,
		Source:  objectOf(ing),
		Matches: []ir.Match{{PathKind: ir.PathExact, Path: "/", CaseSensitive: true, Headers: conds}},
		Forward: &ir.Forward{Destinations: []ir.Destination{{Backend: defaultCluster, Weight: 100}}, TotalWeight: 100},
		// Before everything, app-root included: only redirected requests
		// carry these headers.
		SortKey: ir.SortKey{Class: -2, HeaderCount: len(conds)},
	})
}

// defaultBackendCluster resolves the default-backend annotation
// ([ns/]service, first port): requests fall over to it when the route's
// Service is missing or has no ready endpoint.
func (t *translator) defaultBackendCluster(ing *networkingv1.Ingress, v string) (string, bool) {
	ref := secretRef(v, ing.Namespace)
	svc := t.snap.Services[ref]
	if svc == nil || len(svc.Spec.Ports) == 0 {
		t.d.Warn(objectOf(ing), "invalid-annotation", "metadata.annotations",
			"default-backend %q: Service %s not found or has no ports; no fallback", v, ref)
		return "", false
	}
	sp := svc.Spec.Ports[0]
	host := fmt.Sprintf("%s.%s.svc.%s", ref.Name, ref.Namespace, t.opts.DomainSuffix)
	name := ClusterName(uint32(sp.Port), host)
	t.b.AddBackend(&ir.Backend{Name: name, Kind: ir.BackendService, Host: host, Port: uint32(sp.Port),
		Service: ir.ServiceRef{Namespace: ref.Namespace, Name: ref.Name}, TargetPortName: sp.Name})
	return name, true
}

// rewriteFor expresses rewrite-path (Higress) or rewrite-target (nginx,
// groups as \1) and upstream-vhost for a route (§3.2, §3.4).
func rewriteFor(pol policy, kind ir.PathMatchKind, path string) *ir.Rewrite {
	rw := &ir.Rewrite{Host: pol.upstreamVhost}
	switch {
	case pol.rewritePath != "":
		// A Prefix path is matched as "<p>" and "<p>/": a plain prefix
		// rewrite would turn /foo/x into <value>x when value lacks the
		// slash, so that case keeps the slash with a regex.
		if kind == ir.PathPrefix && !strings.HasSuffix(pol.rewritePath, "/") {
			rw.PathRegex = &ir.RegexRewrite{
				Pattern:      "^" + regexp.QuoteMeta(strings.TrimRight(path, "/")) + "(/.*)?",
				Substitution: pol.rewritePath + `\1`,
			}
		} else {
			rw.PathPrefix = pol.rewritePath
		}
	case pol.rewriteTarget != "":
		var pattern string
		switch kind {
		case ir.PathExact:
			pattern = "^" + regexp.QuoteMeta(path) + "$"
		case ir.PathPrefix:
			pattern = "^" + regexp.QuoteMeta(strings.TrimRight(path, "/"))
			if strings.TrimRight(path, "/") == "" {
				pattern = "^/"
			}
		default:
			pattern = "^" + path
		}
		rw.PathRegex = &ir.RegexRewrite{Pattern: pattern, Substitution: pol.rewriteTarget}
	}
	if *rw == (ir.Rewrite{}) {
		return nil
	}
	return rw
}

// mirrorBackend resolves a mirror target to a cluster: an FQDN becomes a DNS
// cluster, a Service ([ns/]name[:port], first port by default) must exist.
func (t *translator) mirrorBackend(ing *networkingv1.Ingress, m *mirrorSpec) (string, bool) {
	obj := objectOf(ing)
	if m.fqdn != "" {
		name := ClusterName(m.fqdnPort, m.fqdn)
		t.b.AddBackend(&ir.Backend{Name: name, Kind: ir.BackendDNS, Host: m.fqdn, Port: m.fqdnPort})
		return name, true
	}
	ref, portStr, hasPort := strings.Cut(m.service, ":")
	ns, name, hasNS := strings.Cut(ref, "/")
	if !hasNS {
		ns, name = m.namespace, ref
	}
	svc := t.snap.Services[input.NamespacedName{Namespace: ns, Name: name}]
	if svc == nil || len(svc.Spec.Ports) == 0 {
		t.d.Warn(obj, "invalid-annotation", "metadata.annotations",
			"mirror-target-service %q: Service %s/%s not found or has no ports; no mirroring", m.service, ns, name)
		return "", false
	}
	sp := svc.Spec.Ports[0]
	if hasPort {
		n, err := strconv.Atoi(portStr)
		found := false
		for _, p := range svc.Spec.Ports {
			if err == nil && int(p.Port) == n {
				sp, found = p, true
			}
		}
		if !found {
			t.d.Warn(obj, "invalid-annotation", "metadata.annotations",
				"mirror-target-service %q: Service %s/%s has no port %s; no mirroring", m.service, ns, name, portStr)
			return "", false
		}
	}
	host := fmt.Sprintf("%s.%s.svc.%s", name, ns, t.opts.DomainSuffix)
	cluster := ClusterName(uint32(sp.Port), host)
	t.b.AddBackend(&ir.Backend{Name: cluster, Kind: ir.BackendService, Host: host, Port: uint32(sp.Port),
		Service: ir.ServiceRef{Namespace: ns, Name: name}, TargetPortName: sp.Name})
	return cluster, true
}

// setAppRoot records app-root for a host; the last Ingress processed wins (§2.9).
func (t *translator) setAppRoot(ing *networkingv1.Ingress, host, target string) {
	t.appRoots[host] = &ir.Route{
		Name:     host + "-app-root",
		Source:   objectOf(ing),
		Matches:  []ir.Match{{PathKind: ir.PathExact, Path: "/", CaseSensitive: true}},
		Redirect: &ir.Redirect{Path: target, Code: 302},
		SortKey:  ir.SortKey{Class: -1},
	}
}
