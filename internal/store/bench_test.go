package store_test

import (
	"fmt"
	"maps"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"

	"github.com/hxds/hxds/internal/gen"
	"github.com/hxds/hxds/internal/store"
	_ "github.com/hxds/hxds/internal/testutil"
	"github.com/hxds/hxds/translate/input"
)

// BenchmarkReplace is Store.Replace of the whole object set with one
// EndpointSlice changed (what the config-dir source delivers after an
// endpoint edit): the classification cost every change pays, O(objects).
func BenchmarkReplace(b *testing.B) {
	for _, services := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("services=%d", services), func(b *testing.B) {
			spec := gen.ForRoutes(2 * services)
			objs := gen.Map(spec)
			st := store.New()
			st.Replace(objs)
			key := input.Key{Kind: input.KindEndpointSlice, Namespace: spec.NamespaceName(3), Name: gen.ServiceName(3) + "-x1"}
			next := [2]map[input.Key]runtime.Object{maps.Clone(objs), maps.Clone(objs)}
			next[0][key] = gen.EndpointSlice(spec, 3, 1)
			next[1][key] = gen.EndpointSlice(spec, 3, 2)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if ch := st.Replace(next[i%2]); len(ch.EndpointServices) != 1 || ch.Config {
					b.Fatalf("change %+v", ch)
				}
			}
			b.ReportMetric(float64(len(objs)), "objects")
		})
	}
}

// BenchmarkSlices is Store.Slices, which the endpoint path calls on every
// endpoint change: it re-indexes every EndpointSlice, O(slices log slices).
func BenchmarkSlices(b *testing.B) {
	for _, services := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("services=%d", services), func(b *testing.B) {
			st := store.New()
			st.Replace(gen.Map(gen.ForRoutes(2 * services)))
			b.ReportAllocs()
			for b.Loop() {
				if len(st.Slices()) != services {
					b.Fatal("wrong index")
				}
			}
		})
	}
}
