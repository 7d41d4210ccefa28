package eds_test

import (
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/hxds/hxds/internal/gen"
	_ "github.com/hxds/hxds/internal/testutil"
	"github.com/hxds/hxds/translate"
	"github.com/hxds/hxds/translate/envoy"
	"github.com/hxds/hxds/translate/input"
	"github.com/hxds/hxds/xds/cache"
	"github.com/hxds/hxds/xds/eds"
)

type edsEnv struct {
	spec    gen.Spec
	c       *cache.Cache
	u       *eds.Updater
	targets []envoy.EndpointTarget
	slices  envoy.ServiceSlices
}

func newEDSEnv(b *testing.B, services int) *edsEnv {
	e := &edsEnv{spec: gen.ForRoutes(2 * services), c: cache.New(cache.Options{})}
	snap := gen.Inputs(e.spec)
	opts := input.DefaultOptions()
	e.targets = translate.Translate(snap, opts).Groups[opts.Group].EndpointTargets
	e.slices = envoy.IndexSlices(snap.EndpointSlices)
	e.u = eds.New(e.c, func() envoy.ServiceSlices { return e.slices }, prometheus.NewRegistry())
	if err := e.u.SetTargets(opts.Group, e.targets); err != nil {
		b.Fatal(err)
	}
	return e
}

// BenchmarkServicesChanged is the endpoint path without the store: one
// Service's slice changed, its ClusterLoadAssignment is rebuilt and
// encoded (1 encode) into a cache of Services assignments. The slices
// index is precomputed here; in the server Store.Slices rebuilds it on
// every call (see internal/store BenchmarkSlices).
func BenchmarkServicesChanged(b *testing.B) {
	for _, services := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("services=%d", services), func(b *testing.B) {
			e := newEDSEnv(b, services)
			svc := input.NamespacedName{Namespace: e.spec.NamespaceName(5), Name: gen.ServiceName(5)}
			revs := [2][]*discoveryv1.EndpointSlice{{gen.EndpointSlice(e.spec, 5, 1)}, {gen.EndpointSlice(e.spec, 5, 2)}}
			enc0 := e.c.EncodeCount()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				e.slices[svc] = revs[i%2]
				if n, err := e.u.ServicesChanged([]input.NamespacedName{svc}); err != nil || n != 1 {
					b.Fatalf("%d, %v", n, err)
				}
			}
			b.ReportMetric(float64(e.c.EncodeCount()-enc0)/float64(b.N), "encodes/op")
		})
	}
}

// BenchmarkSetTargetsUnchanged is what every full translation costs the
// endpoint path when no endpoint changed: SetTargets rebuilds every
// ClusterLoadAssignment and the cache compares each with the stored one
// (proto.Equal); nothing is encoded.
func BenchmarkSetTargetsUnchanged(b *testing.B) {
	for _, services := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("services=%d", services), func(b *testing.B) {
			e := newEDSEnv(b, services)
			enc0 := e.c.EncodeCount()
			b.ReportAllocs()
			for b.Loop() {
				if err := e.u.SetTargets("higress-gateway", e.targets); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(e.c.EncodeCount()-enc0)/float64(b.N), "encodes/op")
		})
	}
}
