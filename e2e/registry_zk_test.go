package e2e

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/hxds/hxds/internal/testutil/zktest"
	"github.com/hxds/hxds/xds/adsclient"
)

// TestZooKeeperRegistryEndToEnd runs hxds against a real ZooKeeper with
// Dubbo providers registered as Dubbo does (ephemeral URL nodes under
// /dubbo/<interface>/providers, from the provider's own session): the
// provider host is routable through higress.io/destination, providers
// appear with their weight and disappear with their session over EDS only,
// and a ZooKeeper that goes away is reported while the last provider keeps
// being served.
func TestZooKeeperRegistryEndToEnd(t *testing.T) {
	srv := zktest.Start(t)
	const (
		iface   = "org.apache.dubbo.samples.api.GreetingService"
		host    = "providers:" + iface + ":1.0.0:.zookeeper"
		cluster = "outbound|20880||" + host
	)
	dir := copyQuickstart(t)
	writeFile(t, dir, "50-registry.yaml", registryBridge(fmt.Sprintf("{type: zookeeper, name: zk, domain: 127.0.0.1, port: %d}", srv.Port()), host))
	h := startHxds(t, dir)
	cl := connect(t, h.xds, adsclient.Options{NodeID: "envoy-1", Cluster: defaultGroup, Delta: true})

	// Each provider registers from its own session, so its node goes with it.
	provider := func(ip string, weight int) *zk.Conn {
		t.Helper()
		conn, events, err := zk.Connect([]string{srv.Addr()}, 10*time.Second, zk.WithLogger(nopZKLogger{}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(conn.Close)
		// Connect returns before the session exists.
		for connected := false; !connected; {
			select {
			case ev := <-events:
				connected = ev.State == zk.StateHasSession
			case <-time.After(waitTimeout):
				t.Fatal("no ZooKeeper session for the provider")
			}
		}
		u := fmt.Sprintf("dubbo://%s:20880/%s?application=demo-provider&interface=%s&version=1.0.0&side=provider&weight=%d", ip, iface, iface, weight)
		p := "/dubbo/" + iface + "/providers/" + url.QueryEscape(u)
		cur := ""
		for _, part := range strings.Split(strings.Trim(path.Dir(p), "/"), "/") {
			cur += "/" + part
			if _, err := conn.Create(cur, nil, 0, zk.WorldACL(zk.PermAll)); err != nil && !errors.Is(err, zk.ErrNodeExists) {
				t.Fatalf("create %s: %v", cur, err)
			}
		}
		if _, err := conn.Create(p, []byte(ip), zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
			t.Fatalf("create %s: %v", p, err)
		}
		return conn
	}
	first := provider("10.4.0.1", 100)
	s := cl.wait("the Dubbo provider behind shop.example.com", func(s adsclient.Snapshot) bool {
		return routeCluster(s.Route(httpRoutes), "shop.example.com", "/") == cluster &&
			slices.Equal(endpointAddrs(s, cluster), []string{"10.4.0.1:20880"})
	})
	before := s
	provider("10.4.0.2", 300)
	s = cl.wait("the second provider", func(s adsclient.Snapshot) bool {
		return slices.Equal(endpointAddrs(s, cluster), []string{"10.4.0.1:20880", "10.4.0.2:20880"})
	})
	if w := s.Endpoints(cluster).GetEndpoints()[0].GetLbEndpoints()[1].GetLoadBalancingWeight().GetValue(); w != 300 {
		t.Errorf("weight %d, want 300", w)
	}
	first.Close() // the provider's session ends: its ephemeral node goes
	s = cl.wait("the first provider to go", func(s adsclient.Snapshot) bool {
		return slices.Equal(endpointAddrs(s, cluster), []string{"10.4.0.2:20880"})
	})
	expectOnlyEDS(t, before, s)

	srv.Stop()
	if ws := expectHeldOutage(t, h, cl, host, cluster, []string{"10.4.0.2:20880"}); ws.Type != "zookeeper" {
		t.Errorf("watcher type %q", ws.Type)
	}
}

type nopZKLogger struct{}

func (nopZKLogger) Printf(string, ...any) {}
