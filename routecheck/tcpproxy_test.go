package routecheck

import (
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
)

func tcpChain(t *testing.T, name string, tp *tcpproxyv3.TcpProxy, serverNames ...string) *listenerv3.FilterChain {
	fc := &listenerv3.FilterChain{Name: name, Filters: []*listenerv3.Filter{{
		Name: "envoy.filters.network.tcp_proxy", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, tp)},
	}}}
	if len(serverNames) > 0 {
		fc.FilterChainMatch = &listenerv3.FilterChainMatch{ServerNames: serverNames, TransportProtocol: "tls"}
	}
	return fc
}

func toTCPCluster(name string) *tcpproxyv3.TcpProxy {
	return &tcpproxyv3.TcpProxy{StatPrefix: name, ClusterSpecifier: &tcpproxyv3.TcpProxy_Cluster{Cluster: name}}
}

func edsClusterWith(name string, addrs ...string) (*clusterv3.Cluster, *endpointv3.ClusterLoadAssignment) {
	c := &clusterv3.Cluster{Name: name, ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS}}
	cla := &endpointv3.ClusterLoadAssignment{ClusterName: name}
	var lbs []*endpointv3.LbEndpoint
	for _, a := range addrs {
		lbs = append(lbs, &endpointv3.LbEndpoint{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
			Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
				Address: a, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 9000},
			}}},
		}}})
	}
	cla.Endpoints = []*endpointv3.LocalityLbEndpoints{{LbEndpoints: lbs}}
	return c, cla
}

func TestTCPProxyPassthroughBySNI(t *testing.T) {
	const a, b = "outbound|443||a.shop.svc.cluster.local", "outbound|443||b.shop.svc.cluster.local"
	ca, claA := edsClusterWith(a, "10.0.0.1")
	cb, claB := edsClusterWith(b, "10.0.0.2")
	l := listener("0.0.0.0_9443", 9443, true,
		tcpChain(t, "tls.9443.a.example.com", toTCPCluster(a), "a.example.com"),
		tcpChain(t, "tls.9443.*.example.com", toTCPCluster(b), "*.example.com"),
	)
	res := resources(l, ca, claA, cb, claB)
	for _, tc := range []struct{ sni, chain, cluster, service, endpoint string }{
		{"a.example.com", "tls.9443.a.example.com", a, "shop/a:443", "10.0.0.1:9000"},
		{"x.example.com", "tls.9443.*.example.com", b, "shop/b:443", "10.0.0.2:9000"},
	} {
		o := eval(t, res, Request{Port: 9443, TLS: true, SNI: tc.sni})
		if !o.TCPProxy || !o.Forwarded || o.FilterChain != tc.chain || o.Cluster != tc.cluster || o.Service != tc.service ||
			len(o.Endpoints) != 1 || o.Endpoints[0] != tc.endpoint || o.ConnectionError != "" || o.RouteConfig != "" {
			t.Errorf("SNI %s: %+v", tc.sni, o)
		}
	}
	// Other SNIs and plain-text clients match no chain.
	for _, req := range []Request{{Port: 9443, TLS: true, SNI: "other.org"}, {Port: 9443}} {
		if o := eval(t, res, req); !o.NoFilterChain || o.Forwarded {
			t.Errorf("%+v: want no filter chain, got %+v", req, o)
		}
	}
}

func TestTCPProxyWeightedAndRefused(t *testing.T) {
	const a = "outbound|9000||db.shop.svc.cluster.local"
	ca, cla := edsClusterWith(a, "10.0.0.1")
	hole := &clusterv3.Cluster{Name: "BlackHoleCluster", ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC}}
	tp := &tcpproxyv3.TcpProxy{StatPrefix: "x", ClusterSpecifier: &tcpproxyv3.TcpProxy_WeightedClusters{WeightedClusters: &tcpproxyv3.TcpProxy_WeightedCluster{
		Clusters: []*tcpproxyv3.TcpProxy_WeightedCluster_ClusterWeight{{Name: a, Weight: 3}, {Name: "BlackHoleCluster", Weight: 1}},
	}}}
	res := resources(listener("0.0.0.0_9000", 9000, false, tcpChain(t, "tcp.9000", tp)), ca, cla, hole)

	o := eval(t, res, Request{Port: 9000, RandomValue: 2})
	if !o.TCPProxy || !o.Forwarded || o.Cluster != a || len(o.Weighted) != 2 || o.Weighted[0].Weight != 3 || o.FilterChain != "tcp.9000" {
		t.Errorf("random 2: %+v", o)
	}
	o = eval(t, res, Request{Port: 9000, RandomValue: 3})
	if !o.TCPProxy || o.Forwarded || o.Cluster != "BlackHoleCluster" || !o.NoHealthyUpstream || o.ConnectionError == "" {
		t.Errorf("random 3: want the connection closed, got %+v", o)
	}
	// A TLS client on a TCP port is proxied as is.
	if o = eval(t, res, Request{Port: 9000, TLS: true, SNI: "x"}); !o.Forwarded || o.Cluster != a {
		t.Errorf("TLS client on TCP: %+v", o)
	}
	// A missing cluster closes the connection.
	res = resources(listener("0.0.0.0_9000", 9000, false, tcpChain(t, "tcp.9000", toTCPCluster("nope"))), ca)
	if o = eval(t, res, Request{Port: 9000}); !o.ClusterMissing || o.Forwarded || o.ConnectionError == "" {
		t.Errorf("missing cluster: %+v", o)
	}
}
