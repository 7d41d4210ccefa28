package api

import (
	"encoding/json"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// WasmPlugin group, version and kind (extensions.higress.io/v1alpha1).
const (
	ExtensionsGroup = "extensions.higress.io"
	WasmPluginKind  = "WasmPlugin"
)

// WasmPluginGVK is the WasmPlugin's group/version/kind.
var WasmPluginGVK = schema.GroupVersionKind{Group: ExtensionsGroup, Version: "v1alpha1", Kind: WasmPluginKind}

// WasmPlugin is Higress's copy of Istio's WasmPlugin with per-scope
// configuration (higress-semantics §7.1). Only plugins in the system
// namespace are honoured.
type WasmPlugin struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              WasmPluginSpec `json:"spec,omitempty"`
}

// Enum values of the WasmPlugin fields, as the CRD spells them.
const (
	PullPolicyUnspecified  = "UNSPECIFIED_POLICY"
	PullPolicyIfNotPresent = "IfNotPresent"
	PullPolicyAlways       = "Always"

	PhaseUnspecified = "UNSPECIFIED_PHASE"
	PhaseAuthn       = "AUTHN"
	PhaseAuthz       = "AUTHZ"
	PhaseStats       = "STATS"

	FailClose = "FAIL_CLOSE"
	FailOpen  = "FAIL_OPEN"

	EnvInline = "INLINE"
	EnvHost   = "HOST"

	RouteTypeHTTP = "HTTP"
	RouteTypeGRPC = "GRPC"
)

// WasmPluginSpec is the WasmPlugin's spec. Struct-typed fields keep
// whatever the user wrote (unknown fields preserved).
type WasmPluginSpec struct {
	// URL of the module: oci:// (the default without a scheme), http://,
	// https:// or file:// (a path inside the gateway container).
	URL string `json:"url,omitempty"`
	// SHA256 is the expected checksum of the module (hex).
	SHA256          string `json:"sha256,omitempty"`
	ImagePullPolicy string `json:"imagePullPolicy,omitempty"`
	// ImagePullSecret names a docker-config Secret in the plugin's namespace.
	ImagePullSecret string `json:"imagePullSecret,omitempty"`
	// VerificationKey is accepted but not enforced (as in Higress).
	VerificationKey string `json:"verificationKey,omitempty"`
	// PluginConfig, when set, is the whole configuration: DefaultConfig
	// and MatchRules are then ignored.
	PluginConfig map[string]any `json:"pluginConfig,omitempty"`
	// PluginName is the Envoy root_id.
	PluginName   string    `json:"pluginName,omitempty"`
	Phase        string    `json:"phase,omitempty"`
	Priority     *int32    `json:"priority,omitempty"`
	FailStrategy string    `json:"failStrategy,omitempty"`
	VMConfig     *VMConfig `json:"vmConfig,omitempty"`
	// DefaultConfig is the global configuration (Higress extension).
	DefaultConfig map[string]any `json:"defaultConfig,omitempty"`
	// MatchRules are per-route, per-domain or per-service configurations.
	MatchRules []MatchRule `json:"matchRules,omitempty"`
	// DefaultConfigDisable drops DefaultConfig: the plugin runs only
	// where a match rule applies.
	DefaultConfigDisable *bool `json:"defaultConfigDisable,omitempty"`
}

// VMConfig configures the Wasm VM.
type VMConfig struct {
	Env []EnvVar `json:"env,omitempty"`
}

// EnvVar is one VM environment variable: an inline value, or (HOST) the
// value of the gateway process's variable of the same name.
type EnvVar struct {
	Name      string `json:"name"`
	ValueFrom string `json:"valueFrom,omitempty"`
	Value     string `json:"value,omitempty"`
}

// MatchRule is the configuration of the plugin for some routes (Ingress
// or Gateway API route names), domains or services.
type MatchRule struct {
	Ingress       []string       `json:"ingress,omitempty"`
	Domain        []string       `json:"domain,omitempty"`
	Service       []string       `json:"service,omitempty"`
	Config        map[string]any `json:"config,omitempty"`
	ConfigDisable bool           `json:"configDisable,omitempty"`
	RouteType     string         `json:"routeType,omitempty"`
}

// DeepCopyObject implements runtime.Object with a JSON round trip, as
// McpBridge does.
func (w *WasmPlugin) DeepCopyObject() runtime.Object {
	if w == nil {
		return nil
	}
	b, err := json.Marshal(w)
	if err != nil {
		panic(err) // cannot happen: every field marshals
	}
	out := &WasmPlugin{}
	if err := json.Unmarshal(b, out); err != nil {
		panic(err)
	}
	return out
}
