package routecheck

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	xdscorev3 "github.com/cncf/xds/go/xds/core/v3"
	matcherxds "github.com/cncf/xds/go/xds/type/matcher/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	customresponsev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/custom_response/v3"
	localresponsev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/http/custom_response/local_response_policy/v3"
	redirectpolicyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/http/custom_response/redirect_policy/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
)

// CustomResponseOutcome is what the custom_response filter
// (envoy.filters.http.custom_response) did with the response: a policy of
// its matcher matched the response, and either replaced it with a local one
// (LocalResponsePolicy) or redirected the request internally
// (RedirectPolicy). The client then gets this response, not the one the
// rest of the Outcome describes, unless a redirect did not happen
// (NotRedirected): the original response then goes through unchanged.
type CustomResponseOutcome struct {
	Filter string `json:"filter"`
	// Config is where the matching policy comes from: weighted-cluster,
	// route, virtual-host, route-config (typed_per_filter_config) or filter.
	Config string `json:"config"`
	// Name is the name of the matcher's action.
	Name string `json:"name,omitempty"`
	// Policy is redirect (RedirectPolicy) or local (LocalResponsePolicy).
	Policy string `json:"policy"`
	// OriginalStatus is the status of the response the policy matched: the
	// upstream's (Request.UpstreamStatus) or the one Envoy answered itself.
	OriginalStatus int `json:"originalStatus"`
	// Status is the status the client gets: the policy's status_code, else
	// OriginalStatus (a redirect keeps the original status whatever the
	// redirected request's upstream answers, Envoy ≥ 1.26).
	Status int `json:"status"`
	// Body is a local policy's body.
	Body string `json:"body,omitempty"`
	// URI is where a redirect policy sends the request: its uri, or its
	// redirect_action applied to the request as the router left it.
	URI string `json:"uri,omitempty"`
	// Redirected is the full evaluation of the internally redirected request
	// (a new stream on the same connection: same listener and route
	// configuration, the new host, path and headers, method GET); nil when
	// no redirect happened.
	Redirected *Outcome `json:"redirected,omitempty"`
	// NotRedirected says why a matching redirect policy let the original
	// response through (no route for the redirected request, ...).
	NotRedirected string `json:"notRedirected,omitempty"`
	// RequestHeaderOps are the redirect policy's request_headers_to_add.
	RequestHeaderOps []HeaderOp `json:"requestHeaderOps,omitempty"`
	// ResponseHeaderOps are the policy's response_headers_to_add, and
	// ResponseHeaders the headers of the response the client gets.
	ResponseHeaderOps []HeaderOp        `json:"responseHeaderOps,omitempty"`
	ResponseHeaders   map[string]string `json:"responseHeaders,omitempty"`
}

// responseData is what the custom_response matcher inputs see.
type responseData struct {
	status int
	// local: Envoy answered the request itself (a local reply).
	local bool
	resp  map[string]string
	req   *headerMap
}

// responseStatus is the status of the response the encoder filters see:
// Envoy's own answer, else the upstream's (Request.UpstreamStatus) for a
// forwarded request; known is false when it is not simulated.
func (e *evaluator) responseStatus() (status int, local, known bool) {
	switch {
	case e.out.Status != 0:
		return e.out.Status, true, true
	case e.out.Forwarded && e.req.UpstreamStatus != 0:
		return e.req.UpstreamStatus, false, true
	}
	return 0, false, false
}

// customResponse runs the custom_response filters of the connection manager
// on the response, in encoder order (from the router backwards), as
// CustomResponseFilter::encodeHeaders does (Envoy
// source/extensions/filters/http/custom_response/custom_response_filter.cc):
// the most specific per-route CustomResponse whose matcher matches the
// response wins (weighted cluster, route, virtual host, route
// configuration), then the filter's own configuration. Every encoder filter
// sees a local reply, even one sent during decoding by a filter after it, so
// Envoy's own answers (404 no route, 503 no healthy upstream, 403 denied,
// redirects, direct responses) are matched too; answers of the connection
// manager itself (400, the escaped-slash redirect) happen before the filter
// chain exists and are not.
func (e *evaluator) customResponse() error {
	filters := e.hcm.GetHttpFilters()
	end := len(filters)
	for i, f := range filters {
		if isRouter(f) {
			end = i
			break
		}
	}
	for i := end - 1; i >= 0; i-- {
		s, err := e.setupFilter(filters[i])
		if err != nil {
			return err
		}
		if s.kind != customResponseType || s.disabled {
			continue
		}
		if s.ecds {
			e.notSimulated("HTTP filter %s (ECDS %s)", s.name, strings.TrimPrefix(s.base.typeURL, typePrefix))
			continue
		}
		// decodeHeaders of the filter ran unless a filter before it answered.
		decoded := e.stoppedAt < 0 || i < e.stoppedAt
		done, err := e.applyCustomResponse(s, decoded)
		if err != nil || done {
			return err
		}
	}
	return nil
}

// setFilterResult updates the result of filter name in Outcome.Filters.
func (e *evaluator) setFilterResult(name, result string) {
	for i := len(e.out.Filters) - 1; i >= 0; i-- {
		if e.out.Filters[i].Name == name {
			e.out.Filters[i].Result = result
			return
		}
	}
}

// applyCustomResponse matches the response against one custom_response
// filter's configurations and applies the policy found; done reports that
// the filter replaced the response (later encoder filters of the same kind
// then see the replaced one, which this does not simulate).
func (e *evaluator) applyCustomResponse(s filterSetup, decoded bool) (done bool, err error) {
	type candidate struct {
		level string
		cfg   *customresponsev3.CustomResponse
	}
	var cands []candidate
	for _, l := range e.perRouteLevels() {
		a, ok := l.m[s.name]
		if !ok {
			continue
		}
		tc := decodeTyped(a)
		if tc.err != nil {
			if tc.optional {
				continue
			}
			return false, fmt.Errorf("per-route config of HTTP filter %s (%s): %w", s.name, l.name, tc.err)
		}
		switch cfg := tc.msg.(type) {
		case *customresponsev3.CustomResponse:
			cands = append(cands, candidate{l.name, cfg})
		case nil:
			if tc.typeURL != "" {
				e.notSimulated("%s per-route config of %s of type %s", l.name, s.name, tc.typeURL)
			}
		default:
			return false, fmt.Errorf("per-route config of HTTP filter %s (%s) is a %s, not a CustomResponse", s.name, l.name, tc.typeURL)
		}
	}
	if cfg, ok := s.base.msg.(*customresponsev3.CustomResponse); ok {
		cands = append(cands, candidate{"filter", cfg})
	}
	configured := false
	for _, c := range cands {
		if c.cfg.GetCustomResponseMatcher() != nil {
			configured = true
		}
	}
	if !configured {
		e.setFilterResult(s.name, "no custom response matcher for this request")
		return false, nil
	}

	status, local, known := e.responseStatus()
	if !known {
		e.note("%s: the upstream's response status is not simulated (set upstreamStatus to match it against the custom responses)", s.name)
		e.setFilterResult(s.name, "response status not simulated (upstreamStatus unset)")
		return false, nil
	}
	d := responseData{status: status, local: local, resp: e.out.ResponseHeaders, req: e.headers}
	if e.upstreamHeaders != nil {
		// The router rewrites the downstream request headers in place.
		d.req = e.upstreamHeaders
	}
	for _, c := range cands {
		action, err := e.matchTree(s.name, c.cfg.GetCustomResponseMatcher(), d)
		if err != nil {
			return false, err
		}
		if action == nil {
			continue
		}
		cr := &CustomResponseOutcome{Filter: s.name, Config: c.level, Name: action.GetName(), OriginalStatus: status, Status: status}
		tc := decodeTyped(action.GetTypedConfig())
		if tc.err != nil {
			return false, fmt.Errorf("%s action %s: %w", s.name, action.GetName(), tc.err)
		}
		switch p := tc.msg.(type) {
		case *redirectpolicyv3.RedirectPolicy:
			err = e.redirectPolicy(cr, p, d, decoded)
		case *localresponsev3.LocalResponsePolicy:
			e.localResponsePolicy(cr, p)
		default:
			e.notSimulated("%s action %s of type %s", s.name, action.GetName(), strings.TrimPrefix(tc.typeURL, typePrefix))
			e.setFilterResult(s.name, fmt.Sprintf("%s policy %s matches status %d: not simulated", c.level, action.GetName(), status))
			return true, nil
		}
		if err != nil {
			return false, err
		}
		e.out.CustomResponse = cr
		result := fmt.Sprintf("%s policy %s (%s) matches status %d: ", cr.Policy, cr.Name, c.level, status)
		switch {
		case cr.Policy == "local":
			result += fmt.Sprintf("local response %d", cr.Status)
		case cr.Redirected != nil:
			result += fmt.Sprintf("internally redirected to %s, answered with status %d", cr.URI, cr.Status)
		default:
			result += "not redirected: " + cr.NotRedirected
		}
		e.setFilterResult(s.name, result)
		return cr.Policy == "local" || cr.Redirected != nil, nil
	}
	e.setFilterResult(s.name, fmt.Sprintf("no custom response matches status %d", status))
	return false, nil
}

// redirectPolicy is RedirectPolicy::encodeHeaders (Envoy
// source/extensions/http/custom_response/redirect_policy/redirect_policy.cc):
// the URI is the policy's uri or its redirect_action applied (newUri) to the
// downstream request headers, which the router has already rewritten in
// place when it forwarded the request; scheme, host and path (fragment
// dropped) are replaced, request_headers_to_add applied, and if a route
// matches the new headers the method becomes GET and the stream is recreated:
// the redirected request goes through the connection manager again (path and
// host normalization, route selection, every HTTP filter, the router) but
// not its header sanitizing (x-forwarded-*, internal_only_headers), which
// happens on the first pass only. Its response gets the policy's
// response_headers_to_add and status_code, else the original status. The
// filter state the policy leaves stops a second redirect. Without a route,
// the original response goes through unchanged.
func (e *evaluator) redirectPolicy(cr *CustomResponseOutcome, p *redirectpolicyv3.RedirectPolicy, d responseData, decoded bool) error {
	cr.Policy = "redirect"
	if !decoded {
		// onLocalReplyCalled() && downstream_headers == nullptr: Continue.
		cr.NotRedirected = "a filter before it answered during decoding, so it never saw the request headers"
		return nil
	}
	h := d.req.clone()
	switch x := p.GetRedirectActionSpecifier().(type) {
	case *redirectpolicyv3.RedirectPolicy_Uri:
		cr.URI = x.Uri
	case *redirectpolicyv3.RedirectPolicy_RedirectAction:
		rd := x.RedirectAction
		switch rd.GetPathRewriteSpecifier().(type) {
		case *routev3.RedirectAction_PrefixRewrite, *routev3.RedirectAction_RegexRewrite:
			return fmt.Errorf("%s action %s: prefix_rewrite and regex_rewrite are rejected by Envoy for custom responses", cr.Filter, cr.Name)
		case *routev3.RedirectAction_PathRewrite:
			e.note("%s action %s: path_rewrite is ignored in a custom response redirect_action", cr.Filter, cr.Name)
		}
		if strings.Contains(rd.GetPathRedirect(), "#") {
			return fmt.Errorf("%s action %s: Envoy rejects a #fragment in path_redirect", cr.Filter, cr.Name)
		}
		cr.URI = newURI(h, rd, h.first(":path"), rd.GetPathRedirect())
	default:
		return fmt.Errorf("%s action %s: the redirect policy has neither uri nor redirect_action", cr.Filter, cr.Name)
	}
	scheme, authority, pathAndQuery, ok := parseAbsoluteURL(cr.URI)
	if !ok {
		cr.NotRedirected = fmt.Sprintf("invalid URI %q", cr.URI)
		return nil
	}
	if i := strings.IndexByte(pathAndQuery, '#'); i >= 0 {
		pathAndQuery = pathAndQuery[:i]
	}
	h.set(":scheme", scheme)
	h.set(":authority", authority)
	h.set(":path", pathAndQuery)
	var removed []string
	e.applyHeaderParser(h, headerParser{level: "custom-response", add: p.GetRequestHeadersToAdd()}, h, nil, &cr.RequestHeaderOps, &removed)
	if p.GetModifyRequestHeadersAction() != nil {
		e.notSimulated("%s action %s modify_request_headers_action %s", cr.Filter, cr.Name, p.GetModifyRequestHeadersAction().GetName())
	}
	// decoder_callbacks->route() after clearRouteCache(): the route of the
	// new headers, before the new stream normalizes them.
	if why, err := e.noRouteFor(h); err != nil || why != "" {
		cr.NotRedirected = why
		return err
	}
	h.set(":method", "GET")
	h.remove("content-length")

	req := e.req
	req.Method, req.Scheme = "GET", scheme
	req.Host, req.Path = authority, pathAndQuery
	req.Headers, req.ResponseHeaders, req.UpstreamStatus = nil, nil, 0
	sub := &evaluator{
		res: e.res, req: req, stoppedAt: -1, redirected: true,
		out: &Outcome{
			Listener: e.out.Listener, FilterChain: e.out.FilterChain, Certificates: e.out.Certificates,
			RouteConfig: e.out.RouteConfig,
		},
		listenerPort: e.listenerPort, hcm: e.hcm, rc: e.rc, headers: h, internal: e.internal,
	}
	if stop := sub.normalizeRequest(); !stop {
		if err := sub.routeRequest(); err != nil {
			return fmt.Errorf("internally redirected request %s: %w", cr.URI, err)
		}
	}
	cr.Redirected = sub.out
	for _, n := range sub.out.NotSimulated {
		e.notSimulated("redirected request: %s", n)
	}

	// The new stream's custom_response filter applies the policy kept in
	// the filter state, if the filter is part of the new route's chain.
	if !sub.filterActive(cr.Filter) {
		cr.Status = sub.out.Status
		cr.ResponseHeaders = sub.out.ResponseHeaders
		e.note("%s is disabled on the redirected route %s: the redirected response is not changed (status %s)", cr.Filter, sub.out.Route, statusOrUpstream(sub.out.Status))
		return nil
	}
	if p.GetStatusCode() != nil {
		cr.Status = int(p.GetStatusCode().GetValue())
	}
	resp := &headerMap{}
	for _, k := range sortedKeys(sub.out.ResponseHeaders) {
		resp.add(k, sub.out.ResponseHeaders[k])
	}
	e.applyHeaderParser(resp, headerParser{level: "custom-response", add: p.GetResponseHeadersToAdd()}, sub.headers, resp, &cr.ResponseHeaderOps, &removed)
	cr.ResponseHeaders = resp.regular()
	return nil
}

func statusOrUpstream(s int) string {
	if s == 0 {
		return "of its upstream"
	}
	return strconv.Itoa(s)
}

// filterActive reports whether HTTP filter name is in the request's chain
// (not disabled for its route).
func (e *evaluator) filterActive(name string) bool {
	for _, f := range e.hcm.GetHttpFilters() {
		if f.GetName() != name {
			continue
		}
		s, err := e.setupFilter(f)
		return err == nil && !s.disabled
	}
	return false
}

// noRouteFor says why no route matches the request headers h ("" when one
// does, a require_tls redirect included), as the connection manager's route
// lookup on the current stream.
func (e *evaluator) noRouteFor(h *headerMap) (string, error) {
	probe := &evaluator{res: e.res, req: e.req, out: &Outcome{}, hcm: e.hcm, rc: e.rc, headers: h,
		listenerPort: e.listenerPort, internal: e.internal, stoppedAt: -1}
	probe.vh = probe.selectVirtualHost()
	if probe.vh == nil {
		return fmt.Sprintf("no virtual host of %s matches host %q", e.rc.GetName(), h.first(":authority")), nil
	}
	if probe.requiresTLSRedirect() {
		return "", nil
	}
	if err := probe.selectRoute(); err != nil {
		return "", err
	}
	if probe.route == nil {
		return fmt.Sprintf("no route of virtual host %s matches %s %s", probe.vh.GetName(), h.first(":authority"), h.first(":path")), nil
	}
	return "", nil
}

// localResponsePolicy is LocalResponsePolicy::encodeHeaders: a local reply
// with the policy's body and status_code (else the original status) and its
// response_headers_to_add, sent straight to the client.
func (e *evaluator) localResponsePolicy(cr *CustomResponseOutcome, p *localresponsev3.LocalResponsePolicy) {
	cr.Policy = "local"
	if p.GetStatusCode() != nil {
		cr.Status = int(p.GetStatusCode().GetValue())
	}
	switch b := p.GetBody().GetSpecifier().(type) {
	case *corev3.DataSource_InlineString:
		cr.Body = b.InlineString
	case *corev3.DataSource_InlineBytes:
		cr.Body = string(b.InlineBytes)
	case *corev3.DataSource_Filename:
		e.notSimulated("%s action %s body from file %s", cr.Filter, cr.Name, b.Filename)
	case *corev3.DataSource_EnvironmentVariable:
		e.notSimulated("%s action %s body from environment variable %s", cr.Filter, cr.Name, b.EnvironmentVariable)
	}
	if p.GetBodyFormat() != nil {
		e.notSimulated("%s action %s body_format", cr.Filter, cr.Name)
	}
	resp := &headerMap{}
	var removed []string
	e.applyHeaderParser(resp, headerParser{level: "custom-response", add: p.GetResponseHeadersToAdd()}, e.headers, resp, &cr.ResponseHeaderOps, &removed)
	cr.ResponseHeaders = resp.regular()
}

// parseAbsoluteURL splits scheme://authority/path?query as Envoy's
// Http::Utility::Url::initialize does for a non-CONNECT URL; the path
// defaults to "/".
func parseAbsoluteURL(u string) (scheme, authority, pathAndQuery string, ok bool) {
	i := strings.Index(u, "://")
	if i <= 0 {
		return "", "", "", false
	}
	scheme, rest := u[:i], u[i+3:]
	for _, c := range scheme {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.') {
			return "", "", "", false
		}
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority, pathAndQuery = rest[:end], rest[end:]
	if authority == "" || strings.ContainsAny(authority, " \t") {
		return "", "", "", false
	}
	if !strings.HasPrefix(pathAndQuery, "/") {
		pathAndQuery = "/" + pathAndQuery
	}
	return scheme, authority, pathAndQuery, true
}

// matchTree evaluates an xDS matcher (xds.type.matcher.v3.Matcher) against
// the response as Envoy's matching framework does: a matcher list takes the
// first field matcher whose predicate matches and whose on_match yields an
// action (a nested matcher that does not match moves on to the next one;
// keep_matching actions are skipped); a matcher tree looks its input up in
// an exact map or, longest first, in a prefix map; on_no_match otherwise.
// It returns nil when nothing matches.
func (e *evaluator) matchTree(filter string, m *matcherxds.Matcher, d responseData) (*xdscorev3.TypedExtensionConfig, error) {
	if m == nil {
		return nil, nil
	}
	switch t := m.GetMatcherType().(type) {
	case *matcherxds.Matcher_MatcherList_:
		for _, fm := range t.MatcherList.GetMatchers() {
			ok, err := e.predicate(filter, fm.GetPredicate(), d)
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
			if a, err := e.onMatch(filter, fm.GetOnMatch(), d); err != nil || a != nil {
				return a, err
			}
		}
	case *matcherxds.Matcher_MatcherTree_:
		v, ok := e.matchInput(filter, t.MatcherTree.GetInput(), d)
		switch mm := t.MatcherTree.GetTreeType().(type) {
		case *matcherxds.Matcher_MatcherTree_ExactMatchMap:
			if om, found := mm.ExactMatchMap.GetMap()[v]; ok && found {
				if a, err := e.onMatch(filter, om, d); err != nil || a != nil {
					return a, err
				}
			}
		case *matcherxds.Matcher_MatcherTree_PrefixMatchMap:
			keys := make([]string, 0, len(mm.PrefixMatchMap.GetMap()))
			for k := range mm.PrefixMatchMap.GetMap() {
				keys = append(keys, k)
			}
			sort.Slice(keys, func(i, j int) bool { return len(keys[i]) > len(keys[j]) })
			for _, k := range keys {
				if !ok || !strings.HasPrefix(v, k) {
					continue
				}
				if a, err := e.onMatch(filter, mm.PrefixMatchMap.GetMap()[k], d); err != nil || a != nil {
					return a, err
				}
			}
		default:
			e.notSimulated("%s matcher tree %T (taken as not matching)", filter, mm)
		}
	}
	return e.onMatch(filter, m.GetOnNoMatch(), d)
}

func (e *evaluator) onMatch(filter string, om *matcherxds.Matcher_OnMatch, d responseData) (*xdscorev3.TypedExtensionConfig, error) {
	if om == nil {
		return nil, nil
	}
	if om.GetKeepMatching() {
		e.note("%s: an on_match with keep_matching is skipped", filter)
		return nil, nil
	}
	switch x := om.GetOnMatch().(type) {
	case *matcherxds.Matcher_OnMatch_Action:
		return x.Action, nil
	case *matcherxds.Matcher_OnMatch_Matcher:
		return e.matchTree(filter, x.Matcher, d)
	}
	return nil, nil
}

func (e *evaluator) predicate(filter string, p *matcherxds.Matcher_MatcherList_Predicate, d responseData) (bool, error) {
	switch x := p.GetMatchType().(type) {
	case *matcherxds.Matcher_MatcherList_Predicate_SinglePredicate_:
		v, ok := e.matchInput(filter, x.SinglePredicate.GetInput(), d)
		switch m := x.SinglePredicate.GetMatcher().(type) {
		case *matcherxds.Matcher_MatcherList_Predicate_SinglePredicate_ValueMatch:
			if !ok {
				return false, nil
			}
			matched, err := matchString(xdsStringMatcher(m.ValueMatch), v)
			if err != nil {
				e.notSimulated("%s value_match: %v (taken as not matching)", filter, err)
				return false, nil
			}
			return matched, nil
		default:
			e.notSimulated("%s custom_match (taken as not matching)", filter)
			return false, nil
		}
	case *matcherxds.Matcher_MatcherList_Predicate_OrMatcher:
		for _, q := range x.OrMatcher.GetPredicate() {
			if ok, err := e.predicate(filter, q, d); err != nil || ok {
				return ok, err
			}
		}
		return false, nil
	case *matcherxds.Matcher_MatcherList_Predicate_AndMatcher:
		for _, q := range x.AndMatcher.GetPredicate() {
			if ok, err := e.predicate(filter, q, d); err != nil || !ok {
				return false, err
			}
		}
		return true, nil
	case *matcherxds.Matcher_MatcherList_Predicate_NotMatcher:
		ok, err := e.predicate(filter, x.NotMatcher, d)
		return !ok, err
	}
	return false, fmt.Errorf("%s: predicate without a match type", filter)
}

// matchInput is the value of an HTTP matching data input; ok is false when
// the input has no value (a missing header), which no value_match matches.
func (e *evaluator) matchInput(filter string, in *xdscorev3.TypedExtensionConfig, d responseData) (string, bool) {
	tc := decodeTyped(in.GetTypedConfig())
	switch m := tc.msg.(type) {
	case *matcherv3.HttpResponseStatusCodeMatchInput:
		return strconv.Itoa(d.status), d.status != 0
	case *matcherv3.HttpResponseStatusCodeClassMatchInput:
		if d.status < 100 || d.status >= 600 {
			return "", false
		}
		return strconv.Itoa(d.status/100) + "xx", true
	case *matcherv3.HttpResponseLocalReplyMatchInput:
		return strconv.FormatBool(d.local), true
	case *matcherv3.HttpResponseHeaderMatchInput:
		v, ok := d.resp[strings.ToLower(m.GetHeaderName())]
		return v, ok
	case *matcherv3.HttpRequestHeaderMatchInput:
		return d.req.get(m.GetHeaderName())
	}
	e.notSimulated("%s matcher input %s %s (taken as absent)", filter, in.GetName(), strings.TrimPrefix(tc.typeURL, typePrefix))
	return "", false
}

// xdsStringMatcher converts the xDS StringMatcher of the matching framework
// to Envoy's, which has the same semantics.
func xdsStringMatcher(m *matcherxds.StringMatcher) *matcherv3.StringMatcher {
	out := &matcherv3.StringMatcher{IgnoreCase: m.GetIgnoreCase()}
	switch p := m.GetMatchPattern().(type) {
	case *matcherxds.StringMatcher_Exact:
		out.MatchPattern = &matcherv3.StringMatcher_Exact{Exact: p.Exact}
	case *matcherxds.StringMatcher_Prefix:
		out.MatchPattern = &matcherv3.StringMatcher_Prefix{Prefix: p.Prefix}
	case *matcherxds.StringMatcher_Suffix:
		out.MatchPattern = &matcherv3.StringMatcher_Suffix{Suffix: p.Suffix}
	case *matcherxds.StringMatcher_Contains:
		out.MatchPattern = &matcherv3.StringMatcher_Contains{Contains: p.Contains}
	case *matcherxds.StringMatcher_SafeRegex:
		out.MatchPattern = &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: p.SafeRegex.GetRegex()}}
	case *matcherxds.StringMatcher_Custom:
		out.MatchPattern = &matcherv3.StringMatcher_Custom{Custom: &xdscorev3.TypedExtensionConfig{Name: p.Custom.GetName()}}
	}
	return out
}
