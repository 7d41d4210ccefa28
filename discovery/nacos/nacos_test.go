package nacos

// Parser and model tests: no server involved.

import (
	"math"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/hxds/hxds/discovery"
	"github.com/hxds/hxds/internal/api"
)

func TestHost(t *testing.T) {
	for _, tc := range []struct{ svc, group, ns, want string }{
		{"service-provider", "DEFAULT_GROUP", "public", "service-provider.DEFAULT-GROUP.public.nacos"},
		{"providers:com.dubbo.demo.api.DemoService:1.0.0:dev", "DEFAULT_GROUP", "public", "providers:com.dubbo.demo.api.DemoService:1.0.0:dev.DEFAULT-GROUP.public.nacos"},
		{"my_svc", "a_b_c", "ns_1", "my_svc.a-b-c.ns-1.nacos"}, // '_' kept in the service name
	} {
		if got := Host(tc.svc, tc.group, tc.ns); got != tc.want {
			t.Errorf("Host(%q,%q,%q) = %q, want %q", tc.svc, tc.group, tc.ns, got, tc.want)
		}
	}
	for name, skip := range map[string]bool{"": true, "  ": true, "consumers:com.x.Y": true, "providers:com.x.Y": false, "svc": false} {
		if skipService(name) != skip {
			t.Errorf("skipService(%q) = %v", name, !skip)
		}
	}
}

func TestWeight(t *testing.T) {
	for in, want := range map[float64]uint32{0: 1, -1: 1, 0.4: 1, 0.5: 1, 1.5: 2, 2.49: 2, 100: 100, 1e9: maxWeight, math.Inf(1): maxWeight, math.Inf(-1): 1, math.NaN(): 1} {
		if got := weight(in); got != want {
			t.Errorf("weight(%v) = %d, want %d", in, got, want)
		}
	}
}

func TestValidAddress(t *testing.T) {
	for s, want := range map[string]bool{
		"10.0.0.1": true, "::1": true, "fe80::1": true, "a.example.com": true, "svc_1.local": true, "localhost": true,
		"": false, " ": false, "a b": false, "-a.com": false, "a..b": false, "http://x": false, "x:80": false,
		strings.Repeat("a", 64) + ".com": false, "ünï.com": false,
	} {
		if got := validAddress(s); got != want {
			t.Errorf("validAddress(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestBuildService(t *testing.T) {
	log := zap.NewNop()
	ok := func(ip string, port float64, w float64, md map[string]string) rawInstance {
		return rawInstance{IP: ip, Port: port, Weight: w, Healthy: true, Enabled: true, Metadata: md}
	}
	prev := &discovery.Service{Host: "h", Port: 7000, Protocol: discovery.ProtocolGRPC}
	for _, tc := range []struct {
		name  string
		raws  []rawInstance
		vport *api.RegistryVport
		prev  *discovery.Service
		want  string // "port proto resolution endpoints(weight)" or "error: ..."
	}{
		{"basic", []rawInstance{ok("10.0.0.2", 80, 1, nil), ok("10.0.0.1", 81, 2, nil)}, nil, nil, "81 HTTP static 10.0.0.1:81(2),10.0.0.2:80(1)"},
		{"vport default", []rawInstance{ok("10.0.0.1", 81, 1, nil)}, &api.RegistryVport{Default: 9}, nil, "9 HTTP static 10.0.0.1:81(1)"},
		{"protocol from first sorted", []rawInstance{ok("10.0.0.9", 80, 1, map[string]string{"protocol": "http"}), ok("10.0.0.1", 50051, 1, map[string]string{"protocol": "grpc"})}, nil, nil, "50051 GRPC static 10.0.0.1:50051(1),10.0.0.9:80(1)"},
		{"unsupported protocol", []rawInstance{ok("10.0.0.1", 80, 1, map[string]string{"protocol": "smtp"})}, nil, nil, "error: protocol"},
		{"loop guard all", []rawInstance{ok("10.0.0.1", 80, 1, map[string]string{"register-resource": "mcp-bridge"})}, nil, nil, "error: loop guard"},
		{"loop guard some", []rawInstance{ok("10.0.0.1", 80, 1, map[string]string{"register-resource": "mcp-bridge"}), ok("10.0.0.2", 80, 1, nil)}, nil, nil, "80 HTTP static 10.0.0.2:80(1)"},
		{"unhealthy and disabled", []rawInstance{{IP: "10.0.0.1", Port: 80, Healthy: false, Enabled: true}, {IP: "10.0.0.2", Port: 80, Healthy: true, Enabled: false}}, nil, nil, "0 HTTP static "},
		{"empty keeps prev", nil, nil, prev, "7000 GRPC static "},
		{"empty with vport", []rawInstance{}, &api.RegistryVport{Default: 8080}, nil, "8080 HTTP static "},
		{"dns", []rawInstance{ok("10.0.0.1", 80, 1, nil), ok("a.example.com", 80, 1, nil)}, nil, nil, "80 HTTP dns 10.0.0.1:80(1),a.example.com:80(1)"},
		{"bad ports and addresses", []rawInstance{ok("10.0.0.1", 0, 1, nil), ok("10.0.0.1", 70000, 1, nil), ok("10.0.0.1", 80.5, 1, nil), ok("10.0.0.1", -1, 1, nil), ok("", 80, 1, nil), ok("a b", 80, 1, nil), ok(" 10.0.0.3 ", 80, 1, nil)}, nil, nil, "80 HTTP static 10.0.0.3:80(1)"},
		{"duplicates", []rawInstance{ok("10.0.0.1", 80, 1, nil), ok("10.0.0.1", 80, 5, nil)}, nil, nil, "80 HTTP static 10.0.0.1:80(1)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc, err := buildService("h", tc.raws, tc.vport, tc.prev, log)
			var got string
			if err != nil {
				got = "error: " + err.Error()
				if !strings.HasPrefix(tc.want, "error: ") || !strings.Contains(got, strings.TrimPrefix(tc.want, "error: ")) {
					t.Fatalf("got %q, want %q", got, tc.want)
				}
				return
			}
			res := "static"
			if svc.Resolution == discovery.DNS {
				res = "dns"
			}
			var eps []string
			for _, in := range svc.Instances {
				eps = append(eps, in.Address+":"+uitoa(uint64(in.Port))+"("+uitoa(uint64(in.Weight))+")")
			}
			got = uitoa(uint64(svc.Port)) + " " + string(svc.Protocol) + " " + res + " " + strings.Join(eps, ",")
			if got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParseV1Payloads(t *testing.T) {
	for _, tc := range []struct {
		body  string
		count int
		names string
		err   bool
	}{
		{`{"count":2,"doms":["a","b"]}`, 2, "a,b", false},
		{`{"count":"2","doms":["a",3,null,{"x":1},"b"]}`, 0, "a,,b", false}, // null decodes as ""
		{`{"count":1e400}`, 0, "", false},                                   // unusable count: 0
		{`{"count":-1,"doms":null}`, 0, "", false},
		{`{}`, 0, "", false},
		{`[]`, 0, "", true},
		{``, 0, "", true},
		{`{"doms":"abc"}`, 0, "", true},
	} {
		count, names, err := parseServiceList([]byte(tc.body))
		if (err != nil) != tc.err || (err == nil && (count != tc.count || strings.Join(names, ",") != tc.names)) {
			t.Errorf("parseServiceList(%s) = %d %q %v", tc.body, count, names, err)
		}
	}
	raws, err := parseInstanceList([]byte(`{"hosts":[
		{"ip":"10.0.0.1","port":80,"weight":2.5,"healthy":true,"enabled":true,"metadata":{"a":"b","n":1,"o":{"x":[1]},"z":null}},
		{"ip":"10.0.0.2","port":"80"},
		7,
		{"ip":"10.0.0.3","port":81}
	]}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(raws) != 2 || raws[0].Metadata["a"] != "b" || raws[0].Metadata["n"] != "1" || raws[0].Metadata["o"] != `{"x":[1]}` ||
		raws[0].Weight != 2.5 || !raws[0].Healthy || raws[1].Weight != 1 || raws[1].Healthy || !raws[1].Enabled {
		t.Errorf("parseInstanceList = %+v", raws)
	}
	for _, bad := range []string{`{"hosts":{}}`, `null x`, `{"hosts":[`} {
		if _, err := parseInstanceList([]byte(bad)); err == nil {
			t.Errorf("parseInstanceList(%s): no error", bad)
		}
	}
}

func TestAddressServerParsing(t *testing.T) {
	got := parseServerList([]byte("10.0.0.1\n10.0.0.2:8849\n\n# x\n[::1]:8848\n10.0.0.1\nbad host\n10.0.0.3:99999\n10.0.0.4:65000\nh.example:abc\n"), 8848)
	var s []string
	for _, a := range got {
		s = append(s, a.String())
	}
	if strings.Join(s, " ") != "10.0.0.1:8848 10.0.0.2:8849 [::1]:8848" {
		t.Errorf("parseServerList = %v", s)
	}
	for in, want := range map[string]string{
		"addr.example:8080":          "http://addr.example:8080/nacos/serverlist?namespace=ns+1",
		"https://addr.example/base/": "https://addr.example/base/nacos/serverlist?namespace=ns+1",
	} {
		if got, err := addressServerURL(in, "ns 1"); err != nil || got != want {
			t.Errorf("addressServerURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"ftp://x", "http://", "http://[::1"} {
		if _, err := addressServerURL(bad, "public"); err == nil {
			t.Errorf("addressServerURL(%q): no error", bad)
		}
	}
	list := []serverAddr{{"a", 1}, {"b", 1}}
	for range 20 {
		if p := pick(list, serverAddr{"a", 1}); p != (serverAddr{"b", 1}) {
			t.Fatalf("pick avoided nothing: %v", p)
		}
	}
}

func TestSettings(t *testing.T) {
	s, err := parseSettings(discovery.Config{Registry: api.RegistryConfig{Type: TypeV2, Domain: "h", Port: 8848,
		NacosGroups: []string{" G ", "G", "", "H"}, NacosRefreshInterval: int64(time.Hour)}}, TypeV2)
	if err != nil {
		t.Fatal(err)
	}
	if s.namespaceID != "public" || s.namespace != "public" || strings.Join(s.groups, ",") != "G,H" || s.refresh != MaxRefresh {
		t.Errorf("settings = %+v", s)
	}
	s, _ = parseSettings(discovery.Config{Registry: api.RegistryConfig{Type: TypeV2, Domain: "h", Port: 8848, NacosNamespaceID: "id"}}, TypeV2)
	if s.namespace != "id" || s.refresh != DefaultRefresh {
		t.Errorf("namespace name defaults to the id: %+v", s)
	}
}

// FuzzParseV1 feeds arbitrary bytes to the Nacos 1.x OpenAPI parsers and
// the service model: nothing may panic, and what is published is sane.
func FuzzParseV1(f *testing.F) {
	f.Add([]byte(`{"count":2,"doms":["a","b"]}`))
	f.Add([]byte(`{"name":"DEFAULT_GROUP@@svc","hosts":[{"ip":"10.0.0.1","port":8080,"weight":1.0,"healthy":true,"enabled":true,"metadata":{"protocol":"grpc"}}]}`))
	f.Add([]byte(`{"hosts":[{"ip":"a.example","port":65535,"weight":1e308,"healthy":true,"metadata":{"register-resource":"mcp-bridge"}},{}]}`))
	f.Add([]byte(`{"hosts":[{"ip":"::1","port":-1,"weight":-0,"healthy":true,"enabled":false,"metadata":{"protocol":null}}]}`))
	log := zap.NewNop()
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _, _ = parseServiceList(b)
		_ = parseServerList(b, 8848)
		raws, err := parseInstanceList(b)
		if err != nil {
			return
		}
		svc, err := buildService("h", raws, &api.RegistryVport{Default: 1}, nil, log)
		if err != nil {
			return
		}
		for _, in := range svc.Instances {
			if in.Weight < 1 || in.Weight > maxWeight || in.Port < 1 || in.Port > 65535 || !validAddress(in.Address) {
				t.Fatalf("bad instance %+v", in)
			}
		}
	})
}
