package routecheck

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
)

const (
	hcmTypeURL          = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
	tlsInspectorTypeURL = "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"
	downstreamTLSType   = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
)

// selectListener picks the listener bound to the request's port: a listener
// on the request's destination address wins over a wildcard (0.0.0.0 / ::)
// one, as the kernel's socket lookup does. API listeners (no address) never
// accept connections.
func (e *evaluator) selectListener() *listenerv3.Listener {
	var exact, wildcard, other []*listenerv3.Listener
	for _, name := range sortedNames(e.res[resourcev3.ListenerType]) {
		l, ok := e.res[resourcev3.ListenerType][name].(*listenerv3.Listener)
		if !ok || l.GetApiListener() != nil {
			continue
		}
		addrs := []*corev3.Address{l.GetAddress()}
		for _, a := range l.GetAdditionalAddresses() {
			addrs = append(addrs, a.GetAddress())
		}
		for _, a := range addrs {
			sa := a.GetSocketAddress()
			if sa == nil || sa.GetPortValue() != e.req.Port {
				continue
			}
			ip, err := netip.ParseAddr(sa.GetAddress())
			switch {
			case err == nil && ip.IsUnspecified():
				wildcard = append(wildcard, l)
			case e.req.DestinationIP != "" && sa.GetAddress() == e.req.DestinationIP:
				exact = append(exact, l)
			case e.req.DestinationIP == "":
				// Unknown destination: a specific address may be the one.
				other = append(other, l)
			}
			break
		}
	}
	switch {
	case len(exact) > 0:
		if len(exact) > 1 {
			e.note("several listeners bind port %d; %s was taken (set destinationIP to choose)", e.req.Port, exact[0].Name)
		}
		return exact[0]
	case len(wildcard) > 0:
		return wildcard[0]
	case len(other) > 0:
		e.note("no wildcard listener on port %d; %s (a specific address) was taken", e.req.Port, other[0].Name)
		return other[0]
	}
	return nil
}

// connection is what Envoy's filter chain matching sees of a connection.
type connection struct {
	transport string // "tls" or "raw_buffer" (as detected by tls_inspector)
	sni       string
	alpn      []string
}

func (e *evaluator) connectionOf(l *listenerv3.Listener) connection {
	c := connection{transport: "raw_buffer"}
	inspector := false
	for _, lf := range l.GetListenerFilters() {
		if lf.GetName() == wellknown.TlsInspector || lf.GetTypedConfig().GetTypeUrl() == tlsInspectorTypeURL {
			inspector = true
		}
	}
	if !inspector {
		if e.req.TLS {
			e.note("listener %s has no tls_inspector: SNI and ALPN are not seen by filter chain matching", l.Name)
		}
		return c
	}
	if e.req.TLS {
		c.transport = "tls"
		c.sni = strings.ToLower(e.req.SNI)
		c.alpn = e.req.ALPN
		if len(c.alpn) == 0 {
			c.alpn = []string{"h2", "http/1.1"}
		}
	}
	return c
}

// selectFilterChain implements Envoy's filter chain match order: destination
// port, destination IP, server name, transport protocol, application
// protocols, direct source IP, source type, source IP, source port. At every
// step the most specific matching chains are kept; chains that leave the
// criterion empty are kept only when no chain matches it specifically. There
// is no backtracking: a chain that wins on server name but fails a later
// criterion does not give way to a less specific server name.
func (e *evaluator) selectFilterChain(l *listenerv3.Listener, c connection) (*listenerv3.FilterChain, error) {
	if l.GetFilterChainMatcher() != nil {
		return nil, fmt.Errorf("listener %s: filter_chain_matcher is not supported", l.Name)
	}
	cands := l.GetFilterChains()
	src, srcErr := netip.ParseAddr(e.req.SourceIP)
	dst, dstErr := netip.ParseAddr(e.req.DestinationIP)

	cands = narrow(cands, func(m *listenerv3.FilterChainMatch) (bool, int, bool) {
		if m.GetDestinationPort() == nil {
			return false, 0, false
		}
		return true, 1, m.GetDestinationPort().GetValue() == e.req.Port
	})
	cands = narrow(cands, func(m *listenerv3.FilterChainMatch) (bool, int, bool) {
		if len(m.GetPrefixRanges()) == 0 {
			return false, 0, false
		}
		if dstErr != nil {
			return true, 0, false
		}
		n, ok := longestCIDR(m.GetPrefixRanges(), dst)
		return true, n, ok
	})
	cands = narrow(cands, func(m *listenerv3.FilterChainMatch) (bool, int, bool) {
		if len(m.GetServerNames()) == 0 {
			return false, 0, false
		}
		return serverNameMatch(m.GetServerNames(), c.sni)
	})
	cands = narrow(cands, func(m *listenerv3.FilterChainMatch) (bool, int, bool) {
		if m.GetTransportProtocol() == "" {
			return false, 0, false
		}
		return true, 1, m.GetTransportProtocol() == c.transport
	})
	cands = narrow(cands, func(m *listenerv3.FilterChainMatch) (bool, int, bool) {
		if len(m.GetApplicationProtocols()) == 0 {
			return false, 0, false
		}
		for _, want := range c.alpn {
			for _, p := range m.GetApplicationProtocols() {
				if p == want {
					return true, 1, true
				}
			}
		}
		return true, 0, false
	})
	ipStage := func(ranges func(*listenerv3.FilterChainMatch) []*corev3.CidrRange) {
		cands = narrow(cands, func(m *listenerv3.FilterChainMatch) (bool, int, bool) {
			if len(ranges(m)) == 0 {
				return false, 0, false
			}
			if srcErr != nil {
				return true, 0, false
			}
			n, ok := longestCIDR(ranges(m), src)
			return true, n, ok
		})
	}
	ipStage((*listenerv3.FilterChainMatch).GetDirectSourcePrefixRanges)
	cands = narrow(cands, func(m *listenerv3.FilterChainMatch) (bool, int, bool) {
		switch m.GetSourceType() {
		case listenerv3.FilterChainMatch_ANY:
			return false, 0, false
		case listenerv3.FilterChainMatch_SAME_IP_OR_LOOPBACK:
			local := srcErr == nil && (src.IsLoopback() || (dstErr == nil && src == dst))
			return true, 1, local
		default: // EXTERNAL
			local := srcErr == nil && (src.IsLoopback() || (dstErr == nil && src == dst))
			return true, 1, !local
		}
	})
	ipStage((*listenerv3.FilterChainMatch).GetSourcePrefixRanges)
	cands = narrow(cands, func(m *listenerv3.FilterChainMatch) (bool, int, bool) {
		if len(m.GetSourcePorts()) == 0 {
			return false, 0, false
		}
		e.note("filter chains match source ports; the client port is unknown, so they do not match")
		return true, 0, false
	})

	switch len(cands) {
	case 0:
		return l.GetDefaultFilterChain(), nil
	case 1:
		return cands[0], nil
	default:
		e.note("%d filter chains of %s match the connection equally (Envoy rejects such a listener); the first was taken", len(cands), l.Name)
		return cands[0], nil
	}
}

// narrow applies one filter-chain-match criterion. crit reports whether the
// chain sets the criterion, how specific its match is, and whether it matches.
func narrow(chains []*listenerv3.FilterChain, crit func(*listenerv3.FilterChainMatch) (set bool, specificity int, ok bool)) []*listenerv3.FilterChain {
	var specific, unset []*listenerv3.FilterChain
	best := -1
	for _, fc := range chains {
		set, n, ok := crit(fc.GetFilterChainMatch())
		switch {
		case !set:
			unset = append(unset, fc)
		case ok && n > best:
			best = n
			specific = []*listenerv3.FilterChain{fc}
		case ok && n == best:
			specific = append(specific, fc)
		}
	}
	if len(specific) > 0 {
		return specific
	}
	return unset
}

// serverNameMatch: an exact server name beats any wildcard; among wildcards
// ("*.example.com", which matches any depth of subdomain) the longest suffix wins.
func serverNameMatch(names []string, sni string) (bool, int, bool) {
	if sni == "" {
		return true, 0, false
	}
	best, ok := 0, false
	for _, n := range names {
		n = strings.ToLower(n)
		switch {
		case n == sni:
			return true, 1 << 20, true
		case strings.HasPrefix(n, "*.") && strings.HasSuffix(sni, n[1:]) && len(sni) > len(n)-1:
			if len(n) > best {
				best, ok = len(n), true
			}
		}
	}
	return true, best, ok
}

// longestCIDR returns the longest prefix length of ranges containing ip.
func longestCIDR(ranges []*corev3.CidrRange, ip netip.Addr) (int, bool) {
	best, ok := -1, false
	for _, r := range ranges {
		p, err := cidrPrefix(r)
		if err != nil || !p.Contains(ip.Unmap()) {
			continue
		}
		if p.Bits() > best {
			best, ok = p.Bits(), true
		}
	}
	return best, ok
}

func cidrPrefix(r *corev3.CidrRange) (netip.Prefix, error) {
	addr, err := netip.ParseAddr(r.GetAddressPrefix())
	if err != nil {
		return netip.Prefix{}, err
	}
	return addr.Unmap().Prefix(int(r.GetPrefixLen().GetValue()))
}

// checkTransport reports a TLS / plain-text mismatch between the client and
// the chosen chain, and the chain's certificates.
func (e *evaluator) checkTransport(fc *listenerv3.FilterChain) (string, error) {
	ts := fc.GetTransportSocket()
	chainTLS := false
	if ts != nil {
		if ts.GetTypedConfig().GetTypeUrl() != downstreamTLSType {
			e.notSimulated("transport socket %s (%s)", ts.GetName(), ts.GetTypedConfig().GetTypeUrl())
		} else {
			chainTLS = true
			ctx := &tlsv3.DownstreamTlsContext{}
			if err := ts.GetTypedConfig().UnmarshalTo(ctx); err != nil {
				return "", fmt.Errorf("filter chain %s: transport socket: %w", fc.GetName(), err)
			}
			for _, s := range ctx.GetCommonTlsContext().GetTlsCertificateSdsSecretConfigs() {
				e.out.Certificates = append(e.out.Certificates, s.GetName())
			}
			if len(ctx.GetCommonTlsContext().GetTlsCertificates()) > 0 {
				e.out.Certificates = append(e.out.Certificates, "(inline certificate)")
			}
		}
	}
	switch {
	case e.req.TLS && !chainTLS && ts == nil:
		return "the client speaks TLS to a plain-text filter chain: the handshake fails", nil
	case !e.req.TLS && chainTLS:
		return "the client speaks plain text to a TLS filter chain: the handshake fails", nil
	}
	return "", nil
}

// httpConnectionManager returns the chain's HCM (the last network filter).
func httpConnectionManager(fc *listenerv3.FilterChain) (*hcmv3.HttpConnectionManager, error) {
	for _, f := range fc.GetFilters() {
		if f.GetConfigDiscovery() != nil {
			return nil, fmt.Errorf("filter chain %q: network filter %s uses config discovery (not simulated)", fc.GetName(), f.GetName())
		}
		tc := f.GetTypedConfig()
		if f.GetName() != wellknown.HTTPConnectionManager && tc.GetTypeUrl() != hcmTypeURL {
			continue
		}
		hcm := &hcmv3.HttpConnectionManager{}
		if err := anyTo(tc, hcm); err != nil {
			return nil, fmt.Errorf("filter chain %q: %w", fc.GetName(), err)
		}
		return hcm, nil
	}
	return nil, fmt.Errorf("filter chain %q has no HTTP connection manager", fc.GetName())
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
