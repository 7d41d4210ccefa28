package translate_test

import (
	"testing"
	"time"

	"github.com/hxds/hxds/internal/gen"
	_ "github.com/hxds/hxds/internal/testutil"
	"github.com/hxds/hxds/translate"
	"github.com/hxds/hxds/translate/input"
)

// translateCases are the benchmark sizes: Ingress rules (= hosts) in the
// gen.ForRoutes shape (2 hosts × 2 paths per Ingress, so routes = 2 × rules,
// 10% of hosts on TLS, one Service per 2 routes), plus the DESIGN.md budget
// point of 3,000 routes (≤ 50 ms).
var translateCases = []struct {
	name string
	spec gen.Spec
}{
	{"rules=100", gen.ForRoutes(200)},
	{"rules=1000", gen.ForRoutes(2000)},
	{"rules=10000", gen.ForRoutes(20000)},
	{"routes=3000", gen.ForRoutes(3000)},
}

// BenchmarkTranslate is a full translation (front-end, IR, envoy.Build) of
// a generated snapshot, as every configuration change runs it today.
func BenchmarkTranslate(b *testing.B) {
	opts := input.DefaultOptions()
	for _, c := range translateCases {
		b.Run(c.name, func(b *testing.B) {
			snap := gen.Inputs(c.spec)
			res := translate.Translate(snap, opts)
			if n := res.Diagnostics.Rejected(); n != 0 {
				b.Fatalf("%d objects rejected", n)
			}
			r := res.Groups[opts.Group]
			envoyRoutes := 0
			for _, rc := range r.Routes {
				for _, vh := range rc.GetVirtualHosts() {
					envoyRoutes += len(vh.GetRoutes())
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for b.Loop() {
				translate.Translate(snap, opts)
			}
			b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(b.N), "ms/op")
			b.ReportMetric(float64(c.spec.Routes()), "routes")
			b.ReportMetric(float64(envoyRoutes), "envoy-routes")
			b.ReportMetric(float64(len(r.Clusters)), "clusters")
		})
	}
}

// BenchmarkTranslateOneRouteChange is the translation part of a one-route
// change: the same full Translate on a snapshot in which one Ingress
// changed. DESIGN.md budgets ≤ 2 ms; hxds re-translates everything, so this
// is BenchmarkTranslate again on a slightly different input.
func BenchmarkTranslateOneRouteChange(b *testing.B) {
	opts := input.DefaultOptions()
	for _, c := range []struct {
		name string
		spec gen.Spec
	}{
		{"routes=3000", gen.ForRoutes(3000)},
		{"hosts=20000", gen.ForRoutes(40000)},
	} {
		b.Run(c.name, func(b *testing.B) {
			base := gen.Inputs(c.spec)
			snaps := make([]*input.Snapshot, 8)
			for i := range snaps {
				snaps[i] = gen.WithIngress(base, c.spec, c.spec.Ingresses/2, i+1)
			}
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for i := 0; b.Loop(); i++ {
				translate.Translate(snaps[i%len(snaps)], opts)
			}
			b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(b.N), "ms/op")
		})
	}
}
