package routecheck

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	uritmplmatchv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/path/match/uri_template/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
)

type routeFilterConfig = routev3.FilterConfig

var regexCache sync.Map // "full\x00expr" or "find\x00expr" → *regexp.Regexp or error

// compileRegex compiles an RE2 expression (Go's regexp is RE2). full anchors
// it, as Envoy's safe_regex matchers require the whole value to match.
func compileRegex(expr string, full bool) (*regexp.Regexp, error) {
	key := "find\x00" + expr
	if full {
		key = "full\x00" + expr
	}
	if v, ok := regexCache.Load(key); ok {
		if err, isErr := v.(error); isErr {
			return nil, err
		}
		return v.(*regexp.Regexp), nil
	}
	src := expr
	if full {
		src = `^(?:` + expr + `)$`
	}
	re, err := regexp.Compile(src)
	if err != nil {
		err = fmt.Errorf("regex %q: %w", expr, err)
		regexCache.Store(key, err)
		return nil, err
	}
	regexCache.Store(key, re)
	return re, nil
}

// regexReplaceAll is RE2::GlobalReplace: every non-overlapping match is
// replaced by substitution, in which \0 … \9 are capture groups and \\ a
// backslash.
func regexReplaceAll(m *matcherv3.RegexMatchAndSubstitute, s string) (string, error) {
	re, err := compileRegex(m.GetPattern().GetRegex(), false)
	if err != nil {
		return "", err
	}
	return re.ReplaceAllString(s, re2Template(m.GetSubstitution())), nil
}

// re2Template turns an RE2 rewrite string into a Go Expand template.
func re2Template(sub string) string {
	var b strings.Builder
	for i := 0; i < len(sub); i++ {
		c := sub[i]
		switch {
		case c == '$':
			b.WriteString("$$")
		case c == '\\' && i+1 < len(sub) && sub[i+1] >= '0' && sub[i+1] <= '9':
			b.WriteString("${" + string(sub[i+1]) + "}")
			i++
		case c == '\\' && i+1 < len(sub) && sub[i+1] == '\\':
			b.WriteByte('\\')
			i++
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// matchString implements envoy.type.matcher.v3.StringMatcher.
func matchString(m *matcherv3.StringMatcher, v string) (bool, error) {
	ic := m.GetIgnoreCase()
	fold := func(s string) string {
		if ic {
			return strings.ToLower(s)
		}
		return s
	}
	switch p := m.GetMatchPattern().(type) {
	case *matcherv3.StringMatcher_Exact:
		if ic {
			return strings.EqualFold(v, p.Exact), nil
		}
		return v == p.Exact, nil
	case *matcherv3.StringMatcher_Prefix:
		return strings.HasPrefix(fold(v), fold(p.Prefix)), nil
	case *matcherv3.StringMatcher_Suffix:
		return strings.HasSuffix(fold(v), fold(p.Suffix)), nil
	case *matcherv3.StringMatcher_Contains:
		return strings.Contains(fold(v), fold(p.Contains)), nil
	case *matcherv3.StringMatcher_SafeRegex:
		re, err := compileRegex(p.SafeRegex.GetRegex(), true)
		if err != nil {
			return false, err
		}
		return re.MatchString(v), nil
	case *matcherv3.StringMatcher_Custom:
		return false, fmt.Errorf("custom string matcher %s is not supported", p.Custom.GetName())
	default:
		return false, fmt.Errorf("string matcher without a pattern")
	}
}

func describeString(m *matcherv3.StringMatcher) string {
	ic := ""
	if m.GetIgnoreCase() {
		ic = " (ignore case)"
	}
	switch p := m.GetMatchPattern().(type) {
	case *matcherv3.StringMatcher_Exact:
		return "exact " + p.Exact + ic
	case *matcherv3.StringMatcher_Prefix:
		return "prefix " + p.Prefix + ic
	case *matcherv3.StringMatcher_Suffix:
		return "suffix " + p.Suffix + ic
	case *matcherv3.StringMatcher_Contains:
		return "contains " + p.Contains + ic
	case *matcherv3.StringMatcher_SafeRegex:
		return "regex " + p.SafeRegex.GetRegex()
	}
	return "?"
}

// matchHeader implements HeaderMatcher as Envoy's HeaderUtility::matchHeaders:
// repeated headers are joined with ","; a missing header matches only
// present_match: false (or, inverted, present_match: true) unless
// treat_missing_header_as_empty is set.
func matchHeader(hm *routev3.HeaderMatcher, h *headerMap) (bool, error) {
	value, present := h.get(hm.GetName())
	isPresent := false
	presentWanted := true
	switch s := hm.GetHeaderMatchSpecifier().(type) {
	case *routev3.HeaderMatcher_PresentMatch:
		isPresent, presentWanted = true, s.PresentMatch
	case nil:
		isPresent = true
	}
	if !present && !hm.GetTreatMissingHeaderAsEmpty() {
		if hm.GetInvertMatch() {
			return isPresent && presentWanted, nil
		}
		return isPresent && !presentWanted, nil
	}
	var match bool
	var err error
	switch s := hm.GetHeaderMatchSpecifier().(type) {
	case *routev3.HeaderMatcher_ExactMatch:
		match = s.ExactMatch == "" || value == s.ExactMatch
	case *routev3.HeaderMatcher_SafeRegexMatch:
		var re *regexp.Regexp
		if re, err = compileRegex(s.SafeRegexMatch.GetRegex(), true); err == nil {
			match = re.MatchString(value)
		}
	case *routev3.HeaderMatcher_RangeMatch:
		n, perr := strconv.ParseInt(value, 10, 64)
		match = perr == nil && n >= s.RangeMatch.GetStart() && n < s.RangeMatch.GetEnd()
	case *routev3.HeaderMatcher_PresentMatch:
		match = s.PresentMatch
	case *routev3.HeaderMatcher_PrefixMatch:
		match = strings.HasPrefix(value, s.PrefixMatch)
	case *routev3.HeaderMatcher_SuffixMatch:
		match = strings.HasSuffix(value, s.SuffixMatch)
	case *routev3.HeaderMatcher_ContainsMatch:
		match = strings.Contains(value, s.ContainsMatch)
	case *routev3.HeaderMatcher_StringMatch:
		match, err = matchString(s.StringMatch, value)
	default:
		match = true
	}
	if err != nil {
		return false, fmt.Errorf("header matcher %s: %w", hm.GetName(), err)
	}
	return match != hm.GetInvertMatch(), nil
}

// routeMatch is the result of matching one route.
type routeMatch struct {
	ok bool
	// matched is what prefix_rewrite replaces: the prefix, the exact path,
	// the whole path for regex matches, the template for template matches.
	matched  string
	template string
	desc     string
}

// matchRoute implements RouteMatch for the request headers h.
func (e *evaluator) matchRoute(r *routev3.Route, h *headerMap, ignorePathParams bool) (routeMatch, error) {
	m := r.GetMatch()
	if m == nil {
		return routeMatch{}, fmt.Errorf("route %q has no match", r.GetName())
	}
	fullPath := h.first(":path")
	if ignorePathParams {
		if i := strings.IndexByte(fullPath, ';'); i >= 0 {
			fullPath = fullPath[:i]
		}
	}
	path := pathOnly(fullPath)
	caseSensitive := m.GetCaseSensitive() == nil || m.GetCaseSensitive().GetValue()
	eq := func(a, b string) bool {
		if caseSensitive {
			return a == b
		}
		return strings.EqualFold(a, b)
	}
	hasPrefix := func(s, p string) bool { return len(s) >= len(p) && eq(s[:len(p)], p) }

	var rm routeMatch
	switch p := m.GetPathSpecifier().(type) {
	case *routev3.RouteMatch_Prefix:
		rm = routeMatch{ok: hasPrefix(path, p.Prefix), matched: p.Prefix, desc: "prefix " + p.Prefix}
	case *routev3.RouteMatch_Path:
		rm = routeMatch{ok: eq(path, p.Path), matched: p.Path, desc: "path " + p.Path}
	case *routev3.RouteMatch_SafeRegex:
		re, err := compileRegex(p.SafeRegex.GetRegex(), true)
		if err != nil {
			return routeMatch{}, fmt.Errorf("route %q: %w", r.GetName(), err)
		}
		rm = routeMatch{ok: re.MatchString(path), matched: path, desc: "regex " + p.SafeRegex.GetRegex()}
	case *routev3.RouteMatch_PathSeparatedPrefix:
		pre := p.PathSeparatedPrefix
		ok := hasPrefix(path, pre) && (len(path) == len(pre) || path[len(pre)] == '/')
		rm = routeMatch{ok: ok, matched: pre, desc: "path_separated_prefix " + pre}
	case *routev3.RouteMatch_ConnectMatcher_:
		rm = routeMatch{ok: h.first(":method") == "CONNECT", matched: path, desc: "connect"}
	case *routev3.RouteMatch_PathMatchPolicy:
		cfg := &uritmplmatchv3.UriTemplateMatchConfig{}
		if err := anyTo(p.PathMatchPolicy.GetTypedConfig(), cfg); err != nil {
			return routeMatch{}, fmt.Errorf("route %q: path_match_policy %s is not supported: %w", r.GetName(), p.PathMatchPolicy.GetName(), err)
		}
		t, err := parseURITemplate(cfg.GetPathTemplate())
		if err != nil {
			return routeMatch{}, fmt.Errorf("route %q: %w", r.GetName(), err)
		}
		_, ok := t.match(path)
		rm = routeMatch{ok: ok, matched: cfg.GetPathTemplate(), template: cfg.GetPathTemplate(), desc: "uri_template " + cfg.GetPathTemplate()}
	default:
		return routeMatch{}, fmt.Errorf("route %q: no path specifier", r.GetName())
	}
	if !caseSensitive {
		rm.desc += " (case-insensitive)"
	}
	if !rm.ok {
		return rm, nil
	}
	rm.ok = false
	for _, hm := range m.GetHeaders() {
		ok, err := matchHeader(hm, h)
		if err != nil {
			return rm, fmt.Errorf("route %q: %w", r.GetName(), err)
		}
		if !ok {
			return rm, nil
		}
	}
	if len(m.GetQueryParameters()) > 0 {
		params := queryParams(h.first(":path"))
		for _, qm := range m.GetQueryParameters() {
			v, present := params[qm.GetName()]
			if pm, isPresent := qm.GetQueryParameterMatchSpecifier().(*routev3.QueryParameterMatcher_PresentMatch); isPresent {
				if present != pm.PresentMatch {
					return rm, nil
				}
				continue
			}
			if !present {
				return rm, nil
			}
			if sm := qm.GetStringMatch(); sm != nil {
				ok, err := matchString(sm, v)
				if err != nil {
					return rm, fmt.Errorf("route %q query parameter %s: %w", r.GetName(), qm.GetName(), err)
				}
				if !ok {
					return rm, nil
				}
			}
		}
	}
	for _, cm := range m.GetCookies() {
		v, present := cookie(h, cm.GetName())
		ok := present
		if present && cm.GetStringMatch() != nil {
			var err error
			if ok, err = matchString(cm.GetStringMatch(), v); err != nil {
				return rm, fmt.Errorf("route %q cookie %s: %w", r.GetName(), cm.GetName(), err)
			}
		}
		if ok == cm.GetInvertMatch() {
			return rm, nil
		}
	}
	if m.GetGrpc() != nil && !isGRPC(h) {
		return rm, nil
	}
	if tc := m.GetTlsContext(); tc != nil {
		cert := e.req.TLS && e.req.ClientCert
		if tc.GetPresented() != nil && tc.GetPresented().GetValue() != cert {
			return rm, nil
		}
		if tc.GetValidated() != nil && tc.GetValidated().GetValue() != cert {
			return rm, nil
		}
	}
	if len(m.GetDynamicMetadata()) > 0 {
		return rm, fmt.Errorf("route %q matches dynamic metadata, which is not simulated", r.GetName())
	}
	if len(m.GetFilterState()) > 0 {
		return rm, fmt.Errorf("route %q matches filter state, which is not simulated", r.GetName())
	}
	if rf := m.GetRuntimeFraction(); rf != nil {
		e.note("route %q: runtime_fraction %d/%s taken as matching", r.GetName(),
			rf.GetDefaultValue().GetNumerator(), rf.GetDefaultValue().GetDenominator())
	}
	rm.ok = true
	return rm, nil
}

// isGRPC: content-type is exactly application/grpc or application/grpc+<codec>.
func isGRPC(h *headerMap) bool {
	ct := h.first("content-type")
	const g = "application/grpc"
	return strings.HasPrefix(ct, g) && (len(ct) == len(g) || ct[len(g)] == '+')
}

func cookie(h *headerMap, name string) (string, bool) {
	for _, line := range h.values("cookie") {
		for _, c := range strings.Split(line, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(c), "=")
			if !ok || k != name {
				continue
			}
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			return v, true
		}
	}
	return "", false
}
