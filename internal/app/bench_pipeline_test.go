package app_test

import (
	"fmt"
	"maps"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"

	"github.com/hxds/hxds/internal/app"
	"github.com/hxds/hxds/internal/gen"
	"github.com/hxds/hxds/internal/store"
	_ "github.com/hxds/hxds/internal/testutil"
	"github.com/hxds/hxds/translate"
	"github.com/hxds/hxds/translate/input"
)

// benchEnv is a store and a pipeline holding a generated configuration, as
// the running server holds it after its first translation.
type benchEnv struct {
	spec    gen.Spec
	opts    input.Options
	store   *store.Store
	objects map[input.Key]k8sruntime.Object
	reg     *prometheus.Registry
	p       *app.Pipeline
	last    *translate.Result
}

func newBenchEnv(tb testing.TB, spec gen.Spec) *benchEnv {
	tb.Helper()
	e := &benchEnv{spec: spec, opts: input.DefaultOptions(), store: store.New(), objects: gen.Map(spec), reg: prometheus.NewRegistry()}
	e.store.Replace(e.objects)
	e.p = app.NewPipeline(e.opts, e.store.Slices, e.reg, zap.NewNop())
	res, err := e.p.Rebuild(e.store.Snapshot())
	if err != nil {
		tb.Fatal(err)
	}
	if n := res.Diagnostics.Rejected(); n != 0 {
		tb.Fatalf("%d objects rejected", n)
	}
	e.last = res
	return e
}

// translationSeconds is the sum of hxds_translation_duration_seconds: the
// translation part of every Rebuild so far.
func (e *benchEnv) translationSeconds(tb testing.TB) float64 {
	mfs, err := e.reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "hxds_translation_duration_seconds" {
			return mf.GetMetric()[0].GetHistogram().GetSampleSum()
		}
	}
	tb.Fatal("no hxds_translation_duration_seconds")
	return 0
}

func reportMS(b *testing.B, d time.Duration, unit string) {
	b.ReportMetric(float64(d.Microseconds())/1000/float64(b.N), unit)
}

// BenchmarkRebuildOneRouteChange is Pipeline.Rebuild (full translation +
// publish) of a snapshot in which one Ingress path changed, the work a
// one-route change costs the server after the debounce. translate-ms/op is
// the translation alone (DESIGN.md: ≤ 2 ms; hxds re-translates everything),
// publish-ms/op the diff against the cache and encoding, encodes/op the
// resources marshalled (the http.80 route table: 1).
func BenchmarkRebuildOneRouteChange(b *testing.B) {
	for _, c := range []struct {
		name string
		spec gen.Spec
	}{
		{"routes=3000", gen.ForRoutes(3000)},
		{"hosts=20000", gen.ForRoutes(40000)},
	} {
		b.Run(c.name, func(b *testing.B) {
			e := newBenchEnv(b, c.spec)
			base := e.store.Snapshot()
			changed := c.spec.Ingresses / 2 // not a TLS host: one route table changes
			snaps := [2]*input.Snapshot{gen.WithIngress(base, c.spec, changed, 1), gen.WithIngress(base, c.spec, changed, 2)}
			tr0, enc0 := e.translationSeconds(b), e.p.Cache.EncodeCount()
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for i := 0; b.Loop(); i++ {
				if _, err := e.p.Rebuild(snaps[i%2]); err != nil {
					b.Fatal(err)
				}
			}
			total := time.Since(start)
			b.StopTimer()
			tr := time.Duration((e.translationSeconds(b) - tr0) * float64(time.Second))
			reportMS(b, total, "ms/op")
			reportMS(b, tr, "translate-ms/op")
			reportMS(b, total-tr, "publish-ms/op")
			b.ReportMetric(float64(e.p.Cache.EncodeCount()-enc0)/float64(b.N), "encodes/op")
		})
	}
}

// BenchmarkPublish is Pipeline.Publish alone (translation done before the
// timer): "same-result" publishes the result already in the cache,
// "unchanged" a fresh translation of the same inputs (new messages, equal
// content: proto.Equal per resource, nothing encoded), "one-route" a fresh
// translation with one changed path (one route table encoded).
func BenchmarkPublish(b *testing.B) {
	spec := gen.ForRoutes(3000)
	e := newBenchEnv(b, spec)
	base := e.store.Snapshot()
	changed := spec.Ingresses / 2
	run := func(b *testing.B, results [2]*translate.Result, wantEncodes float64) {
		enc0 := e.p.Cache.EncodeCount()
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		for i := 0; b.Loop(); i++ {
			if err := e.p.Publish(results[i%2]); err != nil {
				b.Fatal(err)
			}
		}
		reportMS(b, time.Since(start), "ms/op")
		b.StopTimer()
		enc := float64(e.p.Cache.EncodeCount()-enc0) / float64(b.N)
		b.ReportMetric(enc, "encodes/op")
		if wantEncodes >= 0 && b.N > 1 && enc != wantEncodes {
			b.Errorf("%.2f encodes/op, want %v", enc, wantEncodes)
		}
		// Leave the cache holding the original content for the next case.
		if err := e.p.Publish(e.last); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("routes=3000/same-result", func(b *testing.B) {
		run(b, [2]*translate.Result{e.last, e.last}, 0)
	})
	b.Run("routes=3000/unchanged", func(b *testing.B) {
		run(b, [2]*translate.Result{translate.Translate(base, e.opts), translate.Translate(base, e.opts)}, 0)
	})
	b.Run("routes=3000/one-route", func(b *testing.B) {
		run(b, [2]*translate.Result{
			translate.Translate(gen.WithIngress(base, spec, changed, 1), e.opts),
			translate.Translate(gen.WithIngress(base, spec, changed, 2), e.opts),
		}, 1)
	})
}

// BenchmarkEndpointChange is the endpoint path: with a configuration of
// Services × 10 endpoints published, one EndpointSlice changes; the op is
// store.Replace (classifying the change as endpoints-only) plus
// EDS.ServicesChanged, after which the cache holds the new
// ClusterLoadAssignment. No translation runs; exactly one resource is encoded.
func BenchmarkEndpointChange(b *testing.B) {
	for _, services := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("services=%d", services), func(b *testing.B) {
			spec := gen.ForRoutes(2 * services) // Services = routes/2, 10 endpoints each
			e := newBenchEnv(b, spec)
			const svc = 17
			key := input.Key{Kind: input.KindEndpointSlice, Namespace: spec.NamespaceName(svc), Name: gen.ServiceName(svc) + "-x1"}
			if _, ok := e.objects[key]; !ok {
				b.Fatalf("no object %v", key)
			}
			cluster := spec.ClusterName(svc)
			var replace, eds time.Duration
			var encodes uint64
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				b.StopTimer()
				rev := i%60000 + 1
				next := maps.Clone(e.objects)
				next[key] = gen.EndpointSlice(spec, svc, rev)
				enc0 := e.p.Cache.EncodeCount()
				b.StartTimer()

				t0 := time.Now()
				ch := e.store.Replace(next)
				t1 := time.Now()
				if ch.Config || len(ch.EndpointServices) != 1 {
					b.Fatalf("change %+v, want one endpoint-only service", ch)
				}
				if _, err := e.p.EDS.ServicesChanged(ch.EndpointServices); err != nil {
					b.Fatal(err)
				}
				t2 := time.Now()

				b.StopTimer()
				replace += t1.Sub(t0)
				eds += t2.Sub(t1)
				encodes += e.p.Cache.EncodeCount() - enc0
				if i < 3 { // check the cache really holds it
					got := -1
					for _, en := range e.p.Cache.Entries(e.opts.Group, resourcev3.EndpointType) {
						if en.Name == cluster {
							got = gen.EndpointRev(en.Resource.(*endpointv3.ClusterLoadAssignment))
						}
					}
					if got != rev {
						b.Fatalf("cache has endpoint rev %d, want %d", got, rev)
					}
				}
				b.StartTimer()
			}
			b.StopTimer()
			reportMS(b, replace+eds, "ms/op")
			reportMS(b, replace, "replace-ms/op")
			reportMS(b, eds, "eds-ms/op")
			b.ReportMetric(float64(encodes)/float64(b.N), "encodes/op")
			if encodes != uint64(b.N) {
				b.Errorf("%d encodes for %d changes, want exactly one each", encodes, b.N)
			}
		})
	}
}

// BenchmarkMemory measures the heap after a configuration of 5,000 routes
// and 5,000 Services (10 endpoints each) is loaded into the store,
// translated and published (with the encoded resources in the cache and the
// last result kept, as the server keeps them), after a GC. DESIGN.md budget:
// ≤ 300 MiB RSS. Run it alone (-bench Memory -benchtime 1x): rss-MiB and
// peak-rss-MiB are the whole test process, including earlier benchmarks.
func BenchmarkMemory(b *testing.B) {
	spec := gen.ForRoutes(5000)
	spec.Services = 5000
	var keep []*benchEnv
	for b.Loop() {
		keep = append(keep[:0], nil) // drop the previous one before building
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		e := newBenchEnv(b, spec)
		keep[0] = e
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "heap-MiB")
		b.ReportMetric(float64(after.HeapInuse)/(1<<20), "heap-inuse-MiB")
	}
	b.StopTimer()
	e := keep[0]
	n := 0
	for _, typ := range []string{resourcev3.ListenerType, resourcev3.RouteType, resourcev3.ClusterType, resourcev3.EndpointType, resourcev3.SecretType} {
		n += len(e.p.Cache.Entries(e.opts.Group, typ))
	}
	b.ReportMetric(float64(n), "resources")
	b.ReportMetric(procStatusMiB(b, "VmRSS"), "rss-MiB")
	b.ReportMetric(procStatusMiB(b, "VmHWM"), "peak-rss-MiB")
	runtime.KeepAlive(keep)
}

// procStatusMiB reads a kB field of /proc/self/status.
func procStatusMiB(tb testing.TB, field string) float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		tb.Skipf("no /proc: %v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				tb.Fatal(err)
			}
			return float64(kb) / 1024
		}
	}
	return 0
}
