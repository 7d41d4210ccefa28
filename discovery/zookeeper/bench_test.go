package zookeeper

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap"

	"github.com/hxds/hxds/discovery"
	"github.com/hxds/hxds/internal/api"
	"github.com/hxds/hxds/internal/testutil/zktest"
)

// signalPublisher hands every Update to a channel (dropping none while
// the benchmark keeps up).
type signalPublisher struct{ updates chan discovery.Service }

func (p *signalPublisher) Replace([]discovery.Service) {}
func (p *signalPublisher) Remove(string)               {}
func (p *signalPublisher) Update(s discovery.Service) {
	select {
	case p.updates <- s:
	default:
	}
}

// BenchmarkWriteToPublish measures how long a registry write takes to
// reach the Publisher through a real ZooKeeper: a Dubbo provider node
// created, and a Spring Cloud instance's data set in place. ns/op is the
// mean latency; p50/p99 are reported too.
func BenchmarkWriteToPublish(b *testing.B) {
	srv := zktest.Start(b)
	pub := &signalPublisher{updates: make(chan discovery.Service, 1024)}
	cfg := discovery.Config{Registry: api.RegistryConfig{Type: "zookeeper", Name: "zk", Domain: "127.0.0.1", Port: uint32(srv.Port())}}
	wt, err := New(cfg, pub, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	w := wt.(*Watcher)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	app := newSession(b, srv.Addr())
	app.ephemeral("/services/svc/id-1", springJSON("svc", "id-1", "10.0.0.1", 8080, nil))
	app.registerDubbo(greeting, dubboURL("10.0.0.1", 20880, greeting, ""), "10.0.0.1")
	go func() { _ = w.Run(ctx) }()
	for deadline := time.Now().Add(wait); !w.Status().Ready; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("watcher not ready")
		}
	}
	awaitUpdate := func(cond func(discovery.Service) bool) {
		timeout := time.After(wait)
		for {
			select {
			case s := <-pub.updates:
				if cond(s) {
					return
				}
			case <-timeout:
				b.Fatal("no update")
			}
		}
	}
	report := func(b *testing.B, lat []time.Duration) {
		slices.Sort(lat)
		if len(lat) > 0 {
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		}
	}

	b.Run("dubbo-provider-created", func(b *testing.B) {
		lat := make([]time.Duration, 0, b.N)
		for i := 0; i < b.N; i++ {
			port := uint32(30000 + i%30000)
			u := dubboURL("10.0.0.2", int(port), greeting, "")
			p := "/dubbo/" + greeting + "/providers/" + url.QueryEscape(u)
			t0 := time.Now()
			if _, err := app.conn.Create(p, nil, zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
				b.Fatal(err)
			}
			awaitUpdate(func(s discovery.Service) bool { return len(s.Instances) == 2 })
			lat = append(lat, time.Since(t0))
			b.StopTimer()
			if err := app.conn.Delete(p, -1); err != nil {
				b.Fatal(err)
			}
			awaitUpdate(func(s discovery.Service) bool { return len(s.Instances) == 1 })
			b.StartTimer()
		}
		report(b, lat)
	})
	seq := 0 // unique across runs: an unchanged instance is not republished
	b.Run("spring-instance-data-set", func(b *testing.B) {
		lat := make([]time.Duration, 0, b.N)
		for i := 0; i < b.N; i++ {
			seq++
			v := strconv.Itoa(seq)
			t0 := time.Now()
			app.set("/services/svc/id-1", springJSON("svc", "id-1", "10.0.0.1", 8080, map[string]string{"v": v}))
			awaitUpdate(func(s discovery.Service) bool { return len(s.Instances) == 1 && s.Instances[0].Metadata["v"] == v })
			lat = append(lat, time.Since(t0))
		}
		report(b, lat)
	})
}

// BenchmarkRelist measures a full re-list of 1,000 services × 10
// instances each, Dubbo and Spring Cloud, against a real ZooKeeper: cold
// (new session state: every watch armed, every instance read and parsed,
// a Replace published) and warm (a re-list after a reconnect within the
// session: watches still armed, nothing changed, nothing published).
func BenchmarkRelist(b *testing.B) {
	const services, perService = 1000, 10
	srv := zktest.Start(b)
	seed := newSession(b, srv.Addr())
	var ops []any
	flush := func() {
		if len(ops) == 0 {
			return
		}
		if _, err := seed.conn.Multi(ops...); err != nil {
			b.Fatal(err)
		}
		ops = ops[:0]
	}
	add := func(p string, data []byte) {
		ops = append(ops, &zk.CreateRequest{Path: p, Data: data, Acl: zk.WorldACL(zk.PermAll)})
		if len(ops) >= 500 {
			flush()
		}
	}
	add("/dubbo", nil)
	add("/services", nil)
	for s := 0; s < services; s++ {
		iface := fmt.Sprintf("com.example.Service%04d", s)
		add("/dubbo/"+iface, nil)
		add("/dubbo/"+iface+"/providers", nil)
		svc := fmt.Sprintf("svc-%04d", s)
		add("/services/"+svc, nil)
		for i := 0; i < perService; i++ {
			ip := fmt.Sprintf("10.%d.%d.%d", s/250, s%250, i+1)
			add("/dubbo/"+iface+"/providers/"+url.QueryEscape(dubboURL(ip, 20880, iface, "&version=1.0.0")), nil)
			id := fmt.Sprintf("id-%d", i)
			add("/services/"+svc+"/"+id, springJSON(svc, id, ip, 8080, map[string]string{"instance_status": "UP"}))
		}
	}
	flush()

	pub := &countPublisher{}
	cfg := discovery.Config{Registry: api.RegistryConfig{Type: "zookeeper", Name: "zk", Domain: "127.0.0.1", Port: uint32(srv.Port())}}
	wt, err := New(cfg, pub, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	w := wt.(*Watcher)
	// Drive resync directly (no Run loop): the client's events just queue.
	conn, _, err := zk.Connect([]string{srv.Addr()}, sessionTimeout, zk.WithLogInfo(false), zk.WithLogger(nopLogger{}), zk.WithEventCallback(func(ev zk.Event) { w.onEvent(w.gen, ev) }))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	w.conn = conn
	for deadline := time.Now().Add(wait); conn.State() != zk.StateHasSession; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("no session")
		}
	}
	ctx := context.Background()
	b.Run("cold", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			w.clearArmed()
			w.resetState()
			w.ready = false
			w.drain()
			b.StartTimer()
			if err := w.resync(ctx); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(pub.last), "services")
		b.ReportMetric(float64(2*services*perService), "instances")
	})
	b.Run("warm", func(b *testing.B) {
		if !w.ready { // run alone: list once first
			if err := w.resync(ctx); err != nil {
				b.Fatal(err)
			}
		}
		before := pub.replaces
		for i := 0; i < b.N; i++ {
			if err := w.resync(ctx); err != nil {
				b.Fatal(err)
			}
		}
		if pub.replaces != before {
			b.Fatalf("a warm re-list of an unchanged registry published")
		}
	})
}

type countPublisher struct{ replaces, last int }

func (p *countPublisher) Replace(s []discovery.Service) { p.replaces++; p.last = len(s) }
func (p *countPublisher) Update(discovery.Service)      {}
func (p *countPublisher) Remove(string)                 {}
