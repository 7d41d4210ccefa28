// Package envoy turns the gateway IR into Envoy v3 resources for stock Envoy,
// with Istio/Higress naming so Higress Wasm plugins and Istio tooling keep
// working. It is pure: no I/O, deterministic output for the same IR.
package envoy

import (
	"sort"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"

	"github.com/hxds/hxds/translate/ir"
)

// Resources are the Envoy resources of one gateway group, each list sorted by
// name. Endpoints are not here: they come from the endpoint path, which uses
// EndpointTargets to know which ClusterLoadAssignments to build.
type Resources struct {
	Listeners []*listenerv3.Listener
	Routes    []*routev3.RouteConfiguration
	Clusters  []*clusterv3.Cluster
	Secrets   []*tlsv3.Secret
	// ExtensionConfigs are the ECDS resources (Wasm plugins).
	ExtensionConfigs []*corev3.TypedExtensionConfig
	// EndpointTargets lists every EDS cluster and the Service port it selects.
	EndpointTargets []EndpointTarget
}

// EndpointTarget ties an EDS cluster to the Kubernetes Service port whose
// EndpointSlices fill it.
type EndpointTarget struct {
	ClusterName string `json:"cluster"`
	Namespace   string `json:"namespace"`
	Service     string `json:"service"`
	// PortName is the Service port name, which EndpointSlice ports carry.
	PortName string `json:"portName"`
	// RegistryHost is set instead of Service for registry (McpBridge) hosts.
	RegistryHost string `json:"registryHost,omitempty"`
}

// Build converts one gateway to Envoy resources.
func Build(gw *ir.Gateway) *Resources {
	r := &Resources{}
	for _, l := range gw.Listeners {
		r.Listeners = append(r.Listeners, buildListener(l, gw.WasmPlugins))
		switch l.Protocol {
		case ir.ProtocolHTTP:
			r.Routes = append(r.Routes, buildRouteConfig(l.Routes, servedOn{port: l.Port}, gw.Backends))
		case ir.ProtocolHTTPS:
			for _, s := range l.Servers {
				r.Routes = append(r.Routes, buildRouteConfig(s.Routes, servedOn{port: l.Port, tls: true}, gw.Backends))
			}
		}
	}
	r.Listeners = append(r.Listeners, buildAPIListeners(gw)...)
	for _, name := range sortedKeys(gw.Backends) {
		be := gw.Backends[name]
		r.Clusters = append(r.Clusters, buildCluster(be))
		switch be.Kind {
		case ir.BackendService:
			r.EndpointTargets = append(r.EndpointTargets, EndpointTarget{
				ClusterName: be.Name, Namespace: be.Service.Namespace, Service: be.Service.Name, PortName: be.TargetPortName,
			})
		case ir.BackendRegistry:
			// No Service: the assignment stays empty until a registry fills it.
			r.EndpointTargets = append(r.EndpointTargets, EndpointTarget{ClusterName: be.Name, RegistryHost: be.Host})
		}
	}
	r.Clusters = append(r.Clusters, fallbackClusters(gw)...)
	if needsBlackHole(gw) {
		r.Clusters = append(r.Clusters, blackHoleCluster())
	}
	sort.Slice(r.Clusters, func(i, j int) bool { return r.Clusters[i].Name < r.Clusters[j].Name })
	for _, name := range sortedKeys(gw.Secrets) {
		r.Secrets = append(r.Secrets, buildSecret(gw.Secrets[name]))
	}
	for _, p := range gw.WasmPlugins {
		r.ExtensionConfigs = append(r.ExtensionConfigs, buildExtensionConfig(p))
	}
	sort.Slice(r.ExtensionConfigs, func(i, j int) bool { return r.ExtensionConfigs[i].Name < r.ExtensionConfigs[j].Name })
	sort.Slice(r.Listeners, func(i, j int) bool { return r.Listeners[i].Name < r.Listeners[j].Name })
	sort.Slice(r.Routes, func(i, j int) bool { return r.Routes[i].Name < r.Routes[j].Name })
	return r
}

// ByType indexes the resources by xDS type URL and name, the shape the cache takes.
func (r *Resources) ByType() map[string]map[string]proto.Message {
	out := map[string]map[string]proto.Message{
		resourcev3.ListenerType: {},
		resourcev3.RouteType:    {},
		resourcev3.ClusterType:  {},
		resourcev3.SecretType:   {},

		resourcev3.ExtensionConfigType: {},
	}
	for _, l := range r.Listeners {
		out[resourcev3.ListenerType][l.Name] = l
	}
	for _, rc := range r.Routes {
		out[resourcev3.RouteType][rc.Name] = rc
	}
	for _, c := range r.Clusters {
		out[resourcev3.ClusterType][c.Name] = c
	}
	for _, s := range r.Secrets {
		out[resourcev3.SecretType][s.Name] = s
	}
	for _, e := range r.ExtensionConfigs {
		out[resourcev3.ExtensionConfigType][e.Name] = e
	}
	return out
}

// EndpointsFor returns, for every EDS target, its ClusterLoadAssignment built
// from slices (all EndpointSlices, indexed by namespace/service).
func (r *Resources) EndpointsFor(slices ServiceSlices) map[string]*endpointv3.ClusterLoadAssignment {
	out := make(map[string]*endpointv3.ClusterLoadAssignment, len(r.EndpointTargets))
	for _, t := range r.EndpointTargets {
		out[t.ClusterName] = ClusterLoadAssignment(t, slices.For(t.Namespace, t.Service))
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// AllByType is ByType plus the endpoints built from slices: every resource
// a group serves, the shape Check, route-check and the cache take.
func (r *Resources) AllByType(slices ServiceSlices) map[string]map[string]proto.Message {
	return WithEndpoints(r.ByType(), r.EndpointsFor(slices))
}

// WithEndpoints returns byType plus an endpoint entry holding eds, the shape
// Check and the cache take.
func WithEndpoints(byType map[string]map[string]proto.Message, eds map[string]*endpointv3.ClusterLoadAssignment) map[string]map[string]proto.Message {
	m := make(map[string]proto.Message, len(eds))
	for name, cla := range eds {
		m[name] = cla
	}
	byType[resourcev3.EndpointType] = m
	return byType
}
