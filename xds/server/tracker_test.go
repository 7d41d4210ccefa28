package server

import (
	"context"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"google.golang.org/genproto/googleapis/rpc/status"

	_ "github.com/hxds/hxds/internal/testutil"
)

func groupOf(n *corev3.Node) string {
	if n.GetCluster() == "" {
		return "default"
	}
	return n.GetCluster()
}

func TestTrackerSotwAckAndNack(t *testing.T) {
	tr := NewTracker(groupOf, prometheus.NewRegistry(), zap.NewNop())
	node := &corev3.Node{Id: "envoy-1", Cluster: "gw"}
	ctx := context.Background()
	if err := tr.OnStreamOpen(ctx, 1, resourcev3.AnyType); err != nil {
		t.Fatal(err)
	}
	req := &discovery.DiscoveryRequest{Node: node, TypeUrl: resourcev3.RouteType}
	_ = tr.OnStreamRequest(1, req)
	tr.OnStreamResponse(ctx, 1, req, &discovery.DiscoveryResponse{TypeUrl: resourcev3.RouteType, VersionInfo: "v1", Nonce: "1"})
	_ = tr.OnStreamRequest(1, &discovery.DiscoveryRequest{TypeUrl: resourcev3.RouteType, VersionInfo: "v1", ResponseNonce: "1"})
	tr.OnStreamResponse(ctx, 1, req, &discovery.DiscoveryResponse{TypeUrl: resourcev3.RouteType, VersionInfo: "v2", Nonce: "2"})
	_ = tr.OnStreamRequest(1, &discovery.DiscoveryRequest{TypeUrl: resourcev3.RouteType, VersionInfo: "v1", ResponseNonce: "2",
		ErrorDetail: &status.Status{Message: "bad route"}})

	conns := tr.Connections()
	if len(conns) != 1 || conns[0].NodeID != "envoy-1" || conns[0].Group != "gw" || conns[0].Protocol != "sotw" {
		t.Fatalf("connections = %+v", conns)
	}
	ts := conns[0].Types[0]
	if ts.SentVersion != "v2" || ts.AckedVersion != "v1" || ts.Pushes != 2 {
		t.Fatalf("type state = %+v, want sent v2, acked v1, 2 pushes", ts)
	}
	if ts.LastNack == nil || ts.LastNack.Error != "bad route" || ts.LastNack.Version != "v2" || ts.LastNack.Nonce != "2" {
		t.Fatalf("last nack = %+v", ts.LastNack)
	}
	if got := testutil.ToFloat64(tr.nacks.WithLabelValues(resourcev3.RouteType)); got != 1 {
		t.Fatalf("nacks metric = %v", got)
	}
	if got := testutil.ToFloat64(tr.connected.WithLabelValues("gw", "sotw")); got != 1 {
		t.Fatalf("connected metric = %v", got)
	}
	tr.OnStreamClosed(1, node)
	if len(tr.Connections()) != 0 || testutil.ToFloat64(tr.connected.WithLabelValues("gw", "sotw")) != 0 {
		t.Fatal("closed stream still tracked")
	}
}

func TestTrackerDeltaAckMapsNonceToVersion(t *testing.T) {
	tr := NewTracker(groupOf, prometheus.NewRegistry(), zap.NewNop())
	node := &corev3.Node{Id: "envoy-2"}
	_ = tr.OnDeltaStreamOpen(context.Background(), 7, resourcev3.AnyType)
	req := &discovery.DeltaDiscoveryRequest{Node: node, TypeUrl: resourcev3.ClusterType}
	_ = tr.OnStreamDeltaRequest(7, req)
	tr.OnStreamDeltaResponse(7, req, &discovery.DeltaDiscoveryResponse{TypeUrl: resourcev3.ClusterType, SystemVersionInfo: "c1", Nonce: "a"})
	tr.OnStreamDeltaResponse(7, req, &discovery.DeltaDiscoveryResponse{TypeUrl: resourcev3.ClusterType, SystemVersionInfo: "c2", Nonce: "b"})
	_ = tr.OnStreamDeltaRequest(7, &discovery.DeltaDiscoveryRequest{TypeUrl: resourcev3.ClusterType, ResponseNonce: "a"})
	ts := tr.Connections()[0].Types[0]
	if ts.AckedVersion != "c1" || ts.SentVersion != "c2" || tr.Connections()[0].Group != "default" {
		t.Fatalf("delta state = %+v", ts)
	}
	_ = tr.OnStreamDeltaRequest(7, &discovery.DeltaDiscoveryRequest{TypeUrl: resourcev3.ClusterType, ResponseNonce: "b",
		ErrorDetail: &status.Status{Message: "nope"}})
	ts = tr.Connections()[0].Types[0]
	if ts.AckedVersion != "c1" || ts.LastNack == nil || ts.LastNack.Version != "c2" {
		t.Fatalf("after nack = %+v", ts)
	}
}

// TestTrackerKeepsSotwAndDeltaStreamsApart: both protocols number streams
// from 1; one must not overwrite or close the other.
func TestTrackerKeepsSotwAndDeltaStreamsApart(t *testing.T) {
	tr := NewTracker(groupOf, prometheus.NewRegistry(), zap.NewNop())
	ctx := context.Background()
	_ = tr.OnStreamOpen(ctx, 1, resourcev3.AnyType)
	_ = tr.OnDeltaStreamOpen(ctx, 1, resourcev3.AnyType)
	_ = tr.OnStreamRequest(1, &discovery.DiscoveryRequest{Node: &corev3.Node{Id: "sotw", Cluster: "gw"}, TypeUrl: resourcev3.ClusterType})
	_ = tr.OnStreamDeltaRequest(1, &discovery.DeltaDiscoveryRequest{Node: &corev3.Node{Id: "delta", Cluster: "gw"}, TypeUrl: resourcev3.ClusterType})
	if c := tr.Connections(); len(c) != 2 || c[0].NodeID != "sotw" || c[1].NodeID != "delta" {
		t.Fatalf("connections = %+v", c)
	}
	tr.OnDeltaStreamClosed(1, nil)
	if c := tr.Connections(); len(c) != 1 || c[0].NodeID != "sotw" {
		t.Fatalf("after closing the delta stream: %+v", c)
	}
	if got := testutil.ToFloat64(tr.connected.WithLabelValues("gw", "sotw")); got != 1 {
		t.Fatalf("sotw gauge = %v", got)
	}
	if got := testutil.ToFloat64(tr.connected.WithLabelValues("gw", "delta")); got != 0 {
		t.Fatalf("delta gauge = %v", got)
	}
}
