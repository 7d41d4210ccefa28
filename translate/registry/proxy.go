package registry

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/hxds/hxds/internal/api"
	"github.com/hxds/hxds/translate/diag"
	"github.com/hxds/hxds/translate/input"
	"github.com/hxds/hxds/translate/ir"
)

// Outbound proxies (McpBridge spec.proxies, higress-semantics §4.8): a
// registry service reached through an HTTP CONNECT proxy. Each proxy gets
// a local listener on 127.0.0.1:<listenerPort> whose tcp_proxy tunnels
// every connection to <SNI>:443 through the proxy's cluster (stock Envoy's
// tcp_proxy tunneling_config); a dns registry with proxyName points its
// cluster at that listener and keeps its TLS, so the gateway speaks TLS to
// the real host through the tunnel.

// Proxy listener ports Higress assigns when listenerPort is not set.
const (
	proxyPortFirst = 50001
	proxyPortLast  = 50999
	// proxyConnectTimeout is Higress's default connectTimeout.
	proxyConnectTimeout = 1200 * time.Millisecond
)

// proxy is one usable spec.proxies entry.
type proxy struct {
	cfg          api.ProxyConfig
	listenerPort uint32
}

// Bridge returns the McpBridge that configures the registries: "default"
// in the system namespace, or nil.
func Bridge(snap *input.Snapshot, opts input.Options) *api.McpBridge {
	return snap.McpBridges[input.NamespacedName{Namespace: opts.SystemNamespace, Name: api.McpBridgeName}]
}

// proxies validates the bridge's proxies and gives each a listener port:
// its own, else the first free one from 50001 (Higress writes the port it
// picks back to the McpBridge; hxds derives the same one from the spec on
// every translation, so it is stable while the proxy list is). report, when
// not nil, receives the problems.
func proxies(bridge *api.McpBridge, report func(field, format string, args ...any)) map[string]proxy {
	out := map[string]proxy{}
	if bridge == nil {
		return out
	}
	if report == nil {
		report = func(string, string, ...any) {}
	}
	taken := map[uint32]bool{}
	for _, p := range bridge.Spec.Proxies {
		if p.ListenerPort != 0 {
			taken[p.ListenerPort] = true
		}
	}
	next := uint32(proxyPortFirst)
	for i, p := range bridge.Spec.Proxies {
		field := fmt.Sprintf("spec.proxies[%d]", i)
		switch {
		case p.Name == "" || p.ServerAddress == "" || p.ServerPort == 0 || p.ServerPort > 65535:
			report(field, "name, serverAddress and serverPort (1-65535) are required; proxy not served")
			continue
		case !strings.EqualFold(p.Type, "http"):
			report(field+".type", "proxy type %q is not supported (only http, an HTTP CONNECT proxy); proxy not served", p.Type)
			continue
		case p.ListenerPort > 65535:
			report(field+".listenerPort", "listenerPort %d is not a port; proxy not served", p.ListenerPort)
			continue
		}
		if _, dup := out[p.Name]; dup {
			report(field+".name", "proxy %s is defined earlier; ignored", p.Name)
			continue
		}
		port := p.ListenerPort
		if port == 0 {
			for next <= proxyPortLast && taken[next] {
				next++
			}
			if next > proxyPortLast {
				report(field+".listenerPort", "no free listener port left in %d-%d; proxy not served", proxyPortFirst, proxyPortLast)
				continue
			}
			port = next
			taken[port] = true
		}
		out[p.Name] = proxy{cfg: p, listenerPort: port}
	}
	return out
}

// proxyCluster is the cluster of the proxy server itself.
func proxyCluster(p proxy) *ir.Backend {
	host := p.cfg.Name + ".proxy"
	be := &ir.Backend{
		Name: ClusterName(p.cfg.ServerPort, "", host), Kind: ir.BackendDNS, Host: p.cfg.ServerAddress, Port: p.cfg.ServerPort,
		Endpoints: []ir.FixedEndpoint{{Host: p.cfg.ServerAddress, Port: p.cfg.ServerPort}},
	}
	if a, err := netip.ParseAddr(p.cfg.ServerAddress); err == nil && a.Is4() {
		be.Kind = ir.BackendStatic
	}
	timeout := proxyConnectTimeout
	if p.cfg.ConnectTimeout > 0 {
		timeout = time.Duration(p.cfg.ConnectTimeout) * time.Millisecond
	}
	be.ConnectTimeout = &ir.Duration{Duration: timeout}
	return be
}

// addProxies serves every valid proxy: its cluster and its local tunnel
// listener.
func addProxies(snap *input.Snapshot, opts input.Options, b *ir.Builder, d *diag.Set) {
	bridge := Bridge(snap, opts)
	if bridge == nil {
		return
	}
	obj := diag.Object{Kind: api.McpBridgeKind, Namespace: bridge.Namespace, Name: bridge.Name}
	ps := proxies(bridge, func(field, format string, args ...any) {
		d.Warn(obj, "invalid-proxy", field, format, args...)
	})
	for _, p := range bridge.Spec.Proxies {
		px, ok := ps[p.Name]
		if !ok || px.cfg != p {
			continue
		}
		be := b.AddBackend(proxyCluster(px))
		b.AddListener(&ir.Listener{
			Name: ir.ListenerName(proxyListenAddress, px.listenerPort), Address: proxyListenAddress, Port: px.listenerPort,
			Protocol: ir.ProtocolTCP,
			TCP: &ir.TCPProxy{
				Name:         "proxy." + p.Name,
				Destinations: []ir.Destination{{Backend: be.Name, Weight: 1}},
				Tunnel:       "%REQUESTED_SERVER_NAME%:443",
			},
		})
	}
}

// proxyListenAddress is where tunnel listeners bind: only the gateway
// itself connects to them.
const proxyListenAddress = "127.0.0.1"

// throughProxy reshapes the cluster of a registry service whose registry
// names a proxy: a static cluster at the proxy's local listener, keeping the
// service's TLS (SNI). Higress applies it only to dns registries with one
// domain and protocol https; so does hxds.
func throughProxy(be *ir.Backend, s *input.RegistryService, p proxy) bool {
	if !s.DNS || len(s.Endpoints) != 1 || s.Protocol != "HTTPS" {
		return false
	}
	sni := s.SNI
	if sni == "" {
		sni = s.Endpoints[0].Address
	}
	be.Kind = ir.BackendStatic
	be.Endpoints = []ir.FixedEndpoint{{Host: proxyListenAddress, Port: p.listenerPort}}
	be.TLS = &ir.UpstreamTLS{SNI: sni}
	return true
}
