package input

// RegistryService is a service registry host (McpBridge discovery) as
// translation sees it: what shapes its cluster. The instances of a Static
// service do not take part: they reach Envoy over EDS without translation.
type RegistryService struct {
	// Host is the registry host (higress-semantics §4.3).
	Host string `json:"host"`
	// Registry is "<type>/<name>" of the McpBridge registry it comes from.
	Registry string `json:"registry,omitempty"`
	// Port is the service (cluster) port.
	Port uint32 `json:"port"`
	// Protocol is the discovery protocol name: HTTP, HTTPS, HTTP2, GRPC,
	// GRPCS, TCP or Dubbo.
	Protocol string `json:"protocol"`
	// SNI is sent upstream for HTTPS/GRPCS.
	SNI string `json:"sni,omitempty"`
	// DNS: the instances are host names Envoy resolves (a STRICT_DNS
	// cluster whose endpoints are part of the cluster, so of translation).
	DNS bool `json:"dns,omitempty"`
	// Endpoints are set only for DNS services.
	Endpoints []RegistryEndpoint `json:"endpoints,omitempty"`
}

// RegistryEndpoint is one instance of a registry service.
type RegistryEndpoint struct {
	// Address is an IP, or a host name (DNS resolution).
	Address string `json:"address"`
	// Port is the instance's own port (a vport does not change it).
	Port uint32 `json:"port"`
	// Weight is at least 1.
	Weight uint32 `json:"weight"`
	// Metadata becomes endpoint metadata (Higress: ServiceEntry labels).
	Metadata map[string]string `json:"metadata,omitempty"`
}

// WasmModule is what the direct-mode resolver found for a WasmPlugin's
// module: the checksum of the fetched module, or why there is none.
type WasmModule struct {
	// URL is the WasmPlugin url the result is for, as written in the
	// spec (a changed URL is not resolved yet).
	URL      string `json:"url"`
	Checksum string `json:"checksum,omitempty"`
	Error    string `json:"error,omitempty"`
	// WAMRAOT: the module was compiled ahead of time for WAMR.
	WAMRAOT bool `json:"wamrAOT,omitempty"`
}
