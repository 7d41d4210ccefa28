package ingress

import (
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/hxds/hxds/translate/diag"
	"github.com/hxds/hxds/translate/ir"
)

// policy is what an Ingress's annotations do to each of its routes
// (higress-semantics §3.2). It is parsed once per Ingress; every invalid
// value is reported as a warning naming the key, and only that annotation's
// effect is lost.
type policy struct {
	match         matchAdds
	ignoreCase    bool
	redirect      *ir.Redirect // temporal/permanent redirect
	httpsRedirect bool         // ssl-redirect / force-ssl-redirect
	appRoot       string

	rewriteTarget string // with \1 group references
	rewritePath   string
	upstreamVhost string

	timeout   *ir.Duration
	retry     *ir.Retry
	cors      *ir.Cors
	reqHdr    *ir.HeaderOps
	respHdr   *ir.HeaderOps
	ipAllow   []string
	rateLimit *ir.RateLimit
	mirror    *mirrorSpec

	backend    backendPolicy
	downstream downstreamTLS
	// defaultBackend is the default-backend annotation: [ns/]service.
	defaultBackend string
	// customErrors are the custom-http-errors codes (need defaultBackend).
	customErrors []uint32
}

// matchAdds are conditions match annotations add to every match of a route.
type matchAdds struct {
	methods []string
	headers []ir.HeaderMatch
	query   []ir.QueryMatch
}

// key renders the conditions for the duplicate-route key (§2.4).
func (m matchAdds) key() string {
	var b strings.Builder
	if len(m.methods) > 0 {
		b.WriteString("-" + strings.Join(m.methods, "|"))
	}
	for _, h := range m.headers {
		fmt.Fprintf(&b, "-h:%s:%d:%s", h.Name, h.Match.Kind, h.Match.Value)
	}
	for _, q := range m.query {
		fmt.Fprintf(&b, "-q:%s:%d:%s", q.Name, q.Match.Kind, q.Match.Value)
	}
	return b.String()
}

type mirrorSpec struct {
	service   string // [ns/]name[:port]
	fqdn      string
	fqdnPort  uint32
	percent   *uint32
	namespace string
}

// parser reads one Ingress's annotations and reports bad values.
type parser struct {
	ann annotations
	obj diag.Object
	d   *diag.Set
}

func (p parser) bad(key, value, format string, args ...any) {
	p.d.Warn(p.obj, "invalid-annotation", "metadata.annotations", "annotation %s=%q ignored: %s", key, value, fmt.Sprintf(format, args...))
}

func (p parser) str(key string, higressOnly bool) (string, bool) {
	return p.ann.value(key, higressOnly)
}

func (p parser) boolean(key string, higressOnly bool) bool {
	return p.ann.flag(key, higressOnly, func(k, v string, err error) { p.bad(k, v, "not a boolean") })
}

// integer reads a base-10 integer; ok is false when absent or invalid.
func (p parser) integer(key string, higressOnly bool) (int, bool) {
	v, ok := p.str(key, higressOnly)
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		p.bad(key, v, "not an integer")
		return 0, false
	}
	return n, true
}

func splitList(v string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == '\n' }) {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// parsePolicy reads every route-level annotation of ing.
func parsePolicy(ing *networkingv1.Ingress, ann annotations, d *diag.Set) policy {
	p := parser{ann: ann, obj: objectOf(ing), d: d}
	var pol policy
	pol.match = p.matches()
	pol.ignoreCase = p.boolean("ignore-path-case", false)
	pol.redirect, pol.httpsRedirect = p.redirects()
	if v, ok := p.str("app-root", false); ok {
		if strings.HasPrefix(v, "/") {
			pol.appRoot = v
		} else {
			p.bad("app-root", v, "must be a path starting with /")
		}
	}
	pol.rewritePath, _ = p.str("rewrite-path", true)
	if v, ok := p.str("rewrite-target", false); ok {
		// nginx's $1 is RE2's \1.
		pol.rewriteTarget = regexp.MustCompile(`\$([1-9])`).ReplaceAllString(v, `\$1`)
	}
	pol.upstreamVhost, _ = p.str("upstream-vhost", false)
	if n, ok := p.integer("timeout", true); ok && n > 0 {
		pol.timeout = &ir.Duration{Duration: seconds(n)}
	} else if ok && n < 0 {
		p.bad("timeout", strconv.Itoa(n), "must not be negative")
	}
	pol.retry = p.retries()
	pol.cors = p.corsPolicy()
	pol.reqHdr = p.headerControl("request")
	pol.respHdr = p.headerControl("response")
	pol.ipAllow = p.allowList()
	pol.rateLimit = p.rateLimit()
	pol.mirror = p.mirror(ing.Namespace)
	pol.backend = p.backendPolicy()
	pol.downstream = p.downstreamTLS()
	pol.defaultBackend, _ = p.str("default-backend", false)
	if v, ok := p.str("custom-http-errors", false); ok {
		for _, c := range splitList(v) {
			n, err := strconv.Atoi(c)
			if err != nil || n < 100 || n > 599 {
				p.bad("custom-http-errors", v, "%q is not an HTTP status code; dropped", c)
				continue
			}
			pol.customErrors = append(pol.customErrors, uint32(n))
		}
		if pol.defaultBackend == "" && len(pol.customErrors) > 0 {
			p.bad("custom-http-errors", v, "needs the default-backend annotation")
			pol.customErrors = nil
		}
	}
	return pol
}

var httpMethods = map[string]bool{"GET": true, "HEAD": true, "POST": true, "PUT": true, "DELETE": true,
	"CONNECT": true, "OPTIONS": true, "TRACE": true, "PATCH": true}

// matches reads match-method and the {exact,prefix,regex}-match-{header,
// pseudo-header,query}-<name> keys (Higress-only). Conditions are sorted so
// the same annotations always give the same routes and rule keys.
func (p parser) matches() matchAdds {
	var m matchAdds
	if v, ok := p.str("match-method", true); ok {
		seen := map[string]bool{}
		for _, f := range strings.Fields(v) {
			f = strings.ToUpper(f)
			if !httpMethods[f] {
				p.bad("match-method", v, "unknown method %q dropped", f)
				continue
			}
			if !seen[f] {
				seen[f] = true
				m.methods = append(m.methods, f)
			}
		}
		sort.Strings(m.methods) // the same set in any order is the same rule
	}
	kinds := map[string]ir.StringMatchKind{"exact": ir.MatchExact, "prefix": ir.MatchPrefix, "regex": ir.MatchRegex}
	keys := make([]string, 0, len(p.ann))
	for k := range p.ann {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, full := range keys {
		key, ok := strings.CutPrefix(full, higressPrefix)
		if !ok {
			continue
		}
		kindName, rest, ok := strings.Cut(key, "-match-")
		kind, known := kinds[kindName]
		if !ok || !known {
			continue
		}
		value, present := clean(p.ann[full])
		if !present {
			continue
		}
		if kind == ir.MatchRegex {
			if _, err := regexp.Compile(value); err != nil {
				p.bad(key, value, "not a valid regular expression: %v", err)
				continue
			}
		}
		sm := ir.StringMatch{Kind: kind, Value: value}
		switch {
		case strings.HasPrefix(rest, "pseudo-header-") && len(rest) > len("pseudo-header-"):
			m.headers = append(m.headers, ir.HeaderMatch{Name: ":" + strings.ToLower(strings.TrimPrefix(rest, "pseudo-header-")), Match: sm})
		case strings.HasPrefix(rest, "header-") && len(rest) > len("header-"):
			m.headers = append(m.headers, ir.HeaderMatch{Name: strings.ToLower(strings.TrimPrefix(rest, "header-")), Match: sm})
		case strings.HasPrefix(rest, "query-") && len(rest) > len("query-"):
			m.query = append(m.query, ir.QueryMatch{Name: strings.TrimPrefix(rest, "query-"), Match: sm})
		}
	}
	return m
}

// redirects reads temporal-redirect (302, wins), permanent-redirect with
// permanent-redirect-code (300-308, else 301) and ssl-redirect /
// force-ssl-redirect (308 to https when no URL redirect is set).
func (p parser) redirects() (*ir.Redirect, bool) {
	httpsRedirect := p.boolean("ssl-redirect", false) || p.boolean("force-ssl-redirect", false)
	toRedirect := func(key, raw string, code int) *ir.Redirect {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.bad(key, raw, "must be an absolute http(s) URL")
			return nil
		}
		r := &ir.Redirect{Scheme: u.Scheme, Host: u.Hostname(), Path: u.Path, Code: code}
		if port := u.Port(); port != "" {
			n, _ := strconv.Atoi(port)
			r.Port = uint32(n)
		}
		return r
	}
	if v, ok := p.str("temporal-redirect", false); ok {
		if r := toRedirect("temporal-redirect", v, 302); r != nil {
			return r, httpsRedirect
		}
	}
	if v, ok := p.str("permanent-redirect", false); ok {
		code := 301
		if c, ok := p.integer("permanent-redirect-code", false); ok {
			switch {
			case c == 301 || c == 302 || c == 303 || c == 307 || c == 308:
				code = c
			case c >= 300 && c <= 308:
				p.bad("permanent-redirect-code", strconv.Itoa(c), "Envoy redirects only with 301, 302, 303, 307 or 308; 301 used")
			default:
				p.bad("permanent-redirect-code", strconv.Itoa(c), "must be 300-308; 301 used")
			}
		}
		if r := toRedirect("permanent-redirect", v, code); r != nil {
			return r, httpsRedirect
		}
	}
	return nil, httpsRedirect
}

// retries reads proxy-next-upstream{,-tries,-timeout}; present only when one
// of them is set (attempts default 3, retry on 5xx).
func (p parser) retries() *ir.Retry {
	tries, hasTries := p.integer("proxy-next-upstream-tries", false)
	timeout, hasTimeout := p.integer("proxy-next-upstream-timeout", false)
	conds, hasConds := p.str("proxy-next-upstream", false)
	if !hasTries && !hasTimeout && !hasConds {
		return nil
	}
	r := &ir.Retry{Attempts: 3}
	if hasTries {
		if tries < 0 {
			p.bad("proxy-next-upstream-tries", strconv.Itoa(tries), "must not be negative")
		} else {
			r.Attempts = uint32(tries)
		}
	}
	if hasTimeout && timeout > 0 {
		r.PerTryTimeout = &ir.Duration{Duration: time.Duration(timeout) * time.Second}
	}
	on := map[string]bool{}
	if hasConds {
		for _, c := range strings.FieldsFunc(conds, func(r rune) bool { return r == ',' || r == ' ' }) {
			switch c = strings.TrimSpace(c); {
			case c == "off":
				r.Attempts = 0
			case c == "error" || c == "timeout" || c == "invalid_header":
				on["5xx"] = true
			case c == "non_idempotent":
				on["non_idempotent"] = true
			case strings.HasPrefix(c, "http_"):
				code, err := strconv.Atoi(strings.TrimPrefix(c, "http_"))
				if err != nil || code < 100 || code > 599 {
					p.bad("proxy-next-upstream", conds, "unknown condition %q", c)
					continue
				}
				on["retriable-status-codes"] = true
				r.StatusCodes = append(r.StatusCodes, uint32(code))
			default:
				p.bad("proxy-next-upstream", conds, "unknown condition %q", c)
			}
		}
	}
	if len(on) == 0 {
		on["5xx"] = true
	}
	// non_idempotent is nginx's permission to retry POSTs; Envoy retries any
	// method, so it has no Envoy condition of its own.
	delete(on, "non_idempotent")
	for c := range on {
		r.On = append(r.On, c)
	}
	sort.Strings(r.On)
	sort.Slice(r.StatusCodes, func(i, j int) bool { return r.StatusCodes[i] < r.StatusCodes[j] })
	return r
}

const (
	defaultCorsMethods = "GET, PUT, POST, DELETE, PATCH, OPTIONS"
	defaultCorsHeaders = "DNT,X-CustomHeader,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,Content-Type,Authorization"
	defaultCorsMaxAge  = 1728000
)

// corsPolicy reads enable-cors and the cors-* keys (ignored unless enabled).
func (p parser) corsPolicy() *ir.Cors {
	if !p.boolean("enable-cors", false) {
		return nil
	}
	c := &ir.Cors{AllowCredentials: true}
	origins, ok := p.str("cors-allow-origin", false)
	if !ok {
		origins = "*"
	}
	for _, o := range splitList(origins) {
		if o == "*" {
			c.AllowOrigins = []ir.StringMatch{{Kind: ir.MatchRegex, Value: ".*"}}
			break
		}
		if strings.Contains(o, "*") {
			// https://*.foo.com → any subdomain of foo.com, any scheme (as Higress).
			host := o
			if i := strings.Index(host, "://"); i >= 0 {
				host = host[i+3:]
			}
			parts := strings.Split(host, "*")
			for i := range parts {
				parts[i] = regexp.QuoteMeta(parts[i])
			}
			expr := strings.Join(parts, ".*")
			if !strings.HasPrefix(expr, ".*") {
				expr = ".*" + expr // any scheme before the host
			}
			c.AllowOrigins = append(c.AllowOrigins, ir.StringMatch{Kind: ir.MatchRegex, Value: expr})
			continue
		}
		c.AllowOrigins = append(c.AllowOrigins, ir.StringMatch{Kind: ir.MatchExact, Value: o})
	}
	list := func(key, def string) []string {
		v, ok := p.str(key, false)
		if !ok {
			v = def
		}
		return splitList(v)
	}
	c.AllowMethods = list("cors-allow-methods", defaultCorsMethods)
	c.AllowHeaders = list("cors-allow-headers", defaultCorsHeaders)
	c.ExposeHeaders = list("cors-expose-headers", "")
	if v, ok := p.str("cors-allow-credentials", false); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			p.bad("cors-allow-credentials", v, "not a boolean")
		} else {
			c.AllowCredentials = b
		}
	}
	maxAge := defaultCorsMaxAge
	if n, ok := p.integer("cors-max-age", false); ok {
		maxAge = n
	}
	c.MaxAge = &ir.Duration{Duration: time.Duration(maxAge) * time.Second}
	return c
}

// headerControl reads <dir>-header-control-{add,update,remove} (Higress-only).
func (p parser) headerControl(dir string) *ir.HeaderOps {
	ops := &ir.HeaderOps{}
	pairs := func(key string) []ir.Header {
		v, ok := p.str(key, true)
		if !ok {
			return nil
		}
		var out []ir.Header
		for _, line := range strings.Split(v, "\n") {
			name, value, found := strings.Cut(strings.TrimSpace(line), " ")
			if !found {
				name, value, found = strings.Cut(strings.TrimSpace(line), "\t")
			}
			name = strings.TrimSpace(name)
			value = strings.Trim(strings.TrimSpace(value), `"'`)
			if !found || name == "" {
				p.bad(key, v, "line %q is not \"<name> <value>\"", line)
				continue
			}
			out = append(out, ir.Header{Name: name, Value: value})
		}
		return out
	}
	ops.Add = pairs(dir + "-header-control-add")
	ops.Set = pairs(dir + "-header-control-update")
	if v, ok := p.str(dir+"-header-control-remove", true); ok {
		ops.Remove = splitList(v)
	}
	if ops.Empty() {
		return nil
	}
	return ops
}

// allowList reads whitelist-source-range: IPs and CIDRs; entries that do not
// parse are dropped with a warning, and with none left there is no limit.
func (p parser) allowList() []string {
	v, ok := p.str("whitelist-source-range", false)
	if !ok {
		return nil
	}
	var out []string
	for _, e := range splitList(v) {
		if pfx, err := netip.ParsePrefix(e); err == nil {
			out = append(out, pfx.Masked().String())
			continue
		}
		if a, err := netip.ParseAddr(e); err == nil {
			out = append(out, netip.PrefixFrom(a, a.BitLen()).String())
			continue
		}
		p.bad("whitelist-source-range", v, "%q is not an IP address or CIDR; dropped", e)
	}
	return out
}

// rateLimit reads route-limit-rpm (wins), route-limit-rps and
// route-limit-burst-multiplier (default 5), all Higress-only.
func (p parser) rateLimit() *ir.RateLimit {
	burst := 5
	if b, ok := p.integer("route-limit-burst-multiplier", true); ok {
		if b > 0 {
			burst = b
		} else {
			p.bad("route-limit-burst-multiplier", strconv.Itoa(b), "must be positive; 5 used")
		}
	}
	mk := func(key string, interval time.Duration) *ir.RateLimit {
		n, ok := p.integer(key, true)
		if !ok {
			return nil
		}
		if n <= 0 {
			p.bad(key, strconv.Itoa(n), "must be positive")
			return nil
		}
		return &ir.RateLimit{TokensPerFill: uint32(n), MaxTokens: uint32(n * burst), FillInterval: ir.Duration{Duration: interval}}
	}
	if rl := mk("route-limit-rpm", time.Minute); rl != nil {
		return rl
	}
	return mk("route-limit-rps", time.Second)
}

// mirror reads mirror-target-fqdn (+ -fqdn-port, wins) or
// mirror-target-service, and mirror-percentage.
func (p parser) mirror(namespace string) *mirrorSpec {
	m := &mirrorSpec{namespace: namespace, fqdnPort: 80}
	m.fqdn, _ = p.str("mirror-target-fqdn", false)
	m.service, _ = p.str("mirror-target-service", false)
	if m.fqdn == "" && m.service == "" {
		return nil
	}
	if port, ok := p.integer("mirror-target-fqdn-port", false); ok {
		if port > 0 && port < 65536 {
			m.fqdnPort = uint32(port)
		} else {
			p.bad("mirror-target-fqdn-port", strconv.Itoa(port), "not a port; 80 used")
		}
	}
	if pct, ok := p.integer("mirror-percentage", false); ok && pct >= 0 && pct < 100 {
		v := uint32(pct)
		m.percent = &v
	} else if ok && pct < 0 {
		p.bad("mirror-percentage", strconv.Itoa(pct), "must not be negative; all requests mirrored")
	}
	return m
}

func seconds(n int) time.Duration { return time.Duration(n) * time.Second }
