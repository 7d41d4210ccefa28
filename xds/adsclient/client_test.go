package adsclient

import (
	"context"
	"errors"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/hxds/hxds/xds/cache"
)

const group = "g1"

// populate stores a small gateway: two listeners (one TLS), three clusters
// (two EDS, one with a service_name, one static), and routes, assignments
// and secrets, some of which nothing references.
func populate(t testing.TB, c *cache.Cache) {
	set(t, c, group, lds, byName(makeListener(t, "l80", 80, "r80", ""), makeListener(t, "l443", 443, "r443", "s1")))
	set(t, c, group, cds, byName(edsCluster("c1", "e1"), edsCluster("c2", ""), staticCluster("c3")))
	set(t, c, group, rds, byName(makeRoute("r80", "c1"), makeRoute("r443", "c2"), makeRoute("r-unused", "c3")))
	set(t, c, group, eds, byName(makeCLA("e1", 8080), makeCLA("c2", 8081), makeCLA("e-unused", 1)))
	set(t, c, group, sds, byName(makeSecret("s1"), makeSecret("s-unused")))
}

var want = map[string][]string{
	lds: {"l443", "l80"},
	cds: {"c1", "c2", "c3"},
	rds: {"r443", "r80"},
	eds: {"c2", "e1"},
	sds: {"s1"},
}

// holdsAll reports whether s holds exactly the resources of want, each at
// the version the cache serves.
func holdsAll(c *cache.Cache) func(Snapshot) bool {
	return func(s Snapshot) bool {
		for typ, names := range want {
			if !slices.Equal(s.Names(typ), names) || s.Version(typ) != c.Version(group, typ) {
				return false
			}
		}
		return true
	}
}

func TestEnvoyFlow(t *testing.T) {
	protocols(t, func(t *testing.T, delta bool) {
		c := cache.New(cache.Options{})
		populate(t, c)
		srv := startServer(t, c, "127.0.0.1:0")
		cl, _ := startClient(t, Options{Address: srv.addr, NodeID: "envoy-1", Cluster: group, Delta: delta})

		s := waitState(t, cl, "full configuration", holdsAll(c))
		eqStrings(t, "EDS subscription", s.Type(eds).Names, []string{"c2", "e1"})
		eqStrings(t, "RDS subscription", s.Type(rds).Names, []string{"r443", "r80"})
		eqStrings(t, "SDS subscription", s.Type(sds).Names, []string{"s1"})
		if !s.Type(lds).Wildcard || !s.Type(cds).Wildcard || s.Type(eds).Wildcard {
			t.Error("LDS and CDS must be wildcard, EDS not")
		}
		if _, ok := s.Types[ecds]; ok {
			t.Error("ECDS subscribed although no filter uses it")
		}
		if got := s.Cluster("c1").GetEdsClusterConfig().GetServiceName(); got != "e1" {
			t.Errorf("cluster c1 service name = %q", got)
		}
		if s.Endpoints("e1") == nil || s.Secret("s1") == nil || s.Route("r80") == nil || s.Listener("l443") == nil {
			t.Error("typed accessors miss held resources")
		}
		if !s.Connected || s.Streams != 1 {
			t.Errorf("connected=%v streams=%d, want true 1", s.Connected, s.Streams)
		}
		if delta {
			for _, e := range c.Entries(group, eds) {
				if r := s.Type(eds).Resources[e.Name]; r != nil && r.Version != e.Version {
					t.Errorf("delta resource version of %s = %q, want %q", e.Name, r.Version, e.Version)
				}
			}
		}
		for typ, ts := range s.Types {
			if ts.Responses != 1 || ts.ACKs != 1 || ts.NACKs != 0 {
				t.Errorf("%s: responses=%d acks=%d nacks=%d, want 1 1 0", typ, ts.Responses, ts.ACKs, ts.NACKs)
			}
		}

		// One event per response, each ACKed.
		got := map[string]Event{}
		for range len(want) {
			ev := nextEvent(t, cl)
			if ev.NACK {
				t.Errorf("event %v is a NACK", ev)
			}
			got[ev.TypeURL] = ev
		}
		for typ, names := range want {
			eqStrings(t, "event resources of "+typ, got[typ].Resources, names)
			if got[typ].Version != c.Version(group, typ) || got[typ].Stream != 1 || got[typ].Received.IsZero() {
				t.Errorf("event %+v", got[typ])
			}
		}

		if delta {
			checkDeltaRequests(t, srv, c)
		} else {
			checkSotwRequests(t, srv, c)
		}
	})
}

func checkSotwRequests(t *testing.T, srv *adsServer, c *cache.Cache) {
	// Wait for the ACK of every type.
	reqs := srv.waitSotw(t, "an ACK of every type", func(reqs []*discovery.DiscoveryRequest) bool {
		acked := map[string]bool{}
		for _, r := range reqs {
			if r.GetResponseNonce() != "" && r.GetErrorDetail() == nil && r.GetVersionInfo() == c.Version(group, r.GetTypeUrl()) {
				acked[r.GetTypeUrl()] = true
			}
		}
		return len(acked) == len(want)
	})
	if n := reqs[0].GetNode(); n.GetId() != "envoy-1" || n.GetCluster() != group || n.GetUserAgentName() != UserAgentName {
		t.Errorf("first request node = %v", n)
	}
	first := map[string]*discovery.DiscoveryRequest{}
	for i, r := range reqs {
		if _, ok := first[r.GetTypeUrl()]; !ok {
			first[r.GetTypeUrl()] = r
			if r.GetResponseNonce() != "" || r.GetVersionInfo() != "" {
				t.Errorf("request %d: first request of %s has nonce %q version %q", i, r.GetTypeUrl(), r.GetResponseNonce(), r.GetVersionInfo())
			}
		}
	}
	if reqs[0].GetTypeUrl() != cds || reqs[1].GetTypeUrl() != lds {
		t.Errorf("first requests are %s, %s; want CDS then LDS", reqs[0].GetTypeUrl(), reqs[1].GetTypeUrl())
	}
	for _, typ := range []string{lds, cds} {
		if len(first[typ].GetResourceNames()) != 0 {
			t.Errorf("%s subscription %q, want wildcard (no names)", typ, first[typ].GetResourceNames())
		}
	}
	for _, typ := range []string{rds, eds, sds} {
		eqStrings(t, "first request names of "+typ, first[typ].GetResourceNames(), want[typ])
	}
}

func checkDeltaRequests(t *testing.T, srv *adsServer, c *cache.Cache) {
	reqs := srv.waitDelta(t, "an ACK of every type", func(reqs []*discovery.DeltaDiscoveryRequest) bool {
		acked := map[string]bool{}
		for _, r := range reqs {
			if r.GetResponseNonce() != "" && r.GetErrorDetail() == nil {
				acked[r.GetTypeUrl()] = true
			}
		}
		return len(acked) == len(want)
	})
	if n := reqs[0].GetNode(); n.GetId() != "envoy-1" || n.GetCluster() != group {
		t.Errorf("first request node = %v", n)
	}
	first := map[string]*discovery.DeltaDiscoveryRequest{}
	for _, r := range reqs {
		if _, ok := first[r.GetTypeUrl()]; !ok {
			first[r.GetTypeUrl()] = r
			if len(r.GetInitialResourceVersions()) != 0 || r.GetResponseNonce() != "" {
				t.Errorf("first request of %s: initial versions %v nonce %q", r.GetTypeUrl(), r.GetInitialResourceVersions(), r.GetResponseNonce())
			}
		}
	}
	for _, typ := range []string{lds, cds} {
		if len(first[typ].GetResourceNamesSubscribe()) != 0 {
			t.Errorf("%s subscription %q, want wildcard (no names)", typ, first[typ].GetResourceNamesSubscribe())
		}
	}
	for _, typ := range []string{rds, eds, sds} {
		eqStrings(t, "first subscribe of "+typ, first[typ].GetResourceNamesSubscribe(), want[typ])
	}
}

func TestNodeOnFirstRequestOnly(t *testing.T) {
	// The server copies the stream's node into every request before the
	// callback sees it, so check on the wire with a fake server.
	protocols(t, func(t *testing.T, delta bool) {
		f := startFake(t)
		startClient(t, Options{Address: f.addr, NodeID: "n", Cluster: group, Delta: delta})
		for i := range 2 {
			r := f.next(t)
			if (r.node != nil) != (i == 0) {
				t.Errorf("request %d (%s): node %v; want it on the first request only", i, r.typeURL, r.node)
			}
		}
	})
}

func TestUnsubscribesWhatIsNoLongerReferenced(t *testing.T) {
	protocols(t, func(t *testing.T, delta bool) {
		c := cache.New(cache.Options{})
		populate(t, c)
		srv := startServer(t, c, "127.0.0.1:0")
		cl, _ := startClient(t, Options{Address: srv.addr, NodeID: "envoy-1", Cluster: group, Delta: delta})
		waitState(t, cl, "full configuration", holdsAll(c))

		set(t, c, group, cds, byName(edsCluster("c2", ""), staticCluster("c3")))
		set(t, c, group, lds, byName(makeListener(t, "l80", 80, "r80", "")))
		s := waitState(t, cl, "dependents dropped", func(s Snapshot) bool {
			return slices.Equal(s.Names(eds), []string{"c2"}) && slices.Equal(s.Names(rds), []string{"r80"}) &&
				len(s.Names(sds)) == 0 && slices.Equal(s.Names(lds), []string{"l80"})
		})
		eqStrings(t, "EDS names", s.Type(eds).Names, []string{"c2"})
		eqStrings(t, "SDS names", s.Type(sds).Names, nil)
		eqStrings(t, "RDS names", s.Type(rds).Names, []string{"r80"})

		removed := map[string][]string{}
		for len(removed) < 2 {
			ev := nextEvent(t, cl)
			if len(ev.Removed) > 0 {
				removed[ev.TypeURL] = ev.Removed
			}
		}
		eqStrings(t, "CDS removed", removed[cds], []string{"c1"})
		eqStrings(t, "LDS removed", removed[lds], []string{"l443"})

		if delta {
			srv.waitDelta(t, "unsubscribe e1, r443, s1", func(reqs []*discovery.DeltaDiscoveryRequest) bool {
				un := map[string][]string{}
				for _, r := range reqs {
					if len(r.GetResourceNamesUnsubscribe()) > 0 {
						un[r.GetTypeUrl()] = r.GetResourceNamesUnsubscribe()
					}
				}
				return slices.Equal(un[eds], []string{"e1"}) && slices.Equal(un[rds], []string{"r443"}) && slices.Equal(un[sds], []string{"s1"})
			})
		} else {
			srv.waitSotw(t, "EDS [c2] and SDS [] requests", func(reqs []*discovery.DiscoveryRequest) bool {
				last := map[string]*discovery.DiscoveryRequest{}
				for _, r := range reqs {
					last[r.GetTypeUrl()] = r
				}
				return slices.Equal(last[eds].GetResourceNames(), []string{"c2"}) && last[sds] != nil &&
					len(last[sds].GetResourceNames()) == 0 && last[sds].GetResponseNonce() != ""
			})
		}

		// Referenced again: subscribed and received again.
		set(t, c, group, lds, byName(makeListener(t, "l80", 80, "r80", ""), makeListener(t, "l443", 443, "r443", "s1")))
		waitState(t, cl, "secret and route back", func(s Snapshot) bool {
			return s.Has(sds, "s1") && s.Has(rds, "r443")
		})
	})
}

func TestNack(t *testing.T) {
	protocols(t, func(t *testing.T, delta bool) {
		c := cache.New(cache.Options{})
		populate(t, c)
		srv := startServer(t, c, "127.0.0.1:0")
		var reject atomic.Bool
		cl, _ := startClient(t, Options{
			Address: srv.addr, NodeID: "envoy-1", Cluster: group, Delta: delta,
			Nack: func(typeURL string, _ []*anypb.Any) error {
				if typeURL == rds && reject.Load() {
					return errors.New("route rejected by the test")
				}
				return nil
			},
		})
		before := waitState(t, cl, "full configuration", holdsAll(c))
		for range len(want) {
			nextEvent(t, cl)
		}

		reject.Store(true)
		set(t, c, group, rds, byName(makeRoute("r80", "c2"), makeRoute("r443", "c2"), makeRoute("r-unused", "c3")))
		s := waitState(t, cl, "RDS NACKed", func(s Snapshot) bool { return s.Type(rds).NACKs == 1 })
		if s.Version(rds) != before.Version(rds) {
			t.Errorf("RDS version after NACK = %q, want the previous %q", s.Version(rds), before.Version(rds))
		}
		if got := s.Route("r80").GetVirtualHosts()[0].GetRoutes()[0].GetRoute().GetCluster(); got != "c1" {
			t.Errorf("NACKed route applied: r80 goes to %q", got)
		}
		if s.Type(rds).LastNACK != "route rejected by the test" || s.Type(rds).Nonce == before.Type(rds).Nonce {
			t.Errorf("type state after NACK: %+v", s.Type(rds))
		}
		ev := nextEvent(t, cl)
		if !ev.NACK || ev.Error != "route rejected by the test" || ev.TypeURL != rds || len(ev.Removed) != 0 {
			t.Errorf("NACK event = %+v", ev)
		}
		nonce := s.Type(rds).Nonce
		if delta {
			srv.waitDelta(t, "the NACK", func(reqs []*discovery.DeltaDiscoveryRequest) bool {
				r := reqs[len(reqs)-1]
				return r.GetTypeUrl() == rds && r.GetResponseNonce() == nonce && r.GetErrorDetail().GetMessage() == "route rejected by the test"
			})
		} else {
			srv.waitSotw(t, "the NACK", func(reqs []*discovery.DiscoveryRequest) bool {
				r := reqs[len(reqs)-1]
				return r.GetTypeUrl() == rds && r.GetResponseNonce() == nonce && r.GetVersionInfo() == before.Version(rds) &&
					r.GetErrorDetail().GetMessage() == "route rejected by the test" && slices.Equal(r.GetResourceNames(), want[rds])
			})
		}

		// The next good version is accepted.
		reject.Store(false)
		set(t, c, group, rds, byName(makeRoute("r80", "c3"), makeRoute("r443", "c2"), makeRoute("r-unused", "c3")))
		s = waitState(t, cl, "RDS accepted", func(s Snapshot) bool { return s.Version(rds) == c.Version(group, rds) })
		if got := s.Route("r80").GetVirtualHosts()[0].GetRoutes()[0].GetRoute().GetCluster(); got != "c3" {
			t.Errorf("r80 goes to %q after the fix", got)
		}
	})
}

func TestUpdatesByName(t *testing.T) {
	protocols(t, func(t *testing.T, delta bool) {
		c := cache.New(cache.Options{})
		populate(t, c)
		srv := startServer(t, c, "127.0.0.1:0")
		cl, _ := startClient(t, Options{Address: srv.addr, NodeID: "envoy-1", Cluster: group, Delta: delta})
		waitState(t, cl, "full configuration", holdsAll(c))
		for range len(want) {
			nextEvent(t, cl)
		}

		// One assignment changes: only it is sent; the other is kept.
		if _, err := c.UpdateResources(group, eds, byName(makeCLA("e1", 8080, 8082)), nil); err != nil {
			t.Fatal(err)
		}
		ev := nextEvent(t, cl)
		if ev.TypeURL != eds || ev.NACK {
			t.Fatalf("event %+v, want an EDS ACK", ev)
		}
		eqStrings(t, "EDS response", ev.Resources, []string{"e1"})
		s := cl.State()
		eqStrings(t, "EDS held", s.Names(eds), []string{"c2", "e1"})
		if n := len(s.Endpoints("e1").GetEndpoints()[0].GetLbEndpoints()); n != 2 {
			t.Errorf("e1 has %d endpoints, want 2", n)
		}

		if !delta {
			return // state-of-the-world cannot remove a name-subscribed resource
		}
		if _, err := c.UpdateResources(group, eds, nil, []string{"c2"}); err != nil {
			t.Fatal(err)
		}
		ev = nextEvent(t, cl)
		eqStrings(t, "EDS removed", ev.Removed, []string{"c2"})
		eqStrings(t, "EDS held after removal", cl.State().Names(eds), []string{"e1"})
	})
}

func TestRejectsWhatEnvoyRejects(t *testing.T) {
	f := startFake(t)
	cl, _ := startClient(t, Options{Address: f.addr, NodeID: "n", Cluster: group})
	for range 2 { // initial CDS and LDS
		f.next(t)
	}
	nonce := 0
	send := func(typeURL, version string, resources ...proto.Message) {
		nonce++
		resp := &discovery.DiscoveryResponse{TypeUrl: typeURL, VersionInfo: version, Nonce: strconv.Itoa(nonce)}
		for _, m := range resources {
			resp.Resources = append(resp.Resources, mustAny(t, m))
		}
		f.sotwOut <- resp
	}
	expectNACK := func(substr string) {
		t.Helper()
		r := f.next(t).sotw
		if r.GetTypeUrl() != lds || r.GetErrorDetail() == nil || !strings.Contains(r.GetErrorDetail().GetMessage(), substr) ||
			r.GetVersionInfo() != "" || r.GetResponseNonce() != strconv.Itoa(nonce) {
			t.Errorf("want a LDS NACK (version \"\", nonce %d) about %q, got %v", nonce, substr, r)
		}
	}

	send(lds, "v1", apiListener(t, "grpc.example.com", "r80"))
	expectNACK("api_listener")
	send(lds, "v2", makeListener(t, "l80", 80, "r80", ""), makeListener(t, "l80", 80, "r81", ""))
	expectNACK(`duplicate resource name "l80"`)
	send(lds, "v3", staticCluster("c1"))
	expectNACK("in a " + lds + " response")
	send(lds, "v4", &listenerv3.Listener{})
	expectNACK("no name")
	if s := cl.State(); len(s.Names(lds)) != 0 || s.Type(lds).NACKs != 4 || s.Version(lds) != "" {
		t.Errorf("LDS after 4 NACKs: %+v", s.Type(lds))
	}

	send(lds, "v5", makeListener(t, "l80", 80, "r80", ""))
	if r := f.next(t).sotw; r.GetTypeUrl() != lds || r.GetErrorDetail() != nil || r.GetVersionInfo() != "v5" {
		t.Errorf("want the LDS ACK of v5, got %v", r)
	}
	if r := f.next(t).sotw; r.GetTypeUrl() != rds || !slices.Equal(r.GetResourceNames(), []string{"r80"}) || r.GetResponseNonce() != "" {
		t.Errorf("want the first RDS request for r80, got %v", r)
	}
	// Not subscribed: ignored, not answered. The next request answers CDS.
	send(eds, "x", makeCLA("e1", 1))
	send(cds, "c1", staticCluster("c1"))
	if r := f.next(t).sotw; r.GetTypeUrl() != cds || r.GetVersionInfo() != "c1" {
		t.Errorf("want the CDS ACK, got %v", r)
	}
	// Route resources nobody asked for are ignored too.
	send(rds, "r1", makeRoute("r80", "c1"), makeRoute("other", "c1"))
	if r := f.next(t).sotw; r.GetTypeUrl() != rds || r.GetVersionInfo() != "r1" || r.GetErrorDetail() != nil {
		t.Errorf("want the RDS ACK, got %v", r)
	}
	eqStrings(t, "RDS held", cl.State().Names(rds), []string{"r80"})
}

func TestReconnect(t *testing.T) {
	protocols(t, func(t *testing.T, delta bool) {
		c := cache.New(cache.Options{})
		populate(t, c)
		srv := startServer(t, c, "127.0.0.1:0")
		cl, _ := startClient(t, Options{Address: srv.addr, NodeID: "envoy-1", Cluster: group, Delta: delta, Reconnect: true})
		before := waitState(t, cl, "full configuration", holdsAll(c))
		for range len(want) {
			nextEvent(t, cl)
		}

		srv.gs.Stop()
		waitState(t, cl, "disconnected", func(s Snapshot) bool { return !s.Connected })
		set(t, c, group, rds, byName(makeRoute("r80", "c2"), makeRoute("r443", "c2"), makeRoute("r-unused", "c3")))
		srv2 := startServer(t, c, srv.addr)

		s := waitState(t, cl, "reconnected and updated", func(s Snapshot) bool {
			return s.Streams == 2 && s.Version(rds) == c.Version(group, rds) && holdsAll(c)(s)
		})
		if s.Type(lds).Responses != 2 {
			t.Errorf("LDS responses = %d, want 2", s.Type(lds).Responses)
		}
		if delta {
			reqs := srv2.waitDelta(t, "initial requests", func(reqs []*discovery.DeltaDiscoveryRequest) bool { return len(reqs) >= 5 })
			first := map[string]*discovery.DeltaDiscoveryRequest{}
			for _, r := range reqs {
				if first[r.GetTypeUrl()] == nil {
					first[r.GetTypeUrl()] = r
				}
			}
			for typ := range want {
				wantVersions := map[string]string{}
				for n, r := range before.Type(typ).Resources {
					wantVersions[n] = r.Version
				}
				if got := first[typ].GetInitialResourceVersions(); !maps.Equal(got, wantVersions) {
					t.Errorf("%s initial_resource_versions = %v, want %v", typ, got, wantVersions)
				}
			}
			// Only what changed comes again: empty LDS and CDS answers
			// (full-state types always answer a first request), r80.
			ev := nextEvent(t, cl)
			for ; ev.TypeURL != rds; ev = nextEvent(t, cl) {
				if ev.Stream != 2 || len(ev.Resources) != 0 || (ev.TypeURL != lds && ev.TypeURL != cds) {
					t.Errorf("after reconnect: %+v, want an empty LDS or CDS response", ev)
				}
			}
			eqStrings(t, "RDS after reconnect", ev.Resources, []string{"r80"})
		} else {
			reqs := srv2.waitSotw(t, "initial requests", func(reqs []*discovery.DiscoveryRequest) bool { return len(reqs) >= 5 })
			for _, r := range reqs[:5] {
				if r.GetVersionInfo() != before.Version(r.GetTypeUrl()) || r.GetResponseNonce() != "" {
					t.Errorf("first %s request after reconnect: version %q nonce %q, want %q and no nonce",
						r.GetTypeUrl(), r.GetVersionInfo(), r.GetResponseNonce(), before.Version(r.GetTypeUrl()))
				}
			}
		}
	})
}

func TestRunReturnsStreamError(t *testing.T) {
	c := cache.New(cache.Options{})
	populate(t, c)
	srv := startServer(t, c, "127.0.0.1:0")
	cl, run := startClient(t, Options{Address: srv.addr, NodeID: "envoy-1", Cluster: group})
	run.allowErr = true
	waitState(t, cl, "full configuration", holdsAll(c))
	srv.gs.Stop()
	if err := run.wait(t); err == nil {
		t.Fatal("Run returned nil after the server went away")
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if _, err := cl.WaitFor(ctx, func(Snapshot) bool { return false }); err == nil || ctx.Err() != nil {
		t.Errorf("WaitFor after Run returned: err=%v ctx=%v, want an immediate error", err, ctx.Err())
	}
}

func TestSharedConnection(t *testing.T) {
	c := cache.New(cache.Options{})
	populate(t, c)
	srv := startServer(t, c, "127.0.0.1:0")
	conn, err := grpc.NewClient(srv.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() }) // after the clients' cleanups
	a, _ := startClient(t, Options{Conn: conn, NodeID: "a", Cluster: group})
	b, _ := startClient(t, Options{Conn: conn, NodeID: "b", Cluster: group, Delta: true})
	sa := waitState(t, a, "a configured", holdsAll(c))
	sb := waitState(t, b, "b configured", holdsAll(c))
	for typ := range want {
		if sa.Version(typ) != sb.Version(typ) {
			t.Errorf("%s: versions differ: %q %q", typ, sa.Version(typ), sb.Version(typ))
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if conn.GetState() == connectivity.Shutdown {
		t.Error("Close closed a connection it does not own")
	}
}

func TestDialTimesOut(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close() // nothing listens there now
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := Dial(ctx, Options{Address: addr}); err == nil {
		t.Fatal("Dial succeeded without a server")
	}
}
