package ingress

import (
	"regexp"
	"strconv"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/hxds/hxds/translate/ir"
)

// canary is the parsed canary-* annotations of one Ingress (§3.3).
type canary struct {
	header, headerValue, headerPattern string
	cookie                             string
	weight, weightTotal                int
	hasWeight                          bool
}

// parseCanary reads the canary annotations; nil when the Ingress is not a
// canary. Priority as Higress: header (value, then pattern) > cookie > weight.
// Unlike Higress, a weight set next to a header or cookie is kept, so that
// requests without the header are split by weight, as ingress-nginx does
// (higress-semantics §13.4).
func parseCanary(ing *networkingv1.Ingress, p parser) *canary {
	if !p.boolean("canary", false) {
		return nil
	}
	c := &canary{weightTotal: 100}
	c.header, _ = p.str("canary-by-header", false)
	c.headerValue, _ = p.str("canary-by-header-value", false)
	if c.headerValue == "" {
		c.headerPattern, _ = p.str("canary-by-header-pattern", false)
		if c.headerPattern != "" {
			if _, err := regexp.Compile(c.headerPattern); err != nil {
				p.bad("canary-by-header-pattern", c.headerPattern, "not a valid regular expression: %v", err)
				c.headerPattern = ""
			}
		}
	}
	c.cookie, _ = p.str("canary-by-cookie", false)
	if w, ok := p.integer("canary-weight", false); ok {
		if w < 0 {
			p.bad("canary-weight", strconv.Itoa(w), "must not be negative")
		} else {
			c.weight, c.hasWeight = w, true
		}
	}
	if t, ok := p.integer("canary-weight-total", false); ok {
		if t > 0 {
			c.weightTotal = t
		} else {
			p.bad("canary-weight-total", strconv.Itoa(t), "must be positive; 100 used")
		}
	}
	if c.header == "" && c.cookie == "" && !c.hasWeight {
		p.d.Warn(p.obj, "canary-without-rule", "metadata.annotations",
			"canary is true but no canary-by-header, canary-by-cookie or canary-weight is set; the canary gets no traffic")
	}
	return c
}

// byRequest reports whether the canary selects requests by header or cookie.
func (c *canary) byRequest() bool { return c.header != "" || c.cookie != "" }

// condition is the header match that sends a request to the canary. Values
// are escaped: a header value is a literal, not a regex (§13.4).
func (c *canary) condition() ir.HeaderMatch {
	switch {
	case c.header != "" && c.headerValue != "":
		return ir.HeaderMatch{Name: c.header, Match: ir.StringMatch{Kind: ir.MatchRegex, Value: "always|" + regexp.QuoteMeta(c.headerValue)}}
	case c.header != "" && c.headerPattern != "":
		return ir.HeaderMatch{Name: c.header, Match: ir.StringMatch{Kind: ir.MatchRegex, Value: ".*" + c.headerPattern + ".*"}}
	case c.header != "":
		return ir.HeaderMatch{Name: c.header, Match: ir.StringMatch{Kind: ir.MatchExact, Value: "always"}}
	default:
		return ir.HeaderMatch{Name: "cookie", Match: ir.StringMatch{Kind: ir.MatchRegex,
			Value: `^(.*?;\s*)?(` + regexp.QuoteMeta(c.cookie) + `=always)(;.*)?$`}}
	}
}

// never is ingress-nginx's opt-out: a request whose canary header (or
// cookie) says "never" always goes to the primary, even under a weight split.
func (c *canary) never() ir.HeaderMatch {
	if c.header != "" {
		return ir.HeaderMatch{Name: c.header, Match: ir.StringMatch{Kind: ir.MatchExact, Value: "never"}}
	}
	return ir.HeaderMatch{Name: "cookie", Match: ir.StringMatch{Kind: ir.MatchRegex,
		Value: `^(.*?;\s*)?(` + regexp.QuoteMeta(c.cookie) + `=never)(;.*)?$`}}
}

// applyCanary binds one canary path to its base route (same rule key) and
// returns the extra routes it adds (header/cookie route, "never" route).
// canaryRoute is the route the canary path would have been on its own: its
// name, destination and header-control annotations are what the canary
// contributes.
func (t *translator) applyCanary(c *canary, base, canaryRoute *ir.Route) []*ir.Route {
	if canaryRoute.Forward == nil {
		// A canary contributes its backend and header edits only; its own
		// redirect annotations do not apply (as in Higress).
		canaryRoute.Forward, canaryRoute.Redirect = t.redirected[canaryRoute], nil
	}
	if canaryRoute.Forward == nil || base.Forward == nil {
		// The base route redirects: there is no destination to split.
		t.d.Warn(canaryRoute.Source, "canary-unbound", "metadata.annotations",
			"canary path %q: its base route redirects, so there is no destination to split; ignored", canaryRoute.Matches[0].Path)
		return nil
	}
	dest := canaryRoute.Forward.Destinations[0]
	// An empty or missing canary falls back to the primary (and its own
	// fallbacks), as Higress's cluster_fallback does.
	var fallbacks []string
	if base.Forward != nil {
		primary := base.Forward.Destinations[0]
		fallbacks = append([]string{primary.Backend}, primary.Fallbacks...)
	}
	var extra []*ir.Route
	if c.byRequest() {
		// A copy of the base route (rewrites, CORS, timeouts, ... carry
		// over) whose matches also require the canary condition; the base
		// route's own header matches are kept (§13.3).
		r := cloneRoute(base)
		if cw := t.canaryWeights[base]; cw != nil {
			// A weighted canary already moved the base's header edits
			// to its primary destination: the copy gets them back.
			r.RequestHeaders, r.ResponseHeaders = cw.origRequest, cw.origResponse
		}
		r.Name = canaryRoute.Name
		r.Source = canaryRoute.Source
		dests := append([]ir.Destination(nil), canaryRoute.Forward.Destinations...)
		for i := range dests {
			dests[i].Fallbacks = fallbacks
		}
		r.Forward = &ir.Forward{Destinations: dests, TotalWeight: 100}
		if canaryRoute.RequestHeaders != nil || canaryRoute.ResponseHeaders != nil {
			r.RequestHeaders, r.ResponseHeaders = canaryRoute.RequestHeaders, canaryRoute.ResponseHeaders
		}
		addCondition(r, c.condition())
		extra = append(extra, r)
		if c.hasWeight && c.weight > 0 {
			never := cloneRoute(base)
			addCondition(never, c.never())
			extra = append(extra, never)
		}
	}
	if c.hasWeight && (!c.byRequest() || c.weight > 0) {
		t.addWeightedCanary(base, dest.Backend, fallbacks, c, canaryRoute)
	}
	return extra
}

// addWeightedCanary appends the canary as a weighted destination of the
// base route and normalises the weights to 100 (§3.3): the denominator is
// max(sum of the canary weights, canary-weight-total); each canary gets
// floor(w/denominator×100) and the primary the rest.
func (t *translator) addWeightedCanary(base *ir.Route, backend string, fallbacks []string, c *canary, canaryRoute *ir.Route) {
	f := base.Forward
	if f == nil {
		return // a redirect or direct response has nothing to split
	}
	cw := t.canaryWeights[base]
	if cw == nil {
		cw = &canaryWeights{total: c.weightTotal, origRequest: base.RequestHeaders, origResponse: base.ResponseHeaders}
		if len(f.Destinations) == 1 {
			// Route-level header edits belong to the primary once there
			// are several destinations.
			f.Destinations[0].RequestHeaders, f.Destinations[0].ResponseHeaders = base.RequestHeaders, base.ResponseHeaders
			base.RequestHeaders, base.ResponseHeaders = nil, nil
		} else {
			// Weighted already (higress.io/destination): those weights out
			// of 100 are the denominator, as in Higress.
			cw.total = 100
		}
		for _, d := range f.Destinations[1:] {
			cw.weights = append(cw.weights, int(d.Weight))
		}
		t.canaryWeights[base] = cw
	}
	cw.weights = append(cw.weights, c.weight)
	f.Destinations = append(f.Destinations, ir.Destination{
		Backend: backend, Fallbacks: fallbacks, RequestHeaders: canaryRoute.RequestHeaders, ResponseHeaders: canaryRoute.ResponseHeaders,
	})
	// Every destination after the first keeps its raw weight; the first
	// gets the rest (normalizeWeightedCluster).
	sum := 0
	for _, w := range cw.weights {
		sum += w
	}
	total := max(sum, cw.total, 1)
	assigned := uint32(0)
	for i, w := range cw.weights {
		share := uint32(w * 100 / total)
		f.Destinations[i+1].Weight = share
		assigned += share
	}
	f.Destinations[0].Weight = 100 - assigned
	f.TotalWeight = 100
}

// canaryWeights accumulates the weighted canaries of one base route; the
// denominator comes from the first canary's canary-weight-total.
type canaryWeights struct {
	total int
	// weights are the raw weights of every destination after the first.
	weights []int
	// origRequest/origResponse are the base route's header edits before
	// they moved to its primary destination.
	origRequest, origResponse *ir.HeaderOps
}

func addCondition(r *ir.Route, h ir.HeaderMatch) {
	for i := range r.Matches {
		r.Matches[i].Headers = append(r.Matches[i].Headers, h)
	}
	r.SortKey.HeaderCount++
}

// cloneRoute deep-copies the parts of a route a canary may change.
func cloneRoute(r *ir.Route) *ir.Route {
	c := *r
	c.Matches = make([]ir.Match, len(r.Matches))
	for i, m := range r.Matches {
		m.Headers = append([]ir.HeaderMatch(nil), m.Headers...)
		m.Query = append([]ir.QueryMatch(nil), m.Query...)
		c.Matches[i] = m
	}
	if r.Forward != nil {
		f := *r.Forward
		f.Destinations = append([]ir.Destination(nil), r.Forward.Destinations...)
		c.Forward = &f
	}
	return &c
}
