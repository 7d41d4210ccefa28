package ir

import "fmt"

// TCPProxy returns the proxy of a TCP port, creating an empty one named
// tcp.<port>; existing reports whether it was already there (a TCP port
// serves one route: the caller decides which).
func (b *Builder) TCPProxy(port uint32) (p *TCPProxy, existing bool) {
	if p := b.tcp[port]; p != nil {
		return p, true
	}
	p = &TCPProxy{Name: fmt.Sprintf("tcp.%d", port)}
	b.tcp[port] = p
	return p, false
}

// Passthrough returns the TLS passthrough chain of host on port, creating
// an empty one named tls.<port>.<host>; existing reports whether it was
// already there. Callers must not add a host that has a TLSServer on the
// port (see TLSServer): Envoy rejects two chains with the same match.
func (b *Builder) Passthrough(port uint32, host string) (p *TCPProxy, existing bool) {
	hosts := b.passthrough[port]
	if hosts == nil {
		hosts = map[string]*TCPProxy{}
		b.passthrough[port] = hosts
	}
	if p := hosts[host]; p != nil {
		return p, true
	}
	p = &TCPProxy{Name: fmt.Sprintf("tls.%d.%s", port, host), Host: host}
	hosts[host] = p
	return p, false
}

// buildTCP adds the TCP listeners and the passthrough chains to listeners:
// into the HTTPS listener of the port when there is one (terminating and
// passthrough chains share the port's listener), else into a TLS listener.
// Proxies nobody filled (no destination) are left out.
func (b *Builder) buildTCP(listeners []*Listener) []*Listener {
	for _, port := range sortedPorts(b.tcp) {
		if p := b.tcp[port]; len(p.Destinations) > 0 {
			listeners = append(listeners, &Listener{
				Name: ListenerName(b.address, port), Address: b.address, Port: port, Protocol: ProtocolTCP, TCP: p,
			})
		}
	}
	for _, port := range sortedPorts(b.passthrough) {
		var chains []*TCPProxy
		hosts := b.passthrough[port]
		for _, h := range sortedHosts(hosts) {
			if len(hosts[h].Destinations) > 0 {
				chains = append(chains, hosts[h])
			}
		}
		if len(chains) == 0 {
			continue
		}
		var l *Listener
		for _, x := range listeners {
			if x.Port == port && x.Protocol == ProtocolHTTPS {
				l = x
			}
		}
		if l == nil {
			l = &Listener{Name: ListenerName(b.address, port), Address: b.address, Port: port, Protocol: ProtocolTLS}
			listeners = append(listeners, l)
		}
		l.Passthrough = chains
	}
	return listeners
}
