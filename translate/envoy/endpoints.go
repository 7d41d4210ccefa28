package envoy

import (
	"sort"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/hxds/hxds/translate/input"
)

// ServiceSlices indexes EndpointSlices by the Service they belong to (label
// kubernetes.io/service-name). Slices inside one entry are sorted by name.
type ServiceSlices map[input.NamespacedName][]*discoveryv1.EndpointSlice

// IndexSlices groups every EndpointSlice of a snapshot by Service.
func IndexSlices(slices map[input.NamespacedName]*discoveryv1.EndpointSlice) ServiceSlices {
	out := ServiceSlices{}
	for _, key := range input.SortedKeys(slices) {
		s := slices[key]
		if svc := ServiceOf(s); svc != "" {
			k := input.NamespacedName{Namespace: s.Namespace, Name: svc}
			out[k] = append(out[k], s)
		}
	}
	return out
}

// ServiceOf returns the Service an EndpointSlice belongs to, or "".
func ServiceOf(s *discoveryv1.EndpointSlice) string {
	return s.Labels[discoveryv1.LabelServiceName]
}

// For returns the slices of one Service.
func (s ServiceSlices) For(namespace, service string) []*discoveryv1.EndpointSlice {
	return s[input.NamespacedName{Namespace: namespace, Name: service}]
}

// ClusterLoadAssignment builds the EDS resource of one cluster from the
// EndpointSlices of its Service. The endpoint port is the slice port whose
// name equals the Service port name, as kube-proxy does. Only ready endpoints
// are sent (a nil ready condition means ready). Endpoints are grouped by zone
// into localities and sorted, so equal inputs give equal bytes. A cluster with
// no endpoints still gets an (empty) assignment, so Envoy never waits for one.
func ClusterLoadAssignment(t EndpointTarget, slices []*discoveryv1.EndpointSlice) *endpointv3.ClusterLoadAssignment {
	type addr struct {
		ip   string
		port uint32
	}
	byZone := map[string]map[addr]bool{}
	seen := map[addr]string{}
	for _, s := range slices {
		if s.AddressType != discoveryv1.AddressTypeIPv4 && s.AddressType != discoveryv1.AddressTypeIPv6 {
			continue // FQDN slices are deprecated and not routable by IP.
		}
		var port uint32
		found := false
		for _, p := range s.Ports {
			name := ""
			if p.Name != nil {
				name = *p.Name
			}
			if name == t.PortName && p.Port != nil && *p.Port > 0 && *p.Port < 65536 {
				port, found = uint32(*p.Port), true
				break
			}
		}
		if !found {
			continue
		}
		for _, ep := range s.Endpoints {
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				continue
			}
			zone := ""
			if ep.Zone != nil {
				zone = *ep.Zone
			}
			if byZone[zone] == nil {
				byZone[zone] = map[addr]bool{}
			}
			for _, ip := range ep.Addresses {
				// An address listed twice (two slices disagreeing on its zone)
				// is sent once, in the first zone seen: proxyless gRPC rejects
				// an assignment with a repeated address.
				a := addr{ip, port}
				if seenZone, dup := seen[a]; dup && seenZone != zone {
					continue
				}
				seen[a] = zone
				byZone[zone][a] = true
			}
		}
	}
	cla := &endpointv3.ClusterLoadAssignment{ClusterName: t.ClusterName}
	zones := make([]string, 0, len(byZone))
	for z := range byZone {
		zones = append(zones, z)
	}
	sort.Strings(zones)
	for _, z := range zones {
		addrs := make([]addr, 0, len(byZone[z]))
		for a := range byZone[z] {
			addrs = append(addrs, a)
		}
		if len(addrs) == 0 {
			continue // every address of this zone was listed in another one
		}
		sort.Slice(addrs, func(i, j int) bool {
			if addrs[i].ip != addrs[j].ip {
				return addrs[i].ip < addrs[j].ip
			}
			return addrs[i].port < addrs[j].port
		})
		// Proxyless gRPC clients reject (NACK) a locality without a Locality
		// message and ignore one without a weight; Envoy ignores locality
		// weights unless the cluster enables locality-weighted balancing.
		// The weight is the endpoint count, so every endpoint gets an equal
		// share across zones.
		lle := &endpointv3.LocalityLbEndpoints{
			Locality:            &corev3.Locality{Zone: z},
			LoadBalancingWeight: wrapperspb.UInt32(uint32(len(addrs))),
		}
		for _, a := range addrs {
			lle.LbEndpoints = append(lle.LbEndpoints, lbEndpoint(a.ip, a.port, corev3.HealthStatus_HEALTHY))
		}
		cla.Endpoints = append(cla.Endpoints, lle)
	}
	return cla
}
