package nacos

// NOTE: benchmarks run against the protocol fakes (nacostest.Server,
// nacostest.V1Server); no real Nacos server can run on this machine. The
// figures are the watcher's
// and the SDK types' own cost plus loopback gRPC/HTTP, not a server's.

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nacos-group/nacos-sdk-go/v2/model"

	"github.com/hxds/hxds/discovery"
	"github.com/hxds/hxds/discovery/nacos/nacostest"
	"github.com/hxds/hxds/internal/api"
)

// chanPublisher hands every publication to channels.
type chanPublisher struct {
	updates  chan discovery.Service
	replaces chan int
}

func newChanPublisher() *chanPublisher {
	return &chanPublisher{updates: make(chan discovery.Service, 1024), replaces: make(chan int, 16)}
}

func (p *chanPublisher) Replace(s []discovery.Service) { p.replaces <- len(s) }
func (p *chanPublisher) Update(s discovery.Service)    { p.updates <- s }
func (p *chanPublisher) Remove(string)                 {}

// BenchmarkV2PushLatency: the fake server changes an instance's weight and
// pushes it; measured until the watcher's Publisher.Update returns.
func BenchmarkV2PushLatency(b *testing.B) {
	f := nacostest.NewServer(b)
	f.Set("public", "DEFAULT_GROUP", "svc-a", []model.Instance{nacostest.Instance("10.0.0.1", 80, 1, nil)})
	pub := newChanPublisher()
	startV2(b, v2Config(f), discovery.Auth{}, pub, func(w *V2Watcher) { w.refresh = time.Hour })
	select {
	case <-pub.replaces:
	case <-time.After(10 * time.Second):
		b.Fatal("no listing")
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		w := uint32(i%1000 + 2)
		start := time.Now()
		f.Set("public", "DEFAULT_GROUP", "svc-a", []model.Instance{nacostest.Instance("10.0.0.1", 80, float64(w), nil)})
		for {
			s := <-pub.updates
			if s.Instances[0].Weight == w {
				break
			}
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs/push")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs/push")
}

func fill1000x10(set func(group, name string, i int)) {
	for i := range 1000 {
		set("DEFAULT_GROUP", fmt.Sprintf("svc-%04d", i), i)
	}
}

// BenchmarkV2Listing1000x10: connect, list 1,000 services (20 pages),
// subscribe each, build and publish 1,000 services of 10 instances.
func BenchmarkV2Listing1000x10(b *testing.B) {
	f := nacostest.NewServer(b)
	fill1000x10(func(g, n string, i int) {
		var ins []model.Instance
		for j := range 10 {
			ins = append(ins, nacostest.Instance(fmt.Sprintf("10.%d.%d.%d", i/256, i%256, j), 8080, 1, map[string]string{"zone": "z", "version": "v1"}))
		}
		f.Set("public", g, n, ins)
	})
	b.ResetTimer()
	for range b.N {
		pub := newChanPublisher()
		ctx, cancel := context.WithCancel(context.Background())
		wi, _ := NewV2(discovery.Config{Registry: v2Config(f)}, pub, testLog())
		w := wi.(*V2Watcher)
		w.refresh = time.Hour
		done := make(chan struct{})
		go func() { defer close(done); w.Run(ctx) }()
		select {
		case n := <-pub.replaces:
			if n != 1000 {
				b.Fatalf("listed %d services", n)
			}
		case <-time.After(60 * time.Second):
			b.Fatal("no listing")
		}
		cancel()
		<-done
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/listing")
}

// BenchmarkV1Listing1000x10: one Nacos 1.x sweep (20 list pages and 1,000
// instance lists over HTTP) that publishes 1,000 services of 10 instances;
// and a steady sweep that finds nothing changed.
func BenchmarkV1Listing1000x10(b *testing.B) {
	f := nacostest.NewV1Server(b)
	fill1000x10(func(g, n string, i int) {
		var hs []nacostest.V1Host
		for j := range 10 {
			hs = append(hs, nacostest.V1Instance(fmt.Sprintf("10.%d.%d.%d", i/256, i%256, j), 8080, 1, map[string]string{"zone": "z", "version": "v1"}))
		}
		f.Set("public", g, n, hs)
	})
	cfg := api.RegistryConfig{Type: TypeV1, Name: "reg", Domain: "127.0.0.1", Port: uint32(f.Port()), NacosGroups: []string{"DEFAULT_GROUP"}}
	b.Run("first", func(b *testing.B) {
		for range b.N {
			pub := newChanPublisher()
			wi, _ := NewV1(discovery.Config{Registry: cfg}, pub, testLog())
			if err := wi.(*V1Watcher).sweep(context.Background()); err != nil {
				b.Fatal(err)
			}
			if n := <-pub.replaces; n != 1000 {
				b.Fatalf("listed %d", n)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/sweep")
	})
	b.Run("steady", func(b *testing.B) {
		pub := newChanPublisher()
		wi, _ := NewV1(discovery.Config{Registry: cfg}, pub, testLog())
		w := wi.(*V1Watcher)
		if err := w.sweep(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for range b.N {
			if err := w.sweep(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
		if len(pub.updates) != 0 {
			b.Fatalf("steady sweeps published %d updates", len(pub.updates))
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/sweep")
	})
}
