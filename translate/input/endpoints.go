package input

import (
	"net/netip"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Labels set on EndpointSlices mirrored from legacy Endpoints, as Kubernetes'
// endpointslice mirroring controller sets them.
const (
	LabelServiceName = discoveryv1.LabelServiceName // kubernetes.io/service-name
	LabelManagedBy   = discoveryv1.LabelManagedBy   // endpointslice.kubernetes.io/managed-by
	// ManagedByMirroring is the managed-by value of mirrored slices.
	ManagedByMirroring = "endpointslicemirroring-controller.k8s.io"
	// LabelSkipMirror on an Endpoints object ("true") turns mirroring off.
	LabelSkipMirror = discoveryv1.LabelSkipMirror
)

// MirroredSliceName is the name of the i-th EndpointSlice mirrored from the
// Endpoints object named endpoints. Kubernetes uses a random generateName
// suffix; hxds needs names that are stable across reloads.
func MirroredSliceName(endpoints string, i int) string {
	return endpoints + "-mirror-" + strconv.Itoa(i)
}

// EndpointSlicesFromEndpoints converts a legacy v1 Endpoints object the way
// Kubernetes' endpointslice mirroring controller does: one slice per subset
// and address family (IPv4 before IPv6 within a subset), named
// MirroredSliceName(ep.Name, i) in that order. Ready addresses become
// endpoints with ready=true, notReadyAddresses ready=false; ports, node name,
// hostname and target reference are kept. Addresses that are not IP literals
// are skipped (the controller skips them too), as are subsets with no usable
// address. The Endpoints labels are copied (except the service-name and
// managed-by labels, which are set); an Endpoints labelled
// endpointslice.kubernetes.io/skip-mirror=true yields no slices.
//
// The result shares no memory with ep.
func EndpointSlicesFromEndpoints(ep *corev1.Endpoints) []*discoveryv1.EndpointSlice {
	if ep == nil || ep.Labels[LabelSkipMirror] == "true" {
		return nil
	}
	var out []*discoveryv1.EndpointSlice
	for _, subset := range ep.Subsets {
		var v4, v6 []discoveryv1.Endpoint
		add := func(addr corev1.EndpointAddress, ready bool) {
			ip, err := netip.ParseAddr(addr.IP)
			if err != nil || ip.Zone() != "" {
				return
			}
			e := addressToEndpoint(addr, ready)
			if ip.Unmap().Is4() {
				v4 = append(v4, e)
			} else {
				v6 = append(v6, e)
			}
		}
		for _, a := range subset.Addresses {
			add(a, true)
		}
		for _, a := range subset.NotReadyAddresses {
			add(a, false)
		}
		for _, fam := range []struct {
			t   discoveryv1.AddressType
			eps []discoveryv1.Endpoint
		}{{discoveryv1.AddressTypeIPv4, v4}, {discoveryv1.AddressTypeIPv6, v6}} {
			if len(fam.eps) == 0 {
				continue
			}
			out = append(out, &discoveryv1.EndpointSlice{
				TypeMeta: metav1.TypeMeta{APIVersion: "discovery.k8s.io/v1", Kind: "EndpointSlice"},
				ObjectMeta: metav1.ObjectMeta{
					Name:      MirroredSliceName(ep.Name, len(out)),
					Namespace: ep.Namespace,
					Labels:    mirroredLabels(ep),
				},
				AddressType: fam.t,
				Endpoints:   fam.eps,
				Ports:       endpointPorts(subset.Ports),
			})
		}
	}
	return out
}

func mirroredLabels(ep *corev1.Endpoints) map[string]string {
	l := make(map[string]string, len(ep.Labels)+2)
	for k, v := range ep.Labels {
		l[k] = v
	}
	l[LabelServiceName] = ep.Name
	l[LabelManagedBy] = ManagedByMirroring
	return l
}

func addressToEndpoint(a corev1.EndpointAddress, ready bool) discoveryv1.Endpoint {
	e := discoveryv1.Endpoint{
		Addresses:  []string{a.IP},
		Conditions: discoveryv1.EndpointConditions{Ready: &ready},
	}
	if a.Hostname != "" {
		h := a.Hostname
		e.Hostname = &h
	}
	if a.NodeName != nil {
		n := *a.NodeName
		e.NodeName = &n
	}
	if a.TargetRef != nil {
		r := *a.TargetRef
		e.TargetRef = &r
	}
	return e
}

func endpointPorts(ports []corev1.EndpointPort) []discoveryv1.EndpointPort {
	if len(ports) == 0 {
		return nil
	}
	out := make([]discoveryv1.EndpointPort, 0, len(ports))
	for _, p := range ports {
		name, port, proto := p.Name, p.Port, p.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP // API-server default for Endpoints ports
		}
		ep := discoveryv1.EndpointPort{Name: &name, Port: &port, Protocol: &proto}
		if p.AppProtocol != nil {
			ap := *p.AppProtocol
			ep.AppProtocol = &ap
		}
		out = append(out, ep)
	}
	return out
}
