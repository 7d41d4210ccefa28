package ir

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hxds/hxds/translate/diag"
)

// Builder merges what every front-end contributes to one gateway group into
// per-port listeners, as Higress does: all hosts of a port share one listener.
// Front-ends add hosts in their own order with routes already sorted; Build
// assembles listeners, route tables and filter chains deterministically.
type Builder struct {
	group    string
	address  string
	http     map[uint32]map[string]*VirtualHost
	https    map[uint32]map[string]*TLSServer
	backends map[string]*Backend
	secrets  map[string]*Secret
	// tcp and passthrough: see tcpbuilder.go.
	tcp         map[uint32]*TCPProxy
	passthrough map[uint32]map[string]*TCPProxy
	// extra listeners (AddListener).
	extra []*Listener
	// wasm plugins (AddWasmPlugin).
	wasm []*WasmPlugin
}

// NewBuilder starts an empty gateway for group; listeners bind address.
func NewBuilder(group, address string) *Builder {
	return &Builder{
		group:    group,
		address:  address,
		http:     map[uint32]map[string]*VirtualHost{},
		https:    map[uint32]map[string]*TLSServer{},
		backends: map[string]*Backend{},
		secrets:  map[string]*Secret{},

		tcp:         map[uint32]*TCPProxy{},
		passthrough: map[uint32]map[string]*TCPProxy{},
	}
}

// HTTPHost returns the virtual host for host on an HTTP port, creating it.
func (b *Builder) HTTPHost(port uint32, host string) *VirtualHost {
	hosts := b.http[port]
	if hosts == nil {
		hosts = map[string]*VirtualHost{}
		b.http[port] = hosts
	}
	vh := hosts[host]
	if vh == nil {
		vh = newVirtualHost(host, port)
		hosts[host] = vh
	}
	return vh
}

// TLSHost returns the TLS server for host on an HTTPS port, creating it with
// certificate. The first certificate for a host wins; existing reports whether
// the server was already there (the caller decides whether that is a conflict).
func (b *Builder) TLSHost(port uint32, host, certificate string, source diag.Object) (server *TLSServer, existing bool) {
	servers := b.https[port]
	if servers == nil {
		servers = map[string]*TLSServer{}
		b.https[port] = servers
	}
	if s := servers[host]; s != nil {
		return s, true
	}
	s := &TLSServer{
		Hosts:       []string{host},
		Certificate: certificate,
		Source:      source,
		Routes: &RouteTable{
			Name:         fmt.Sprintf("https.%d.%s", port, host),
			VirtualHosts: []*VirtualHost{newVirtualHost(host, port)},
		},
	}
	servers[host] = s
	return s, false
}

// TLSServer returns the TLS server of host on port, if one was created.
func (b *Builder) TLSServer(port uint32, host string) (*TLSServer, bool) {
	s, ok := b.https[port][host]
	return s, ok
}

// TLSServers returns the TLS servers of an HTTPS port, by host.
func (b *Builder) TLSServers(port uint32) map[string]*TLSServer { return b.https[port] }

// AddBackend registers a backend and returns the registered one: the first
// registration of a name wins, so the same Service port referenced by many
// routes is one cluster.
func (b *Builder) AddBackend(be *Backend) *Backend {
	if old, ok := b.backends[be.Name]; ok {
		return old
	}
	b.backends[be.Name] = be
	return be
}

// AddListener adds a listener the per-port builders do not make (the local
// tunnel listeners of outbound proxies). Its port must be free.
func (b *Builder) AddListener(l *Listener) { b.extra = append(b.extra, l) }

// Backend returns a registered backend.
func (b *Builder) Backend(name string) *Backend { return b.backends[name] }

// AddSecret registers a certificate served over SDS.
func (b *Builder) AddSecret(s *Secret) {
	if _, ok := b.secrets[s.Name]; !ok {
		b.secrets[s.Name] = s
	}
}

// Build returns the assembled gateway. Listeners are ordered by port, virtual
// hosts by name, TLS servers by host with the "*" server last so that more
// specific SNI chains are listed first.
func (b *Builder) Build() *Gateway {
	gw := &Gateway{Group: b.group, Backends: b.backends, Secrets: b.secrets}
	gw.WasmPlugins = append([]*WasmPlugin(nil), b.wasm...)
	SortWasmPlugins(gw.WasmPlugins)
	for _, port := range sortedPorts(b.http) {
		hosts := b.http[port]
		rt := &RouteTable{Name: fmt.Sprintf("http.%d", port)}
		for _, h := range sortedHosts(hosts) {
			rt.VirtualHosts = append(rt.VirtualHosts, hosts[h])
		}
		gw.Listeners = append(gw.Listeners, &Listener{
			Name: ListenerName(b.address, port), Address: b.address, Port: port,
			Protocol: ProtocolHTTP, Routes: rt,
		})
	}
	for _, port := range sortedPorts(b.https) {
		servers := b.https[port]
		l := &Listener{Name: ListenerName(b.address, port), Address: b.address, Port: port, Protocol: ProtocolHTTPS}
		for _, h := range sortedHosts(servers) {
			l.Servers = append(l.Servers, servers[h])
		}
		gw.Listeners = append(gw.Listeners, l)
	}
	gw.Listeners = b.buildTCP(gw.Listeners)
	gw.Listeners = append(gw.Listeners, b.extra...)
	sort.SliceStable(gw.Listeners, func(i, j int) bool { return gw.Listeners[i].Port < gw.Listeners[j].Port })
	return gw
}

// ListenerName follows Istio's gateway convention 0.0.0.0_<port>.
func ListenerName(address string, port uint32) string {
	return fmt.Sprintf("%s_%d", address, port)
}

func newVirtualHost(host string, port uint32) *VirtualHost {
	domains := []string{host}
	if host != "*" {
		domains = append(domains, fmt.Sprintf("%s:%d", host, port))
	}
	return &VirtualHost{Name: fmt.Sprintf("%s:%d", host, port), Host: host, Domains: domains}
}

func sortedPorts[V any](m map[uint32]V) []uint32 {
	ports := make([]uint32, 0, len(m))
	for p := range m {
		ports = append(ports, p)
	}
	sort.Slice(ports, func(i, j int) bool { return ports[i] < ports[j] })
	return ports
}

// sortedHosts orders host names alphabetically with wildcard hosts after exact
// ones and "*" last; the order only affects readability, since Envoy selects
// virtual hosts and SNI chains by specificity, not position.
func sortedHosts[V any](m map[string]V) []string {
	hosts := make([]string, 0, len(m))
	for h := range m {
		hosts = append(hosts, h)
	}
	rank := func(h string) int {
		switch {
		case h == "*":
			return 2
		case strings.HasPrefix(h, "*"):
			return 1
		}
		return 0
	}
	sort.Slice(hosts, func(i, j int) bool {
		ri, rj := rank(hosts[i]), rank(hosts[j])
		if ri != rj {
			return ri < rj
		}
		return hosts[i] < hosts[j]
	})
	return hosts
}
