package envoy

import (
	"net/netip"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	rbacconfigv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	corsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cors/v3"
	localratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/local_ratelimit/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/hxds/hxds/translate/ir"
)

// HTTP filter names, as Envoy registers them.
const (
	filterCors           = "envoy.filters.http.cors"
	filterRBAC           = "envoy.filters.http.rbac"
	filterLocalRateLimit = "envoy.filters.http.local_ratelimit"
)

// gatewayHTTPFilters is the fixed HTTP filter chain of every gateway HCM,
// with the group's Wasm plugins in their phases.
// Per-route policies (CORS, IP allow-lists, local rate limits) configure
// these filters through typed_per_filter_config; the filters themselves are
// always present and inert without a route config, so adding or removing an
// annotation changes only RDS and never re-pushes (and drains) a listener.
// Order follows Higress: CORS answers preflights first, then access control,
// then rate limiting, then the router. Wasm plugins (higress-semantics §7.4):
// AUTHN after CORS, AUTHZ before access control and rate limiting, STATS
// and unspecified after them; all before the session filter and the router.
func gatewayHTTPFilters(plugins []*ir.WasmPlugin) []*hcmv3.HttpFilter {
	out := []*hcmv3.HttpFilter{
		// First, as Higress's default EnvoyFilter puts it: it must see the
		// upstream response before any other filter rewrites it.
		{Name: filterCustomResponse, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: customResponseConfig}},
		{Name: filterCors, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: corsConfig}},
	}
	out = append(out, wasmFilters(plugins, ir.WasmPhaseAuthn, ir.WasmPhaseAuthz)...)
	out = append(out,
		&hcmv3.HttpFilter{Name: filterRBAC, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: rbacConfig}},
		&hcmv3.HttpFilter{Name: filterLocalRateLimit, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: localRateLimitConfig}},
	)
	out = append(out, wasmFilters(plugins, ir.WasmPhaseStats, ir.WasmPhaseUnspecified)...)
	return append(out,
		// Last before the router: it only steers the upstream host choice.
		statefulSessionFilter(),
		routerFilter(),
	)
}

// The gateway filters' own configs never change: encode them once.
var (
	corsConfig = mustAny(&corsv3.Cors{})
	// No rules: allow everything unless a route says otherwise.
	rbacConfig = mustAny(&rbacv3.RBAC{})
	// No token bucket: disabled unless a route enables it.
	localRateLimitConfig = mustAny(&localratelimitv3.LocalRateLimit{StatPrefix: "http_local_rate_limiter"})
)

// perFilter wraps a per-route filter config as optional: proxyless gRPC
// clients share the route tables and reject configs for filters they do not
// implement unless they are marked optional; Envoy applies them either way.
func perFilter(m proto.Message) *anypb.Any {
	return mustAny(&routev3.FilterConfig{Config: mustAny(m), IsOptional: true})
}

// applyPolicies sets the route-level policies of r on an Envoy route.
func applyPolicies(er *routev3.Route, r *ir.Route) {
	if ra := er.GetRoute(); ra != nil {
		applyForwardPolicies(ra, r)
	}
	er.RequestHeadersToAdd, er.RequestHeadersToRemove = headerOps(r.RequestHeaders)
	er.ResponseHeadersToAdd, er.ResponseHeadersToRemove = headerOps(r.ResponseHeaders)

	perRoute := map[string]*anypb.Any{}
	if r.Cors != nil {
		perRoute[filterCors] = perFilter(corsPolicy(r.Cors))
	}
	if len(r.IPAllow) > 0 {
		perRoute[filterRBAC] = perFilter(ipAllowList(r.IPAllow))
	}
	if r.RateLimit != nil {
		perRoute[filterLocalRateLimit] = perFilter(localRateLimit(r.RateLimit))
	}
	if r.ErrorFallback != nil && len(r.ErrorFallback.Codes) > 0 {
		perRoute[filterCustomResponse] = perFilter(errorFallback(r.ErrorFallback))
	}
	if r.Session != nil && r.Forward != nil {
		perRoute[filterStatefulSession] = perFilter(statefulSession(r.Session))
	}
	if len(perRoute) > 0 {
		er.TypedPerFilterConfig = perRoute
	}
}

func applyForwardPolicies(ra *routev3.RouteAction, r *ir.Route) {
	if rw := r.Rewrite; rw != nil {
		ra.PrefixRewrite = rw.PathPrefix
		if rw.PathRegex != nil {
			ra.RegexRewrite = &matcherv3.RegexMatchAndSubstitute{Pattern: regex(rw.PathRegex.Pattern), Substitution: rw.PathRegex.Substitution}
		}
		if rw.Host != "" {
			ra.HostRewriteSpecifier = &routev3.RouteAction_HostRewriteLiteral{HostRewriteLiteral: rw.Host}
		}
	}
	if r.Timeout != nil {
		ra.Timeout = durationpb.New(r.Timeout.Duration)
	}
	// No retry policy means no retries; num_retries 0 would say the same but
	// proxyless gRPC clients reject it.
	if rt := r.Retry; rt != nil && rt.Attempts > 0 {
		rp := &routev3.RetryPolicy{
			RetryOn:              strings.Join(rt.On, ","),
			NumRetries:           wrapperspb.UInt32(rt.Attempts),
			RetriableStatusCodes: rt.StatusCodes,
		}
		if rt.PerTryTimeout != nil {
			rp.PerTryTimeout = durationpb.New(rt.PerTryTimeout.Duration)
		}
		ra.RetryPolicy = rp
	}
	for _, m := range r.Mirrors {
		mp := &routev3.RouteAction_RequestMirrorPolicy{Cluster: m.Backend, TraceSampled: wrapperspb.Bool(false)}
		if m.Percent != nil {
			mp.RuntimeFraction = &corev3.RuntimeFractionalPercent{DefaultValue: &typev3.FractionalPercent{
				Numerator: *m.Percent, Denominator: typev3.FractionalPercent_HUNDRED,
			}}
		}
		ra.RequestMirrorPolicies = append(ra.RequestMirrorPolicies, mp)
	}
	for _, h := range r.HashPolicy {
		ra.HashPolicy = append(ra.HashPolicy, hashPolicy(h))
	}
}

func hashPolicy(h ir.HashPolicy) *routev3.RouteAction_HashPolicy {
	switch {
	case h.Cookie != nil:
		c := &routev3.RouteAction_HashPolicy_Cookie{Name: h.Cookie.Name, Path: h.Cookie.Path}
		if h.Cookie.TTL != nil {
			c.Ttl = durationpb.New(h.Cookie.TTL.Duration)
		}
		return &routev3.RouteAction_HashPolicy{PolicySpecifier: &routev3.RouteAction_HashPolicy_Cookie_{Cookie: c}}
	case h.SourceIP:
		return &routev3.RouteAction_HashPolicy{PolicySpecifier: &routev3.RouteAction_HashPolicy_ConnectionProperties_{
			ConnectionProperties: &routev3.RouteAction_HashPolicy_ConnectionProperties{SourceIp: true},
		}}
	case h.Query != "":
		return &routev3.RouteAction_HashPolicy{PolicySpecifier: &routev3.RouteAction_HashPolicy_QueryParameter_{
			QueryParameter: &routev3.RouteAction_HashPolicy_QueryParameter{Name: h.Query},
		}}
	default:
		return &routev3.RouteAction_HashPolicy{PolicySpecifier: &routev3.RouteAction_HashPolicy_Header_{
			Header: &routev3.RouteAction_HashPolicy_Header{HeaderName: h.Header},
		}}
	}
}

// headerOps converts IR header edits: Add appends to existing values, Set
// overwrites them.
func headerOps(h *ir.HeaderOps) ([]*corev3.HeaderValueOption, []string) {
	if h.Empty() {
		return nil, nil
	}
	var out []*corev3.HeaderValueOption
	for _, a := range h.Add {
		out = append(out, &corev3.HeaderValueOption{
			Header:       &corev3.HeaderValue{Key: a.Name, Value: a.Value},
			AppendAction: corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD,
		})
	}
	for _, s := range h.Set {
		out = append(out, &corev3.HeaderValueOption{
			Header:       &corev3.HeaderValue{Key: s.Name, Value: s.Value},
			AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
		})
	}
	return out, append([]string(nil), h.Remove...)
}

func corsPolicy(c *ir.Cors) *corsv3.CorsPolicy {
	p := &corsv3.CorsPolicy{
		AllowMethods:     strings.Join(c.AllowMethods, ","),
		AllowHeaders:     strings.Join(c.AllowHeaders, ","),
		ExposeHeaders:    strings.Join(c.ExposeHeaders, ","),
		AllowCredentials: wrapperspb.Bool(c.AllowCredentials),
	}
	if c.AnswerAllPreflights {
		p.ForwardNotMatchingPreflights = wrapperspb.Bool(false)
	}
	for _, o := range c.AllowOrigins {
		p.AllowOriginStringMatch = append(p.AllowOriginStringMatch, stringMatcher(o))
	}
	if c.MaxAge != nil {
		p.MaxAge = strconv.FormatInt(int64(c.MaxAge.Duration.Seconds()), 10)
	}
	return p
}

// ipAllowList denies every source outside cidrs, as Higress's
// ip-access-control does: action DENY for principals NOT(any of cidrs).
func ipAllowList(cidrs []string) *rbacv3.RBACPerRoute {
	var ids []*rbacconfigv3.Principal
	for _, c := range cidrs {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			continue // front-ends only pass valid CIDRs
		}
		ids = append(ids, &rbacconfigv3.Principal{Identifier: &rbacconfigv3.Principal_RemoteIp{RemoteIp: &corev3.CidrRange{
			AddressPrefix: p.Addr().String(), PrefixLen: wrapperspb.UInt32(uint32(p.Bits())),
		}}})
	}
	return &rbacv3.RBACPerRoute{Rbac: &rbacv3.RBAC{Rules: &rbacconfigv3.RBAC{
		Action: rbacconfigv3.RBAC_DENY,
		Policies: map[string]*rbacconfigv3.Policy{"ip-access-control": {
			Permissions: []*rbacconfigv3.Permission{{Rule: &rbacconfigv3.Permission_Any{Any: true}}},
			Principals: []*rbacconfigv3.Principal{{Identifier: &rbacconfigv3.Principal_NotId{NotId: &rbacconfigv3.Principal{
				Identifier: &rbacconfigv3.Principal_OrIds{OrIds: &rbacconfigv3.Principal_Set{Ids: ids}},
			}}}},
		}},
	}}}
}

// localRateLimit is Higress's per-route limiter (§3.2 route-limit-*): 429 and
// x-local-rate-limit: true over the limit, always enabled and enforced.
func localRateLimit(rl *ir.RateLimit) *localratelimitv3.LocalRateLimit {
	all := func(key string) *corev3.RuntimeFractionalPercent {
		return &corev3.RuntimeFractionalPercent{RuntimeKey: key, DefaultValue: &typev3.FractionalPercent{
			Numerator: 100, Denominator: typev3.FractionalPercent_HUNDRED,
		}}
	}
	return &localratelimitv3.LocalRateLimit{
		StatPrefix: "http_local_rate_limiter",
		Status:     &typev3.HttpStatus{Code: typev3.StatusCode_TooManyRequests},
		TokenBucket: &typev3.TokenBucket{
			MaxTokens:     rl.MaxTokens,
			TokensPerFill: wrapperspb.UInt32(rl.TokensPerFill),
			FillInterval:  durationpb.New(rl.FillInterval.Duration),
		},
		FilterEnabled:  all("local_rate_limit_enabled"),
		FilterEnforced: all("local_rate_limit_enforced"),
		ResponseHeadersToAdd: []*corev3.HeaderValueOption{{
			Header:       &corev3.HeaderValue{Key: "x-local-rate-limit", Value: "true"},
			AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
		}},
	}
}
