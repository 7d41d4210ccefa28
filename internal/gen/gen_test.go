package gen_test

import (
	"reflect"
	"testing"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"

	"github.com/hxds/hxds/internal/gen"
	"github.com/hxds/hxds/internal/source/file"
	_ "github.com/hxds/hxds/internal/testutil"
	"github.com/hxds/hxds/translate"
	"github.com/hxds/hxds/translate/envoy"
	"github.com/hxds/hxds/translate/input"
)

func TestInputsTranslateCleanly(t *testing.T) {
	spec := gen.Spec{Ingresses: 50, RulesPerIngress: 2, PathsPerRule: 3, Services: 40, EndpointsPerService: 4, TLSHosts: 7}
	res := translate.Translate(gen.Inputs(spec), input.DefaultOptions())
	if n := res.Diagnostics.Rejected(); n != 0 {
		t.Fatalf("%d objects rejected: %+v", n, res.Diagnostics.List())
	}
	for _, st := range res.Diagnostics.List() {
		if len(st.Findings) > 0 {
			t.Errorf("finding on %v: %+v", st.Object, st.Findings)
		}
	}
	r := res.Groups["higress-gateway"]
	// Listeners 0.0.0.0_80 and 0.0.0.0_443, plus two API listeners per
	// host for proxyless gRPC (<host> and <host>:80).
	gateways := 0
	for _, l := range r.Listeners {
		if l.GetApiListener() == nil {
			gateways++
		}
	}
	if gateways != 2 || len(r.Listeners) != 2+2*spec.Hosts() {
		t.Errorf("%d listeners (%d gateway listeners), want %d (2)", len(r.Listeners), gateways, 2+2*spec.Hosts())
	}
	// http.80 plus one HTTPS route table per TLS host.
	if len(r.Routes) != 1+7 {
		t.Errorf("%d route configs, want 8", len(r.Routes))
	}
	vhosts, routes := 0, 0
	for _, vh := range r.Routes[0].GetVirtualHosts() {
		vhosts++
		routes += len(vh.GetRoutes())
	}
	if vhosts != spec.Hosts() {
		t.Errorf("%d virtual hosts on http.80, want %d", vhosts, spec.Hosts())
	}
	// Per host: "/" (1 Envoy route), "/api/v1" (2), Exact "/status/1" (1).
	if routes != spec.Hosts()*4 {
		t.Errorf("%d Envoy routes on http.80, want %d", routes, spec.Hosts()*4)
	}
	if len(r.Clusters) != spec.Services || len(r.EndpointTargets) != spec.Services {
		t.Errorf("%d clusters, %d EDS targets, want %d (every Service referenced)", len(r.Clusters), len(r.EndpointTargets), spec.Services)
	}
	if len(r.Secrets) != 4 { // hosts 0..6 → Ingresses 0..3
		t.Errorf("%d secrets, want 4", len(r.Secrets))
	}
	cla := envoy.ClusterLoadAssignment(r.EndpointTargets[0], envoy.IndexSlices(gen.Inputs(spec).EndpointSlices).For(r.EndpointTargets[0].Namespace, r.EndpointTargets[0].Service))
	n := 0
	for _, l := range cla.GetEndpoints() {
		n += len(l.GetLbEndpoints())
	}
	if n != 4 || len(cla.GetEndpoints()) != 3 {
		t.Errorf("CLA has %d endpoints in %d localities, want 4 in 3", n, len(cla.GetEndpoints()))
	}
}

func TestForRoutes(t *testing.T) {
	for _, n := range []int{100, 3000, 10000} {
		s := gen.ForRoutes(n)
		if s.Routes() != n {
			t.Errorf("ForRoutes(%d).Routes() = %d", n, s.Routes())
		}
	}
}

func TestDeterministic(t *testing.T) {
	spec := gen.ForRoutes(200)
	a, b := gen.Objects(spec), gen.Objects(spec)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two generations differ")
	}
}

func TestRevisions(t *testing.T) {
	spec := gen.ForRoutes(400)
	snap := gen.Inputs(spec)
	opts := input.DefaultOptions()
	base := translate.Translate(snap, opts).Groups[opts.Group]
	changed := translate.Translate(gen.WithIngress(snap, spec, 7, 3), opts).Groups[opts.Group]
	for typ, want := range map[string]bool{resourcev3.ListenerType: false, resourcev3.ClusterType: false, resourcev3.SecretType: false, resourcev3.RouteType: true} {
		if got := !sameResources(base.ByType()[typ], changed.ByType()[typ]); got != want {
			t.Errorf("one-route change: %s changed=%v, want %v", typ, got, want)
		}
	}
	if got := gen.RouteRev(changed.Routes[0], gen.Host(7, 0)); got != 3 {
		t.Errorf("RouteRev = %d, want 3", got)
	}
	if got := gen.RouteRev(base.Routes[0], gen.Host(7, 0)); got != 0 {
		t.Errorf("RouteRev of base = %d, want 0", got)
	}
	es := gen.WithEndpointSlice(snap, spec, 5, 300)
	slices := envoy.IndexSlices(es.EndpointSlices)
	for _, tg := range base.EndpointTargets {
		if tg.ClusterName != spec.ClusterName(5) {
			continue
		}
		if got := gen.EndpointRev(envoy.ClusterLoadAssignment(tg, slices.For(tg.Namespace, tg.Service))); got != 300 {
			t.Errorf("EndpointRev = %d, want 300", got)
		}
		return
	}
	t.Errorf("no EDS target %s", spec.ClusterName(5))
}

func sameResources(a, b map[string]proto.Message) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !proto.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// TestWriteDir checks that the files load back into the same configuration.
func TestWriteDir(t *testing.T) {
	spec := gen.Spec{Ingresses: 30, RulesPerIngress: 2, PathsPerRule: 2, Services: 25, TLSHosts: 5, ObjectsPerFile: 7}
	dir := t.TempDir()
	if err := gen.WriteDir(dir, spec); err != nil {
		t.Fatal(err)
	}
	p := gen.Probe{}
	if err := p.WriteRoute(dir, 4); err != nil {
		t.Fatal(err)
	}
	if err := p.WriteEndpoints(dir, 9); err != nil {
		t.Fatal(err)
	}
	loaded, err := file.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if n := loaded.Problems.Rejected(); n != 0 {
		t.Fatalf("%d documents rejected: %+v", n, loaded.Problems.List())
	}
	opts := input.DefaultOptions()
	got := translate.Translate(loaded.Snapshot(), opts)
	if n := got.Diagnostics.Rejected(); n != 0 {
		t.Fatalf("%d objects rejected: %+v", n, got.Diagnostics.List())
	}
	want := translate.Translate(gen.Inputs(spec), opts).Groups[opts.Group]
	g := got.Groups[opts.Group]
	if len(g.Clusters) != len(want.Clusters)+1 || len(g.Secrets) != len(want.Secrets) || len(g.Routes) != len(want.Routes) {
		t.Fatalf("loaded dir: %d clusters %d secrets %d routes; generated: %d+1, %d, %d",
			len(g.Clusters), len(g.Secrets), len(g.Routes), len(want.Clusters), len(want.Secrets), len(want.Routes))
	}
	if got := gen.RouteRev(g.Routes[0], gen.ProbeHost); got != 4 {
		t.Errorf("probe RouteRev = %d, want 4", got)
	}
	eds := g.EndpointsFor(envoy.IndexSlices(loaded.Snapshot().EndpointSlices))
	if got := gen.EndpointRev(eds[p.ClusterName()]); got != 9 {
		t.Errorf("probe EndpointRev = %d, want 9", got)
	}

	// Rewriting one Ingress and one slice changes just those objects.
	if err := gen.WriteIngress(dir, spec, 9, 2); err != nil {
		t.Fatal(err)
	}
	if err := gen.WriteEndpointSlice(dir, spec, 11, 5); err != nil {
		t.Fatal(err)
	}
	again, err := file.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	diff := 0
	for i, o := range again.Objects {
		if !reflect.DeepEqual(o.Obj, loaded.Objects[i].Obj) {
			diff++
		}
	}
	if diff != 2 {
		t.Errorf("%d objects differ after WriteIngress+WriteEndpointSlice, want 2", diff)
	}
}
