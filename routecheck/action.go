package routecheck

import (
	"fmt"
	"strconv"
	"strings"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	aggregatev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/clusters/aggregate/v3"
	urirewritev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/path/rewrite/uri_template/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/durationpb"
)

// pickCluster resolves the route's cluster specifier, as Envoy does when the
// route is selected (before the HTTP filters run).
func (e *evaluator) pickCluster() error {
	ra := e.route.GetRoute()
	if ra == nil {
		return nil
	}
	switch cs := ra.GetClusterSpecifier().(type) {
	case *routev3.RouteAction_Cluster:
		e.out.Cluster = cs.Cluster
	case *routev3.RouteAction_ClusterHeader:
		e.out.Cluster = e.headers.first(cs.ClusterHeader)
		e.note("cluster taken from request header %s", cs.ClusterHeader)
	case *routev3.RouteAction_WeightedClusters:
		return e.pickWeighted(cs.WeightedClusters)
	case nil:
		return fmt.Errorf("route %q has no cluster specifier", e.route.GetName())
	default:
		return fmt.Errorf("route %q: cluster specifier %T is not supported", e.route.GetName(), cs)
	}
	return nil
}

// pickWeighted: random % total weight falls in one cluster's interval
// [sum of previous weights, + its weight). The random value comes from the
// request (Request.RandomValue) or, with header_name, from that header.
func (e *evaluator) pickWeighted(wc *routev3.WeightedCluster) error {
	var total uint64
	for _, c := range wc.GetClusters() {
		name := c.GetName()
		if c.GetClusterHeader() != "" {
			name = e.headers.first(c.GetClusterHeader())
		}
		e.out.Weighted = append(e.out.Weighted, ClusterWeight{Cluster: name, Weight: c.GetWeight().GetValue()})
		total += uint64(c.GetWeight().GetValue())
	}
	if wc.GetTotalWeight() != nil {
		total = uint64(wc.GetTotalWeight().GetValue())
	}
	if total == 0 {
		return fmt.Errorf("route %q: weighted clusters have a total weight of 0", e.route.GetName())
	}
	random := e.req.RandomValue
	if h := wc.GetHeaderName(); h != "" {
		if v, err := strconv.ParseUint(e.headers.first(h), 10, 64); err == nil {
			random = v
		}
	}
	if wc.GetUseHashPolicy().GetValue() {
		e.notSimulated("weighted clusters use_hash_policy (the request's random value was used)")
	}
	selected := random % total
	var begin uint64
	for i, c := range wc.GetClusters() {
		end := begin + uint64(c.GetWeight().GetValue())
		if selected >= begin && selected < end {
			e.weighted = c
			e.out.Cluster = e.out.Weighted[i].Cluster
			return nil
		}
		begin = end
	}
	// total_weight larger than the sum: Envoy picks no cluster.
	e.note("random value %d falls beyond the weights (total_weight %d)", selected, total)
	return nil
}

func (e *evaluator) act() error {
	switch a := e.route.GetAction().(type) {
	case *routev3.Route_Route:
		return e.forward(a.Route)
	case *routev3.Route_Redirect:
		return e.redirect(a.Redirect)
	case *routev3.Route_DirectResponse:
		return e.direct(a.DirectResponse)
	}
	return fmt.Errorf("route %q: action %T is not supported", e.route.GetName(), e.route.GetAction())
}

func (e *evaluator) forward(ra *routev3.RouteAction) error {
	out := e.out
	out.Service, out.Subset = serviceOf(out.Cluster)
	out.Timeout = durationOr(ra.GetTimeout(), "15s")
	rp := ra.GetRetryPolicy()
	if rp == nil {
		rp = e.vh.GetRetryPolicy()
	}
	if rp != nil {
		n := uint32(1)
		if rp.GetNumRetries() != nil {
			n = rp.GetNumRetries().GetValue()
		}
		out.Retry = &Retry{
			RetryOn: rp.GetRetryOn(), NumRetries: n, PerTryTimeout: durationOr(rp.GetPerTryTimeout(), ""),
			RetriableStatusCodes: rp.GetRetriableStatusCodes(),
		}
	}
	mirrors := ra.GetRequestMirrorPolicies()
	if len(mirrors) == 0 {
		mirrors = e.vh.GetRequestMirrorPolicies()
	}
	if len(mirrors) == 0 {
		mirrors = e.rc.GetRequestMirrorPolicies()
	}
	for _, m := range mirrors {
		c := m.GetCluster()
		if m.GetClusterHeader() != "" {
			c = e.headers.first(m.GetClusterHeader())
		}
		share := 100.0
		if rf := m.GetRuntimeFraction(); rf != nil {
			e.note("mirror to %s for %s of requests", c, percent(rf))
			share = fractionPercent(rf)
		}
		out.Mirrors = append(out.Mirrors, c)
		out.MirrorShares = append(out.MirrorShares, share)
	}
	if ra.GetMetadataMatch() != nil {
		e.notSimulated("route metadata_match (subset load balancing)")
	}

	// The router: the cluster must exist, and have a healthy endpoint.
	if _, haveClusters := e.res[resourcev3.ClusterType]; haveClusters {
		c, ok := e.res[resourcev3.ClusterType][out.Cluster].(*clusterv3.Cluster)
		if !ok || out.Cluster == "" {
			out.ClusterMissing = true
			switch ra.GetClusterNotFoundResponseCode() {
			case routev3.RouteAction_NOT_FOUND:
				out.Status = 404
			case routev3.RouteAction_INTERNAL_SERVER_ERROR:
				out.Status = 500
			default:
				out.Status = 503
			}
			return nil
		}
		eps, known := e.endpointsOf(c)
		if known {
			healthy := 0
			for _, ep := range eps {
				if ep.healthy {
					healthy++
				}
				out.Endpoints = append(out.Endpoints, ep.addr)
			}
			if healthy == 0 {
				out.NoHealthyUpstream = true
				out.Status = 503
			}
		}
	}

	// finalizeRequestHeaders: header mutations, then host rewrite, then path rewrite.
	h := e.headers.clone()
	for _, p := range e.requestParsers() {
		e.applyHeaderParser(h, p, h, nil, &out.RequestHeaderOps, &out.RequestHeadersRemoved)
	}
	origHost := h.first(":authority")
	origPath := h.first(":path")
	host, err := e.rewriteHost(ra, h, origPath)
	if err != nil {
		return err
	}
	if host != "" && host != origHost {
		h.set(":authority", host)
		if ra.GetAppendXForwardedHost() && origHost != "" {
			h.add("x-forwarded-host", origHost)
		}
	}
	path, err := e.rewritePath(ra, h, origPath)
	if err != nil {
		return err
	}
	h.set(":path", path)
	if !out.ClusterMissing && !out.NoHealthyUpstream {
		e.upstreamHeaders = h
	}
	out.UpstreamHost = h.first(":authority")
	out.UpstreamPath = path
	out.RequestHeaders = h.regular()

	e.responseHeaders(nil)
	out.Forwarded = out.Status == 0
	return nil
}

// requestParsers orders the header mutations as RouteEntryImplBase does:
// the weighted cluster's first, then route, virtual host, route configuration
// (most_specific_header_mutations_wins reverses the last three).
func (e *evaluator) requestParsers() []headerParser {
	var out []headerParser
	if w := e.weighted; w != nil {
		out = append(out, headerParser{"weighted-cluster", w.GetRequestHeadersToAdd(), w.GetRequestHeadersToRemove()})
	}
	levels := []headerParser{
		{"route", e.route.GetRequestHeadersToAdd(), e.route.GetRequestHeadersToRemove()},
		{"virtual-host", e.vh.GetRequestHeadersToAdd(), e.vh.GetRequestHeadersToRemove()},
		{"route-config", e.rc.GetRequestHeadersToAdd(), e.rc.GetRequestHeadersToRemove()},
	}
	return append(out, orderLevels(levels, e.rc.GetMostSpecificHeaderMutationsWins())...)
}

func (e *evaluator) responseParsers() []headerParser {
	var out []headerParser
	if w := e.weighted; w != nil {
		out = append(out, headerParser{"weighted-cluster", w.GetResponseHeadersToAdd(), w.GetResponseHeadersToRemove()})
	}
	levels := []headerParser{
		{"route", e.route.GetResponseHeadersToAdd(), e.route.GetResponseHeadersToRemove()},
		{"virtual-host", e.vh.GetResponseHeadersToAdd(), e.vh.GetResponseHeadersToRemove()},
		{"route-config", e.rc.GetResponseHeadersToAdd(), e.rc.GetResponseHeadersToRemove()},
	}
	return append(out, orderLevels(levels, e.rc.GetMostSpecificHeaderMutationsWins())...)
}

// orderLevels: by default the most specific level is applied first, so a less
// specific level's overwrite wins; most_specific_header_mutations_wins
// applies the least specific first.
func orderLevels(mostSpecificFirst []headerParser, mostSpecificWins bool) []headerParser {
	var out []headerParser
	for i := range mostSpecificFirst {
		p := mostSpecificFirst[i]
		if mostSpecificWins {
			p = mostSpecificFirst[len(mostSpecificFirst)-1-i]
		}
		if !p.empty() {
			out = append(out, p)
		}
	}
	return out
}

// responseHeaders applies the response header mutations to the upstream's
// response headers (Request.ResponseHeaders) or to a local reply's.
func (e *evaluator) responseHeaders(initial []Header) {
	resp := newHeaderMap(e.req.ResponseHeaders)
	if initial != nil {
		resp = newHeaderMap(initial)
	}
	for _, p := range e.responseParsers() {
		e.applyHeaderParser(resp, p, e.headers, resp, &e.out.ResponseHeaderOps, &e.out.ResponseHeadersRemoved)
	}
	e.corsResponseHeaders(resp)
	e.out.ResponseHeaders = resp.regular()
}

// rewriteHost implements the host rewrite specifiers; a weighted cluster's
// host_rewrite_literal wins. An empty result leaves the host unchanged.
func (e *evaluator) rewriteHost(ra *routev3.RouteAction, h *headerMap, origPath string) (string, error) {
	if w := e.weighted; w != nil && w.GetHostRewriteLiteral() != "" {
		return w.GetHostRewriteLiteral(), nil
	}
	switch hs := ra.GetHostRewriteSpecifier().(type) {
	case *routev3.RouteAction_HostRewriteLiteral:
		return hs.HostRewriteLiteral, nil
	case *routev3.RouteAction_HostRewriteHeader:
		return h.first(hs.HostRewriteHeader), nil
	case *routev3.RouteAction_HostRewritePathRegex:
		return regexReplaceAll(hs.HostRewritePathRegex, pathOnly(origPath))
	case *routev3.RouteAction_HostRewrite:
		return e.format(hs.HostRewrite, h, nil), nil
	case *routev3.RouteAction_AutoHostRewrite:
		if !hs.AutoHostRewrite.GetValue() {
			return "", nil
		}
		e.out.AutoHostRewrite = true
		if c, ok := e.res[resourcev3.ClusterType][e.out.Cluster].(*clusterv3.Cluster); ok {
			if eps, known := e.endpointsOf(c); known && len(eps) > 0 && eps[0].hostname != "" {
				if len(eps) > 1 {
					e.note("auto_host_rewrite: the host name of the endpoint chosen by the load balancer is used; the first was taken")
				}
				return eps[0].hostname, nil
			}
		}
		e.note("auto_host_rewrite: the upstream host has no host name here; the Host header is kept")
	}
	return "", nil
}

// rewritePath implements prefix_rewrite (replaces the matched prefix, or the
// whole matched path for path and regex matches), regex_rewrite (on the path
// without query), path_rewrite_policy (URI template) and path_rewrite
// (substitution format). The query string is kept.
func (e *evaluator) rewritePath(ra *routev3.RouteAction, h *headerMap, path string) (string, error) {
	just, rest := splitQuery(path)
	switch {
	case ra.GetPrefixRewrite() != "":
		return replacePrefix(path, e.match.matched, ra.GetPrefixRewrite()), nil
	case ra.GetRegexRewrite() != nil:
		np, err := regexReplaceAll(ra.GetRegexRewrite(), just)
		if err != nil {
			return "", fmt.Errorf("route %q regex_rewrite: %w", e.route.GetName(), err)
		}
		return np + rest, nil
	case ra.GetPathRewritePolicy() != nil:
		cfg := &urirewritev3.UriTemplateRewriteConfig{}
		if err := anyTo(ra.GetPathRewritePolicy().GetTypedConfig(), cfg); err != nil {
			return "", fmt.Errorf("route %q path_rewrite_policy is not supported: %w", e.route.GetName(), err)
		}
		if e.match.template == "" {
			return "", fmt.Errorf("route %q: path_rewrite_policy needs a uri_template path_match_policy", e.route.GetName())
		}
		np, err := rewriteURITemplate(e.match.template, cfg.GetPathTemplateRewrite(), just)
		if err != nil {
			e.note("path_rewrite_policy: %v; the path is kept", err)
			return path, nil
		}
		return np + rest, nil
	case ra.GetPathRewrite() != "":
		if np := e.format(ra.GetPathRewrite(), h, nil); np != "" {
			return np + rest, nil
		}
	}
	return path, nil
}

func replacePrefix(path, matched, rewrite string) string {
	if len(matched) > len(path) {
		return path
	}
	return rewrite + path[len(matched):]
}

// redirect builds the Location header as Envoy's Http::Utility::newUri does.
func (e *evaluator) redirect(rd *routev3.RedirectAction) error {
	path := e.headers.first(":path")
	just, rest := splitQuery(path)
	switch p := rd.GetPathRewriteSpecifier().(type) {
	case *routev3.RedirectAction_PrefixRewrite:
		path = replacePrefix(path, e.match.matched, p.PrefixRewrite)
	case *routev3.RedirectAction_RegexRewrite:
		np, err := regexReplaceAll(p.RegexRewrite, just)
		if err != nil {
			return fmt.Errorf("route %q redirect regex_rewrite: %w", e.route.GetName(), err)
		}
		path = np + rest
	}
	pathRedirect := rd.GetPathRedirect()
	if pr, ok := rd.GetPathRewriteSpecifier().(*routev3.RedirectAction_PathRewrite); ok {
		pathRedirect = e.format(pr.PathRewrite, e.headers, nil)
	}
	status := redirectStatus(rd.GetResponseCode())
	e.out.Redirect = &Redirect{Status: status, Location: newURI(e.headers, rd, path, pathRedirect)}
	e.out.Status = status
	e.responseHeaders([]Header{{Name: "location", Value: e.out.Redirect.Location}})
	return nil
}

// newURI is Envoy's Http::Utility::newUri: the URI a redirect action makes
// of the request h whose path (prefix or regex rewritten) is path:
// scheme_redirect / https_redirect or the request's scheme, host_redirect or
// the request's host (processRequestHost), port_redirect, path_redirect
// (keeping the request's query unless it has its own) or path, strip_query.
func newURI(h *headerMap, rd *routev3.RedirectAction, path, pathRedirect string) string {
	scheme := h.first(":scheme")
	switch s := rd.GetSchemeRewriteSpecifier().(type) {
	case *routev3.RedirectAction_SchemeRedirect:
		if s.SchemeRedirect != "" {
			scheme = s.SchemeRedirect
		}
	case *routev3.RedirectAction_HttpsRedirect:
		if s.HttpsRedirect {
			scheme = "https"
		}
	}
	port := ""
	if rd.GetPortRedirect() != 0 {
		port = ":" + strconv.FormatUint(uint64(rd.GetPortRedirect()), 10)
	}
	host := rd.GetHostRedirect()
	if host == "" {
		host = processRequestHost(h, scheme, port)
	}

	pathHasQuery := strings.Contains(pathRedirect, "?")
	final := path
	if pathRedirect != "" {
		final = pathRedirect
		if !pathHasQuery {
			if i := strings.IndexByte(path, '?'); i >= 0 {
				final = pathRedirect + path[i:]
			}
		}
	}
	if !strings.HasPrefix(final, "/") {
		final = "/" + final
	}
	if !pathHasQuery && rd.GetStripQuery() {
		if i := strings.IndexByte(final, '?'); i >= 0 {
			final = final[:i]
		}
	}
	return scheme + "://" + host + port + final
}

func redirectStatus(c routev3.RedirectAction_RedirectResponseCode) int {
	switch c {
	case routev3.RedirectAction_FOUND:
		return 302
	case routev3.RedirectAction_SEE_OTHER:
		return 303
	case routev3.RedirectAction_TEMPORARY_REDIRECT:
		return 307
	case routev3.RedirectAction_PERMANENT_REDIRECT:
		return 308
	}
	return 301
}

// processRequestHost is the request's Host for a redirect: its port is dropped
// when a new port is given, or when the scheme changes and the port is the
// default one of the original scheme (x-forwarded-proto).
func processRequestHost(h *headerMap, newScheme, newPort string) string {
	host := h.first(":authority")
	if host == "" {
		return host
	}
	end := -1
	if host[0] == '[' {
		if i := strings.LastIndex(host, "]:"); i >= 0 {
			end = i + 1
		}
	} else {
		end = strings.LastIndexByte(host, ':')
	}
	if end < 0 {
		return host
	}
	reqPort := host[end:]
	proto := h.first("x-forwarded-proto")
	remove := newPort != ""
	if !strings.EqualFold(newScheme, proto) {
		remove = remove || (strings.EqualFold(proto, "https") && reqPort == ":443")
		remove = remove || (strings.EqualFold(proto, "http") && reqPort == ":80")
	}
	if remove {
		return host[:end]
	}
	return host
}

func (e *evaluator) direct(dr *routev3.DirectResponseAction) error {
	d := &DirectResponse{Status: int(dr.GetStatus())}
	switch b := dr.GetBody().GetSpecifier().(type) {
	case *corev3.DataSource_InlineString:
		d.Body = b.InlineString
	case *corev3.DataSource_InlineBytes:
		d.Body = string(b.InlineBytes)
	case *corev3.DataSource_Filename:
		e.notSimulated("direct response body from file %s", b.Filename)
	case *corev3.DataSource_EnvironmentVariable:
		e.notSimulated("direct response body from environment variable %s", b.EnvironmentVariable)
	}
	var initial []Header
	if d.Status == 201 || (d.Status >= 300 && d.Status < 400) {
		d.Location = e.headers.first(":scheme") + "://" + processRequestHost(e.headers, e.headers.first(":scheme"), "") + e.headers.first(":path")
		initial = []Header{{Name: "location", Value: d.Location}}
	}
	e.out.DirectResponse = d
	e.out.Status = d.Status
	if initial == nil {
		initial = []Header{}
	}
	e.responseHeaders(initial)
	return nil
}

// serviceOf derives the Kubernetes Service (<ns>/<name>:<port>) or registry
// host (<host>:<port>) from an Istio-style cluster name
// outbound|<port>|<subset>|<host>.
func serviceOf(cluster string) (service, subset string) {
	parts := strings.Split(cluster, "|")
	if len(parts) != 4 {
		return "", ""
	}
	port, subset, host := parts[1], parts[2], parts[3]
	if i := strings.Index(host, ".svc."); i > 0 {
		if name, ns, ok := strings.Cut(host[:i], "."); ok && !strings.Contains(ns, ".") {
			return ns + "/" + name + ":" + port, subset
		}
	}
	return host + ":" + port, subset
}

type endpoint struct {
	addr     string
	hostname string
	healthy  bool
}

// endpointsOf lists a cluster's endpoints when they are known: from its
// ClusterLoadAssignment (EDS, when the resources include endpoints) or its
// inline load assignment (STATIC, STRICT_DNS, LOGICAL_DNS).
func (e *evaluator) endpointsOf(c *clusterv3.Cluster) ([]endpoint, bool) {
	return e.endpointsAt(c, 0)
}

const aggregateClusterName = "envoy.clusters.aggregate"

func (e *evaluator) endpointsAt(c *clusterv3.Cluster, depth int) ([]endpoint, bool) {
	if ct := c.GetClusterType(); ct != nil {
		if ct.GetName() != aggregateClusterName || depth > 0 {
			return nil, false
		}
		return e.aggregateEndpoints(c, ct)
	}
	var cla *endpointv3.ClusterLoadAssignment
	switch c.GetType() {
	case clusterv3.Cluster_EDS:
		eds, ok := e.res[resourcev3.EndpointType]
		if !ok {
			return nil, false
		}
		name := c.GetEdsClusterConfig().GetServiceName()
		if name == "" {
			name = c.GetName()
		}
		cla, _ = eds[name].(*endpointv3.ClusterLoadAssignment)
	case clusterv3.Cluster_STATIC, clusterv3.Cluster_STRICT_DNS, clusterv3.Cluster_LOGICAL_DNS:
		cla = c.GetLoadAssignment()
	default:
		return nil, false
	}
	dns := c.GetType() == clusterv3.Cluster_STRICT_DNS || c.GetType() == clusterv3.Cluster_LOGICAL_DNS
	var out []endpoint
	for _, l := range cla.GetEndpoints() {
		for _, lb := range l.GetLbEndpoints() {
			ep := lb.GetEndpoint()
			sa := ep.GetAddress().GetSocketAddress()
			x := endpoint{
				addr:     sa.GetAddress() + ":" + strconv.FormatUint(uint64(sa.GetPortValue()), 10),
				hostname: ep.GetHostname(),
			}
			if x.hostname == "" && dns {
				x.hostname = sa.GetAddress()
			}
			switch lb.GetHealthStatus() {
			case corev3.HealthStatus_UNKNOWN, corev3.HealthStatus_HEALTHY, corev3.HealthStatus_DEGRADED:
				x.healthy = true
			}
			out = append(out, x)
		}
	}
	return out, true
}

// aggregateEndpoints: an aggregate cluster's load balancer stacks the
// priorities of its clusters in order and sends traffic to the first
// priority with healthy hosts; hxds's clusters have one priority and only
// healthy endpoints, so that is the first cluster with a healthy endpoint
// (spill-over between partially healthy priorities is not simulated). Its
// endpoints stand for the aggregate's; clusters that do not exist are
// skipped, as Envoy does.
func (e *evaluator) aggregateEndpoints(c *clusterv3.Cluster, ct *clusterv3.Cluster_CustomClusterType) ([]endpoint, bool) {
	cfg := &aggregatev3.ClusterConfig{}
	if err := anyTo(ct.GetTypedConfig(), cfg); err != nil {
		e.notSimulated("aggregate cluster %s: %v", c.GetName(), err)
		return nil, false
	}
	var all []endpoint
	for _, name := range cfg.GetClusters() {
		sub, ok := e.res[resourcev3.ClusterType][name].(*clusterv3.Cluster)
		if !ok {
			continue
		}
		eps, known := e.endpointsAt(sub, 1)
		if !known {
			return nil, false
		}
		for _, ep := range eps {
			if ep.healthy {
				e.note("aggregate cluster %s sends the request to %s, its first cluster with a healthy endpoint", c.GetName(), name)
				return eps, true
			}
		}
		all = append(all, eps...)
	}
	return all, true
}

func durationOr(d *durationpb.Duration, def string) string {
	if d == nil {
		return def
	}
	return d.AsDuration().String()
}
