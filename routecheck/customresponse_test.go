package routecheck

import (
	"strconv"
	"strings"
	"testing"

	xdscorev3 "github.com/cncf/xds/go/xds/core/v3"
	matcherxds "github.com/cncf/xds/go/xds/type/matcher/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	rbacconfigv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	customresponsev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/custom_response/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	localresponsev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/http/custom_response/local_response_policy/v3"
	redirectpolicyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/http/custom_response/redirect_policy/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

const crFilter = "envoy.filters.http.custom_response"

// crFilterFirst is the custom_response filter as hxds puts it in the HCM:
// first, with an empty configuration.
func crFilterFirst(t testing.TB) *hcmv3.HttpFilter {
	return &hcmv3.HttpFilter{Name: crFilter, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(t, &customresponsev3.CustomResponse{})}}
}

// statusMatcher is what hxds's errorFallback emits: one field matcher per
// status code, on HttpResponseStatusCodeMatchInput, all with action.
func statusMatcher(t testing.TB, action proto.Message, codes ...int) *customresponsev3.CustomResponse {
	act := &xdscorev3.TypedExtensionConfig{Name: "error-fallback", TypedConfig: mustAny(t, action)}
	input := &xdscorev3.TypedExtensionConfig{Name: "status-code", TypedConfig: mustAny(t, &matcherv3.HttpResponseStatusCodeMatchInput{})}
	list := &matcherxds.Matcher_MatcherList{}
	for _, c := range codes {
		list.Matchers = append(list.Matchers, &matcherxds.Matcher_MatcherList_FieldMatcher{
			Predicate: &matcherxds.Matcher_MatcherList_Predicate{MatchType: &matcherxds.Matcher_MatcherList_Predicate_SinglePredicate_{
				SinglePredicate: &matcherxds.Matcher_MatcherList_Predicate_SinglePredicate{
					Input: input,
					Matcher: &matcherxds.Matcher_MatcherList_Predicate_SinglePredicate_ValueMatch{ValueMatch: &matcherxds.StringMatcher{
						MatchPattern: &matcherxds.StringMatcher_Exact{Exact: strconv.Itoa(c)},
					}},
				},
			}},
			OnMatch: &matcherxds.Matcher_OnMatch{OnMatch: &matcherxds.Matcher_OnMatch_Action{Action: act}},
		})
	}
	return &customresponsev3.CustomResponse{CustomResponseMatcher: &matcherxds.Matcher{
		MatcherType: &matcherxds.Matcher_MatcherList_{MatcherList: list},
	}}
}

// fallbackRedirect is hxds's redirect policy: to path with two headers.
func fallbackRedirect(path string) *redirectpolicyv3.RedirectPolicy {
	return &redirectpolicyv3.RedirectPolicy{
		RedirectActionSpecifier: &redirectpolicyv3.RedirectPolicy_RedirectAction{RedirectAction: &routev3.RedirectAction{
			PathRewriteSpecifier: &routev3.RedirectAction_PathRedirect{PathRedirect: path},
		}},
		RequestHeadersToAdd: []*corev3.HeaderValueOption{
			{Header: &corev3.HeaderValue{Key: "x-envoy-route-name", Value: "app-fallback"}, AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD},
			{Header: &corev3.HeaderValue{Key: "x-envoy-fallback-service", Value: "default/fallback"}, AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD},
		},
	}
}

func withCustomResponse(t testing.TB, r *routev3.Route, cr *customresponsev3.CustomResponse) *routev3.Route {
	r.TypedPerFilterConfig = map[string]*anypb.Any{crFilter: optional(t, cr)}
	return r
}

// fallbackRoute matches only "/" with the two headers, as hxds's <route>-fallback.
func fallbackRoute() *routev3.Route {
	m := exactPath("/")
	m.Headers = []*routev3.HeaderMatcher{
		{Name: "x-envoy-route-name", HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: sm("exact", "app-fallback")}},
		{Name: "x-envoy-fallback-service", HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: sm("exact", "default/fallback")}},
	}
	return toCluster("fallback", m)
}

func customResponseResources(t *testing.T) Resources {
	app := withCustomResponse(t, toCluster("app", prefix("/")), statusMatcher(t, fallbackRedirect("/"), 404, 503))
	lost := withCustomResponse(t, toCluster("lost", prefix("/api")), statusMatcher(t, fallbackRedirect("/nowhere"), 404))
	rewritten := withCustomResponse(t, toCluster("rewritten", prefix("/rewritten")), statusMatcher(t, fallbackRedirect("/"), 404))
	rewritten.GetRoute().HostRewriteSpecifier = &routev3.RouteAction_HostRewriteLiteral{HostRewriteLiteral: "internal.example.com"}
	routes := rc("http.80",
		vhost("errors", []string{"errors.example.com"}, fallbackRoute(), rewritten, app),
		// No route for /nowhere on this host.
		vhost("lost", []string{"lost.example.com"}, lost),
	)
	return httpResources(t, routes, crFilterFirst(t))
}

func TestCustomResponseRedirect(t *testing.T) {
	res := customResponseResources(t)
	for _, tc := range []struct {
		name     string
		req      Request
		redirect bool
		path     string
	}{
		{"404 is redirected", Request{Host: "errors.example.com", Path: "/api", UpstreamStatus: 404}, true, "/"},
		{"503 is redirected, the query kept", Request{Host: "errors.example.com", Path: "/api?q=1", UpstreamStatus: 503}, true, "/?q=1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := eval(t, res, tc.req)
			if o.Route != "app" || !o.Forwarded {
				t.Fatalf("original request: route %q forwarded %v", o.Route, o.Forwarded)
			}
			cr := o.CustomResponse
			if cr == nil || cr.Redirected == nil {
				t.Fatalf("no redirect: %+v (filters %+v)", cr, o.Filters)
			}
			if cr.Policy != "redirect" || cr.Config != "route" || cr.Name != "error-fallback" || cr.OriginalStatus != tc.req.UpstreamStatus {
				t.Errorf("custom response %+v", cr)
			}
			// Without status_code the client keeps the original status.
			if cr.Status != tc.req.UpstreamStatus {
				t.Errorf("status %d, want %d", cr.Status, tc.req.UpstreamStatus)
			}
			if cr.URI != "http://errors.example.com"+tc.path {
				t.Errorf("URI %q", cr.URI)
			}
			r := cr.Redirected
			if r.Route != "fallback" || r.Cluster != "fallback" || r.UpstreamPath != tc.path || !r.Forwarded {
				t.Errorf("redirected: route %q cluster %q path %q forwarded %v", r.Route, r.Cluster, r.UpstreamPath, r.Forwarded)
			}
			if r.RequestHeaders["x-envoy-route-name"] != "app-fallback" || r.RequestHeaders["x-envoy-fallback-service"] != "default/fallback" {
				t.Errorf("redirected request headers %v", r.RequestHeaders)
			}
			if r.Listener != o.Listener || r.RouteConfig != o.RouteConfig {
				t.Errorf("redirected on listener %q route config %q", r.Listener, r.RouteConfig)
			}
			if r.CustomResponse != nil {
				t.Errorf("the redirected stream was redirected again: %+v", r.CustomResponse)
			}
			if !strings.Contains(o.Filters[0].Result, "internally redirected to http://errors.example.com") {
				t.Errorf("filter result %q", o.Filters[0].Result)
			}
		})
	}

	t.Run("a status no policy matches goes through", func(t *testing.T) {
		o := eval(t, res, Request{Host: "errors.example.com", Path: "/api", UpstreamStatus: 500})
		if o.CustomResponse != nil {
			t.Fatalf("custom response %+v", o.CustomResponse)
		}
		if o.Filters[0].Result != "no custom response matches status 500" {
			t.Errorf("filter result %q", o.Filters[0].Result)
		}
	})
	t.Run("without upstreamStatus nothing is matched", func(t *testing.T) {
		o := eval(t, res, Request{Host: "errors.example.com", Path: "/api"})
		if o.CustomResponse != nil {
			t.Fatalf("custom response %+v", o.CustomResponse)
		}
		if !strings.Contains(strings.Join(o.Notes, "\n"), "set upstreamStatus") {
			t.Errorf("notes %q", o.Notes)
		}
	})
	t.Run("a redirect to a path no route matches keeps the original response", func(t *testing.T) {
		o := eval(t, res, Request{Host: "lost.example.com", Path: "/api", UpstreamStatus: 404})
		cr := o.CustomResponse
		if cr == nil || cr.Redirected != nil || cr.Status != 404 {
			t.Fatalf("custom response %+v", cr)
		}
		if !strings.Contains(cr.NotRedirected, "no route of virtual host lost matches lost.example.com /nowhere") {
			t.Errorf("not redirected because %q", cr.NotRedirected)
		}
	})
	t.Run("the redirect starts from the host the router rewrote in place", func(t *testing.T) {
		o := eval(t, res, Request{Host: "errors.example.com", Path: "/rewritten", UpstreamStatus: 404})
		cr := o.CustomResponse
		if o.UpstreamHost != "internal.example.com" || cr == nil || cr.Redirected != nil {
			t.Fatalf("upstream host %q, custom response %+v", o.UpstreamHost, cr)
		}
		if cr.URI != "http://internal.example.com/" || !strings.Contains(cr.NotRedirected, `no virtual host of http.80 matches host "internal.example.com"`) {
			t.Errorf("URI %q, not redirected because %q", cr.URI, cr.NotRedirected)
		}
	})
	t.Run("a client can send the fallback headers itself", func(t *testing.T) {
		o := eval(t, res, Request{Host: "errors.example.com", Path: "/", Headers: []Header{
			{Name: "x-envoy-route-name", Value: "app-fallback"}, {Name: "x-envoy-fallback-service", Value: "default/fallback"},
		}})
		if o.Route != "fallback" {
			t.Errorf("route %q", o.Route)
		}
	})
}

// TestCustomResponseLocalReplies: Envoy's own answers pass the encoder
// filters too; the status_code and response headers of the policy apply to
// the redirected response; the most specific matching configuration wins.
func TestCustomResponseLocalReplies(t *testing.T) {
	redirect := fallbackRedirect("/")
	redirect.StatusCode = wrapperspb.UInt32(200)
	redirect.ResponseHeadersToAdd = []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "x-custom", Value: "fallback"}}}
	local := &localresponsev3.LocalResponsePolicy{
		Body:                 &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: "sorry"}},
		StatusCode:           wrapperspb.UInt32(599),
		ResponseHeadersToAdd: []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "x-local", Value: "yes"}}},
	}
	missing := withCustomResponse(t, toCluster("missing", prefix("/missing")), statusMatcher(t, redirect, 503))
	direct := withCustomResponse(t, &routev3.Route{Name: "direct", Match: prefix("/direct"), Action: &routev3.Route_DirectResponse{
		DirectResponse: &routev3.DirectResponseAction{Status: 418},
	}}, statusMatcher(t, redirect, 404))
	vh := vhost("errors", []string{"*"}, fallbackRoute(), missing, direct)
	vh.TypedPerFilterConfig = map[string]*anypb.Any{crFilter: optional(t, statusMatcher(t, local, 418))}
	rbacFilter := &hcmv3.HttpFilter{Name: "envoy.filters.http.rbac", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(t, &rbacv3.RBAC{
		Rules: &rbacconfigv3.RBAC{Action: rbacconfigv3.RBAC_DENY, Policies: map[string]*rbacconfigv3.Policy{"blocked": {
			Permissions: []*rbacconfigv3.Permission{{Rule: &rbacconfigv3.Permission_UrlPath{UrlPath: pathMatcher(sm("prefix", "/direct/blocked"))}}},
			Principals:  []*rbacconfigv3.Principal{{Identifier: &rbacconfigv3.Principal_Any{Any: true}}},
		}}},
	})}}
	routes := rc("http.80", vh)
	fallback := &clusterv3.Cluster{Name: "fallback", ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC},
		LoadAssignment: &endpointv3.ClusterLoadAssignment{ClusterName: "fallback", Endpoints: []*endpointv3.LocalityLbEndpoints{{
			LbEndpoints: []*endpointv3.LbEndpoint{{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
				Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
					Address: "10.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 8080},
				}}},
			}}}},
		}}}}
	res := resources(listener("0.0.0.0_80", 80, false, chain(t, "", hcm(t, routes.Name, crFilterFirst(t), rbacFilter))), routes, fallback)

	t.Run("a missing cluster's 503 is redirected", func(t *testing.T) {
		o := eval(t, res, Request{Host: "errors.example.com", Path: "/missing", ResponseHeaders: []Header{{Name: "server", Value: "app"}}})
		cr := o.CustomResponse
		if !o.ClusterMissing || o.Status != 503 || cr == nil || cr.Redirected == nil {
			t.Fatalf("status %d, custom response %+v", o.Status, cr)
		}
		if cr.OriginalStatus != 503 || cr.Status != 200 || cr.ResponseHeaders["x-custom"] != "fallback" {
			t.Errorf("custom response %+v", cr)
		}
		if r := cr.Redirected; r.Route != "fallback" || r.Endpoints[0] != "10.0.0.1:8080" || !r.Forwarded {
			t.Errorf("redirected %+v", r)
		}
	})
	t.Run("the most specific configuration that matches wins", func(t *testing.T) {
		// 418 matches only the virtual host's local policy.
		o := eval(t, res, Request{Host: "errors.example.com", Path: "/direct"})
		cr := o.CustomResponse
		if cr == nil || cr.Policy != "local" || cr.Config != "virtual-host" || cr.Status != 599 || cr.Body != "sorry" || cr.ResponseHeaders["x-local"] != "yes" {
			t.Fatalf("custom response %+v", cr)
		}
	})
	t.Run("a denial after the filter is matched too", func(t *testing.T) {
		o := eval(t, res, Request{Host: "errors.example.com", Path: "/direct/blocked"})
		if o.Denied == nil || o.CustomResponse != nil {
			t.Fatalf("denied %+v, custom response %+v", o.Denied, o.CustomResponse)
		}
		if o.Filters[0].Result != "no custom response matches status 403" {
			t.Errorf("filter result %q", o.Filters[0].Result)
		}
	})
	t.Run("no redirect for a local reply sent by a filter before it", func(t *testing.T) {
		routes := rc("http.80", vhost("errors", []string{"*"}, fallbackRoute(),
			withCustomResponse(t, toCluster("direct", prefix("/direct")), statusMatcher(t, redirect, 403))))
		res := resources(listener("0.0.0.0_80", 80, false, chain(t, "", hcm(t, routes.Name, rbacFilter, crFilterFirst(t)))), routes, fallback)
		o := eval(t, res, Request{Host: "errors.example.com", Path: "/direct/blocked"})
		cr := o.CustomResponse
		if o.Denied == nil || cr == nil || cr.Redirected != nil || cr.Status != 403 || cr.NotRedirected == "" {
			t.Fatalf("denied %+v, custom response %+v", o.Denied, cr)
		}
	})
}

func TestCustomResponseCompare(t *testing.T) {
	res := customResponseResources(t)
	tf, err := ParseTests([]byte(`
tests:
- name: redirected
  request: {host: errors.example.com, path: /api, upstreamStatus: 404}
  expect:
    route: app
    customResponse:
      applied: true
      policy: redirect
      status: 404
      redirected: true
      route: fallback
      cluster: fallback
      upstreamPath: /
      requestHeaders: {add: {x-envoy-route-name: app-fallback}}
- name: not applied
  request: {host: errors.example.com, path: /api, upstreamStatus: 500}
  expect: {route: app, customResponse: {applied: false}}
- name: not redirected
  request: {host: lost.example.com, path: /api, upstreamStatus: 404}
  expect: {customResponse: {redirected: false, status: 404}}
- name: wrong
  request: {host: errors.example.com, path: /api, upstreamStatus: 500}
  expect: {customResponse: {route: fallback}}
`))
	if err != nil {
		t.Fatal(err)
	}
	results := RunTests(res, tf)
	for _, r := range results[:3] {
		if r.Result != Pass {
			t.Errorf("%s: %s %v", r.Name, r.Error, r.Mismatches)
		}
	}
	if r := results[3]; r.Result != Fail || len(r.Mismatches) != 1 || r.Mismatches[0].Got != "no custom response" {
		t.Errorf("wrong: %+v", r)
	}
}
