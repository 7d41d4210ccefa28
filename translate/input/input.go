// Package input holds the facts a translation runs on: the Kubernetes objects
// of one moment, indexed, plus the options that shape the output. Sources
// (a config directory, the Kubernetes API) fill it; translation only reads it.
package input

import (
	"sort"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1a2 "sigs.k8s.io/gateway-api/apis/v1alpha2"
	gwv1a3 "sigs.k8s.io/gateway-api/apis/v1alpha3"
	gwv1b1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	"github.com/hxds/hxds/internal/api"
)

// Kind names an input object type. The string is the Kubernetes kind.
type Kind string

// Input kinds understood in this release.
const (
	KindNamespace     Kind = "Namespace"
	KindService       Kind = "Service"
	KindEndpointSlice Kind = "EndpointSlice"
	KindEndpoints     Kind = "Endpoints"
	KindSecret        Kind = "Secret"
	KindConfigMap     Kind = "ConfigMap"
	KindIngressClass  Kind = "IngressClass"
	KindIngress       Kind = "Ingress"

	// Gateway API (gateway.networking.k8s.io).
	KindGatewayClass   Kind = "GatewayClass"
	KindGateway        Kind = "Gateway"
	KindHTTPRoute      Kind = "HTTPRoute"
	KindGRPCRoute      Kind = "GRPCRoute"
	KindTCPRoute       Kind = "TCPRoute"
	KindTLSRoute       Kind = "TLSRoute"
	KindReferenceGrant Kind = "ReferenceGrant"
	// KindBackendTLSPolicy is a Gateway API policy (v1) on Services.
	KindBackendTLSPolicy Kind = "BackendTLSPolicy"
	// KindMcpBridge configures the service registries (Higress CRD).
	KindMcpBridge Kind = "McpBridge"
	// KindWasmPlugin is a Higress Wasm plugin (extensions.higress.io).
	KindWasmPlugin Kind = "WasmPlugin"
)

// GatewayAPIGroup is the API group of the Gateway API kinds.
const GatewayAPIGroup = "gateway.networking.k8s.io"

// GroupVersionKinds accepted for each kind (legacy Endpoints are converted to
// EndpointSlices by the sources, see EndpointSlicesFromEndpoints).
var GroupVersionKinds = map[schema.GroupVersionKind]Kind{
	{Group: "", Version: "v1", Kind: "Namespace"}:                     KindNamespace,
	{Group: "", Version: "v1", Kind: "Service"}:                       KindService,
	{Group: "", Version: "v1", Kind: "Endpoints"}:                     KindEndpoints,
	{Group: "", Version: "v1", Kind: "Secret"}:                        KindSecret,
	{Group: "", Version: "v1", Kind: "ConfigMap"}:                     KindConfigMap,
	{Group: "discovery.k8s.io", Version: "v1", Kind: "EndpointSlice"}: KindEndpointSlice,
	{Group: "networking.k8s.io", Version: "v1", Kind: "IngressClass"}: KindIngressClass,
	{Group: "networking.k8s.io", Version: "v1", Kind: "Ingress"}:      KindIngress,
	{Group: GatewayAPIGroup, Version: "v1", Kind: "GatewayClass"}:     KindGatewayClass,
	{Group: GatewayAPIGroup, Version: "v1", Kind: "Gateway"}:          KindGateway,
	{Group: GatewayAPIGroup, Version: "v1", Kind: "HTTPRoute"}:        KindHTTPRoute,
	{Group: GatewayAPIGroup, Version: "v1", Kind: "GRPCRoute"}:        KindGRPCRoute,
	// TCPRoute and TLSRoute: v1 (standard channel since v1.5) and the alpha
	// versions the experimental CRDs still serve. Every version has the same
	// JSON schema, so all decode into the v1 Go type.
	{Group: GatewayAPIGroup, Version: "v1", Kind: "TCPRoute"}:       KindTCPRoute,
	{Group: GatewayAPIGroup, Version: "v1alpha2", Kind: "TCPRoute"}: KindTCPRoute,
	{Group: GatewayAPIGroup, Version: "v1", Kind: "TLSRoute"}:       KindTLSRoute,
	{Group: GatewayAPIGroup, Version: "v1alpha2", Kind: "TLSRoute"}: KindTLSRoute,
	{Group: GatewayAPIGroup, Version: "v1alpha3", Kind: "TLSRoute"}: KindTLSRoute,
	// ReferenceGrant is served as v1beta1 (and, schema-identical, v1).
	{Group: GatewayAPIGroup, Version: "v1beta1", Kind: "ReferenceGrant"}: KindReferenceGrant,
	{Group: GatewayAPIGroup, Version: "v1", Kind: "ReferenceGrant"}:      KindReferenceGrant,
	{Group: GatewayAPIGroup, Version: "v1", Kind: "BackendTLSPolicy"}:    KindBackendTLSPolicy,
	api.McpBridgeGVK:  KindMcpBridge,
	api.WasmPluginGVK: KindWasmPlugin,
}

// Key identifies one input object. Namespace is empty for cluster-scoped kinds.
type Key struct {
	Kind      Kind
	Namespace string
	Name      string
}

func (k Key) String() string {
	if k.Namespace == "" {
		return string(k.Kind) + "/" + k.Name
	}
	return string(k.Kind) + "/" + k.Namespace + "/" + k.Name
}

// NamespacedName is a namespace/name pair used as map key.
type NamespacedName struct{ Namespace, Name string }

func (n NamespacedName) String() string { return n.Namespace + "/" + n.Name }

// Options are the settings of the process that change translation output.
type Options struct {
	// SystemNamespace is where Higress-wide objects live (higress-system);
	// Ingresses there get short route names.
	SystemNamespace string
	// IngressClass selects Ingresses (higress-semantics §2.1). Empty accepts all.
	IngressClass string
	// DomainSuffix of Service host names (cluster.local).
	DomainSuffix string
	// HTTPPort and HTTPSPort are the gateway ports for Ingress hosts (80, 443).
	HTTPPort, HTTPSPort uint32
	// ClusterID names the Kubernetes cluster in SDS secret names (Kubernetes).
	ClusterID string
	// Group is the gateway group every Ingress is served to.
	Group string
	// WasmModuleServer, when set, is the base URL (http://host:port/path)
	// at which Envoys fetch Wasm modules from hxds itself (direct mode):
	// remote modules are served as <base>/<sha256>.wasm with their
	// checksum, and no hxds-agent is needed.
	WasmModuleServer string
}

// DefaultOptions match Higress's defaults.
func DefaultOptions() Options {
	return Options{
		SystemNamespace: "higress-system",
		IngressClass:    "higress",
		DomainSuffix:    "cluster.local",
		HTTPPort:        80,
		HTTPSPort:       443,
		ClusterID:       "Kubernetes",
		Group:           "higress-gateway",
	}
}

// Snapshot is every input object at one moment. Translation treats it as
// read-only; sources build a new one (or copy-on-write) for each change.
type Snapshot struct {
	Namespaces     map[string]*corev1.Namespace
	Services       map[NamespacedName]*corev1.Service
	EndpointSlices map[NamespacedName]*discoveryv1.EndpointSlice
	Secrets        map[NamespacedName]*corev1.Secret
	ConfigMaps     map[NamespacedName]*corev1.ConfigMap
	IngressClasses map[string]*networkingv1.IngressClass
	Ingresses      map[NamespacedName]*networkingv1.Ingress

	GatewayClasses  map[string]*gwv1.GatewayClass
	Gateways        map[NamespacedName]*gwv1.Gateway
	HTTPRoutes      map[NamespacedName]*gwv1.HTTPRoute
	GRPCRoutes      map[NamespacedName]*gwv1.GRPCRoute
	TCPRoutes       map[NamespacedName]*gwv1.TCPRoute
	TLSRoutes       map[NamespacedName]*gwv1.TLSRoute
	ReferenceGrants map[NamespacedName]*gwv1b1.ReferenceGrant
	// BackendTLSPolicies (v1).
	BackendTLSPolicies map[NamespacedName]*gwv1.BackendTLSPolicy

	// McpBridges configure the service registries; only "default" in the
	// system namespace is used.
	McpBridges map[NamespacedName]*api.McpBridge
	// WasmPlugins; only those in the system namespace are served.
	WasmPlugins map[NamespacedName]*api.WasmPlugin
	// WasmModules are the modules the direct-mode resolver fetched, by
	// WasmPlugin (facts put in by the process; translation fetches nothing).
	WasmModules map[NamespacedName]*WasmModule
	// Registry holds the hosts the registries discovered, by host: facts
	// the discovery resolvers put in (translation does no I/O).
	Registry map[string]*RegistryService
}

// NewSnapshot returns an empty snapshot with every index allocated.
func NewSnapshot() *Snapshot {
	return &Snapshot{
		Namespaces:     map[string]*corev1.Namespace{},
		Services:       map[NamespacedName]*corev1.Service{},
		EndpointSlices: map[NamespacedName]*discoveryv1.EndpointSlice{},
		Secrets:        map[NamespacedName]*corev1.Secret{},
		ConfigMaps:     map[NamespacedName]*corev1.ConfigMap{},
		IngressClasses: map[string]*networkingv1.IngressClass{},
		Ingresses:      map[NamespacedName]*networkingv1.Ingress{},

		GatewayClasses:  map[string]*gwv1.GatewayClass{},
		Gateways:        map[NamespacedName]*gwv1.Gateway{},
		HTTPRoutes:      map[NamespacedName]*gwv1.HTTPRoute{},
		GRPCRoutes:      map[NamespacedName]*gwv1.GRPCRoute{},
		TCPRoutes:       map[NamespacedName]*gwv1.TCPRoute{},
		TLSRoutes:       map[NamespacedName]*gwv1.TLSRoute{},
		ReferenceGrants: map[NamespacedName]*gwv1b1.ReferenceGrant{},

		BackendTLSPolicies: map[NamespacedName]*gwv1.BackendTLSPolicy{},

		McpBridges:  map[NamespacedName]*api.McpBridge{},
		WasmPlugins: map[NamespacedName]*api.WasmPlugin{},
		WasmModules: map[NamespacedName]*WasmModule{},
		Registry:    map[string]*RegistryService{},
	}
}

// SortedKeys returns the keys of a namespaced index in namespace/name order,
// so every walk over inputs is deterministic.
func SortedKeys[V any](m map[NamespacedName]V) []NamespacedName {
	keys := make([]NamespacedName, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].Namespace != keys[j].Namespace {
			return keys[i].Namespace < keys[j].Namespace
		}
		return keys[i].Name < keys[j].Name
	})
	return keys
}

// Add indexes one typed object under key; objects of other types are ignored.
func (s *Snapshot) Add(key Key, obj any) {
	nn := NamespacedName{Namespace: key.Namespace, Name: key.Name}
	switch o := obj.(type) {
	case *corev1.Namespace:
		s.Namespaces[key.Name] = o
	case *corev1.Service:
		s.Services[nn] = o
	case *discoveryv1.EndpointSlice:
		s.EndpointSlices[nn] = o
	case *corev1.Secret:
		s.Secrets[nn] = o
	case *corev1.ConfigMap:
		s.ConfigMaps[nn] = o
	case *networkingv1.IngressClass:
		s.IngressClasses[key.Name] = o
	case *networkingv1.Ingress:
		s.Ingresses[nn] = o
	case *gwv1.GatewayClass:
		s.GatewayClasses[key.Name] = o
	case *gwv1.Gateway:
		s.Gateways[nn] = o
	case *gwv1.HTTPRoute:
		s.HTTPRoutes[nn] = o
	case *gwv1.GRPCRoute:
		s.GRPCRoutes[nn] = o
	case *gwv1.TCPRoute:
		s.TCPRoutes[nn] = o
	case *gwv1a2.TCPRoute:
		s.TCPRoutes[nn] = TCPRouteV1(o)
	case *gwv1.TLSRoute:
		s.TLSRoutes[nn] = o
	case *gwv1a2.TLSRoute:
		s.TLSRoutes[nn] = TLSRouteV1Alpha2(o)
	case *gwv1a3.TLSRoute:
		s.TLSRoutes[nn] = (*gwv1.TLSRoute)(o)
	case *gwv1b1.ReferenceGrant:
		s.ReferenceGrants[nn] = o
	case *gwv1.ReferenceGrant:
		// v1 and v1beta1 share the schema (v1beta1 is defined from v1).
		s.ReferenceGrants[nn] = (*gwv1b1.ReferenceGrant)(o)
	case *gwv1.BackendTLSPolicy:
		s.BackendTLSPolicies[nn] = o
	case *api.McpBridge:
		s.McpBridges[nn] = o
	case *api.WasmPlugin:
		s.WasmPlugins[nn] = o
	}
}
