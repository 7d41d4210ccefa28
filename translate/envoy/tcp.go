package envoy

// TCP proxying: TCP listeners (TCPRoute) and TLS passthrough chains
// (TLSRoute), and the black-hole cluster that refuses connections.

import (
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/hxds/hxds/translate/ir"
)

// tcpFilterChain is the chain of a TCP port: no match, every connection.
func tcpFilterChain(p *ir.TCPProxy, listenerStatPrefix string) *listenerv3.FilterChain {
	return &listenerv3.FilterChain{Name: p.Name, Filters: []*listenerv3.Filter{tcpProxyFilter(p, listenerStatPrefix)}}
}

// passthroughFilterChain matches the TLS client hello's SNI (tls_inspector)
// and forwards the still encrypted bytes, or with a certificate terminates
// TLS first. transport_protocol "tls" keeps
// plain-text clients off it; the "*" host has no server name and so serves
// TLS clients no more specific chain takes, including those without SNI.
func passthroughFilterChain(p *ir.TCPProxy, listenerStatPrefix string) *listenerv3.FilterChain {
	m := &listenerv3.FilterChainMatch{TransportProtocol: "tls"}
	if p.Host != "*" && p.Host != "" {
		m.ServerNames = []string{p.Host}
	}
	fc := &listenerv3.FilterChain{Name: p.Name, FilterChainMatch: m, Filters: []*listenerv3.Filter{tcpProxyFilter(p, listenerStatPrefix)}}
	if p.Certificate != "" {
		// TLS terminated here; the backend gets the plain bytes. No ALPN is
		// offered: the application protocol is unknown.
		ctx := &tlsv3.DownstreamTlsContext{CommonTlsContext: &tlsv3.CommonTlsContext{
			TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{{Name: p.Certificate, SdsConfig: adsSource()}},
		}}
		fc.TransportSocket = &corev3.TransportSocket{
			Name:       wellknown.TransportSocketTLS,
			ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(ctx)},
		}
	}
	return fc
}

// tcpProxyFilter forwards to the proxy's destinations. The stat prefix is
// the cluster name when there is one cluster (as Istio does), else the
// listener's prefix.
func tcpProxyFilter(p *ir.TCPProxy, listenerStatPrefix string) *listenerv3.Filter {
	tp := &tcpproxyv3.TcpProxy{StatPrefix: listenerStatPrefix}
	if len(p.Destinations) == 1 {
		tp.StatPrefix = p.Destinations[0].Backend
		tp.ClusterSpecifier = &tcpproxyv3.TcpProxy_Cluster{Cluster: p.Destinations[0].Backend}
	} else {
		wc := &tcpproxyv3.TcpProxy_WeightedCluster{}
		for _, d := range p.Destinations {
			wc.Clusters = append(wc.Clusters, &tcpproxyv3.TcpProxy_WeightedCluster_ClusterWeight{Name: d.Backend, Weight: d.Weight})
		}
		tp.ClusterSpecifier = &tcpproxyv3.TcpProxy_WeightedClusters{WeightedClusters: wc}
	}
	if p.Tunnel != "" {
		tp.TunnelingConfig = &tcpproxyv3.TcpProxy_TunnelingConfig{Hostname: p.Tunnel}
	}
	return &listenerv3.Filter{Name: wellknown.TCPProxy, ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(tp)}}
}

// blackHoleCluster has no endpoints: the TCP proxy finds no host and closes
// the connection, which is how an invalid TCPRoute/TLSRoute backend refuses
// its share of connections.
func blackHoleCluster() *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 ir.BlackHoleBackend,
		ConnectTimeout:       durationpb.New(connectTimeout),
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC},
	}
}

// needsBlackHole reports whether some TCP proxy refuses connections.
func needsBlackHole(gw *ir.Gateway) bool {
	for _, l := range gw.Listeners {
		if l.TCP != nil && l.TCP.UsesBlackHole() {
			return true
		}
		for _, p := range l.Passthrough {
			if p.UsesBlackHole() {
				return true
			}
		}
	}
	return false
}

// tcpProxyClusters lists the clusters a tcp_proxy filter forwards to.
func tcpProxyClusters(tp *tcpproxyv3.TcpProxy) []string {
	if c := tp.GetCluster(); c != "" {
		return []string{c}
	}
	var out []string
	for _, wc := range tp.GetWeightedClusters().GetClusters() {
		out = append(out, wc.GetName())
	}
	return out
}
