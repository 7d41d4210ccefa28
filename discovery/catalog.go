package discovery

import (
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/hxds/hxds/translate/input"
)

// Listener hears what a catalog change means downstream. It is called
// outside the catalog's lock, possibly from several goroutines; it should
// read the catalog's current state rather than trust the call's order.
type Listener interface {
	// EndpointsChanged: the instances of these hosts changed. For EDS
	// (Static) hosts this is all the endpoint path needs.
	EndpointsChanged(hosts []string)
	// ShapesChanged: a host appeared or went away, or its port, protocol,
	// SNI, resolution or DNS endpoints changed: clusters change, so
	// translation must run.
	ShapesChanged()
}

// Catalog merges what the registries publish into one view by host and
// holds the last known instances through registry outages:
//
//   - a service whose instance list turns empty keeps its last instances
//     for the grace period (a registry restart or a flapping health check
//     must not blackhole traffic); a service the registry deregisters goes
//     at once;
//   - a registry whose whole listing turns empty, or whose watcher is
//     unhealthy, keeps its services for the grace period, then they are
//     hidden (not forgotten: they come back when the registry does);
//   - a registry removed from the McpBridge takes its services with it.
//
// What is held is reported (Held) so /registry/watcherStatus can say so.
// A grace of 0 holds nothing. Two registries publishing one host: the
// first by registry key serves it.
type Catalog struct {
	grace    time.Duration
	listener Listener
	now      func() time.Time

	mu        sync.Mutex
	regs      map[string]*regState
	effective map[string]*hostView // host → what is served
}

type regState struct {
	services map[string]*hostEntry
	// emptySince: the listing turned empty (Replace with nothing) while
	// services were known; unhealthySince: the watcher reports unhealthy.
	emptySince, unhealthySince time.Time
}

type hostEntry struct {
	svc          Service
	lastNonEmpty []Instance
	emptySince   time.Time // instances turned empty
}

// hostView is the served state of a host. Instances is never changed in
// place once published (the endpoint path compares it by identity).
type hostView struct {
	svc  Service // Instances: what is served
	held string  // why the instances are the last known ones, if they are
}

// NewCatalog returns an empty catalog that tells listener about changes.
func NewCatalog(grace time.Duration, listener Listener) *Catalog {
	return &Catalog{grace: grace, listener: listener, now: time.Now, regs: map[string]*regState{}, effective: map[string]*hostView{}}
}

// Publisher returns the Publisher of registry key ("<type>/<name>").
func (c *Catalog) Publisher(key string) Publisher { return &regPublisher{c: c, key: key} }

type regPublisher struct {
	c   *Catalog
	key string
}

func (p *regPublisher) Replace(services []Service) { p.c.replace(p.key, services) }
func (p *regPublisher) Update(svc Service)         { p.c.update(p.key, svc) }
func (p *regPublisher) Remove(host string)         { p.c.remove(p.key, host) }

func (c *Catalog) reg(key string) *regState {
	r := c.regs[key]
	if r == nil {
		r = &regState{services: map[string]*hostEntry{}}
		c.regs[key] = r
	}
	return r
}

// put records a published service; it returns the host.
func (c *Catalog) put(r *regState, key string, svc Service, now time.Time) string {
	svc.Registry = key
	svc.Instances = slices.Clone(svc.Instances)
	SortInstances(svc.Instances)
	e := r.services[svc.Host]
	if e == nil {
		e = &hostEntry{}
		r.services[svc.Host] = e
	}
	if len(svc.Instances) > 0 {
		e.lastNonEmpty, e.emptySince = svc.Instances, time.Time{}
	} else if len(e.svc.Instances) > 0 || (e.emptySince.IsZero() && len(e.lastNonEmpty) > 0) {
		e.emptySince = now
	}
	e.svc = svc
	return svc.Host
}

func (c *Catalog) update(key string, svc Service) {
	if svc.Host == "" {
		return
	}
	c.mu.Lock()
	now := c.now()
	h := c.put(c.reg(key), key, svc, now)
	c.settle([]string{h}, now)
}

func (c *Catalog) remove(key, host string) {
	c.mu.Lock()
	delete(c.reg(key).services, host)
	c.settle([]string{host}, c.now())
}

func (c *Catalog) replace(key string, services []Service) {
	c.mu.Lock()
	now := c.now()
	r := c.reg(key)
	touched := slices.Collect(maps.Keys(r.services))
	if len(services) == 0 && len(r.services) > 0 {
		// An empty listing from a registry that had services looks like an
		// outage (or a wiped registry): hold for the grace period.
		if r.emptySince.IsZero() {
			r.emptySince = now
		}
		c.settle(touched, now)
		return
	}
	r.emptySince = time.Time{}
	seen := make(map[string]bool, len(services))
	for _, s := range services {
		if s.Host == "" {
			continue
		}
		seen[s.Host] = true
		touched = append(touched, c.put(r, key, s, now))
	}
	for h := range r.services {
		if !seen[h] {
			delete(r.services, h) // deregistered: gone at once
		}
	}
	c.settle(touched, now)
}

// SetHealthy tells the catalog whether registry key's watcher is healthy;
// the reconciler calls it as watcher statuses change.
func (c *Catalog) SetHealthy(key string, healthy bool) {
	c.mu.Lock()
	now := c.now()
	r := c.regs[key]
	if r == nil {
		c.mu.Unlock()
		return
	}
	switch {
	case healthy && !r.unhealthySince.IsZero():
		r.unhealthySince = time.Time{}
	case !healthy && r.unhealthySince.IsZero():
		r.unhealthySince = now
	default:
		c.mu.Unlock()
		return
	}
	c.settle(slices.Collect(maps.Keys(r.services)), now)
}

// Drop forgets registry key (removed from the McpBridge): its services go
// at once.
func (c *Catalog) Drop(key string) {
	c.mu.Lock()
	r := c.regs[key]
	delete(c.regs, key)
	var touched []string
	if r != nil {
		touched = slices.Collect(maps.Keys(r.services))
	}
	c.settle(touched, c.now())
}

// settle recomputes what is served for hosts, unlocks, tells the listener,
// and schedules the end of any grace period it started. c.mu is held.
func (c *Catalog) settle(hosts []string, now time.Time) {
	var endpoints []string
	shapes := false
	var wake time.Duration
	sort.Strings(hosts)
	hosts = slices.Compact(hosts)
	keys := slices.Sorted(maps.Keys(c.regs))
	for _, h := range hosts {
		next, until := c.view(keys, h, now)
		if until > 0 && (wake == 0 || until < wake) {
			wake = until
		}
		prev := c.effective[h]
		switch {
		case prev == nil && next == nil:
			continue
		case prev == nil || next == nil:
			shapes = true
			endpoints = append(endpoints, h)
		default:
			if !sameShape(prev.svc, next.svc) {
				shapes = true
			}
			if !sameInstanceList(prev.svc.Instances, next.svc.Instances) {
				endpoints = append(endpoints, h)
			} else {
				next.svc.Instances = prev.svc.Instances // keep identity: nothing to re-encode
			}
		}
		if next == nil {
			delete(c.effective, h)
		} else {
			c.effective[h] = next
		}
	}
	c.mu.Unlock()
	if wake > 0 {
		time.AfterFunc(wake, func() {
			c.mu.Lock()
			c.settle(hosts, c.now())
		})
	}
	if c.listener == nil {
		return
	}
	if shapes {
		c.listener.ShapesChanged()
	}
	if len(endpoints) > 0 {
		c.listener.EndpointsChanged(endpoints)
	}
}

// view is what is served for host now, and when a grace period affecting
// it ends (0: none running); keys are the registries in precedence order.
// c.mu is held.
func (c *Catalog) view(keys []string, host string, now time.Time) (*hostView, time.Duration) {
	var wake time.Duration
	note := func(since time.Time) bool { // within grace?
		if c.grace <= 0 || since.IsZero() {
			return false
		}
		left := since.Add(c.grace).Sub(now)
		if left <= 0 {
			return false
		}
		if wake == 0 || left < wake {
			wake = left
		}
		return true
	}
	for _, k := range keys {
		r := c.regs[k]
		e := r.services[host]
		if e == nil {
			continue
		}
		v := &hostView{svc: e.svc}
		switch {
		case !r.unhealthySince.IsZero():
			if !note(r.unhealthySince) {
				continue // down past the grace period: hidden
			}
			v.held = "registry unhealthy since " + r.unhealthySince.UTC().Format(time.RFC3339)
		case !r.emptySince.IsZero():
			if !note(r.emptySince) {
				continue
			}
			v.held = "registry listing empty since " + r.emptySince.UTC().Format(time.RFC3339)
		}
		if len(e.svc.Instances) == 0 && len(e.lastNonEmpty) > 0 && note(e.emptySince) {
			v.svc.Instances = e.lastNonEmpty
			v.held = "no instances since " + e.emptySince.UTC().Format(time.RFC3339)
		}
		return v, wake
	}
	return nil, wake
}

func sameShape(a, b Service) bool {
	if a.Port != b.Port || a.Protocol != b.Protocol || a.SNI != b.SNI || a.Resolution != b.Resolution || a.Registry != b.Registry {
		return false
	}
	// A DNS service's endpoints are part of its cluster.
	return a.Resolution != DNS || sameInstanceList(a.Instances, b.Instances)
}

func sameInstanceList(a, b []Instance) bool {
	return slices.EqualFunc(a, b, func(x, y Instance) bool {
		return x.Address == y.Address && x.Port == y.Port && x.Weight == y.Weight && maps.Equal(x.Metadata, y.Metadata)
	})
}

// Instances returns the served instances of host (EDS). The slice is
// shared and must not be changed.
func (c *Catalog) Instances(host string) []input.RegistryEndpoint {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v := c.effective[host]; v != nil {
		return v.svc.Instances
	}
	return nil
}

// Shapes returns the served hosts as translation sees them.
func (c *Catalog) Shapes() map[string]*input.RegistryService {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]*input.RegistryService, len(c.effective))
	for h, v := range c.effective {
		s := &input.RegistryService{
			Host: h, Registry: v.svc.Registry, Port: v.svc.Port, Protocol: string(v.svc.Protocol),
			SNI: v.svc.SNI, DNS: v.svc.Resolution == DNS,
		}
		if s.DNS {
			s.Endpoints = v.svc.Instances
		}
		out[h] = s
	}
	return out
}

// RegistryCounts is what one registry contributes now.
type RegistryCounts struct {
	Services, Instances int
	// Held lists the hosts served from last known instances, with why.
	Held map[string]string
}

// Counts returns, per registry key, the served services and instances.
func (c *Catalog) Counts() map[string]RegistryCounts {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]RegistryCounts{}
	for h, v := range c.effective {
		rc := out[v.svc.Registry]
		rc.Services++
		rc.Instances += len(v.svc.Instances)
		if v.held != "" {
			if rc.Held == nil {
				rc.Held = map[string]string{}
			}
			rc.Held[h] = v.held
		}
		out[v.svc.Registry] = rc
	}
	return out
}
