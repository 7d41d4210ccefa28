package routecheck

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	corsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cors/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// corsPolicy is one level's CORS policy (per-route CorsPolicy or the legacy
// route / virtual host cors field; both have the same fields).
type corsPolicy interface {
	GetAllowOriginStringMatch() []*matcherv3.StringMatcher
	GetAllowMethods() string
	GetAllowHeaders() string
	GetExposeHeaders() string
	GetMaxAge() string
	GetAllowCredentials() *wrapperspb.BoolValue
	GetFilterEnabled() *corev3.RuntimeFractionalPercent
	GetForwardNotMatchingPreflights() *wrapperspb.BoolValue
}

// corsPolicies lists the CORS policies of the route, most specific first:
// the per-route configs of the filter at route, virtual host and route
// configuration level, or, only when there is none, the legacy cors fields.
func (e *evaluator) corsPolicies(filter string) []corsPolicy {
	var out []corsPolicy
	for _, l := range e.perRouteLevels() {
		if l.name == "weighted-cluster" {
			continue
		}
		if a, ok := l.m[filter]; ok {
			if p, ok := decodeTyped(a).msg.(*corsv3.CorsPolicy); ok {
				out = append(out, p)
			}
		}
	}
	if len(out) > 0 || e.route == nil {
		return out
	}
	if p := e.route.GetRoute().GetCors(); p != nil {
		out = append(out, p)
	}
	if p := e.vh.GetCors(); p != nil {
		out = append(out, p)
	}
	return out
}

// evalCors follows Envoy's CORS filter: a request with an Origin is a CORS
// request; a preflight (OPTIONS with Access-Control-Request-Method) is
// answered 200 by the filter unless the origin is not allowed and
// forward_not_matching_preflights (default true) lets it through; an allowed
// origin gets access-control-* response headers. Each field comes from the
// most specific policy that sets it.
func (e *evaluator) evalCors(res *FilterResult) {
	if e.route.GetRoute() == nil {
		// No route, or a redirect / direct response (no route entry).
		res.Result = "no route entry: nothing to do"
		return
	}
	ps := e.corsPolicies(res.Name)
	if len(ps) == 0 {
		res.Result = "no CORS policy for this route"
		return
	}
	first := func(get func(corsPolicy) string) string {
		for _, p := range ps {
			if v := get(p); v != "" {
				return v
			}
		}
		return ""
	}
	boolean := func(get func(corsPolicy) *wrapperspb.BoolValue, def bool) bool {
		for _, p := range ps {
			if v := get(p); v != nil {
				return v.GetValue()
			}
		}
		return def
	}
	var origins []*matcherv3.StringMatcher
	for _, p := range ps {
		if len(p.GetAllowOriginStringMatch()) > 0 {
			origins = p.GetAllowOriginStringMatch()
			break
		}
	}
	c := &Cors{
		AllowMethods:     first(corsPolicy.GetAllowMethods),
		AllowHeaders:     first(corsPolicy.GetAllowHeaders),
		ExposeHeaders:    first(corsPolicy.GetExposeHeaders),
		MaxAge:           first(corsPolicy.GetMaxAge),
		AllowCredentials: boolean(corsPolicy.GetAllowCredentials, false),
	}
	for _, o := range origins {
		c.AllowOrigins = append(c.AllowOrigins, describeString(o))
	}
	e.out.Cors = c
	if fe := ps[0].GetFilterEnabled(); fe != nil && percent(fe) != "100%" {
		e.note("CORS filter_enabled is %s; taken as enabled", percent(fe))
	}

	origin := e.headers.first("origin")
	if origin == "" {
		c.Result = "not a CORS request (no Origin)"
		res.Result = c.Result
		return
	}
	allowed := false
	for _, m := range origins {
		star, _ := matchString(m, "*")
		ok, _ := matchString(m, origin)
		if star || ok {
			allowed = true
			break
		}
	}
	if allowed {
		e.corsOrigin = origin
	}
	preflight := e.headers.first(":method") == "OPTIONS" && e.headers.first("access-control-request-method") != ""
	switch {
	case !preflight && allowed:
		c.Result = "CORS request from an allowed origin: access-control-allow-origin added to the response"
	case !preflight:
		c.Result = "CORS request from an origin that is not allowed: response unchanged"
	case !allowed && boolean(corsPolicy.GetForwardNotMatchingPreflights, true):
		c.Result = "preflight from an origin that is not allowed: forwarded"
	default:
		c.Result = "preflight answered by the CORS filter"
		resp := &headerMap{}
		if allowed {
			resp.set("access-control-allow-origin", origin)
		}
		if c.AllowCredentials {
			resp.set("access-control-allow-credentials", "true")
		}
		if m := c.AllowMethods; m == "*" {
			resp.set("access-control-allow-methods", e.headers.first("access-control-request-method"))
		} else if m != "" {
			resp.set("access-control-allow-methods", m)
		}
		if h := c.AllowHeaders; h == "*" {
			resp.set("access-control-allow-headers", e.headers.first("access-control-request-headers"))
		} else if h != "" {
			resp.set("access-control-allow-headers", h)
		}
		if c.MaxAge != "" {
			resp.set("access-control-max-age", c.MaxAge)
		}
		// The reply goes through the encoder filters, the CORS filter's
		// own encodeHeaders included (allow-origin, expose-headers).
		e.corsResponseHeaders(resp)
		e.localReply = true
		e.corsOrigin = ""
		e.out.Status = 200
		e.out.ResponseHeaders = resp.regular()
	}
	res.Result = c.Result
}

// corsResponseHeaders is the CORS filter's encodeHeaders for a CORS request
// from an allowed origin.
func (e *evaluator) corsResponseHeaders(h *headerMap) {
	if e.corsOrigin == "" || e.out.Cors == nil {
		return
	}
	h.set("access-control-allow-origin", e.corsOrigin)
	if e.out.Cors.AllowCredentials {
		h.set("access-control-allow-credentials", "true")
	}
	if x := e.out.Cors.ExposeHeaders; x != "" {
		h.set("access-control-expose-headers", x)
	}
}
