// Package wasm is the front-end of Higress WasmPlugins (higress-semantics
// §7): each plugin in the system namespace becomes an IR Wasm plugin, which
// the Envoy builder serves as an ECDS resource <ns>.<name> referenced by
// every gateway HCM. The plugin's configuration is computed here as Higress
// does (pluginConfig, or defaultConfig plus `_rules_` from matchRules), with
// ${secret.…} templates expanded. Fetching remote modules is not done here:
// the ECDS resource carries a remote data source and the fetch hints
// (ISTIO_META_WASM_*) the agent or direct mode acts on.
package wasm

import (
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/hxds/hxds/internal/api"
	"github.com/hxds/hxds/translate/diag"
	"github.com/hxds/hxds/translate/input"
	"github.com/hxds/hxds/translate/ir"
	"github.com/hxds/hxds/translate/template"
)

// Environment variables that carry fetch hints to the module fetcher, as
// Istio names them; the fetcher strips them before Envoy sees the VM config.
const (
	EnvPullSecret      = "ISTIO_META_WASM_IMAGE_PULL_SECRET"
	EnvPullPolicy      = "ISTIO_META_WASM_IMAGE_PULL_POLICY"
	EnvResourceVersion = "ISTIO_META_WASM_PLUGIN_RESOURCE_VERSION"
)

// Keys Higress adds to the plugin configuration (read by the plugin SDKs).
const (
	keyRules        = "_rules_"
	keyMatchRoute   = "_match_route_"
	keyMatchDomain  = "_match_domain_"
	keyMatchService = "_match_service_"
)

// ResourceName is the ECDS resource (and HTTP filter) name of a plugin.
func ResourceName(namespace, name string) string { return namespace + "." + name }

// Translate adds every servable WasmPlugin of the system namespace to b and
// reports every WasmPlugin.
func Translate(snap *input.Snapshot, opts input.Options, b *ir.Builder, d *diag.Set) {
	for _, nn := range input.SortedKeys(snap.WasmPlugins) {
		wp := snap.WasmPlugins[nn]
		obj := diag.Object{Kind: api.WasmPluginKind, Namespace: nn.Namespace, Name: nn.Name}
		if nn.Namespace != opts.SystemNamespace {
			d.Ignore(obj, "ignored-wasmplugin", "only WasmPlugins in namespace %s are served, as in Higress", opts.SystemNamespace)
			continue
		}
		p, ok := convert(wp, snap, opts, obj, d)
		if !ok {
			continue
		}
		d.Accept(obj)
		b.AddWasmPlugin(p)
		if p.RemoteCluster == ModuleServerCluster {
			if be := ModuleServerBackend(opts.WasmModuleServer); be != nil {
				b.AddBackend(be)
			}
		}
	}
}

// convert builds the IR plugin; false when the plugin is not served (the
// reason is reported).
func convert(wp *api.WasmPlugin, snap *input.Snapshot, opts input.Options, obj diag.Object, d *diag.Set) (*ir.WasmPlugin, bool) {
	spec := &wp.Spec
	p := &ir.WasmPlugin{
		Name:     ResourceName(wp.Namespace, wp.Name),
		RootID:   spec.PluginName,
		Priority: spec.Priority,
		Source:   obj,
	}
	switch spec.Phase {
	case "", api.PhaseUnspecified:
		p.Phase = ir.WasmPhaseUnspecified
	case api.PhaseAuthn:
		p.Phase = ir.WasmPhaseAuthn
	case api.PhaseAuthz:
		p.Phase = ir.WasmPhaseAuthz
	case api.PhaseStats:
		p.Phase = ir.WasmPhaseStats
	default:
		d.Reject(obj, "invalid-wasmplugin", "spec.phase", "unknown phase %q (UNSPECIFIED_PHASE, AUTHN, AUTHZ or STATS)", spec.Phase)
		return nil, false
	}
	switch spec.FailStrategy {
	case "", api.FailClose:
	case api.FailOpen:
		p.FailOpen = true
	default:
		d.Reject(obj, "invalid-wasmplugin", "spec.failStrategy", "unknown failStrategy %q (FAIL_CLOSE or FAIL_OPEN)", spec.FailStrategy)
		return nil, false
	}
	switch spec.ImagePullPolicy {
	case "", api.PullPolicyUnspecified, api.PullPolicyIfNotPresent, api.PullPolicyAlways:
	default:
		d.Reject(obj, "invalid-wasmplugin", "spec.imagePullPolicy", "unknown imagePullPolicy %q (UNSPECIFIED_POLICY, IfNotPresent or Always)", spec.ImagePullPolicy)
		return nil, false
	}

	if !code(p, spec.URL, obj, d) {
		return nil, false
	}
	if !env(p, wp, snap, obj, d) {
		return nil, false
	}
	if opts.WasmModuleServer != "" && p.RemoteURL != "" {
		direct(p, snap.WasmModules[input.NamespacedName{Namespace: wp.Namespace, Name: wp.Name}], spec.URL, opts.WasmModuleServer, obj, d)
	}

	cfg, ok := configuration(spec, obj, d)
	if !ok {
		return nil, false
	}
	if cfg == nil && spec.PluginConfig == nil && spec.DefaultConfigDisable != nil && *spec.DefaultConfigDisable {
		d.Ignore(obj, "wasmplugin-disabled", "defaultConfigDisable is set and no match rule applies: the plugin is not served, as in Higress")
		return nil, false
	}
	if len(cfg) > 0 {
		cfg = expandTemplates(cfg, snap, opts, obj, d).(map[string]any)
		raw, err := json.Marshal(cfg)
		if err != nil {
			d.Reject(obj, "invalid-wasmplugin", "spec", "configuration cannot be encoded as JSON: %v", err)
			return nil, false
		}
		p.Configuration = string(raw)
	}
	return p, true
}

// code sets where the module comes from.
func code(p *ir.WasmPlugin, raw string, obj diag.Object, d *diag.Set) bool {
	if raw == "" {
		d.Reject(obj, "invalid-wasmplugin", "spec.url", "url is required")
		return false
	}
	u, err := url.Parse(raw)
	if err != nil {
		d.Reject(obj, "invalid-wasmplugin", "spec.url", "invalid url: %v", err)
		return false
	}
	switch u.Scheme {
	case "file":
		p.LocalFile = strings.TrimPrefix(raw, "file://")
		if p.LocalFile == "" {
			d.Reject(obj, "invalid-wasmplugin", "spec.url", "file:// url names no file")
			return false
		}
		return true
	case "":
		// No scheme is an OCI image reference, as in Istio.
		u, err = url.Parse("oci://" + raw)
		if err != nil {
			d.Reject(obj, "invalid-wasmplugin", "spec.url", "invalid url: %v", err)
			return false
		}
	case "oci", "http", "https":
	default:
		d.Reject(obj, "invalid-wasmplugin", "spec.url", "unsupported url scheme %q (oci, http, https or file)", u.Scheme)
		return false
	}
	p.RemoteURL = u.String()
	return true
}

// env sets the VM environment: user variables plus, for remote modules,
// the fetch hints.
func env(p *ir.WasmPlugin, wp *api.WasmPlugin, snap *input.Snapshot, obj diag.Object, d *diag.Set) bool {
	spec := &wp.Spec
	if p.RemoteURL != "" {
		p.SHA256 = spec.SHA256
	}
	kv := map[string]string{}
	if p.RemoteURL != "" {
		if spec.ImagePullSecret != "" {
			kv[EnvPullSecret] = pullSecret(wp, snap, obj, d)
		}
		if spec.ImagePullPolicy != "" && spec.ImagePullPolicy != api.PullPolicyUnspecified {
			kv[EnvPullPolicy] = spec.ImagePullPolicy
		}
		kv[EnvResourceVersion] = wp.ResourceVersion
	}
	if spec.VMConfig != nil {
		for i, e := range spec.VMConfig.Env {
			field := fmt.Sprintf("spec.vmConfig.env[%d]", i)
			if e.Name == "" {
				d.Reject(obj, "invalid-wasmplugin", field+".name", "environment variable without a name")
				return false
			}
			switch e.ValueFrom {
			case "", api.EnvInline:
				kv[e.Name] = e.Value
			case api.EnvHost:
				p.HostEnv = append(p.HostEnv, e.Name)
			default:
				d.Reject(obj, "invalid-wasmplugin", field+".valueFrom", "unknown valueFrom %q (INLINE or HOST)", e.ValueFrom)
				return false
			}
		}
	}
	if len(kv) > 0 {
		p.Env = kv
	}
	return true
}

// pullSecret is the docker config JSON of the plugin's imagePullSecret,
// empty (and reported) when it cannot be read: the fetcher then fails the
// pull rather than pulling anonymously.
func pullSecret(wp *api.WasmPlugin, snap *input.Snapshot, obj diag.Object, d *diag.Set) string {
	ref := input.NamespacedName{Namespace: wp.Namespace, Name: wp.Spec.ImagePullSecret}
	s := snap.Secrets[ref]
	if s == nil {
		d.Warn(obj, "missing-pull-secret", "spec.imagePullSecret", "Secret %s not found; the module cannot be pulled with it", ref)
		return ""
	}
	for _, key := range []string{corev1.DockerConfigJsonKey, corev1.DockerConfigKey} {
		if v, ok := s.Data[key]; ok {
			return string(v)
		}
		if v, ok := s.StringData[key]; ok {
			return v
		}
	}
	d.Warn(obj, "missing-pull-secret", "spec.imagePullSecret", "Secret %s has no %s key; the module cannot be pulled with it", ref, corev1.DockerConfigJsonKey)
	return ""
}

// configuration computes the plugin configuration as Higress's
// convertIstioWasmPlugin does (§7.2), fixing routeType GRPC (§13.1):
// each ingress entry is prefixed with GRPC/. The result is a fresh tree
// (user maps are copied, never modified). nil means no configuration.
func configuration(spec *api.WasmPluginSpec, obj diag.Object, d *diag.Set) (map[string]any, bool) {
	if spec.PluginConfig != nil {
		return deepCopy(spec.PluginConfig), true
	}
	var rules []any
	for i, r := range spec.MatchRules {
		if r.ConfigDisable {
			continue
		}
		field := fmt.Sprintf("spec.matchRules[%d]", i)
		rule := deepCopy(r.Config)
		if rule == nil {
			rule = map[string]any{}
		}
		var prefix string
		switch r.RouteType {
		case "", api.RouteTypeHTTP:
		case api.RouteTypeGRPC:
			prefix = "GRPC/"
		default:
			d.Reject(obj, "invalid-wasmplugin", field+".routeType", "unknown routeType %q (HTTP or GRPC)", r.RouteType)
			return nil, false
		}
		matched := false
		if len(r.Ingress) > 0 {
			routes := make([]any, 0, len(r.Ingress))
			for _, ing := range r.Ingress {
				routes = append(routes, prefix+ing)
			}
			rule[keyMatchRoute] = routes
			matched = true
		}
		if len(r.Domain) > 0 {
			rule[keyMatchDomain] = strings2any(r.Domain)
			matched = true
		}
		if len(r.Service) > 0 {
			rule[keyMatchService] = strings2any(r.Service)
			matched = true
		}
		if !matched {
			d.Reject(obj, "invalid-match-rule", field, "a match rule needs at least one of ingress, domain or service")
			return nil, false
		}
		rules = append(rules, rule)
	}
	var cfg map[string]any
	if spec.DefaultConfigDisable == nil || !*spec.DefaultConfigDisable {
		cfg = deepCopy(spec.DefaultConfig)
	}
	if len(rules) > 0 {
		if cfg == nil {
			cfg = map[string]any{}
		}
		cfg[keyRules] = rules
	}
	return cfg, true
}

func strings2any(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// deepCopy copies a JSON tree so the snapshot's objects are never modified.
func deepCopy(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	return copyValue(m).(map[string]any)
}

func copyValue(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = copyValue(e)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = copyValue(e)
		}
		return out
	}
	return v
}

// expandTemplates replaces ${secret.<ns>/<name>.<key>} in every string of
// the configuration (values and keys). A reference that cannot be resolved
// is left as written and reported, as Higress does (§13.18): dropping an
// authentication plugin would open the routes it guards.
func expandTemplates(v any, snap *input.Snapshot, opts input.Options, obj diag.Object, d *diag.Set) any {
	str := func(s string) string {
		out, _, err := template.Expand(s, snap, opts.SystemNamespace)
		if err != nil {
			d.Warn(obj, "unresolved-template", "spec", "%v; left unexpanded", err)
		}
		return out
	}
	switch t := v.(type) {
	case string:
		return str(t)
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys) // deterministic findings
		out := make(map[string]any, len(t))
		for _, k := range keys {
			out[str(k)] = expandTemplates(t[k], snap, opts, obj, d)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = expandTemplates(e, snap, opts, obj, d)
		}
		return out
	}
	return v
}

// ModuleServerCluster is the cluster of hxds's own module server (direct
// mode).
const ModuleServerCluster = "hxds-wasm-modules"

// unavailableSHA256 can match no module: Envoy fails to load code served
// under it, so a FAIL_CLOSE plugin whose module is missing keeps its last
// loaded configuration (or keeps its listener warming), as when the agent
// NACKs.
const unavailableSHA256 = "0000000000000000000000000000000000000000000000000000000000000000"

// direct points a remote plugin at hxds's module server: the module the
// resolver fetched, under its checksum (Envoy verifies it). The fetch
// hints are for an agent, not for the VM: they are dropped. A module that
// is not available is reported; a FAIL_OPEN plugin then serves an
// allow-all filter, a FAIL_CLOSE one a module Envoy cannot load.
func direct(p *ir.WasmPlugin, m *input.WasmModule, specURL, server string, obj diag.Object, d *diag.Set) {
	for _, k := range []string{EnvPullSecret, EnvPullPolicy, EnvResourceVersion} {
		delete(p.Env, k)
	}
	if len(p.Env) == 0 {
		p.Env = nil
	}
	base := strings.TrimSuffix(server, "/")
	p.RemoteCluster = ModuleServerCluster
	if m != nil && m.URL == specURL && m.Checksum != "" {
		p.RemoteURL, p.SHA256 = base+"/"+m.Checksum+".wasm", m.Checksum
		p.WAMRAOT = m.WAMRAOT
		return
	}
	why := "not fetched yet"
	if m != nil && m.URL == specURL && m.Error != "" {
		why = m.Error
	}
	if p.FailOpen {
		d.Warn(obj, "wasm-module-unavailable", "spec.url", "module %s is not available (%s); FAIL_OPEN: an allow-all filter is served until it is", p.RemoteURL, why)
		p.AllowAll = true
		return
	}
	d.Error(obj, "wasm-module-unavailable", "spec.url", "module %s is not available (%s); FAIL_CLOSE: Envoy keeps its last loaded configuration of the plugin", p.RemoteURL, why)
	p.RemoteURL, p.SHA256 = base+"/unavailable/"+p.Name+".wasm", unavailableSHA256
}

// ModuleServerBackend is the cluster of the module server at base, or nil
// when base is not an http URL with a host.
func ModuleServerBackend(base string) *ir.Backend {
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "http" || u.Hostname() == "" {
		return nil
	}
	port := uint32(80)
	if p := u.Port(); p != "" {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil || n == 0 {
			return nil
		}
		port = uint32(n)
	}
	return &ir.Backend{
		Name: ModuleServerCluster, Kind: ir.BackendDNS, Host: u.Hostname(), Port: port,
		Endpoints: []ir.FixedEndpoint{{Host: u.Hostname(), Port: port}},
	}
}
