package app

import (
	"time"

	"go.uber.org/zap"

	"github.com/hxds/hxds/discovery"
	"github.com/hxds/hxds/discovery/consul"
	"github.com/hxds/hxds/discovery/direct"
	"github.com/hxds/hxds/discovery/eureka"
	"github.com/hxds/hxds/discovery/nacos"
	"github.com/hxds/hxds/discovery/zookeeper"
	"github.com/hxds/hxds/internal/api"
	"github.com/hxds/hxds/translate/input"
)

// DefaultRegistryGrace is how long the last known instances of a registry
// service are kept when the registry goes away or lists nothing.
const DefaultRegistryGrace = 5 * time.Minute

// registryFactories are the registry types hxds watches (McpBridge type →
// watcher). Each discovery package adds its own.
var registryFactories = map[string]discovery.Factory{
	"consul":    consul.New,
	"eureka":    eureka.New,
	"nacos":     nacos.NewV1,
	"nacos2":    nacos.NewV2,
	"nacos3":    nacos.NewV2,
	"static":    direct.NewStatic,
	"zookeeper": zookeeper.New,
	"dns":       direct.NewDNS,
}

// registryListener connects the catalog to the process: an instance change
// goes straight to the endpoint path; a host that appears, leaves or
// changes shape schedules a translation.
type registryListener struct{ a *app }

func (l registryListener) EndpointsChanged(hosts []string) {
	// Before the first translation there are no targets yet: nothing is
	// re-encoded, and that translation reads the catalog itself.
	a := l.a
	a.registryPaths.Inc()
	n, err := a.pipeline.EDS.RegistryChanged(hosts)
	if err != nil {
		a.log.Error("registry endpoint update failed", zap.Error(err))
		return
	}
	a.log.Debug("registry endpoints updated without translation", zap.Int("hosts", len(hosts)), zap.Int("assignments", n))
}

// ShapesChanged schedules a translation. Triggering never blocks and is
// kept until the debouncer runs, so a change that races the first
// translation is not lost.
func (l registryListener) ShapesChanged() { l.a.debounce.Trigger() }

// reconcileRegistries runs the watchers of the McpBridge "default" in the
// system namespace (the only one Higress honours), with credentials from
// Secrets of that namespace.
func (a *app) reconcileRegistries(snap *input.Snapshot) {
	ns := a.cfg.Options.SystemNamespace
	bridge := snap.McpBridges[input.NamespacedName{Namespace: ns, Name: api.McpBridgeName}]
	secrets := func(name string) map[string][]byte {
		if s := snap.Secrets[input.NamespacedName{Namespace: ns, Name: name}]; s != nil {
			return s.Data
		}
		return nil
	}
	if err := a.registries.Apply(bridge, secrets); err != nil {
		a.log.Warn("some registries are not watched", zap.Error(err))
	}
}

// withRegistry is snap with the facts the resolvers contribute to
// translation: the catalog's hosts and, in Wasm direct mode, the fetched
// modules. snap is shared, so it is copied.
func (a *app) withRegistry(snap *input.Snapshot) *input.Snapshot {
	s := *snap
	s.Registry = a.catalog.Shapes()
	if a.wasm != nil {
		s.WasmModules = a.wasm.modules()
	}
	return &s
}

// wasmModule is the cached module file with checksum (direct mode's module
// server), or false.
func (a *app) wasmModule(checksum string) (string, bool) {
	if a.wasmCache == nil {
		return "", false
	}
	for _, m := range a.wasmCache.List() {
		if m.Checksum == checksum {
			return m.Path, true
		}
	}
	return "", false
}
