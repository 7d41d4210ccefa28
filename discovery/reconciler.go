package discovery

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/hxds/hxds/internal/api"
)

// Secrets looks up the data of a Secret in the system namespace (nil when
// it does not exist).
type Secrets func(name string) map[string][]byte

// Reconciler runs one watcher per McpBridge registry (key "<type>/<name>",
// as Higress): a new registry starts a watcher, a changed one is restarted,
// a removed one stops and its services leave the catalog at once. It also
// feeds the watchers' health to the catalog (outage grace) and keeps what
// /registry/watcherStatus and the metrics show.
type Reconciler struct {
	factories map[string]Factory
	catalog   *Catalog
	log       *zap.Logger

	mu      sync.Mutex
	running map[string]*running
	// failed holds registries whose watcher could not be created, with why.
	failed map[string]failedRegistry
	stop   chan struct{}
	done   chan struct{}
}

type running struct {
	cfg     Config
	w       Watcher
	cancel  context.CancelFunc
	exited  chan struct{}
	runErr  error // set when Run returned an error
	healthy bool  // last health told to the catalog
}

type failedRegistry struct {
	typ string
	err string
}

// NewReconciler returns a reconciler creating watchers with factories (by
// registry type) that publish into catalog.
func NewReconciler(factories map[string]Factory, catalog *Catalog, log *zap.Logger) *Reconciler {
	r := &Reconciler{
		factories: factories, catalog: catalog, log: log,
		running: map[string]*running{}, failed: map[string]failedRegistry{},
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	go r.watchHealth()
	return r
}

// Apply makes the running watchers those of bridge (nil: none). Creating
// a watcher does not contact its registry, so Apply returns at once; the
// error lists the registries that could not be started (the others run).
func (r *Reconciler) Apply(bridge *api.McpBridge, secrets Secrets) error {
	want := map[string]Config{}
	var errs []error
	failed := map[string]failedRegistry{}
	if bridge != nil {
		for i, reg := range bridge.Spec.Registries {
			key := reg.Key()
			if _, dup := want[key]; dup {
				errs = append(errs, fmt.Errorf("registries[%d] %s: a registry with this type and name comes earlier; ignored", i, key))
				continue
			}
			cfg := Config{Registry: reg}
			if reg.AuthSecretName != "" && secrets != nil {
				data := secrets(reg.AuthSecretName)
				if data == nil {
					r.log.Warn("registry auth secret not found", zap.String("registry", key), zap.String("secret", reg.AuthSecretName))
				}
				cfg.Auth = Auth{
					NacosUsername: string(data["nacosUsername"]),
					NacosPassword: string(data["nacosPassword"]),
					ConsulToken:   string(data["consulToken"]),
				}
			}
			want[key] = cfg
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for key, run := range r.running {
		if cfg, ok := want[key]; ok && reflect.DeepEqual(cfg, run.cfg) {
			continue
		}
		r.stopLocked(key, run)
		if _, stays := want[key]; !stays {
			r.catalog.Drop(key)
			r.log.Info("registry removed", zap.String("registry", key))
		}
	}
	for _, key := range slices.Sorted(maps.Keys(want)) {
		if _, ok := r.running[key]; ok {
			continue
		}
		cfg := want[key]
		factory := r.factories[cfg.Registry.Type]
		if factory == nil {
			err := fmt.Errorf("registry %s: type %q is not supported", key, cfg.Registry.Type)
			errs, failed[key] = append(errs, err), failedRegistry{cfg.Registry.Type, err.Error()}
			continue
		}
		w, err := factory(cfg, r.catalog.Publisher(key), r.log.Named(key))
		if err != nil {
			err = fmt.Errorf("registry %s: %w", key, err)
			errs, failed[key] = append(errs, err), failedRegistry{cfg.Registry.Type, err.Error()}
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		run := &running{cfg: cfg, w: w, cancel: cancel, exited: make(chan struct{}), healthy: true}
		r.running[key] = run
		go func() {
			defer close(run.exited)
			if err := w.Run(ctx); err != nil {
				r.log.Error("registry watcher stopped", zap.String("registry", key), zap.Error(err))
				r.mu.Lock()
				run.runErr = err
				r.mu.Unlock()
			}
		}()
		r.log.Info("registry watcher started", zap.String("registry", key), zap.String("domain", cfg.Registry.Domain), zap.Uint32("port", cfg.Registry.Port))
	}
	r.failed = failed
	return errors.Join(errs...)
}

// stopLocked cancels a watcher and waits for it to return. r.mu is held;
// watchers never take it, so waiting cannot deadlock.
func (r *Reconciler) stopLocked(key string, run *running) {
	run.cancel()
	delete(r.running, key)
	r.mu.Unlock()
	<-run.exited
	r.mu.Lock()
}

// Stop stops every watcher.
func (r *Reconciler) Stop() {
	close(r.stop)
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	for key, run := range r.running {
		r.stopLocked(key, run)
	}
}

// watchHealth passes watcher health changes to the catalog, which holds an
// unhealthy registry's services for the grace period.
func (r *Reconciler) watchHealth() {
	defer close(r.done)
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
		type change struct {
			key     string
			healthy bool
		}
		var changes []change
		r.mu.Lock()
		for key, run := range r.running {
			st := run.w.Status()
			// Before the first listing a registry has nothing to hold.
			healthy := st.Healthy || !st.Ready
			if healthy != run.healthy {
				run.healthy = healthy
				changes = append(changes, change{key, healthy})
			}
		}
		r.mu.Unlock()
		for _, c := range changes {
			r.log.Info("registry health changed", zap.String("registry", c.key), zap.Bool("healthy", c.healthy))
			r.catalog.SetHealthy(c.key, c.healthy)
		}
	}
}

// WatcherStatus is one registry in /registry/watcherStatus: Higress's four
// fields, then what hxds adds.
type WatcherStatus struct {
	Name    string `json:"name"`
	Type    string `json:"type"`
	Healthy bool   `json:"healthy"`
	Ready   bool   `json:"ready"`

	Domain    string            `json:"domain,omitempty"`
	Port      uint32            `json:"port,omitempty"`
	Services  int               `json:"services"`
	Instances int               `json:"instances"`
	LastSync  *time.Time        `json:"lastSync,omitempty"`
	LastError string            `json:"lastError,omitempty"`
	Errors    uint64            `json:"errors"`
	Held      map[string]string `json:"held,omitempty"`
}

// Statuses lists every registry of the McpBridge, by key order.
func (r *Reconciler) Statuses() []WatcherStatus {
	counts := r.catalog.Counts()
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]WatcherStatus, 0, len(r.running)+len(r.failed))
	for key, run := range r.running {
		st := run.w.Status()
		c := counts[key]
		ws := WatcherStatus{
			Name: run.cfg.Registry.Name, Type: reportedType(run.cfg.Registry.Type),
			Healthy: st.Healthy, Ready: st.Ready,
			Domain: run.cfg.Registry.Domain, Port: run.cfg.Registry.Port,
			Services: c.Services, Instances: c.Instances, LastError: st.LastError, Errors: st.Errors, Held: c.Held,
		}
		if !st.LastSync.IsZero() {
			ls := st.LastSync.UTC()
			ws.LastSync = &ls
		}
		if run.runErr != nil {
			ws.Healthy, ws.LastError = false, run.runErr.Error()
		}
		out = append(out, ws)
	}
	for key, f := range r.failed {
		out = append(out, WatcherStatus{Name: nameOf(key), Type: f.typ, LastError: f.err})
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Type+"/"+out[i].Name < out[j].Type+"/"+out[j].Name
	})
	return out
}

// reportedType is the type Higress reports: nacos2 for nacos3 too.
func reportedType(t string) string {
	if t == "nacos3" {
		return "nacos2"
	}
	return t
}

func nameOf(key string) string {
	for i := range key {
		if key[i] == '/' {
			return key[i+1:]
		}
	}
	return key
}
