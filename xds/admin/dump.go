package admin

import (
	"fmt"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	wasmfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/hxds/hxds/xds/cache"
)

// Source is what a config dump reads: the cache's view of one group.
type Source interface {
	Version(group, typeURL string) string
	Entries(group, typeURL string) []cache.Entry
}

// ConfigDump renders what group is served in the layout of Envoy's admin
// /config_dump, so the two can be compared side by side: clusters, listeners,
// routes, secrets, and with includeEDS the endpoints. Private keys are
// redacted as Envoy redacts them. API listeners (served only to proxyless gRPC
// clients, never to Envoy) are left out. No timestamps: the same
// configuration always dumps to the same bytes.
func ConfigDump(src Source, group string, includeEDS bool) (*adminv3.ConfigDump, error) {
	var configs []proto.Message

	clusters := &adminv3.ClustersConfigDump{VersionInfo: src.Version(group, resourcev3.ClusterType)}
	for _, e := range src.Entries(group, resourcev3.ClusterType) {
		clusters.DynamicActiveClusters = append(clusters.DynamicActiveClusters, &adminv3.ClustersConfigDump_DynamicCluster{
			VersionInfo: clusters.VersionInfo, Cluster: e.Any,
		})
	}
	configs = append(configs, clusters)

	listeners := &adminv3.ListenersConfigDump{VersionInfo: src.Version(group, resourcev3.ListenerType)}
	for _, e := range src.Entries(group, resourcev3.ListenerType) {
		if l, ok := e.Resource.(*listenerv3.Listener); ok && l.ApiListener != nil {
			continue
		}
		listeners.DynamicListeners = append(listeners.DynamicListeners, &adminv3.ListenersConfigDump_DynamicListener{
			Name: e.Name,
			ActiveState: &adminv3.ListenersConfigDump_DynamicListenerState{
				VersionInfo: listeners.VersionInfo, Listener: e.Any,
			},
		})
	}
	configs = append(configs, listeners)

	routes := &adminv3.RoutesConfigDump{}
	routeVersion := src.Version(group, resourcev3.RouteType)
	for _, e := range src.Entries(group, resourcev3.RouteType) {
		routes.DynamicRouteConfigs = append(routes.DynamicRouteConfigs, &adminv3.RoutesConfigDump_DynamicRouteConfig{
			VersionInfo: routeVersion, RouteConfig: e.Any,
		})
	}
	configs = append(configs, routes)

	secrets := &adminv3.SecretsConfigDump{}
	secretVersion := src.Version(group, resourcev3.SecretType)
	for _, e := range src.Entries(group, resourcev3.SecretType) {
		redacted, err := redactSecret(e.Resource)
		if err != nil {
			return nil, fmt.Errorf("secret %s: %w", e.Name, err)
		}
		secrets.DynamicActiveSecrets = append(secrets.DynamicActiveSecrets, &adminv3.SecretsConfigDump_DynamicSecret{
			Name: e.Name, VersionInfo: secretVersion, Secret: redacted,
		})
	}
	configs = append(configs, secrets)

	// Extension configs (ECDS: Wasm plugins), as Envoy dumps them, only
	// when there are some. Pull secrets are redacted.
	if entries := src.Entries(group, resourcev3.ExtensionConfigType); len(entries) > 0 {
		ecds := &adminv3.EcdsConfigDump{}
		ecdsVersion := src.Version(group, resourcev3.ExtensionConfigType)
		for _, e := range entries {
			redacted, err := redactExtensionConfig(e.Resource)
			if err != nil {
				return nil, fmt.Errorf("extension config %s: %w", e.Name, err)
			}
			ecds.EcdsFilters = append(ecds.EcdsFilters, &adminv3.EcdsConfigDump_EcdsFilterConfig{
				VersionInfo: ecdsVersion, EcdsFilter: redacted,
			})
		}
		configs = append(configs, ecds)
	}

	if includeEDS {
		eps := &adminv3.EndpointsConfigDump{}
		edsVersion := src.Version(group, resourcev3.EndpointType)
		for _, e := range src.Entries(group, resourcev3.EndpointType) {
			eps.DynamicEndpointConfigs = append(eps.DynamicEndpointConfigs, &adminv3.EndpointsConfigDump_DynamicEndpointConfig{
				VersionInfo: edsVersion, EndpointConfig: e.Any,
			})
		}
		configs = append(configs, eps)
	}

	out := &adminv3.ConfigDump{}
	for _, c := range configs {
		a, err := anypb.New(c)
		if err != nil {
			return nil, fmt.Errorf("pack %T: %w", c, err)
		}
		out.Configs = append(out.Configs, a)
	}
	return out, nil
}

// redactSecret hides private key material the way Envoy's admin does.
func redactSecret(m proto.Message) (*anypb.Any, error) {
	s, ok := m.(*tlsv3.Secret)
	if !ok {
		return anypb.New(m)
	}
	s = proto.Clone(s).(*tlsv3.Secret)
	if c := s.GetTlsCertificate(); c != nil && c.PrivateKey != nil {
		c.PrivateKey = &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: "[redacted]"}}
	}
	return anypb.New(s)
}

// pullSecretEnv carries registry credentials to the Wasm module fetcher.
const pullSecretEnv = "ISTIO_META_WASM_IMAGE_PULL_SECRET"

// redactExtensionConfig hides a Wasm plugin's image pull secret.
func redactExtensionConfig(m proto.Message) (*anypb.Any, error) {
	tec, ok := m.(*corev3.TypedExtensionConfig)
	if !ok || !tec.GetTypedConfig().MessageIs(&wasmfilterv3.Wasm{}) {
		return anypb.New(m)
	}
	w := &wasmfilterv3.Wasm{}
	if err := tec.GetTypedConfig().UnmarshalTo(w); err != nil {
		return nil, err
	}
	env := w.GetConfig().GetVmConfig().GetEnvironmentVariables()
	if env.GetKeyValues()[pullSecretEnv] == "" {
		return anypb.New(m)
	}
	w = proto.Clone(w).(*wasmfilterv3.Wasm)
	w.Config.GetVmConfig().EnvironmentVariables.KeyValues[pullSecretEnv] = "[redacted]"
	inner, err := anypb.New(w)
	if err != nil {
		return nil, err
	}
	return anypb.New(&corev3.TypedExtensionConfig{Name: tec.Name, TypedConfig: inner})
}

// MarshalConfigDump encodes a dump as Envoy's admin does: JSON with proto
// field names, indented, resolving every Any to its registered type.
func MarshalConfigDump(cd *adminv3.ConfigDump) ([]byte, error) {
	b, err := protojson.MarshalOptions{UseProtoNames: true, Multiline: true, Indent: "  "}.Marshal(cd)
	if err != nil {
		return nil, fmt.Errorf("encode config dump: %w", err)
	}
	return append(b, '\n'), nil
}
