package ingress

import (
	"strconv"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/hxds/hxds/translate/ir"
	"github.com/hxds/hxds/translate/registry"
)

// destinations resolves a backend that is the McpBridge resource: the
// destinations come from higress.io/destination, one per line,
// "[<weight>%] <host>[:<port>] [<subset>]" (§3.2). Hosts are registry hosts
// (<svc>.<group>.<ns>.nacos, <svc>.<dc>.consul, ...); their clusters are EDS
// clusters whose endpoints the service registries provide. Weights are
// normalised to 100 with their sum as the denominator, as Higress does.
func (t *translator) destinations(ing *networkingv1.Ingress, ann annotations, field string) ([]ir.Destination, bool) {
	// Parsed once per Ingress: every path of it shares the annotation.
	if r, done := t.dests[ing]; done {
		return r.dests, r.ok
	}
	ds, ok := t.parseDestinations(ing, ann, field)
	t.dests[ing] = destResult{ds, ok}
	return ds, ok
}

type destResult struct {
	dests []ir.Destination
	ok    bool
}

func (t *translator) parseDestinations(ing *networkingv1.Ingress, ann annotations, field string) ([]ir.Destination, bool) {
	obj := objectOf(ing)
	raw, ok := ann.value("destination", true)
	if !ok {
		t.d.Error(obj, "invalid-backend-service", field,
			"the backend is the McpBridge but annotation higress.io/destination is missing; path not served")
		return nil, false
	}
	type parsed struct {
		host, subset string
		port, weight uint32
	}
	var ds []parsed
	for _, line := range strings.Split(raw, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		d := parsed{weight: 100}
		if w, isWeight := strings.CutSuffix(f[0], "%"); isWeight {
			n, err := strconv.Atoi(w)
			if err != nil || n < 0 || n > 100 {
				t.d.Error(obj, "invalid-annotation", "metadata.annotations[higress.io/destination]",
					"destination %q: weight %q must be 0-100%%; path not served", line, f[0])
				return nil, false
			}
			d.weight, f = uint32(n), f[1:]
		}
		if len(f) == 0 || len(f) > 2 {
			t.d.Error(obj, "invalid-annotation", "metadata.annotations[higress.io/destination]",
				"destination %q must be \"[<weight>%%] <host>[:<port>] [<subset>]\"; path not served", line)
			return nil, false
		}
		host, port, hasPort := splitDestination(f[0])
		d.host, d.port = host, registry.Port(t.snap, host)
		if hasPort {
			n, err := strconv.Atoi(port)
			if err != nil || n < 1 || n > 65535 {
				t.d.Error(obj, "invalid-annotation", "metadata.annotations[higress.io/destination]",
					"destination %q: port %q is not a port; path not served", line, port)
				return nil, false
			}
			d.port = uint32(n)
		}
		if len(f) == 2 {
			d.subset = f[1]
		}
		ds = append(ds, d)
	}
	if len(ds) == 0 {
		t.d.Error(obj, "invalid-annotation", "metadata.annotations[higress.io/destination]", "destination lists no host; path not served")
		return nil, false
	}
	sum := uint32(0)
	for _, d := range ds {
		sum += d.weight
	}
	if sum != 100 {
		t.d.Warn(obj, "invalid-annotation", "metadata.annotations[higress.io/destination]",
			"destination weights add up to %d, not 100; normalised", sum)
	}
	if sum == 0 {
		sum = 1
	}
	out := make([]ir.Destination, len(ds))
	assigned := uint32(0)
	for i := len(ds) - 1; i >= 0; i-- {
		d := ds[i]
		be := t.b.AddBackend(registry.Backend(t.snap, t.opts, d.host, d.port, d.subset))
		name := be.Name
		out[i] = ir.Destination{Backend: name}
		if i > 0 {
			out[i].Weight = d.weight * 100 / sum
			assigned += out[i].Weight
		}
	}
	out[0].Weight = 100 - assigned
	return out, true
}

// splitDestination splits "<host>[:<port>]". Registry hosts may contain
// colons themselves (Dubbo's "providers:<interface>:<version>:<group>.zookeeper"),
// so only a last ":" followed by digits introduces a port; digits that do
// not form a valid port are still reported as a bad port.
func splitDestination(s string) (host, port string, hasPort bool) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 || i == len(s)-1 {
		return s, "", false
	}
	for _, c := range s[i+1:] {
		if c < '0' || c > '9' {
			if !strings.Contains(s[:i], ":") {
				return s[:i], s[i+1:], true // "host:abc": a bad port, as before
			}
			return s, "", false
		}
	}
	return s[:i], s[i+1:], true
}
