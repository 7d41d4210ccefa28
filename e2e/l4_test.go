package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/hxds/hxds/routecheck"
)

// TestTCPAndTLSRoutesServed: TCPRoutes and TLSRoutes loaded from a config
// directory are served (what /debug/config_dump shows is what Envoys get),
// a TLS client's SNI selects its passthrough chain and backend, a TCP port
// proxies to its route's Services, and their status is on /debug/gatewayapi.
func TestTCPAndTLSRoutesServed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src, err := os.ReadFile(filepath.Join("..", "translate", "gatewayapi", "testdata", "l4.in.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "l4.yaml", string(src))
	h := startHxds(t, dir)

	code, dump := h.get(t, "/debug/config_dump?include_eds")
	if code != http.StatusOK {
		t.Fatalf("config_dump: %d %s", code, dump)
	}
	res, err := routecheck.ParseConfigDump(dump)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name              string
		req               routecheck.Request
		chain, cluster    string
		forwarded, closed bool
	}{
		{"SNI a.example.com is passed through", routecheck.Request{Port: 8443, TLS: true, SNI: "a.example.com"},
			"tls.8443.a.example.com", "outbound|443||web.shop.svc.cluster.local", true, false},
		{"the route without a usable backend refuses", routecheck.Request{Port: 9443, TLS: true, SNI: "x.example.org"},
			"tls.9443.x.example.org", "BlackHoleCluster", false, true},
		{"TCP port", routecheck.Request{Port: 9000},
			"tcp.9000", "outbound|5432||db.shop.svc.cluster.local", true, false},
	} {
		o, err := routecheck.Evaluate(res, tc.req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !o.TCPProxy || o.FilterChain != tc.chain || o.Cluster != tc.cluster || o.Forwarded != tc.forwarded || (o.ConnectionError != "") != tc.closed {
			t.Errorf("%s: %+v", tc.name, o)
		}
	}

	var doc struct {
		TLSRoutes []struct {
			Name   string `json:"name"`
			Status struct {
				Parents []struct {
					ControllerName string `json:"controllerName"`
					Conditions     []struct{ Type, Status, Reason string }
				} `json:"parents"`
			} `json:"status"`
		} `json:"tlsRoutes"`
		TCPRoutes []struct {
			Name string `json:"name"`
		} `json:"tcpRoutes"`
	}
	h.getJSON(t, "/debug/gatewayapi", &doc)
	if len(doc.TCPRoutes) == 0 || len(doc.TLSRoutes) == 0 {
		t.Fatalf("no TCPRoute/TLSRoute status: %+v", doc)
	}
	for _, r := range doc.TLSRoutes {
		if r.Name != "web" {
			continue
		}
		p := r.Status.Parents[0]
		if p.ControllerName != "higress.io/gateway-controller" || p.Conditions[0].Type != "Accepted" || p.Conditions[0].Status != "True" {
			t.Errorf("TLSRoute shop/web status: %+v", r.Status)
		}
	}
}
