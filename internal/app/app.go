// Package app assembles the hxds process: a source feeds the store, the store
// feeds translation (debounced) and the endpoint path (immediately), both
// publish into the xDS cache, which the ADS server and the admin endpoint read.
package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/hxds/hxds/discovery"
	"github.com/hxds/hxds/internal/source/file"
	"github.com/hxds/hxds/internal/store"
	"github.com/hxds/hxds/translate"
	"github.com/hxds/hxds/translate/diag"
	"github.com/hxds/hxds/translate/input"
	"github.com/hxds/hxds/wasmfetch"
	"github.com/hxds/hxds/xds/admin"
	"github.com/hxds/hxds/xds/server"
)

// Config is everything `hxds serve` takes.
type Config struct {
	XDSAddress      string
	AdminAddress    string
	ConfigDir       string
	Options         input.Options
	DebounceHoldoff time.Duration
	DebounceMax     time.Duration
	// RegistryGrace is how long a registry's last known instances are kept
	// through an outage or an empty listing (0: not at all).
	RegistryGrace time.Duration
	// Registries are the watcher factories by McpBridge registry type;
	// nil means every type hxds supports.
	Registries map[string]discovery.Factory
	// WasmCacheDir is where direct mode (Options.WasmModuleServer set)
	// keeps fetched Wasm modules; empty is a directory under the system
	// temp dir.
	WasmCacheDir string
	// WasmInsecureRegistries are registry hosts fetched without TLS
	// verification ("*": all).
	WasmInsecureRegistries []string
	Log                    *zap.Logger
	// Listening, when set, is called with the bound addresses once both
	// servers listen (tests use port 0).
	Listening func(xds, admin net.Addr)
}

// server is one running hxds.
type app struct {
	cfg      Config
	log      *zap.Logger
	store    *store.Store
	pipeline *Pipeline
	debounce *store.Debouncer
	ready    atomic.Bool
	// built is closed after the first translation is in the cache. The xDS
	// server starts accepting streams only then: an Envoy that reconnects
	// to a restarted hxds must never see the empty set and drain everything.
	built     chan struct{}
	builtOnce sync.Once

	rebuildMu sync.Mutex
	// ctx ends with Run; fetches started by the resolvers use it.
	ctx context.Context

	mu       sync.Mutex
	source   *diag.Set
	loaded   []diag.Object
	last     *translate.Result
	edsPaths prometheus.Counter
	rejected prometheus.Gauge
	// logged holds the findings already logged, so each is logged once
	// when it appears and once when it is resolved.
	logged map[string]bool
	// acks says which Envoys ACKed what (Gateway API Programmed).
	acks ackCounter

	// catalog holds what the service registries discovered; registries
	// runs their watchers (McpBridge).
	catalog       *discovery.Catalog
	registries    *discovery.Reconciler
	registryPaths prometheus.Counter

	// wasm fetches modules in direct mode (nil otherwise).
	wasm      *wasmResolver
	wasmCache *wasmfetch.Cache
}

// Run serves until ctx is cancelled or a server fails.
func Run(ctx context.Context, cfg Config) error {
	log := cfg.Log
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	st := store.New()
	a := &app{
		cfg: cfg, log: log, store: st,
		pipeline: NewPipeline(cfg.Options, st.Slices, reg, log.Named("translate")),
		debounce: store.NewDebouncer(cfg.DebounceHoldoff, cfg.DebounceMax),
		source:   diag.NewSet(),
		built:    make(chan struct{}),
		logged:   map[string]bool{},
		edsPaths: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hxds_endpoint_only_updates_total",
			Help: "Input changes that touched only EndpointSlices and skipped translation.",
		}),
	}
	a.rejected = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "hxds_rejected_objects",
		Help: "Input objects currently rejected (not served) by the source or by translation, see /debug/status.",
	})
	a.registryPaths = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "hxds_registry_endpoint_updates_total",
		Help: "Registry instance changes pushed by the endpoint path without translation.",
	})
	reg.MustRegister(a.edsPaths, a.rejected, a.registryPaths)
	factories := cfg.Registries
	if factories == nil {
		factories = registryFactories
	}
	a.catalog = discovery.NewCatalog(cfg.RegistryGrace, registryListener{a})
	a.pipeline.EDS.SetRegistry(a.catalog.Instances)
	a.registries = discovery.NewReconciler(factories, a.catalog, log.Named("registry"))
	defer a.registries.Stop()
	reg.MustRegister(a.registries)
	if cfg.Options.WasmModuleServer != "" {
		dir := cfg.WasmCacheDir
		if dir == "" {
			dir = filepath.Join(os.TempDir(), "hxds-wasm")
		}
		c, err := wasmfetch.New(dir, wasmfetch.Options{InsecureRegistries: cfg.WasmInsecureRegistries})
		if err != nil {
			return fmt.Errorf("wasm module cache: %w", err)
		}
		a.wasmCache = c
		a.wasm = newWasmResolver(c, log.Named("wasm"), a.debounce.Trigger)
	}

	xdsLis, err := net.Listen("tcp", cfg.XDSAddress)
	if err != nil {
		return fmt.Errorf("listen for xDS on %s: %w", cfg.XDSAddress, err)
	}
	adminLis, err := net.Listen("tcp", cfg.AdminAddress)
	if err != nil {
		xdsLis.Close()
		return fmt.Errorf("listen for admin on %s: %w", cfg.AdminAddress, err)
	}

	ctx, cancel := context.WithCancel(ctx)
	a.ctx = ctx
	defer cancel()

	tracker := server.NewTracker(a.pipeline.Cache.GroupOf, reg, log.Named("xds"))
	a.acks = tracker
	xds := server.New(ctx, a.pipeline.Cache, tracker, log.Named("xds"))
	adminSrv, adminErr := admin.Serve(adminLis, admin.Handler(admin.Deps{
		Ready:        a.ready.Load,
		Dump:         a.pipeline.Cache,
		DefaultGroup: cfg.Options.Group,
		Connections:  tracker.Connections,
		Status:       a.status,
		GatewayAPI:   a.gatewayAPIStatus,
		Registries:   func() any { return a.registries.Statuses() },
		WasmModules:  a.wasmModule,
		Gatherer:     reg,
		Log:          log,
	}), log.Named("admin"))

	watcher, err := file.NewWatcher(cfg.ConfigDir, log.Named("source"))
	if err != nil {
		xdsLis.Close()
		adminSrv.Close()
		return fmt.Errorf("watch config dir: %w", err)
	}

	// Every goroutine is waited for before Run returns, so nothing publishes
	// or logs after it.
	var wg sync.WaitGroup
	errc := make(chan error, 3)
	go func() {
		select {
		case <-a.built:
			errc <- xds.Serve(xdsLis)
		case <-ctx.Done():
			xdsLis.Close()
		}
	}()
	go func() {
		if err := <-adminErr; err != nil {
			errc <- err
		}
	}()
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := watcher.Run(ctx, a.onSource); err != nil && !errors.Is(err, context.Canceled) {
			errc <- fmt.Errorf("config dir source: %w", err)
		}
	}()
	go func() {
		defer wg.Done()
		a.debounce.Run(ctx, a.rebuild)
	}()
	if cfg.Listening != nil {
		cfg.Listening(xdsLis.Addr(), adminLis.Addr())
	}

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	cancel()
	xds.Stop()
	shutdown, done := context.WithTimeout(context.Background(), 5*time.Second)
	defer done()
	_ = adminSrv.Shutdown(shutdown)
	wg.Wait()
	return runErr
}

// onSource receives each new content of the config directory. Endpoint-only
// changes go straight to the endpoint path; anything else schedules a
// (debounced) translation. The first load translates at once so that /ready
// turns true without waiting for the debounce.
func (a *app) onSource(res *file.Result) {
	objects := make(map[input.Key]runtime.Object, len(res.Objects))
	for _, o := range res.Objects {
		objects[o.Key] = o.Obj
	}
	a.mu.Lock()
	a.source, a.loaded = res.Problems, Loaded(res)
	a.mu.Unlock()
	a.countRejected()

	change := a.store.Replace(objects)
	if change.Config || !a.ready.Load() {
		snap := a.store.Snapshot()
		a.reconcileRegistries(snap)
		if a.wasm != nil {
			a.wasm.sync(a.ctx, snap, a.cfg.Options.SystemNamespace)
		}
	}
	switch {
	case !a.ready.Load():
		a.rebuild()
	case change.Config:
		a.debounce.Trigger()
	case len(change.EndpointServices) > 0:
		a.edsPaths.Inc()
		n, err := a.pipeline.EDS.ServicesChanged(change.EndpointServices)
		if err != nil {
			a.log.Error("endpoint update failed", zap.Error(err))
			return
		}
		a.log.Info("endpoints updated without translation",
			zap.Int("services", len(change.EndpointServices)), zap.Int("assignments", n))
	}
}

// rebuild runs a full translation of the current store. Rebuilds are
// serialized (the first load and the debouncer may both run one), and each
// reads the inputs only once it runs, so the last to publish is the newest.
func (a *app) rebuild() {
	a.rebuildMu.Lock()
	defer a.rebuildMu.Unlock()
	res, err := a.pipeline.Rebuild(a.withRegistry(a.store.Snapshot()))
	if err != nil {
		a.log.Error("translation failed; previous configuration kept", zap.Error(err))
		return
	}
	a.mu.Lock()
	a.last = res
	a.mu.Unlock()
	a.countRejected()
	a.ready.Store(true)
	a.builtOnce.Do(func() { close(a.built) })
}

// countRejected updates hxds_rejected_objects (documents the source could
// not load plus objects translation rejected: an object rejected by the
// source never reaches translation, so nothing is counted twice) and logs
// findings that appeared or were resolved since the last call.
func (a *app) countRejected() {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := a.source.Rejected()
	if a.last != nil {
		n += a.last.Diagnostics.Rejected()
	}
	a.rejected.Set(float64(n))

	current := map[string]bool{}
	for _, st := range Status(a.source, a.loaded, a.last) {
		for _, f := range st.Findings {
			line := fmt.Sprintf("%s: %s %s: %s (%s)", st.Object, f.Severity, f.Field, f.Message, f.Reason)
			current[line] = true
			if a.logged[line] {
				continue
			}
			fields := []zap.Field{zap.Stringer("object", st.Object), zap.String("reason", f.Reason),
				zap.String("field", f.Field), zap.String("message", f.Message), zap.Bool("served", st.Accepted)}
			if f.Severity == diag.Error {
				a.log.Warn("input problem", fields...)
			} else {
				a.log.Info("input finding", fields...)
			}
		}
	}
	for line := range a.logged {
		if !current[line] {
			a.log.Info("input problem resolved", zap.String("finding", line))
		}
	}
	a.logged = current
}

func (a *app) gatewayAPIStatus() any {
	a.mu.Lock()
	last := a.last
	a.mu.Unlock()
	if last == nil || last.GatewayAPI == nil {
		return struct{}{}
	}
	group := a.cfg.Options.Group
	return withProgrammed(last.GatewayAPI, a.acks, group, a.pipeline.Cache.Version(group, resourcev3.ListenerType))
}

func (a *app) status() []diag.Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	return Status(a.source, a.loaded, a.last)
}
