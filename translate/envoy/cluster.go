package envoy

import (
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/hxds/hxds/translate/ir"
)

// Defaults shared by every upstream cluster. The circuit-breaker limits follow
// Higress's DEFAULT_UPSTREAM_CONCURRENCY_THRESHOLD (10000): Envoy's own 1024
// is too low for a shared gateway.
const (
	connectTimeout   = 10 * time.Second
	concurrencyLimit = 10000
)

func buildCluster(be *ir.Backend) *clusterv3.Cluster {
	c := &clusterv3.Cluster{
		Name:           be.Name,
		ConnectTimeout: durationpb.New(connectTimeout),
		// Istio's default in current releases (ENABLE_LEGACY_LB_ALGORITHM_DEFAULT
		// restores round robin), so what Higress 2.x users get without
		// a load-balance annotation.
		LbPolicy: clusterv3.Cluster_LEAST_REQUEST,
		CircuitBreakers: &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{{
			MaxConnections:     wrapperspb.UInt32(concurrencyLimit),
			MaxPendingRequests: wrapperspb.UInt32(concurrencyLimit),
			MaxRequests:        wrapperspb.UInt32(concurrencyLimit),
			MaxRetries:         wrapperspb.UInt32(concurrencyLimit),
		}}},
	}
	applyTrafficPolicy(c, be)
	if be.ConnectTimeout != nil {
		c.ConnectTimeout = durationpb.New(be.ConnectTimeout.Duration)
	}
	switch be.Kind {
	case ir.BackendDNS, ir.BackendStatic:
		if be.Kind == ir.BackendDNS {
			c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STRICT_DNS}
			c.DnsLookupFamily = clusterv3.Cluster_V4_PREFERRED
			// Envoy's default DNS refresh applies: dns_refresh_rate is
			// deprecated on Cluster, and a deprecated field may turn fatal.
		} else {
			c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC}
		}
		var eps []*endpointv3.LbEndpoint
		for _, d := range be.Endpoints {
			ep := lbEndpoint(d.Host, d.Port, corev3.HealthStatus_UNKNOWN)
			if d.Weight > 1 {
				ep.LoadBalancingWeight = wrapperspb.UInt32(d.Weight)
			}
			eps = append(eps, ep)
		}
		if len(eps) == 0 {
			eps = []*endpointv3.LbEndpoint{lbEndpoint(be.Host, be.Port, corev3.HealthStatus_UNKNOWN)}
		}
		c.LoadAssignment = &endpointv3.ClusterLoadAssignment{
			ClusterName: be.Name,
			Endpoints:   []*endpointv3.LocalityLbEndpoints{{LbEndpoints: eps}},
		}
	default:
		c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS}
		// The EDS name is the cluster name: stable, and what Istio does.
		c.EdsClusterConfig = &clusterv3.Cluster_EdsClusterConfig{EdsConfig: adsSource(), ServiceName: be.Name}
	}
	return c
}

func buildSecret(s *ir.Secret) *tlsv3.Secret {
	if s.CA != nil {
		return &tlsv3.Secret{Name: s.Name, Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
			TrustedCa: &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: s.CA}},
		}}}
	}
	return &tlsv3.Secret{
		Name: s.Name,
		Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
			CertificateChain: &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: s.Cert}},
			PrivateKey:       &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: s.Key}},
		}},
	}
}

func lbEndpoint(address string, port uint32, health corev3.HealthStatus) *endpointv3.LbEndpoint {
	return &endpointv3.LbEndpoint{
		HealthStatus: health,
		HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
			Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
				Address:       address,
				PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
			}}},
		}},
	}
}

var lbPolicies = map[string]clusterv3.Cluster_LbPolicy{
	"ROUND_ROBIN":   clusterv3.Cluster_ROUND_ROBIN,
	"LEAST_REQUEST": clusterv3.Cluster_LEAST_REQUEST,
	"RANDOM":        clusterv3.Cluster_RANDOM,
	"RING_HASH":     clusterv3.Cluster_RING_HASH,
	"MAGLEV":        clusterv3.Cluster_MAGLEV,
}

// applyTrafficPolicy sets HTTP/2, upstream TLS and the load-balancing policy.
func applyTrafficPolicy(c *clusterv3.Cluster, be *ir.Backend) {
	if p, ok := lbPolicies[be.LB]; ok {
		c.LbPolicy = p
	}
	if be.HTTP2 {
		c.TypedExtensionProtocolOptions = map[string]*anypb.Any{
			"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": mustAny(&httpv3.HttpProtocolOptions{
				UpstreamProtocolOptions: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig{
					ProtocolConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{Http2ProtocolOptions: &corev3.Http2ProtocolOptions{}},
				}},
			}),
		}
	}
	if t := be.TLS; t != nil {
		ctx := &tlsv3.UpstreamTlsContext{Sni: t.SNI, CommonTlsContext: &tlsv3.CommonTlsContext{AlpnProtocols: t.ALPN}}
		if t.ClientCertificate != "" {
			ctx.CommonTlsContext.TlsCertificateSdsSecretConfigs = []*tlsv3.SdsSecretConfig{{Name: t.ClientCertificate, SdsConfig: adsSource()}}
		}
		setUpstreamValidation(ctx.CommonTlsContext, t)
		c.TransportSocket = &corev3.TransportSocket{
			Name:       wellknown.TransportSocketTLS,
			ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(ctx)},
		}
	}
}
