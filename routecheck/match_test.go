package routecheck

import (
	"strings"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	uritmplmatchv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/path/match/uri_template/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func TestVirtualHostSelection(t *testing.T) {
	catch := func(name string, domains ...string) *routev3.VirtualHost {
		return vhost(name, domains, toCluster(name, prefix("/")))
	}
	res := httpResources(t, rc("http.80",
		catch("exact", "www.foo.com", "www.foo.com:8080"),
		catch("suffix-short", "*.foo.com"),
		catch("suffix-long", "*-bar.foo.com"),
		catch("prefix-short", "foo.*"),
		catch("prefix-long", "foo.bar.*"),
		catch("default", "*"),
	))
	for _, tc := range []struct{ host, want string }{
		{"www.foo.com", "exact"},
		{"WWW.Foo.COM", "exact"},            // case-insensitive
		{"www.foo.com:8080", "exact"},       // the domain lists host:port
		{"www.foo.com:80", "default"},       // the port is part of the host: neither www.foo.com nor *.foo.com
		{"baz-bar.foo.com", "suffix-long"},  // longest suffix wins
		{"baz.foo.com", "suffix-short"},     // *-bar.foo.com does not match
		{"-bar.foo.com", "suffix-short"},    // a wildcard never matches the empty string
		{"a.b.foo.com", "suffix-short"},     // suffix wildcards match any depth
		{"foo.bar.com", "prefix-long"},      // no suffix match: longest prefix wins
		{"foo.example.org", "prefix-short"}, // prefix wildcard
		{"foo.com", "prefix-short"},         // *.foo.com needs a label before .foo.com; foo.* matches
		{"bar.com", "default"},
		{"other.example.org", "default"}, // nothing else: "*"
		{"www.foo.com.", "default"},      // no trailing-dot stripping by default
	} {
		o := eval(t, res, Request{Host: tc.host, Path: "/"})
		if o.VirtualHost != tc.want {
			t.Errorf("host %q: virtual host %q, want %q", tc.host, o.VirtualHost, tc.want)
		}
	}

	// Exact beats wildcards even when a wildcard is longer.
	res = httpResources(t, rc("http.80", catch("wild", "*.b.example.com"), catch("exact", "a.b.example.com")))
	if o := eval(t, res, Request{Host: "a.b.example.com"}); o.VirtualHost != "exact" {
		t.Errorf("exact must win over wildcards, got %q", o.VirtualHost)
	}
	// Without "*" an unknown host is a 404 (NR).
	o := eval(t, res, Request{Host: "unknown.example.com"})
	if !o.NoRoute || o.Status != 404 || o.VirtualHost != "" {
		t.Errorf("unknown host: want 404 without virtual host, got %+v", o)
	}
	// A request without Host never reaches routing: 400.
	res = httpResources(t, rc("http.80", catch("default", "*")))
	if o := eval(t, res, Request{}); o.Status != 400 || o.NoRoute || o.VirtualHost != "" {
		t.Errorf("missing Host: %+v", o)
	}
	// ignore_port_in_host_matching.
	r := rc("http.80", catch("exact", "www.foo.com"), catch("default", "*"))
	r.IgnorePortInHostMatching = true
	if o := eval(t, httpResources(t, r), Request{Host: "www.foo.com:8443"}); o.VirtualHost != "exact" {
		t.Errorf("ignore_port_in_host_matching: got %q", o.VirtualHost)
	}
}

func TestRouteOrderAndPathMatching(t *testing.T) {
	ci := prefix("/CaSe")
	ci.CaseSensitive = wrapperspb.Bool(false)
	sep := &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_PathSeparatedPrefix{PathSeparatedPrefix: "/sep"}}
	tmpl := &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_PathMatchPolicy{PathMatchPolicy: &corev3.TypedExtensionConfig{
		Name:        "envoy.path.match.uri_template.uri_template_matcher",
		TypedConfig: mustAny(t, &uritmplmatchv3.UriTemplateMatchConfig{PathTemplate: "/videos/{id}/{file=**}.m3u8"}),
	}}}
	res := httpResources(t, rc("http.80", vhost("vh", []string{"*"},
		toCluster("exact-api", exactPath("/api")),
		toCluster("api-prefix", prefix("/api/")),
		toCluster("regex", regexPath(`/v[0-9]+/items/[a-z]+`)),
		toCluster("case-insensitive", ci),
		toCluster("separated", sep),
		toCluster("template", tmpl),
		toCluster("shadowed", prefix("/api/v1")), // after /api/: never reached
		toCluster("catch-all", prefix("/")),
	)))
	for _, tc := range []struct{ path, want string }{
		{"/api", "exact-api"},
		{"/api?x=1", "exact-api"},   // the query string is not part of path matching
		{"/api/", "api-prefix"},     // exact path does not match a trailing slash
		{"/api/v1/x", "api-prefix"}, // first match wins: /api/v1 is shadowed
		{"/API", "catch-all"},       // case-sensitive by default
		{"/apix", "catch-all"},      // prefix /api/ needs the slash
		{"/v2/items/abc", "regex"},  // full match
		{"/v2/items/abc/", "catch-all"},
		{"/x/v2/items/abc", "catch-all"}, // regex is anchored
		{"/case/x", "case-insensitive"},
		{"/CASE", "case-insensitive"},
		{"/sep", "separated"},
		{"/sep/x", "separated"},
		{"/sep?q", "separated"},
		{"/separate", "catch-all"}, // path_separated_prefix needs a / boundary
		{"/videos/12/a/b/master.m3u8", "template"},
		{"/videos/12/master.mpd", "catch-all"},
	} {
		o := eval(t, res, Request{Host: "h", Path: tc.path})
		if o.Route != tc.want {
			t.Errorf("path %q: route %q (%s), want %q", tc.path, o.Route, o.Match, tc.want)
		}
	}
	// No route at all: 404 NR with the virtual host known.
	res = httpResources(t, rc("http.80", vhost("vh", []string{"*"}, toCluster("only", exactPath("/only")))))
	o := eval(t, res, Request{Host: "h", Path: "/other"})
	if !o.NoRoute || o.Status != 404 || o.VirtualHost != "vh" || o.Forwarded {
		t.Errorf("no route: %+v", o)
	}
}

func TestHeaderMatching(t *testing.T) {
	hm := func(name string, set func(*routev3.HeaderMatcher)) *routev3.HeaderMatcher {
		h := &routev3.HeaderMatcher{Name: name}
		set(h)
		return h
	}
	str := func(m *routev3.HeaderMatcher, s *routev3.HeaderMatcher_StringMatch) { m.HeaderMatchSpecifier = s }
	cases := []struct {
		name    string
		matcher *routev3.HeaderMatcher
		headers []Header
		host    string
		method  string
		want    bool
	}{
		{"exact", hm("x", func(m *routev3.HeaderMatcher) {
			str(m, &routev3.HeaderMatcher_StringMatch{StringMatch: sm("exact", "a")})
		}), []Header{{"x", "a"}}, "", "", true},
		{"exact mismatch", hm("x", func(m *routev3.HeaderMatcher) {
			str(m, &routev3.HeaderMatcher_StringMatch{StringMatch: sm("exact", "a")})
		}), []Header{{"x", "b"}}, "", "", false},
		{"header names are case-insensitive", hm("X-Thing", func(m *routev3.HeaderMatcher) {
			str(m, &routev3.HeaderMatcher_StringMatch{StringMatch: sm("exact", "a")})
		}), []Header{{"x-thing", "a"}}, "", "", true},
		{"values are case-sensitive", hm("x", func(m *routev3.HeaderMatcher) {
			str(m, &routev3.HeaderMatcher_StringMatch{StringMatch: sm("exact", "a")})
		}), []Header{{"x", "A"}}, "", "", false},
		{"ignore_case", hm("x", func(m *routev3.HeaderMatcher) {
			s := sm("exact", "a")
			s.IgnoreCase = true
			str(m, &routev3.HeaderMatcher_StringMatch{StringMatch: s})
		}), []Header{{"x", "A"}}, "", "", true},
		{"prefix", hm("x", func(m *routev3.HeaderMatcher) {
			str(m, &routev3.HeaderMatcher_StringMatch{StringMatch: sm("prefix", "ab")})
		}), []Header{{"x", "abc"}}, "", "", true},
		{"suffix", hm("x", func(m *routev3.HeaderMatcher) {
			str(m, &routev3.HeaderMatcher_StringMatch{StringMatch: sm("suffix", "bc")})
		}), []Header{{"x", "abc"}}, "", "", true},
		{"contains", hm("x", func(m *routev3.HeaderMatcher) {
			str(m, &routev3.HeaderMatcher_StringMatch{StringMatch: sm("contains", "b")})
		}), []Header{{"x", "abc"}}, "", "", true},
		{"regex is a full match", hm("x", func(m *routev3.HeaderMatcher) {
			str(m, &routev3.HeaderMatcher_StringMatch{StringMatch: sm("regex", `\d{3}`)})
		}), []Header{{"x", "1234"}}, "", "", false},
		{"inverted regex", hm("x", func(m *routev3.HeaderMatcher) {
			str(m, &routev3.HeaderMatcher_StringMatch{StringMatch: sm("regex", `\d{3}`)})
			m.InvertMatch = true
		}), []Header{{"x", "1234"}}, "", "", true},
		{"inverted exact on a missing header does not match", hm("x", func(m *routev3.HeaderMatcher) {
			str(m, &routev3.HeaderMatcher_StringMatch{StringMatch: sm("exact", "a")})
			m.InvertMatch = true
		}), nil, "", "", false},
		{"treat_missing_header_as_empty", hm("x", func(m *routev3.HeaderMatcher) {
			str(m, &routev3.HeaderMatcher_StringMatch{StringMatch: sm("regex", `^$`)})
			m.TreatMissingHeaderAsEmpty = true
		}), nil, "", "", true},
		{"present", hm("x", func(m *routev3.HeaderMatcher) {
			m.HeaderMatchSpecifier = &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}
		}), []Header{{"x", ""}}, "", "", true},
		{"present on a missing header", hm("x", func(m *routev3.HeaderMatcher) {
			m.HeaderMatchSpecifier = &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}
		}), nil, "", "", false},
		{"present_match false: absent", hm("x", func(m *routev3.HeaderMatcher) {
			m.HeaderMatchSpecifier = &routev3.HeaderMatcher_PresentMatch{PresentMatch: false}
		}), nil, "", "", true},
		{"inverted present: absent", hm("x", func(m *routev3.HeaderMatcher) {
			m.HeaderMatchSpecifier = &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}
			m.InvertMatch = true
		}), nil, "", "", true},
		{"no specifier is a presence check", hm("x", func(*routev3.HeaderMatcher) {}), []Header{{"x", "1"}}, "", "", true},
		{"range", hm("x", func(m *routev3.HeaderMatcher) {
			m.HeaderMatchSpecifier = &routev3.HeaderMatcher_RangeMatch{RangeMatch: &typev3.Int64Range{Start: -10, End: 0}}
		}), []Header{{"x", "-1"}}, "", "", true},
		{"range end is exclusive", hm("x", func(m *routev3.HeaderMatcher) {
			m.HeaderMatchSpecifier = &routev3.HeaderMatcher_RangeMatch{RangeMatch: &typev3.Int64Range{Start: -10, End: 0}}
		}), []Header{{"x", "0"}}, "", "", false},
		{"repeated headers are joined with a comma", hm("x", func(m *routev3.HeaderMatcher) {
			str(m, &routev3.HeaderMatcher_StringMatch{StringMatch: sm("exact", "a,b")})
		}), []Header{{"x", "a"}, {"x", "b"}}, "", "", true},
		{":method", hm(":method", func(m *routev3.HeaderMatcher) {
			str(m, &routev3.HeaderMatcher_StringMatch{StringMatch: sm("exact", "POST")})
		}), nil, "", "POST", true},
		{":method GET default", hm(":method", func(m *routev3.HeaderMatcher) {
			str(m, &routev3.HeaderMatcher_StringMatch{StringMatch: sm("exact", "POST")})
		}), nil, "", "", false},
		{":authority", hm(":authority", func(m *routev3.HeaderMatcher) {
			str(m, &routev3.HeaderMatcher_StringMatch{StringMatch: sm("exact", "a.example.com:8080")})
		}), nil, "a.example.com:8080", "", true},
		{":path has the query", hm(":path", func(m *routev3.HeaderMatcher) {
			str(m, &routev3.HeaderMatcher_StringMatch{StringMatch: sm("suffix", "?q=1")})
		}), nil, "", "", true},
		{"deprecated exact_match", hm("x", func(m *routev3.HeaderMatcher) {
			m.HeaderMatchSpecifier = &routev3.HeaderMatcher_ExactMatch{ExactMatch: "v"}
		}), []Header{{"x", "v"}}, "", "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := prefix("/")
			m.Headers = []*routev3.HeaderMatcher{tc.matcher}
			res := httpResources(t, rc("http.80", vhost("vh", []string{"*"}, toCluster("matched", m), toCluster("fallback", prefix("/")))))
			host := tc.host
			if host == "" {
				host = "h"
			}
			o := eval(t, res, Request{Host: host, Path: "/p?q=1", Method: tc.method, Headers: tc.headers})
			if got := o.Route == "matched"; got != tc.want {
				t.Errorf("matched = %v, want %v (route %q)", got, tc.want, o.Route)
			}
		})
	}
}

func TestQueryAndOtherMatchers(t *testing.T) {
	q := func(name string, s *routev3.QueryParameterMatcher) *routev3.RouteMatch {
		m := prefix("/")
		s.Name = name
		m.QueryParameters = []*routev3.QueryParameterMatcher{s}
		return m
	}
	grpc := prefix("/")
	grpc.Grpc = &routev3.RouteMatch_GrpcRouteMatchOptions{}
	cookie := prefix("/")
	cookie.Cookies = []*routev3.CookieMatcher{{Name: "user", StringMatch: sm("exact", "beta")}}
	rt := prefix("/")
	rt.RuntimeFraction = &corev3.RuntimeFractionalPercent{DefaultValue: &typev3.FractionalPercent{Numerator: 1}}
	tls := prefix("/")
	tls.TlsContext = &routev3.RouteMatch_TlsContextMatchOptions{Presented: wrapperspb.Bool(true)}
	res := httpResources(t, rc("http.80", vhost("vh", []string{"*"},
		toCluster("q-exact", q("v", &routev3.QueryParameterMatcher{QueryParameterMatchSpecifier: &routev3.QueryParameterMatcher_StringMatch{StringMatch: sm("exact", "2")}})),
		toCluster("q-present", q("debug", &routev3.QueryParameterMatcher{QueryParameterMatchSpecifier: &routev3.QueryParameterMatcher_PresentMatch{PresentMatch: true}})),
		toCluster("grpc", grpc),
		toCluster("cookie", cookie),
		toCluster("client-cert", tls),
		toCluster("runtime", rt),
	)))
	for _, tc := range []struct {
		path    string
		headers []Header
		_       bool
		want    string
	}{
		{"/?v=2", nil, false, "q-exact"},
		{"/?a=1&v=2", nil, false, "q-exact"},
		{"/?v=2&v=3", nil, false, "q-exact"}, // the first value counts
		{"/?v=3&v=2", nil, false, "runtime"},
		{"/?debug", nil, false, "q-present"},
		{"/?debug=", nil, false, "q-present"},
		{"/", []Header{{"content-type", "application/grpc"}}, false, "grpc"},
		{"/", []Header{{"content-type", "application/grpc+proto"}}, false, "grpc"},
		{"/", []Header{{"content-type", "application/grpc-web"}}, false, "runtime"}, // grpc-web is not gRPC
		{"/", []Header{{"cookie", "a=1; user=beta"}}, false, "cookie"},
		{"/", nil, false, "runtime"}, // runtime fractions are taken as matching
	} {
		want := tc.want
		o := eval(t, res, Request{Host: "h", Path: tc.path, Headers: tc.headers})
		if o.Route != want {
			t.Errorf("%s %v: route %q, want %q", tc.path, tc.headers, o.Route, want)
		}
		if want == "runtime" && !strings.Contains(strings.Join(o.Notes, ";"), "runtime_fraction") {
			t.Errorf("runtime fraction not noted: %v", o.Notes)
		}
	}
	// tls_context: a client certificate over TLS (a TLS listener serves the same table).
	tlsRes := resources(listener("0.0.0.0_443", 443, true, tlsChain(t, "tls", hcm(t, "http.80"))), res[resourcev3.RouteType]["http.80"])
	if o := eval(t, tlsRes, Request{Host: "h", TLS: true, ClientCert: true}); o.Route != "client-cert" {
		t.Errorf("tls_context presented: route %q", o.Route)
	}
	if o := eval(t, tlsRes, Request{Host: "h", TLS: true}); o.Route != "runtime" {
		t.Errorf("tls_context without a certificate: route %q", o.Route)
	}
	// Matchers that cannot be decided are errors, not guesses.
	dm := prefix("/")
	dm.DynamicMetadata = append(dm.DynamicMetadata, nil)
	res = httpResources(t, rc("http.80", vhost("vh", []string{"*"}, toCluster("dm", dm))))
	if _, err := Evaluate(res, Request{Host: "h"}); err == nil || !strings.Contains(err.Error(), "dynamic metadata") {
		t.Errorf("dynamic metadata: err = %v", err)
	}
}

func TestRegexHelpers(t *testing.T) {
	for _, tc := range []struct{ sub, want string }{
		{`\2/instance/\1`, "${2}/instance/${1}"},
		{`a$b`, "a$$b"},
		{`\\x`, `\x`},
		{`\0`, "${0}"},
	} {
		if got := re2Template(tc.sub); got != tc.want {
			t.Errorf("re2Template(%q) = %q, want %q", tc.sub, got, tc.want)
		}
	}
	if normalizePath("/a/./b/../c/%2e%2e/d?x=/../") != "/a/d?x=/../" {
		t.Errorf("normalizePath: %q", normalizePath("/a/./b/../c/%2e%2e/d?x=/../"))
	}
	if normalizePath(`/a\b/..`) != "/a/" {
		t.Errorf("normalizePath backslash: %q", normalizePath(`/a\b/..`))
	}
	if mergeSlashes("//a///b?x=//") != "/a/b?x=//" {
		t.Errorf("mergeSlashes: %q", mergeSlashes("//a///b?x=//"))
	}
}

func TestConnectionManagerRequestHandling(t *testing.T) {
	table := rc("http.80", vhost("vh", []string{"a.example.com"},
		toCluster("admin", prefix("/admin")), toCluster("api", prefix("/api/")), toCluster("rest", prefix("/"))))
	build := func(set func(*hcmv3.HttpConnectionManager)) Resources {
		h := hcm(t, "http.80")
		set(h)
		return resources(listener("0.0.0.0_80", 80, false, chain(t, "", h)), table)
	}
	norm := build(func(h *hcmv3.HttpConnectionManager) {
		h.NormalizePath = wrapperspb.Bool(true)
		h.MergeSlashes = true
	})
	for path, want := range map[string]string{
		"/api/../admin":   "admin", // dot segments are resolved before routing
		"/api/./x":        "api",
		"//api//x":        "api", // merge_slashes
		`/api\x`:          "api",
		"/x/%2e%2e/admin": "admin",
	} {
		o := eval(t, norm, Request{Host: "a.example.com", Path: path})
		if o.Route != want || o.Path == "" {
			t.Errorf("normalized %q: route %q (path %q), want %q", path, o.Route, o.Path, want)
		}
	}
	raw := build(func(*hcmv3.HttpConnectionManager) {})
	if o := eval(t, raw, Request{Host: "a.example.com", Path: "/api/../admin"}); o.Route != "api" {
		t.Errorf("without normalize_path: route %q", o.Route)
	}
	reject := build(func(h *hcmv3.HttpConnectionManager) {
		h.PathWithEscapedSlashesAction = hcmv3.HttpConnectionManager_REJECT_REQUEST
	})
	if o := eval(t, reject, Request{Host: "a.example.com", Path: "/api%2Fx"}); o.Status != 400 || o.Route != "" {
		t.Errorf("escaped slashes rejected: %+v", o)
	}
	unescape := build(func(h *hcmv3.HttpConnectionManager) {
		h.PathWithEscapedSlashesAction = hcmv3.HttpConnectionManager_UNESCAPE_AND_FORWARD
	})
	if o := eval(t, unescape, Request{Host: "a.example.com", Path: "/api%2Fx"}); o.Route != "api" || o.UpstreamPath != "/api/x" {
		t.Errorf("escaped slashes unescaped: %+v", o)
	}
	redirect := build(func(h *hcmv3.HttpConnectionManager) {
		h.PathWithEscapedSlashesAction = hcmv3.HttpConnectionManager_UNESCAPE_AND_REDIRECT
	})
	if o := eval(t, redirect, Request{Host: "a.example.com", Path: "/api%2fx"}); o.Status != 307 || o.Redirect.Location != "/api/x" {
		t.Errorf("escaped slashes redirected: %+v", o)
	}
	strip := build(func(h *hcmv3.HttpConnectionManager) {
		h.StripPortMode = &hcmv3.HttpConnectionManager_StripAnyHostPort{StripAnyHostPort: true}
	})
	if o := eval(t, strip, Request{Host: "a.example.com:9999", Path: "/"}); o.VirtualHost != "vh" || o.UpstreamHost != "a.example.com" {
		t.Errorf("strip_any_host_port: %+v", o)
	}
	matching := build(func(h *hcmv3.HttpConnectionManager) { h.StripMatchingHostPort = true })
	if o := eval(t, matching, Request{Host: "a.example.com:80"}); o.VirtualHost != "vh" {
		t.Errorf("strip_matching_host_port: %+v", o)
	}
	if o := eval(t, matching, Request{Host: "a.example.com:81"}); !o.NoRoute {
		t.Errorf("strip_matching_host_port keeps other ports: %+v", o)
	}
	// x-forwarded-proto and x-envoy-internal of an edge proxy.
	o := eval(t, raw, Request{Host: "a.example.com", SourceIP: "10.0.0.1", Headers: []Header{{"x-forwarded-proto", "https"}, {"x-forwarded-for", "192.0.2.1"}}})
	if o.RequestHeaders["x-forwarded-proto"] != "http" || o.RequestHeaders["x-envoy-internal"] != "true" || o.RequestHeaders["x-forwarded-for"] != "192.0.2.1,10.0.0.1" {
		t.Errorf("edge headers: %v", o.RequestHeaders)
	}
	o = eval(t, raw, Request{Host: "a.example.com", SourceIP: "198.51.100.1", Headers: []Header{{"x-envoy-internal", "true"}}})
	if _, spoofed := o.RequestHeaders["x-envoy-internal"]; spoofed {
		t.Errorf("x-envoy-internal from an external client must be removed: %v", o.RequestHeaders)
	}
}
