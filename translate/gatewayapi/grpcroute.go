package gatewayapi

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/hxds/hxds/translate/input"
	"github.com/hxds/hxds/translate/ir"
)

// GRPCRoute: attachment, status and backends are shared with HTTPRoute
// (routes.go); this file holds what differs: rules, method matches and
// precedence.

func (t *translator) grpcRouteSource(gr *gwv1.GRPCRoute) *routeSource {
	src := &routeSource{
		kind: input.KindGRPCRoute, meta: &gr.ObjectMeta, parents: gr.Spec.ParentRefs,
		hostnames: gr.Spec.Hostnames, rules: len(gr.Spec.Rules),
		status: func(parents []gwv1.RouteParentStatus) {
			t.st.GRPCRoutes = append(t.st.GRPCRoutes, GRPCRouteStatus{Namespace: gr.Namespace, Name: gr.Name,
				Status: gwv1.GRPCRouteStatus{RouteStatus: gwv1.RouteStatus{Parents: parents}}})
		},
	}
	src.translate = func() *ruleResult { return t.translateGRPCRules(src, gr) }
	return src
}

// grpcRouteName is the Envoy route name of a GRPCRoute's rules (the Higress
// convention), stable when rules move.
func grpcRouteName(gr *gwv1.GRPCRoute) string { return "GRPC/" + gr.Namespace + "/" + gr.Name }

// grpcKey orders the routes of GRPCRoutes within a virtual host (GRPCRoute
// spec): method matches of type Exact, then RegularExpression, then none;
// then more characters in the service, in the method, more header matches;
// then the oldest route, namespace/name, rule and match order.
type grpcKey struct {
	class, service, method, headers, order int
}

func (t *translator) sortGRPCRoutes(routes []*ir.Route) {
	sort.SliceStable(routes, func(i, j int) bool {
		a, b := t.grpcKeys[routes[i]], t.grpcKeys[routes[j]]
		switch {
		case a.class != b.class:
			return a.class < b.class
		case a.service != b.service:
			return a.service > b.service
		case a.method != b.method:
			return a.method > b.method
		case a.headers != b.headers:
			return a.headers > b.headers
		}
		return a.order < b.order
	})
}

func (t *translator) translateGRPCRules(src *routeSource, gr *gwv1.GRPCRoute) *ruleResult {
	obj := src.object()
	rr := &ruleResult{}
	for ri, rule := range gr.Spec.Rules {
		field := fmt.Sprintf("spec.rules[%d]", ri)
		drop := func(f, format string, args ...any) {
			msg := fmt.Sprintf(format, args...)
			t.d.Error(obj, "unsupported-value", f, "%s; rule not served", msg)
			if rr.unsupported == "" {
				rr.unsupported = fmt.Sprintf("%s: %s", f, msg)
			}
			rr.rulesDropped++
		}
		if rule.SessionPersistence != nil {
			t.d.Warn(obj, "unsupported-field", field+".sessionPersistence", "sessionPersistence is not supported yet; ignored")
		}
		var pol rulePolicies
		var reqH, respH *ir.HeaderOps
		var mirrors []pendingMirror
		problem, pf := "", ""
		for fi, f := range rule.Filters {
			ff := fmt.Sprintf("%s.filters[%d]", field, fi)
			switch {
			case f.Type == gwv1.GRPCRouteFilterRequestHeaderModifier && f.RequestHeaderModifier != nil:
				if problem = checkHeaderFilter(f.RequestHeaderModifier); problem == "" {
					reqH = headerOps(f.RequestHeaderModifier)
				}
			case f.Type == gwv1.GRPCRouteFilterResponseHeaderModifier && f.ResponseHeaderModifier != nil:
				if problem = checkHeaderFilter(f.ResponseHeaderModifier); problem == "" {
					respH = headerOps(f.ResponseHeaderModifier)
				}
			case f.Type == gwv1.GRPCRouteFilterRequestMirror && f.RequestMirror != nil:
				var pct *uint32
				if pct, problem = mirrorPercent(f.RequestMirror); problem == "" {
					mirrors = append(mirrors, pendingMirror{field: ff, filter: f.RequestMirror, percent: pct})
				}
			default:
				problem = fmt.Sprintf("filter type %s is not supported yet", f.Type)
			}
			if problem != "" {
				pf = ff
				break
			}
		}
		var backends []routeBackend
		if problem == "" {
			backends, pf, problem = routeBackends(field, rule.BackendRefs, grpcBackendParts)
		}
		if problem != "" {
			drop(pf, "%s", problem)
			continue
		}
		// Matches are checked before backends are registered.
		matches := rule.Matches
		if len(matches) == 0 {
			matches = []gwv1.GRPCRouteMatch{{}}
		}
		var routes []*ir.Route
		var keys []grpcKey
		for mi, m := range matches {
			r, key, p := grpcMatchRoute(gr, m)
			if p != "" {
				pf, problem = fmt.Sprintf("%s.matches[%d]", field, mi), p
				break
			}
			routes, keys = append(routes, r), append(keys, key)
		}
		if problem != "" {
			drop(pf, "%s", problem)
			continue
		}
		forward, direct := t.forwardTo(src, field, backends, mirrors, &pol, rr)
		for i, r := range routes {
			r.Forward, r.Direct = forward, direct
			r.RequestHeaders, r.ResponseHeaders = reqH, respH
			if forward != nil {
				r.Mirrors = pol.mirrors
			}
			t.order++
			keys[i].order = t.order
			r.SortKey.Order = t.order
			t.grpcKeys[r] = keys[i]
			rr.routes = append(rr.routes, r)
		}
	}
	return rr
}

// grpcMatchRoute turns one GRPCRouteMatch into an IR route matching the
// request path /<service>/<method>, and its precedence key (without order).
func grpcMatchRoute(gr *gwv1.GRPCRoute, m gwv1.GRPCRouteMatch) (*ir.Route, grpcKey, string) {
	match := ir.Match{PathKind: ir.PathPrefix, Path: "/", CaseSensitive: true}
	key := grpcKey{class: 2}
	if mm := m.Method; mm != nil {
		svc, method := "", ""
		if mm.Service != nil {
			svc = *mm.Service
		}
		if mm.Method != nil {
			method = *mm.Method
		}
		if svc == "" && method == "" {
			return nil, key, "method match needs a service or a method"
		}
		key.service, key.method = len(svc), len(method)
		if mm.Type == nil || *mm.Type == gwv1.GRPCMethodMatchExact {
			key.class = 0
			if (svc != "" && !grpcServiceRE.MatchString(svc)) || (method != "" && !grpcMethodRE.MatchString(method)) {
				return nil, key, fmt.Sprintf("method match service %q / method %q has invalid characters", svc, method)
			}
			switch {
			case method == "":
				match = ir.Match{PathKind: ir.PathPrefix, Path: "/" + svc + "/", CaseSensitive: true}
			case svc == "":
				match = ir.Match{PathKind: ir.PathRegex, Path: "/[^/]+/" + regexp.QuoteMeta(method), CaseSensitive: true}
			default:
				match = ir.Match{PathKind: ir.PathExact, Path: "/" + svc + "/" + method, CaseSensitive: true}
			}
		} else if *mm.Type == gwv1.GRPCMethodMatchRegularExpression {
			key.class = 1
			part := func(re string) (string, string) {
				if re == "" {
					return "[^/]+", ""
				}
				if !validValue(re) {
					return "", fmt.Sprintf("%q is not a valid regular expression", re)
				}
				if _, err := regexp.Compile(re); err != nil {
					return "", fmt.Sprintf("%q is not a valid regular expression: %v", re, err)
				}
				return "(?:" + re + ")", ""
			}
			s, p := part(svc)
			if p != "" {
				return nil, key, "method match service " + p
			}
			me, p := part(method)
			if p != "" {
				return nil, key, "method match method " + p
			}
			match = ir.Match{PathKind: ir.PathRegex, Path: "/" + s + "/" + me, CaseSensitive: true}
		} else {
			return nil, key, fmt.Sprintf("method match type %s is not supported", *mm.Type)
		}
	}
	for _, h := range m.Headers {
		if !validName(string(h.Name)) || !validValue(h.Value) {
			return nil, key, fmt.Sprintf("header match %q is not a valid header", h.Name)
		}
		var typ *gwv1.HeaderMatchType
		if h.Type != nil {
			v := gwv1.HeaderMatchType(*h.Type)
			typ = &v
		}
		sm, p := stringMatch(typ, h.Value)
		if p != "" {
			return nil, key, fmt.Sprintf("header %s: %s", h.Name, p)
		}
		match.Headers = append(match.Headers, ir.HeaderMatch{Name: strings.ToLower(string(h.Name)), Match: sm})
	}
	key.headers = len(m.Headers)
	r := &ir.Route{
		Name:    grpcRouteName(gr),
		Source:  routeObjectOf(input.KindGRPCRoute, gr.Namespace, gr.Name),
		Matches: []ir.Match{match},
		SortKey: ir.SortKey{PathKind: match.PathKind, PathLength: key.service, MethodLength: key.method, HeaderCount: key.headers},
	}
	return r, key, ""
}

// The API's patterns for Exact service and method names.
var (
	grpcServiceRE = regexp.MustCompile(`^(?i)\.?[a-z_][a-z_0-9]*(\.[a-z_][a-z_0-9]*)*$`)
	grpcMethodRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z_0-9]*$`)
)
