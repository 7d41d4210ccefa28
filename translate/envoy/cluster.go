package envoy

import (
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
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
	dnsRefreshRate   = 30 * time.Second
)

func buildCluster(be *ir.Backend) *clusterv3.Cluster {
	c := &clusterv3.Cluster{
		Name:           be.Name,
		ConnectTimeout: durationpb.New(connectTimeout),
		LbPolicy:       clusterv3.Cluster_ROUND_ROBIN,
		CircuitBreakers: &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{{
			MaxConnections:     wrapperspb.UInt32(concurrencyLimit),
			MaxPendingRequests: wrapperspb.UInt32(concurrencyLimit),
			MaxRequests:        wrapperspb.UInt32(concurrencyLimit),
			MaxRetries:         wrapperspb.UInt32(concurrencyLimit),
		}}},
	}
	switch be.Kind {
	case ir.BackendDNS:
		c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STRICT_DNS}
		c.DnsLookupFamily = clusterv3.Cluster_V4_PREFERRED
		c.DnsRefreshRate = durationpb.New(dnsRefreshRate)
		c.LoadAssignment = &endpointv3.ClusterLoadAssignment{
			ClusterName: be.Name,
			Endpoints: []*endpointv3.LocalityLbEndpoints{{LbEndpoints: []*endpointv3.LbEndpoint{
				lbEndpoint(be.Host, be.Port, corev3.HealthStatus_UNKNOWN),
			}}},
		}
	default:
		c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS}
		// The EDS name is the cluster name: stable, and what Istio does.
		c.EdsClusterConfig = &clusterv3.Cluster_EdsClusterConfig{EdsConfig: adsSource(), ServiceName: be.Name}
	}
	return c
}

func buildSecret(s *ir.Secret) *tlsv3.Secret {
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
