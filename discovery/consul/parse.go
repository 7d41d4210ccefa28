package consul

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/hashicorp/consul/api"

	"github.com/hxds/hxds/discovery"
)

// maxWeight caps an instance weight. Consul does not bound
// Weights.Passing; Envoy rejects a locality whose endpoint weights sum past
// 2^32-1, so a cap of 2^16 keeps any realistic instance count safe.
const maxWeight = 1 << 16

// Host is the registry host of a Consul service (higress-semantics §4.3):
// "<service>.<datacenter>.consul" with every '_' turned into '-' (over the
// whole string, as Higress does). An empty datacenter gives "svc..consul",
// which is what Higress users write for that configuration.
func Host(service, datacenter string) string {
	return strings.ReplaceAll(service+"."+datacenter+".consul", "_", "-")
}

// tagMatches says whether a catalog service with tags passes the
// registry's consulServiceTag filter: empty means every service, else one
// tag equal to it ignoring case and surrounding space (Higress lower-cases
// and trims the configured tag).
func tagMatches(filter string, tags []string) bool {
	if filter == "" {
		return true
	}
	for _, t := range tags {
		if strings.EqualFold(strings.TrimSpace(t), filter) {
			return true
		}
	}
	return false
}

// passing is the aggregated status of an instance's checks (service and
// node checks): passing only when no check is maintenance, critical,
// warning or unknown. It is api.HealthChecks.AggregatedStatus without the
// nil dereference: registry data never panics the watcher.
func passing(checks api.HealthChecks) bool {
	for _, c := range checks {
		if c == nil {
			continue
		}
		if c.CheckID == api.NodeMaint || strings.HasPrefix(c.CheckID, api.ServiceMaintPrefix) {
			return false
		}
		if c.Status != api.HealthPassing {
			return false
		}
	}
	return true
}

// built is one service as read from a /v1/health/service answer.
type built struct {
	svc discovery.Service
	// skip is why the service cannot be published (unsupported protocol);
	// empty when it can.
	skip string
	// dropped counts instance entries that were unusable (no address, bad
	// port); they are logged, not fatal.
	dropped int
	// hasPort says svc.Port came from an instance (passing or not); when
	// false the caller keeps the port it last published.
	hasPort bool
}

// buildService turns the entries of /v1/health/service/<name> (all
// instances, whatever their checks) into a Service:
//   - instances: passing ones only (Higress: aggregated status "passing");
//   - address: Service.Address, else the node's address (Higress leaves the
//     endpoint address empty there, §13);
//   - port: Service.Port; weight: Service.Weights.Passing clamped to
//     [1, maxWeight]; metadata: Service.Meta;
//   - service port and protocol: from the first passing instance (in
//     address order), else from the first instance at all, so that a
//     service whose instances are all failing keeps a stable cluster;
//   - resolution DNS when a published address is not an IP.
func buildService(host string, entries []*api.ServiceEntry) built {
	var ok, failing []discovery.Instance
	b := built{svc: discovery.Service{Host: host, Protocol: discovery.ProtocolHTTP}}
	for _, e := range entries {
		in, ok1 := instanceOf(e)
		if !ok1 {
			b.dropped++
			continue
		}
		if passing(e.Checks) {
			ok = append(ok, in)
		} else {
			failing = append(failing, in)
		}
	}
	ok = dedupe(ok)
	discovery.SortInstances(failing)
	first := ok
	if len(first) == 0 {
		first = failing
	}
	if len(first) > 0 {
		b.hasPort = true
		b.svc.Port = first[0].Port
		p, err := discovery.ParseProtocol(first[0].Metadata["protocol"])
		if err != nil {
			b.skip = err.Error()
		} else {
			b.svc.Protocol = p
		}
	}
	for _, in := range ok {
		if _, err := netip.ParseAddr(in.Address); err != nil {
			b.svc.Resolution = discovery.DNS
			break
		}
	}
	if len(ok) > 0 {
		b.svc.Instances = ok
	}
	return b
}

// instanceOf reads one entry; false when it has no usable address or port.
func instanceOf(e *api.ServiceEntry) (discovery.Instance, bool) {
	if e == nil || e.Service == nil {
		return discovery.Instance{}, false
	}
	s := e.Service
	addr := strings.TrimSpace(s.Address)
	if addr == "" && e.Node != nil {
		addr = strings.TrimSpace(e.Node.Address)
	}
	if addr == "" || strings.ContainsAny(addr, " /\t\r\n") {
		return discovery.Instance{}, false
	}
	if s.Port <= 0 || s.Port > 65535 {
		return discovery.Instance{}, false
	}
	w := s.Weights.Passing
	if w < 1 {
		w = 1
	} else if w > maxWeight {
		w = maxWeight
	}
	var meta map[string]string
	if len(s.Meta) > 0 {
		meta = make(map[string]string, len(s.Meta))
		for k, v := range s.Meta {
			meta[k] = v
		}
	}
	return discovery.Instance{Address: addr, Port: uint32(s.Port), Weight: uint32(w), Metadata: meta}, true
}

// dedupe sorts instances and drops repeats of an address:port (two
// registrations of one endpoint, e.g. on two nodes sharing a service
// address): Envoy wants each endpoint once.
func dedupe(in []discovery.Instance) []discovery.Instance {
	discovery.SortInstances(in)
	out := in[:0]
	for i, x := range in {
		if i > 0 && x.Address == out[len(out)-1].Address && x.Port == out[len(out)-1].Port {
			continue
		}
		out = append(out, x)
	}
	return out
}

// describe is a short summary of a service for logs.
func describe(s discovery.Service) string {
	return fmt.Sprintf("%s port=%d protocol=%s instances=%d", s.Host, s.Port, s.Protocol, len(s.Instances))
}
