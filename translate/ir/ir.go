// Package ir is the gateway intermediate representation: what front-ends
// (Ingress, Gateway API, Higress CRDs) agree to produce and what the Envoy
// builder consumes. It speaks in gateway terms (listeners, hosts, routes,
// backends), never in Envoy protos, and remembers which input object produced
// each piece so findings and route names can point back at it.
package ir

import (
	"encoding/json"
	"time"

	"github.com/hxds/hxds/translate/diag"
)

// Gateway is the whole configuration of one gateway group.
type Gateway struct {
	Group     string      `json:"group,omitempty"`
	Listeners []*Listener `json:"listeners,omitempty"`
	// Backends every route may reference, keyed by their cluster name.
	Backends map[string]*Backend `json:"backends,omitempty"`
	// Secrets referenced by TLS servers, keyed by SDS name.
	Secrets map[string]*Secret `json:"secrets,omitempty"`
	// WasmPlugins run in every HTTP filter chain, in filter order (see
	// SortWasmPlugins).
	WasmPlugins []*WasmPlugin `json:"wasmPlugins,omitempty"`
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
	// HTTPS and TLS: TLS passthrough chains, one per SNI host, sorted like
	// servers; never the same host as a server.
	Passthrough []*TCPProxy `json:"passthrough,omitempty"`
	// TCP: the port's single proxy.
	TCP *TCPProxy `json:"tcp,omitempty"`
}

// TLSServer is one HTTPS filter chain: clients whose SNI matches Hosts get
// Certificate and the route table. A server whose Hosts contain "*" also
// serves clients that send no SNI.
type TLSServer struct {
	// MinVersion and MaxVersion are Envoy TLS versions (TLSv1_2, ...); empty
	// leaves Envoy's default.
	MinVersion string   `json:"minVersion,omitempty"`
	MaxVersion string   `json:"maxVersion,omitempty"`
	Ciphers    []string `json:"ciphers,omitempty"`
	// ClientCA, when set, is the SDS name of the CAs client certificates
	// must chain to (mutual TLS).
	ClientCA string `json:"clientCA,omitempty"`
	// ClientCertOptional (with ClientCA): clients without a certificate, or
	// whose certificate does not verify, are accepted too (Gateway API
	// AllowInsecureFallback).
	ClientCertOptional bool `json:"clientCertOptional,omitempty"`
	// RejectClients: no client is accepted (a client certificate is
	// required that none can have). An HTTPS listener that is not valid
	// keeps its host this way, so that its clients are refused rather than
	// served by another listener of the port.
	RejectClients bool `json:"rejectClients,omitempty"`

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

	// HTTPSRedirect: on plain-HTTP listeners answer 308 to the https URL;
	// on TLS listeners forward as usual (ssl-redirect / force-ssl-redirect).
	HTTPSRedirect bool `json:"httpsRedirect,omitempty"`

	// Policies (set by annotations or Gateway API filters).
	Rewrite         *Rewrite   `json:"rewrite,omitempty"`
	Timeout         *Duration  `json:"timeout,omitempty"`
	Retry           *Retry     `json:"retry,omitempty"`
	Cors            *Cors      `json:"cors,omitempty"`
	RequestHeaders  *HeaderOps `json:"requestHeaders,omitempty"`
	ResponseHeaders *HeaderOps `json:"responseHeaders,omitempty"`
	IPAllow         []string   `json:"ipAllow,omitempty"` // source CIDRs; every other source gets 403
	RateLimit       *RateLimit `json:"rateLimit,omitempty"`
	Mirrors         []Mirror   `json:"mirrors,omitempty"`
	// ErrorFallback replaces upstream responses with these codes by the
	// response of another route, reached by an internal redirect
	// (custom-http-errors).
	ErrorFallback *ErrorFallback `json:"errorFallback,omitempty"`
	HashPolicy    []HashPolicy   `json:"hashPolicy,omitempty"`
	// Session pins a client to the upstream host it first reached.
	Session *SessionPersistence `json:"session,omitempty"`
}

// SessionPersistence keeps a client on one upstream host by a cookie or a
// header that carries the host's address (Envoy stateful sessions). Exactly
// one of Cookie and Header is set.
type SessionPersistence struct {
	Cookie *SessionCookie `json:"cookie,omitempty"`
	// Header names the request/response header that carries the session.
	Header string `json:"header,omitempty"`
}

// SessionCookie is the cookie of a cookie-based session. A nil or zero TTL
// makes it a session cookie (no Max-Age).
type SessionCookie struct {
	Name string    `json:"name"`
	Path string    `json:"path,omitempty"`
	TTL  *Duration `json:"ttl,omitempty"`
}

// Duration is a time.Duration that reads and writes as "1.5s" in YAML/JSON.
type Duration struct{ time.Duration }

// MarshalJSON writes the Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	d.Duration = v
	return err
}

// Rewrite changes the request before it goes upstream.
type Rewrite struct {
	// PathPrefix replaces the matched prefix (or the whole path of an exact match).
	PathPrefix string `json:"pathPrefix,omitempty"`
	// PathRegex replaces every match of Pattern in the path with Substitution (\1 groups).
	PathRegex *RegexRewrite `json:"pathRegex,omitempty"`
	// Host replaces the Host/:authority header.
	Host string `json:"host,omitempty"`
}

// RegexRewrite is an RE2 substitution.
type RegexRewrite struct {
	Pattern      string `json:"pattern"`
	Substitution string `json:"substitution"`
}

// Retry says when and how often to retry upstream.
type Retry struct {
	Attempts      uint32    `json:"attempts"`
	PerTryTimeout *Duration `json:"perTryTimeout,omitempty"`
	// On are Envoy retry_on conditions (5xx, reset, retriable-status-codes, ...).
	On          []string `json:"retryOn,omitempty"`
	StatusCodes []uint32 `json:"statusCodes,omitempty"`
}

// Cors is a CORS policy.
type Cors struct {
	AllowOrigins     []StringMatch `json:"allowOrigins,omitempty"`
	AllowMethods     []string      `json:"allowMethods,omitempty"`
	AllowHeaders     []string      `json:"allowHeaders,omitempty"`
	ExposeHeaders    []string      `json:"exposeHeaders,omitempty"`
	AllowCredentials bool          `json:"allowCredentials,omitempty"`
	MaxAge           *Duration     `json:"maxAge,omitempty"`
	// AnswerAllPreflights answers preflights from origins that are not
	// allowed too (without access-control-allow-origin) instead of
	// forwarding them upstream, as the Gateway API requires.
	AnswerAllPreflights bool `json:"answerAllPreflights,omitempty"`
}

// HeaderOps edits request or response headers.
type HeaderOps struct {
	Add    []Header `json:"add,omitempty"` // appended to existing values
	Set    []Header `json:"set,omitempty"` // replace existing values
	Remove []string `json:"remove,omitempty"`
}

// Empty reports whether the ops do nothing.
func (h *HeaderOps) Empty() bool { return h == nil || len(h.Add)+len(h.Set)+len(h.Remove) == 0 }

// Header is one name/value pair.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// RateLimit is a per-route local token bucket; over the limit gets 429.
type RateLimit struct {
	TokensPerFill uint32   `json:"tokensPerFill"`
	MaxTokens     uint32   `json:"maxTokens"`
	FillInterval  Duration `json:"fillInterval"`
}

// ErrorFallback internally redirects a request whose upstream answered one
// of Codes: the path becomes Path and Headers are added, so that the
// redirected request matches the fallback route.
type ErrorFallback struct {
	Codes []uint32 `json:"codes"`
	Path  string   `json:"path"`
	// Host, when set, replaces the Host of the redirected request (needed
	// when the route rewrote it: the router rewrites in place).
	Host    string   `json:"host,omitempty"`
	Headers []Header `json:"headers,omitempty"`
}

// Headers that steer an internally redirected error to its fallback route,
// the names Higress uses. Clients cannot set them: route tables list them as
// internal-only.
const (
	HeaderFallbackRoute   = "x-envoy-route-name"
	HeaderFallbackService = "x-envoy-fallback-service"
)

// Mirror copies requests to another backend; responses are discarded.
type Mirror struct {
	Backend string `json:"backend"`
	// Percent of requests mirrored; nil means all.
	Percent *uint32 `json:"percent,omitempty"`
}

// HashPolicy picks the input of consistent hashing (ring-hash backends).
type HashPolicy struct {
	Header   string      `json:"header,omitempty"`
	Query    string      `json:"query,omitempty"`
	SourceIP bool        `json:"sourceIP,omitempty"`
	Cookie   *HashCookie `json:"cookie,omitempty"`
}

// HashCookie hashes on a cookie, which Envoy sets when absent (session affinity).
type HashCookie struct {
	Name string    `json:"name"`
	Path string    `json:"path,omitempty"`
	TTL  *Duration `json:"ttl,omitempty"`
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
	// Fallbacks are backends used, in order, when Backend has no healthy
	// endpoint (or its Service does not exist): default-backend and canary
	// fallback. Served as an Envoy aggregate cluster.
	Fallbacks []string `json:"fallbacks,omitempty"`
	// Header edits applied only when this destination is picked.
	RequestHeaders  *HeaderOps `json:"requestHeaders,omitempty"`
	ResponseHeaders *HeaderOps `json:"responseHeaders,omitempty"`
}

// Redirect answers with a 3xx.
type Redirect struct {
	Scheme        string `json:"scheme,omitempty"`
	Host          string `json:"host,omitempty"`
	Port          uint32 `json:"port,omitempty"`
	Path          string `json:"path,omitempty"`
	PrefixRewrite string `json:"prefixRewrite,omitempty"`
	Code          int    `json:"code,omitempty"`
	// DerivePort applies the Gateway API's rule when Port is 0: the
	// well-known port of Scheme when one is set, else the listener's port;
	// 80 for http and 443 for https are left out of the Location.
	DerivePort bool `json:"derivePort,omitempty"`
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
	// BackendRegistry: a service registry host (McpBridge); endpoints over
	// EDS from the registries.
	BackendRegistry
	// BackendStatic: fixed IP endpoints (Endpoints), part of the cluster.
	BackendStatic
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
	// Endpoints are the fixed endpoints of a BackendStatic backend, or of a
	// BackendDNS backend with several (host names Envoy resolves); a
	// BackendDNS backend without them has Host:Port.
	Endpoints []FixedEndpoint `json:"endpoints,omitempty"`
	// ConnectTimeout overrides the default connect timeout.
	ConnectTimeout *Duration `json:"connectTimeout,omitempty"`

	// Traffic policy (backend-protocol, proxy-ssl-*, load-balance, ...).
	HTTP2 bool         `json:"http2,omitempty"`
	TLS   *UpstreamTLS `json:"tls,omitempty"`
	// LB is the Envoy lb_policy: ROUND_ROBIN (default), LEAST_REQUEST,
	// RANDOM, RING_HASH, MAGLEV.
	LB string `json:"lb,omitempty"`
	// Hash is how routes to this backend pick the ring-hash key.
	Hash []HashPolicy `json:"hash,omitempty"`
	// PolicySource is the object that set the traffic policy; the first
	// one to reference a Service port wins (higress-semantics §3.7).
	PolicySource *diag.Object `json:"policySource,omitempty"`
}

// FixedEndpoint is an endpoint that is part of its cluster: an IP
// (BackendStatic) or a host name Envoy resolves (BackendDNS).
type FixedEndpoint struct {
	Host   string `json:"host"`
	Port   uint32 `json:"port"`
	Weight uint32 `json:"weight,omitempty"`
}

// UpstreamTLS is TLS from the gateway to a backend.
type UpstreamTLS struct {
	SNI string `json:"sni,omitempty"`
	// ClientCertificate is the SDS name of the client certificate (mTLS).
	ClientCertificate string `json:"clientCertificate,omitempty"`
	// CA is the SDS name of the validation context; empty means the server
	// certificate is not verified.
	CA string `json:"ca,omitempty"`
	// ALPN offered upstream (h2 for gRPC over TLS).
	ALPN []string `json:"alpn,omitempty"`
	// SystemCA verifies the server certificate against the trust store of
	// the Envoy host instead of CA (Gateway API wellKnownCACertificates).
	SystemCA bool `json:"systemCA,omitempty"`
	// SubjectAltNames, when set, is what the server certificate must carry
	// (any one of them); without it only the chain is verified.
	SubjectAltNames []SubjectAltName `json:"subjectAltNames,omitempty"`
}

// SubjectAltName is one accepted SAN of an upstream certificate.
type SubjectAltName struct {
	// Kind is DNS or URI.
	Kind  string `json:"kind"`
	Value string `json:"value"`
}

// ServiceRef names a Kubernetes Service.
type ServiceRef struct {
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name,omitempty"`
}

// Secret is one TLS certificate, or with CA set one validation context
// (trusted CAs), served over SDS.
type Secret struct {
	CA         []byte `json:"ca,omitempty"`
	Name       string `json:"name,omitempty"` // kubernetes-ingress://<cluster>/<ns>/<name>
	Namespace  string `json:"namespace,omitempty"`
	SecretName string `json:"secretName,omitempty"`
	Cert       []byte `json:"cert,omitempty"`
	Key        []byte `json:"key,omitempty"`
}
