// Package direct serves the McpBridge registries that need no registry
// server (higress-semantics §4.5 "static / dns"): the addresses are in the
// McpBridge itself.
//
//   - static: domain is a comma list of ip:port ([addr]:port for IPv6);
//     the service "<name>.static" has those instances, resolution Static.
//   - dns: domain is a comma list of DNS names; the service "<name>.dns"
//     has one instance per name on the McpBridge port, resolution DNS —
//     Envoy's STRICT_DNS cluster resolves them, hxds does not.
//
// Both take the service port from the McpBridge port, the protocol from
// its protocol field (http when empty; an unknown one makes New fail, as
// it makes Higress's watcher creation fail) and the upstream SNI from sni;
// a dns registry with exactly one name and a TLS protocol defaults SNI to
// that name. vport does not apply (§4.1). The listing is validated whole in
// New — one bad entry fails the registry, where Higress silently published
// nothing — then published once when Run starts; the watcher is healthy
// and ready from then on, and Run returns when ctx is done.
package direct

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"

	"go.uber.org/zap"

	"github.com/hxds/hxds/discovery"
)

// Registry types.
const (
	TypeStatic = "static"
	TypeDNS    = "dns"
)

// Watcher publishes one fixed service.
type Watcher struct {
	discovery.Tracker
	pub discovery.Publisher
	log *zap.Logger
	svc discovery.Service
}

var _ discovery.Watcher = (*Watcher)(nil)

// NewStatic is the discovery.Factory of type "static".
func NewStatic(cfg discovery.Config, pub discovery.Publisher, log *zap.Logger) (discovery.Watcher, error) {
	return newWatcher(TypeStatic, cfg, pub, log)
}

// NewDNS is the discovery.Factory of type "dns".
func NewDNS(cfg discovery.Config, pub discovery.Publisher, log *zap.Logger) (discovery.Watcher, error) {
	return newWatcher(TypeDNS, cfg, pub, log)
}

func newWatcher(typ string, cfg discovery.Config, pub discovery.Publisher, log *zap.Logger) (*Watcher, error) {
	if pub == nil {
		return nil, fmt.Errorf("%s registry: no publisher", typ)
	}
	if log == nil {
		log = zap.NewNop()
	}
	svc, err := buildService(typ, cfg, log)
	if err != nil {
		return nil, fmt.Errorf("%s registry %q: %w", typ, cfg.Registry.Name, err)
	}
	return &Watcher{pub: pub, log: log, svc: svc}, nil
}

// Run publishes the service and waits for ctx.
func (w *Watcher) Run(ctx context.Context) error {
	w.pub.Replace([]discovery.Service{cloneService(w.svc)})
	w.Synced(true)
	w.log.Info("published direct registry service", zap.String("host", w.svc.Host), zap.Int("instances", len(w.svc.Instances)))
	<-ctx.Done()
	return nil
}

// Service returns the service the watcher publishes.
func (w *Watcher) Service() discovery.Service { return cloneService(w.svc) }

func cloneService(s discovery.Service) discovery.Service {
	s.Instances = append([]discovery.Instance(nil), s.Instances...)
	return s
}

func buildService(typ string, cfg discovery.Config, log *zap.Logger) (discovery.Service, error) {
	r := cfg.Registry
	if err := checkName(r.Name); err != nil {
		return discovery.Service{}, err
	}
	if r.Port == 0 || r.Port > 65535 {
		return discovery.Service{}, fmt.Errorf("port %d is not a valid service port (1-65535)", r.Port)
	}
	proto, err := discovery.ParseProtocol(r.Protocol)
	if err != nil {
		return discovery.Service{}, err
	}
	svc := discovery.Service{Host: r.Name + "." + typ, Port: r.Port, Protocol: proto}
	switch typ {
	case TypeStatic:
		svc.Resolution = discovery.Static
		svc.Instances, err = parseStatic(r.Domain)
	case TypeDNS:
		svc.Resolution = discovery.DNS
		var names []string
		names, err = parseDNS(r.Domain)
		for _, n := range names {
			svc.Instances = append(svc.Instances, discovery.Instance{Address: n, Port: r.Port, Weight: 1})
		}
		if len(names) == 1 && proto.TLS() && r.SNI == "" {
			svc.SNI = names[0]
		}
	default:
		err = fmt.Errorf("unknown direct registry type %q", typ)
	}
	if err != nil {
		return discovery.Service{}, err
	}
	if sni := strings.TrimSpace(r.SNI); sni != "" {
		if !proto.TLS() {
			// Higress attaches SNI only with the TLS DestinationRule of
			// https/grpcs; keep it for them alone.
			log.Warn("sni ignored: the protocol does not use TLS", zap.String("sni", sni), zap.String("protocol", string(proto)))
		} else {
			svc.SNI = sni
		}
	}
	discovery.SortInstances(svc.Instances)
	return svc, nil
}

// checkName: the registry name is the service name of the host.
func checkName(name string) error {
	if name == "" {
		return errors.New("name is required (it names the service)")
	}
	if strings.ContainsAny(name, " \t\r\n/,") {
		return fmt.Errorf("name %q cannot name a host", name)
	}
	return nil
}

// entries splits a comma list, skipping empty entries (a trailing comma).
func entries(domain string) []string {
	var out []string
	for _, e := range strings.Split(domain, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// parseStatic reads "ip:port,[ipv6]:port,...". Duplicates are dropped.
func parseStatic(domain string) ([]discovery.Instance, error) {
	list := entries(domain)
	if len(list) == 0 {
		return nil, fmt.Errorf("domain %q lists no ip:port", domain)
	}
	seen := map[netip.AddrPort]bool{}
	var out []discovery.Instance
	for _, e := range list {
		ap, err := netip.ParseAddrPort(e)
		if err != nil {
			return nil, fmt.Errorf("static address %q: want ip:port or [ipv6]:port: %w", e, err)
		}
		if ap.Addr().Zone() != "" {
			return nil, fmt.Errorf("static address %q: IPv6 zones are not supported", e)
		}
		if ap.Port() == 0 {
			return nil, fmt.Errorf("static address %q: port 0", e)
		}
		// ::ffff:a.b.c.d is a.b.c.d to Envoy.
		ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		if seen[ap] {
			continue
		}
		seen[ap] = true
		out = append(out, discovery.Instance{Address: ap.Addr().String(), Port: uint32(ap.Port()), Weight: 1})
	}
	return out, nil
}

// dnsName is a DNS name: dot-separated labels of letters, digits, '-'
// and '_' (service-style names), not starting or ending with '-'.
var dnsName = regexp.MustCompile(`^([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*$`)

// parseDNS reads "name,name,...": each must be a DNS name (a trailing dot
// is dropped); duplicates (case-insensitive) are dropped.
func parseDNS(domain string) ([]string, error) {
	list := entries(domain)
	if len(list) == 0 {
		return nil, fmt.Errorf("domain %q lists no DNS name", domain)
	}
	seen := map[string]bool{}
	var out []string
	for _, e := range list {
		n := strings.TrimSuffix(e, ".")
		if len(n) > 253 || !dnsName.MatchString(n) {
			return nil, fmt.Errorf("dns domain %q is not a DNS name", e)
		}
		k := strings.ToLower(n)
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, n)
	}
	return out, nil
}
