package eds_test

import (
	"strconv"
	"testing"

	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	_ "github.com/hxds/hxds/internal/testutil"
	"github.com/hxds/hxds/translate/envoy"
	"github.com/hxds/hxds/translate/input"
	"github.com/hxds/hxds/xds/cache"
	"github.com/hxds/hxds/xds/eds"
)

func ptr[T any](v T) *T { return &v }

func slice(name, svc string, port int32, addrs ...string) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Port: ptr(port)}},
	}
	for _, a := range addrs {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{a}})
	}
	return s
}

// TestEndpointPathTouchesOnlyAffectedAssignments: a slice change re-encodes
// the assignments of its Service only, in every group that uses it.
func TestEndpointPathTouchesOnlyAffectedAssignments(t *testing.T) {
	c := cache.New(cache.Options{DefaultGroup: "g1"})
	slices := map[input.NamespacedName]*discoveryv1.EndpointSlice{
		{Namespace: "ns", Name: "a-1"}: slice("a-1", "a", 8080, "10.0.0.1"),
		{Namespace: "ns", Name: "b-1"}: slice("b-1", "b", 9090, "10.0.1.1"),
	}
	u := eds.New(c, func() envoy.ServiceSlices { return envoy.IndexSlices(slices) }, prometheus.NewRegistry())
	ta := envoy.EndpointTarget{ClusterName: "outbound|80||a.ns.svc.cluster.local", Namespace: "ns", Service: "a", PortName: "http"}
	tb := envoy.EndpointTarget{ClusterName: "outbound|80||b.ns.svc.cluster.local", Namespace: "ns", Service: "b", PortName: "http"}
	if err := u.SetTargets("g1", []envoy.EndpointTarget{ta, tb}); err != nil {
		t.Fatal(err)
	}
	if err := u.SetTargets("g2", []envoy.EndpointTarget{ta}); err != nil {
		t.Fatal(err)
	}
	versionOf := func(group, name string) string {
		for _, e := range c.Entries(group, resourcev3.EndpointType) {
			if e.Name == name {
				return e.Version
			}
		}
		t.Fatalf("%s has no assignment %s", group, name)
		return ""
	}
	a1, b1, a2 := versionOf("g1", ta.ClusterName), versionOf("g1", tb.ClusterName), versionOf("g2", ta.ClusterName)

	encodes := c.EncodeCount()
	slices[input.NamespacedName{Namespace: "ns", Name: "a-1"}] = slice("a-1", "a", 8080, "10.0.0.1", "10.0.0.2")
	n, err := u.ServicesChanged([]input.NamespacedName{{Namespace: "ns", Name: "a"}})
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("rebuilt %d assignments, want 2 (a in g1 and g2)", n)
	}
	// Identical content is shared across groups, so one encode per group at most.
	if got := c.EncodeCount() - encodes; got < 1 || got > 2 {
		t.Fatalf("encodes = %d, want 1..2", got)
	}
	if versionOf("g1", ta.ClusterName) == a1 || versionOf("g2", ta.ClusterName) == a2 {
		t.Fatal("assignment of a did not change")
	}
	if versionOf("g1", tb.ClusterName) != b1 {
		t.Fatal("assignment of b changed although its slices did not")
	}
	for _, e := range c.Entries("g1", resourcev3.EndpointType) {
		if e.Name == ta.ClusterName {
			cla := e.Resource.(*endpointv3.ClusterLoadAssignment)
			if got := len(cla.Endpoints[0].LbEndpoints); got != 2 {
				t.Fatalf("a has %d endpoints, want 2", got)
			}
		}
	}

	// A Service no cluster selects changes nothing.
	encodes = c.EncodeCount()
	if n, err := u.ServicesChanged([]input.NamespacedName{{Namespace: "ns", Name: "unused"}}); err != nil || n != 0 {
		t.Fatalf("unused service: n=%d err=%v", n, err)
	}
	if c.EncodeCount() != encodes {
		t.Fatal("an unrelated service caused encodes")
	}
}

func TestClusterLoadAssignmentSelectsPortAndReadiness(t *testing.T) {
	s := slice("a-1", "a", 8080, "10.0.0.3", "10.0.0.1")
	s.Endpoints = append(s.Endpoints,
		discoveryv1.Endpoint{Addresses: []string{"10.0.0.2"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(false)}},
		discoveryv1.Endpoint{Addresses: []string{"10.0.0.4"}, Zone: ptr("zone-b")},
	)
	other := slice("a-2", "a", 7070, "10.0.0.9")
	other.Ports[0].Name = ptr("metrics") // another port: not part of this cluster
	fqdn := slice("a-3", "a", 8080, "host.example")
	fqdn.AddressType = discoveryv1.AddressTypeFQDN

	// The same address in another slice with another zone is sent once.
	dup := slice("a-4", "a", 8080)
	dup.Endpoints = []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.4"}, Zone: ptr("zone-c")}}
	cla := envoy.ClusterLoadAssignment(envoy.EndpointTarget{ClusterName: "c", PortName: "http"},
		[]*discoveryv1.EndpointSlice{s, other, fqdn, dup})
	var got []string
	for _, l := range cla.Endpoints {
		for _, e := range l.LbEndpoints {
			sa := e.GetEndpoint().GetAddress().GetSocketAddress()
			got = append(got, l.GetLocality().GetZone()+"/"+sa.Address+":"+itoa(sa.GetPortValue()))
		}
	}
	want := []string{"/10.0.0.1:8080", "/10.0.0.3:8080", "zone-b/10.0.0.4:8080"}
	if len(got) != len(want) {
		t.Fatalf("endpoints = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("endpoints = %v, want %v", got, want)
		}
	}
	if err := cla.ValidateAll(); err != nil {
		t.Fatal(err)
	}
}

func itoa(n uint32) string { return strconv.FormatUint(uint64(n), 10) }
