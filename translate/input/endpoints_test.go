package input

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func ptr[T any](v T) *T { return &v }

func TestEndpointSlicesFromEndpoints(t *testing.T) {
	meta := metav1.ObjectMeta{Name: "web", Namespace: "shop"}
	labels := map[string]string{
		LabelServiceName: "web",
		LabelManagedBy:   ManagedByMirroring,
	}
	typeMeta := metav1.TypeMeta{APIVersion: "discovery.k8s.io/v1", Kind: "EndpointSlice"}
	sliceMeta := func(i int, l map[string]string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: MirroredSliceName("web", i), Namespace: "shop", Labels: l}
	}
	httpPort := []corev1.EndpointPort{{Name: "http", Port: 8080, Protocol: corev1.ProtocolTCP}}
	wantHTTPPort := []discoveryv1.EndpointPort{{Name: ptr("http"), Port: ptr[int32](8080), Protocol: ptr(corev1.ProtocolTCP)}}

	tests := []struct {
		name string
		in   *corev1.Endpoints
		want []*discoveryv1.EndpointSlice
	}{
		{name: "nil", in: nil, want: nil},
		{name: "no subsets", in: &corev1.Endpoints{ObjectMeta: meta}, want: nil},
		{
			name: "ready and not ready IPv4",
			in: &corev1.Endpoints{ObjectMeta: meta, Subsets: []corev1.EndpointSubset{{
				Addresses: []corev1.EndpointAddress{{
					IP: "10.0.0.1", Hostname: "web-0", NodeName: ptr("node-a"),
					TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: "shop", Name: "web-0"},
				}},
				NotReadyAddresses: []corev1.EndpointAddress{{IP: "10.0.0.2"}},
				Ports:             httpPort,
			}}},
			want: []*discoveryv1.EndpointSlice{{
				TypeMeta: typeMeta, ObjectMeta: sliceMeta(0, labels), AddressType: discoveryv1.AddressTypeIPv4,
				Endpoints: []discoveryv1.Endpoint{
					{
						Addresses: []string{"10.0.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)},
						Hostname: ptr("web-0"), NodeName: ptr("node-a"),
						TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: "shop", Name: "web-0"},
					},
					{Addresses: []string{"10.0.0.2"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(false)}},
				},
				Ports: wantHTTPPort,
			}},
		},
		{
			name: "dual stack subset splits per family, IPv4 first; mapped v4 is IPv4",
			in: &corev1.Endpoints{ObjectMeta: meta, Subsets: []corev1.EndpointSubset{{
				Addresses:         []corev1.EndpointAddress{{IP: "fd00::1"}, {IP: "10.0.0.1"}},
				NotReadyAddresses: []corev1.EndpointAddress{{IP: "::ffff:10.0.0.9"}},
				Ports:             httpPort,
			}}},
			want: []*discoveryv1.EndpointSlice{
				{
					TypeMeta: typeMeta, ObjectMeta: sliceMeta(0, labels), AddressType: discoveryv1.AddressTypeIPv4,
					Endpoints: []discoveryv1.Endpoint{
						{Addresses: []string{"10.0.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)}},
						{Addresses: []string{"::ffff:10.0.0.9"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(false)}},
					},
					Ports: wantHTTPPort,
				},
				{
					TypeMeta: typeMeta, ObjectMeta: sliceMeta(1, labels), AddressType: discoveryv1.AddressTypeIPv6,
					Endpoints: []discoveryv1.Endpoint{
						{Addresses: []string{"fd00::1"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)}},
					},
					Ports: wantHTTPPort,
				},
			},
		},
		{
			name: "one slice per subset; invalid and zoned addresses skipped; empty subset skipped; protocol defaulted",
			in: &corev1.Endpoints{ObjectMeta: meta, Subsets: []corev1.EndpointSubset{
				{Addresses: []corev1.EndpointAddress{{IP: "10.0.0.1"}}, Ports: []corev1.EndpointPort{{Port: 80}}},
				{Addresses: []corev1.EndpointAddress{{IP: "not-an-ip"}, {IP: "fe80::1%eth0"}}},
				{
					Addresses: []corev1.EndpointAddress{{IP: "10.0.1.1"}},
					Ports:     []corev1.EndpointPort{{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, AppProtocol: ptr("dns")}},
				},
			}},
			want: []*discoveryv1.EndpointSlice{
				{
					TypeMeta: typeMeta, ObjectMeta: sliceMeta(0, labels), AddressType: discoveryv1.AddressTypeIPv4,
					Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)}}},
					Ports:     []discoveryv1.EndpointPort{{Name: ptr(""), Port: ptr[int32](80), Protocol: ptr(corev1.ProtocolTCP)}},
				},
				{
					TypeMeta: typeMeta, ObjectMeta: sliceMeta(1, labels), AddressType: discoveryv1.AddressTypeIPv4,
					Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.0.1.1"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)}}},
					Ports:     []discoveryv1.EndpointPort{{Name: ptr("dns"), Port: ptr[int32](53), Protocol: ptr(corev1.ProtocolUDP), AppProtocol: ptr("dns")}},
				},
			},
		},
		{
			name: "endpoints labels copied, mirroring labels win",
			in: &corev1.Endpoints{
				ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", Labels: map[string]string{"app": "web", LabelServiceName: "other"}},
				Subsets:    []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{{IP: "10.0.0.1"}}}},
			},
			want: []*discoveryv1.EndpointSlice{{
				TypeMeta: typeMeta, ObjectMeta: sliceMeta(0, map[string]string{"app": "web", LabelServiceName: "web", LabelManagedBy: ManagedByMirroring}),
				AddressType: discoveryv1.AddressTypeIPv4,
				Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)}}},
			}},
		},
		{
			name: "skip-mirror label",
			in: &corev1.Endpoints{
				ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", Labels: map[string]string{LabelSkipMirror: "true"}},
				Subsets:    []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{{IP: "10.0.0.1"}}}},
			},
			want: nil,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := EndpointSlicesFromEndpoints(tc.in)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got:\n%#v\nwant:\n%#v", got, tc.want)
			}
		})
	}
}

func TestEndpointSlicesFromEndpointsSharesNoMemory(t *testing.T) {
	ep := &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"},
		Subsets: []corev1.EndpointSubset{{
			Addresses: []corev1.EndpointAddress{{IP: "10.0.0.1", NodeName: ptr("n"), TargetRef: &corev1.ObjectReference{Name: "p"}}},
			Ports:     []corev1.EndpointPort{{Name: "http", Port: 80}},
		}},
	}
	s := EndpointSlicesFromEndpoints(ep)[0]
	*s.Endpoints[0].NodeName = "changed"
	s.Endpoints[0].TargetRef.Name = "changed"
	*s.Ports[0].Port = 1
	a := ep.Subsets[0].Addresses[0]
	if *a.NodeName != "n" || a.TargetRef.Name != "p" || ep.Subsets[0].Ports[0].Port != 80 {
		t.Fatalf("input mutated through output: %+v", ep.Subsets[0])
	}
	// Deterministic: same input → equal output.
	if !reflect.DeepEqual(EndpointSlicesFromEndpoints(ep), EndpointSlicesFromEndpoints(ep)) {
		t.Fatal("not deterministic")
	}
}
