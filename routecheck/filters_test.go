package routecheck

import (
	"reflect"
	"strings"
	"testing"

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
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func cidr(p string, bits uint32) *corev3.CidrRange {
	return &corev3.CidrRange{AddressPrefix: p, PrefixLen: wrapperspb.UInt32(bits)}
}

// allowList is what hxds emits for an IP allow-list: DENY NOT(any of the CIDRs).
func allowList(cidrs ...*corev3.CidrRange) *rbacv3.RBACPerRoute {
	var ids []*rbacconfigv3.Principal
	for _, c := range cidrs {
		ids = append(ids, &rbacconfigv3.Principal{Identifier: &rbacconfigv3.Principal_RemoteIp{RemoteIp: c}})
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

func optional(t testing.TB, m proto.Message) *anypb.Any {
	return mustAny(t, &routev3.FilterConfig{Config: mustAny(t, m), IsOptional: true})
}

func TestRBAC(t *testing.T) {
	rbacFilter := &hcmv3.HttpFilter{Name: "envoy.filters.http.rbac", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(t, &rbacv3.RBAC{})}}
	allowByPath := &rbacv3.RBACPerRoute{Rbac: &rbacv3.RBAC{Rules: &rbacconfigv3.RBAC{
		Action: rbacconfigv3.RBAC_ALLOW,
		Policies: map[string]*rbacconfigv3.Policy{
			"b-admins": {
				Permissions: []*rbacconfigv3.Permission{{Rule: &rbacconfigv3.Permission_AndRules{AndRules: &rbacconfigv3.Permission_Set{Rules: []*rbacconfigv3.Permission{
					{Rule: &rbacconfigv3.Permission_UrlPath{UrlPath: pathMatcher(sm("prefix", "/admin"))}},
					{Rule: &rbacconfigv3.Permission_NotRule{NotRule: &rbacconfigv3.Permission{Rule: &rbacconfigv3.Permission_DestinationPort{DestinationPort: 8080}}}},
				}}}}},
				Principals: []*rbacconfigv3.Principal{{Identifier: &rbacconfigv3.Principal_DirectRemoteIp{DirectRemoteIp: cidr("192.168.0.0", 16)}}},
			},
			"a-public": {
				Permissions: []*rbacconfigv3.Permission{{Rule: &rbacconfigv3.Permission_UrlPath{UrlPath: pathMatcher(sm("prefix", "/public"))}}},
				Principals:  []*rbacconfigv3.Principal{{Identifier: &rbacconfigv3.Principal_Any{Any: true}}},
			},
		},
	}}}
	allowed := toCluster("allow-list", prefix("/allow"))
	allowed.TypedPerFilterConfig = map[string]*anypb.Any{"envoy.filters.http.rbac": optional(t, allowList(cidr("10.0.0.0", 8), cidr("2001:db8::", 32), cidr("203.0.113.7", 32)))}
	byPath := toCluster("by-path", prefix("/"))
	byPath.TypedPerFilterConfig = map[string]*anypb.Any{"envoy.filters.http.rbac": mustAny(t, allowByPath)}
	disabled := toCluster("disabled", prefix("/off"))
	disabled.TypedPerFilterConfig = map[string]*anypb.Any{"envoy.filters.http.rbac": mustAny(t, &routev3.FilterConfig{Disabled: true})}
	empty := toCluster("empty", prefix("/empty"))
	empty.TypedPerFilterConfig = map[string]*anypb.Any{"envoy.filters.http.rbac": mustAny(t, &rbacv3.RBACPerRoute{})}
	vh := vhost("vh", []string{"*"}, allowed, disabled, empty, byPath)
	res := httpResources(t, rc("http.80", vh), rbacFilter)

	for _, tc := range []struct {
		path, ip string
		denied   bool
	}{
		{"/allow", "10.1.2.3", false},
		{"/allow", "11.1.2.3", true},
		{"/allow", "203.0.113.7", false},
		{"/allow", "203.0.113.8", true},
		{"/allow", "2001:db8::1", false},
		{"/allow", "::ffff:10.0.0.1", false}, // IPv4-mapped IPv6 is the IPv4 address
		{"/allow", "", true},                 // unknown client: not in the list
		{"/public/x", "198.51.100.1", false},
		{"/admin", "192.168.1.1", false},
		{"/admin", "10.0.0.1", true},
		{"/other", "192.168.1.1", true},
		{"/off", "198.51.100.1", false},
		{"/empty", "198.51.100.1", false},
	} {
		o := eval(t, res, Request{Host: "h", Path: tc.path, SourceIP: tc.ip})
		if got := o.Denied != nil; got != tc.denied {
			t.Errorf("%s from %q: denied %v, want %v (%+v)", tc.path, tc.ip, got, tc.denied, o.Filters)
			continue
		}
		if tc.denied {
			if o.Status != 403 || o.Denied.Filter != "envoy.filters.http.rbac" || o.Forwarded {
				t.Errorf("%s from %q: %+v", tc.path, tc.ip, o)
			}
			if o.Route == "" {
				t.Errorf("the route is known even when denied")
			}
		} else if !o.Forwarded {
			t.Errorf("%s from %q: not forwarded: %+v", tc.path, tc.ip, o)
		}
	}
	if o := eval(t, res, Request{Host: "h", Path: "/public", SourceIP: "1.2.3.4"}); !strings.Contains(o.Filters[0].Result, "a-public") {
		t.Errorf("policy name not reported: %+v", o.Filters)
	}

	// A per-route config for a filter the connection manager does not run is ignored.
	res = httpResources(t, rc("http.80", vh))
	o := eval(t, res, Request{Host: "h", Path: "/allow", SourceIP: "11.1.2.3"})
	if o.Denied != nil || !strings.Contains(strings.Join(o.Notes, "\n"), "names no HTTP filter") {
		t.Errorf("RBAC without the filter: %+v", o)
	}
	// A filter's own rules apply without a route, and before the 404.
	deny := &rbacv3.RBAC{Rules: &rbacconfigv3.RBAC{Action: rbacconfigv3.RBAC_DENY, Policies: map[string]*rbacconfigv3.Policy{"all": {
		Permissions: []*rbacconfigv3.Permission{{Rule: &rbacconfigv3.Permission_Any{Any: true}}},
		Principals:  []*rbacconfigv3.Principal{{Identifier: &rbacconfigv3.Principal_SourceIp{SourceIp: cidr("0.0.0.0", 0)}}},
	}}}}
	denyAll := &hcmv3.HttpFilter{Name: "deny", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(t, deny)}}
	res = httpResources(t, rc("http.80", vhost("vh", []string{"known"}, toCluster("c", prefix("/")))), denyAll)
	if o := eval(t, res, Request{Host: "unknown", SourceIP: "1.1.1.1"}); o.Status != 403 || o.NoRoute {
		t.Errorf("filter-level deny before NR: %+v", o)
	}
}

func pathMatcher(s *matcherv3.StringMatcher) *matcherv3.PathMatcher {
	return &matcherv3.PathMatcher{Rule: &matcherv3.PathMatcher_Path{Path: s}}
}

func TestReportedAndUnknownFilters(t *testing.T) {
	rl := &localratelimitv3.LocalRateLimit{
		StatPrefix:    "rl",
		TokenBucket:   &typev3.TokenBucket{MaxTokens: 10, TokensPerFill: wrapperspb.UInt32(5), FillInterval: durationpb.New(60e9)},
		FilterEnabled: &corev3.RuntimeFractionalPercent{DefaultValue: &typev3.FractionalPercent{Numerator: 100}},
	}
	r := toCluster("r", prefix("/"))
	r.TypedPerFilterConfig = map[string]*anypb.Any{
		"envoy.filters.http.local_ratelimit": optional(t, rl),
		"envoy.filters.http.cors": optional(t, &corsv3.CorsPolicy{
			AllowOriginStringMatch: []*matcherv3.StringMatcher{sm("exact", "https://app.example.com")}, AllowMethods: "GET,POST",
		}),
	}
	filters := []*hcmv3.HttpFilter{
		{Name: "envoy.filters.http.cors", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(t, &corsv3.Cors{})}},
		{Name: "envoy.filters.http.local_ratelimit", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(t, &localratelimitv3.LocalRateLimit{StatPrefix: "rl"})}},
		{Name: "some.wasm.plugin", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(t, &structpb.Struct{})}},
		{Name: "ecds.plugin", ConfigType: &hcmv3.HttpFilter_ConfigDiscovery{ConfigDiscovery: &corev3.ExtensionConfigSource{
			TypeUrls: []string{"type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"}}}},
		{Name: "off-by-default", Disabled: true, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(t, &structpb.Struct{})}},
	}
	o := eval(t, httpResources(t, rc("http.80", vhost("vh", []string{"*"}, r)), filters...), Request{Host: "h"})
	if o.LocalRateLimit == nil || o.LocalRateLimit.MaxTokens != 10 || o.LocalRateLimit.TokensPerFill != 5 || o.LocalRateLimit.FillInterval != "1m0s" || o.LocalRateLimit.Enabled != "100%" {
		t.Errorf("local rate limit: %+v", o.LocalRateLimit)
	}
	if o.Cors == nil || o.Cors.AllowMethods != "GET,POST" || o.Cors.AllowOrigins[0] != "exact https://app.example.com" {
		t.Errorf("cors: %+v", o.Cors)
	}
	ns := strings.Join(o.NotSimulated, "\n")
	for _, want := range []string{"some.wasm.plugin", "ecds.plugin"} {
		if !strings.Contains(ns, want) {
			t.Errorf("%s not listed as not simulated: %v", want, o.NotSimulated)
		}
	}
	if strings.Contains(ns, "off-by-default") || o.Filters[4].Config != "disabled" {
		t.Errorf("a disabled filter is not run: %+v", o.Filters)
	}
	if !o.Forwarded {
		t.Errorf("reported filters do not stop the request")
	}
}

func TestCors(t *testing.T) {
	r := toCluster("r", prefix("/"))
	r.TypedPerFilterConfig = map[string]*anypb.Any{"envoy.filters.http.cors": optional(t, &corsv3.CorsPolicy{
		AllowOriginStringMatch: []*matcherv3.StringMatcher{sm("exact", "https://app.example.com")},
		AllowMethods:           "GET,POST",
		ExposeHeaders:          "x-trace",
		AllowCredentials:       wrapperspb.Bool(true),
	})}
	vh := vhost("vh", []string{"*"}, r)
	// Fields the route does not set come from the virtual host's policy.
	vh.TypedPerFilterConfig = map[string]*anypb.Any{"envoy.filters.http.cors": mustAny(t, &corsv3.CorsPolicy{
		AllowOriginStringMatch: []*matcherv3.StringMatcher{sm("exact", "https://ignored.example.com")},
		MaxAge:                 "600",
		AllowHeaders:           "*",
	})}
	res := httpResources(t, rc("http.80", vh),
		&hcmv3.HttpFilter{Name: "envoy.filters.http.cors", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(t, &corsv3.Cors{})}})

	preflight := func(origin string) Request {
		return Request{Host: "h", Method: "OPTIONS", Headers: []Header{
			{"origin", origin}, {"access-control-request-method", "POST"}, {"access-control-request-headers", "x-a,x-b"},
		}}
	}
	o := eval(t, res, preflight("https://app.example.com"))
	want := map[string]string{
		"access-control-allow-origin": "https://app.example.com", "access-control-allow-credentials": "true",
		"access-control-allow-methods": "GET,POST", "access-control-allow-headers": "x-a,x-b", "access-control-max-age": "600",
		// The reply passes the CORS filter's encodeHeaders too.
		"access-control-expose-headers": "x-trace",
	}
	if o.Status != 200 || o.Forwarded || !reflect.DeepEqual(o.ResponseHeaders, want) {
		t.Errorf("preflight: status %d forwarded %v headers %v", o.Status, o.Forwarded, o.ResponseHeaders)
	}
	if o := eval(t, res, preflight("https://evil.example.com")); !o.Forwarded || o.Status != 0 {
		t.Errorf("preflight from another origin is forwarded: %+v", o)
	}
	o = eval(t, res, Request{Host: "h", Headers: []Header{{"origin", "https://app.example.com"}}})
	if !o.Forwarded || o.ResponseHeaders["access-control-allow-origin"] != "https://app.example.com" || o.ResponseHeaders["access-control-expose-headers"] != "x-trace" {
		t.Errorf("simple CORS request: %v", o.ResponseHeaders)
	}
	o = eval(t, res, Request{Host: "h", Headers: []Header{{"origin", "https://evil.example.com"}}})
	if _, ok := o.ResponseHeaders["access-control-allow-origin"]; ok {
		t.Errorf("origin not allowed: %v", o.ResponseHeaders)
	}
	// forward_not_matching_preflights: false answers it, without allow-origin.
	r.TypedPerFilterConfig["envoy.filters.http.cors"] = optional(t, &corsv3.CorsPolicy{
		AllowOriginStringMatch:       []*matcherv3.StringMatcher{sm("exact", "https://app.example.com")},
		AllowMethods:                 "GET,POST",
		ForwardNotMatchingPreflights: wrapperspb.Bool(false),
	})
	o = eval(t, res, preflight("https://evil.example.com"))
	if _, ok := o.ResponseHeaders["access-control-allow-origin"]; o.Forwarded || o.Status != 200 || ok || o.ResponseHeaders["access-control-allow-methods"] != "GET,POST" {
		t.Errorf("preflight from another origin, not forwarded: status %d forwarded %v headers %v", o.Status, o.Forwarded, o.ResponseHeaders)
	}
}
