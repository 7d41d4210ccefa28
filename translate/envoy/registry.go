package envoy

import (
	"net/netip"
	"sort"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/hxds/hxds/translate/input"
)

// RegistryLB is the filter metadata key of registry instance metadata on
// endpoints: Envoy's subset load balancer reads it, so a subset selector
// can pick instances by their registry labels (version, zone, ...).
const RegistryLB = "envoy.lb"

// RegistryAssignment is the ClusterLoadAssignment of a registry host's EDS
// cluster: one endpoint per instance with an IP address (host names belong
// to DNS clusters), weighted, with the instance metadata.
func RegistryAssignment(cluster string, instances []input.RegistryEndpoint) *endpointv3.ClusterLoadAssignment {
	cla := &endpointv3.ClusterLoadAssignment{ClusterName: cluster}
	var eps []*endpointv3.LbEndpoint
	for _, in := range instances {
		if _, err := netip.ParseAddr(in.Address); err != nil || in.Port == 0 || in.Port > 65535 {
			continue
		}
		ep := lbEndpoint(in.Address, in.Port, corev3.HealthStatus_HEALTHY)
		if in.Weight > 1 {
			ep.LoadBalancingWeight = wrapperspb.UInt32(in.Weight)
		}
		if md := registryMetadata(in.Metadata); md != nil {
			ep.Metadata = md
		}
		eps = append(eps, ep)
	}
	if len(eps) > 0 {
		cla.Endpoints = []*endpointv3.LocalityLbEndpoints{{LbEndpoints: eps}}
	}
	return cla
}

func registryMetadata(m map[string]string) *corev3.Metadata {
	if len(m) == 0 {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fields := make(map[string]*structpb.Value, len(m))
	for _, k := range keys {
		fields[k] = structpb.NewStringValue(m[k])
	}
	return &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{RegistryLB: {Fields: fields}}}
}

// RegistryInstances looks up the current instances of a registry host.
type RegistryInstances func(host string) []input.RegistryEndpoint
