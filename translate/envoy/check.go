package envoy

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	wasmfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
)

// Check verifies that a set of resources (type URL → name → resource) is one a
// stock Envoy accepts as a whole: every resource and every typed config inside
// it passes ValidateAll(); every Any names a registered stock Envoy type; every
// RDS, SDS, EDS and ECDS name resolves; every route's clusters exist; virtual-host
// domains and filter-chain matches are unique; the router is the last HTTP
// filter. Endpoints are checked only when the set includes the endpoint type.
// All problems are reported, joined.
func Check(byType map[string]map[string]proto.Message) error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	for _, typeURL := range sortedKeys(byType) {
		for _, name := range sortedKeys(byType[typeURL]) {
			if err := validateDeep(byType[typeURL][name]); err != nil {
				fail("%s %q: %w", shortType(typeURL), name, err)
			}
		}
	}

	routes := byType[resourcev3.RouteType]
	secrets := byType[resourcev3.SecretType]
	clusters := byType[resourcev3.ClusterType]
	endpoints, checkEDS := byType[resourcev3.EndpointType]
	// ECDS references are checked when the set includes the type.
	ecds, checkECDS := byType[resourcev3.ExtensionConfigType]
	refs := hcmRefs{routes: routes, ecds: ecds, checkECDS: checkECDS}

	for _, name := range sortedKeys(byType[resourcev3.ListenerType]) {
		l, ok := byType[resourcev3.ListenerType][name].(*listenerv3.Listener)
		if !ok {
			fail("listener %q: not a Listener", name)
			continue
		}
		if l.Name != name {
			fail("listener %q: indexed under a different name %q", l.Name, name)
		}
		checkListener(l, refs, secrets, clusters, fail)
	}
	for _, name := range sortedKeys(ecds) {
		checkExtensionConfig(name, ecds[name], clusters, fail)
	}
	for _, name := range sortedKeys(routes) {
		rc, ok := routes[name].(*routev3.RouteConfiguration)
		if !ok {
			fail("route config %q: not a RouteConfiguration", name)
			continue
		}
		checkRouteConfig(rc, clusters, fail)
	}
	for _, name := range sortedKeys(clusters) {
		c, ok := clusters[name].(*clusterv3.Cluster)
		if !ok || c.GetTransportSocket() == nil {
			continue
		}
		ctx := &tlsv3.UpstreamTlsContext{}
		if err := c.GetTransportSocket().GetTypedConfig().UnmarshalTo(ctx); err != nil {
			fail("cluster %q: transport socket is not an UpstreamTlsContext: %v", name, err)
			continue
		}
		for _, sds := range sdsNames(ctx.GetCommonTlsContext()) {
			if _, ok := secrets[sds]; !ok {
				fail("cluster %q: SDS secret %q is not served", name, sds)
			}
		}
	}
	if checkEDS {
		for _, name := range sortedKeys(clusters) {
			c, ok := clusters[name].(*clusterv3.Cluster)
			if !ok {
				fail("cluster %q: not a Cluster", name)
				continue
			}
			if c.GetType() == clusterv3.Cluster_EDS {
				eds := c.GetEdsClusterConfig().GetServiceName()
				if eds == "" {
					eds = c.Name
				}
				if _, ok := endpoints[eds]; !ok {
					fail("cluster %q: EDS resource %q is not served", c.Name, eds)
				}
			}
		}
		for _, name := range sortedKeys(endpoints) {
			if cla, ok := endpoints[name].(*endpointv3.ClusterLoadAssignment); !ok || cla.ClusterName != name {
				fail("endpoints %q: not a ClusterLoadAssignment named after its key", name)
			}
		}
	}
	return errors.Join(errs...)
}

// wasmConfigurationTypeURL is the type of a Wasm plugin's configuration.
const wasmConfigurationTypeURL = "type.googleapis.com/google.protobuf.StringValue"

func shortType(typeURL string) string {
	return typeURL[strings.LastIndex(typeURL, ".")+1:]
}

// validateDeep runs ValidateAll on m and, recursively, on every Any inside it,
// because protoc-gen-validate does not look into typed configs.
func validateDeep(m proto.Message) error {
	if v, ok := m.(interface{ ValidateAll() error }); ok {
		if err := v.ValidateAll(); err != nil {
			return err
		}
	}
	var errs []error
	walkAnys(m.ProtoReflect(), func(a *anypb.Any) {
		if a.TypeUrl == wasmConfigurationTypeURL {
			return // a Wasm plugin's configuration: opaque to Envoy
		}
		if !strings.HasPrefix(a.TypeUrl, "type.googleapis.com/envoy.") {
			errs = append(errs, fmt.Errorf("typed config %q is not a stock Envoy type", a.TypeUrl))
			return
		}
		inner, err := a.UnmarshalNew()
		if err != nil {
			errs = append(errs, fmt.Errorf("typed config %q: %w", a.TypeUrl, err))
			return
		}
		if err := validateDeep(inner); err != nil {
			errs = append(errs, fmt.Errorf("typed config %q: %w", a.TypeUrl, err))
		}
	})
	return errors.Join(errs...)
}

func walkAnys(m protoreflect.Message, fn func(*anypb.Any)) {
	if a, ok := m.Interface().(*anypb.Any); ok {
		fn(a)
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind && fd.Kind() != protoreflect.GroupKind {
			return true
		}
		switch {
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				walkAnys(l.Get(i).Message(), fn)
			}
		case fd.IsMap():
			if fd.MapValue().Kind() == protoreflect.MessageKind {
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					walkAnys(mv.Message(), fn)
					return true
				})
			}
		default:
			walkAnys(v.Message(), fn)
		}
		return true
	})
}

// hcmRefs are what an HCM's dynamic references resolve against.
type hcmRefs struct {
	routes, ecds map[string]proto.Message
	checkECDS    bool
}

func checkListener(l *listenerv3.Listener, refs hcmRefs, secrets, clusters map[string]proto.Message, fail func(string, ...any)) {
	if l.ApiListener != nil {
		hcm := &hcmv3.HttpConnectionManager{}
		if err := l.ApiListener.GetApiListener().UnmarshalTo(hcm); err != nil {
			fail("listener %q: api_listener is not an HttpConnectionManager: %v", l.Name, err)
			return
		}
		checkHCM(l.Name, hcm, refs, fail)
		return
	}
	matches := map[string]string{}
	chainNames := map[string]bool{}
	for i, fc := range l.FilterChains {
		if fc.Name != "" {
			if chainNames[fc.Name] {
				fail("listener %q: duplicate filter chain name %q", l.Name, fc.Name)
			}
			chainNames[fc.Name] = true
		}
		key := prototext.Format(fc.GetFilterChainMatch())
		if prev, dup := matches[key]; dup {
			fail("listener %q: filter chains %s and %d have the same match", l.Name, prev, i)
		}
		matches[key] = fmt.Sprint(i)
		if ts := fc.GetTransportSocket(); ts != nil {
			ctx := &tlsv3.DownstreamTlsContext{}
			if err := ts.GetTypedConfig().UnmarshalTo(ctx); err != nil {
				fail("listener %q chain %d: transport socket is not a DownstreamTlsContext: %v", l.Name, i, err)
			} else {
				for _, name := range sdsNames(ctx.GetCommonTlsContext()) {
					if _, ok := secrets[name]; !ok {
						fail("listener %q chain %d: SDS secret %q is not served", l.Name, i, name)
					}
				}
			}
		}
		for _, f := range fc.Filters {
			if f.Name == wellknown.TCPProxy {
				checkTCPProxy(l.Name, i, f, clusters, fail)
				continue
			}
			if f.Name != wellknown.HTTPConnectionManager {
				continue
			}
			hcm := &hcmv3.HttpConnectionManager{}
			if err := f.GetTypedConfig().UnmarshalTo(hcm); err != nil {
				fail("listener %q chain %d: bad HCM: %v", l.Name, i, err)
				continue
			}
			checkHCM(l.Name, hcm, refs, fail)
		}
	}
}

func checkHCM(listener string, hcm *hcmv3.HttpConnectionManager, refs hcmRefs, fail func(string, ...any)) {
	if rds := hcm.GetRds(); rds != nil {
		if _, ok := refs.routes[rds.RouteConfigName]; !ok {
			fail("listener %q: RDS route config %q is not served", listener, rds.RouteConfigName)
		}
	}
	filters := hcm.GetHttpFilters()
	if len(filters) == 0 || filters[len(filters)-1].Name != wellknown.Router {
		fail("listener %q: the router must be the last HTTP filter", listener)
	}
	names := map[string]bool{}
	for i, f := range filters {
		if f.Name == wellknown.Router && i != len(filters)-1 {
			fail("listener %q: router at position %d is not last", listener, i)
		}
		if names[f.Name] {
			fail("listener %q: duplicate HTTP filter %q", listener, f.Name)
		}
		names[f.Name] = true
		if cd := f.GetConfigDiscovery(); cd != nil {
			checkConfigDiscovery(listener, f.Name, cd, refs, fail)
		}
	}
}

// checkConfigDiscovery: an ECDS-configured filter names a served resource
// whose type, like its default config's, is one the filter accepts.
func checkConfigDiscovery(listener, name string, cd *corev3.ExtensionConfigSource, refs hcmRefs, fail func(string, ...any)) {
	accepts := map[string]bool{}
	for _, u := range cd.TypeUrls {
		accepts[u] = true
	}
	if dc := cd.GetDefaultConfig(); dc != nil && !accepts[dc.TypeUrl] {
		fail("listener %q: HTTP filter %q: default config type %q is not in its type_urls", listener, name, dc.TypeUrl)
	}
	if !refs.checkECDS {
		return
	}
	m, ok := refs.ecds[name]
	if !ok {
		fail("listener %q: ECDS extension config %q is not served", listener, name)
		return
	}
	if tec, ok := m.(*corev3.TypedExtensionConfig); ok && !accepts[tec.GetTypedConfig().GetTypeUrl()] {
		fail("listener %q: HTTP filter %q: served type %q is not in its type_urls", listener, name, tec.GetTypedConfig().GetTypeUrl())
	}
}

// checkExtensionConfig: an ECDS resource is a TypedExtensionConfig named
// after its key; a Wasm module fetched remotely names a served cluster or
// the placeholder a fetcher replaces.
func checkExtensionConfig(name string, m proto.Message, clusters map[string]proto.Message, fail func(string, ...any)) {
	tec, ok := m.(*corev3.TypedExtensionConfig)
	if !ok || tec.Name != name {
		fail("extension config %q: not a TypedExtensionConfig named after its key", name)
		return
	}
	if tec.GetTypedConfig().GetTypeUrl() != WasmTypeURL {
		return
	}
	w := &wasmfilterv3.Wasm{}
	if err := tec.GetTypedConfig().UnmarshalTo(w); err != nil {
		fail("extension config %q: bad Wasm config: %v", name, err)
		return
	}
	if c := w.GetConfig().GetVmConfig().GetCode().GetRemote().GetHttpUri().GetCluster(); c != "" && c != RemoteCodeCluster {
		if _, ok := clusters[c]; !ok {
			fail("extension config %q: remote code cluster %q is not served", name, c)
		}
	}
}

func checkRouteConfig(rc *routev3.RouteConfiguration, clusters map[string]proto.Message, fail func(string, ...any)) {
	domains := map[string]string{}
	vhNames := map[string]bool{}
	for _, vh := range rc.VirtualHosts {
		if vhNames[vh.Name] {
			fail("route config %q: duplicate virtual host %q", rc.Name, vh.Name)
		}
		vhNames[vh.Name] = true
		for _, d := range vh.Domains {
			if prev, dup := domains[d]; dup {
				fail("route config %q: domain %q is in virtual hosts %q and %q", rc.Name, d, prev, vh.Name)
			}
			domains[d] = vh.Name
		}
		for _, r := range vh.Routes {
			for _, c := range routeClusters(r) {
				if _, ok := clusters[c]; !ok {
					fail("route config %q vhost %q route %q: cluster %q is not served", rc.Name, vh.Name, r.Name, c)
				}
			}
		}
	}
}

// routeClusters lists every cluster a route can send a request to, mirrors included.
func routeClusters(r *routev3.Route) []string {
	ra := r.GetRoute()
	if ra == nil {
		return nil
	}
	var out []string
	if c := ra.GetCluster(); c != "" {
		out = append(out, c)
	}
	for _, wc := range ra.GetWeightedClusters().GetClusters() {
		out = append(out, wc.Name)
	}
	for _, m := range ra.GetRequestMirrorPolicies() {
		out = append(out, m.Cluster)
	}
	sort.Strings(out)
	return out
}

// sdsNames lists the SDS secrets a TLS context refers to.
func sdsNames(c *tlsv3.CommonTlsContext) []string {
	var out []string
	for _, s := range c.GetTlsCertificateSdsSecretConfigs() {
		out = append(out, s.Name)
	}
	if v := c.GetValidationContextSdsSecretConfig(); v != nil {
		out = append(out, v.Name)
	}
	if v := c.GetCombinedValidationContext().GetValidationContextSdsSecretConfig(); v != nil {
		out = append(out, v.Name)
	}
	return out
}

// checkTCPProxy: every cluster a tcp_proxy forwards to is served.
func checkTCPProxy(listener string, chain int, f *listenerv3.Filter, clusters map[string]proto.Message, fail func(string, ...any)) {
	tp := &tcpproxyv3.TcpProxy{}
	if err := f.GetTypedConfig().UnmarshalTo(tp); err != nil {
		fail("listener %q chain %d: bad tcp_proxy: %v", listener, chain, err)
		return
	}
	for _, c := range tcpProxyClusters(tp) {
		if _, ok := clusters[c]; !ok {
			fail("listener %q chain %d: tcp_proxy cluster %q is not served", listener, chain, c)
		}
	}
}
