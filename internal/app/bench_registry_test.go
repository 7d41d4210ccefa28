package app_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/hxds/hxds/discovery"
	"github.com/hxds/hxds/internal/app"
	"github.com/hxds/hxds/internal/gen"
	"github.com/hxds/hxds/internal/gen/fleet"
	"github.com/hxds/hxds/translate/input"
)

var (
	registryServices  = flag.Int("registry.services", 1000, "BenchmarkRegistryEndpointPush: registry services")
	registryInstances = flag.Int("registry.instances", 10, "BenchmarkRegistryEndpointPush: instances per service")
	registryDelta     = flag.Bool("registry.delta", false, "BenchmarkRegistryEndpointPush: clients use delta xDS")
)

// benchRegistry is a registry type whose watcher hands its Publisher to the
// benchmark, which plays the registry.
type benchRegistry struct {
	once sync.Once
	pub  chan discovery.Publisher
}

type benchWatcher struct {
	discovery.Tracker
	r   *benchRegistry
	pub discovery.Publisher
}

func (w *benchWatcher) Run(ctx context.Context) error {
	w.Synced(true)
	w.r.once.Do(func() { w.r.pub <- w.pub })
	<-ctx.Done()
	return nil
}

func registryHost(i int) string { return fmt.Sprintf("svc-%04d.DEFAULT-GROUP.public.nacos", i) }

func registryCluster(i int) string { return "outbound|8080||" + registryHost(i) }

// registryService is service i; its first instance carries rev in its
// address (gen.EndpointAddress), which fleet.EndpointRev reads.
func registryService(i, instances, rev int) discovery.Service {
	s := discovery.Service{Host: registryHost(i), Port: 8080, Protocol: discovery.ProtocolHTTP}
	s.Instances = append(s.Instances, discovery.Instance{Address: gen.EndpointAddress(rev), Port: 8080, Weight: 1})
	for j := 1; j < instances; j++ {
		s.Instances = append(s.Instances, discovery.Instance{Address: fmt.Sprintf("10.%d.%d.%d", i/250, i%250, j), Port: 8080, Weight: 1})
	}
	return s
}

// BenchmarkRegistryEndpointPush is end to end: hxds (app.Run) with a
// registry of -registry.services services × -registry.instances instances
// and N adsclient clients holding every cluster and assignment. An op
// changes one instance of one service (a different service each op) as a
// registry watcher would publish it, and waits until every client has
// decoded the new ClusterLoadAssignment: the registry → EDS push latency,
// without translation. p50-ms/p99-ms are over every client of every op.
// The "trickle" sub-benchmark publishes one change every 10 ms and reports
// the process CPU per change (server and clients share the process).
func BenchmarkRegistryEndpointPush(b *testing.B) {
	for _, clients := range []int{1, 100} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			dir := b.TempDir()
			if err := gen.WriteDir(dir, gen.ForRoutes(10)); err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "50-mcpbridge.yaml"), []byte(`apiVersion: networking.higress.io/v1
kind: McpBridge
metadata: {name: default, namespace: higress-system}
spec:
  registries:
  - {type: bench, name: bench, domain: 127.0.0.1, port: 1}
`), 0o644); err != nil {
				b.Fatal(err)
			}
			reg := &benchRegistry{pub: make(chan discovery.Publisher, 1)}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			listening := make(chan net.Addr, 1)
			done := make(chan error, 1)
			go func() {
				done <- app.Run(ctx, app.Config{
					XDSAddress: "127.0.0.1:0", AdminAddress: "127.0.0.1:0", ConfigDir: dir,
					Options: input.DefaultOptions(), DebounceHoldoff: 50 * time.Millisecond, DebounceMax: 500 * time.Millisecond,
					Registries: map[string]discovery.Factory{"bench": func(_ discovery.Config, pub discovery.Publisher, _ *zap.Logger) (discovery.Watcher, error) {
						return &benchWatcher{r: reg, pub: pub}, nil
					}},
					RegistryGrace: time.Minute,
					Log:           zap.NewNop(),
					Listening:     func(x, _ net.Addr) { listening <- x },
				})
			}()
			defer func() {
				cancel()
				if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
					b.Errorf("app.Run: %v", err)
				}
			}()
			var addr net.Addr
			select {
			case addr = <-listening:
			case err := <-done:
				b.Fatalf("app.Run: %v", err)
			}
			pub := <-reg.pub
			n, per := *registryServices, *registryInstances
			all := make([]discovery.Service, n)
			for i := range all {
				all[i] = registryService(i, per, 1)
			}
			pub.Replace(all)

			fl, err := fleet.Start(ctx, fleet.Options{
				Address: addr.String(), Clients: clients, Delta: *registryDelta,
				Ready: []fleet.Check{fleet.EndpointRev(registryCluster(0), 1), fleet.EndpointRev(registryCluster(n-1), 1)},
			})
			if err != nil {
				b.Fatal(err)
			}
			defer fl.Close()
			rctx, rcancel := context.WithTimeout(ctx, 5*time.Minute)
			if _, err := fl.WaitReady(rctx); err != nil {
				rcancel()
				b.Fatal(err)
			}
			rcancel()

			rev := 1
			b.Run("change", func(b *testing.B) {
				var lats []time.Duration
				for b.Loop() {
					rev++
					i := rev % n
					x := fl.Expect(fleet.EndpointRev(registryCluster(i), rev))
					start := time.Now()
					pub.Update(registryService(i, per, rev))
					wctx, wcancel := context.WithTimeout(ctx, time.Minute)
					got, err := x.Wait(wctx, start)
					wcancel()
					if err != nil {
						b.Fatal(err)
					}
					lats = append(lats, got...)
				}
				s := fleet.Summarize(lats)
				b.ReportMetric(float64(s.P50.Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(s.P99.Microseconds())/1000, "p99-ms")
				b.ReportMetric(float64(s.Max.Microseconds())/1000, "max-ms")
			})
			b.Run("trickle", func(b *testing.B) {
				cpu := processCPU()
				var last *fleet.Expectation
				tick := time.NewTicker(10 * time.Millisecond)
				defer tick.Stop()
				for b.Loop() {
					<-tick.C
					rev++
					i := rev % n
					last = fl.Expect(fleet.EndpointRev(registryCluster(i), rev))
					pub.Update(registryService(i, per, rev))
				}
				if last != nil {
					wctx, wcancel := context.WithTimeout(ctx, time.Minute)
					_, err := last.Wait(wctx, time.Now())
					wcancel()
					if err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64((processCPU()-cpu).Microseconds())/float64(b.N), "cpu-us/change")
			})
			if h := fl.Health(); h.NACKs > 0 || h.Reconnects > 0 {
				b.Errorf("client trouble: %+v", h)
			}
		})
	}
}

// processCPU is the user+system CPU time of this process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
