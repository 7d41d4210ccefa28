// Package consul watches a Consul catalog (McpBridge registry type
// "consul", higress-semantics §4.5) and publishes its services as
// "<service>.<datacenter>.consul" hosts.
//
// Unlike Higress, which polls the catalog every consulRefreshInterval,
// the watcher uses Consul blocking queries: one on /v1/catalog/services
// (which services exist, filtered by consulServiceTag) and one per service
// on /v1/health/service/<name> (its instances and checks). A registration,
// a check turning critical or a changed weight reaches the Publisher as
// soon as Consul answers the blocked request, typically within
// milliseconds.
//
// consulRefreshInterval (nanoseconds, as in Higress) is the longest a
// blocking query waits for a change before Consul answers anyway, i.e. the
// longest a quiet registry goes without an exchange that proves it is
// alive. Default 30s (Higress's poll interval); clamped to [1s, 10m] —
// 10 minutes is Consul's own cap on a blocking wait, and anything under
// a second would only be a busy loop for a value written in seconds.
//
// Higress gaps fixed here: health is live (every exchange reports to the
// Status, an agent that goes away turns the watcher unhealthy within one
// request), a vanished service is removed at once, a service with no
// passing instance is published with no instances (not kept stale), and
// an instance without its own address gets its node's address.
//
// The agent is reached over plain HTTP at domain:port (as Higress does);
// the authSecretName token goes in X-Consul-Token on every request.
//
// Scale: each watched service holds one HTTP connection to the agent while
// it blocks. Connections are capped at maxConns (below Consul's default
// limits.http_max_conns_per_client of 200); beyond that many services,
// extra watches queue for a connection and see changes up to one refresh
// interval late instead of failing.
package consul

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"
	"go.uber.org/zap"

	"github.com/hxds/hxds/discovery"
)

// Type is the McpBridge registry type this package implements.
const Type = "consul"

const (
	defaultWait = 30 * time.Second
	minWait     = time.Second
	maxWait     = 10 * time.Minute

	// backoffMin/backoffMax bound the wait between attempts while the
	// agent is unreachable or failing.
	backoffMin = 250 * time.Millisecond
	backoffMax = 30 * time.Second

	// quickReturn: a blocking query that comes back sooner than this with
	// an unchanged index did not block (a Consul bug or a proxy in the
	// way); the loop then pauses instead of spinning.
	quickReturn = 100 * time.Millisecond
	spinPause   = time.Second

	// maxConns caps HTTP connections to the agent (see package comment).
	maxConns = 128
	// initialFetchers bounds concurrent first reads of services when a
	// listing is (re)built.
	initialFetchers = 16
)

// New validates a consul registry entry and returns its watcher; it does
// not contact Consul.
func New(cfg discovery.Config, pub discovery.Publisher, log *zap.Logger) (discovery.Watcher, error) {
	r := cfg.Registry
	if pub == nil {
		return nil, errors.New("consul registry: no publisher")
	}
	if log == nil {
		log = zap.NewNop()
	}
	domain := strings.TrimSpace(r.Domain)
	switch {
	case domain == "":
		return nil, fmt.Errorf("consul registry %q: domain (the agent's host) is required", r.Name)
	case strings.Contains(domain, "://") || strings.ContainsAny(domain, "/ ,"):
		return nil, fmt.Errorf("consul registry %q: domain %q must be a host name or IP, not a URL or list", r.Name, r.Domain)
	case r.Port == 0 || r.Port > 65535:
		return nil, fmt.Errorf("consul registry %q: port %d is not a valid HTTP API port", r.Name, r.Port)
	}
	if strings.ContainsAny(r.ConsulDatacenter, "/?#& ") {
		return nil, fmt.Errorf("consul registry %q: datacenter %q is not a valid name", r.Name, r.ConsulDatacenter)
	}
	domain = strings.TrimSuffix(strings.TrimPrefix(domain, "["), "]")
	addr := net.JoinHostPort(domain, strconv.FormatUint(uint64(r.Port), 10))

	transport := &http.Transport{
		Proxy:                 nil, // the registry is reached directly, never via HTTP_PROXY
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxConnsPerHost:       maxConns,
		MaxIdleConnsPerHost:   maxConns,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 0, // blocking queries legitimately wait for minutes
	}
	client, err := api.NewClient(&api.Config{
		Address:    addr,
		Scheme:     "http",
		Datacenter: r.ConsulDatacenter,
		Token:      cfg.Auth.ConsulToken,
		HttpClient: &http.Client{Transport: transport},
	})
	if err != nil {
		return nil, fmt.Errorf("consul registry %q: client for %s: %w", r.Name, addr, err)
	}
	return &watcher{
		client:    client,
		pub:       pub,
		log:       log,
		addr:      addr,
		dc:        r.ConsulDatacenter,
		tag:       strings.TrimSpace(r.ConsulServiceTag),
		wait:      discovery.Interval(r.ConsulRefreshInterval, defaultWait, minWait, maxWait),
		published: map[string]discovery.Service{},
		warned:    map[string]string{},
	}, nil
}

type watcher struct {
	discovery.Tracker

	client *api.Client
	pub    discovery.Publisher
	log    *zap.Logger
	addr   string
	dc     string
	tag    string
	wait   time.Duration

	// mu serialises publishing: what was last published per host, and
	// which service watch owns a host (a stopped watch must not publish
	// after its service was removed).
	mu        sync.Mutex
	published map[string]discovery.Service
	everFull  bool
	// warned is the last warning logged per host, so that a service stuck
	// in a bad state is logged once, not on every change.
	warned map[string]string
}

// svcWatch is the blocking loop of one service.
type svcWatch struct {
	name, host string
	cancel     context.CancelFunc
	done       chan struct{}
	stopped    bool // under watcher.mu
}

// Run watches until ctx is done. Each session lists the catalog and every
// service, publishes the whole listing (Replace), then follows changes with
// blocking queries; any failed exchange ends the session, and the next one
// (after backoff) rebuilds the listing from scratch, so whatever happened
// while the agent was away (a restart that lost registrations, say) is
// resynced.
func (w *watcher) Run(ctx context.Context) error {
	w.log.Info("watching consul", zap.String("address", w.addr), zap.String("datacenter", w.dc),
		zap.String("tag", w.tag), zap.Duration("maxWait", w.wait))
	delay := backoffMin
	for {
		synced, err := w.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if synced {
			delay = backoffMin
		}
		w.Failed(err)
		w.log.Warn("consul exchange failed; retrying", zap.Error(err), zap.Duration("in", delay))
		// Jitter (half to all of delay) keeps many gateways from
		// hammering a recovering agent in lockstep.
		sleep := delay/2 + rand.N(delay/2+1)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(sleep):
		}
		delay = min(delay*2, backoffMax)
	}
}

// session runs one connected period; it returns whether it published a
// complete listing, and the error that ended it.
func (w *watcher) session(ctx context.Context) (synced bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	names, index, err := w.listServices(ctx, 0)
	if err != nil {
		return false, err
	}
	hosts := w.select_(names)
	first, err := w.fetchAll(ctx, hosts)
	if err != nil {
		return false, err
	}
	w.replace(first)
	w.Synced(true)
	w.log.Debug("consul listing synced", zap.Int("services", len(first)), zap.Uint64("index", index))

	// fail ends the session on the first failing service loop (later
	// ones are the same outage): it records the error, then cancels the
	// session, which also wakes the blocked catalog query below.
	errc := make(chan error, 1)
	fail := func(err error) {
		select {
		case errc <- err:
		default:
		}
		cancel()
	}

	watches := map[string]*svcWatch{}
	defer func() {
		for _, sw := range watches {
			sw.cancel()
		}
		for _, sw := range watches {
			<-sw.done
		}
	}()
	for host, name := range hosts {
		watches[host] = w.startWatch(ctx, name, host, first[host].index, fail)
	}

	for {
		started := time.Now()
		newNames, newIndex, err := w.listServices(ctx, index)
		if err != nil {
			select {
			case e := <-errc:
				return true, e
			default:
				return true, err
			}
		}
		w.Synced(false)
		index = w.throttle(ctx, started, index, newIndex)
		want := w.select_(newNames)
		for host, sw := range watches {
			if name, ok := want[host]; ok && name == sw.name {
				continue
			}
			// Gone (or now claimed by another service name): stop its
			// loop before publishing, so it cannot publish after.
			sw.cancel()
			<-sw.done
			delete(watches, host)
			if _, ok := want[host]; !ok {
				w.remove(sw)
			}
		}
		for host, name := range want {
			if _, ok := watches[host]; !ok {
				// Index 0: the first read does not block, so a new
				// service is published as soon as it is seen.
				watches[host] = w.startWatch(ctx, name, host, 0, fail)
			}
		}
	}
}

// select_ filters catalog services by tag and maps them to hosts. Two
// names can map to one host ("a_b" and "a-b"); the first in name order
// wins, deterministically, and the other is logged.
func (w *watcher) select_(services map[string][]string) map[string]string {
	names := make([]string, 0, len(services))
	for name, tags := range services {
		if name != "" && tagMatches(w.tag, tags) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	out := make(map[string]string, len(names))
	for _, name := range names {
		host := Host(name, w.dc)
		if other, ok := out[host]; ok {
			w.mu.Lock()
			w.warnOnce(host+"#collision", "consul services collide on one host; keeping the first", zap.String("kept", other), zap.String("ignored", name))
			w.mu.Unlock()
			continue
		}
		out[host] = name
	}
	return out
}

func (w *watcher) query(ctx context.Context, index uint64) (*api.QueryOptions, context.CancelFunc) {
	// A request deadline a little past the blocking wait (Consul adds up
	// to wait/16 of jitter) catches an agent that vanished without
	// closing the connection.
	ctx, cancel := context.WithTimeout(ctx, w.wait+w.wait/16+10*time.Second)
	q := &api.QueryOptions{Datacenter: w.dc, WaitIndex: index, WaitTime: w.wait}
	return q.WithContext(ctx), cancel
}

func (w *watcher) listServices(ctx context.Context, index uint64) (map[string][]string, uint64, error) {
	q, cancel := w.query(ctx, index)
	defer cancel()
	services, meta, err := w.client.Catalog().Services(q)
	if err != nil {
		return nil, index, fmt.Errorf("consul %s: list catalog services: %w", w.addr, err)
	}
	return services, meta.LastIndex, nil
}

func (w *watcher) health(ctx context.Context, name string, index uint64) ([]*api.ServiceEntry, uint64, error) {
	q, cancel := w.query(ctx, index)
	defer cancel()
	// All instances, not ?passing: the failing ones still give the service
	// its port and protocol while none passes.
	entries, meta, err := w.client.Health().Service(name, "", false, q)
	if err != nil {
		return nil, index, fmt.Errorf("consul %s: health of service %q: %w", w.addr, name, err)
	}
	return entries, meta.LastIndex, nil
}

type fetched struct {
	b     built
	index uint64
}

// fetchAll reads every selected service once (non-blocking), a bounded
// number at a time.
func (w *watcher) fetchAll(ctx context.Context, hosts map[string]string) (map[string]fetched, error) {
	out := make(map[string]fetched, len(hosts))
	var mu sync.Mutex
	var firstErr error
	sem := make(chan struct{}, initialFetchers)
	var wg sync.WaitGroup
	for host, name := range hosts {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			entries, index, err := w.health(ctx, name, 0)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			out[host] = fetched{b: buildService(host, entries), index: index}
		}()
	}
	wg.Wait()
	return out, firstErr
}

func (w *watcher) startWatch(ctx context.Context, name, host string, index uint64, fail func(error)) *svcWatch {
	ctx, cancel := context.WithCancel(ctx)
	sw := &svcWatch{name: name, host: host, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(sw.done)
		for {
			started := time.Now()
			entries, newIndex, err := w.health(ctx, name, index)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				fail(err)
				return
			}
			w.Synced(false)
			index = w.throttle(ctx, started, index, newIndex)
			if len(entries) == 0 {
				// No instance at all, failing or not: the service was
				// deregistered, and the catalog watch is about to remove
				// it. An empty Update first would only be churn.
				continue
			}
			w.update(sw, buildService(host, entries))
		}
	}()
	return sw
}

// throttle returns the index for the next blocking query from the last
// one and the one Consul returned, per Consul's blocking-query rules: an
// index that went backwards (a restored snapshot, a restarted dev agent)
// resets to 0 so that the next read is a fresh non-blocking one; an index
// below 1 is treated as 1 (0 would never block). A query that came back
// at once with an unchanged index did not block (a Consul bug, or a proxy
// in the way), so the loop pauses rather than spins.
func (w *watcher) throttle(ctx context.Context, started time.Time, last, got uint64) uint64 {
	if got < last {
		w.log.Info("consul index went backwards; re-reading", zap.Uint64("was", last), zap.Uint64("now", got))
		return 0
	}
	got = max(got, 1)
	if got == last && time.Since(started) < quickReturn {
		select {
		case <-ctx.Done():
		case <-time.After(spinPause):
		}
	}
	return got
}

// replace publishes a whole listing, unless it equals what was published.
func (w *watcher) replace(first map[string]fetched) {
	w.mu.Lock()
	defer w.mu.Unlock()
	next := make(map[string]discovery.Service, len(first))
	for host, f := range first {
		if svc, ok := w.prepare(host, f.b); ok {
			next[host] = svc
		}
	}
	if w.everFull && reflect.DeepEqual(next, w.published) {
		return
	}
	list := make([]discovery.Service, 0, len(next))
	for _, s := range next {
		list = append(list, s)
	}
	slices.SortFunc(list, func(a, b discovery.Service) int { return strings.Compare(a.Host, b.Host) })
	w.pub.Replace(list)
	w.published = next
	w.everFull = true
	w.log.Info("consul listing published", zap.Int("services", len(list)))
}

// update publishes one service if it changed; a service that cannot be
// published any more (unsupported protocol) is removed.
func (w *watcher) update(sw *svcWatch, b built) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if sw.stopped {
		return
	}
	svc, ok := w.prepare(sw.host, b)
	prev, had := w.published[sw.host]
	if !ok {
		if had {
			delete(w.published, sw.host)
			w.pub.Remove(sw.host)
		}
		return
	}
	if had && reflect.DeepEqual(prev, svc) {
		return
	}
	w.published[sw.host] = svc
	w.pub.Update(svc)
	w.log.Debug("consul service updated", zap.String("service", describe(svc)))
}

// prepare finishes a built service against what was published (under
// w.mu): a service with no instance at all keeps its last port, protocol
// and resolution so that its cluster is not rebuilt while it is empty.
func (w *watcher) prepare(host string, b built) (discovery.Service, bool) {
	if b.dropped > 0 {
		w.warnOnce(host+"#dropped", "consul instances without a usable address or port ignored",
			zap.String("host", host), zap.Int("count", b.dropped))
	}
	if b.skip != "" {
		w.warnOnce(host, "consul service skipped", zap.String("host", host), zap.String("reason", b.skip))
		return discovery.Service{}, false
	}
	delete(w.warned, host)
	svc := b.svc
	if !b.hasPort {
		if prev, ok := w.published[host]; ok {
			svc.Port, svc.Protocol, svc.Resolution = prev.Port, prev.Protocol, prev.Resolution
		}
	}
	return svc, true
}

// remove publishes the removal of a stopped watch's host.
func (w *watcher) remove(sw *svcWatch) {
	w.mu.Lock()
	defer w.mu.Unlock()
	sw.stopped = true
	delete(w.warned, sw.host)
	if _, ok := w.published[sw.host]; ok {
		delete(w.published, sw.host)
		w.pub.Remove(sw.host)
		w.log.Debug("consul service removed", zap.String("host", sw.host))
	}
}

// warnOnce logs msg for key unless it was the last message logged for
// it. Callers hold w.mu.
func (w *watcher) warnOnce(key, msg string, fields ...zap.Field) {
	if w.warned[key] == msg {
		return
	}
	w.warned[key] = msg
	w.log.Warn(msg, fields...)
}
