package gen

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// ProbeHost is the host of the probe Ingress.
const ProbeHost = "probe.hxds.test"

// Probe is a small, self-contained set of objects (a Namespace, a Service,
// its EndpointSlice and an Ingress for ProbeHost) that can be dropped into
// any config dir and then changed, one route or one endpoint at a time, to
// measure how long the change takes to reach clients. Its files are
// zz-hxds-probe-route.yaml and zz-hxds-probe-endpoints.yaml.
type Probe struct {
	// Namespace of the probe objects. Default "hxds-probe".
	Namespace string
	// IngressClass put in the kubernetes.io/ingress.class annotation.
	// Default "higress".
	IngressClass string
}

func (p Probe) norm() Probe {
	if p.Namespace == "" {
		p.Namespace = "hxds-probe"
	}
	if p.IngressClass == "" {
		p.IngressClass = "higress"
	}
	return p
}

// Probe file names inside the config dir.
const (
	ProbeRouteFile     = "zz-hxds-probe-route.yaml"
	ProbeEndpointsFile = "zz-hxds-probe-endpoints.yaml"
)

// ClusterName is the EDS cluster of the probe Service.
func (p Probe) ClusterName() string {
	p = p.norm()
	return fmt.Sprintf("outbound|80||probe.%s.svc.cluster.local", p.Namespace)
}

// RouteObjects are the probe Namespace, Service and Ingress at revision rev
// (the Ingress serves Prefix "/" and Exact RevPath(rev)).
func (p Probe) RouteObjects(rev int) []runtime.Object {
	p = p.norm()
	prefix, exact := networkingv1.PathTypePrefix, networkingv1.PathTypeExact
	backend := networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
		Name: "probe", Port: networkingv1.ServiceBackendPort{Name: "http"},
	}}
	return []runtime.Object{
		&corev1.Namespace{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
			ObjectMeta: metav1.ObjectMeta{Name: p.Namespace},
		},
		&corev1.Service{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
			ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: p.Namespace},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{
				{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080)},
			}},
		},
		&networkingv1.Ingress{
			TypeMeta: metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "Ingress"},
			ObjectMeta: metav1.ObjectMeta{
				Name: "probe", Namespace: p.Namespace,
				Annotations: map[string]string{"kubernetes.io/ingress.class": p.IngressClass},
			},
			Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{
				Host: ProbeHost,
				IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{
					{Path: "/", PathType: &prefix, Backend: backend},
					{Path: RevPath(rev), PathType: &exact, Backend: backend},
				}}},
			}}},
		},
	}
}

// EndpointObjects is the probe EndpointSlice at revision rev: one fixed
// endpoint plus EndpointAddress(rev).
func (p Probe) EndpointObjects(rev int) []runtime.Object {
	p = p.norm()
	name, port, ready := "http", int32(8080), true
	return []runtime.Object{&discoveryv1.EndpointSlice{
		TypeMeta: metav1.TypeMeta{APIVersion: "discovery.k8s.io/v1", Kind: "EndpointSlice"},
		ObjectMeta: metav1.ObjectMeta{
			Name: "probe-1", Namespace: p.Namespace,
			Labels: map[string]string{discoveryv1.LabelServiceName: "probe"},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &name, Port: &port}},
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"127.0.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}},
			{Addresses: []string{EndpointAddress(rev)}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}},
		},
	}}
}

// WriteRoute writes the route file of the probe at rev into dir (atomically).
func (p Probe) WriteRoute(dir string, rev int) error {
	return writeObjects(filepath.Join(dir, ProbeRouteFile), p.RouteObjects(rev))
}

// WriteEndpoints writes the endpoints file of the probe at rev into dir (atomically).
func (p Probe) WriteEndpoints(dir string, rev int) error {
	return writeObjects(filepath.Join(dir, ProbeEndpointsFile), p.EndpointObjects(rev))
}

// RouteRev returns the revision that the virtual host of host carries in rc
// (an Exact route RevPath(rev)), 0 when it has none, -1 when rc has no
// virtual host for host.
func RouteRev(rc *routev3.RouteConfiguration, host string) int {
	name := host + ":80"
	for _, vh := range rc.GetVirtualHosts() {
		if vh.GetName() != name {
			continue
		}
		for _, r := range vh.GetRoutes() {
			if p, ok := strings.CutPrefix(r.GetMatch().GetPath(), "/rev/"); ok {
				if n, err := strconv.Atoi(p); err == nil {
					return n
				}
			}
		}
		return 0
	}
	return -1
}

// EndpointRev returns the revision of the changed endpoint in cla (an address
// EndpointAddress(rev)), or 0 when there is none.
func EndpointRev(cla *endpointv3.ClusterLoadAssignment) int {
	for _, l := range cla.GetEndpoints() {
		for _, e := range l.GetLbEndpoints() {
			a := e.GetEndpoint().GetAddress().GetSocketAddress().GetAddress()
			if rest, ok := strings.CutPrefix(a, "127.254."); ok {
				hi, lo, _ := strings.Cut(rest, ".")
				h, err1 := strconv.Atoi(hi)
				l, err2 := strconv.Atoi(lo)
				if err1 == nil && err2 == nil {
					return h<<8 | l
				}
			}
		}
	}
	return 0
}
