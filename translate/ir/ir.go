// Package ir is the gateway intermediate representation: what front-ends
// (Ingress, Gateway API, Higress CRDs) agree to produce and what the Envoy
// builder consumes. It speaks in gateway terms (listeners, hosts, routes,
// backends), never in Envoy protos, and remembers which input object produced
// each piece so findings and route names can point back at it.
package ir

import "github.com/hxds/hxds/translate/diag"

// Gateway is the whole configuration of one gateway group.
type Gateway struct {
	Group     string      `json:"group,omitempty"`
	Listeners []*Listener `json:"listeners,omitempty"`
	// Backends every route may reference, keyed by their cluster name.
	Backends map[string]*Backend `json:"backends,omitempty"`
	// Secrets referenced by TLS servers, keyed by SDS name.
	Secrets map[string]*Secret `json:"secrets,omitempty"`
}

// Protocol of a listener port.
type Protocol string

const (
	ProtocolHTTP  Protocol = "HTTP"
	ProtocolHTTPS Protocol = "HTTPS"
)

// Listener is one port. HTTP listeners have one route table shared by every
// host; HTTPS listeners have one TLS server (filter chain) per host.
type Listener struct {
	Name     string   `json:"name,omitempty"` // 0.0.0.0_<port>
	Address  string   `json:"address,omitempty"`
	Port     uint32   `json:"port,omitempty"`
	Protocol Protocol `json:"protocol,omitempty"`
	// HTTP: the port's single route table.
	Routes *RouteTable `json:"routes,omitempty"`
	// HTTPS: one entry per server, each with its own SNI match and route table.
	Servers []*TLSServer `json:"servers,omitempty"`
}

// TLSServer is one HTTPS filter chain: clients whose SNI matches Hosts get
// Certificate and the route table. A server whose Hosts contain "*" also
// serves clients that send no SNI.
type TLSServer struct {
	Hosts       []string    `json:"hosts,omitempty"`
	Certificate string      `json:"certificate,omitempty"` // SDS secret name
	Routes      *RouteTable `json:"routes,omitempty"`
	Source      diag.Object `json:"source,omitempty"`
}

// RouteTable is an Envoy RouteConfiguration: virtual hosts in order.
type RouteTable struct {
	Name         string         `json:"name,omitempty"` // http.<port> or https.<port>.<host>
	VirtualHosts []*VirtualHost `json:"virtualHosts,omitempty"`
}

// VirtualHost groups the routes of one host.
type VirtualHost struct {
	Name    string   `json:"name,omitempty"` // <host>:<port>
	Host    string   `json:"host,omitempty"`
	Domains []string `json:"domains,omitempty"`
	Routes  []*Route `json:"routes,omitempty"`
}

// PathMatchKind says how Route.Match.Path is compared.
type PathMatchKind int

const (
	PathExact PathMatchKind = iota
	PathPrefix
	PathRegex
)

func (k PathMatchKind) String() string {
	switch k {
	case PathExact:
		return "exact"
	case PathPrefix:
		return "prefix"
	default:
		return "regex"
	}
}

// StringMatch compares a header or query value.
type StringMatch struct {
	Kind  StringMatchKind `json:"kind,omitempty"`
	Value string          `json:"value,omitempty"`
}

// StringMatchKind of a StringMatch.
type StringMatchKind int

const (
	MatchExact StringMatchKind = iota
	MatchPrefix
	MatchRegex
	MatchPresent
)

// HeaderMatch is one header condition (pseudo-headers start with ':').
type HeaderMatch struct {
	Name   string      `json:"name,omitempty"`
	Match  StringMatch `json:"match,omitempty"`
	Invert bool        `json:"invert,omitempty"`
}

// QueryMatch is one query-parameter condition.
type QueryMatch struct {
	Name  string      `json:"name,omitempty"`
	Match StringMatch `json:"match,omitempty"`
}

// Match is one request condition. A route matches when any of its matches does.
type Match struct {
	PathKind      PathMatchKind `json:"pathKind,omitempty"`
	Path          string        `json:"path,omitempty"`
	CaseSensitive bool          `json:"caseSensitive,omitempty"`
	Headers       []HeaderMatch `json:"headers,omitempty"`
	Query         []QueryMatch  `json:"query,omitempty"`
}

// Route is one rule of a virtual host.
type Route struct {
	// Name is the Envoy route name (higress-semantics §2.4): <ns>/<ingress>,
	// or <ingress> in the system namespace. Several routes may share it.
	Name   string      `json:"name,omitempty"`
	Source diag.Object `json:"source,omitempty"`
	// Matches are alternatives (the Prefix → exact + prefix expansion gives two).
	Matches []Match `json:"matches,omitempty"`
	// Exactly one of Forward, Redirect, Direct is set.
	Forward  *Forward        `json:"forward,omitempty"`
	Redirect *Redirect       `json:"redirect,omitempty"`
	Direct   *DirectResponse `json:"direct,omitempty"`

	// SortKey orders routes inside a host; see the front-end that sets it.
	SortKey SortKey `json:"sortKey,omitempty"`
}

// SortKey carries what Higress's route sort looks at (§2.3).
type SortKey struct {
	// Class: 0 user routes, 1 user catch-all, 2 spec.defaultBackend route.
	Class      int           `json:"class,omitempty"`
	PathKind   PathMatchKind `json:"pathKind,omitempty"`
	PathLength int           `json:"pathLength,omitempty"`
	// Methods regex length; 0 when no method condition.
	MethodLength int `json:"methodLength,omitempty"`
	HeaderCount  int `json:"headerCount,omitempty"`
	QueryCount   int `json:"queryCount,omitempty"`
	// Order is the position in input order (oldest Ingress first), for stability.
	Order int `json:"order,omitempty"`
}

// Forward sends the request to one or more weighted backends.
type Forward struct {
	Destinations []Destination `json:"destinations,omitempty"`
	// TotalWeight is the sum Envoy weights are normalised to (100).
	TotalWeight uint32 `json:"totalWeight,omitempty"`
}

// Destination is one weighted backend.
type Destination struct {
	Backend string `json:"backend,omitempty"` // key into Gateway.Backends (the cluster name)
	Weight  uint32 `json:"weight,omitempty"`
}

// Redirect answers with a 3xx.
type Redirect struct {
	Scheme        string `json:"scheme,omitempty"`
	Host          string `json:"host,omitempty"`
	Port          uint32 `json:"port,omitempty"`
	Path          string `json:"path,omitempty"`
	PrefixRewrite string `json:"prefixRewrite,omitempty"`
	Code          int    `json:"code,omitempty"`
}

// DirectResponse answers with a fixed status and body.
type DirectResponse struct {
	Status uint32 `json:"status,omitempty"`
	Body   string `json:"body,omitempty"`
}

// BackendKind says where a backend's endpoints come from.
type BackendKind int

const (
	// BackendService: a Kubernetes Service port; endpoints over EDS from EndpointSlices.
	BackendService BackendKind = iota
	// BackendDNS: a host name resolved by Envoy (ExternalName Services).
	BackendDNS
)

// Backend is one upstream cluster.
type Backend struct {
	Name string      `json:"name,omitempty"` // outbound|<port>||<host>
	Kind BackendKind `json:"kind,omitempty"`
	// Host is the service host name (<svc>.<ns>.svc.<suffix>) or DNS name.
	Host string `json:"host,omitempty"`
	Port uint32 `json:"port,omitempty"`
	// Service identifies the Kubernetes Service for BackendService; Port is its
	// service port number, TargetPortName the port name EndpointSlices use.
	Service        ServiceRef `json:"service,omitempty"`
	TargetPortName string     `json:"targetPortName,omitempty"`
}

// ServiceRef names a Kubernetes Service.
type ServiceRef struct {
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name,omitempty"`
}

// Secret is one TLS certificate served over SDS.
type Secret struct {
	Name       string `json:"name,omitempty"` // kubernetes-ingress://<cluster>/<ns>/<name>
	Namespace  string `json:"namespace,omitempty"`
	SecretName string `json:"secretName,omitempty"`
	Cert       []byte `json:"cert,omitempty"`
	Key        []byte `json:"key,omitempty"`
}
