package gatewayapi

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/hxds/hxds/translate/ir"
)

// gatewayDuration is the GEP-2257 duration format: a strict subset of
// time.ParseDuration ("10s", "500ms", "1h30m"; no fractions or signs).
var gatewayDuration = regexp.MustCompile(`^([0-9]{1,5}(h|m|s|ms)){1,4}$`)

// parseDuration reads a Gateway API Duration.
func parseDuration(d gwv1.Duration) (time.Duration, string) {
	s := string(d)
	if !gatewayDuration.MatchString(s) {
		return 0, fmt.Sprintf("%q is not a Gateway API duration (e.g. 10s, 500ms, 1h)", s)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Sprintf("%q is not a valid duration: %v", s, err)
	}
	return v, ""
}

// retryOn are the Envoy retry conditions of every HTTPRouteRetry: the spec
// says implementations SHOULD retry on connection errors (disconnect,
// reset, timeout, TCP failure) whenever a retry stanza is configured.
var retryOn = []string{"connect-failure", "refused-stream", "reset"}

// rulePolicies are the route-level policies a rule's timeouts, retry and
// filters give each of its routes.
type rulePolicies struct {
	timeout *ir.Duration
	retry   *ir.Retry
	mirrors []ir.Mirror
	cors    *ir.Cors
}

// note is a field served differently from what it asks: reported as a
// warning finding and in the Accepted message, the rule is still served.
type note struct{ field, msg string }

// timeoutsAndRetry translates rules[].timeouts and rules[].retry. problem
// (with its field) makes the rule invalid; notes are fields served
// differently from what they ask, reported but not fatal.
func timeoutsAndRetry(rule gwv1.HTTPRouteRule, field string, p *rulePolicies) (problemField, problem string, notes []note) {
	var request, backend *time.Duration
	if to := rule.Timeouts; to != nil {
		if to.Request != nil {
			v, pr := parseDuration(*to.Request)
			if pr != "" {
				return field + ".timeouts.request", pr, nil
			}
			request = &v
		}
		if to.BackendRequest != nil {
			v, pr := parseDuration(*to.BackendRequest)
			if pr != "" {
				return field + ".timeouts.backendRequest", pr, nil
			}
			backend = &v
		}
		if request != nil && backend != nil && *request != 0 && *backend > *request {
			return field + ".timeouts.backendRequest", fmt.Sprintf("backendRequest timeout %s must not be longer than the request timeout %s",
				*to.BackendRequest, *to.Request), nil
		}
	}
	if rt := rule.Retry; rt != nil {
		attempts := 1 // Envoy's default when the API leaves it unspecified
		if rt.Attempts != nil {
			attempts = *rt.Attempts
		}
		if attempts < 0 {
			return field + ".retry.attempts", fmt.Sprintf("retry attempts %d must not be negative", attempts), nil
		}
		var codes []uint32
		seen := map[int]bool{}
		for i, c := range rt.Codes {
			if c < 400 || c > 599 {
				return fmt.Sprintf("%s.retry.codes[%d]", field, i), fmt.Sprintf("retry code %d is not supported (400-599)", c), nil
			}
			if !seen[int(c)] {
				seen[int(c)] = true
				codes = append(codes, uint32(c))
			}
		}
		if rt.Backoff != nil {
			if _, pr := parseDuration(*rt.Backoff); pr != "" {
				return field + ".retry.backoff", pr, nil
			}
			notes = append(notes, note{field + ".retry.backoff", "backoff is not supported (Envoy's default jittered backoff applies); ignored"})
		}
		if attempts > 0 {
			on := append([]string(nil), retryOn...)
			if len(codes) > 0 {
				on = append(on, "retriable-status-codes")
			}
			p.retry = &ir.Retry{Attempts: uint32(attempts), On: on, StatusCodes: codes}
		}
	}
	if request != nil {
		p.timeout = &ir.Duration{Duration: *request}
	}
	if backend != nil && *backend > 0 {
		if p.retry != nil {
			p.retry.PerTryTimeout = &ir.Duration{Duration: *backend}
		} else if request == nil || *request == 0 || *backend < *request {
			// A single backend request: its timeout is the route's.
			p.timeout = &ir.Duration{Duration: *backend}
		}
	}
	return "", "", notes
}

// mirrorPercent is the share of requests a RequestMirror filter copies;
// nil means all. Fractions are rounded down to whole percent (the IR
// mirrors in percent).
func mirrorPercent(f *gwv1.HTTPRequestMirrorFilter) (*uint32, string) {
	switch {
	case f.Percent != nil && f.Fraction != nil:
		return nil, "only one of percent and fraction may be set"
	case f.Percent != nil:
		if *f.Percent < 0 || *f.Percent > 100 {
			return nil, fmt.Sprintf("mirror percent %d is not between 0 and 100", *f.Percent)
		}
		v := uint32(*f.Percent)
		return &v, ""
	case f.Fraction != nil:
		den := int32(100)
		if f.Fraction.Denominator != nil {
			den = *f.Fraction.Denominator
		}
		num := f.Fraction.Numerator
		if den < 1 || num < 0 || num > den {
			return nil, fmt.Sprintf("mirror fraction %d/%d is not valid (0 <= numerator <= denominator, denominator >= 1)", num, den)
		}
		v := uint32(int64(num) * 100 / int64(den))
		return &v, ""
	}
	return nil, ""
}

// corsOrigin is the CRD pattern of an allowed origin.
var corsOrigin = regexp.MustCompile(`(^\*$)|(^(http(s)?):\/\/(((\*\.)?([a-zA-Z0-9\-]+\.)*[a-zA-Z0-9-]+|\*)(:([0-9]{1,5}))?)$)`)

// originMatch turns a CORSOrigin into an Envoy origin matcher. Exact
// origins match exactly (scheme and host lowercased, the scheme's default
// port dropped, as browsers send it); "*" matches every origin; a host "*"
// or "*.<domain>" is a regex where "*" stands for one or more labels.
func originMatch(o gwv1.CORSOrigin) (ir.StringMatch, string) {
	s := string(o)
	if s == "*" {
		return ir.StringMatch{Kind: ir.MatchRegex, Value: ".*"}, ""
	}
	if !corsOrigin.MatchString(s) {
		return ir.StringMatch{}, fmt.Sprintf("origin %q is not <scheme>://<host>[:<port>] or *", s)
	}
	scheme, rest, _ := strings.Cut(strings.ToLower(s), "://")
	host, port, hasPort := strings.Cut(rest, ":")
	if hasPort {
		var n int
		if _, err := fmt.Sscanf(port, "%d", &n); err != nil || n < 1 || n > 65535 {
			return ir.StringMatch{}, fmt.Sprintf("origin %q has an invalid port", s)
		}
		port = fmt.Sprint(n)
		if (scheme == "http" && n == 80) || (scheme == "https" && n == 443) {
			hasPort = false
		}
	}
	suffix := ""
	if hasPort {
		suffix = ":" + port
	}
	if !strings.Contains(host, "*") {
		return ir.StringMatch{Kind: ir.MatchExact, Value: scheme + "://" + host + suffix}, ""
	}
	const labels = `[a-z0-9-]+(\.[a-z0-9-]+)*`
	var re string
	if host == "*" {
		re = labels
	} else {
		re = labels + regexp.QuoteMeta(strings.TrimPrefix(host, "*"))
	}
	return ir.StringMatch{Kind: ir.MatchRegex, Value: regexp.QuoteMeta(scheme+"://") + re + regexp.QuoteMeta(suffix)}, ""
}

// corsPolicy translates a CORS filter; notes are parts served differently.
// allowMethods and allowHeaders "*" are passed on: Envoy's CORS filter
// answers a preflight with the requested method and headers then, which is
// what the spec asks when credentials are allowed.
func corsPolicy(f *gwv1.HTTPCORSFilter, field string) (c *ir.Cors, problem string, notes []note) {
	c = &ir.Cors{AnswerAllPreflights: true}
	if f.AllowCredentials != nil {
		c.AllowCredentials = *f.AllowCredentials
	}
	wildcardMix := func(what string, vals []string) string {
		for _, v := range vals {
			if v == "*" && len(vals) > 1 {
				return fmt.Sprintf("%s cannot contain '*' alongside other values", what)
			}
		}
		return ""
	}
	var origins []string
	for _, o := range f.AllowOrigins {
		origins = append(origins, string(o))
		m, p := originMatch(o)
		if p != "" {
			return nil, p, nil
		}
		c.AllowOrigins = append(c.AllowOrigins, m)
	}
	if p := wildcardMix("allowOrigins", origins); p != "" {
		return nil, p, nil
	}
	for _, m := range f.AllowMethods {
		if !validName(string(m)) || strings.ContainsAny(string(m), ", ") {
			return nil, fmt.Sprintf("allowMethods value %q is not a method", m), nil
		}
		c.AllowMethods = append(c.AllowMethods, string(m))
	}
	if p := wildcardMix("allowMethods", c.AllowMethods); p != "" {
		return nil, p, nil
	}
	headers := func(what string, in []gwv1.HTTPHeaderName) ([]string, string) {
		var out []string
		for _, h := range in {
			if !validName(string(h)) || strings.ContainsAny(string(h), ", ") {
				return nil, fmt.Sprintf("%s value %q is not a header name", what, h)
			}
			out = append(out, string(h))
		}
		if p := wildcardMix(what, out); p != "" {
			return nil, p
		}
		return out, ""
	}
	var p string
	if c.AllowHeaders, p = headers("allowHeaders", f.AllowHeaders); p != "" {
		return nil, p, nil
	}
	if c.ExposeHeaders, p = headers("exposeHeaders", f.ExposeHeaders); p != "" {
		return nil, p, nil
	}
	if c.AllowCredentials && len(c.ExposeHeaders) == 1 && c.ExposeHeaders[0] == "*" {
		// Envoy echoes the request for allowMethods/allowHeaders "*" but
		// sends exposeHeaders verbatim.
		notes = append(notes, note{field + ".exposeHeaders", "'*' with allowCredentials is sent as '*', which browsers then take literally"})
	}
	age := f.MaxAge
	if age == 0 {
		age = 5 // the API default
	}
	if age < 0 {
		return nil, fmt.Sprintf("maxAge %d must be positive", f.MaxAge), nil
	}
	c.MaxAge = &ir.Duration{Duration: time.Duration(age) * time.Second}
	return c, "", notes
}
