package e2e

// NOTE: no real Nacos or Eureka server can run on this machine (Java
// servers with no Debian package, no Docker), so these end-to-end tests run
// hxds against the protocol fakes of discovery/nacos/nacostest (a Nacos
// 2.x gRPC naming server on the SDK's own stubs and types, and the Nacos
// 1.x HTTP OpenAPI) and discovery/eureka/eurekatest (Eureka's REST
// handlers on fargo's JSON types). They follow TestConsulRegistryEndToEnd,
// which runs a real Consul agent.

import (
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/hudl/fargo"
	"github.com/nacos-group/nacos-sdk-go/v2/model"

	"github.com/hxds/hxds/discovery/eureka"
	"github.com/hxds/hxds/discovery/eureka/eurekatest"
	"github.com/hxds/hxds/discovery/nacos"
	"github.com/hxds/hxds/discovery/nacos/nacostest"
	"github.com/hxds/hxds/xds/adsclient"
)

// fakeInstance is one instance of the registry service under test.
type fakeInstance struct {
	ip     string
	weight int
}

// fakeRegistry is a registry served by a protocol fake, seen from hxds.
type fakeRegistry struct {
	typ, name string
	// entry is the McpBridge registry entry (a YAML flow mapping).
	entry string
	// host is the registry host the Ingress destination names.
	host string
	// port is the instances' port.
	port uint32
	// set makes instances the service's whole instance list.
	set func(instances ...fakeInstance)
	// stop takes the fake server down.
	stop func()
}

// runFakeRegistry drives one registry end to end: its service becomes the
// cluster an Ingress destination routes to, its instances reach an ADS
// client over EDS as they register, change weight and deregister (without
// LDS, RDS or CDS changes), and a stopped server is reported unhealthy
// with the host held while its last instances keep being served.
func runFakeRegistry(t *testing.T, r fakeRegistry) {
	start := time.Now()
	r.set(fakeInstance{"10.3.0.1", 1})
	dir := copyQuickstart(t)
	writeFile(t, dir, "50-registry.yaml", registryBridge(r.entry, r.host))
	h := startHxds(t, dir)
	cl := connect(t, h.xds, adsclient.Options{NodeID: "envoy-1", Cluster: defaultGroup, Delta: true})
	cluster := fmt.Sprintf("outbound|%d||%s", r.port, r.host)
	a, b := fmt.Sprintf("10.3.0.1:%d", r.port), fmt.Sprintf("10.3.0.2:%d", r.port)

	before := cl.wait("the registry service behind shop.example.com", func(s adsclient.Snapshot) bool {
		return routeCluster(s.Route(httpRoutes), "shop.example.com", "/") == cluster &&
			slices.Equal(endpointAddrs(s, cluster), []string{a})
	})

	r.set(fakeInstance{"10.3.0.1", 1}, fakeInstance{"10.3.0.2", 5})
	s := cl.wait("the second instance", func(s adsclient.Snapshot) bool {
		return slices.Equal(endpointAddrs(s, cluster), []string{a, b})
	})
	if w := endpointWeights(s, cluster); w[a] != 1 || w[b] != 5 {
		t.Errorf("weights %v, want %s: 1, %s: 5", w, a, b)
	}

	r.set(fakeInstance{"10.3.0.2", 5})
	s = cl.wait("the first instance to go", func(s adsclient.Snapshot) bool {
		return slices.Equal(endpointAddrs(s, cluster), []string{b})
	})
	expectOnlyEDS(t, before, s)

	// The server goes away: reported, and the last instance is still served.
	r.stop()
	w := expectHeldOutage(t, h, cl, r.host, cluster, []string{b})
	if w.Name != r.name || w.Type != r.typ || w.LastError == "" {
		t.Errorf("watcherStatus: %+v", w)
	}
	if v := h.metric(t, fmt.Sprintf(`hxds_registry_healthy{registry=%q,type=%q}`, r.name, r.typ)); v != 0 {
		t.Errorf("hxds_registry_healthy = %v while the registry is down", v)
	}
	t.Logf("%s registry end to end in %s", r.typ, time.Since(start).Round(time.Millisecond))
}

// endpointWeights maps a cluster's endpoint addresses to their weights (an
// unset weight is Envoy's default, 1).
func endpointWeights(s adsclient.Snapshot, cluster string) map[string]uint32 {
	out := map[string]uint32{}
	for _, le := range s.Endpoints(cluster).GetEndpoints() {
		for _, lb := range le.GetLbEndpoints() {
			sa := lb.GetEndpoint().GetAddress().GetSocketAddress()
			w := uint32(1)
			if lb.GetLoadBalancingWeight() != nil {
				w = lb.GetLoadBalancingWeight().GetValue()
			}
			out[fmt.Sprintf("%s:%d", sa.GetAddress(), sa.GetPortValue())] = w
		}
	}
	return out
}

// setFor sets *v to value for the rest of the test. The e2e tests that
// use it are not parallel, so no watcher of another test reads *v.
func setFor[T any](t *testing.T, v *T, value T) {
	old := *v
	*v = value
	t.Cleanup(func() { *v = old })
}

// TestNacos2RegistryEndToEnd runs hxds against the Nacos 2.x gRPC fake
// (type nacos2): instances arrive by push on the subscription.
func TestNacos2RegistryEndToEnd(t *testing.T) {
	f := nacostest.NewServer(t)
	runFakeRegistry(t, fakeRegistry{
		typ: nacos.TypeV2, name: "nacos",
		entry: fmt.Sprintf(`{type: nacos2, name: nacos, domain: 127.0.0.1, port: %d, nacosGroups: [DEFAULT_GROUP]}`, f.HTTPPort()),
		host:  "web.DEFAULT-GROUP.public.nacos", port: 8080,
		set: func(ins ...fakeInstance) {
			list := []model.Instance{}
			for _, in := range ins {
				list = append(list, nacostest.Instance(in.ip, 8080, float64(in.weight), nil))
			}
			f.Set("public", "DEFAULT_GROUP", "web", list)
		},
		stop: f.Stop,
	})
}

// TestNacosV1RegistryEndToEnd runs hxds against the Nacos 1.x HTTP fake
// (type nacos), polled every 200 ms (nacos.MinRefresh lowered to allow it).
func TestNacosV1RegistryEndToEnd(t *testing.T) {
	setFor(t, &nacos.MinRefresh, 100*time.Millisecond)
	f := nacostest.NewV1Server(t)
	runFakeRegistry(t, fakeRegistry{
		typ: nacos.TypeV1, name: "nacos1",
		entry: fmt.Sprintf(`{type: nacos, name: nacos1, domain: 127.0.0.1, port: %d, nacosGroups: [DEFAULT_GROUP], nacosRefreshInterval: 200000000}`, f.Port()),
		host:  "web.DEFAULT-GROUP.public.nacos", port: 8080,
		set: func(ins ...fakeInstance) {
			list := []nacostest.V1Host{}
			for _, in := range ins {
				list = append(list, nacostest.V1Instance(in.ip, 8080, float64(in.weight), nil))
			}
			f.Set("public", "DEFAULT_GROUP", "web", list)
		},
		stop: f.Stop,
	})
}

// TestEurekaRegistryEndToEnd runs hxds against the Eureka fake (type
// eureka), polled every 200 ms (eureka.DefaultRefreshInterval lowered);
// weights come from the instances' "weight" metadata.
func TestEurekaRegistryEndToEnd(t *testing.T) {
	setFor(t, &eureka.DefaultRefreshInterval, 200*time.Millisecond)
	f := eurekatest.NewServer(t)
	runFakeRegistry(t, fakeRegistry{
		typ: "eureka", name: "eureka",
		entry: fmt.Sprintf(`{type: eureka, name: eureka, domain: 127.0.0.1, port: %d}`, f.Port()),
		host:  "ORDERS.eureka", port: 8080,
		set: func(ins ...fakeInstance) {
			var list []*fargo.Instance
			for _, in := range ins {
				list = append(list, eurekatest.Instance("ORDERS", in.ip, 8080, eurekatest.WithMeta("weight", strconv.Itoa(in.weight))))
			}
			f.SetApp("ORDERS", list...)
		},
		stop: f.Stop,
	})
}
