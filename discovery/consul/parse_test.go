package consul

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/hashicorp/consul/api"

	"github.com/hxds/hxds/discovery"
	_ "github.com/hxds/hxds/internal/testutil"
)

func TestHost(t *testing.T) {
	for _, c := range []struct{ svc, dc, want string }{
		{"httpbin", "dc1", "httpbin.dc1.consul"},
		{"my_svc", "dc_east", "my-svc.dc-east.consul"},
		{"svc", "", "svc..consul"},
		{"Mixed_Case", "DC1", "Mixed-Case.DC1.consul"},
	} {
		if got := Host(c.svc, c.dc); got != c.want {
			t.Errorf("Host(%q, %q) = %q, want %q", c.svc, c.dc, got, c.want)
		}
	}
}

func TestTagMatches(t *testing.T) {
	for _, c := range []struct {
		filter string
		tags   []string
		want   bool
	}{
		{"", nil, true},
		{"", []string{"x"}, true},
		{"higress", nil, false},
		{"higress", []string{"a", "HIGRESS"}, true},
		{"Higress", []string{" higress "}, true},
		{"higress", []string{"higress-x"}, false},
	} {
		if got := tagMatches(c.filter, c.tags); got != c.want {
			t.Errorf("tagMatches(%q, %q) = %v, want %v", c.filter, c.tags, got, c.want)
		}
	}
}

func entry(addr string, port int, nodeAddr string, status string, meta map[string]string, weight int) *api.ServiceEntry {
	return &api.ServiceEntry{
		Node:    &api.Node{Node: "n", Address: nodeAddr},
		Service: &api.AgentService{Service: "s", Address: addr, Port: port, Meta: meta, Weights: api.AgentWeights{Passing: weight, Warning: 1}},
		Checks: api.HealthChecks{
			{CheckID: "serfHealth", Status: api.HealthPassing},
			{CheckID: "service:s", Status: status},
		},
	}
}

func TestBuildService(t *testing.T) {
	const host = "s.dc1.consul"
	for _, c := range []struct {
		name    string
		entries []*api.ServiceEntry
		want    discovery.Service
		skip    bool
		hasPort bool
		dropped int
	}{
		{
			name: "passing instances sorted, weights and metadata",
			entries: []*api.ServiceEntry{
				entry("10.0.0.2", 8080, "192.168.0.1", api.HealthPassing, map[string]string{"protocol": "grpc", "v": "2"}, 3),
				entry("10.0.0.1", 8081, "192.168.0.1", api.HealthPassing, map[string]string{"protocol": "grpc"}, 0),
			},
			want: discovery.Service{Host: host, Port: 8081, Protocol: discovery.ProtocolGRPC, Instances: []discovery.Instance{
				{Address: "10.0.0.1", Port: 8081, Weight: 1, Metadata: map[string]string{"protocol": "grpc"}},
				{Address: "10.0.0.2", Port: 8080, Weight: 3, Metadata: map[string]string{"protocol": "grpc", "v": "2"}},
			}},
			hasPort: true,
		},
		{
			name: "critical and warning instances are not published; port from a failing one",
			entries: []*api.ServiceEntry{
				entry("10.0.0.1", 9000, "", api.HealthCritical, nil, 1),
				entry("10.0.0.2", 9000, "", api.HealthWarning, nil, 1),
			},
			want:    discovery.Service{Host: host, Port: 9000, Protocol: discovery.ProtocolHTTP},
			hasPort: true,
		},
		{
			name:    "node address when the service has none",
			entries: []*api.ServiceEntry{entry("", 80, "172.16.0.9", api.HealthPassing, nil, 1)},
			want: discovery.Service{Host: host, Port: 80, Protocol: discovery.ProtocolHTTP, Instances: []discovery.Instance{
				{Address: "172.16.0.9", Port: 80, Weight: 1},
			}},
			hasPort: true,
		},
		{
			name:    "host name address: DNS resolution",
			entries: []*api.ServiceEntry{entry("backend.example.com", 443, "", api.HealthPassing, map[string]string{"protocol": "https"}, 1)},
			want: discovery.Service{Host: host, Port: 443, Protocol: discovery.ProtocolHTTPS, Resolution: discovery.DNS, Instances: []discovery.Instance{
				{Address: "backend.example.com", Port: 443, Weight: 1, Metadata: map[string]string{"protocol": "https"}},
			}},
			hasPort: true,
		},
		{
			name:    "unsupported protocol skips the service",
			entries: []*api.ServiceEntry{entry("10.0.0.1", 80, "", api.HealthPassing, map[string]string{"protocol": "carrier-pigeon"}, 1)},
			skip:    true,
		},
		{
			name: "maintenance is not passing",
			entries: []*api.ServiceEntry{{
				Node:    &api.Node{Address: "10.0.0.1"},
				Service: &api.AgentService{Port: 80},
				Checks:  api.HealthChecks{{CheckID: api.ServiceMaintPrefix + "s", Status: api.HealthPassing}},
			}},
			want:    discovery.Service{Host: host, Port: 80, Protocol: discovery.ProtocolHTTP},
			hasPort: true,
		},
		{
			name: "duplicate endpoints collapse; huge weight capped",
			entries: []*api.ServiceEntry{
				entry("10.0.0.1", 80, "", api.HealthPassing, nil, 1<<40),
				entry("10.0.0.1", 80, "", api.HealthPassing, nil, 1<<40),
			},
			want: discovery.Service{Host: host, Port: 80, Protocol: discovery.ProtocolHTTP, Instances: []discovery.Instance{
				{Address: "10.0.0.1", Port: 80, Weight: maxWeight},
			}},
			hasPort: true,
		},
		{
			name: "hostile entries are dropped, never panic",
			entries: []*api.ServiceEntry{
				nil,
				{},
				{Service: &api.AgentService{Port: 80}}, // no address anywhere
				{Service: &api.AgentService{Address: "10.0.0.1", Port: -1}},                                // bad port
				{Service: &api.AgentService{Address: "10.0.0.1", Port: 70000}},                             // bad port
				{Service: &api.AgentService{Address: "10.0.0.1 ; rm", Port: 80}},                           // not an address
				{Service: &api.AgentService{Address: "10.0.0.1", Port: 80}, Checks: api.HealthChecks{nil}}, // nil check
			},
			want: discovery.Service{Host: host, Port: 80, Protocol: discovery.ProtocolHTTP, Instances: []discovery.Instance{
				{Address: "10.0.0.1", Port: 80, Weight: 1},
			}},
			hasPort: true,
			dropped: 6,
		},
		{
			name: "no entries",
			want: discovery.Service{Host: host, Protocol: discovery.ProtocolHTTP},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := buildService(host, c.entries)
			if (b.skip != "") != c.skip {
				t.Fatalf("skip = %q, want skip %v", b.skip, c.skip)
			}
			if c.skip {
				return
			}
			if !reflect.DeepEqual(b.svc, c.want) {
				t.Errorf("service:\n got %+v\nwant %+v", b.svc, c.want)
			}
			if b.hasPort != c.hasPort || b.dropped != c.dropped {
				t.Errorf("hasPort=%v dropped=%d, want %v %d", b.hasPort, b.dropped, c.hasPort, c.dropped)
			}
		})
	}
}

// FuzzBuildService feeds arbitrary /v1/health/service JSON through the
// parser: whatever Consul (or something pretending to be it) answers, the
// watcher must not panic and must publish only valid instances.
func FuzzBuildService(f *testing.F) {
	f.Add([]byte(`[{"Node":{"Address":"10.0.0.1"},"Service":{"Address":"","Port":80,"Meta":{"protocol":"grpc"},"Weights":{"Passing":5}},"Checks":[{"CheckID":"serfHealth","Status":"passing"}]}]`))
	f.Add([]byte(`[null,{},{"Service":null},{"Checks":[null]}]`))
	f.Add([]byte(`[{"Service":{"Address":"a.b","Port":65536,"Weights":{"Passing":-3}},"Checks":[{"Status":"bogus"}]}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var entries []*api.ServiceEntry
		if json.Unmarshal(data, &entries) != nil {
			return
		}
		b := buildService("x.dc.consul", entries)
		for _, in := range b.svc.Instances {
			if in.Address == "" || in.Port == 0 || in.Port > 65535 || in.Weight < 1 || in.Weight > maxWeight {
				t.Fatalf("invalid instance published: %+v", in)
			}
		}
		if b.skip == "" && b.svc.Protocol == "" {
			t.Fatal("no protocol")
		}
	})
}
