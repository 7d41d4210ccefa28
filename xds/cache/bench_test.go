package cache

import (
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	gcpcache "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/stream/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// benchClusters builds a fresh ~100 KB cluster set (100 clusters of ~1 KB),
// as a translation would: new messages every time. rev changes cluster 0.
func benchClusters(rev int) map[string]proto.Message {
	out := make(map[string]proto.Message, 100)
	pad := strings.Repeat("x", 900)
	for i := range 100 {
		name := fmt.Sprintf("outbound|80||svc-%03d.default.svc.cluster.local", i)
		cl := makeCluster(name, 5)
		meta := map[string]any{"pad": pad, "rev": 0}
		if i == 0 {
			meta["rev"] = rev
		}
		st, err := structpb.NewStruct(meta)
		if err != nil {
			panic(err)
		}
		cl.Metadata = &core.Metadata{FilterMetadata: map[string]*structpb.Struct{"hxds": st}}
		out[name] = cl
	}
	return out
}

func setSize(c *Cache, group, typeURL string) int {
	n := 0
	for _, e := range c.Entries(group, typeURL) {
		n += len(e.Any.GetValue())
	}
	return n
}

// BenchmarkFanOut measures one changed resource in a ~100 KB CDS set reaching
// N parked SotW watches of one group: the op is SetResources (with freshly
// built messages, one of which differs) plus collecting the N responses.
func BenchmarkFanOut(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
			c := New(Options{})
			mustSet(b, c, grp, cdsType, benchClusters(0))
			current := func() map[string]string { return versionsOf(c, grp, cdsType) }
			node := &core.Node{Id: "bench", Cluster: grp}
			chans := make([]chan gcpcache.Response, n)
			cancels := make([]func(), n)
			var encodes uint64
			var deliver time.Duration
			for i := 0; b.Loop(); i++ {
				b.StopTimer()
				next := benchClusters(i + 1)
				returned := current()
				for j := range n {
					sub := stream.NewSotwSubscription(nil, true)
					sub.SetReturnedResources(maps.Clone(returned))
					chans[j] = make(chan gcpcache.Response, 1)
					cancels[j], _ = c.CreateWatch(&discovery.DiscoveryRequest{Node: node, TypeUrl: cdsType, ResponseNonce: "1"}, sub, chans[j])
				}
				if got := c.NumWatches(grp, cdsType); got != n {
					b.Fatalf("parked %d watches, want %d", got, n)
				}
				before := c.EncodeCount()
				b.StartTimer()

				start := time.Now()
				if !mustSet(b, c, grp, cdsType, next) {
					b.Fatal("no change")
				}
				var first *discovery.DiscoveryResponse
				for j := range n {
					r, _ := (<-chans[j]).GetDiscoveryResponse()
					if j == 0 {
						first = r
					}
				}
				deliver += time.Since(start)

				b.StopTimer()
				encodes += c.EncodeCount() - before
				if len(first.GetResources()) != 100 || first.GetVersionInfo() != c.Version(grp, cdsType) {
					b.Fatalf("bad response: %d resources, version %s", len(first.GetResources()), first.GetVersionInfo())
				}
				for _, cancel := range cancels {
					cancel()
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(encodes)/float64(b.N), "encodes/op")
			b.ReportMetric(float64(deliver.Microseconds())/1000/float64(b.N), "deliver-ms/op")
			b.ReportMetric(float64(setSize(c, grp, cdsType))/1024, "set-KiB")
		})
	}
}

// BenchmarkFanOutADS is the same change delivered end to end: N real gRPC ADS
// streams (go-control-plane's server over this cache, 127.0.0.1) each
// receiving the ~100 KB CDS response. Client decoding shares the same CPUs.
func BenchmarkFanOutADS(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
			c := New(Options{})
			mustSet(b, c, grp, cdsType, benchClusters(0))
			client := startADS(b, c)
			ctx := b.Context()
			var wg sync.WaitGroup
			got := make(chan string, n)
			ready := make(chan struct{}, n)
			for range n {
				st, err := client.StreamAggregatedResources(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if err := st.Send(&discovery.DiscoveryRequest{Node: &core.Node{Id: "e", Cluster: grp}, TypeUrl: cdsType}); err != nil {
					b.Fatal(err)
				}
				wg.Go(func() {
					for {
						r, err := st.Recv()
						if err != nil {
							return
						}
						if err := st.Send(&discovery.DiscoveryRequest{TypeUrl: cdsType, VersionInfo: r.GetVersionInfo(), ResponseNonce: r.GetNonce()}); err != nil {
							return
						}
						if r.GetVersionInfo() == c.Version(grp, cdsType) && len(r.GetResources()) == 100 {
							got <- r.GetVersionInfo()
						}
					}
				})
			}
			for range n { // initial state
				<-got
			}
			close(ready)
			waitParked := func() {
				for c.NumWatches(grp, cdsType) < n {
					time.Sleep(time.Millisecond)
				}
			}
			var encodes uint64
			for i := 0; b.Loop(); i++ {
				b.StopTimer()
				next := benchClusters(i + 1)
				waitParked()
				before := c.EncodeCount()
				b.StartTimer()
				if !mustSet(b, c, grp, cdsType, next) {
					b.Fatal("no change")
				}
				for range n {
					<-got
				}
				b.StopTimer()
				encodes += c.EncodeCount() - before
				b.StartTimer()
			}
			b.ReportMetric(float64(encodes)/float64(b.N), "encodes/op")
			b.ReportMetric(float64(setSize(c, grp, cdsType))/1024, "set-KiB")
		})
	}
}

// BenchmarkEndpointChange measures what one changed ClusterLoadAssignment
// among N costs the cache with W connected clients subscribed by name to all
// N (as Envoy subscribes to EDS): the op is UpdateResources plus, per client,
// taking the response and the ACK (the next request, which parks a new watch)
// the way go-control-plane's servers drive the cache (no gRPC). "full" is the
// same with incremental evaluation off (the behaviour before it existed).
func BenchmarkEndpointChange(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		for _, w := range []int{1, 100} {
			for _, proto := range []string{"sotw", "delta"} {
				for _, mode := range []string{"incremental", "full"} {
					b.Run(fmt.Sprintf("resources=%d/watches=%d/%s/%s", n, w, proto, mode), func(b *testing.B) {
						benchEndpointChange(b, n, w, proto == "delta", mode == "full")
					})
				}
			}
		}
	}
}

func benchEndpointChange(b *testing.B, n, watches int, delta, fullOnly bool) {
	c := New(Options{})
	c.fullOnly = fullOnly
	names := make([]string, n)
	set := make(map[string]proto.Message, n)
	for i := range n {
		names[i] = fmt.Sprintf("outbound|8080||svc-%05d.DEFAULT-GROUP.public.nacos", i)
		set[names[i]] = makeCLA(names[i], 8080)
	}
	mustSet(b, c, grp, edsType, set)
	clients := make([]*stepClient, watches)
	for i := range clients {
		cl := newStepClient(b, c, edsType, delta)
		cl.request(names, false)
		if _, ok := cl.receive(); !ok {
			b.Fatal("no initial response")
		}
		cl.request(nil, false)
		clients[i] = cl
	}
	// Two versions per name, built beforehand: the op measures the cache.
	alt := [2][]proto.Message{make([]proto.Message, n), make([]proto.Message, n)}
	for i := range n {
		alt[0][i] = makeCLA(names[i], 8080, 9090)
		alt[1][i] = makeCLA(names[i], 8080)
	}
	for i := 0; b.Loop(); i++ {
		k := i % n
		if _, err := c.UpdateResources(grp, edsType, map[string]proto.Message{names[k]: alt[(i/n)%2][k]}, nil); err != nil {
			b.Fatal(err)
		}
		for _, cl := range clients {
			if !cl.take() {
				b.Fatal("no response")
			}
			cl.request(nil, false)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*watches)/1000, "us/change/watch")
}
