// Package api holds the Go types of the Higress CRDs hxds reads that have no
// published Go module of their own (higress-semantics §4.1: McpBridge).
package api

import (
	"encoding/json"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// McpBridge group, version and kind (networking.higress.io/v1).
const (
	NetworkingGroup = "networking.higress.io"
	McpBridgeKind   = "McpBridge"
	// McpBridgeName is the only McpBridge Higress honours, in the system
	// namespace; others are ignored.
	McpBridgeName = "default"
)

// McpBridgeGVK is the McpBridge's group/version/kind.
var McpBridgeGVK = schema.GroupVersionKind{Group: NetworkingGroup, Version: "v1", Kind: McpBridgeKind}

// McpBridge configures the service registries and proxies (§4.1).
type McpBridge struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              McpBridgeSpec `json:"spec,omitempty"`
}

// McpBridgeSpec is the McpBridge's spec.
type McpBridgeSpec struct {
	Registries []RegistryConfig `json:"registries,omitempty"`
	Proxies    []ProxyConfig    `json:"proxies,omitempty"`
}

// RegistryConfig is one service registry. Field meanings: §4.1.
type RegistryConfig struct {
	Type                   string         `json:"type"`
	Name                   string         `json:"name,omitempty"`
	Domain                 string         `json:"domain"`
	Port                   uint32         `json:"port"`
	NacosAddressServer     string         `json:"nacosAddressServer,omitempty"`
	NacosAccessKey         string         `json:"nacosAccessKey,omitempty"`
	NacosSecretKey         string         `json:"nacosSecretKey,omitempty"`
	NacosNamespaceID       string         `json:"nacosNamespaceId,omitempty"`
	NacosNamespace         string         `json:"nacosNamespace,omitempty"`
	NacosGroups            []string       `json:"nacosGroups,omitempty"`
	NacosRefreshInterval   int64          `json:"nacosRefreshInterval,omitempty"` // nanoseconds
	ConsulNamespace        string         `json:"consulNamespace,omitempty"`
	ZkServicesPath         []string       `json:"zkServicesPath,omitempty"`
	ConsulDatacenter       string         `json:"consulDatacenter,omitempty"`
	ConsulServiceTag       string         `json:"consulServiceTag,omitempty"`
	ConsulRefreshInterval  int64          `json:"consulRefreshInterval,omitempty"` // nanoseconds
	AuthSecretName         string         `json:"authSecretName,omitempty"`
	Protocol               string         `json:"protocol,omitempty"`
	SNI                    string         `json:"sni,omitempty"`
	McpServerExportDomains []string       `json:"mcpServerExportDomains,omitempty"`
	McpServerBaseURL       string         `json:"mcpServerBaseUrl,omitempty"`
	EnableMCPServer        *bool          `json:"enableMCPServer,omitempty"`
	ProxyName              string         `json:"proxyName,omitempty"`
	Vport                  *RegistryVport `json:"vport,omitempty"`
	// In the CRD, unused by Higress's controller (and by hxds); read so
	// that McpBridges that set them are not rejected.
	EnableScopeMcpServers *bool                   `json:"enableScopeMcpServers,omitempty"`
	AllowMcpServers       []string                `json:"allowMcpServers,omitempty"`
	Metadata              map[string]InnerMapSpec `json:"metadata,omitempty"`
}

// InnerMapSpec is a value of RegistryConfig.Metadata.
type InnerMapSpec struct {
	InnerMap map[string]string `json:"inner_map,omitempty"`
}

// Key is the registry's identity, "<type>/<name>", as Higress keys watchers.
func (r *RegistryConfig) Key() string { return r.Type + "/" + r.Name }

// RegistryVport overrides the service (cluster) port of registry services.
type RegistryVport struct {
	Default  uint32         `json:"default,omitempty"`
	Services []ServiceVport `json:"services,omitempty"`
}

// ServiceVport is the port of one service host.
type ServiceVport struct {
	Name  string `json:"name"`
	Value uint32 `json:"value"`
}

// ProxyConfig is an outbound proxy registry services can go through (§4.8).
type ProxyConfig struct {
	Type           string `json:"type"`
	Name           string `json:"name"`
	ServerAddress  string `json:"serverAddress"`
	ServerPort     uint32 `json:"serverPort"`
	ListenerPort   uint32 `json:"listenerPort,omitempty"`
	ConnectTimeout uint32 `json:"connectTimeout,omitempty"` // milliseconds
}

// DeepCopyObject implements runtime.Object. McpBridges are small and rare,
// so a JSON round trip is copy enough.
func (m *McpBridge) DeepCopyObject() runtime.Object {
	if m == nil {
		return nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err) // cannot happen: every field marshals
	}
	out := &McpBridge{}
	if err := json.Unmarshal(b, out); err != nil {
		panic(err)
	}
	return out
}
