package gatewayapi

import (
	"sort"

	"github.com/hxds/hxds/translate/input"
)

// HTTP listener isolation: a request is handled by the listener of the
// Gateway whose hostname matches it most specifically, and only by routes
// attached to that listener. Listeners of one port share a route table
// (the Higress model), where Envoy picks the virtual host with the most
// specific domain. Two things make that choice the listener's:
//
//   - a route on a less specific listener does not serve the hostnames a
//     more specific listener of the same Gateway and port covers
//     (isolatedHosts);
//   - a listener hostname that a less specific listener of the same Gateway
//     and port also covers always has a virtual host, empty if no route
//     attaches, so Envoy does not fall back to the broader one
//     (isolationHosts; the request then gets 404).
//
// HTTPS listeners have a filter chain (and route table) of their own per
// hostname, which isolates them already.

// moreSpecific reports whether listener hostname a matches a strict subset
// of what b matches ("*" matches everything).
func moreSpecific(a, b string) bool {
	return a != b && (b == "*" || covers(b, a))
}

// isolatedHosts drops from hosts, the hostnames a route serves on l, those
// a more specific HTTP listener of the same Gateway and port covers.
func (t *translator) isolatedHosts(l *listener, hosts []string) []string {
	if l.https {
		return hosts
	}
	var out []string
	for _, h := range hosts {
		if t.claimedBySpecific(l, h) == nil {
			out = append(out, h)
		}
	}
	return out
}

// claimedBySpecific returns the listener more specific than l, of l's
// Gateway and port, that serves host h; nil if none.
func (t *translator) claimedBySpecific(l *listener, h string) *listener {
	for _, o := range t.listeners[input.NamespacedName{Namespace: l.gw.Namespace, Name: l.gw.Name}] {
		if o == l || o.https || o.spec.Port != l.spec.Port || o.allowL4Route {
			continue
		}
		if moreSpecific(o.host, l.host) && (o.host == h || covers(o.host, h)) {
			return o
		}
	}
	return nil
}

// isolationHosts gives every HTTP listener hostname that a less specific
// listener of its Gateway and port also covers a virtual host.
func (t *translator) isolationHosts() {
	names := make([]string, 0, len(t.listeners))
	byName := map[string][]*listener{}
	for nn, ls := range t.listeners {
		k := nn.Namespace + "/" + nn.Name
		names = append(names, k)
		byName[k] = ls
	}
	sort.Strings(names)
	for _, k := range names {
		ls := byName[k]
		for _, l := range ls {
			if l.https || l.allowL4Route || l.unserved || l.host == "*" {
				continue
			}
			for _, o := range ls {
				if o != l && !o.https && !o.allowL4Route && o.spec.Port == l.spec.Port && moreSpecific(l.host, o.host) {
					t.virtualHost(l, l.host)
					break
				}
			}
		}
	}
}
