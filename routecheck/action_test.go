package routecheck

import (
	"reflect"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	uritmplmatchv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/path/match/uri_template/v3"
	urirewritev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/path/rewrite/uri_template/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func forward(name string, m *routev3.RouteMatch, set func(*routev3.RouteAction)) *routev3.Route {
	r := toCluster(name, m)
	set(r.GetRoute())
	return r
}

func regexSub(pattern, sub string) *matcherv3.RegexMatchAndSubstitute {
	return &matcherv3.RegexMatchAndSubstitute{Pattern: &matcherv3.RegexMatcher{Regex: pattern}, Substitution: sub}
}

func TestRewrites(t *testing.T) {
	tmpl := &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_PathMatchPolicy{PathMatchPolicy: &corev3.TypedExtensionConfig{
		Name:        "envoy.path.match.uri_template.uri_template_matcher",
		TypedConfig: mustAny(t, &uritmplmatchv3.UriTemplateMatchConfig{PathTemplate: "/tmpl/{lang}/{country}/**"}),
	}}}
	ciPrefix := prefix("/CI/")
	ciPrefix.CaseSensitive = wrapperspb.Bool(false)
	res := httpResources(t, rc("http.80", vhost("vh", []string{"*"},
		forward("prefix", prefix("/prefix/"), func(ra *routev3.RouteAction) { ra.PrefixRewrite = "/" }),
		forward("prefix-no-slash", prefix("/strip"), func(ra *routev3.RouteAction) { ra.PrefixRewrite = "/new" }),
		forward("exact", exactPath("/old"), func(ra *routev3.RouteAction) { ra.PrefixRewrite = "/new" }),
		forward("ci", ciPrefix, func(ra *routev3.RouteAction) { ra.PrefixRewrite = "/ci/" }),
		forward("regex-groups", prefix("/service/"), func(ra *routev3.RouteAction) {
			ra.RegexRewrite = regexSub(`^/service/([^/]+)(/.*)$`, `\2/instance/\1`)
		}),
		forward("regex-all", prefix("/xxx/"), func(ra *routev3.RouteAction) { ra.RegexRewrite = regexSub(`one`, `two`) }),
		forward("regex-match-prefix-rewrite", regexPath(`/re/[0-9]+`), func(ra *routev3.RouteAction) { ra.PrefixRewrite = "/numbers" }),
		forward("host-literal", prefix("/host"), func(ra *routev3.RouteAction) {
			ra.HostRewriteSpecifier = &routev3.RouteAction_HostRewriteLiteral{HostRewriteLiteral: "upstream.internal"}
			ra.AppendXForwardedHost = true
		}),
		forward("host-header", prefix("/hh"), func(ra *routev3.RouteAction) {
			ra.HostRewriteSpecifier = &routev3.RouteAction_HostRewriteHeader{HostRewriteHeader: "x-host"}
		}),
		forward("host-path-regex", prefix("/hp/"), func(ra *routev3.RouteAction) {
			ra.HostRewriteSpecifier = &routev3.RouteAction_HostRewritePathRegex{HostRewritePathRegex: regexSub(`^/hp/([^/]+)/.*$`, `\1`)}
		}),
		forward("template", tmpl, func(ra *routev3.RouteAction) {
			ra.PathRewritePolicy = &corev3.TypedExtensionConfig{
				Name:        "envoy.path.rewrite.uri_template.uri_template_rewriter",
				TypedConfig: mustAny(t, &urirewritev3.UriTemplateRewriteConfig{PathTemplateRewrite: "/{country}/{lang}"}),
			}
		}),
	)))
	for _, tc := range []struct {
		path, host string
		headers    []Header
		wantPath   string
		wantHost   string
	}{
		{"/prefix/a/b?x=1", "h", nil, "/a/b?x=1", "h"},
		{"/stripped", "h", nil, "/newped", "h"}, // prefix_rewrite replaces exactly the matched prefix
		{"/old?q", "h", nil, "/new?q", "h"},
		{"/ci/x", "h", nil, "/ci/x", "h"},
		{"/Ci/X", "h", nil, "/ci/X", "h"}, // case-insensitive prefix: its length is replaced
		{"/service/foo/v1/api", "h", nil, "/v1/api/instance/foo", "h"},
		{"/xxx/one/yyy/one/zzz?one", "h", nil, "/xxx/two/yyy/two/zzz?one", "h"}, // every match, query untouched
		{"/re/42?q=1", "h", nil, "/numbers?q=1", "h"},                           // regex match: the whole path is "matched"
		{"/host/x", "h:8080", nil, "/host/x", "upstream.internal"},
		{"/hh", "h", []Header{{"x-host", "from.header"}}, "/hh", "from.header"},
		{"/hh", "h", nil, "/hh", "h"}, // absent header: host unchanged
		{"/hp/envoyproxy.io/some/path", "h", nil, "/hp/envoyproxy.io/some/path", "envoyproxy.io"},
		{"/tmpl/en/us/rest?x", "h", nil, "/us/en?x", "h"},
	} {
		o := eval(t, res, Request{Host: tc.host, Path: tc.path, Headers: tc.headers})
		if o.UpstreamPath != tc.wantPath || o.UpstreamHost != tc.wantHost {
			t.Errorf("%s %s (route %s): upstream %s%s, want %s%s", tc.host, tc.path, o.Route, o.UpstreamHost, o.UpstreamPath, tc.wantHost, tc.wantPath)
		}
	}
	o := eval(t, res, Request{Host: "h:8080", Path: "/host"})
	if o.RequestHeaders["x-forwarded-host"] != "h:8080" {
		t.Errorf("append_x_forwarded_host: %v", o.RequestHeaders)
	}
}

func redirectRoute(name string, m *routev3.RouteMatch, rd *routev3.RedirectAction) *routev3.Route {
	return &routev3.Route{Name: name, Match: m, Action: &routev3.Route_Redirect{Redirect: rd}}
}

func TestRedirects(t *testing.T) {
	res := httpResources(t, rc("http.80", vhost("vh", []string{"*"},
		redirectRoute("https", prefix("/https"), &routev3.RedirectAction{
			SchemeRewriteSpecifier: &routev3.RedirectAction_HttpsRedirect{HttpsRedirect: true},
			ResponseCode:           routev3.RedirectAction_PERMANENT_REDIRECT,
		}),
		redirectRoute("scheme", prefix("/scheme"), &routev3.RedirectAction{
			SchemeRewriteSpecifier: &routev3.RedirectAction_SchemeRedirect{SchemeRedirect: "https"},
			ResponseCode:           routev3.RedirectAction_FOUND,
		}),
		redirectRoute("host-port", prefix("/hostport"), &routev3.RedirectAction{HostRedirect: "b.example.com", PortRedirect: 8443}),
		redirectRoute("port", prefix("/port"), &routev3.RedirectAction{PortRedirect: 8443, ResponseCode: routev3.RedirectAction_SEE_OTHER}),
		redirectRoute("path", prefix("/path"), &routev3.RedirectAction{
			PathRewriteSpecifier: &routev3.RedirectAction_PathRedirect{PathRedirect: "/new"},
			ResponseCode:         routev3.RedirectAction_TEMPORARY_REDIRECT,
		}),
		redirectRoute("path-with-query", prefix("/pq"), &routev3.RedirectAction{
			PathRewriteSpecifier: &routev3.RedirectAction_PathRedirect{PathRedirect: "/new?a=b"}, StripQuery: true,
		}),
		redirectRoute("strip", prefix("/strip"), &routev3.RedirectAction{
			PathRewriteSpecifier: &routev3.RedirectAction_PathRedirect{PathRedirect: "/stripped"}, StripQuery: true,
		}),
		redirectRoute("prefix", prefix("/old/"), &routev3.RedirectAction{
			PathRewriteSpecifier: &routev3.RedirectAction_PrefixRewrite{PrefixRewrite: "/new/"},
		}),
		redirectRoute("regex", prefix("/re/"), &routev3.RedirectAction{
			PathRewriteSpecifier: &routev3.RedirectAction_RegexRewrite{RegexRewrite: regexSub(`^/re/(\w+)$`, `/r/\1/index`)},
		}),
	)))
	for _, tc := range []struct {
		host, path string
		tls        bool
		status     int
		location   string
	}{
		{"a.example.com", "/https/x?q=1", false, 308, "https://a.example.com/https/x?q=1"},
		{"a.example.com:80", "/https", false, 308, "https://a.example.com/https"},        // :80 dropped with the scheme change
		{"a.example.com:8080", "/https", false, 308, "https://a.example.com:8080/https"}, // other ports kept
		{"a.example.com:80", "/scheme", false, 302, "https://a.example.com/scheme"},
		{"a.example.com:8080", "/hostport", false, 301, "http://b.example.com:8443/hostport"},
		{"a.example.com:8080", "/port", false, 303, "http://a.example.com:8443/port"}, // a new port replaces the old one
		{"a.example.com", "/path/x?q=1", false, 307, "http://a.example.com/new?q=1"},  // path_redirect keeps the query
		{"a.example.com", "/pq?q=1", false, 301, "http://a.example.com/new?a=b"},      // ... unless it has its own, never stripped
		{"a.example.com", "/strip?q=1", false, 301, "http://a.example.com/stripped"},
		{"a.example.com", "/old/a/b?q", false, 301, "http://a.example.com/new/a/b?q"},
		{"a.example.com", "/re/abc", false, 301, "http://a.example.com/r/abc/index"},
	} {
		o := eval(t, res, Request{Host: tc.host, Path: tc.path, TLS: tc.tls})
		if o.Redirect == nil || o.Redirect.Status != tc.status || o.Redirect.Location != tc.location || o.Status != tc.status {
			t.Errorf("%s%s (route %s): redirect %+v, want %d %s", tc.host, tc.path, o.Route, o.Redirect, tc.status, tc.location)
		}
		if o.Forwarded || o.Cluster != "" {
			t.Errorf("a redirect is not forwarded: %+v", o)
		}
	}
	// require_tls on the virtual host.
	vh := vhost("secure", []string{"*"}, toCluster("c", prefix("/")))
	vh.RequireTls = routev3.VirtualHost_ALL
	o := eval(t, httpResources(t, rc("http.80", vh)), Request{Host: "s.example.com", Path: "/a?b"})
	if o.Redirect == nil || o.Redirect.Location != "https://s.example.com/a?b" || o.Status != 301 {
		t.Errorf("require_tls: %+v", o.Redirect)
	}
	vh.RequireTls = routev3.VirtualHost_EXTERNAL_ONLY
	res = httpResources(t, rc("http.80", vh))
	if o := eval(t, res, Request{Host: "s", SourceIP: "10.1.2.3"}); o.Redirect != nil {
		t.Errorf("require_tls EXTERNAL_ONLY redirected an internal request")
	}
	if o := eval(t, res, Request{Host: "s", SourceIP: "203.0.113.9"}); o.Redirect == nil {
		t.Errorf("require_tls EXTERNAL_ONLY did not redirect an external request")
	}
}

func TestDirectResponse(t *testing.T) {
	direct := func(name string, status uint32, body string) *routev3.Route {
		d := &routev3.DirectResponseAction{Status: status}
		if body != "" {
			d.Body = &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: body}}
		}
		return &routev3.Route{Name: name, Match: prefix("/" + name), Action: &routev3.Route_DirectResponse{DirectResponse: d}}
	}
	res := httpResources(t, rc("http.80", vhost("vh", []string{"*"}, direct("teapot", 418, "short and stout"), direct("moved", 301, ""))))
	o := eval(t, res, Request{Host: "h", Path: "/teapot"})
	if o.DirectResponse == nil || o.DirectResponse.Status != 418 || o.DirectResponse.Body != "short and stout" || o.Status != 418 || o.Forwarded {
		t.Errorf("direct response: %+v", o.DirectResponse)
	}
	o = eval(t, res, Request{Host: "h:80", Path: "/moved?x"})
	if o.DirectResponse.Location != "http://h:80/moved?x" || o.ResponseHeaders["location"] != "http://h:80/moved?x" {
		t.Errorf("3xx direct response Location: %+v %v", o.DirectResponse, o.ResponseHeaders)
	}
}

func hvo(name, value string, action corev3.HeaderValueOption_HeaderAppendAction) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: name, Value: value}, AppendAction: action}
}

func TestHeaderMutations(t *testing.T) {
	const (
		appendAct   = corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD
		overwrite   = corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
		ifAbsent    = corev3.HeaderValueOption_ADD_IF_ABSENT
		ifExists    = corev3.HeaderValueOption_OVERWRITE_IF_EXISTS
		routeLevel  = "route"
		vhostLevel  = "virtual-host"
		configLevel = "route-config"
	)
	build := func(mostSpecificWins bool) Resources {
		r := toCluster("r", prefix("/"))
		r.RequestHeadersToAdd = []*corev3.HeaderValueOption{
			hvo("x-level", routeLevel, overwrite),
			hvo("x-append", "route", appendAct),
			hvo("x-absent", "added", ifAbsent),
			hvo("x-present", "not-added", ifAbsent),
			hvo("x-exists", "overwritten", ifExists),
			hvo("x-missing", "never", ifExists),
			hvo("x-empty", "", overwrite),
			{Header: &corev3.HeaderValue{Key: "x-kept-empty", Value: ""}, KeepEmptyValue: true},
			hvo("x-client", "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%", overwrite),
			hvo("x-copied", "%REQ(x-user)%-%%", overwrite),
			{Header: &corev3.HeaderValue{Key: "x-legacy", Value: "legacy"}, Append: wrapperspb.Bool(false)},
		}
		r.RequestHeadersToRemove = []string{"x-secret"}
		r.ResponseHeadersToAdd = []*corev3.HeaderValueOption{hvo("x-resp", routeLevel, overwrite)}
		r.ResponseHeadersToRemove = []string{"server"}
		vh := vhost("vh", []string{"*"}, r)
		vh.RequestHeadersToAdd = []*corev3.HeaderValueOption{hvo("x-level", vhostLevel, overwrite), hvo("x-append", "vhost", appendAct)}
		vh.ResponseHeadersToAdd = []*corev3.HeaderValueOption{hvo("x-resp", vhostLevel, overwrite)}
		c := rc("http.80", vh)
		c.RequestHeadersToAdd = []*corev3.HeaderValueOption{hvo("x-level", configLevel, overwrite)}
		c.RequestHeadersToRemove = []string{"x-route-config-removes"}
		c.MostSpecificHeaderMutationsWins = mostSpecificWins
		return httpResources(t, c)
	}
	req := Request{Host: "h", Headers: []Header{
		{"x-present", "orig"}, {"x-exists", "orig"}, {"x-secret", "s"}, {"x-user", "alice"}, {"x-append", "client"}, {"x-route-config-removes", "v"},
	}, ResponseHeaders: []Header{{"server", "upstream"}, {"x-resp", "upstream"}}, SourceIP: "192.0.2.7"}

	o := eval(t, build(false), req)
	want := map[string]string{
		"x-level":           configLevel, // least specific applied last: it wins
		"x-append":          "client,route,vhost",
		"x-absent":          "added",
		"x-present":         "orig",
		"x-exists":          "overwritten",
		"x-kept-empty":      "",
		"x-client":          "192.0.2.7",
		"x-copied":          "alice-%",
		"x-legacy":          "legacy",
		"x-user":            "alice",
		"x-forwarded-proto": "http",
	}
	for k, v := range want {
		if got, ok := o.RequestHeaders[k]; !ok || got != v {
			t.Errorf("request header %s = %q (present %v), want %q", k, got, ok, v)
		}
	}
	for _, k := range []string{"x-secret", "x-missing", "x-empty", "x-route-config-removes"} {
		if _, ok := o.RequestHeaders[k]; ok {
			t.Errorf("request header %s should be absent: %v", k, o.RequestHeaders)
		}
	}
	if !reflect.DeepEqual(o.RequestHeadersRemoved, []string{"x-secret", "x-route-config-removes"}) {
		t.Errorf("removed = %v", o.RequestHeadersRemoved)
	}
	if o.ResponseHeaders["x-resp"] != vhostLevel || o.ResponseHeaders["server"] != "" {
		t.Errorf("response headers = %v", o.ResponseHeaders)
	}
	if o.RequestHeaderOps[0].Level != "route" || o.RequestHeaderOps[0].Action != "remove" {
		t.Errorf("ops must start with the route's removals: %+v", o.RequestHeaderOps[0])
	}

	o = eval(t, build(true), req)
	if o.RequestHeaders["x-level"] != routeLevel || o.ResponseHeaders["x-resp"] != routeLevel {
		t.Errorf("most_specific_header_mutations_wins: %v / %v", o.RequestHeaders["x-level"], o.ResponseHeaders["x-resp"])
	}
	if o.RequestHeaders["x-append"] != "client,vhost,route" {
		t.Errorf("most specific last: x-append = %q", o.RequestHeaders["x-append"])
	}
}

func TestWeightedClustersMirrorsAndUpstreams(t *testing.T) {
	wc := &routev3.WeightedCluster{Clusters: []*routev3.WeightedCluster_ClusterWeight{
		{Name: "outbound|80||stable.demo.svc.cluster.local", Weight: wrapperspb.UInt32(90),
			RequestHeadersToAdd: []*corev3.HeaderValueOption{hvo("x-version", "stable", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD)}},
		{Name: "outbound|80||canary.demo.svc.cluster.local", Weight: wrapperspb.UInt32(10), HostRewriteSpecifier: &routev3.WeightedCluster_ClusterWeight_HostRewriteLiteral{HostRewriteLiteral: "canary.internal"}},
	}}
	r := &routev3.Route{Name: "demo/canary", Match: prefix("/"), Action: &routev3.Route_Route{Route: &routev3.RouteAction{
		ClusterSpecifier: &routev3.RouteAction_WeightedClusters{WeightedClusters: wc},
		Timeout:          durationpb.New(0),
		RetryPolicy:      &routev3.RetryPolicy{RetryOn: "5xx", NumRetries: wrapperspb.UInt32(3)},
		RequestMirrorPolicies: []*routev3.RouteAction_RequestMirrorPolicy{{Cluster: "outbound|80||shadow.demo.svc.cluster.local",
			RuntimeFraction: &corev3.RuntimeFractionalPercent{DefaultValue: &typev3.FractionalPercent{Numerator: 50}}}},
	}}}
	stable := &clusterv3.Cluster{Name: "outbound|80||stable.demo.svc.cluster.local", ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS}}
	canary := &clusterv3.Cluster{Name: "outbound|80||canary.demo.svc.cluster.local", ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS}}
	cla := func(name string, addrs ...string) *endpointv3.ClusterLoadAssignment {
		c := &endpointv3.ClusterLoadAssignment{ClusterName: name}
		var eps []*endpointv3.LbEndpoint
		for _, a := range addrs {
			eps = append(eps, &endpointv3.LbEndpoint{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
				Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
					Address: a, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 8080}}}}}}})
		}
		c.Endpoints = []*endpointv3.LocalityLbEndpoints{{LbEndpoints: eps}}
		return c
	}
	c := rc("http.80", vhost("vh", []string{"*"}, r))
	res := resources(listener("0.0.0.0_80", 80, false, chain(t, "", hcm(t, "http.80"))), c,
		stable, canary, cla(stable.Name, "10.0.0.1", "10.0.0.2"), cla(canary.Name))

	wantWeights := []ClusterWeight{{stable.Name, 90}, {canary.Name, 10}}
	for _, tc := range []struct {
		random  uint64
		cluster string
	}{{0, stable.Name}, {89, stable.Name}, {90, canary.Name}, {99, canary.Name}, {1234, stable.Name}, {1295, canary.Name}} {
		o := eval(t, res, Request{Host: "h", RandomValue: tc.random})
		if o.Cluster != tc.cluster || !reflect.DeepEqual(o.Weighted, wantWeights) {
			t.Errorf("random %d: cluster %s weights %v, want %s", tc.random, o.Cluster, o.Weighted, tc.cluster)
		}
	}
	o := eval(t, res, Request{Host: "h", RandomValue: 3})
	if o.Service != "demo/stable:80" || o.RequestHeaders["x-version"] != "stable" || o.UpstreamHost != "h" ||
		!reflect.DeepEqual(o.Endpoints, []string{"10.0.0.1:8080", "10.0.0.2:8080"}) || !o.Forwarded || o.Status != 0 {
		t.Errorf("stable: %+v", o)
	}
	if o.Timeout != "0s" || o.Retry == nil || o.Retry.NumRetries != 3 || o.Retry.RetryOn != "5xx" ||
		!reflect.DeepEqual(o.Mirrors, []string{"outbound|80||shadow.demo.svc.cluster.local"}) {
		t.Errorf("timeout / retry / mirrors: %s %+v %v", o.Timeout, o.Retry, o.Mirrors)
	}
	// The canary has no endpoints: Envoy answers 503 (no healthy upstream).
	o = eval(t, res, Request{Host: "h", RandomValue: 95})
	if !o.NoHealthyUpstream || o.Status != 503 || o.Forwarded || o.UpstreamHost != "canary.internal" {
		t.Errorf("canary: %+v", o)
	}
	// A cluster that is not served: cluster_not_found_response_code (503).
	delete(res[resourcev3.ClusterType], stable.Name)
	o = eval(t, res, Request{Host: "h"})
	if !o.ClusterMissing || o.Status != 503 || o.Forwarded {
		t.Errorf("missing cluster: %+v", o)
	}
	// Service names: Kubernetes Services and registry hosts.
	for in, want := range map[string]string{
		"outbound|8080||api.demo.svc.cluster.local":          "demo/api:8080",
		"outbound|80|v1|api.demo.svc.corp.example":           "demo/api:80",
		"outbound|8848||provider.DEFAULT-GROUP.public.nacos": "provider.DEFAULT-GROUP.public.nacos:8848",
		"static-cluster": "",
	} {
		if got, _ := serviceOf(in); got != want {
			t.Errorf("serviceOf(%q) = %q, want %q", in, got, want)
		}
	}
}
