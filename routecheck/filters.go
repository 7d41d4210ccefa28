package routecheck

import (
	"fmt"
	"net/netip"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	localratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/local_ratelimit/v3"
	rbachttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3" // router typed config
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"google.golang.org/protobuf/types/known/anypb"
)

const (
	typePrefix         = "type.googleapis.com/"
	routerType         = typePrefix + "envoy.extensions.filters.http.router.v3.Router"
	rbacType           = typePrefix + "envoy.extensions.filters.http.rbac.v3.RBAC"
	rbacPerRouteType   = typePrefix + "envoy.extensions.filters.http.rbac.v3.RBACPerRoute"
	localRateLimitType = typePrefix + "envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"
	corsType           = typePrefix + "envoy.extensions.filters.http.cors.v3.Cors"
	corsPolicyType     = typePrefix + "envoy.extensions.filters.http.cors.v3.CorsPolicy"
	customResponseType = typePrefix + "envoy.extensions.filters.http.custom_response.v3.CustomResponse"
)

// perRouteLevel is one level of typed_per_filter_config, most specific first.
type perRouteLevel struct {
	name string
	m    map[string]*anypb.Any
}

func (e *evaluator) perRouteLevels() []perRouteLevel {
	var out []perRouteLevel
	if e.route == nil {
		// Without a route there is no per-route configuration at all.
		return nil
	}
	if e.weighted != nil {
		out = append(out, perRouteLevel{"weighted-cluster", e.weighted.GetTypedPerFilterConfig()})
	}
	out = append(out,
		perRouteLevel{"route", e.route.GetTypedPerFilterConfig()},
		perRouteLevel{"virtual-host", e.vh.GetTypedPerFilterConfig()},
		perRouteLevel{"route-config", e.rc.GetTypedPerFilterConfig()})
	return out
}

// perFilter returns the most specific per-route configuration of filter name
// and its level; disabled reports a FilterConfig{disabled: true} at the most
// specific level that mentions the filter, enabled an entry that enables it.
func (e *evaluator) perFilter(name string) (cfg typedConfig, level string, mentioned bool) {
	for _, l := range e.perRouteLevels() {
		a, ok := l.m[name]
		if !ok {
			continue
		}
		return decodeTyped(a), l.name, true
	}
	return typedConfig{}, "", false
}

// filterSetup is one HTTP filter of the connection manager as it applies to
// the request: its own configuration, the most specific per-route one and
// whether it is disabled for the route.
type filterSetup struct {
	name      string
	base, per typedConfig
	// level of the per-route configuration; mentioned: some level names the filter.
	level     string
	mentioned bool
	disabled  bool
	ecds      bool
	// kind is the type URL that decides what the filter is.
	kind string
}

// setupFilter resolves an HTTP filter's configuration for the request's route.
func (e *evaluator) setupFilter(f *hcmv3.HttpFilter) (filterSetup, error) {
	s := filterSetup{name: f.GetName()}
	switch c := f.GetConfigType().(type) {
	case *hcmv3.HttpFilter_TypedConfig:
		s.base = decodeTyped(c.TypedConfig)
	case *hcmv3.HttpFilter_ConfigDiscovery:
		s.ecds = true
		s.base.typeURL = strings.Join(c.ConfigDiscovery.GetTypeUrls(), ",")
	}
	if s.base.err != nil {
		return s, fmt.Errorf("HTTP filter %s: %w", f.GetName(), s.base.err)
	}
	s.per, s.level, s.mentioned = e.perFilter(f.GetName())
	if s.per.err != nil {
		if s.per.optional {
			e.note("optional per-route config of %s ignored: %v", f.GetName(), s.per.err)
			s.per, s.mentioned = typedConfig{}, false
		} else {
			return s, fmt.Errorf("per-route config of HTTP filter %s (%s): %w", f.GetName(), s.level, s.per.err)
		}
	}
	s.disabled = f.GetDisabled()
	if s.mentioned {
		s.disabled = s.per.disabled
	}
	s.kind = s.base.typeURL
	if s.kind == "" || s.ecds {
		s.kind = s.per.typeURL
	}
	return s, nil
}

// isRouter reports the router filter, which ends the decoder filters.
func isRouter(f *hcmv3.HttpFilter) bool {
	return f.GetName() == wellknown.Router || f.GetTypedConfig().GetTypeUrl() == routerType
}

// runFilters runs the connection manager's HTTP filters up to the router.
// RBAC is evaluated, local rate limits and CORS are reported, the
// custom_response filter acts on the response (customResponse), any other
// filter is listed as not simulated. A denial stops the chain.
func (e *evaluator) runFilters() error {
	known := map[string]bool{}
	e.stoppedAt = -1
	for i, f := range e.hcm.GetHttpFilters() {
		known[f.GetName()] = true
		if isRouter(f) {
			break
		}
		res := FilterResult{Name: f.GetName()}
		s, err := e.setupFilter(f)
		if err != nil {
			return err
		}
		res.Type = strings.TrimPrefix(s.base.typeURL, typePrefix)
		if s.disabled {
			res.Config, res.Result = "disabled", "disabled for this request"
			if s.mentioned {
				res.Config = "disabled (" + s.level + ")"
			}
			e.out.Filters = append(e.out.Filters, res)
			continue
		}
		res.Config = "filter"
		if s.per.msg != nil || s.per.typeURL != "" {
			res.Config = s.level
		}
		switch kind := s.kind; {
		case s.ecds && s.per.msg == nil:
			res.Result = "not simulated (extension config discovery)"
			e.notSimulated("HTTP filter %s (ECDS %s)", f.GetName(), res.Type)
		case kind == rbacType || kind == rbacPerRouteType:
			e.evalRBAC(&res, s.base, s.per)
		case kind == localRateLimitType:
			e.reportLocalRateLimit(&res, s.base, s.per)
		case kind == corsType || kind == corsPolicyType:
			e.evalCors(&res)
		case kind == customResponseType:
			// It acts on the response: customResponse fills the result in.
			res.Result = "acts on the response"
			if e.redirected {
				res.Result = "internally redirected stream: the original policy's response mutations apply"
			}
		default:
			res.Result = "not simulated"
			e.notSimulated("HTTP filter %s (%s)", f.GetName(), res.Type)
		}
		e.out.Filters = append(e.out.Filters, res)
		if e.out.Denied != nil || e.localReply {
			e.stoppedAt = i
			return nil
		}
	}
	for _, l := range e.perRouteLevels() {
		for _, name := range sortedNames(l.m) {
			if !known[name] {
				e.note("%s typed_per_filter_config %q names no HTTP filter of the connection manager: ignored", l.name, name)
			}
		}
	}
	return nil
}

// evalRBAC: a per-route RBACPerRoute replaces the filter's configuration (an
// empty one disables the filter for the route). ALLOW lets through requests
// some policy matches, DENY stops them, LOG only logs.
func (e *evaluator) evalRBAC(res *FilterResult, base, per typedConfig) {
	var cfg *rbachttpv3.RBAC
	switch m := per.msg.(type) {
	case *rbachttpv3.RBACPerRoute:
		if m.GetRbac() == nil {
			res.Result = "disabled by an empty per-route RBAC"
			return
		}
		cfg = m.GetRbac()
	case *rbachttpv3.RBAC:
		cfg = m
	}
	if cfg == nil {
		cfg, _ = base.msg.(*rbachttpv3.RBAC)
	}
	if cfg == nil {
		res.Result = "no configuration: allowed"
		return
	}
	if cfg.GetShadowRules() != nil || cfg.GetShadowMatcher() != nil {
		e.note("RBAC %s shadow rules only log; they are not evaluated", res.Name)
	}
	if cfg.GetMatcher() != nil {
		res.Result = "not simulated (matcher tree)"
		e.notSimulated("RBAC %s matcher tree", res.Name)
		return
	}
	rules := cfg.GetRules()
	if rules == nil {
		res.Result = "no rules: allowed"
		return
	}
	matched := ""
	for _, name := range sortedNames(rules.GetPolicies()) {
		if e.policyMatches(res.Name, name, rules.GetPolicies()[name]) {
			matched = name
			break
		}
	}
	deny := func(reason string) {
		res.Result = "denied: " + reason
		e.out.Denied = &Denial{Status: 403, Filter: res.Name, Reason: reason}
	}
	switch rules.GetAction() {
	case rbacv3.RBAC_ALLOW:
		if matched == "" {
			deny("no ALLOW policy matches")
		} else {
			res.Result = "allowed by policy " + matched
		}
	case rbacv3.RBAC_DENY:
		if matched != "" {
			deny("DENY policy " + matched + " matches")
		} else {
			res.Result = "allowed: no DENY policy matches"
		}
	default:
		res.Result = "LOG only: allowed"
	}
}

func (e *evaluator) policyMatches(filter, name string, p *rbacv3.Policy) bool {
	perm := false
	for _, pm := range p.GetPermissions() {
		if e.permission(filter, pm) {
			perm = true
			break
		}
	}
	if !perm {
		return false
	}
	principal := false
	for _, pr := range p.GetPrincipals() {
		if e.principal(filter, pr) {
			principal = true
			break
		}
	}
	if !principal {
		return false
	}
	if p.GetCondition() != nil || p.GetCheckedCondition() != nil {
		e.notSimulated("RBAC %s policy %s CEL condition (taken as true)", filter, name)
	}
	return true
}

func (e *evaluator) permission(filter string, p *rbacv3.Permission) bool {
	switch r := p.GetRule().(type) {
	case *rbacv3.Permission_Any:
		return r.Any
	case *rbacv3.Permission_AndRules:
		for _, x := range r.AndRules.GetRules() {
			if !e.permission(filter, x) {
				return false
			}
		}
		return true
	case *rbacv3.Permission_OrRules:
		for _, x := range r.OrRules.GetRules() {
			if e.permission(filter, x) {
				return true
			}
		}
		return false
	case *rbacv3.Permission_NotRule:
		return !e.permission(filter, r.NotRule)
	case *rbacv3.Permission_Header:
		ok, err := matchHeader(r.Header, e.headers)
		if err != nil {
			e.notSimulated("RBAC %s: %v", filter, err)
		}
		return ok
	case *rbacv3.Permission_UrlPath:
		ok, err := matchString(r.UrlPath.GetPath(), pathOnly(e.headers.first(":path")))
		if err != nil {
			e.notSimulated("RBAC %s url_path: %v", filter, err)
		}
		return ok
	case *rbacv3.Permission_DestinationPort:
		return r.DestinationPort == e.req.Port
	case *rbacv3.Permission_DestinationPortRange:
		p := int32(e.req.Port)
		return p >= r.DestinationPortRange.GetStart() && p < r.DestinationPortRange.GetEnd()
	case *rbacv3.Permission_DestinationIp:
		return e.ipIn(filter, "destination_ip", e.req.DestinationIP, r.DestinationIp)
	case *rbacv3.Permission_RequestedServerName:
		ok, err := matchString(r.RequestedServerName, e.req.SNI)
		if err != nil {
			e.notSimulated("RBAC %s requested_server_name: %v", filter, err)
		}
		return ok
	}
	e.notSimulated("RBAC %s permission %T (taken as not matching)", filter, p.GetRule())
	return false
}

func (e *evaluator) principal(filter string, p *rbacv3.Principal) bool {
	switch id := p.GetIdentifier().(type) {
	case *rbacv3.Principal_Any:
		return id.Any
	case *rbacv3.Principal_AndIds:
		for _, x := range id.AndIds.GetIds() {
			if !e.principal(filter, x) {
				return false
			}
		}
		return true
	case *rbacv3.Principal_OrIds:
		for _, x := range id.OrIds.GetIds() {
			if e.principal(filter, x) {
				return true
			}
		}
		return false
	case *rbacv3.Principal_NotId:
		return !e.principal(filter, id.NotId)
	case *rbacv3.Principal_SourceIp:
		return e.ipIn(filter, "source_ip", e.req.SourceIP, id.SourceIp)
	case *rbacv3.Principal_DirectRemoteIp:
		return e.ipIn(filter, "direct_remote_ip", e.req.SourceIP, id.DirectRemoteIp)
	case *rbacv3.Principal_RemoteIp:
		return e.ipIn(filter, "remote_ip", e.req.SourceIP, id.RemoteIp)
	case *rbacv3.Principal_Header:
		ok, err := matchHeader(id.Header, e.headers)
		if err != nil {
			e.notSimulated("RBAC %s: %v", filter, err)
		}
		return ok
	case *rbacv3.Principal_UrlPath:
		ok, err := matchString(id.UrlPath.GetPath(), pathOnly(e.headers.first(":path")))
		if err != nil {
			e.notSimulated("RBAC %s url_path: %v", filter, err)
		}
		return ok
	}
	e.notSimulated("RBAC %s principal %T (taken as not matching)", filter, p.GetIdentifier())
	return false
}

// ipIn: the client address is the connection's (an edge proxy with
// use_remote_address and no trusted hops), so remote_ip, direct_remote_ip and
// source_ip all see it.
func (e *evaluator) ipIn(filter, what, ip string, r *corev3.CidrRange) bool {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		e.note("RBAC %s %s: the request has no such address (%q); taken as not matching", filter, what, ip)
		return false
	}
	p, err := cidrPrefix(r)
	if err != nil {
		e.notSimulated("RBAC %s %s %s/%d: %v", filter, what, r.GetAddressPrefix(), r.GetPrefixLen().GetValue(), err)
		return false
	}
	return p.Contains(addr.Unmap())
}

func (e *evaluator) reportLocalRateLimit(res *FilterResult, base, per typedConfig) {
	cfg, _ := per.msg.(*localratelimitv3.LocalRateLimit)
	if cfg == nil {
		cfg, _ = base.msg.(*localratelimitv3.LocalRateLimit)
	}
	if cfg == nil || cfg.GetTokenBucket() == nil {
		res.Result = "no token bucket: no limit"
		return
	}
	tb := cfg.GetTokenBucket()
	perFill := uint32(1)
	if tb.GetTokensPerFill() != nil {
		perFill = tb.GetTokensPerFill().GetValue()
	}
	e.out.LocalRateLimit = &TokenBucket{
		Filter:        res.Name,
		MaxTokens:     tb.GetMaxTokens(),
		TokensPerFill: perFill,
		FillInterval:  tb.GetFillInterval().AsDuration().String(),
		Enabled:       percent(cfg.GetFilterEnabled()),
		Enforced:      percent(cfg.GetFilterEnforced()),
	}
	res.Result = fmt.Sprintf("token bucket %d tokens, %d per %s (reported, not simulated)",
		tb.GetMaxTokens(), perFill, e.out.LocalRateLimit.FillInterval)
}

func percent(p *corev3.RuntimeFractionalPercent) string {
	if p == nil {
		return "0%"
	}
	d := p.GetDefaultValue()
	switch d.GetDenominator() {
	case typev3.FractionalPercent_TEN_THOUSAND:
		return fmt.Sprintf("%d/10000", d.GetNumerator())
	case typev3.FractionalPercent_MILLION:
		return fmt.Sprintf("%d/1000000", d.GetNumerator())
	}
	return fmt.Sprintf("%d%%", d.GetNumerator())
}

// fractionPercent is a runtime fraction's default value as a percentage.
func fractionPercent(p *corev3.RuntimeFractionalPercent) float64 {
	d := p.GetDefaultValue()
	n := float64(d.GetNumerator())
	switch d.GetDenominator() {
	case typev3.FractionalPercent_TEN_THOUSAND:
		return n / 100
	case typev3.FractionalPercent_MILLION:
		return n / 10000
	}
	return n
}
