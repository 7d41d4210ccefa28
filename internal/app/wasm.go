package app

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/hxds/hxds/internal/api"
	"github.com/hxds/hxds/translate/input"
	"github.com/hxds/hxds/wasmfetch"
)

// wasmResolver is direct mode's fetcher: it fetches the remote module of
// every WasmPlugin of the system namespace into the cache, outside
// translation, and hands translation the results (Snapshot.WasmModules).
// A finished fetch schedules a translation.
type wasmResolver struct {
	cache   *wasmfetch.Cache
	log     *zap.Logger
	changed func()

	mu    sync.Mutex
	facts map[input.NamespacedName]*input.WasmModule
	// want is the request each plugin's fact is for (or being fetched for).
	want map[input.NamespacedName]string
}

func newWasmResolver(cache *wasmfetch.Cache, log *zap.Logger, changed func()) *wasmResolver {
	return &wasmResolver{cache: cache, log: log, changed: changed,
		facts: map[input.NamespacedName]*input.WasmModule{}, want: map[input.NamespacedName]string{}}
}

// sync starts a fetch for every plugin whose module request changed and
// forgets plugins that are gone.
func (r *wasmResolver) sync(ctx context.Context, snap *input.Snapshot, systemNamespace string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[input.NamespacedName]bool{}
	for nn, wp := range snap.WasmPlugins {
		if nn.Namespace != systemNamespace || wp.Spec.URL == "" {
			continue
		}
		req, ok := r.request(wp, snap)
		if !ok {
			continue
		}
		seen[nn] = true
		key := req.URL + "\x00" + req.SHA256 + "\x00" + string(req.PullSecret) + "\x00" + req.ResourceVersion + "\x00" + req.PullPolicy.String()
		if r.want[nn] == key {
			continue
		}
		r.want[nn] = key
		go r.fetch(ctx, nn, key, req)
	}
	for nn := range r.want {
		if !seen[nn] {
			delete(r.want, nn)
			delete(r.facts, nn)
		}
	}
}

// request is the fetch of wp's module; false for file:// modules.
func (r *wasmResolver) request(wp *api.WasmPlugin, snap *input.Snapshot) (wasmfetch.Request, bool) {
	spec := wp.Spec
	u := spec.URL
	if len(u) >= 7 && u[:7] == "file://" {
		return wasmfetch.Request{}, false
	}
	req := wasmfetch.Request{URL: u, SHA256: spec.SHA256, ResourceVersion: wp.ResourceVersion, Timeout: 30 * time.Second}
	switch spec.ImagePullPolicy {
	case api.PullPolicyIfNotPresent:
		req.PullPolicy = wasmfetch.PullIfNotPresent
	case api.PullPolicyAlways:
		req.PullPolicy = wasmfetch.PullAlways
	}
	if spec.ImagePullSecret != "" {
		req.PullSecret = []byte{}
		if s := snap.Secrets[input.NamespacedName{Namespace: wp.Namespace, Name: spec.ImagePullSecret}]; s != nil {
			if b := s.Data[".dockerconfigjson"]; len(b) > 0 {
				req.PullSecret = b
			} else if b := s.Data[".dockercfg"]; len(b) > 0 {
				req.PullSecret = b
			}
		}
	}
	return req, true
}

func (r *wasmResolver) fetch(ctx context.Context, nn input.NamespacedName, key string, req wasmfetch.Request) {
	path, sum, err := r.cache.Get(ctx, req)
	fact := &input.WasmModule{URL: req.URL, Checksum: sum}
	if err == nil {
		fact.WAMRAOT, _ = wasmfetch.IsWAMRAOT(path)
	}
	if err != nil {
		fact.Checksum, fact.Error = "", err.Error()
		r.log.Warn("wasm module fetch failed", zap.Stringer("plugin", nn), zap.String("url", req.URL), zap.Error(err))
	} else {
		r.log.Info("wasm module fetched", zap.Stringer("plugin", nn), zap.String("url", req.URL), zap.String("sha256", sum))
	}
	r.mu.Lock()
	if r.want[nn] != key { // superseded while fetching
		r.mu.Unlock()
		return
	}
	r.facts[nn] = fact
	r.mu.Unlock()
	r.changed()
}

// modules returns the current facts (a copy).
func (r *wasmResolver) modules() map[input.NamespacedName]*input.WasmModule {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[input.NamespacedName]*input.WasmModule, len(r.facts))
	for k, v := range r.facts {
		out[k] = v
	}
	return out
}
