package routecheck

// TCP proxy filter chains (envoy.filters.network.tcp_proxy): the
// connection's bytes go to one cluster, or one of weighted clusters; no
// HTTP processing happens, so TLS clients on a chain without a transport
// socket are passed through, not failed.

import (
	"fmt"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
)

const tcpProxyTypeURL = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"

// tcpProxyOf returns the chain's tcp_proxy when it is the chain's
// terminal filter (the last network filter), else nil.
func tcpProxyOf(fc *listenerv3.FilterChain) (*tcpproxyv3.TcpProxy, error) {
	fs := fc.GetFilters()
	if len(fs) == 0 {
		return nil, nil
	}
	f := fs[len(fs)-1]
	if f.GetName() != wellknown.TCPProxy && f.GetTypedConfig().GetTypeUrl() != tcpProxyTypeURL {
		return nil, nil
	}
	tp := &tcpproxyv3.TcpProxy{}
	if err := anyTo(f.GetTypedConfig(), tp); err != nil {
		return nil, fmt.Errorf("filter chain %q: %w", fc.GetName(), err)
	}
	return tp, nil
}

// tcpProxy picks the upstream cluster of a proxied connection as Envoy's
// TCP proxy does (weighted clusters: random value % total weight) and
// reports its endpoints. A missing cluster or one without a healthy
// endpoint closes the connection.
func (e *evaluator) tcpProxy(fc *listenerv3.FilterChain, tp *tcpproxyv3.TcpProxy) {
	out := e.out
	out.TCPProxy = true
	if len(fc.GetFilters()) > 1 {
		e.notSimulated("network filters before tcp_proxy in filter chain %s", fc.GetName())
	}
	switch cs := tp.GetClusterSpecifier().(type) {
	case *tcpproxyv3.TcpProxy_Cluster:
		out.Cluster = cs.Cluster
	case *tcpproxyv3.TcpProxy_WeightedClusters:
		var total uint64
		for _, c := range cs.WeightedClusters.GetClusters() {
			out.Weighted = append(out.Weighted, ClusterWeight{Cluster: c.GetName(), Weight: c.GetWeight()})
			total += uint64(c.GetWeight())
		}
		if total > 0 {
			selected, begin := e.req.RandomValue%total, uint64(0)
			for _, c := range out.Weighted {
				if selected < begin+uint64(c.Weight) {
					out.Cluster = c.Cluster
					break
				}
				begin += uint64(c.Weight)
			}
		}
	}
	if tp.GetOnDemand() != nil {
		e.notSimulated("tcp_proxy on_demand cluster discovery")
	}
	out.Service, out.Subset = serviceOf(out.Cluster)
	if _, haveClusters := e.res[resourcev3.ClusterType]; !haveClusters {
		out.Forwarded = true
		return
	}
	c, ok := e.res[resourcev3.ClusterType][out.Cluster].(*clusterv3.Cluster)
	if !ok || out.Cluster == "" {
		out.ClusterMissing = true
		out.ConnectionError = fmt.Sprintf("tcp_proxy cluster %q does not exist: connection closed", out.Cluster)
		return
	}
	if eps, known := e.endpointsOf(c); known {
		healthy := 0
		for _, ep := range eps {
			if ep.healthy {
				healthy++
			}
			out.Endpoints = append(out.Endpoints, ep.addr)
		}
		if healthy == 0 {
			out.NoHealthyUpstream = true
			out.ConnectionError = fmt.Sprintf("cluster %s has no healthy endpoint: connection closed", out.Cluster)
			return
		}
	}
	out.Forwarded = true
}
