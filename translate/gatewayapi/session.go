package gatewayapi

// HTTPRoute rule sessionPersistence (GEP-1619, experimental): served with
// Envoy's stateful_session filter, which pins a client to the upstream host
// whose address it carries in a cookie or header.

import (
	"fmt"
	"strings"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/hxds/hxds/translate/ir"
)

// Session names used when sessionName is unset (implementation-specific).
const (
	defaultSessionCookie = "hxds-session"
	defaultSessionHeader = "x-hxds-session"
)

// sessionPersistence converts a rule's sessionPersistence. problem means the
// rule is invalid (the API's CEL rules, an unknown type, a bad duration or
// name) and is dropped; notes are parts served differently than asked.
func sessionPersistence(rule gwv1.HTTPRouteRule, field string) (s *ir.SessionPersistence, problem string, notes []note) {
	sp := rule.SessionPersistence
	if sp == nil {
		return nil, "", nil
	}
	typ := gwv1.CookieBasedSessionPersistence
	if sp.Type != nil {
		typ = *sp.Type
	}
	var ttl *ir.Duration
	if sp.AbsoluteTimeout != nil {
		d, p := parseDuration(*sp.AbsoluteTimeout)
		if p != "" {
			return nil, "sessionPersistence.absoluteTimeout: " + p, nil
		}
		ttl = &ir.Duration{Duration: d}
	}
	name := ""
	if sp.SessionName != nil {
		name = *sp.SessionName
	}
	if name != "" && !httpToken(name) {
		return nil, fmt.Sprintf("sessionPersistence.sessionName %q is not a valid cookie or header name", name), nil
	}
	switch typ {
	case gwv1.CookieBasedSessionPersistence:
		lifetime := gwv1.SessionCookieLifetimeType
		if sp.CookieConfig != nil && sp.CookieConfig.LifetimeType != nil {
			lifetime = *sp.CookieConfig.LifetimeType
		}
		if name == "" {
			name = defaultSessionCookie
		}
		c := &ir.SessionCookie{Name: name, Path: cookiePath(rule)}
		switch lifetime {
		case gwv1.PermanentCookieLifetimeType:
			if ttl == nil {
				return nil, "sessionPersistence.absoluteTimeout must be set when cookieConfig.lifetimeType is Permanent", nil
			}
			// Envoy sets Max-Age and also stops honouring the cookie once
			// the expiry it encodes has passed.
			c.TTL = ttl
		case gwv1.SessionCookieLifetimeType:
			if ttl != nil {
				notes = append(notes, note{field + ".sessionPersistence.absoluteTimeout",
					"absoluteTimeout is not enforced for Session cookies (Envoy can only expire a session through the cookie's Max-Age, which makes it Permanent)"})
			}
		default:
			return nil, fmt.Sprintf("sessionPersistence.cookieConfig.lifetimeType %q is not Session or Permanent", lifetime), nil
		}
		s = &ir.SessionPersistence{Cookie: c}
	case gwv1.HeaderBasedSessionPersistence:
		if sp.CookieConfig != nil {
			return nil, "sessionPersistence.cookieConfig can only be set with type Cookie", nil
		}
		if name == "" {
			name = defaultSessionHeader
		}
		if ttl != nil {
			notes = append(notes, note{field + ".sessionPersistence.absoluteTimeout",
				"absoluteTimeout is not enforced for Header sessions (Envoy's header session state has no expiry)"})
		}
		s = &ir.SessionPersistence{Header: strings.ToLower(name)}
	default:
		return nil, fmt.Sprintf("sessionPersistence.type %q is not supported (Cookie and Header are)", typ), nil
	}
	if len(rule.BackendRefs) > 1 {
		notes = append(notes, note{field + ".sessionPersistence",
			"sessions stick to an upstream host only within the backend a request is first balanced to; with several backendRefs a request may still move to another backend by weight"})
	}
	return s, "", notes
}

// cookiePath scopes the cookie to the rule's path (GEP-1619): the path of
// its single Exact or PathPrefix match, else "/".
func cookiePath(rule gwv1.HTTPRouteRule) string {
	if len(rule.Matches) != 1 || rule.Matches[0].Path == nil || rule.Matches[0].Path.Value == nil {
		return "/"
	}
	p := rule.Matches[0].Path
	if p.Type != nil && *p.Type != gwv1.PathMatchExact && *p.Type != gwv1.PathMatchPathPrefix {
		return "/"
	}
	v := *p.Value
	if t := strings.TrimRight(v, "/"); t != "" {
		v = t
	}
	if !strings.HasPrefix(v, "/") || strings.ContainsAny(v, ";, \t\x00\r\n") {
		return "/"
	}
	return v
}

// httpToken reports an RFC 7230 token: what both a cookie name and a header
// name must be.
func httpToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return s != ""
}
