package app_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"testing"
	"time"

	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/hxds/hxds/internal/app"
	"github.com/hxds/hxds/internal/gen"
	"github.com/hxds/hxds/internal/gen/fleet"
	"github.com/hxds/hxds/translate"
	"github.com/hxds/hxds/translate/input"
)

var (
	fanoutDebounce = flag.Duration("fanout.debounce", 50*time.Millisecond,
		"BenchmarkPushFanOut: --debounce-holdoff of the server (hxds serve default 50ms)")
	fanoutRoutes = flag.Int("fanout.routes", 500,
		"BenchmarkPushFanOut: routes of the generated configuration (500 gives a ~90 KB http.80 route table)")
	fanoutDelta = flag.Bool("fanout.delta", false, "BenchmarkPushFanOut: clients use delta xDS")
	fanoutLight = flag.Bool("fanout.light", false,
		"BenchmarkPushFanOut: light clients that do not decode routes/endpoints (measures the server, not the clients)")
)

// fanoutServer is hxds (app.Run) serving a generated config dir on loopback.
type fanoutServer struct {
	dir   string
	xds   string
	probe gen.Probe
}

func startFanoutServer(b *testing.B, spec gen.Spec) *fanoutServer {
	b.Helper()
	s := &fanoutServer{dir: b.TempDir()}
	if err := gen.WriteDir(s.dir, spec); err != nil {
		b.Fatal(err)
	}
	if err := s.probe.WriteRoute(s.dir, 1); err != nil {
		b.Fatal(err)
	}
	if err := s.probe.WriteEndpoints(s.dir, 1); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	listening := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, app.Config{
			XDSAddress: "127.0.0.1:0", AdminAddress: "127.0.0.1:0", ConfigDir: s.dir,
			Options:         input.DefaultOptions(),
			DebounceHoldoff: *fanoutDebounce, DebounceMax: max(*fanoutDebounce*10, 500*time.Millisecond),
			Log:       zap.NewNop(),
			Listening: func(xds, _ net.Addr) { listening <- xds },
		})
	}()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			b.Errorf("app.Run: %v", err)
		}
	})
	select {
	case a := <-listening:
		s.xds = a.String()
	case err := <-done:
		b.Fatalf("app.Run: %v", err)
	case <-time.After(time.Minute):
		b.Fatal("server did not start listening")
	}
	return s
}

// probeAt are the fleet checks that the probe is at rev.
func probeAt(p gen.Probe, rev int) []fleet.Check {
	return []fleet.Check{fleet.RouteRev("http.80", gen.ProbeHost, rev), fleet.EndpointRev(p.ClusterName(), rev)}
}

// BenchmarkPushFanOut is end to end: hxds (app.Run on a generated config
// dir, gen.ForRoutes(-fanout.routes)) with N connected adsclient clients,
// each on its own gRPC connection, all holding the full configuration. An op
// changes one route (rewrites the probe Ingress file: the http.80 route table
// changes) or one endpoint (rewrites the probe EndpointSlice file: one
// ClusterLoadAssignment changes) and waits until all N clients have decoded
// the new version. ms/op ≈ the time until the last client has it; p50-ms,
// p99-ms and max-ms are over every client of every op. The route path
// includes the config-dir watcher's 20 ms quiet period and the translation
// debounce (-fanout.debounce, default 50 ms as `hxds serve`); the endpoint
// path skips translation and the debounce. Clients share the 2 CPUs with the
// server. Use -benchtime=Nx (e.g. 20x): each op takes 0.1-1 s.
func BenchmarkPushFanOut(b *testing.B) {
	spec := gen.ForRoutes(*fanoutRoutes)
	opts := input.DefaultOptions()
	routeKiB := float64(proto.Size(translate.Translate(gen.Inputs(spec), opts).Groups[opts.Group].Routes[0])) / 1024
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
			srv := startFanoutServer(b, spec)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			fl, err := fleet.Start(ctx, fleet.Options{
				Address: srv.xds, Clients: n, Delta: *fanoutDelta, Light: *fanoutLight, Ready: probeAt(srv.probe, 1),
			})
			if err != nil {
				b.Fatal(err)
			}
			defer fl.Close()
			readyCtx, readyCancel := context.WithTimeout(ctx, 5*time.Minute)
			ready, err := fl.WaitReady(readyCtx)
			readyCancel()
			if err != nil {
				b.Fatal(err)
			}
			readyAll := fleet.Max(ready)
			rev := 1
			for _, kind := range []string{"route", "endpoint"} {
				b.Run(kind, func(b *testing.B) {
					var lats []time.Duration
					var all time.Duration
					b.ReportAllocs()
					for b.Loop() {
						rev++
						r := rev
						var x *fleet.Expectation
						var write func() error
						if kind == "route" {
							x = fl.Expect(fleet.RouteRev("http.80", gen.ProbeHost, r))
							write = func() error { return srv.probe.WriteRoute(srv.dir, r) }
						} else {
							x = fl.Expect(fleet.EndpointRev(srv.probe.ClusterName(), r))
							write = func() error { return srv.probe.WriteEndpoints(srv.dir, r) }
						}
						start := time.Now()
						if err := write(); err != nil {
							b.Fatal(err)
						}
						wctx, wcancel := context.WithTimeout(ctx, time.Minute)
						got, err := x.Wait(wctx, start)
						wcancel()
						if err != nil {
							b.Fatal(err)
						}
						lats = append(lats, got...)
						all += fleet.Max(got)
					}
					b.StopTimer()
					s := fleet.Summarize(lats)
					b.ReportMetric(float64(all.Microseconds())/1000/float64(b.N), "all-ms/op")
					b.ReportMetric(float64(s.P50.Microseconds())/1000, "p50-ms")
					b.ReportMetric(float64(s.P99.Microseconds())/1000, "p99-ms")
					b.ReportMetric(float64(s.Max.Microseconds())/1000, "max-ms")
					b.ReportMetric(float64(readyAll.Milliseconds()), "full-config-ms")
					if kind == "route" {
						b.ReportMetric(routeKiB, "rds-KiB")
					}
					if h := fl.Health(); h.NACKs > 0 || h.Reconnects > 0 {
						b.Errorf("client trouble: %+v", h)
					}
				})
			}
		})
	}
}
