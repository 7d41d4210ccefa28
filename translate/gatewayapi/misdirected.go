package gatewayapi

// Misdirected requests (RFC 9110 §15.5.20). HTTPS listeners sharing a port
// are separate SNI filter chains, but an HTTP/2 client may reuse a
// connection for another host its certificate covers (connection
// coalescing): the Host then names a listener other than the one the SNI
// chose. Such requests get 421, so that the client retries on a new
// connection with the right SNI. Each Gateway API TLS server's route table
// answers 421 for the hosts that belong to another TLS server of the port
// (more specific ones, for a wildcard or "*" server) and, unless it is the
// "*" server, for every host it does not serve.

import (
	"fmt"
	"sort"

	"github.com/hxds/hxds/translate/input"
	"github.com/hxds/hxds/translate/ir"
)

// misdirected adds the 421 virtual hosts to the route tables of the TLS
// servers of Gateway listeners. Servers of other front-ends are unchanged.
func (t *translator) misdirected() {
	done := map[*ir.TLSServer]bool{}
	for _, nn := range input.SortedKeys(t.listeners) {
		for _, l := range t.listeners[nn] {
			if !l.https || l.unserved || l.server == nil || done[l.server] {
				continue
			}
			done[l.server] = true
			port := uint32(l.spec.Port)
			t.addMisdirected(l.server, port, t.b.TLSServers(port))
		}
	}
}

func (t *translator) addMisdirected(s *ir.TLSServer, port uint32, servers map[string]*ir.TLSServer) {
	own := "*"
	if len(s.Hosts) > 0 {
		own = s.Hosts[0]
	}
	taken := map[string]bool{}
	for _, vh := range s.Routes.VirtualHosts {
		for _, d := range vh.Domains {
			taken[d] = true
		}
	}
	var others []string
	for h, o := range servers {
		if o == s || h == own {
			continue
		}
		if own == "*" || covers(own, h) {
			others = append(others, h)
		}
	}
	sort.Strings(others)
	if own != "*" {
		others = append(others, "*")
	}
	for _, h := range others {
		domains := []string{h}
		if h != "*" {
			domains = append(domains, fmt.Sprintf("%s:%d", h, port))
		}
		var free []string
		for _, d := range domains {
			if !taken[d] {
				free = append(free, d)
				taken[d] = true
			}
		}
		if len(free) == 0 {
			continue // a route of this listener serves it
		}
		s.Routes.VirtualHosts = append(s.Routes.VirtualHosts, &ir.VirtualHost{
			Name: fmt.Sprintf("misdirected.%s:%d", h, port), Host: h, Domains: free,
			Routes: []*ir.Route{{
				Name:    "misdirected",
				Source:  s.Source,
				Matches: []ir.Match{{PathKind: ir.PathPrefix, Path: "/"}},
				Direct:  &ir.DirectResponse{Status: 421},
			}},
		})
	}
}
