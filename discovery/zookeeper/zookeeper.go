// Package zookeeper watches a ZooKeeper registry (McpBridge type
// "zookeeper", higress-semantics §4.5) holding Dubbo providers and Spring
// Cloud Zookeeper instances.
//
// Layout read:
//
//	/dubbo/<interface>/providers/<url-encoded dubbo://ip:port/...?...>
//	   → host providers:<interface>:<version or 0.0.0>:<group>.zookeeper
//	<root>/<service>/<instance id>   (JSON: address, port, payload.metadata)
//	   → host <service>.<root without leading '/', '/'→'-'>.zookeeper
//
// Spring Cloud roots are /services plus McpBridge zkServicesPath (/dubbo
// and /services entries there are ignored).
//
// Changes arrive through ZooKeeper watches, not polling: a child watch on
// /dubbo and on each root, on every interface's providers node and every
// Spring Cloud service node, and a data watch on every Spring Cloud
// instance node (Spring Cloud updates metadata in place). ZooKeeper
// watches fire once, so each fired watch is re-armed by the re-read it
// triggers. Within one session the client re-registers its watches after a
// reconnect, and the server fires those whose nodes changed meanwhile;
// every (re)established session nevertheless triggers a full re-list, and a
// session expiry drops every watch, so the re-list re-arms them all. A
// client that has had no session for 3 session timeouts (30 s) is replaced
// by a new one: a server restarted without its data refuses a client that
// has seen later zxids, which would otherwise retry forever. A
// full re-list also runs every 5 minutes as a safety net (it reuses armed
// watches, so on a steady registry it costs one children read per service
// and publishes nothing).
//
// Fixes over Higress: health is the live session state; a service node
// that is deleted is removed at once; a service whose providers all vanish
// is published with no instances (the catalog applies the grace period);
// disabled Dubbo providers (enabled=false), disabled Curator instances and
// Spring Cloud instances whose instance_status is not UP are not
// published; only dubbo:// provider URLs become Dubbo instances.
//
// Dubbo instance weight is the provider's weight parameter (Dubbo's
// default 100, clamped to 1–10000); Spring Cloud instances weigh 1.
package zookeeper

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap"

	"github.com/hxds/hxds/discovery"
)

const (
	// Type is the McpBridge registry type this package serves.
	Type = "zookeeper"
	// sessionTimeout is Higress's: how long the server keeps the session
	// (and our watches) across a disconnect.
	sessionTimeout = 10 * time.Second
	// dubboRoot is where Dubbo registers.
	dubboRoot = "/dubbo"
	// defaultRoot is Spring Cloud Zookeeper's default root, always read.
	defaultRoot = "/services"
	// resyncEvery is the safety-net full re-list period.
	resyncEvery = 5 * time.Minute
	// parallelism bounds concurrent ZooKeeper reads in a (re)list; the
	// client pipelines requests over its one connection.
	parallelism = 32
	// retryMin/retryMax bound the backoff of a failed re-list while the
	// session is up (a lost session is retried by the client itself).
	retryMin = 500 * time.Millisecond
	retryMax = 30 * time.Second
	// staleAfter × the session timeout without a session: the session is
	// long expired server-side, so a new client loses nothing.
	staleAfter = 3
)

// dubboSkip are children of /dubbo that are not interfaces.
var dubboSkip = map[string]bool{"config": true, "mapping": true, "metadata": true}

// New is the discovery.Factory of the zookeeper registry type. It
// validates the configuration; it does not contact ZooKeeper.
func New(cfg discovery.Config, pub discovery.Publisher, log *zap.Logger) (discovery.Watcher, error) {
	r := cfg.Registry
	if r.Type != "" && r.Type != Type {
		return nil, fmt.Errorf("zookeeper registry %q: type is %q", r.Name, r.Type)
	}
	if pub == nil {
		return nil, fmt.Errorf("zookeeper registry %q: no publisher", r.Name)
	}
	domain := strings.TrimSpace(r.Domain)
	if domain == "" {
		return nil, fmt.Errorf("zookeeper registry %q: domain is empty", r.Name)
	}
	if strings.ContainsAny(domain, "/ \t,") || strings.Contains(domain, "://") {
		return nil, fmt.Errorf("zookeeper registry %q: domain %q must be one host name or IP (the port goes in port)", r.Name, r.Domain)
	}
	if r.Port == 0 || r.Port > 65535 {
		return nil, fmt.Errorf("zookeeper registry %q: port %d is not 1-65535", r.Name, r.Port)
	}
	roots := []string{defaultRoot}
	suffixes := map[string]string{rootSuffix(defaultRoot): defaultRoot}
	for _, p := range r.ZkServicesPath {
		p = strings.TrimSpace(p)
		if !strings.HasPrefix(p, "/") || strings.ContainsRune(p, 0) {
			return nil, fmt.Errorf("zookeeper registry %q: zkServicesPath %q must be an absolute ZooKeeper path", r.Name, p)
		}
		p = path.Clean(p)
		if p == dubboRoot || p == defaultRoot {
			continue // Higress ignores them: both are always read
		}
		if strings.HasPrefix(p, dubboRoot+"/") || p == "/zookeeper" || strings.HasPrefix(p, "/zookeeper/") {
			return nil, fmt.Errorf("zookeeper registry %q: zkServicesPath %q is inside /dubbo or /zookeeper", r.Name, p)
		}
		s := rootSuffix(p)
		if other, dup := suffixes[s]; dup {
			if other == p {
				continue
			}
			return nil, fmt.Errorf("zookeeper registry %q: zkServicesPath %q and %q give the same host suffix %q", r.Name, other, p, s)
		}
		suffixes[s] = p
		roots = append(roots, p)
	}
	if log == nil {
		log = zap.NewNop()
	}
	w := &Watcher{
		name:           r.Name,
		sessionTimeout: sessionTimeout,
		addr:           net.JoinHostPort(domain, strconv.Itoa(int(r.Port))),
		roots:          roots,
		pub:            pub,
		log:            log,
		wake:           make(chan struct{}, 1),
		armed:          map[watchKey]bool{},
	}
	w.resetState()
	return w, nil
}

// Watcher watches one ZooKeeper registry.
type Watcher struct {
	discovery.Tracker

	name string
	addr string
	// sessionTimeout is the constant; tests shorten it.
	sessionTimeout time.Duration
	roots          []string // Spring Cloud roots, defaultRoot first
	pub            discovery.Publisher
	log            *zap.Logger

	conn *zk.Conn
	// state is the client's session state, updated from the event
	// callback; lostAt is when it last stopped being StateHasSession.
	state  atomic.Int32
	lostAt atomic.Int64
	// gen numbers clients, so a replaced client's events are ignored.
	genMu sync.Mutex
	gen   uint64

	// Events from the client's callback, drained by Run's loop.
	qmu   sync.Mutex
	queue []zk.Event
	wake  chan struct{}

	// armed records watches set in this session, so a re-read of a path
	// whose watch has not fired does not stack another one in the client.
	armedMu sync.Mutex
	armed   map[watchKey]bool

	// Loop-owned state.
	ifaces    map[string]*dubboIface           // by interface name
	provPaths map[string]string                // /dubbo/<i>/providers → interface
	rootSvcs  map[string]map[string]*springSvc // root → service name → service
	svcPaths  map[string]*springSvc            // <root>/<svc> → service
	instPaths map[string]*springSvc            // <root>/<svc>/<id> → service
	published map[string]discovery.Service     // by host, as last published
	owner     map[string]string                // host → unit that publishes it
	unitHosts map[string]map[string]bool       // unit → hosts it publishes
	ready     bool
}

// Status implements discovery.Watcher: healthy only while the client holds
// a session, whatever the last exchange said.
func (w *Watcher) Status() discovery.Status {
	st := w.Tracker.Status()
	if zk.State(w.state.Load()) != zk.StateHasSession {
		st.Healthy = false
	}
	return st
}

// Run implements discovery.Watcher.
func (w *Watcher) Run(ctx context.Context) error {
	if _, err := w.connect(); err != nil {
		// Only a malformed server list fails here; New validated it.
		return fmt.Errorf("zookeeper registry %q: connect %s: %w", w.name, w.addr, err)
	}
	defer func() { w.conn.Close() }()
	w.log.Info("watching zookeeper", zap.String("address", w.addr), zap.Strings("springCloudRoots", w.roots))

	// stale checks for a client that cannot get a session back: a server
	// restarted without its data (or a replaced ensemble) refuses a client
	// that has seen a later zxid, and the client would retry it forever.
	// Long after the old session expired, a new client starts afresh.
	stale := time.NewTicker(time.Second)
	defer stale.Stop()
	needFull := false
	backoff := retryMin
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	safety := time.NewTicker(resyncEvery)
	defer safety.Stop()
	dirty := map[string]bool{}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w.wake:
		case <-retry.C:
		case <-safety.C:
			needFull = true
		case <-stale.C:
			if lost := time.Since(time.Unix(0, w.lostAt.Load())); zk.State(w.state.Load()) != zk.StateHasSession && lost > staleAfter*w.sessionTimeout {
				w.log.Warn("no zookeeper session for long; starting a new client", zap.Duration("for", lost))
				w.conn.Close()
				if _, err := w.connect(); err != nil {
					return fmt.Errorf("zookeeper registry %q: connect %s: %w", w.name, w.addr, err)
				}
				needFull = true
			}
		}
		for _, ev := range w.drain() {
			switch ev.Type {
			case zk.EventSession:
				switch ev.State {
				case zk.StateHasSession:
					// A new session or a reconnected one: either way
					// re-list (an expired session lost every watch).
					needFull = true
				case zk.StateExpired:
					w.log.Warn("zookeeper session expired; re-listing on the next session")
					w.clearArmed()
				}
			case zk.EventNotWatching:
				w.unarm(ev.Path, watchChild, watchData, watchExist)
				if errors.Is(ev.Err, zk.ErrSessionExpired) {
					needFull = true
				}
			case zk.EventNodeChildrenChanged:
				w.unarm(ev.Path, watchChild)
				dirty[ev.Path] = true
			case zk.EventNodeDataChanged:
				w.unarm(ev.Path, watchData)
				dirty[ev.Path] = true
			case zk.EventNodeCreated:
				w.unarm(ev.Path, watchExist)
				dirty[ev.Path] = true
			case zk.EventNodeDeleted:
				w.unarm(ev.Path, watchChild, watchData, watchExist)
				dirty[ev.Path] = true
			}
		}
		if zk.State(w.state.Load()) != zk.StateHasSession {
			// Nothing can be read; the next session re-lists everything.
			if len(dirty) > 0 {
				needFull = true
				clear(dirty)
			}
			continue
		}
		if needFull {
			clear(dirty) // the re-list covers them
			if err := w.resync(ctx); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				w.Failed(err)
				w.log.Warn("zookeeper re-list failed; retrying", zap.Error(err), zap.Duration("in", backoff))
				retry.Reset(backoff)
				backoff = min(backoff*2, retryMax)
				continue
			}
			needFull = false
			backoff = retryMin
			w.Synced(true)
			continue
		}
		if len(dirty) == 0 {
			continue
		}
		paths := make([]string, 0, len(dirty))
		for p := range dirty {
			paths = append(paths, p)
		}
		clear(dirty)
		if err := w.handle(ctx, paths); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			w.Failed(err)
			w.log.Warn("zookeeper read failed; re-listing", zap.Error(err))
			needFull = true
			retry.Reset(backoff)
			backoff = min(backoff*2, retryMax)
			continue
		}
		w.Synced(false)
	}
}

// connect starts a new client (a new session); events of the previous one
// are ignored from now on.
func (w *Watcher) connect() (*zk.Conn, error) {
	w.genMu.Lock()
	w.gen++
	gen := w.gen
	w.state.Store(int32(zk.StateDisconnected))
	w.lostAt.Store(time.Now().UnixNano())
	w.genMu.Unlock()
	w.clearArmed()
	conn, _, err := zk.Connect([]string{w.addr}, w.sessionTimeout,
		zk.WithHostProvider(&hostProvider{}),
		zk.WithLogger(zkLogger{w.log.Named("client").Sugar()}),
		zk.WithLogInfo(false),
		zk.WithEventCallback(func(ev zk.Event) { w.onEvent(gen, ev) }),
		// ZooKeeper's own default jute.maxbuffer: a larger packet is a
		// broken or hostile server, not a registry.
		zk.WithMaxBufferSize(4<<20),
	)
	if err != nil {
		return nil, err
	}
	w.conn = conn
	return conn, nil
}

// onEvent is the client's event callback: it must not block. Session
// state goes straight to health; everything is queued for Run's loop.
func (w *Watcher) onEvent(gen uint64, ev zk.Event) {
	w.genMu.Lock()
	defer w.genMu.Unlock()
	if gen != w.gen {
		return // a closed client's last words
	}
	if ev.Type == zk.EventSession {
		if prev := zk.State(w.state.Swap(int32(ev.State))); prev == zk.StateHasSession && ev.State != zk.StateHasSession {
			w.lostAt.Store(time.Now().UnixNano())
		}
		switch ev.State {
		case zk.StateHasSession:
			w.log.Info("zookeeper session established", zap.String("server", ev.Server))
		case zk.StateDisconnected:
			w.Failed(fmt.Errorf("zookeeper %s: disconnected", w.addr))
		case zk.StateExpired:
			w.Failed(fmt.Errorf("zookeeper %s: session expired", w.addr))
		}
	}
	w.qmu.Lock()
	w.queue = append(w.queue, ev)
	w.qmu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *Watcher) drain() []zk.Event {
	w.qmu.Lock()
	defer w.qmu.Unlock()
	q := w.queue
	w.queue = nil
	return q
}

// watchKind is the kind of a ZooKeeper watch on a path.
type watchKind uint8

const (
	watchChild watchKind = iota
	watchData
	watchExist
)

type watchKey struct {
	path string
	kind watchKind
}

func (w *Watcher) isArmed(p string, k watchKind) bool {
	w.armedMu.Lock()
	defer w.armedMu.Unlock()
	return w.armed[watchKey{p, k}]
}

func (w *Watcher) arm(p string, k watchKind) {
	w.armedMu.Lock()
	w.armed[watchKey{p, k}] = true
	w.armedMu.Unlock()
}

func (w *Watcher) unarm(p string, kinds ...watchKind) {
	w.armedMu.Lock()
	for _, k := range kinds {
		delete(w.armed, watchKey{p, k})
	}
	w.armedMu.Unlock()
}

func (w *Watcher) clearArmed() {
	w.armedMu.Lock()
	clear(w.armed)
	w.armedMu.Unlock()
}

// children lists p's children with a child watch (unless one is armed).
// A missing node is not an error: it arms an existence watch, so its
// creation is seen, and reports exists=false.
func (w *Watcher) children(p string) (kids []string, exists bool, err error) {
	for attempt := 0; attempt < 3; attempt++ {
		if w.isArmed(p, watchChild) {
			kids, _, err = w.conn.Children(p)
		} else {
			kids, _, _, err = w.conn.ChildrenW(p)
			if err == nil {
				w.arm(p, watchChild)
			}
		}
		if err == nil {
			return kids, true, nil
		}
		if !errors.Is(err, zk.ErrNoNode) {
			return nil, false, fmt.Errorf("list %s: %w", p, err)
		}
		if w.isArmed(p, watchExist) {
			return nil, false, nil
		}
		ok, _, _, err := w.conn.ExistsW(p)
		if err != nil {
			return nil, false, fmt.Errorf("exists %s: %w", p, err)
		}
		if !ok {
			w.arm(p, watchExist)
			return nil, false, nil
		}
		// Created between the two reads (ExistsW set a data watch,
		// which is harmless): list again.
	}
	return nil, false, nil
}

// data reads p with a data watch (unless one is armed); a missing node is
// exists=false.
func (w *Watcher) data(p string) (b []byte, exists bool, err error) {
	if w.isArmed(p, watchData) {
		b, _, err = w.conn.Get(p)
	} else {
		b, _, _, err = w.conn.GetW(p)
		if err == nil {
			w.arm(p, watchData)
		}
	}
	if errors.Is(err, zk.ErrNoNode) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read %s: %w", p, err)
	}
	return b, true, nil
}

// hostProvider hands the client its one configured server without
// resolving it: the dialer resolves at each connect, so a name that does
// not resolve yet is retried like a server that is down, and a name whose
// address changes is followed.
type hostProvider struct {
	server    string
	tried     bool
	connected bool
}

func (h *hostProvider) Init(servers []string) error {
	if len(servers) != 1 {
		return fmt.Errorf("want one server, got %d", len(servers))
	}
	h.server = servers[0]
	return nil
}

func (h *hostProvider) Len() int { return 1 }

// Next reports retryStart after a failed attempt, which makes the client
// pause a second before dialing again.
func (h *hostProvider) Next() (string, bool) {
	retry := h.tried && !h.connected
	h.tried, h.connected = true, false
	return h.server, retry
}

func (h *hostProvider) Connected() { h.connected = true }

// zkLogger sends the client's log lines to zap at debug level: they
// repeat every second while the server is down, and Run logs the state
// changes that matter.
type zkLogger struct{ s *zap.SugaredLogger }

func (l zkLogger) Printf(format string, args ...any) { l.s.Debugf(format, args...) }
