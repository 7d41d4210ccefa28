package fleet_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/hxds/hxds/internal/app"
	"github.com/hxds/hxds/internal/gen"
	"github.com/hxds/hxds/internal/gen/fleet"
	_ "github.com/hxds/hxds/internal/testutil"
	"github.com/hxds/hxds/translate/input"
)

// startServer runs hxds on a small generated config dir with the probe.
func startServer(t *testing.T) (dir, addr string, probe gen.Probe) {
	t.Helper()
	dir = t.TempDir()
	if err := gen.WriteDir(dir, gen.Spec{Ingresses: 20, RulesPerIngress: 2, PathsPerRule: 2, TLSHosts: 4}); err != nil {
		t.Fatal(err)
	}
	if err := probe.WriteRoute(dir, 1); err != nil {
		t.Fatal(err)
	}
	if err := probe.WriteEndpoints(dir, 1); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	listening := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, app.Config{
			XDSAddress: "127.0.0.1:0", AdminAddress: "127.0.0.1:0", ConfigDir: dir,
			Options: input.DefaultOptions(), DebounceHoldoff: 5 * time.Millisecond, DebounceMax: 100 * time.Millisecond,
			Log: zap.NewNop(), Listening: func(x, _ net.Addr) { listening <- x },
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	select {
	case a := <-listening:
		return dir, a.String(), probe
	case err := <-done:
		t.Fatalf("app.Run: %v", err)
	}
	return
}

func TestFleet(t *testing.T) {
	dir, addr, probe := startServer(t)
	routeRev, epRev, rev := 1, 1, 1
	for _, mode := range []struct {
		light, delta bool
		conns        int
	}{{false, false, 0}, {false, true, 2}, {true, false, 0}, {true, true, 2}} {
		t.Run(fmt.Sprintf("light=%v/delta=%v/conns=%d", mode.light, mode.delta, mode.conns), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			f, err := fleet.Start(ctx, fleet.Options{
				Address: addr, Clients: 5, Conns: mode.conns, Light: mode.light, Delta: mode.delta,
				Ready: []fleet.Check{fleet.RouteRev("http.80", gen.ProbeHost, routeRev), fleet.EndpointRev(probe.ClusterName(), epRev)},
			})
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			ready, err := f.WaitReady(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(ready) != 5 {
				t.Fatalf("%d ready", len(ready))
			}
			for _, kind := range []string{"route", "endpoint"} {
				rev++
				var x *fleet.Expectation
				start := time.Now()
				if kind == "route" {
					x = f.Expect(fleet.RouteRev("http.80", gen.ProbeHost, rev))
					err = probe.WriteRoute(dir, rev)
					routeRev = rev
				} else {
					x = f.Expect(fleet.EndpointRev(probe.ClusterName(), rev))
					err = probe.WriteEndpoints(dir, rev)
					epRev = rev
				}
				if err != nil {
					t.Fatal(err)
				}
				lats, err := x.Wait(ctx, start)
				if err != nil {
					t.Fatalf("%s change: %v", kind, err)
				}
				s := fleet.Summarize(lats)
				if s.N != 5 || s.Min <= 0 {
					t.Errorf("%s change: %+v", kind, s)
				}
			}
			if h := f.Health(); h.NACKs+h.Reconnects+h.Failed+h.DroppedEvents > 0 {
				t.Errorf("health: %+v", h)
			}
		})
	}
}

func TestContainsString(t *testing.T) {
	for _, c := range []struct {
		raw  []byte
		s    string
		want bool
	}{
		{[]byte{0x12, 7, '/', 'r', 'e', 'v', '/', '1', '2'}, "/rev/12", true},
		{[]byte{0x12, 8, '/', 'r', 'e', 'v', '/', '1', '2', '3'}, "/rev/12", false},
		{[]byte{0x12, 8, '/', 'r', 'e', 'v', '/', '1', '2', '3'}, "/rev/123", true},
	} {
		if got := fleet.ContainsString(c.raw, c.s); got != c.want {
			t.Errorf("ContainsString(%q, %q) = %v", c.raw, c.s, got)
		}
	}
}

func TestSummarize(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	s := fleet.Summarize(ds)
	if s.P50 != 50*time.Millisecond || s.P99 != 99*time.Millisecond || s.Max != 100*time.Millisecond || s.Min != time.Millisecond {
		t.Errorf("%+v", s)
	}
}
