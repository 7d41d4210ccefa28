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
	"strings"

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
func Backend(snap *input.Snapshot, opts input.Options, host string, port uint32, subset string) *ir.Backend {
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
			be.Endpoints = append(be.Endpoints, ir.FixedEndpoint{Host: e.Address, Port: p, Weight: e.Weight})
		}
		if len(be.Endpoints) == 0 {
			// A DNS cluster needs an endpoint; none is a cluster that
			// cannot connect, as an empty EDS one.
			be.Kind = ir.BackendRegistry
		}
	}
	if name := proxyNameOf(snap, opts, s.Registry); name != "" {
		if p, ok := proxies(Bridge(snap, opts), nil)[name]; ok {
			throughProxy(be, s, p)
		}
	}
	return be
}

// proxyNameOf is the proxyName of registry key in the McpBridge.
func proxyNameOf(snap *input.Snapshot, opts input.Options, key string) string {
	bridge := Bridge(snap, opts)
	if bridge == nil {
		return ""
	}
	for _, r := range bridge.Spec.Registries {
		if r.Key() == key {
			return r.ProxyName
		}
	}
	return ""
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
	addProxies(snap, opts, b, d)
	checkProxyNames(snap, opts, d)
	hosts := make([]string, 0, len(snap.Registry))
	for h := range snap.Registry {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	for _, h := range hosts {
		b.AddBackend(Backend(snap, opts, h, Port(snap, h), ""))
	}
}

// checkProxyNames reports registries whose proxyName cannot apply.
func checkProxyNames(snap *input.Snapshot, opts input.Options, d *diag.Set) {
	bridge := Bridge(snap, opts)
	if bridge == nil {
		return
	}
	obj := diag.Object{Kind: api.McpBridgeKind, Namespace: bridge.Namespace, Name: bridge.Name}
	ps := proxies(bridge, nil)
	for i, r := range bridge.Spec.Registries {
		if r.ProxyName == "" {
			continue
		}
		field := fmt.Sprintf("spec.registries[%d].proxyName", i)
		if _, ok := ps[r.ProxyName]; !ok {
			d.Warn(obj, "invalid-proxy", field, "proxy %q is not defined (or not valid) in spec.proxies; the registry is reached directly", r.ProxyName)
			continue
		}
		if r.Type != "dns" || strings.Contains(r.Domain, ",") || !strings.EqualFold(r.Protocol, "https") {
			d.Warn(obj, "invalid-proxy", field, "a proxy applies to dns registries with one domain and protocol https, as in Higress; the registry is reached directly")
		}
	}
}
