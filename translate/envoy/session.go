package envoy

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	statefulsessionv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/stateful_session/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	cookiestatev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/http/stateful_session/cookie/v3"
	headerstatev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/http/stateful_session/header/v3"
	httptypev3 "github.com/envoyproxy/go-control-plane/envoy/type/http/v3"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/hxds/hxds/translate/ir"
)

const filterStatefulSession = "envoy.filters.http.stateful_session"

// statefulSessionFilter is in every gateway HCM but disabled: only routes
// with session persistence enable it, through their per-route config, so
// turning persistence on or off changes RDS only.
func statefulSessionFilter() *hcmv3.HttpFilter {
	return &hcmv3.HttpFilter{
		Name:       filterStatefulSession,
		ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: statefulSessionConfig},
		Disabled:   true,
	}
}

var statefulSessionConfig = mustAny(&statefulsessionv3.StatefulSession{})

// statefulSession is the per-route config of a route's session persistence:
// Envoy's cookie or header session state, which encodes the chosen upstream
// address (and, for cookies with a TTL, the expiry) in the cookie or header.
func statefulSession(s *ir.SessionPersistence) *statefulsessionv3.StatefulSessionPerRoute {
	state := &corev3.TypedExtensionConfig{}
	if s.Cookie != nil {
		c := &httptypev3.Cookie{Name: s.Cookie.Name, Path: s.Cookie.Path}
		if s.Cookie.TTL != nil && s.Cookie.TTL.Duration > 0 {
			c.Ttl = durationpb.New(s.Cookie.TTL.Duration)
		}
		state.Name = "envoy.http.stateful_session.cookie"
		state.TypedConfig = mustAny(&cookiestatev3.CookieBasedSessionState{Cookie: c})
	} else {
		state.Name = "envoy.http.stateful_session.header"
		state.TypedConfig = mustAny(&headerstatev3.HeaderBasedSessionState{Name: s.Header})
	}
	return &statefulsessionv3.StatefulSessionPerRoute{Override: &statefulsessionv3.StatefulSessionPerRoute_StatefulSession{
		StatefulSession: &statefulsessionv3.StatefulSession{SessionState: state},
	}}
}
