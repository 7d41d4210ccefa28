package ir

import (
	"sort"

	"github.com/hxds/hxds/translate/diag"
)

// WasmPhase is where a Wasm plugin runs in the HTTP filter chain.
type WasmPhase string

// Wasm plugin phases (Higress/Istio WasmPlugin phase).
const (
	// WasmPhaseAuthn runs after CORS, before access control.
	WasmPhaseAuthn WasmPhase = "AUTHN"
	// WasmPhaseAuthz runs before the RBAC and rate-limit filters.
	WasmPhaseAuthz WasmPhase = "AUTHZ"
	// WasmPhaseStats runs after them.
	WasmPhaseStats WasmPhase = "STATS"
	// WasmPhaseUnspecified runs last before the router.
	WasmPhaseUnspecified WasmPhase = ""
)

// phaseRank orders the phases in the filter chain.
func (p WasmPhase) rank() int {
	switch p {
	case WasmPhaseAuthn:
		return 0
	case WasmPhaseAuthz:
		return 1
	case WasmPhaseStats:
		return 2
	}
	return 3
}

// WasmPlugin is one Wasm HTTP filter, delivered over ECDS under Name.
type WasmPlugin struct {
	// Name is the ECDS resource and HTTP filter name, <ns>.<name>.
	Name  string    `json:"name"`
	Phase WasmPhase `json:"phase,omitempty"`
	// Priority orders plugins within a phase, higher first; nil is lowest.
	Priority *int32 `json:"priority,omitempty"`
	// FailOpen: a plugin that fails to load (or crashes) lets requests
	// through instead of failing them.
	FailOpen bool `json:"failOpen,omitempty"`
	// RootID is the plugin's root context id (pluginName).
	RootID string `json:"rootID,omitempty"`
	// Configuration is the JSON configuration; empty means none.
	Configuration string `json:"configuration,omitempty"`
	// LocalFile is the module path for file:// URLs; otherwise RemoteURL
	// (oci://, http://, https://) and SHA256 (may be empty) are set.
	LocalFile string `json:"localFile,omitempty"`
	RemoteURL string `json:"remoteURL,omitempty"`
	SHA256    string `json:"sha256,omitempty"`
	// RemoteCluster is the cluster Envoy fetches RemoteURL through (direct
	// mode: hxds's module server); empty leaves the placeholder the
	// hxds-agent rewrites.
	RemoteCluster string `json:"remoteCluster,omitempty"`
	// AllowAll serves an allow-all filter instead of the module (a FAIL_OPEN
	// plugin whose module is not available in direct mode).
	AllowAll bool `json:"allowAll,omitempty"`
	// WAMRAOT runs the module on Envoy's WAMR runtime with precompiled
	// code allowed (a module compiled ahead of time for WAMR).
	WAMRAOT bool `json:"wamrAOT,omitempty"`
	// Env are VM environment variables with their values, HostEnv the
	// names of those the VM takes from the gateway process.
	Env     map[string]string `json:"env,omitempty"`
	HostEnv []string          `json:"hostEnv,omitempty"`
	Source  diag.Object       `json:"source"`
}

// SortWasmPlugins puts plugins in filter-chain order: by phase, then
// priority descending (nil lowest), then name.
func SortWasmPlugins(ps []*WasmPlugin) {
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if ra, rb := a.Phase.rank(), b.Phase.rank(); ra != rb {
			return ra < rb
		}
		if pa, pb := prio(a.Priority), prio(b.Priority); pa != pb {
			return pa > pb
		}
		return a.Name < b.Name
	})
}

func prio(p *int32) int64 {
	if p == nil {
		return -1 << 40 // below every int32
	}
	return int64(*p)
}

// AddWasmPlugin registers a plugin for every HTTP filter chain.
func (b *Builder) AddWasmPlugin(p *WasmPlugin) { b.wasm = append(b.wasm, p) }
