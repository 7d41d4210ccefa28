package envoy

import (
	"strings"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	aggregatev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/clusters/aggregate/v3"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/hxds/hxds/translate/ir"
)

// FallbackClusterName names the aggregate cluster that tries primary, then
// each fallback in order. The name lists them all, so routes with the same
// chain share one cluster and different chains never collide.
func FallbackClusterName(primary string, fallbacks []string) string {
	return "fallback|" + primary + "|" + strings.Join(fallbacks, ",")
}

// aggregateCluster is stock Envoy's answer to Higress's forked
// cluster_fallback plugin: an aggregate cluster sends traffic to the first
// of its clusters that has healthy hosts, so a Service that is missing or
// has no ready endpoint falls over to the next one.
func aggregateCluster(primary string, fallbacks []string) *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:           FallbackClusterName(primary, fallbacks),
		ConnectTimeout: durationpb.New(connectTimeout),
		LbPolicy:       clusterv3.Cluster_CLUSTER_PROVIDED,
		ClusterDiscoveryType: &clusterv3.Cluster_ClusterType{ClusterType: &clusterv3.Cluster_CustomClusterType{
			Name:        "envoy.clusters.aggregate",
			TypedConfig: mustAny(&aggregatev3.ClusterConfig{Clusters: append([]string{primary}, fallbacks...)}),
		}},
	}
}

// destinationCluster is the cluster a route sends a destination to.
func destinationCluster(d ir.Destination) string {
	if len(d.Fallbacks) == 0 {
		return d.Backend
	}
	return FallbackClusterName(d.Backend, d.Fallbacks)
}

// fallbackClusters returns the aggregate clusters the gateway's routes use.
func fallbackClusters(gw *ir.Gateway) []*clusterv3.Cluster {
	seen := map[string]bool{}
	var out []*clusterv3.Cluster
	visit := func(rt *ir.RouteTable) {
		for _, vh := range rt.VirtualHosts {
			for _, r := range vh.Routes {
				if r.Forward == nil {
					continue
				}
				for _, d := range r.Forward.Destinations {
					if name := destinationCluster(d); name != d.Backend && !seen[name] {
						seen[name] = true
						out = append(out, aggregateCluster(d.Backend, d.Fallbacks))
					}
				}
			}
		}
	}
	for _, l := range gw.Listeners {
		if l.Routes != nil {
			visit(l.Routes)
		}
		for _, s := range l.Servers {
			visit(s.Routes)
		}
	}
	return out
}
