// Package routecheck evaluates requests against the Envoy resources of one
// gateway group the way a stock Envoy would, like Envoy's router_check_tool,
// so tests can check behaviour and not only the shape of the configuration.
//
// Evaluate is pure: it reads only the resources and the request. ParseTests
// and ParseConfigDump decode the test-file and ConfigDump formats from bytes;
// the caller does the I/O.
//
// Simulated, following Envoy's source (config_impl.cc, header_utility.cc,
// http/utility.cc, filter chain matching):
//   - listener by port (a listener on the destination address before a
//     wildcard one); filter chain by destination port, destination IP,
//     server name (exact, then the longest "*.suffix" wildcard, then chains
//     without server names), transport protocol and ALPN as tls_inspector
//     detects them, source IP / type / port; default_filter_chain; a TLS
//     client on a plain chain or the reverse fails the handshake;
//   - tcp_proxy chains (TCP and TLS passthrough): cluster or weighted
//     clusters, the chosen cluster's endpoints, a connection closed when the
//     cluster is missing or has no healthy endpoint;
//   - the HTTP connection manager: RDS or inline route configuration,
//     x-forwarded-proto and x-envoy-internal of an edge proxy,
//     path_with_escaped_slashes_action, normalize_path (dot segments and
//     backslashes), merge_slashes, strip_trailing_host_dot, strip_*_host_port;
//   - virtual host selection: exact domain, longest suffix wildcard, longest
//     prefix wildcard, "*", on the lower-cased Host with its port (or without
//     it with ignore_port_in_host_matching); require_tls redirects;
//   - route matching in order: prefix, path, safe_regex (RE2, full match),
//     path_separated_prefix, uri_template path_match_policy, connect_matcher,
//     case_sensitive, the query string excluded, ignore_path_parameters;
//     headers (every HeaderMatcher form, invert_match,
//     treat_missing_header_as_empty, pseudo-headers), query_parameters,
//     cookies, grpc, tls_context; runtime_fraction is taken as matching;
//   - actions: cluster, cluster_header, weighted_clusters (random value %
//     total weight, header_name); prefix_rewrite, regex_rewrite (\N groups),
//     uri_template path_rewrite_policy, path_rewrite; host_rewrite_literal,
//     host_rewrite_header, host_rewrite_path_regex, host_rewrite,
//     auto_host_rewrite (DNS clusters, endpoint host names); redirects with
//     the Location Envoy builds (scheme, host, port, path_redirect,
//     prefix_rewrite, regex_rewrite, https_redirect, strip_query, default
//     port dropping); direct responses (inline body, Location for 201/3xx);
//     timeout, retry policy and mirrors reported; a missing cluster
//     (cluster_not_found_response_code) and a cluster without healthy
//     endpoints (503) when clusters and endpoints are part of the resources,
//     an aggregate cluster (envoy.clusters.aggregate) standing for the first
//     of its clusters with a healthy endpoint;
//   - header mutations at weighted-cluster, route, virtual-host and route
//     configuration level in Envoy's order (most_specific_header_mutations_wins),
//     every append_action, keep_empty_value, and the %REQ()%, %RESP()% and
//     downstream-address substitution commands;
//   - HTTP filters up to the router with their per-route configuration (most
//     specific of weighted cluster, route, virtual host, route configuration;
//     FilterConfig is_optional / disabled; HttpFilter.disabled): RBAC is
//     evaluated (ALLOW / DENY / LOG; any, and/or/not, remote_ip,
//     direct_remote_ip, source_ip, header, url_path, destination port,
//     requested server name) and denies with 403; local rate limits and CORS
//     policies are reported;
//   - the custom_response filter (Outcome.CustomResponse), on the response:
//     the upstream's status (Request.UpstreamStatus, not simulated when 0)
//     or Envoy's own answer (404 no route, 503 no cluster or no healthy
//     endpoint, 403 denied, redirects, direct responses: local replies pass
//     every encoder filter) is matched against the most specific per-route
//     CustomResponse whose matcher matches (weighted cluster, route, virtual
//     host, route configuration), then the filter's own. Matchers: matcher
//     lists (single / and / or / not predicates, nested matchers,
//     on_no_match), exact and prefix matcher trees, value_match string
//     matchers, on the inputs HttpResponseStatusCodeMatchInput,
//     HttpResponseStatusCodeClassMatchInput, HttpResponseHeaderMatchInput,
//     HttpRequestHeaderMatchInput and HttpResponseLocalReplyMatchInput.
//     A RedirectPolicy builds its URI (uri, or redirect_action through
//     newUri: host_redirect, port_redirect, scheme_redirect, https_redirect,
//     path_redirect keeping the query unless it has one, strip_query) from
//     the request headers as the router left them (it rewrites them in
//     place when it forwards: route header mutations, host and path
//     rewrites), replaces :scheme, :authority and :path, adds
//     request_headers_to_add; if no route matches the new headers the
//     original response goes through unchanged; else the method becomes GET
//     and the request is evaluated again as a new stream (path and host
//     normalization, route, HTTP filters, router, but not the first pass's
//     header sanitizing, so internal_only_headers the policy adds survive) in
//     CustomResponseOutcome.Redirected. The client gets the redirected
//     response with response_headers_to_add and the policy's status_code,
//     else the original status (Envoy ≥ 1.26); a redirected stream is never
//     redirected again. A redirect policy does not act on a local reply sent
//     by a filter placed before it (it never saw the request). A
//     LocalResponsePolicy answers with its inline body, status_code (else
//     the original status) and response_headers_to_add. Sources: Envoy's
//     custom_response_filter.cc, redirect_policy.cc, local_response_policy.cc
//     and custom_response_integration_test.cc.
//
// Not simulated (reported in Outcome.NotSimulated or Outcome.Notes): other
// HTTP filters (Wasm, ext_authz, ...) and filters served over ECDS, CORS
// preflights, token consumption of rate limits, RBAC metadata / CEL / matcher
// trees, x-forwarded-for trust, load balancing and hash policies (the first
// endpoint stands for the chosen one), retries and timeouts at run time,
// dynamic metadata and filter state matchers, virtual host matcher trees,
// scoped routes, cluster specifier plugins (these make Evaluate fail); the
// status the upstream of an internally redirected request answers (its
// status does not matter to the client unless the custom_response filter is
// disabled on the redirected route), custom responses' body_format,
// modify_request_headers_action and custom matchers, request bodies (Envoy
// recreates the stream only once the request is complete), headers the
// router adds itself (x-envoy-original-path, x-envoy-expected-rq-timeout-ms).
package routecheck

import (
	"google.golang.org/protobuf/proto"
)

// Resources are the Envoy resources of one gateway group: xDS type URL →
// resource name → resource, the shape envoy.Check and the cache take.
// Listeners, routes and clusters are used; endpoints and secrets when present.
type Resources = map[string]map[string]proto.Message

// Header is one request or response header. Names are case-insensitive.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Request is what a client sends and where it connects to.
type Request struct {
	// Port is the gateway port the client connects to (listener selection).
	Port uint32
	// DestinationIP is the local address the connection arrives on; empty
	// means "any", so filter chains that match destination IP ranges do not match.
	DestinationIP string
	// TLS says whether the client speaks TLS; SNI is the server name it sends
	// (empty: none) and ALPN its protocols (default h2, http/1.1 when TLS).
	TLS        bool
	SNI        string
	ALPN       []string
	ClientCert bool // the client presented a certificate that validated
	// Host is the Host / :authority header, as sent (port included if any).
	Host string
	// Path is the request target, query string included ("/a/b?x=1").
	Path string
	// Method defaults to GET.
	Method string
	// Scheme is :scheme; default https with TLS, http without.
	Scheme string
	// Headers are the other request headers, in order; a name may repeat.
	Headers []Header
	// SourceIP is the client address (IPv4 or IPv6, no port).
	SourceIP string
	// RandomValue drives weighted-cluster selection exactly as Envoy's random
	// value does: value % total weight picks the cluster.
	RandomValue uint64
	// ResponseHeaders are the headers the upstream answers with, so response
	// header mutations (overwrite, remove) can be seen. Optional.
	ResponseHeaders []Header
	// UpstreamStatus is the status the selected upstream answers a forwarded
	// request with, which the custom_response filter matches; 0: not
	// simulated (custom responses then only see Envoy's own answers).
	UpstreamStatus int
}

// Outcome is what Envoy does with a Request.
type Outcome struct {
	// Connection level.
	Listener    string `json:"listener,omitempty"`
	FilterChain string `json:"filterChain,omitempty"`
	// Certificates are the SDS secret names of the chosen TLS filter chain.
	Certificates []string `json:"certificates,omitempty"`
	NoListener   bool     `json:"noListener,omitempty"`
	// NoFilterChain: no filter chain matches the connection; Envoy closes it.
	NoFilterChain bool `json:"noFilterChain,omitempty"`
	// ConnectionError says why the connection fails (no listener, no filter
	// chain, TLS spoken to a plain-text chain or the reverse).
	ConnectionError string `json:"connectionError,omitempty"`

	// TCPProxy: the chosen filter chain proxies the connection (tcp_proxy):
	// no HTTP routing; Cluster, Weighted, Service and Endpoints describe
	// the upstream, Forwarded that the connection reaches it.
	TCPProxy bool `json:"tcpProxy,omitempty"`

	// Routing.
	RouteConfig string `json:"routeConfig,omitempty"`
	VirtualHost string `json:"virtualHost,omitempty"`
	// Route is the Envoy route name; RouteIndex its position in the virtual
	// host (0-based), Match a description of its match.
	Route      string `json:"route,omitempty"`
	RouteIndex *int   `json:"routeIndex,omitempty"`
	Match      string `json:"match,omitempty"`
	// Path is :path as routed, after the connection manager's normalization.
	Path string `json:"path,omitempty"`
	// NoRoute: 404 from the router (no virtual host or no route, "NR").
	NoRoute       bool   `json:"noRoute,omitempty"`
	NoRouteReason string `json:"noRouteReason,omitempty"`

	// Status is the HTTP status Envoy answers with itself (404 no route,
	// 403 denied, 3xx redirect, direct response status, 503 no cluster or no
	// healthy endpoint, 400 rejected path); 0 when the request is forwarded
	// upstream or the connection fails.
	Status    int  `json:"status,omitempty"`
	Forwarded bool `json:"forwarded,omitempty"`

	// Upstream.
	Cluster string `json:"cluster,omitempty"`
	// Service is <namespace>/<name>:<port> for Kubernetes Service clusters
	// (outbound|<port>|<subset>|<svc>.<ns>.svc.<suffix>), else <host>:<port>.
	Service  string          `json:"service,omitempty"`
	Subset   string          `json:"subset,omitempty"`
	Weighted []ClusterWeight `json:"weighted,omitempty"`
	// ClusterMissing: the chosen cluster is not among the resources; Envoy
	// answers cluster_not_found_response_code (503 by default).
	ClusterMissing bool `json:"clusterMissing,omitempty"`
	// Endpoints of the chosen cluster (address:port), when endpoints are known.
	Endpoints         []string `json:"endpoints,omitempty"`
	NoHealthyUpstream bool     `json:"noHealthyUpstream,omitempty"`
	UpstreamPath      string   `json:"upstreamPath,omitempty"`
	UpstreamHost      string   `json:"upstreamHost,omitempty"`
	AutoHostRewrite   bool     `json:"autoHostRewrite,omitempty"`
	Timeout           string   `json:"timeout,omitempty"`
	Retry             *Retry   `json:"retry,omitempty"`
	Mirrors           []string `json:"mirrors,omitempty"`
	// MirrorShares is, for each of Mirrors, the percentage of requests it
	// receives (runtime_fraction's default; 100 without one).
	MirrorShares []float64 `json:"mirrorShares,omitempty"`

	Redirect       *Redirect       `json:"redirect,omitempty"`
	DirectResponse *DirectResponse `json:"directResponse,omitempty"`

	// Header mutations in the order Envoy applies them, the upstream request
	// headers that result (pseudo-headers excluded, repeated names joined
	// with ","), and every header name a mutation removes.
	RequestHeaderOps       []HeaderOp        `json:"requestHeaderOps,omitempty"`
	RequestHeaders         map[string]string `json:"requestHeaders,omitempty"`
	RequestHeadersRemoved  []string          `json:"requestHeadersRemoved,omitempty"`
	ResponseHeaderOps      []HeaderOp        `json:"responseHeaderOps,omitempty"`
	ResponseHeaders        map[string]string `json:"responseHeaders,omitempty"`
	ResponseHeadersRemoved []string          `json:"responseHeadersRemoved,omitempty"`

	// HTTP filters.
	Denied         *Denial        `json:"denied,omitempty"`
	Filters        []FilterResult `json:"filters,omitempty"`
	LocalRateLimit *TokenBucket   `json:"localRateLimit,omitempty"`
	Cors           *Cors          `json:"cors,omitempty"`
	// CustomResponse is what the custom_response filter did with the
	// response (nil: no policy matched it). The client then gets the
	// response it describes; the fields above keep describing the original
	// request and its own response.
	CustomResponse *CustomResponseOutcome `json:"customResponse,omitempty"`
	// NotSimulated lists the configuration that applies to this request but
	// whose effect is not simulated (Wasm and other filters, ECDS, ...).
	NotSimulated []string `json:"notSimulated,omitempty"`
	// Notes are assumptions made on the way (runtime fractions taken as
	// matching, unknown source IP, ...).
	Notes []string `json:"notes,omitempty"`
}

// ClusterWeight is one weighted cluster.
type ClusterWeight struct {
	Cluster string `json:"cluster"`
	Weight  uint32 `json:"weight"`
}

// Retry summarizes the retry policy of the route (or of its virtual host).
type Retry struct {
	RetryOn       string `json:"retryOn,omitempty"`
	NumRetries    uint32 `json:"numRetries"`
	PerTryTimeout string `json:"perTryTimeout,omitempty"`
	// RetriableStatusCodes are the codes retriable-status-codes retries on.
	RetriableStatusCodes []uint32 `json:"retriableStatusCodes,omitempty"`
}

// Redirect is a redirect response.
type Redirect struct {
	Status   int    `json:"status"`
	Location string `json:"location"`
}

// DirectResponse is a response the route answers itself.
type DirectResponse struct {
	Status int    `json:"status"`
	Body   string `json:"body,omitempty"`
	// Location is set for 201 and 3xx statuses, as Envoy does.
	Location string `json:"location,omitempty"`
}

// HeaderOp is one header mutation as Envoy applies it.
type HeaderOp struct {
	// Level: route-config, virtual-host, route or weighted-cluster.
	Level string `json:"level"`
	// Action: remove, append (APPEND_IF_EXISTS_OR_ADD), add-if-absent,
	// overwrite (OVERWRITE_IF_EXISTS_OR_ADD) or overwrite-if-exists.
	Action string `json:"action"`
	Name   string `json:"name"`
	Value  string `json:"value,omitempty"`
	// Skipped says why the mutation had no effect (empty value, condition).
	Skipped string `json:"skipped,omitempty"`
}

// Denial is a request stopped by an HTTP filter before the router.
type Denial struct {
	Status int    `json:"status"`
	Filter string `json:"filter"`
	Reason string `json:"reason,omitempty"`
}

// FilterResult is what one HTTP filter of the connection manager did.
type FilterResult struct {
	Name string `json:"name"`
	Type string `json:"type,omitempty"`
	// Config: where the effective configuration came from (filter, route,
	// virtual-host, route-config, weighted-cluster) or "disabled".
	Config string `json:"config,omitempty"`
	Result string `json:"result"`
}

// TokenBucket reports a local rate limit (not simulated: tokens are not counted).
type TokenBucket struct {
	Filter        string `json:"filter"`
	MaxTokens     uint32 `json:"maxTokens"`
	TokensPerFill uint32 `json:"tokensPerFill"`
	FillInterval  string `json:"fillInterval"`
	Enabled       string `json:"enabled,omitempty"`
	Enforced      string `json:"enforced,omitempty"`
}

// Cors is the CORS policy that applies (fields merged from the route, virtual
// host and route configuration as Envoy's CORS filter does) and what the
// filter did with the request.
type Cors struct {
	Result           string   `json:"result"`
	AllowOrigins     []string `json:"allowOrigins,omitempty"`
	AllowMethods     string   `json:"allowMethods,omitempty"`
	AllowHeaders     string   `json:"allowHeaders,omitempty"`
	ExposeHeaders    string   `json:"exposeHeaders,omitempty"`
	MaxAge           string   `json:"maxAge,omitempty"`
	AllowCredentials bool     `json:"allowCredentials,omitempty"`
}
