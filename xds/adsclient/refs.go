package adsclient

import (
	"fmt"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

var (
	hcmTypeURL        = resourcev3.APITypePrefix + string((&hcmv3.HttpConnectionManager{}).ProtoReflect().Descriptor().FullName())
	downstreamTLSType = resourcev3.APITypePrefix + string((&tlsv3.DownstreamTlsContext{}).ProtoReflect().Descriptor().FullName())
	upstreamTLSType   = resourcev3.APITypePrefix + string((&tlsv3.UpstreamTlsContext{}).ProtoReflect().Descriptor().FullName())
)

// overADS reports whether a config source makes Envoy fetch the resource on
// the ADS stream: `ads: {}`, or `self: {}` inside a resource that came over ADS.
func overADS(cs *corev3.ConfigSource) bool {
	return cs.GetAds() != nil || cs.GetSelf() != nil
}

// refs are the names of dependent resources that held listeners and clusters
// make Envoy subscribe to.
type refs map[string]map[string]struct{} // type URL → names

func (r refs) add(typeURL, name string) {
	if r[typeURL] == nil {
		r[typeURL] = map[string]struct{}{}
	}
	r[typeURL][name] = struct{}{}
}

// listenerRefs adds the RDS route configs, SDS secrets and ECDS filter configs
// a listener uses. An error means Envoy would reject the listener.
func listenerRefs(l *listenerv3.Listener, out refs) error {
	chains := l.GetFilterChains()
	if dc := l.GetDefaultFilterChain(); dc != nil {
		chains = append(chains[:len(chains):len(chains)], dc)
	}
	for i, fc := range chains {
		if ts := fc.GetTransportSocket().GetTypedConfig(); ts != nil && ts.GetTypeUrl() == downstreamTLSType {
			tls := &tlsv3.DownstreamTlsContext{}
			if err := ts.UnmarshalTo(tls); err != nil {
				return fmt.Errorf("listener %q filter chain %d: transport socket: %w", l.GetName(), i, err)
			}
			commonTLSRefs(tls.GetCommonTlsContext(), out)
			if s := tls.GetSessionTicketKeysSdsSecretConfig(); s != nil && overADS(s.GetSdsConfig()) {
				out.add(resourcev3.SecretType, s.GetName())
			}
		}
		for _, f := range fc.GetFilters() {
			tc := f.GetTypedConfig()
			if tc.GetTypeUrl() != hcmTypeURL {
				continue
			}
			hcm := &hcmv3.HttpConnectionManager{}
			if err := tc.UnmarshalTo(hcm); err != nil {
				return fmt.Errorf("listener %q filter chain %d: %s: %w", l.GetName(), i, f.GetName(), err)
			}
			hcmRefs(hcm, out)
		}
	}
	return nil
}

func hcmRefs(hcm *hcmv3.HttpConnectionManager, out refs) {
	if rds := hcm.GetRds(); rds != nil && overADS(rds.GetConfigSource()) {
		out.add(resourcev3.RouteType, rds.GetRouteConfigName())
	}
	for _, hf := range hcm.GetHttpFilters() {
		if cd := hf.GetConfigDiscovery(); cd != nil && overADS(cd.GetConfigSource()) {
			out.add(resourcev3.ExtensionConfigType, hf.GetName())
		}
	}
}

func commonTLSRefs(c *tlsv3.CommonTlsContext, out refs) {
	for _, s := range c.GetTlsCertificateSdsSecretConfigs() {
		if overADS(s.GetSdsConfig()) {
			out.add(resourcev3.SecretType, s.GetName())
		}
	}
	if s := c.GetValidationContextSdsSecretConfig(); s != nil && overADS(s.GetSdsConfig()) {
		out.add(resourcev3.SecretType, s.GetName())
	}
	if s := c.GetCombinedValidationContext().GetValidationContextSdsSecretConfig(); s != nil && overADS(s.GetSdsConfig()) {
		out.add(resourcev3.SecretType, s.GetName())
	}
}

// clusterRefs adds the EDS assignment and the SDS secrets a cluster uses.
func clusterRefs(c *clusterv3.Cluster, out refs) error {
	if c.GetType() == clusterv3.Cluster_EDS {
		if cfg := c.GetEdsClusterConfig(); overADS(cfg.GetEdsConfig()) {
			name := cfg.GetServiceName()
			if name == "" {
				name = c.GetName()
			}
			out.add(resourcev3.EndpointType, name)
		}
	}
	sockets := []*corev3.TransportSocket{c.GetTransportSocket()}
	for _, m := range c.GetTransportSocketMatches() {
		sockets = append(sockets, m.GetTransportSocket())
	}
	for _, ts := range sockets {
		tc := ts.GetTypedConfig()
		if tc.GetTypeUrl() != upstreamTLSType {
			continue
		}
		tls := &tlsv3.UpstreamTlsContext{}
		if err := tc.UnmarshalTo(tls); err != nil {
			return fmt.Errorf("cluster %q: transport socket: %w", c.GetName(), err)
		}
		commonTLSRefs(tls.GetCommonTlsContext(), out)
	}
	return nil
}

// dependentTypes are subscribed by name, from references in the wildcard
// types, in the order Envoy's initial requests go out.
var dependentTypes = []string{
	resourcev3.EndpointType,
	resourcev3.SecretType,
	resourcev3.RouteType,
	resourcev3.ExtensionConfigType,
}

// wildcardTypes are subscribed on connect, CDS first as Envoy does.
var wildcardTypes = []string{resourcev3.ClusterType, resourcev3.ListenerType}

// nameOf returns the name a decoded resource declares.
func nameOf(m proto.Message) string {
	switch r := m.(type) {
	case *endpointv3.ClusterLoadAssignment:
		return r.GetClusterName()
	case interface{ GetName() string }:
		return r.GetName()
	}
	return ""
}

// decode unpacks one resource of a response and checks it the way Envoy
// does before applying anything.
func decode(typeURL string, a *anypb.Any) (proto.Message, error) {
	if a == nil {
		return nil, fmt.Errorf("empty resource")
	}
	if a.GetTypeUrl() != typeURL {
		return nil, fmt.Errorf("resource of type %s in a %s response", a.GetTypeUrl(), typeURL)
	}
	m, err := a.UnmarshalNew()
	if err != nil {
		return nil, fmt.Errorf("cannot decode %s: %w", typeURL, err)
	}
	if l, ok := m.(*listenerv3.Listener); ok && l.GetApiListener() != nil {
		// Envoy accepts API listeners only from its bootstrap.
		return nil, fmt.Errorf("listener %q: api_listener cannot be added via LDS", l.GetName())
	}
	return m, nil
}

// resourceRefs returns what a listener or cluster references.
func resourceRefs(m proto.Message) (refs, error) {
	rf := refs{}
	var err error
	switch r := m.(type) {
	case *listenerv3.Listener:
		err = listenerRefs(r, rf)
	case *clusterv3.Cluster:
		err = clusterRefs(r, rf)
	}
	return rf, err
}
