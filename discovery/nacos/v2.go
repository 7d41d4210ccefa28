package nacos

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/nacos-group/nacos-sdk-go/v2/model"
	"go.uber.org/zap"

	"github.com/hxds/hxds/discovery"
)

const (
	// addressRefresh is how often the address server is asked again (§4.1).
	addressRefresh = 30 * time.Second
	// healthEvery is how often an idle connection is health-checked (the
	// SDK's keep-alive period); a broken stream is noticed at once.
	healthEvery = 5 * time.Second
	// maxRetry bounds the backoff between reconnection attempts.
	maxRetry = 30 * time.Second
	// subscribers is how many subscriptions a sync makes at once.
	subscribers = 8
)

// V2Watcher watches a Nacos 2.x/3.x server over gRPC.
type V2Watcher struct {
	discovery.Tracker
	s   settings
	log *zap.Logger
	out *published

	addrURL string // address server's server-list URL, or ""
	// Timings; tests shorten them.
	refresh, healthEvery, addrRefresh, retryBase, timeout time.Duration

	mu      sync.Mutex
	skipped map[string]string
}

// NewV2 is the discovery.Factory of types nacos2 and nacos3 (gRPC).
func NewV2(cfg discovery.Config, pub discovery.Publisher, log *zap.Logger) (discovery.Watcher, error) {
	s, err := parseSettings(cfg, TypeV2, TypeV3)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	r := cfg.Registry
	w := &V2Watcher{
		s: s, log: log, out: newPublished(pub),
		refresh: s.refresh, healthEvery: healthEvery, addrRefresh: addressRefresh, retryBase: time.Second,
		timeout: requestTimeout,
		skipped: map[string]string{},
	}
	if strings.TrimSpace(r.NacosAddressServer) != "" {
		if w.addrURL, err = addressServerURL(r.NacosAddressServer, s.namespaceID); err != nil {
			return nil, fmt.Errorf("registry %s: %w", r.Key(), err)
		}
		if w.s.port == 0 {
			w.s.port = 8848 // for address-server lines without a port
		}
	}
	if (r.NacosAccessKey == "") != (r.NacosSecretKey == "") {
		return nil, fmt.Errorf("registry %s: nacosAccessKey and nacosSecretKey go together", r.Key())
	}
	if (cfg.Auth.NacosUsername == "") != (cfg.Auth.NacosPassword == "") {
		return nil, fmt.Errorf("registry %s: the auth secret needs both nacosUsername and nacosPassword", r.Key())
	}
	if r.EnableMCPServer != nil && *r.EnableMCPServer {
		if r.Type == TypeV3 {
			log.Warn("enableMCPServer: Nacos 3.x MCP-server discovery is not supported yet; only naming services are watched")
		} else {
			log.Warn("enableMCPServer applies to type nacos3 only; ignored")
		}
	}
	if len(s.groups) == 0 {
		log.Warn("nacosGroups is empty: no services will be discovered (as Higress; list the groups to watch)")
	}
	return w, nil
}

// Run implements discovery.Watcher.
func (w *V2Watcher) Run(ctx context.Context) error {
	setSDKLogger(w.log)
	w.log.Info("watching nacos over gRPC", zap.String("server", serverAddr{w.s.domain, w.s.port}.String()),
		zap.String("addressServer", w.addrURL), zap.String("namespaceId", w.s.namespaceID),
		zap.Strings("groups", w.s.groups), zap.Duration("refresh", w.refresh))
	httpc := &http.Client{Timeout: requestTimeout}
	var cur serverAddr
	var list []serverAddr
	retry := w.retryBase
	for ctx.Err() == nil {
		if w.addrURL != "" {
			l, err := fetchServerList(ctx, httpc, w.addrURL, w.s.port)
			if err != nil {
				w.log.Warn("address server failed", zap.Error(err))
				if len(list) == 0 {
					w.Failed(err)
					if !sleep(ctx, retry) {
						return nil
					}
					retry = min(retry*2, maxRetry)
					continue
				}
			} else {
				list = l
			}
			// A new pick each time: after a failure, another server if
			// there is one.
			cur = pick(list, cur)
		} else {
			cur = serverAddr{w.s.domain, w.s.port}
		}
		start := time.Now()
		err := w.session(ctx, cur, httpc)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, errRepick) {
			w.log.Info("nacos server left the address list; picking another", zap.String("server", cur.String()))
			retry = w.retryBase
			continue
		}
		w.Failed(err)
		if time.Since(start) > maxRetry {
			retry = w.retryBase // it worked for a while: not a crash loop
		}
		w.log.Warn("nacos connection failed", zap.String("server", cur.String()), zap.Error(err), zap.Duration("retryIn", retry))
		if !sleep(ctx, retry) {
			return nil
		}
		retry = min(retry*2, maxRetry)
	}
	return nil
}

// errRepick ends a session so that Run picks another server.
var errRepick = errors.New("switching nacos server")

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// session is one connection and its subscriptions.
type session struct {
	w    *V2Watcher
	conn *grpcConn

	mu     sync.Mutex
	subs   map[string]*subscription // by host
	byKey  map[string]*subscription // by "group@@name"
	closed bool
}

type subscription struct {
	group, name, host string
	// lastRef is the LastRefTime of the data applied last: older pushes
	// (reordered with a subscribe response) are dropped.
	lastRef uint64
}

// session watches through one connection to server until ctx is done,
// the connection breaks (an error), or the address server no longer lists
// server (errRepick).
func (w *V2Watcher) session(ctx context.Context, server serverAddr, httpc *http.Client) error {
	auth, err := newAuth(w.s, server, w.timeout)
	if err != nil {
		return err
	}
	ss := &session{w: w, subs: map[string]*subscription{}, byKey: map[string]*subscription{}}
	conn, err := dialNacos(ctx, server, w.s.namespaceID, w.timeout, auth, ss.onPush)
	if err != nil {
		return err
	}
	ss.conn = conn
	defer func() {
		// A push still in flight must not overwrite what the next
		// connection publishes.
		ss.mu.Lock()
		ss.closed = true
		ss.mu.Unlock()
		conn.Close()
	}()
	w.log.Info("connected to nacos", zap.String("server", server.String()))

	syncT := time.NewTimer(0)
	defer syncT.Stop()
	health := time.NewTicker(w.healthEvery)
	defer health.Stop()
	var addrC <-chan time.Time
	if w.addrURL != "" {
		t := time.NewTicker(w.addrRefresh)
		defer t.Stop()
		addrC = t.C
	}
	retry := w.retryBase
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-conn.done:
			_, err := conn.alive()
			return fmt.Errorf("connection to nacos server %s lost: %w", server, err)
		case <-syncT.C:
			if err := ss.sync(ctx); err != nil {
				if ok, _ := conn.alive(); !ok {
					continue // conn.done reports it
				}
				w.Failed(err)
				w.log.Warn("nacos sync failed", zap.String("server", server.String()), zap.Error(err))
				syncT.Reset(min(retry, w.refresh))
				retry = min(retry*2, w.refresh)
			} else {
				retry = w.retryBase
				syncT.Reset(w.refresh)
			}
		case <-health.C:
			if auth != nil {
				loginSafely(auth)
			}
			if err := conn.healthCheck(ctx); err != nil {
				return fmt.Errorf("health check of nacos server %s: %w", server, err)
			}
		case <-addrC:
			list, err := fetchServerList(ctx, httpc, w.addrURL, w.s.port)
			if err != nil {
				w.log.Warn("address server failed; keeping the current server", zap.Error(err))
				continue
			}
			if !contains(list, server) {
				return errRepick
			}
		}
	}
}

type svcKey struct{ group, name string }

// sync lists the services, unsubscribes and removes those that vanished
// and subscribes new ones. A complete success makes the watcher ready.
func (ss *session) sync(ctx context.Context) error {
	w := ss.w
	listed := map[string]svcKey{}
	for _, g := range w.s.groups {
		names, err := ss.conn.listServices(ctx, g)
		if err != nil {
			// Without the whole listing nothing may be removed.
			return fmt.Errorf("list services of group %q: %w", g, err)
		}
		for _, n := range names {
			if !skipService(n) {
				listed[Host(n, g, w.s.namespace)] = svcKey{g, n}
			}
		}
	}

	ss.mu.Lock()
	var gone []*subscription
	for h, sub := range ss.subs {
		if _, ok := listed[h]; !ok {
			gone = append(gone, sub)
			delete(ss.subs, h)
			delete(ss.byKey, serviceKey(sub.group, sub.name))
		}
	}
	var fresh []*subscription
	for h, k := range listed {
		if _, ok := ss.subs[h]; !ok {
			sub := &subscription{group: k.group, name: k.name, host: h}
			ss.subs[h] = sub
			ss.byKey[serviceKey(k.group, k.name)] = sub
			fresh = append(fresh, sub)
		}
	}
	ss.mu.Unlock()

	// Vanished services (including what an earlier connection published).
	for _, h := range w.out.hosts() {
		if _, ok := listed[h]; !ok {
			w.log.Info("service deregistered", zap.String("host", h))
			w.out.remove(h)
		}
	}
	for _, sub := range gone {
		if _, err := ss.conn.subscribe(ctx, sub.group, sub.name, false); err != nil {
			w.log.Debug("unsubscribe failed", zap.String("host", sub.host), zap.Error(err))
		}
	}

	var mu sync.Mutex
	var errs []error
	sem := make(chan struct{}, subscribers)
	var wg sync.WaitGroup
	for _, sub := range fresh {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			svc, err := ss.conn.subscribe(ctx, sub.group, sub.name, true)
			if err != nil {
				ss.mu.Lock()
				if ss.subs[sub.host] == sub {
					delete(ss.subs, sub.host)
					delete(ss.byKey, serviceKey(sub.group, sub.name))
				}
				ss.mu.Unlock()
				mu.Lock()
				errs = append(errs, fmt.Errorf("subscribe %s: %w", sub.host, err))
				mu.Unlock()
				return
			}
			ss.applyIfNewer(sub, svc)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	w.out.complete()
	w.Synced(true)
	return nil
}

// onPush handles a NotifySubscriberRequest.
func (ss *session) onPush(svc model.Service) {
	ss.mu.Lock()
	sub := ss.byKey[pushKey(svc)]
	closed := ss.closed
	ss.mu.Unlock()
	if sub == nil || closed {
		return // not (or no longer) subscribed
	}
	ss.w.Synced(false)
	ss.applyIfNewer(sub, svc)
}

func (ss *session) applyIfNewer(sub *subscription, svc model.Service) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closed || ss.subs[sub.host] != sub || svc.LastRefTime < sub.lastRef {
		return
	}
	sub.lastRef = svc.LastRefTime
	ss.w.apply(sub.host, svc.Hosts)
}

func loginSafely(auth interface{ Login() }) {
	defer func() { _ = recover() }() // the SDK type-asserts the login response
	auth.Login()
}

// apply publishes one service's instance list (from a subscribe response
// or a push).
func (w *V2Watcher) apply(host string, instances []model.Instance) {
	raws := make([]rawInstance, len(instances))
	for i, in := range instances {
		raws[i] = rawInstance{IP: in.Ip, Port: float64(in.Port), Weight: in.Weight, Healthy: in.Healthy,
			Enabled: in.Enable, Metadata: in.Metadata}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	applyInstances(w.out, w.skipped, w.log, w.s.cfg.Registry.Vport, host, raws)
}
