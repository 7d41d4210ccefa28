// Package nacos watches Nacos service registries (McpBridge types nacos,
// nacos2 and nacos3; higress-semantics §4.1, §4.3, §4.5) and publishes their
// services as discovery.Services.
//
// Two factories:
//
//   - NewV1 (type nacos, Nacos 1.x): polls the HTTP OpenAPI
//     (/nacos/v1/ns/service/list, /nacos/v1/ns/instance/list) once per refresh
//     interval. Nacos 1.x pushes only over UDP, which does not cross NAT or
//     Kubernetes Services, so polling is the dependable way; a sweep lists
//     every group (pages of 50) and fetches each service's instances.
//   - NewV2 (types nacos2 and nacos3): speaks Nacos's gRPC protocol with
//     nacos-sdk-go v2's generated stubs, request/response types and auth
//     (username/password login, AK/SK signatures), but its own small
//     connection loop (grpcclient.go says why). Services are listed once per
//     refresh interval; each listed service is subscribed, so instance
//     changes arrive as server pushes; vanished services are unsubscribed
//     and removed at once. Health follows the live connection: a broken
//     stream or failed health check (every 5 s) makes the watcher unhealthy
//     at once, and it reconnects with backoff (1 s doubling to 30 s),
//     resubscribing and listing again. With nacosAddressServer the server
//     list is fetched every 30 s; a server that leaves the list or fails is
//     replaced by another, picked at random. nacos3's MCP-server discovery
//     (§4.7, enableMCPServer) is not supported yet: the watcher logs a
//     warning and serves the naming registry only.
//
// Refresh interval (nacosRefreshInterval, nanoseconds like Higress): default
// 30 s, clamped to [10 s, 10 min]. A value below 10 s (say 30, meant as
// seconds) becomes 10 s instead of a busy loop; more than 10 minutes would
// leave deregistered services (Nacos 1.x: changed instances too) stale for
// too long.
//
// Hosts are "<service>.<group>.<nacosNamespace>.nacos" with '_' → '-' in
// the group and namespace only (§4.3). The namespace *id* (nacosNamespaceId,
// default public) is what every API call uses; the namespace *name*
// (nacosNamespace, defaulting to the id) only names hosts. Higress passes the
// name to the list API, which lists nothing when name and id differ.
//
// Differences from Higress that are deliberate (§13): health is live, not a
// TCP dial at start; a service that leaves the listing is removed at once; a
// service whose instances all go away is published with no instances (the
// catalog applies the outage grace period); only healthy and enabled
// instances are published; the port and protocol come from the first
// instance in address order (not registry order, which would flap). As in
// Higress, type nacos (1.x) sends no credentials (username/password and
// AK/SK are for nacos2/nacos3; setting them on nacos logs a warning). Loop
// guard: instances that mcp-bridge itself registered (metadata
// register-resource: mcp-bridge) are dropped, and a service made only of
// them is not published at all.
//
// Nothing is written to disk: the SDK parts that keep cache and log files
// (its NamingClient, service-info holder and file logger) are not used, and
// the SDK's process-wide logger is routed to zap ("nacos-sdk", levels
// shifted down one step).
package nacos

import (
	"errors"
	"fmt"
	"math"
	"net"
	"reflect"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/hxds/hxds/discovery"
	"github.com/hxds/hxds/internal/api"
)

// Registry types.
const (
	TypeV1 = "nacos"
	TypeV2 = "nacos2"
	TypeV3 = "nacos3"
)

// Refresh interval bounds (see the package comment).
const (
	DefaultRefresh = 30 * time.Second
	MaxRefresh     = 10 * time.Minute
)

// MinRefresh is the lower bound of nacosRefreshInterval: smaller values
// are raised to it. It is a variable only so that tests and programs
// embedding hxds can lower it (say, to poll a local fake server every
// 200 ms); set it before any watcher is created, and leave it alone in
// production.
var MinRefresh = 10 * time.Second

const (
	// pageSize is the service-list page size (Higress's).
	pageSize = 50
	// maxPages bounds paging when a server reports a count that never
	// stops growing: 50 × 4000 = 200,000 services per group.
	maxPages = 4000
	// maxWeight is Nacos's own maximum instance weight; larger values are
	// clamped so that Envoy's per-locality weight sum cannot overflow.
	maxWeight = 10000
	// requestTimeout bounds one exchange with the registry.
	requestTimeout = 5 * time.Second
	defaultGroup   = "DEFAULT_GROUP"
	defaultNS      = "public"
)

// settings is a validated registry configuration.
type settings struct {
	typ         string
	domain      string
	port        uint32
	namespaceID string
	// namespace is the name used in hosts.
	namespace string
	groups    []string
	refresh   time.Duration
	cfg       discovery.Config
}

func parseSettings(cfg discovery.Config, types ...string) (settings, error) {
	r := cfg.Registry
	s := settings{typ: r.Type, domain: strings.TrimSpace(r.Domain), port: r.Port, cfg: cfg}
	okType := false
	for _, t := range types {
		if r.Type == t {
			okType = true
		}
	}
	if !okType {
		return s, fmt.Errorf("registry %s: type %q is not one of %v", r.Key(), r.Type, types)
	}
	if s.domain == "" && (r.Type == TypeV1 || strings.TrimSpace(r.NacosAddressServer) == "") {
		return s, fmt.Errorf("registry %s: domain is required (the Nacos server host)", r.Key())
	}
	if s.domain != "" {
		if !validAddress(s.domain) {
			return s, fmt.Errorf("registry %s: domain %q must be a bare host name or IP (no scheme, path or port)", r.Key(), r.Domain)
		}
		if s.port == 0 || s.port > 65535 {
			return s, fmt.Errorf("registry %s: port %d is not a valid TCP port", r.Key(), r.Port)
		}
		if r.Type != TypeV1 && s.port > 65535-grpcPortOffset {
			// The gRPC port is the HTTP port + 1000.
			return s, fmt.Errorf("registry %s: port %d leaves no room for the gRPC port (port + %d)", r.Key(), r.Port, grpcPortOffset)
		}
	}
	s.namespaceID = strings.TrimSpace(r.NacosNamespaceID)
	if s.namespaceID == "" {
		s.namespaceID = defaultNS
	}
	s.namespace = strings.TrimSpace(r.NacosNamespace)
	if s.namespace == "" {
		s.namespace = s.namespaceID
	}
	seen := map[string]bool{}
	for _, g := range r.NacosGroups {
		g = strings.TrimSpace(g)
		if g == "" || seen[g] {
			continue
		}
		seen[g] = true
		s.groups = append(s.groups, g)
	}
	s.refresh = discovery.Interval(r.NacosRefreshInterval, DefaultRefresh, MinRefresh, MaxRefresh)
	return s, nil
}

// errShortListing: the server reported more services than its pages
// hold. Services may have been deleted while paging, or the server is
// confused; either way the listing is not complete, so nothing may be
// removed on its account (the next refresh retries).
func errShortListing(group string, count, got int) error {
	return fmt.Errorf("group %q: the server counts %d services but its pages listed %d", group, count, got)
}

// grpcPortOffset is where Nacos 2.x listens for gRPC relative to its HTTP
// port (the SDK's constant.RpcPortOffset).
const grpcPortOffset = 1000

// hostSuffix replaces '_' by '-' (DEFAULT_GROUP → DEFAULT-GROUP) because '_'
// is not valid in DNS names; Higress applies it to the suffix only, so
// service names keep theirs.
func hostSuffix(s string) string { return strings.ReplaceAll(s, "_", "-") }

// Host is the registry host of a Nacos service (§4.3).
func Host(service, group, namespace string) string {
	return service + "." + hostSuffix(group) + "." + hostSuffix(namespace) + ".nacos"
}

// skipService says whether a listed service name is never published:
// empty names and Dubbo consumers (they have no providers to route to).
func skipService(name string) bool {
	return strings.TrimSpace(name) == "" || strings.HasPrefix(name, "consumers:")
}

// rawInstance is one Nacos instance as either API reports it.
type rawInstance struct {
	IP       string
	Port     float64
	Weight   float64
	Healthy  bool
	Enabled  bool
	Metadata map[string]string
}

// errLoopGuard marks a service that only mcp-bridge registered.
var errLoopGuard = errors.New("every instance was registered by mcp-bridge (loop guard)")

// buildService turns a service's instances into what is published. prev is
// what was published last for host (nil if nothing): a service with no
// instances keeps its port and protocol, so an outage does not also look
// like a cluster change. It returns an error for a service that must not be
// published (unsupported protocol, loop guard).
func buildService(host string, raws []rawInstance, vport *api.RegistryVport, prev *discovery.Service, log *zap.Logger) (discovery.Service, error) {
	svc := discovery.Service{Host: host, Protocol: discovery.ProtocolHTTP}
	guarded := 0
	for _, r := range raws {
		if r.Metadata["register-resource"] == "mcp-bridge" {
			guarded++
			continue
		}
		if !r.Healthy || !r.Enabled {
			continue
		}
		addr := strings.TrimSpace(r.IP)
		if !validAddress(addr) {
			log.Debug("instance skipped: bad address", zap.String("host", host), zap.String("address", r.IP))
			continue
		}
		if r.Port != math.Trunc(r.Port) || r.Port < 1 || r.Port > 65535 {
			log.Debug("instance skipped: bad port", zap.String("host", host), zap.Float64("port", r.Port))
			continue
		}
		var md map[string]string
		if len(r.Metadata) > 0 {
			md = make(map[string]string, len(r.Metadata))
			for k, v := range r.Metadata {
				md[k] = v
			}
		}
		svc.Instances = append(svc.Instances, discovery.Instance{
			Address: addr, Port: uint32(r.Port), Weight: weight(r.Weight), Metadata: md,
		})
	}
	if len(raws) > 0 && guarded == len(raws) {
		return svc, errLoopGuard
	}
	discovery.SortInstances(svc.Instances)
	svc.Instances = dedupe(svc.Instances)
	if len(svc.Instances) == 0 {
		if prev != nil {
			svc.Port, svc.Protocol, svc.Resolution = prev.Port, prev.Protocol, prev.Resolution
		} else {
			svc.Port = discovery.Vport(vport, host, 0)
		}
		svc.Instances = nil
		return svc, nil
	}
	// The first instance after sorting (not in registry order) decides the
	// port and protocol, so a reordered listing does not flap them.
	first := svc.Instances[0]
	p, err := discovery.ParseProtocol(first.Metadata["protocol"])
	if err != nil {
		return svc, err
	}
	svc.Protocol = p
	svc.Port = discovery.Vport(vport, host, first.Port)
	for _, in := range svc.Instances {
		if net.ParseIP(in.Address) == nil {
			svc.Resolution = discovery.DNS
			break
		}
	}
	return svc, nil
}

// dedupe drops repeated address:port pairs of a sorted list (a registry can
// report one endpoint in two clusters); the first (highest after sort) wins.
func dedupe(in []discovery.Instance) []discovery.Instance {
	out := in[:0]
	for i, x := range in {
		if i > 0 && x.Address == in[i-1].Address && x.Port == in[i-1].Port {
			continue
		}
		out = append(out, x)
	}
	return out
}

// weight is round(w), at least 1 (Nacos allows 0 and fractions; Envoy does
// not), at most maxWeight.
func weight(w float64) uint32 {
	r := math.Round(w)
	if !(r >= 1) { // also NaN
		return 1
	}
	if r > maxWeight {
		return maxWeight
	}
	return uint32(r)
}

// validAddress accepts an IP or a DNS name; anything else would make Envoy
// reject the whole cluster.
func validAddress(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	if net.ParseIP(s) != nil {
		return true
	}
	for _, label := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// published keeps what a watcher last published, so that it publishes only
// changes. Safe for concurrent use.
type published struct {
	mu       sync.Mutex
	pub      discovery.Publisher
	services map[string]discovery.Service
	// replaced: a complete listing went out once (Replace); until then
	// single updates are held back so the first publication is whole.
	replaced bool
}

func newPublished(pub discovery.Publisher) *published {
	return &published{pub: pub, services: map[string]discovery.Service{}}
}

// get returns what was last published (or held) for host.
func (p *published) get(host string) (discovery.Service, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.services[host]
	return s, ok
}

// update publishes svc if it differs from what was published.
func (p *published) update(svc discovery.Service) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if old, ok := p.services[svc.Host]; ok && reflect.DeepEqual(old, svc) {
		return
	}
	p.services[svc.Host] = svc
	if p.replaced {
		p.pub.Update(svc)
	}
}

// remove withdraws host if it was published.
func (p *published) remove(host string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.services[host]; !ok {
		return
	}
	delete(p.services, host)
	if p.replaced {
		p.pub.Remove(host)
	}
}

// complete marks the held services as a complete listing: the first time
// they go out as one Replace (which also clears whatever an earlier run
// published), later calls do nothing (changes went out one by one).
func (p *published) complete() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.replaced {
		return
	}
	p.replaced = true
	all := make([]discovery.Service, 0, len(p.services))
	for _, s := range p.services {
		all = append(all, s)
	}
	p.pub.Replace(all)
}

// hosts lists the hosts held.
func (p *published) hosts() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, 0, len(p.services))
	for h := range p.services {
		out = append(out, h)
	}
	return out
}

// applyInstances publishes host's service built from raws, or withdraws it
// when it cannot be served (warning once per reason, remembered in
// skipped). The caller serializes calls for one watcher.
func applyInstances(out *published, skipped map[string]string, log *zap.Logger, vport *api.RegistryVport, host string, raws []rawInstance) {
	var prev *discovery.Service
	if p, ok := out.get(host); ok {
		prev = &p
	}
	svc, err := buildService(host, raws, vport, prev, log)
	if err != nil {
		if skipped[host] != err.Error() {
			skipped[host] = err.Error()
			log.Warn("service not published", zap.String("host", host), zap.Error(err))
		}
		out.remove(host)
		return
	}
	delete(skipped, host)
	out.update(svc)
}
