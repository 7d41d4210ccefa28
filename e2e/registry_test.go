package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	consulapi "github.com/hashicorp/consul/api"
	"go.uber.org/zap"

	"github.com/hxds/hxds/discovery"
	"github.com/hxds/hxds/internal/app"
	"github.com/hxds/hxds/internal/testutil/consultest"
	"github.com/hxds/hxds/xds/adsclient"
)

// scripted is a registry type the test drives: its watcher hands the test
// its Publisher. The registry types with real servers are tested in their
// packages and below; this one isolates what hxds does with what any
// registry publishes.
type scripted struct {
	mu   sync.Mutex
	pubs map[string]discovery.Publisher
	ch   chan string
}

type scriptedWatcher struct {
	discovery.Tracker
	name string
	s    *scripted
	pub  discovery.Publisher
}

func (w *scriptedWatcher) Run(ctx context.Context) error {
	w.s.mu.Lock()
	w.s.pubs[w.name] = w.pub
	w.s.mu.Unlock()
	w.Synced(true)
	w.s.ch <- w.name
	<-ctx.Done()
	return nil
}

func (s *scripted) factory(cfg discovery.Config, pub discovery.Publisher, _ *zap.Logger) (discovery.Watcher, error) {
	return &scriptedWatcher{name: cfg.Registry.Name, s: s, pub: pub}, nil
}

// registryConfig: the scripted registry in the McpBridge that is used,
// another one in an McpBridge that must be ignored, and an Ingress routing
// to a registry host.
var registryConfig = registryBridge("{type: scripted, name: shop, domain: 127.0.0.1, port: 1}", "web.DEFAULT-GROUP.public.nacos") + `---
apiVersion: networking.higress.io/v1
kind: McpBridge
metadata: {name: elsewhere, namespace: demo}
spec:
  registries:
  - {type: scripted, name: ignored, domain: 127.0.0.1, port: 1}
`

const shopCluster = "outbound|8080||web.DEFAULT-GROUP.public.nacos"

func webService(weights ...uint32) discovery.Service {
	s := discovery.Service{Host: "web.DEFAULT-GROUP.public.nacos", Port: 8080, Protocol: discovery.ProtocolHTTP}
	for i, w := range weights {
		s.Instances = append(s.Instances, discovery.Instance{Address: "10.1.0." + string(rune('1'+i)), Port: 8080, Weight: w})
	}
	return s
}

// TestRegistryEndpointsTakeTheEndpointPath: a registry host becomes a
// cluster that an Ingress destination routes to; its instances reach an
// ADS client; weight and instance changes are EDS pushes without a
// translation; an empty instance list keeps the last endpoints (and says
// so); only the McpBridge "default" in the system namespace is used.
func TestRegistryEndpointsTakeTheEndpointPath(t *testing.T) {
	protocols(t, func(t *testing.T, delta bool) {
		reg := &scripted{pubs: map[string]discovery.Publisher{}, ch: make(chan string, 4)}
		dir := copyQuickstart(t)
		writeFile(t, dir, "50-registry.yaml", registryConfig)
		h := startHxds(t, dir, func(c *app.Config) {
			c.Registries = map[string]discovery.Factory{"scripted": reg.factory}
		})
		if name := <-reg.ch; name != "shop" {
			t.Fatalf("watcher %q started; only the default McpBridge's registries may run", name)
		}
		reg.mu.Lock()
		pub := reg.pubs["shop"]
		reg.mu.Unlock()

		cl := connect(t, h.xds, adsclient.Options{NodeID: "envoy-1", Cluster: defaultGroup, Delta: delta})
		cl.wait("the first configuration", func(s adsclient.Snapshot) bool {
			return s.Route(httpRoutes) != nil && s.Endpoints(echoCluster) != nil
		})

		pub.Replace([]discovery.Service{webService(1)})
		cl.wait("the registry cluster and its endpoint", func(s adsclient.Snapshot) bool {
			// Clusters come before the routes that use them.
			return routeCluster(s.Route(httpRoutes), "shop.example.com", "/") == shopCluster &&
				slices.Equal(endpointAddrs(s, shopCluster), []string{"10.1.0.1:8080"})
		})
		before := cl.synced(h)
		translations := h.metric(t, `hxds_translations_total{result="ok"}`)
		mark := cl.mark()

		// A new instance and a weight change: EDS only.
		pub.Update(webService(1, 5))
		s := cl.wait("the second instance", func(s adsclient.Snapshot) bool {
			return slices.Equal(endpointAddrs(s, shopCluster), []string{"10.1.0.1:8080", "10.1.0.2:8080"})
		})
		if w := s.Endpoints(shopCluster).GetEndpoints()[0].GetLbEndpoints()[1].GetLoadBalancingWeight().GetValue(); w != 5 {
			t.Errorf("weight = %d, want 5", w)
		}
		pub.Update(webService(1))
		s = cl.wait("the instance to go", func(s adsclient.Snapshot) bool {
			return slices.Equal(endpointAddrs(s, shopCluster), []string{"10.1.0.1:8080"})
		})
		cl.synced(h)
		evs := cl.since(mark)
		for _, typ := range []string{lds, rds, cds, sds} {
			if s.Version(typ) != before.Version(typ) {
				t.Errorf("%s changed for registry instance changes: %v", short(typ), summarize(evs))
			}
		}
		if got := typesOf(evs); len(got) == 0 || slices.ContainsFunc(got, func(s string) bool { return s != "ClusterLoadAssignment" }) {
			t.Errorf("responses after instance changes: %v, want EDS only", summarize(evs))
		}
		if n := h.metric(t, `hxds_translations_total{result="ok"}`); n != translations {
			t.Errorf("instance changes ran %v translation(s)", n-translations)
		}
		if n := h.metric(t, "hxds_registry_endpoint_updates_total"); n < 2 {
			t.Errorf("hxds_registry_endpoint_updates_total = %v", n)
		}

		// The registry lists no instance: the last ones stay, and it says so.
		pub.Update(webService())
		var ws []discovery.WatcherStatus
		waitUntil(t, "the held instances to be reported", func() (bool, string) {
			h.getJSON(t, "/registry/watcherStatus", &ws)
			return len(ws) == 1 && len(ws[0].Held) == 1, describeStatuses(ws)
		})
		if w := ws[0]; w.Name != "shop" || w.Type != "scripted" || !w.Healthy || !w.Ready || w.Services != 1 || w.Instances != 1 {
			t.Errorf("watcherStatus: %s", describeStatuses(ws))
		}
		if got := endpointAddrs(cl.synced(h), shopCluster); !slices.Equal(got, []string{"10.1.0.1:8080"}) {
			t.Errorf("endpoints during the grace period: %v", got)
		}
		ignored := false
		for _, st := range h.status(t, false).Status {
			if st.Object.Kind == "McpBridge" && st.Object.Name == "elsewhere" && st.Ignored {
				ignored = true
			}
		}
		if !ignored {
			t.Errorf("the McpBridge outside the system namespace is not reported ignored")
		}
	})
}

func describeStatuses(ws []discovery.WatcherStatus) string {
	b, _ := json.Marshal(ws)
	return string(b)
}

const directRegistries = `apiVersion: networking.higress.io/v1
kind: McpBridge
metadata: {name: default, namespace: higress-system}
spec:
  registries:
  - {type: static, name: backend-ip, domain: "127.0.0.1:8080,127.0.0.2:8081", port: 80}
  - {type: dns, name: upstream, domain: api.example.org, port: 443, protocol: https}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: direct
  namespace: demo
  annotations:
    higress.io/destination: |
      50% backend-ip.static
      50% upstream.dns
spec:
  ingressClassName: higress
  rules:
  - host: direct.example.com
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          resource: {apiGroup: networking.higress.io, kind: McpBridge, name: default}
`

// TestStaticAndDNSRegistries runs the real static and dns registry types:
// a static registry's addresses arrive over EDS, a dns registry becomes a
// STRICT_DNS cluster with TLS and the domain as SNI, and an Ingress
// destination splits between them.
func TestStaticAndDNSRegistries(t *testing.T) {
	dir := copyQuickstart(t)
	writeFile(t, dir, "50-registry.yaml", directRegistries)
	h := startHxds(t, dir)
	cl := connect(t, h.xds, adsclient.Options{NodeID: "envoy-1", Cluster: defaultGroup})
	const staticCluster, dnsCluster = "outbound|80||backend-ip.static", "outbound|443||upstream.dns"
	s := cl.wait("both registry clusters", func(s adsclient.Snapshot) bool {
		return s.Cluster(dnsCluster) != nil && len(endpointAddrs(s, staticCluster)) == 2 &&
			slices.Contains(weightedClusters(s.Route(httpRoutes), "direct.example.com"), dnsCluster)
	})
	if got := endpointAddrs(s, staticCluster); !slices.Equal(got, []string{"127.0.0.1:8080", "127.0.0.2:8081"}) {
		t.Errorf("static endpoints %v", got)
	}
	c := s.Cluster(dnsCluster)
	if c.GetType().String() != "STRICT_DNS" || c.GetTransportSocket() == nil {
		t.Errorf("dns cluster: type %v, transport socket %v", c.GetType(), c.GetTransportSocket())
	}
	var ws []discovery.WatcherStatus
	h.getJSON(t, "/registry/watcherStatus", &ws)
	if len(ws) != 2 || ws[0].Type != "dns" || ws[1].Type != "static" || !ws[0].Ready || !ws[1].Healthy {
		t.Errorf("watcherStatus: %s", describeStatuses(ws))
	}
	weighted := weightedClusters(s.Route(httpRoutes), "direct.example.com")
	slices.Sort(weighted)
	if !slices.Equal(weighted, []string{dnsCluster, staticCluster}) {
		t.Errorf("direct.example.com splits between %v", weighted)
	}
}

// weightedClusters lists the weighted clusters of the routes of domain.
func weightedClusters(rc *routev3.RouteConfiguration, domain string) []string {
	var out []string
	for _, vh := range rc.GetVirtualHosts() {
		if !slices.Contains(vh.GetDomains(), domain) {
			continue
		}
		for _, r := range vh.GetRoutes() {
			for _, wc := range r.GetRoute().GetWeightedClusters().GetClusters() {
				out = append(out, wc.GetName())
			}
		}
	}
	return out
}

// TestConsulRegistryEndToEnd runs hxds against a real Consul agent: a
// service registered in Consul becomes a cluster an Ingress destination
// routes to, and its instances reach an ADS client over EDS as they
// register, change weight and deregister; a stopped agent is reported
// unhealthy while its last instances keep being served.
func TestConsulRegistryEndToEnd(t *testing.T) {
	agent := consultest.Start(t, consultest.Options{})
	dir := copyQuickstart(t)
	writeFile(t, dir, "50-registry.yaml", registryBridge(fmt.Sprintf(
		"{type: consul, name: consul, domain: 127.0.0.1, port: %d, consulDatacenter: dc1, consulRefreshInterval: 1000000000}",
		agent.HTTPPort()), "shop.dc1.consul"))
	h := startHxds(t, dir)
	cl := connect(t, h.xds, adsclient.Options{NodeID: "envoy-1", Cluster: defaultGroup, Delta: true})
	const cluster = "outbound|9000||shop.dc1.consul"

	register := func(id, addr string, weight int) {
		t.Helper()
		err := agent.Client().Agent().ServiceRegister(&consulapi.AgentServiceRegistration{
			ID: id, Name: "shop", Address: addr, Port: 9000,
			Weights: &consulapi.AgentWeights{Passing: weight, Warning: 1},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	register("shop-1", "10.2.0.1", 1)
	s := cl.wait("the consul service behind shop.example.com", func(s adsclient.Snapshot) bool {
		return routeCluster(s.Route(httpRoutes), "shop.example.com", "/") == cluster &&
			slices.Equal(endpointAddrs(s, cluster), []string{"10.2.0.1:9000"})
	})
	before := s
	register("shop-2", "10.2.0.2", 4)
	s = cl.wait("the second instance", func(s adsclient.Snapshot) bool {
		return slices.Equal(endpointAddrs(s, cluster), []string{"10.2.0.1:9000", "10.2.0.2:9000"})
	})
	if w := s.Endpoints(cluster).GetEndpoints()[0].GetLbEndpoints()[1].GetLoadBalancingWeight().GetValue(); w != 4 {
		t.Errorf("weight %d, want 4", w)
	}
	if err := agent.Client().Agent().ServiceDeregister("shop-1"); err != nil {
		t.Fatal(err)
	}
	s = cl.wait("shop-1 to go", func(s adsclient.Snapshot) bool {
		return slices.Equal(endpointAddrs(s, cluster), []string{"10.2.0.2:9000"})
	})
	expectOnlyEDS(t, before, s)

	// The agent goes away: reported, and the last instance is still served
	// (Consul's own service, consul.dc1.consul, is held too).
	agent.Stop()
	expectHeldOutage(t, h, cl, "shop.dc1.consul", cluster, []string{"10.2.0.2:9000"})
	if v := h.metric(t, `hxds_registry_healthy{registry="consul",type="consul"}`); v != 0 {
		t.Errorf("hxds_registry_healthy = %v while consul is down", v)
	}
}

// expectOnlyEDS fails when LDS, RDS or CDS changed between before and now:
// registry instance changes must take the endpoint path alone.
func expectOnlyEDS(t testing.TB, before, now adsclient.Snapshot) {
	t.Helper()
	for _, typ := range []string{lds, rds, cds} {
		if now.Version(typ) != before.Version(typ) {
			t.Errorf("%s changed for instance changes", short(typ))
		}
	}
}

// expectHeldOutage waits until /registry/watcherStatus reports the only
// registry unhealthy but ready with host held, then checks that cluster
// still serves want. It returns the watcher status.
func expectHeldOutage(t testing.TB, h *hxds, cl *client, host, cluster string, want []string) discovery.WatcherStatus {
	t.Helper()
	var ws []discovery.WatcherStatus
	waitUntil(t, "the registry to be reported unhealthy and held", func() (bool, string) {
		h.getJSON(t, "/registry/watcherStatus", &ws)
		return len(ws) == 1 && !ws[0].Healthy && ws[0].Ready && ws[0].Held[host] != "", describeStatuses(ws)
	})
	if got := endpointAddrs(cl.synced(h), cluster); !slices.Equal(got, want) {
		t.Errorf("endpoints while the registry is down: %v, want %v", got, want)
	}
	return ws[0]
}

// registryBridge is a config file with the McpBridge "default" holding one
// registry entry (a YAML flow mapping) and an Ingress shop.example.com
// whose destination is the registry host (quoted: Dubbo hosts hold colons).
func registryBridge(entry, host string) string {
	return fmt.Sprintf(`apiVersion: networking.higress.io/v1
kind: McpBridge
metadata: {name: default, namespace: higress-system}
spec:
  registries:
  - %s
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: shop
  namespace: demo
  annotations:
    higress.io/destination: %q
spec:
  ingressClassName: higress
  rules:
  - host: shop.example.com
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          resource: {apiGroup: networking.higress.io, kind: McpBridge, name: default}
`, entry, host)
}
