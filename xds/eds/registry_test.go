package eds_test

import (
	"sync"
	"testing"

	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hxds/hxds/translate/envoy"
	"github.com/hxds/hxds/translate/input"
	"github.com/hxds/hxds/xds/cache"
	"github.com/hxds/hxds/xds/eds"
)

// TestRegistryChangeTouchesOnlyItsAssignment: a registry host's instance
// change re-encodes that host's assignment alone, with weights and
// metadata, and host names (DNS services) are not EDS endpoints.
func TestRegistryChangeTouchesOnlyItsAssignment(t *testing.T) {
	c := cache.New(cache.Options{DefaultGroup: "g1"})
	var mu sync.Mutex
	instances := map[string][]input.RegistryEndpoint{
		"a.DEFAULT-GROUP.public.nacos": {{Address: "10.0.0.1", Port: 8080, Weight: 1}},
		"b.dc1.consul":                 {{Address: "10.0.1.1", Port: 9090, Weight: 1}},
	}
	u := eds.New(c, func() envoy.ServiceSlices { return nil }, prometheus.NewRegistry())
	u.SetRegistry(func(host string) []input.RegistryEndpoint {
		mu.Lock()
		defer mu.Unlock()
		return instances[host]
	})
	ta := envoy.EndpointTarget{ClusterName: "outbound|80||a.DEFAULT-GROUP.public.nacos", RegistryHost: "a.DEFAULT-GROUP.public.nacos"}
	tb := envoy.EndpointTarget{ClusterName: "outbound|9090||b.dc1.consul", RegistryHost: "b.dc1.consul"}
	if err := u.SetTargets("g1", []envoy.EndpointTarget{ta, tb}); err != nil {
		t.Fatal(err)
	}
	entry := func(name string) (string, *endpointv3.ClusterLoadAssignment) {
		for _, e := range c.Entries("g1", resourcev3.EndpointType) {
			if e.Name == name {
				return e.Version, e.Resource.(*endpointv3.ClusterLoadAssignment)
			}
		}
		t.Fatalf("no assignment %s", name)
		return "", nil
	}
	va, _ := entry(ta.ClusterName)
	vb, _ := entry(tb.ClusterName)

	mu.Lock()
	instances["a.DEFAULT-GROUP.public.nacos"] = []input.RegistryEndpoint{
		{Address: "10.0.0.1", Port: 8080, Weight: 1},
		{Address: "10.0.0.2", Port: 8081, Weight: 5, Metadata: map[string]string{"version": "v2"}},
		{Address: "not-an-ip.example.com", Port: 8080, Weight: 1},
	}
	mu.Unlock()
	n, err := u.RegistryChanged([]string{"a.DEFAULT-GROUP.public.nacos", "unknown.host"})
	if err != nil || n != 1 {
		t.Fatalf("RegistryChanged = %d, %v; want 1 assignment", n, err)
	}
	va2, cla := entry(ta.ClusterName)
	vb2, _ := entry(tb.ClusterName)
	if va2 == va || vb2 != vb {
		t.Errorf("versions: a %s→%s (must change), b %s→%s (must not)", va, va2, vb, vb2)
	}
	eps := cla.GetEndpoints()[0].GetLbEndpoints()
	if len(eps) != 2 {
		t.Fatalf("want the 2 IP instances, got %d", len(eps))
	}
	second := eps[1]
	if second.GetLoadBalancingWeight().GetValue() != 5 || second.GetEndpoint().GetAddress().GetSocketAddress().GetPortValue() != 8081 {
		t.Errorf("weight/port not carried: %v", second)
	}
	if v := second.GetMetadata().GetFilterMetadata()[envoy.RegistryLB].GetFields()["version"].GetStringValue(); v != "v2" {
		t.Errorf("metadata version = %q", v)
	}
	// Unchanged instances (same published list) are not re-encoded.
	if _, err := u.RegistryChanged([]string{"b.dc1.consul"}); err != nil {
		t.Fatal(err)
	}
	if vb3, _ := entry(tb.ClusterName); vb3 != vb {
		t.Errorf("an unchanged host was re-versioned: %s → %s", vb, vb3)
	}
}
