package input

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1a2 "sigs.k8s.io/gateway-api/apis/v1alpha2"
	gwv1a3 "sigs.k8s.io/gateway-api/apis/v1alpha3"
)

// Typed alpha TCPRoutes and TLSRoutes are indexed as the v1 types.
func TestAddConvertsAlphaL4Routes(t *testing.T) {
	port := gwv1.PortNumber(5432)
	refs := []gwv1.BackendRef{{BackendObjectReference: gwv1.BackendObjectReference{Name: "db", Port: &port}}}
	parents := gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: "gw"}}}
	meta := metav1.ObjectMeta{Namespace: "ns", Name: "r"}
	s := NewSnapshot()
	nn := NamespacedName{Namespace: "ns", Name: "r"}

	s.Add(Key{Kind: KindTCPRoute, Namespace: "ns", Name: "r"}, &gwv1a2.TCPRoute{ObjectMeta: meta,
		Spec: gwv1a2.TCPRouteSpec{CommonRouteSpec: parents, Rules: []gwv1a2.TCPRouteRule{{BackendRefs: refs}}}})
	if r := s.TCPRoutes[nn]; r == nil || r.Spec.ParentRefs[0].Name != "gw" || *r.Spec.Rules[0].BackendRefs[0].Port != port {
		t.Fatalf("v1alpha2 TCPRoute: %+v", r)
	}
	s.Add(Key{Kind: KindTLSRoute, Namespace: "ns", Name: "r"}, &gwv1a2.TLSRoute{ObjectMeta: meta,
		Spec: gwv1a2.TLSRouteSpec{CommonRouteSpec: parents, Hostnames: []gwv1.Hostname{"a.example.com"}, Rules: []gwv1a2.TLSRouteRule{{BackendRefs: refs}}}})
	if r := s.TLSRoutes[nn]; r == nil || r.Spec.Hostnames[0] != "a.example.com" || r.Spec.Rules[0].BackendRefs[0].Name != "db" {
		t.Fatalf("v1alpha2 TLSRoute: %+v", r)
	}
	s.Add(Key{Kind: KindTLSRoute, Namespace: "ns", Name: "r"}, &gwv1a3.TLSRoute{ObjectMeta: meta,
		Spec: gwv1.TLSRouteSpec{CommonRouteSpec: parents, Hostnames: []gwv1.Hostname{"b.example.com"}}})
	if r := s.TLSRoutes[nn]; r == nil || r.Spec.Hostnames[0] != "b.example.com" {
		t.Fatalf("v1alpha3 TLSRoute: %+v", r)
	}
}
