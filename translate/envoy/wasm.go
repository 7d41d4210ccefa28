package envoy

import (
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	compositev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/composite/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	wasmfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/hxds/hxds/translate/ir"
)

// Type URLs an ECDS-configured Wasm filter accepts: the Wasm filter, the
// allow-all RBAC filter a fetcher substitutes for a FAIL_OPEN module that
// cannot be loaded, and (FAIL_OPEN) the no-op Composite default config.
const (
	WasmTypeURL      = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
	RBACTypeURL      = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"
	CompositeTypeURL = "type.googleapis.com/envoy.extensions.filters.http.composite.v3.Composite"
)

// Wasm VM settings.
const (
	wasmRuntime = "envoy.wasm.runtime.v8"
	wamrRuntime = "envoy.wasm.runtime.wamr"
	// RemoteCodeCluster is the placeholder cluster of remote module
	// sources, as Istio sets it: the agent (or direct mode) replaces the
	// remote source with a local file before Envoy sees it, so it never
	// names a real cluster.
	RemoteCodeCluster = "_"
	// NoSHA256 stands for "no checksum given": Envoy requires a sha256 on
	// remote sources, and the fetchers treat "nil" as empty (Istio).
	NoSHA256          = "nil"
	remoteCodeTimeout = 30 * time.Second
)

// buildExtensionConfig is the ECDS resource of a plugin (Istio's
// model/extensions.go shape, higress-semantics §7.3).
func buildExtensionConfig(p *ir.WasmPlugin) *corev3.TypedExtensionConfig {
	if p.AllowAll {
		// What the agent substitutes for a FAIL_OPEN module it cannot
		// load (§7.5): an RBAC filter without rules lets everything through.
		return &corev3.TypedExtensionConfig{Name: p.Name, TypedConfig: mustAny(&rbacv3.RBAC{})}
	}
	vm := &wasmv3.VmConfig{Runtime: wasmRuntime}
	if p.WAMRAOT {
		vm.Runtime, vm.AllowPrecompiled = wamrRuntime, true
	}
	if p.LocalFile != "" {
		vm.Code = &corev3.AsyncDataSource{Specifier: &corev3.AsyncDataSource_Local{Local: &corev3.DataSource{
			Specifier: &corev3.DataSource_Filename{Filename: p.LocalFile},
		}}}
	} else {
		sha := p.SHA256
		if sha == "" {
			sha = NoSHA256
		}
		vm.Code = &corev3.AsyncDataSource{Specifier: &corev3.AsyncDataSource_Remote{Remote: &corev3.RemoteDataSource{
			HttpUri: &corev3.HttpUri{
				Uri:              p.RemoteURL,
				HttpUpstreamType: &corev3.HttpUri_Cluster{Cluster: remoteCluster(p)},
				Timeout:          durationpb.New(remoteCodeTimeout),
			},
			Sha256: sha,
		}}}
	}
	if len(p.Env) > 0 || len(p.HostEnv) > 0 {
		vm.EnvironmentVariables = &wasmv3.EnvironmentVariables{KeyValues: p.Env, HostEnvKeys: p.HostEnv}
	}
	pc := &wasmv3.PluginConfig{
		Name:     p.Name,
		RootId:   p.RootID,
		Vm:       &wasmv3.PluginConfig_VmConfig{VmConfig: vm},
		FailOpen: p.FailOpen, //nolint:staticcheck // what Istio 1.19 sets and the agent reads
	}
	if p.Configuration != "" {
		pc.Configuration = mustAny(wrapperspb.String(p.Configuration))
	}
	return &corev3.TypedExtensionConfig{
		Name:        p.Name,
		TypedConfig: mustAny(&wasmfilterv3.Wasm{Config: pc}),
	}
}

// compositeConfig is the FAIL_OPEN default: an empty Composite filter does nothing.
var compositeConfig = mustAny(&compositev3.Composite{})

// wasmFilter references a plugin's ECDS resource from an HCM (§7.4). The
// listener waits for the resource (initial_fetch_timeout 0); FAIL_OPEN
// plugins carry a no-op default, applied only if the resource goes away.
// Only the name is referenced: a configuration change never touches the
// listener.
func wasmFilter(p *ir.WasmPlugin) *hcmv3.HttpFilter {
	src := &corev3.ExtensionConfigSource{
		ConfigSource: rdsSource(),
		TypeUrls:     []string{WasmTypeURL, RBACTypeURL},
	}
	if p.FailOpen {
		src.DefaultConfig = compositeConfig
		src.ApplyDefaultConfigWithoutWarming = false
		src.TypeUrls = append(src.TypeUrls, CompositeTypeURL)
	}
	return &hcmv3.HttpFilter{Name: p.Name, ConfigType: &hcmv3.HttpFilter_ConfigDiscovery{ConfigDiscovery: src}}
}

// wasmFilters returns the HTTP filters of the plugins of one phase, in
// order (the IR list is sorted).
func wasmFilters(plugins []*ir.WasmPlugin, phases ...ir.WasmPhase) []*hcmv3.HttpFilter {
	var out []*hcmv3.HttpFilter
	for _, p := range plugins {
		for _, ph := range phases {
			if p.Phase == ph {
				out = append(out, wasmFilter(p))
			}
		}
	}
	return out
}

func remoteCluster(p *ir.WasmPlugin) string {
	if p.RemoteCluster != "" {
		return p.RemoteCluster
	}
	return RemoteCodeCluster
}
