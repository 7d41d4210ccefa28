package gatewayapi

import (
	"fmt"
	"regexp"
	"strings"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/hxds/hxds/translate/diag"
	"github.com/hxds/hxds/translate/input"
	"github.com/hxds/hxds/translate/ir"
)

func routeObject(r *gwv1.HTTPRoute) diag.Object {
	return routeObjectOf(input.KindHTTPRoute, r.Namespace, r.Name)
}

// sortRoutes orders routes by Gateway API precedence: exact path, then the
// longest prefix (regex after), then method match, more headers, more query
// parameters; Order (oldest route, namespace/name, rule and match order)
// breaks ties. A catch-all (prefix "/" without other conditions) goes last,
// as in Higress.
func sortRoutes(routes []*ir.Route) { ir.SortRoutes(routes, false) }

// ruleResult is what translating a route's rules gives.
type ruleResult struct {
	routes       []*ir.Route
	rulesDropped int
	unsupported  string
	notes        string // first field served differently from what it asks
	refsReason   string
	refsMessage  string
	clusters     []clusterUse
	// tlsPolicies are the BackendTLSPolicies of the Services used.
	tlsPolicies []*backendTLS
}

// pendingMirror is a RequestMirror filter whose backendRef is resolved
// with the rule's backends.
type pendingMirror struct {
	field   string
	filter  *gwv1.HTTPRequestMirrorFilter
	percent *uint32
}

func routeName(hr *gwv1.HTTPRoute) string { return hr.Namespace + "/" + hr.Name }

func (t *translator) translateRules(hr *gwv1.HTTPRoute) *ruleResult {
	obj := routeObject(hr)
	src := t.httpRouteSource(hr)
	rr := &ruleResult{}
	for ri, rule := range hr.Spec.Rules {
		field := fmt.Sprintf("spec.rules[%d]", ri)
		drop := func(f, format string, args ...any) {
			msg := fmt.Sprintf(format, args...)
			t.d.Error(obj, "unsupported-value", f, "%s; rule not served", msg)
			if rr.unsupported == "" {
				rr.unsupported = fmt.Sprintf("%s: %s", f, msg)
			}
			rr.rulesDropped++
		}
		var pol rulePolicies
		pf, p, notes := timeoutsAndRetry(rule, field, &pol)
		if p != "" {
			drop(pf, "%s", p)
			continue
		}
		session, p, sessionNotes := sessionPersistence(rule, field)
		if p != "" {
			drop(field+".sessionPersistence", "%s", p)
			continue
		}
		notes = append(notes, sessionNotes...)
		// Filters.
		var reqH, respH *ir.HeaderOps
		var redirect *gwv1.HTTPRequestRedirectFilter
		var rewrite *gwv1.HTTPURLRewriteFilter
		var mirrors []pendingMirror
		bad := false
		for fi, f := range rule.Filters {
			ff := fmt.Sprintf("%s.filters[%d]", field, fi)
			switch {
			case f.Type == gwv1.HTTPRouteFilterRequestHeaderModifier && f.RequestHeaderModifier != nil:
				if p := checkHeaderFilter(f.RequestHeaderModifier); p != "" {
					drop(ff, "%s", p)
					bad = true
					break
				}
				reqH = headerOps(f.RequestHeaderModifier)
			case f.Type == gwv1.HTTPRouteFilterResponseHeaderModifier && f.ResponseHeaderModifier != nil:
				if p := checkHeaderFilter(f.ResponseHeaderModifier); p != "" {
					drop(ff, "%s", p)
					bad = true
					break
				}
				respH = headerOps(f.ResponseHeaderModifier)
			case f.Type == gwv1.HTTPRouteFilterRequestRedirect && f.RequestRedirect != nil:
				if p := checkRedirect(f.RequestRedirect); p != "" {
					drop(ff, "%s", p)
					bad = true
					break
				}
				redirect = f.RequestRedirect
			case f.Type == gwv1.HTTPRouteFilterURLRewrite && f.URLRewrite != nil:
				if p := checkRewrite(f.URLRewrite); p != "" {
					drop(ff, "%s", p)
					bad = true
					break
				}
				rewrite = f.URLRewrite
			case f.Type == gwv1.HTTPRouteFilterRequestMirror && f.RequestMirror != nil:
				pct, p := mirrorPercent(f.RequestMirror)
				if p != "" {
					drop(ff, "%s", p)
					bad = true
					break
				}
				mirrors = append(mirrors, pendingMirror{field: ff, filter: f.RequestMirror, percent: pct})
			case f.Type == gwv1.HTTPRouteFilterCORS && f.CORS != nil:
				if pol.cors != nil {
					drop(ff, "only one CORS filter is allowed per rule")
					bad = true
					break
				}
				c, p, n := corsPolicy(f.CORS, ff+".cors")
				if p != "" {
					drop(ff, "%s", p)
					bad = true
					break
				}
				pol.cors = c
				notes = append(notes, n...)
			default:
				drop(ff, "filter type %s is not supported yet", f.Type)
				bad = true
			}
			if bad {
				break
			}
		}
		if bad {
			continue
		}
		if redirect != nil && rewrite != nil {
			drop(field+".filters", "RequestRedirect and URLRewrite cannot be combined")
			continue
		}
		backends, bf, p := routeBackends(field, rule.BackendRefs, httpBackendParts)
		if p != "" {
			drop(bf, "%s", p)
			continue
		}
		for _, n := range notes {
			t.d.Warn(obj, "unsupported-field", n.field, "%s", n.msg)
			if rr.notes == "" {
				rr.notes = n.field + ": " + n.msg
			}
		}

		// Backends (only when forwarding).
		var forward *ir.Forward
		var direct *ir.DirectResponse
		if redirect == nil {
			forward, direct = t.forwardTo(src, field, backends, mirrors, &pol, rr)
		}

		matches := rule.Matches
		if len(matches) == 0 {
			matches = []gwv1.HTTPRouteMatch{{}}
		}
		for mi, m := range matches {
			mf := fmt.Sprintf("%s.matches[%d]", field, mi)
			routes, problem := t.matchRoutes(hr, m, mf)
			if problem != "" {
				drop(mf, "%s", problem)
				break
			}
			ok := true
			var extras []*ir.Route
			for _, r := range routes {
				r.Forward, r.Direct = forward, direct
				r.RequestHeaders, r.ResponseHeaders = reqH, respH
				r.Timeout, r.Retry, r.Cors = pol.timeout, pol.retry, pol.cors
				if forward != nil {
					r.Mirrors = pol.mirrors
					r.Session = session
				}
				if redirect != nil {
					extra, p := applyRedirect(r, redirect, m)
					if p != "" {
						drop(mf, "%s", p)
						ok = false
						break
					}
					if extra != nil {
						extras = append(extras, extra)
					}
				}
				if rewrite != nil && forward != nil {
					if p := applyRewrite(r, rewrite, m); p != "" {
						drop(mf, "%s", p)
						ok = false
						break
					}
				}
			}
			if !ok {
				break
			}
			rr.routes = append(rr.routes, extras...)
			rr.routes = append(rr.routes, routes...)
		}
	}
	return rr
}

func headerOps(f *gwv1.HTTPHeaderFilter) *ir.HeaderOps {
	ops := &ir.HeaderOps{Remove: append([]string(nil), f.Remove...)}
	for _, h := range f.Set {
		ops.Set = append(ops.Set, ir.Header{Name: strings.ToLower(string(h.Name)), Value: h.Value})
	}
	for _, h := range f.Add {
		ops.Add = append(ops.Add, ir.Header{Name: strings.ToLower(string(h.Name)), Value: h.Value})
	}
	return ops
}

// matchRoutes turns one HTTPRouteMatch into IR routes (one, or two for a
// PathPrefix redirect that replaces the prefix; see applyRedirect).
func (t *translator) matchRoutes(hr *gwv1.HTTPRoute, m gwv1.HTTPRouteMatch, field string) ([]*ir.Route, string) {
	pathType, path := gwv1.PathMatchPathPrefix, "/"
	if m.Path != nil {
		if m.Path.Type != nil {
			pathType = *m.Path.Type
		}
		if m.Path.Value != nil {
			path = *m.Path.Value
		}
	}
	var matches []ir.Match
	var kind ir.PathMatchKind
	switch pathType {
	case gwv1.PathMatchExact:
		if !strings.HasPrefix(path, "/") || !validValue(path) {
			return nil, fmt.Sprintf("path %q must begin with '/'", path)
		}
		kind = ir.PathExact
		matches = []ir.Match{{PathKind: ir.PathExact, Path: path, CaseSensitive: true}}
	case gwv1.PathMatchPathPrefix:
		if !strings.HasPrefix(path, "/") || !validValue(path) {
			return nil, fmt.Sprintf("path %q must begin with '/'", path)
		}
		kind = ir.PathPrefix
		trimmed := strings.TrimRight(path, "/")
		if trimmed == "" {
			matches = []ir.Match{{PathKind: ir.PathPrefix, Path: "/", CaseSensitive: true}}
		} else {
			// /foo matches /foo and /foo/bar, not /foobar.
			matches = []ir.Match{
				{PathKind: ir.PathExact, Path: trimmed, CaseSensitive: true},
				{PathKind: ir.PathPrefix, Path: trimmed + "/", CaseSensitive: true},
			}
		}
	case gwv1.PathMatchRegularExpression:
		if _, err := regexp.Compile(path); err != nil {
			return nil, fmt.Sprintf("path %q is not a valid regular expression: %v", path, err)
		}
		kind = ir.PathRegex
		matches = []ir.Match{{PathKind: ir.PathRegex, Path: path, CaseSensitive: true}}
	default:
		return nil, fmt.Sprintf("path match type %s is not supported", pathType)
	}
	var headers []ir.HeaderMatch
	for _, h := range m.Headers {
		if !validName(string(h.Name)) || !validValue(h.Value) {
			return nil, fmt.Sprintf("header match %q is not a valid header", h.Name)
		}
		sm, p := stringMatch(h.Type, h.Value)
		if p != "" {
			return nil, fmt.Sprintf("header %s: %s", h.Name, p)
		}
		headers = append(headers, ir.HeaderMatch{Name: strings.ToLower(string(h.Name)), Match: sm})
	}
	var query []ir.QueryMatch
	for _, q := range m.QueryParams {
		if !validName(string(q.Name)) || !validValue(q.Value) {
			return nil, fmt.Sprintf("query parameter match %q is not valid", q.Name)
		}
		var typ *gwv1.HeaderMatchType
		if q.Type != nil {
			v := gwv1.HeaderMatchType(*q.Type)
			typ = &v
		}
		sm, p := stringMatch(typ, q.Value)
		if p != "" {
			return nil, fmt.Sprintf("query parameter %s: %s", q.Name, p)
		}
		query = append(query, ir.QueryMatch{Name: string(q.Name), Match: sm})
	}
	methodLength := 0
	if m.Method != nil {
		headers = append(headers, ir.HeaderMatch{Name: ":method", Match: ir.StringMatch{Kind: ir.MatchExact, Value: string(*m.Method)}})
		methodLength = len(*m.Method)
	}
	for i := range matches {
		matches[i].Headers = headers
		matches[i].Query = query
	}
	class := 0
	if kind == ir.PathPrefix && strings.TrimRight(path, "/") == "" && len(headers)+len(query) == 0 {
		class = 1
	}
	t.order++
	hc := len(m.Headers)
	return []*ir.Route{{
		Name:    routeName(hr),
		Source:  routeObject(hr),
		Matches: matches,
		SortKey: ir.SortKey{Class: class, PathKind: kind, PathLength: len(path), MethodLength: methodLength,
			HeaderCount: hc, QueryCount: len(query), Order: t.order},
	}}, ""
}

func stringMatch(typ *gwv1.HeaderMatchType, value string) (ir.StringMatch, string) {
	if typ != nil && *typ == gwv1.HeaderMatchRegularExpression {
		if _, err := regexp.Compile(value); err != nil {
			return ir.StringMatch{}, fmt.Sprintf("%q is not a valid regular expression: %v", value, err)
		}
		return ir.StringMatch{Kind: ir.MatchRegex, Value: value}, ""
	}
	if typ != nil && *typ != gwv1.HeaderMatchExact {
		return ir.StringMatch{}, fmt.Sprintf("match type %s is not supported", *typ)
	}
	return ir.StringMatch{Kind: ir.MatchExact, Value: value}, ""
}

// prefixOf returns the trimmed path prefix of a PathPrefix match, or false.
func prefixOf(m gwv1.HTTPRouteMatch) (string, bool) {
	if m.Path == nil {
		return "", true
	}
	if m.Path.Type != nil && *m.Path.Type != gwv1.PathMatchPathPrefix {
		return "", false
	}
	v := "/"
	if m.Path.Value != nil {
		v = *m.Path.Value
	}
	return strings.TrimRight(v, "/"), true
}

// applyRedirect turns r into a redirect. ReplacePrefixMatch needs the
// matched prefix, which differs between the exact and the prefix half of a
// PathPrefix match: the exact half redirects to the replacement, the
// prefix half ("/foo/") rewrites its prefix to "<replacement>/".
func applyRedirect(r *ir.Route, f *gwv1.HTTPRequestRedirectFilter, m gwv1.HTTPRouteMatch) (extra *ir.Route, problem string) {
	red := &ir.Redirect{Code: 302, DerivePort: true}
	if f.StatusCode != nil {
		switch *f.StatusCode {
		case 301, 302, 303, 307, 308:
			red.Code = *f.StatusCode
		default:
			return nil, fmt.Sprintf("redirect statusCode %d is not supported", *f.StatusCode)
		}
	}
	if f.Scheme != nil {
		red.Scheme = *f.Scheme
	}
	if f.Hostname != nil {
		red.Host = string(*f.Hostname)
	}
	if f.Port != nil {
		red.Port = uint32(*f.Port)
	}
	r.Forward, r.Direct, r.Redirect = nil, nil, red
	if f.Path == nil {
		return nil, ""
	}
	switch f.Path.Type {
	case gwv1.FullPathHTTPPathModifier:
		if f.Path.ReplaceFullPath == nil {
			return nil, "redirect path ReplaceFullPath has no value"
		}
		red.Path = *f.Path.ReplaceFullPath
		if red.Path == "" {
			red.Path = "/"
		}
	case gwv1.PrefixMatchHTTPPathModifier:
		if f.Path.ReplacePrefixMatch == nil {
			return nil, "redirect path ReplacePrefixMatch has no value"
		}
		if _, ok := prefixOf(m); !ok {
			return nil, "ReplacePrefixMatch needs a PathPrefix match"
		}
		repl := strings.TrimRight(*f.Path.ReplacePrefixMatch, "/")
		red.PrefixRewrite = repl + "/"
		if len(r.Matches) == 2 {
			// The exact half redirects to the replacement itself.
			exact := *r
			exact.Matches = []ir.Match{r.Matches[0]}
			er := *red
			er.PrefixRewrite, er.Path = "", repl
			if er.Path == "" {
				er.Path = "/"
			}
			exact.Redirect = &er
			r.Matches = []ir.Match{r.Matches[1]}
			return &exact, ""
		}
	default:
		return nil, fmt.Sprintf("redirect path type %s is not supported", f.Path.Type)
	}
	return nil, ""
}

// applyRewrite sets the URLRewrite of a forwarding route.
func applyRewrite(r *ir.Route, f *gwv1.HTTPURLRewriteFilter, m gwv1.HTTPRouteMatch) string {
	rw := &ir.Rewrite{}
	if f.Hostname != nil {
		rw.Host = string(*f.Hostname)
	}
	if f.Path != nil {
		switch f.Path.Type {
		case gwv1.FullPathHTTPPathModifier:
			if f.Path.ReplaceFullPath == nil {
				return "rewrite path ReplaceFullPath has no value"
			}
			rw.PathRegex = &ir.RegexRewrite{Pattern: "^.*$", Substitution: *f.Path.ReplaceFullPath}
		case gwv1.PrefixMatchHTTPPathModifier:
			if f.Path.ReplacePrefixMatch == nil {
				return "rewrite path ReplacePrefixMatch has no value"
			}
			prefix, ok := prefixOf(m)
			if !ok {
				return "ReplacePrefixMatch needs a PathPrefix match"
			}
			repl := strings.TrimRight(*f.Path.ReplacePrefixMatch, "/")
			switch {
			case repl == "":
				// /foo/x → /x and /foo → /.
				rw.PathRegex = &ir.RegexRewrite{Pattern: "^" + regexp.QuoteMeta(prefix) + "/?", Substitution: "/"}
			case prefix == "":
				rw.PathRegex = &ir.RegexRewrite{Pattern: "^/", Substitution: repl + "/"}
			default:
				rw.PathRegex = &ir.RegexRewrite{Pattern: "^" + regexp.QuoteMeta(prefix), Substitution: repl}
			}
		default:
			return fmt.Sprintf("rewrite path type %s is not supported", f.Path.Type)
		}
	}
	r.Rewrite = rw
	return ""
}

// maxWeight is the largest backendRef weight the API allows.
const maxWeight = 1000000

// validName reports whether a header or query parameter name can be
// served: Envoy rejects empty names and NUL, CR, LF.
func validName(n string) bool { return n != "" && validValue(n) }

// validValue reports whether a header value or path has no NUL, CR or LF.
func validValue(v string) bool { return !strings.ContainsAny(v, "\x00\r\n") }

// checkHeaderFilter rejects header edits Envoy refuses: pseudo-headers,
// Host, invalid names or values.
func checkHeaderFilter(f *gwv1.HTTPHeaderFilter) string {
	check := func(name, value string) string {
		n := strings.ToLower(name)
		if !validName(n) || !validValue(value) || strings.HasPrefix(n, ":") || n == "host" {
			return fmt.Sprintf("header %q cannot be modified", name)
		}
		return ""
	}
	for _, h := range append(append([]gwv1.HTTPHeader(nil), f.Set...), f.Add...) {
		if p := check(string(h.Name), h.Value); p != "" {
			return p
		}
	}
	for _, n := range f.Remove {
		if p := check(n, ""); p != "" {
			return p
		}
	}
	return ""
}

func checkPathModifier(p *gwv1.HTTPPathModifier) string {
	if p == nil {
		return ""
	}
	for _, v := range []*string{p.ReplaceFullPath, p.ReplacePrefixMatch} {
		if v != nil && (!validValue(*v) || (*v != "" && !strings.HasPrefix(*v, "/"))) {
			return fmt.Sprintf("path %q must begin with '/'", *v)
		}
	}
	return ""
}

func checkRedirect(f *gwv1.HTTPRequestRedirectFilter) string {
	if f.Scheme != nil && *f.Scheme != "http" && *f.Scheme != "https" {
		return fmt.Sprintf("redirect scheme %q is not supported (http, https)", *f.Scheme)
	}
	if f.Hostname != nil && (*f.Hostname == "" || !validValue(string(*f.Hostname)) || strings.ContainsAny(string(*f.Hostname), "/ ")) {
		return fmt.Sprintf("redirect hostname %q is not valid", *f.Hostname)
	}
	if f.Port != nil && (*f.Port < 1 || *f.Port > 65535) {
		return fmt.Sprintf("redirect port %d is not valid", *f.Port)
	}
	return checkPathModifier(f.Path)
}

func checkRewrite(f *gwv1.HTTPURLRewriteFilter) string {
	if f.Hostname != nil && (*f.Hostname == "" || !validValue(string(*f.Hostname))) {
		return fmt.Sprintf("rewrite hostname %q is not valid", *f.Hostname)
	}
	return checkPathModifier(f.Path)
}
