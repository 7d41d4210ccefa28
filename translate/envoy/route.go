package envoy

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/hxds/hxds/translate/ir"
)

// servedOn is the listener a route table is served on: TLS decides what
// HTTPSRedirect routes do, and Gateway API redirects derive their port
// from it.
type servedOn struct {
	port uint32
	tls  bool
}

// buildRouteConfig builds one route table for the listener it is served on.
// Backends supply the hash policy of ring-hash backends, which Envoy takes
// from the route (as Istio derives it from a DestinationRule).
func buildRouteConfig(rt *ir.RouteTable, on servedOn, backends map[string]*ir.Backend) *routev3.RouteConfiguration {
	rc := &routev3.RouteConfiguration{
		Name: rt.Name,
		// Clusters appear in CDS before the routes that use them, but Envoy
		// must not reject a route table because one is briefly missing.
		ValidateClusters: wrapperspb.Bool(false),
		// The error-fallback routing headers are stripped from client
		// requests, so only internally redirected errors reach fallback
		// routes (custom-http-errors).
		InternalOnlyHeaders: []string{ir.HeaderFallbackRoute, ir.HeaderFallbackService},
		// A port in the Host header does not change which host matches, as
		// in Istio's (so Higress's) route tables; the Gateway API requires it.
		IgnorePortInHostMatching: true,
	}
	for _, vh := range rt.VirtualHosts {
		out := &routev3.VirtualHost{Name: vh.Name, Domains: vh.Domains}
		for _, r := range vh.Routes {
			out.Routes = append(out.Routes, buildRoutes(r, on, backends)...)
		}
		rc.VirtualHosts = append(rc.VirtualHosts, out)
	}
	return rc
}

// buildRoutes emits one Envoy route per IR match, all with the IR route's
// name and action, as Istio does for an HTTPRoute with several matches.
func buildRoutes(r *ir.Route, on servedOn, backends map[string]*ir.Backend) []*routev3.Route {
	out := make([]*routev3.Route, 0, len(r.Matches))
	for _, m := range r.Matches {
		er := &routev3.Route{Name: r.Name, Match: buildMatch(m)}
		switch {
		case r.HTTPSRedirect && !on.tls && r.Redirect == nil:
			er.Action = &routev3.Route_Redirect{Redirect: buildRedirect(&ir.Redirect{Scheme: "https", Code: 308}, on)}
		case r.Forward != nil:
			er.Action = &routev3.Route_Route{Route: buildForward(r.Forward)}
		case r.Redirect != nil:
			er.Action = &routev3.Route_Redirect{Redirect: buildRedirect(r.Redirect, on)}
		case r.Direct != nil:
			er.Action = &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{
				Status: r.Direct.Status,
				Body:   inlineBody(r.Direct.Body),
			}}
		}
		applyPolicies(er, r)
		if ra := er.GetRoute(); ra != nil && len(ra.HashPolicy) == 0 && r.Forward != nil {
			if be := backends[r.Forward.Destinations[0].Backend]; be != nil {
				for _, h := range be.Hash {
					ra.HashPolicy = append(ra.HashPolicy, hashPolicy(h))
				}
			}
		}
		out = append(out, er)
	}
	return out
}

func inlineBody(s string) *corev3.DataSource {
	if s == "" {
		return nil
	}
	return &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: s}}
}

func buildMatch(m ir.Match) *routev3.RouteMatch {
	rm := &routev3.RouteMatch{}
	switch m.PathKind {
	case ir.PathExact:
		rm.PathSpecifier = &routev3.RouteMatch_Path{Path: m.Path}
	case ir.PathPrefix:
		rm.PathSpecifier = &routev3.RouteMatch_Prefix{Prefix: m.Path}
	case ir.PathRegex:
		expr := m.Path
		if !m.CaseSensitive {
			expr = "(?i)" + expr // Envoy ignores case_sensitive for regex matches
		}
		rm.PathSpecifier = &routev3.RouteMatch_SafeRegex{SafeRegex: regex(expr)}
	}
	if !m.CaseSensitive {
		rm.CaseSensitive = wrapperspb.Bool(false)
	}
	for _, h := range m.Headers {
		hm := &routev3.HeaderMatcher{Name: h.Name, InvertMatch: h.Invert}
		if h.Match.Kind == ir.MatchPresent {
			hm.HeaderMatchSpecifier = &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}
		} else {
			hm.HeaderMatchSpecifier = &routev3.HeaderMatcher_StringMatch{StringMatch: stringMatcher(h.Match)}
		}
		rm.Headers = append(rm.Headers, hm)
	}
	for _, q := range m.Query {
		qm := &routev3.QueryParameterMatcher{Name: q.Name}
		if q.Match.Kind == ir.MatchPresent {
			qm.QueryParameterMatchSpecifier = &routev3.QueryParameterMatcher_PresentMatch{PresentMatch: true}
		} else {
			qm.QueryParameterMatchSpecifier = &routev3.QueryParameterMatcher_StringMatch{StringMatch: stringMatcher(q.Match)}
		}
		rm.QueryParameters = append(rm.QueryParameters, qm)
	}
	return rm
}

func regex(expr string) *matcherv3.RegexMatcher {
	return &matcherv3.RegexMatcher{Regex: expr}
}

func stringMatcher(m ir.StringMatch) *matcherv3.StringMatcher {
	switch m.Kind {
	case ir.MatchPrefix:
		return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: m.Value}}
	case ir.MatchRegex:
		return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: regex(m.Value)}}
	default:
		return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: m.Value}}
	}
}

// buildForward routes to one cluster, or to weighted clusters. Timeout 0
// disables Envoy's 15 s default, as Istio does: Ingress sets no deadline.
func buildForward(f *ir.Forward) *routev3.RouteAction {
	ra := &routev3.RouteAction{Timeout: durationpb.New(0)}
	if d := f.Destinations; len(d) == 1 && d[0].RequestHeaders.Empty() && d[0].ResponseHeaders.Empty() {
		ra.ClusterSpecifier = &routev3.RouteAction_Cluster{Cluster: destinationCluster(f.Destinations[0])}
		return ra
	}
	wc := &routev3.WeightedCluster{}
	for _, d := range f.Destinations {
		cw := &routev3.WeightedCluster_ClusterWeight{Name: destinationCluster(d), Weight: wrapperspb.UInt32(d.Weight)}
		cw.RequestHeadersToAdd, cw.RequestHeadersToRemove = headerOps(d.RequestHeaders)
		cw.ResponseHeadersToAdd, cw.ResponseHeadersToRemove = headerOps(d.ResponseHeaders)
		wc.Clusters = append(wc.Clusters, cw)
	}
	ra.ClusterSpecifier = &routev3.RouteAction_WeightedClusters{WeightedClusters: wc}
	return ra
}

func buildRedirect(r *ir.Redirect, on servedOn) *routev3.RedirectAction {
	ra := &routev3.RedirectAction{HostRedirect: r.Host, PortRedirect: r.Port}
	if r.DerivePort && r.Port == 0 {
		ra.PortRedirect = derivedRedirectPort(r, on)
	}
	if r.Scheme != "" {
		ra.SchemeRewriteSpecifier = &routev3.RedirectAction_SchemeRedirect{SchemeRedirect: r.Scheme}
	}
	switch {
	case r.Path != "":
		ra.PathRewriteSpecifier = &routev3.RedirectAction_PathRedirect{PathRedirect: r.Path}
	case r.PrefixRewrite != "":
		ra.PathRewriteSpecifier = &routev3.RedirectAction_PrefixRewrite{PrefixRewrite: r.PrefixRewrite}
	}
	switch r.Code {
	case 302:
		ra.ResponseCode = routev3.RedirectAction_FOUND
	case 303:
		ra.ResponseCode = routev3.RedirectAction_SEE_OTHER
	case 307:
		ra.ResponseCode = routev3.RedirectAction_TEMPORARY_REDIRECT
	case 308:
		ra.ResponseCode = routev3.RedirectAction_PERMANENT_REDIRECT
	default:
		ra.ResponseCode = routev3.RedirectAction_MOVED_PERMANENTLY
	}
	return ra
}

// derivedRedirectPort is the port_redirect of a Gateway API redirect that
// names no port. The spec's port is the well-known port of the redirect's
// scheme when it sets one, else the listener's, and is not written when it
// is the scheme's default. Envoy's Location takes the port from
// port_redirect; without one, from the request's Host unless host_redirect
// replaces it, and it drops the Host's port when the scheme changes away
// from that port's default. So port_redirect stays 0 only for a default
// port that Envoy already leaves out: host_redirect is set, or the listener
// is on its scheme's default port (the Host carries no port or that one).
func derivedRedirectPort(r *ir.Redirect, on servedOn) uint32 {
	listenerScheme := "http"
	if on.tls {
		listenerScheme = "https"
	}
	scheme, port := listenerScheme, on.port
	if r.Scheme != "" {
		scheme = r.Scheme
		if wk := wellKnownPort(r.Scheme); wk != 0 {
			port = wk
		}
	}
	if port == wellKnownPort(scheme) && (r.Host != "" || on.port == wellKnownPort(listenerScheme)) {
		return 0
	}
	return port
}

func wellKnownPort(scheme string) uint32 {
	switch scheme {
	case "http":
		return 80
	case "https":
		return 443
	}
	return 0
}
