package eureka

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"

	"github.com/hudl/fargo"

	"github.com/hxds/hxds/discovery"
	"github.com/hxds/hxds/discovery/eureka/eurekatest"
)

// benchListing is an Eureka /apps JSON document of apps × per instances,
// encoded with fargo's types as a server would send it.
func benchListing(b *testing.B, apps, per int, version string) []byte {
	resp := fargo.GetAppsResponseJson{Response: &fargo.GetAppsResponse{AppsHashcode: fmt.Sprintf("UP_%d_", apps*per)}}
	for a := range apps {
		app := &fargo.Application{Name: fmt.Sprintf("APP-%04d", a)}
		for i := range per {
			in := eurekatest.Instance(app.Name, fmt.Sprintf("10.%d.%d.%d", a/250, a%250, i+1), 8080,
				eurekatest.WithMeta("protocol", "http", "version", version, "zone", "z1"))
			app.Instances = append(app.Instances, in)
		}
		resp.Response.Applications = append(resp.Response.Applications, app)
	}
	doc, err := json.Marshal(resp)
	if err != nil {
		b.Fatal(err)
	}
	return doc
}

// BenchmarkListingParseAndDiff is one poll of a 1,000 apps × 10 instances
// registry: decode the full listing, build the services, and compare them
// with the previous listing (unchanged: the steady-state case).
func BenchmarkListingParseAndDiff(b *testing.B) {
	doc := benchListing(b, 1000, 10, "v1")
	vport := func(_ string, p uint32) uint32 { return p }
	l, err := parseListing(doc, false)
	if err != nil {
		b.Fatal(err)
	}
	prev, _ := fullModel(l).services(vport, nil)
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		l, err := parseListing(doc, false)
		if err != nil {
			b.Fatal(err)
		}
		svcs, _ := fullModel(l).services(vport, nil)
		if !reflect.DeepEqual(svcs, prev) {
			b.Fatal("listing changed")
		}
	}
	b.ReportMetric(float64(len(doc))/1e6, "MB/doc")
}

// BenchmarkDiffOnly is the diff part alone (services built and compared),
// the cost a delta poll pays after applying a small delta.
func BenchmarkDiffOnly(b *testing.B) {
	doc := benchListing(b, 1000, 10, "v1")
	vport := func(_ string, p uint32) uint32 { return p }
	l, err := parseListing(doc, false)
	if err != nil {
		b.Fatal(err)
	}
	m := fullModel(l)
	prev, _ := m.services(vport, nil)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		svcs, _ := m.services(vport, nil)
		if !reflect.DeepEqual(svcs, prev) {
			b.Fatal("listing changed")
		}
	}
	_ = discovery.Service{}
}
