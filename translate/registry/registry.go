// Package registry is the front-end of service registry hosts (McpBridge
// discovery, higress-semantics §4): every discovered host gets its cluster,
// as every Higress ServiceEntry does (Wasm plugins call registry services
// by cluster name), shaped by the host's protocol (HTTP/2 for gRPC, TLS
// with SNI for https/grpcs) and resolution (EDS, or STRICT_DNS for host
// names). Ingress destinations and Gateway API registry backendRefs use
// the same clusters. The McpBridge objects are reported here: only
// "default" in the system namespace configures the registries.
package registry

import (
	"fmt"
	"sort"

	"github.com/hxds/hxds/internal/api"
	"github.com/hxds/hxds/translate/diag"
	"github.com/hxds/hxds/translate/input"
	"github.com/hxds/hxds/translate/ir"
)

// DefaultPort is the cluster port of a destination that names none when
// the host is not (yet) discovered: the McpBridge vport default.
const DefaultPort = 80

// Port is the cluster port of a registry destination naming no port: the
// discovered service's port, else DefaultPort.
func Port(snap *input.Snapshot, host string) uint32 {
	if s := snap.Registry[host]; s != nil && s.Port != 0 {
		return s.Port
	}
	return DefaultPort
}

// ClusterName is Istio's cluster name of a registry host port and subset.
func ClusterName(port uint32, subset, host string) string {
	return fmt.Sprintf("outbound|%d|%s|%s", port, subset, host)
}

// Backend is the cluster of registry host at port (subset may be empty),
// shaped by what discovery knows of the host; an unknown host is a plain
// HTTP/1 EDS cluster that stays empty until a registry fills it.
func Backend(snap *input.Snapshot, host string, port uint32, subset string) *ir.Backend {
	be := &ir.Backend{Name: ClusterName(port, subset, host), Kind: ir.BackendRegistry, Host: host, Port: port}
	s := snap.Registry[host]
	if s == nil {
		return be
	}
	switch s.Protocol {
	case "HTTP2", "GRPC":
		be.HTTP2 = true
	case "GRPCS":
		be.HTTP2 = true
		be.TLS = &ir.UpstreamTLS{SNI: s.SNI, ALPN: []string{"h2"}}
	case "HTTPS":
		be.TLS = &ir.UpstreamTLS{SNI: s.SNI}
	}
	if s.DNS {
		be.Kind = ir.BackendDNS
		for _, e := range s.Endpoints {
			p := e.Port
			if p == 0 {
				p = port
			}
			be.DNSEndpoints = append(be.DNSEndpoints, ir.DNSEndpoint{Host: e.Address, Port: p, Weight: e.Weight})
		}
		if len(be.DNSEndpoints) == 0 {
			// A DNS cluster needs an endpoint; none is a cluster that
			// cannot connect, as an empty EDS one.
			be.Kind = ir.BackendRegistry
		}
	}
	return be
}

// Translate registers the cluster of every discovered host and reports the
// McpBridges.
func Translate(snap *input.Snapshot, opts input.Options, b *ir.Builder, d *diag.Set) {
	for _, nn := range input.SortedKeys(snap.McpBridges) {
		obj := diag.Object{Kind: api.McpBridgeKind, Namespace: nn.Namespace, Name: nn.Name}
		if nn.Namespace == opts.SystemNamespace && nn.Name == api.McpBridgeName {
			d.Accept(obj)
			continue
		}
		d.Ignore(obj, "ignored-mcpbridge", "only the McpBridge named %s in namespace %s configures registries, as in Higress", api.McpBridgeName, opts.SystemNamespace)
	}
	hosts := make([]string, 0, len(snap.Registry))
	for h := range snap.Registry {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	for _, h := range hosts {
		b.AddBackend(Backend(snap, h, Port(snap, h), ""))
	}
}
