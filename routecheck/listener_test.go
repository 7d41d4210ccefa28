package routecheck

import (
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func TestFilterChainSelection(t *testing.T) {
	tables := []*routev3.RouteConfiguration{}
	chainFor := func(name string, serverNames ...string) *listenerv3.FilterChain {
		tables = append(tables, rc("https.443."+name, vhost(name, []string{"*"}, toCluster(name, prefix("/")))))
		return tlsChain(t, "https.443."+name, hcm(t, "https.443."+name), serverNames...)
	}
	l := listener("0.0.0.0_443", 443, true,
		chainFor("exact", "api.example.com", "www.example.com"),
		chainFor("wild", "*.example.com"),
		chainFor("wild-deeper", "*.eu.example.com"),
		chainFor("fallback"),
	)
	res := resources(l, tables[0])
	for _, table := range tables {
		res[resourcev3.RouteType][table.Name] = table
	}
	for _, tc := range []struct {
		sni  string
		want string
	}{
		{"api.example.com", "https.443.exact"},
		{"API.example.com", "https.443.exact"},
		{"x.example.com", "https.443.wild"},
		{"a.b.example.com", "https.443.wild"}, // wildcards match any depth
		{"x.eu.example.com", "https.443.wild-deeper"},
		{"example.com", "https.443.fallback"},
		{"", "https.443.fallback"}, // no SNI: the chain without server names
		{"other.org", "https.443.fallback"},
	} {
		sni := tc.sni
		o := eval(t, res, Request{Host: "h", TLS: true, SNI: sni})
		if o.FilterChain != tc.want || o.Certificates[0] != "cert-"+tc.want || o.RouteConfig != tc.want {
			t.Errorf("SNI %q: chain %q (%s), want %q", tc.sni, o.FilterChain, o.ConnectionError, tc.want)
		}
		if !o.Forwarded {
			t.Errorf("SNI %q: %+v", tc.sni, o)
		}
	}

	// Without a catch-all chain an unknown SNI (or none) gets no chain.
	res = resources(listener("0.0.0.0_443", 443, true, tlsChain(t, "only", hcm(t, "x"), "a.example.com")))
	for _, sni := range []string{"b.example.com", ""} {
		o := eval(t, res, Request{Host: "h", TLS: true, SNI: sni})
		if !o.NoFilterChain || o.ConnectionError == "" || o.Forwarded || o.Status != 0 {
			t.Errorf("SNI %q: want no filter chain, got %+v", sni, o)
		}
	}
	// Plain text to a TLS chain, TLS to a plain chain, no listener on the port.
	o := eval(t, res, Request{Host: "h", Port: 443, SNI: "a.example.com"})
	if o.FilterChain != "" || !o.NoFilterChain {
		// plain text has no SNI: the only chain needs one
		t.Errorf("plain text to SNI-only listener: %+v", o)
	}
	catchAll := resources(listener("0.0.0.0_443", 443, true, tlsChain(t, "tls", hcm(t, "x"))))
	if o := eval(t, catchAll, Request{Host: "h", Port: 443}); !strings.Contains(o.ConnectionError, "plain text to a TLS filter chain") {
		t.Errorf("plain text to TLS: %+v", o)
	}
	plain := resources(listener("0.0.0.0_80", 80, false, chain(t, "plain", hcm(t, "x"))))
	if o := eval(t, plain, Request{Host: "h", Port: 80, TLS: true}); !strings.Contains(o.ConnectionError, "TLS to a plain-text") {
		t.Errorf("TLS to plain text: %+v", o)
	}
	if o := eval(t, plain, Request{Host: "h", Port: 8080}); !o.NoListener || o.ConnectionError == "" {
		t.Errorf("no listener: %+v", o)
	}
	// Without tls_inspector the SNI is not seen: the SNI chain never matches.
	noInspector := resources(listener("0.0.0.0_443", 443, false,
		tlsChain(t, "sni", hcm(t, "x"), "a.example.com"), tlsChain(t, "default", hcm(t, "x"))))
	if o, _ := Evaluate(noInspector, Request{Host: "h", TLS: true, SNI: "a.example.com"}); o.FilterChain != "default" {
		t.Errorf("without tls_inspector: chain %q", o.FilterChain)
	}
	// Exact SNI wins even if a later criterion then fails: no backtracking.
	strict := tlsChain(t, "exact-h2-only", hcm(t, "x"), "a.example.com")
	strict.FilterChainMatch.ApplicationProtocols = []string{"h2"}
	nb := resources(listener("0.0.0.0_443", 443, true, strict, tlsChain(t, "wild", hcm(t, "x"), "*.example.com")))
	if o, _ := Evaluate(nb, Request{Host: "h", TLS: true, SNI: "a.example.com", ALPN: []string{"http/1.1"}}); !o.NoFilterChain {
		t.Errorf("no backtracking to the wildcard chain: %+v", o)
	}
	// destination_port and source prefixes.
	byPort := chain(t, "port-8443", hcm(t, "x"))
	byPort.FilterChainMatch = &listenerv3.FilterChainMatch{DestinationPort: wrapperspb.UInt32(8443)}
	bySource := chain(t, "office", hcm(t, "x"))
	bySource.FilterChainMatch = &listenerv3.FilterChainMatch{SourcePrefixRanges: []*corev3.CidrRange{cidr("192.168.0.0", 16)}}
	l2 := listener("0.0.0.0_8443", 8443, false, chain(t, "any", hcm(t, "x")), bySource)
	l2.FilterChains = append(l2.FilterChains, byPort)
	res2 := resources(l2)
	if o, _ := Evaluate(res2, Request{Host: "h", Port: 8443, SourceIP: "192.168.1.1"}); o.FilterChain != "port-8443" {
		t.Errorf("destination_port is matched first: %q", o.FilterChain)
	}
	l2.FilterChains = l2.FilterChains[:2]
	if o, _ := Evaluate(res2, Request{Host: "h", Port: 8443, SourceIP: "192.168.1.1"}); o.FilterChain != "office" {
		t.Errorf("source prefix: %q", o.FilterChain)
	}
	if o, _ := Evaluate(res2, Request{Host: "h", Port: 8443, SourceIP: "10.0.0.1"}); o.FilterChain != "any" {
		t.Errorf("source prefix fallback: %q", o.FilterChain)
	}
}
