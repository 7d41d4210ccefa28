package routecheck

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

type evaluator struct {
	res Resources
	req Request
	out *Outcome

	listenerPort uint32
	hcm          *hcmv3.HttpConnectionManager
	rc           *routev3.RouteConfiguration
	vh           *routev3.VirtualHost
	route        *routev3.Route
	match        routeMatch
	// weighted is the chosen weighted cluster entry, if any.
	weighted *routev3.WeightedCluster_ClusterWeight
	headers  *headerMap
	internal bool
	// localReply: an HTTP filter answered the request (a CORS preflight).
	localReply bool
	// corsOrigin is the allowed Origin of a CORS request: the CORS filter
	// adds access-control-* headers to the response.
	corsOrigin string
	// stoppedAt is the index of the HTTP filter that answered the request
	// during decoding (a denial, a CORS preflight), -1 if none did.
	stoppedAt int
	// upstreamHeaders are the request headers after the router's
	// finalizeRequestHeaders (header mutations, host and path rewrites),
	// which Envoy applies in place to the downstream request headers; nil
	// when the router did not get that far.
	upstreamHeaders *headerMap
	// redirected: this is the stream the custom_response filter recreated
	// for an internal redirect.
	redirected bool
}

// Evaluate runs req through res as Envoy would and reports what happens. An
// error means the configuration uses something Evaluate cannot decide (an
// unsupported matcher, a missing route configuration, a malformed typed
// config); the outcome then holds what was decided before it.
//
// Defaults: Method GET, Path "/", Port 443 with TLS and 80 without, Scheme
// from TLS.
func Evaluate(res Resources, req Request) (Outcome, error) {
	if req.Method == "" {
		req.Method = "GET"
	}
	if req.Path == "" {
		req.Path = "/"
	}
	if req.Port == 0 {
		req.Port = 80
		if req.TLS {
			req.Port = 443
		}
	}
	if req.Scheme == "" {
		req.Scheme = "http"
		if req.TLS {
			req.Scheme = "https"
		}
	}
	e := &evaluator{res: res, req: req, out: &Outcome{}, stoppedAt: -1}
	err := e.run()
	if err == nil && req.UpstreamStatus != 0 && !e.out.Forwarded {
		e.note("upstreamStatus %d is not used: the request is not forwarded upstream", req.UpstreamStatus)
	}
	return *e.out, err
}

func (e *evaluator) note(format string, args ...any) {
	e.out.Notes = appendUnique(e.out.Notes, fmt.Sprintf(format, args...))
}

func (e *evaluator) notSimulated(format string, args ...any) {
	e.out.NotSimulated = appendUnique(e.out.NotSimulated, fmt.Sprintf(format, args...))
}

func (e *evaluator) run() error {
	if !strings.HasPrefix(e.req.Path, "/") && e.req.Path != "*" {
		return fmt.Errorf("request path %q must start with /", e.req.Path)
	}
	l := e.selectListener()
	if l == nil {
		e.out.NoListener = true
		e.out.ConnectionError = fmt.Sprintf("no listener on port %d: connection refused", e.req.Port)
		return nil
	}
	e.out.Listener = l.GetName()
	e.listenerPort = e.req.Port
	conn := e.connectionOf(l)
	fc, err := e.selectFilterChain(l, conn)
	if err != nil {
		return err
	}
	if fc == nil {
		e.out.NoFilterChain = true
		e.out.ConnectionError = fmt.Sprintf("no filter chain of %s matches (transport %s, SNI %q): connection closed", l.GetName(), conn.transport, conn.sni)
		return nil
	}
	e.out.FilterChain = fc.GetName()
	if fc.GetName() == "" {
		e.out.FilterChain = "(unnamed)"
		for i, c := range l.GetFilterChains() {
			if c == fc {
				e.out.FilterChain = fmt.Sprintf("filter_chains[%d]", i)
			}
		}
		if fc == l.GetDefaultFilterChain() {
			e.out.FilterChain = "default_filter_chain"
		}
	}
	tp, err := tcpProxyOf(fc)
	if err != nil {
		return err
	}
	reason, err := e.checkTransport(fc)
	if err != nil {
		return err
	}
	// A TLS client on a tcp_proxy chain without a transport socket is TLS
	// passthrough: the bytes go upstream as they are.
	if reason != "" && !(tp != nil && fc.GetTransportSocket() == nil) {
		e.out.ConnectionError = reason
		return nil
	}
	if tp != nil {
		e.tcpProxy(fc, tp)
		return nil
	}
	if e.hcm, err = httpConnectionManager(fc); err != nil {
		return err
	}
	if stop := e.prepareHeaders(); stop {
		return nil
	}
	if e.rc, err = e.routeConfig(); err != nil {
		return err
	}
	e.out.RouteConfig = e.rc.GetName()
	if !e.internal {
		for _, h := range e.rc.GetInternalOnlyHeaders() {
			e.headers.remove(h)
		}
	}

	if err := e.routeRequest(); err != nil {
		return err
	}
	return e.customResponse()
}

// routeRequest selects the virtual host and the route for the prepared
// request headers, runs the HTTP filters and the route's action: what the
// connection manager does with a stream once its headers are sanitized (the
// part an internally redirected stream goes through again).
func (e *evaluator) routeRequest() error {
	sslRedirect := false
	e.vh = e.selectVirtualHost()
	if e.vh == nil {
		e.out.NoRouteReason = fmt.Sprintf("no virtual host of %s matches host %q", e.rc.GetName(), e.headers.first(":authority"))
	} else {
		e.out.VirtualHost = e.vh.GetName()
		sslRedirect = e.requiresTLSRedirect()
		if !sslRedirect {
			if err := e.selectRoute(); err != nil {
				return err
			}
			if e.route == nil {
				e.out.NoRouteReason = fmt.Sprintf("no route of virtual host %s matches", e.vh.GetName())
			} else if err := e.pickCluster(); err != nil {
				return err
			}
		}
	}
	// Decoder filters run before the router, with the route already chosen.
	if err := e.runFilters(); err != nil {
		return err
	}
	if e.out.Denied != nil {
		e.out.Status = e.out.Denied.Status
		return nil
	}
	if e.localReply {
		return nil
	}
	switch {
	case sslRedirect:
		e.out.Redirect = &Redirect{Status: 301, Location: "https://" + e.headers.first(":authority") + e.headers.first(":path")}
		e.out.Status = 301
		e.note("virtual host %s requires TLS (require_tls %s)", e.vh.GetName(), e.vh.GetRequireTls())
		return nil
	case e.route == nil:
		e.out.NoRoute = true
		e.out.Status = 404
		return nil
	}
	return e.act()
}

// prepareHeaders builds the request headers as the connection manager hands
// them to routing: pseudo-headers, x-forwarded-proto and x-envoy-internal for
// an edge proxy, path normalization and host port stripping. It reports true
// when the connection manager answers the request itself.
func (e *evaluator) prepareHeaders() bool {
	h := &headerMap{}
	h.add(":method", e.req.Method)
	h.add(":scheme", e.req.Scheme)
	host := e.req.Host
	var rest []Header
	for _, hd := range e.req.Headers {
		if strings.EqualFold(hd.Name, "host") || strings.EqualFold(hd.Name, ":authority") {
			if host == "" {
				host = hd.Value
			}
			continue
		}
		rest = append(rest, hd)
	}
	if host != "" {
		h.add(":authority", host)
	}
	h.add(":path", e.req.Path)
	if host == "" {
		// The connection manager requires a Host (:authority) header.
		e.headers = h
		e.out.Status = 400
		e.out.NoRouteReason = "missing Host header: the connection manager answers 400"
		return true
	}
	for _, hd := range rest {
		if strings.HasPrefix(hd.Name, ":") {
			h.set(hd.Name, hd.Value)
		} else {
			h.add(hd.Name, hd.Value)
		}
	}
	e.headers = h

	connScheme := "http"
	if e.req.TLS {
		connScheme = "https"
	}
	edge := e.hcm.GetUseRemoteAddress().GetValue()
	if _, ok := h.get("x-forwarded-proto"); edge || !ok {
		h.set("x-forwarded-proto", connScheme)
	}
	if edge && e.req.SourceIP != "" && !e.hcm.GetSkipXffAppend() {
		if xff, ok := h.get("x-forwarded-for"); ok {
			h.set("x-forwarded-for", xff+","+e.req.SourceIP)
		} else {
			h.set("x-forwarded-for", e.req.SourceIP)
		}
	}
	if ip, err := netip.ParseAddr(e.req.SourceIP); err == nil {
		ip = ip.Unmap()
		// internal_address_config's CIDR ranges, else RFC 1918 / RFC 4193 and loopback.
		if ranges := e.hcm.GetInternalAddressConfig().GetCidrRanges(); len(ranges) > 0 {
			_, e.internal = longestCIDR(ranges, ip)
		} else {
			e.internal = ip.IsPrivate() || ip.IsLoopback()
		}
	} else if e.req.SourceIP != "" {
		e.note("sourceIP %q is not an IP address", e.req.SourceIP)
	}
	if !edge {
		e.note("the connection manager does not use the remote address (use_remote_address false): x-forwarded-for handling is not simulated")
	}
	if e.internal {
		h.set("x-envoy-internal", "true")
	} else {
		h.remove("x-envoy-internal")
	}

	return e.normalizeRequest()
}

// normalizeRequest is the connection manager's maybeNormalizePath and
// maybeNormalizeHost, which run for every stream, internally redirected ones
// included: escaped slashes, normalize_path, merge_slashes, then the host's
// trailing dot and port. It reports true when the connection manager answers
// the request itself.
func (e *evaluator) normalizeRequest() bool {
	h := e.headers
	path := h.first(":path")
	redirect := false
	switch a := e.hcm.GetPathWithEscapedSlashesAction(); a {
	case hcmv3.HttpConnectionManager_IMPLEMENTATION_SPECIFIC_DEFAULT, hcmv3.HttpConnectionManager_KEEP_UNCHANGED:
	default:
		if np, changed := unescapeSlashes(path); changed {
			switch a {
			case hcmv3.HttpConnectionManager_REJECT_REQUEST:
				e.out.Status = 400
				e.out.NoRouteReason = "escaped slashes in the path are rejected (path_with_escaped_slashes_action REJECT_REQUEST)"
				return true
			case hcmv3.HttpConnectionManager_UNESCAPE_AND_REDIRECT:
				redirect = true
			}
			path = np
		}
	}
	if e.hcm.GetNormalizePath().GetValue() {
		path = normalizePath(path)
	}
	if e.hcm.GetMergeSlashes() {
		path = mergeSlashes(path)
	}
	if path != h.first(":path") {
		e.out.Path = path
	}
	h.set(":path", path)
	if redirect {
		e.out.Status = 307
		e.out.Redirect = &Redirect{Status: 307, Location: path}
		e.note("escaped slashes: the connection manager redirects to the unescaped path")
		return true
	}

	if host := h.first(":authority"); host != "" {
		if e.hcm.GetStripTrailingHostDot() {
			host = stripTrailingHostDot(host)
		}
		if e.hcm.GetStripAnyHostPort() {
			host = hostWithoutPort(host)
		}
		if e.hcm.GetStripMatchingHostPort() {
			if h, p, ok := splitHostPort(host); ok && p == fmt.Sprint(e.listenerPort) {
				host = h
			}
		}
		h.set(":authority", host)
	}
	return false
}

func stripTrailingHostDot(host string) string {
	h, p, ok := splitHostPort(host)
	if !ok {
		return strings.TrimSuffix(host, ".")
	}
	return strings.TrimSuffix(h, ".") + ":" + p
}

// splitHostPort splits "host:port" (IPv6 in brackets) as Envoy's getPortStart does.
func splitHostPort(host string) (string, string, bool) {
	i := strings.LastIndexByte(host, ':')
	if i < 0 {
		return host, "", false
	}
	if j := strings.LastIndexByte(host, ']'); j > i {
		return host, "", false
	}
	return host[:i], host[i+1:], true
}

func hostWithoutPort(host string) string {
	h, _, _ := splitHostPort(host)
	return h
}

func (e *evaluator) routeConfig() (*routev3.RouteConfiguration, error) {
	switch rs := e.hcm.GetRouteSpecifier().(type) {
	case *hcmv3.HttpConnectionManager_Rds:
		name := rs.Rds.GetRouteConfigName()
		m, ok := e.res[resourcev3.RouteType][name]
		if !ok {
			return nil, fmt.Errorf("route configuration %q (RDS of filter chain %s) is not among the resources", name, e.out.FilterChain)
		}
		rc, ok := m.(*routev3.RouteConfiguration)
		if !ok {
			return nil, fmt.Errorf("route configuration %q is a %T", name, m)
		}
		return rc, nil
	case *hcmv3.HttpConnectionManager_RouteConfig:
		return rs.RouteConfig, nil
	case *hcmv3.HttpConnectionManager_ScopedRoutes:
		return nil, fmt.Errorf("filter chain %s: scoped routes are not supported", e.out.FilterChain)
	}
	return nil, fmt.Errorf("filter chain %s: the connection manager has no route configuration", e.out.FilterChain)
}

// selectVirtualHost implements Envoy's domain search: the exact domain, then
// the longest suffix wildcard ("*.foo.com", "*-bar.foo.com"), then the
// longest prefix wildcard ("foo.*"), then "*". The Host header is compared
// lower-cased and in full (port included) unless the route configuration sets
// ignore_port_in_host_matching. A wildcard never matches an empty string.
func (e *evaluator) selectVirtualHost() *routev3.VirtualHost {
	exact := map[string]*routev3.VirtualHost{}
	suffix := map[string]*routev3.VirtualHost{}
	prefix := map[string]*routev3.VirtualHost{}
	var def *routev3.VirtualHost
	add := func(m map[string]*routev3.VirtualHost, key string, vh *routev3.VirtualHost, domain string) {
		if prev, dup := m[key]; dup {
			e.note("domain %q is in virtual hosts %s and %s (Envoy rejects the route configuration)", domain, prev.GetName(), vh.GetName())
			return
		}
		m[key] = vh
	}
	for _, vh := range e.rc.GetVirtualHosts() {
		for _, d := range vh.GetDomains() {
			d = strings.ToLower(d)
			switch {
			case d == "*":
				if def != nil {
					e.note("several virtual hosts have domain \"*\" (Envoy rejects the route configuration)")
					continue
				}
				def = vh
			case strings.HasPrefix(d, "*"):
				add(suffix, d[1:], vh, d)
			case strings.HasSuffix(d, "*"):
				add(prefix, d[:len(d)-1], vh, d)
			default:
				add(exact, d, vh, d)
			}
		}
	}
	if len(exact) == 0 && len(suffix) == 0 && len(prefix) == 0 {
		return def
	}
	host, ok := e.headers.get(":authority")
	if !ok {
		return nil
	}
	if e.rc.GetIgnorePortInHostMatching() {
		host = hostWithoutPort(host)
	}
	host = strings.ToLower(host)
	if vh, ok := exact[host]; ok {
		return vh
	}
	if vh := longestWildcard(suffix, host, strings.HasSuffix); vh != nil {
		return vh
	}
	if vh := longestWildcard(prefix, host, strings.HasPrefix); vh != nil {
		return vh
	}
	return def
}

func longestWildcard(m map[string]*routev3.VirtualHost, host string, has func(string, string) bool) *routev3.VirtualHost {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if len(keys[i]) != len(keys[j]) {
			return len(keys[i]) > len(keys[j])
		}
		return keys[i] < keys[j]
	})
	for _, k := range keys {
		if len(k) < len(host) && has(host, k) {
			return m[k]
		}
	}
	return nil
}

// requiresTLSRedirect: require_tls ALL redirects every request whose
// x-forwarded-proto is not https; EXTERNAL_ONLY only external ones.
func (e *evaluator) requiresTLSRedirect() bool {
	https := e.headers.first("x-forwarded-proto") == "https"
	switch e.vh.GetRequireTls() {
	case routev3.VirtualHost_ALL:
		return !https
	case routev3.VirtualHost_EXTERNAL_ONLY:
		return !https && e.headers.first("x-envoy-internal") != "true"
	}
	return false
}

// selectRoute takes the first route that matches, in order.
func (e *evaluator) selectRoute() error {
	if e.vh.GetMatcher() != nil {
		return fmt.Errorf("virtual host %s uses a matcher tree, which is not supported", e.vh.GetName())
	}
	for i, r := range e.vh.GetRoutes() {
		rm, err := e.matchRoute(r, e.headers, e.rc.GetIgnorePathParametersInPathMatching())
		if err != nil {
			return err
		}
		if rm.ok {
			e.route, e.match = r, rm
			idx := i
			e.out.Route, e.out.RouteIndex, e.out.Match = r.GetName(), &idx, rm.desc
			return nil
		}
	}
	return nil
}
