package envoy

import (
	"testing"

	"github.com/hxds/hxds/translate/ir"
)

// TestDerivedRedirectPort covers the Gateway API's port rule for redirects
// without a port on listeners of both schemes, default and other ports.
func TestDerivedRedirectPort(t *testing.T) {
	http80, http8080 := servedOn{port: 80}, servedOn{port: 8080}
	https443, https8443 := servedOn{port: 443, tls: true}, servedOn{port: 8443, tls: true}
	cases := []struct {
		name   string
		scheme string
		host   string
		on     servedOn
		want   uint32
	}{
		{"same scheme on default port keeps the portless Host", "", "", http80, 0},
		{"same scheme on default port with a host", "", "example.org", http80, 0},
		{"listener port is written with a host", "", "example.org", http8080, 8080},
		{"listener port is written without a host", "", "", http8080, 8080},
		{"https listener on 443", "", "example.org", https443, 0},
		{"https listener on 8443", "", "example.org", https8443, 8443},
		{"to https from 80: default port, Host port dropped by Envoy", "https", "", http80, 0},
		{"to https from 8080 with a host", "https", "example.org", http8080, 0},
		{"to https from 8080 without a host: the Host's 8080 must go", "https", "", http8080, 443},
		{"to http from 443", "http", "", https443, 0},
		{"explicit same scheme uses its well-known port", "http", "example.org", http8080, 0},
		{"explicit same scheme without host on another port", "http", "", http8080, 80},
		{"unknown scheme keeps the listener port", "ftp", "example.org", http8080, 8080},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := &ir.Redirect{Scheme: c.scheme, Host: c.host, DerivePort: true}
			if got := buildRedirect(r, c.on).GetPortRedirect(); got != c.want {
				t.Errorf("port_redirect = %d, want %d", got, c.want)
			}
		})
	}
	// Ingress redirects keep Envoy's own behaviour.
	if got := buildRedirect(&ir.Redirect{Scheme: "https"}, http8080).GetPortRedirect(); got != 0 {
		t.Errorf("non-Gateway redirect got port_redirect %d", got)
	}
}
