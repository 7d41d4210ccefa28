package cache

import (
	"context"
	"net"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/config"
	"github.com/envoyproxy/go-control-plane/pkg/server/sotw/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
)

// startADS runs go-control-plane's ADS server over c on 127.0.0.1 and returns
// a connected client.
func startADS(t testing.TB, c *Cache, opts ...config.XDSOption) discovery.AggregatedDiscoveryServiceClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	discovery.RegisterAggregatedDiscoveryServiceServer(gs, serverv3.NewServer(ctx, c, nil, opts...))
	go func() { _ = gs.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		cancel()
		gs.Stop()
	})
	return discovery.NewAggregatedDiscoveryServiceClient(conn)
}

// recvLoop turns a blocking Recv into a channel.
func recvLoop[T any](recv func() (T, error)) <-chan T {
	ch := make(chan T, 16)
	go func() {
		defer close(ch)
		for {
			m, err := recv()
			if err != nil {
				return
			}
			ch <- m
		}
	}()
	return ch
}

func next[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case m, ok := <-ch:
		if !ok {
			t.Fatal("stream closed")
		}
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no message from the ADS server")
	}
	var zero T
	return zero
}

func nothing[T proto.Message](t *testing.T, ch <-chan T) {
	t.Helper()
	select {
	case m := <-ch:
		t.Fatalf("unexpected message: %v", m)
	case <-time.After(200 * time.Millisecond):
	}
}

func TestADSStateOfTheWorld(t *testing.T) {
	t.Run("unordered", func(t *testing.T) { testADSStateOfTheWorld(t) })
	t.Run("ordered", func(t *testing.T) { testADSStateOfTheWorld(t, sotw.WithOrderedADS()) })
}

func testADSStateOfTheWorld(t *testing.T, opts ...config.XDSOption) {
	c := New(Options{})
	mustSet(t, c, "g1", cdsType, msgs(makeCluster("a", 1), makeCluster("b", 1)))
	mustSet(t, c, "g1", edsType, msgs(makeCLA("a", 80), makeCLA("b", 80)))
	client := startADS(t, c, opts...)
	st, err := client.StreamAggregatedResources(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	in := recvLoop(st.Recv)
	node := &core.Node{Id: "envoy-1", Cluster: "g1"}
	send := func(r *discovery.DiscoveryRequest) {
		t.Helper()
		if err := st.Send(r); err != nil {
			t.Fatal(err)
		}
	}
	ack := func(r *discovery.DiscoveryResponse, names []string) {
		send(&discovery.DiscoveryRequest{TypeUrl: r.GetTypeUrl(), VersionInfo: r.GetVersionInfo(), ResponseNonce: r.GetNonce(), ResourceNames: names})
	}

	send(&discovery.DiscoveryRequest{Node: node, TypeUrl: cdsType})
	cds := next(t, in)
	eq(t, "type", cds.GetTypeUrl(), cdsType)
	eqList(t, "CDS", names(cds.GetResources()), []string{"a", "b"})
	eq(t, "CDS version", cds.GetVersionInfo(), c.Version("g1", cdsType))
	ack(cds, nil)

	send(&discovery.DiscoveryRequest{TypeUrl: edsType, ResourceNames: []string{"a"}})
	eds := next(t, in)
	eq(t, "type", eds.GetTypeUrl(), edsType)
	eqList(t, "EDS by name", names(eds.GetResources()), []string{"a"})
	ack(eds, []string{"a"})
	nothing(t, in)

	// One cluster changes: exactly one CDS response, full state, nothing else.
	if _, err := c.UpdateResources("g1", cdsType, msgs(makeCluster("b", 2)), nil); err != nil {
		t.Fatal(err)
	}
	cds2 := next(t, in)
	eq(t, "type after cluster change", cds2.GetTypeUrl(), cdsType)
	eqList(t, "CDS full state", names(cds2.GetResources()), []string{"a", "b"})
	if cds2.GetVersionInfo() == cds.GetVersionInfo() {
		t.Fatal("version unchanged")
	}
	nothing(t, in)

	// NACK: no resend.
	send(&discovery.DiscoveryRequest{TypeUrl: cdsType, VersionInfo: cds.GetVersionInfo(), ResponseNonce: cds2.GetNonce(),
		ErrorDetail: &status.Status{Code: 3, Message: "bad cluster"}})
	nothing(t, in)

	// Endpoint change of the subscribed assignment only.
	if _, err := c.UpdateResources("g1", edsType, msgs(makeCLA("b", 81)), nil); err != nil {
		t.Fatal(err)
	}
	nothing(t, in)
	if _, err := c.UpdateResources("g1", edsType, msgs(makeCLA("a", 81)), nil); err != nil {
		t.Fatal(err)
	}
	eds2 := next(t, in)
	eq(t, "type", eds2.GetTypeUrl(), edsType)
	eqList(t, "EDS update", names(eds2.GetResources()), []string{"a"})

	// After the NACK, a corrected cluster set is delivered.
	if _, err := c.UpdateResources("g1", cdsType, msgs(makeCluster("b", 3)), nil); err != nil {
		t.Fatal(err)
	}
	cds3 := next(t, in)
	eq(t, "CDS after fix", cds3.GetVersionInfo(), c.Version("g1", cdsType))
}

func TestADSDelta(t *testing.T) {
	c := New(Options{})
	mustSet(t, c, "g1", cdsType, msgs(makeCluster("a", 1), makeCluster("b", 1)))
	mustSet(t, c, "g1", edsType, msgs(makeCLA("a", 80), makeCLA("b", 80)))
	client := startADS(t, c)
	st, err := client.DeltaAggregatedResources(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	in := recvLoop(st.Recv)
	node := &core.Node{Id: "envoy-1", Cluster: "g1"}
	send := func(r *discovery.DeltaDiscoveryRequest) {
		t.Helper()
		if err := st.Send(r); err != nil {
			t.Fatal(err)
		}
	}
	ack := func(r *discovery.DeltaDiscoveryResponse) {
		send(&discovery.DeltaDiscoveryRequest{TypeUrl: r.GetTypeUrl(), ResponseNonce: r.GetNonce()})
	}

	send(&discovery.DeltaDiscoveryRequest{Node: node, TypeUrl: cdsType})
	cds := next(t, in)
	eq(t, "type", cds.GetTypeUrl(), cdsType)
	eqList(t, "CDS", deltaNames(cds.GetResources()), []string{"a", "b"})
	eq(t, "system version", cds.GetSystemVersionInfo(), c.Version("g1", cdsType))
	ack(cds)

	send(&discovery.DeltaDiscoveryRequest{TypeUrl: edsType, ResourceNamesSubscribe: []string{"a"}})
	eds := next(t, in)
	eqList(t, "EDS by name", deltaNames(eds.GetResources()), []string{"a"})
	ack(eds)
	nothing(t, in)

	// One cluster changes: only that cluster, only CDS.
	if _, err := c.UpdateResources("g1", cdsType, msgs(makeCluster("b", 2)), nil); err != nil {
		t.Fatal(err)
	}
	cds2 := next(t, in)
	eq(t, "type", cds2.GetTypeUrl(), cdsType)
	eqList(t, "CDS delta", deltaNames(cds2.GetResources()), []string{"b"})
	eq(t, "resource version", cds2.GetResources()[0].GetVersion(), versionsOf(c, "g1", cdsType)["b"])
	nothing(t, in)

	// NACK: no resend.
	send(&discovery.DeltaDiscoveryRequest{TypeUrl: cdsType, ResponseNonce: cds2.GetNonce(),
		ErrorDetail: &status.Status{Code: 3, Message: "bad cluster"}})
	nothing(t, in)

	// Removal.
	if _, err := c.UpdateResources("g1", cdsType, nil, []string{"a"}); err != nil {
		t.Fatal(err)
	}
	cds3 := next(t, in)
	eqList(t, "removed", cds3.GetRemovedResources(), []string{"a"})
	eq(t, "no resources", len(cds3.GetResources()), 0)
	ack(cds3)

	// Endpoint change of the subscribed assignment only.
	if _, err := c.UpdateResources("g1", edsType, msgs(makeCLA("b", 81)), nil); err != nil {
		t.Fatal(err)
	}
	nothing(t, in)
	if _, err := c.UpdateResources("g1", edsType, msgs(makeCLA("a", 81)), nil); err != nil {
		t.Fatal(err)
	}
	eds2 := next(t, in)
	eq(t, "type", eds2.GetTypeUrl(), edsType)
	eqList(t, "EDS update", deltaNames(eds2.GetResources()), []string{"a"})
}
