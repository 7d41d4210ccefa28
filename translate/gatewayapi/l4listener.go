package gatewayapi

// Gateway listeners of protocol TLS (mode Passthrough or Terminate) and TCP. They share
// the group's per-port listeners with everything else: a TLS listener's
// passthrough chains live next to HTTPS servers of the same port (told
// apart by SNI); a TCP port belongs to one listener.

import (
	"fmt"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/hxds/hxds/translate/input"
	"github.com/hxds/hxds/translate/ir"
)

// l4State is what TCP and TLS listeners claimed.
type l4State struct {
	// passthroughHosts: port → listener hostname → the TLS listener
	// (<ns>/<gateway>/<listener>) that takes it (passthrough or terminate).
	passthroughHosts map[uint32]map[string]string
}

// compatibleProtocols reports whether listeners of protocols a and b can
// share a port: equal HTTP-level protocols, or HTTPS and TLS (one Envoy
// listener selecting terminating and passthrough chains by SNI). A TCP
// port cannot be shared: nothing tells its connections apart.
func compatibleProtocols(a, b gwv1.ProtocolType) bool {
	tlsFamily := func(p gwv1.ProtocolType) bool {
		return p == gwv1.HTTPSProtocolType || p == gwv1.TLSProtocolType
	}
	switch {
	case a == gwv1.TCPProtocolType || b == gwv1.TCPProtocolType:
		return false
	case a == b:
		return true
	}
	return tlsFamily(a) && tlsFamily(b)
}

// l4RouteKind is the one route kind a TCP or TLS listener takes.
func l4RouteKind(p gwv1.ProtocolType) input.Kind {
	if p == gwv1.TCPProtocolType {
		return input.KindTCPRoute
	}
	return input.KindTLSRoute
}

// setListenerConditions sets the four listener conditions; msg explains the
// ones that are not in their good state. routesServed says whether routes
// can attach despite ResolvedRefs=False (invalid extra route kinds).
func setListenerConditions(ls *gwv1.ListenerStatus, gen int64, accepted bool, acceptedReason string,
	resolved bool, resolvedReason string, conflicted bool, conflictReason string, routesServed bool, msg string) {
	programmed := accepted && (resolved || routesServed) && !conflicted
	programmedReason := string(gwv1.ListenerReasonProgrammed)
	if !programmed {
		programmedReason = string(gwv1.ListenerReasonInvalid)
	}
	okMsg := func(ok bool) string {
		if ok {
			return ""
		}
		return msg
	}
	ls.Conditions = []metav1.Condition{
		condition(string(gwv1.ListenerConditionAccepted), accepted, acceptedReason, okMsg(accepted), gen),
		condition(string(gwv1.ListenerConditionConflicted), conflicted, conflictReason, okMsg(!conflicted), gen),
		condition(string(gwv1.ListenerConditionResolvedRefs), resolved, resolvedReason, okMsg(resolved), gen),
		condition(string(gwv1.ListenerConditionProgrammed), programmed, programmedReason, okMsg(programmed), gen),
	}
}

// translateL4Listener validates a TLS or TCP listener and sets its
// conditions; it returns the served listener or nil. Nothing goes into the
// IR here: a port gets Envoy chains only once routes attach (an Envoy
// listener needs a filter chain).
func (t *translator) translateL4Listener(gw *gwv1.Gateway, i int, l gwv1.Listener, ls *gwv1.ListenerStatus) *listener {
	obj := gatewayObject(gw)
	gen := gw.Generation
	field := fmt.Sprintf("spec.listeners[%d]", i)
	kind := l4RouteKind(l.Protocol)
	accepted, resolved, noConflict := string(gwv1.ListenerReasonAccepted), string(gwv1.ListenerReasonResolvedRefs), string(gwv1.ListenerReasonNoConflicts)

	allowed, badKinds := true, false
	if l.AllowedRoutes != nil && len(l.AllowedRoutes.Kinds) > 0 {
		allowed = false
		for _, k := range l.AllowedRoutes.Kinds {
			group := input.GatewayAPIGroup
			if k.Group != nil {
				group = string(*k.Group)
			}
			if group == input.GatewayAPIGroup && string(k.Kind) == string(kind) {
				allowed = true
			} else {
				badKinds = true
			}
		}
	}
	ls.SupportedKinds = []gwv1.RouteGroupKind{}
	if allowed {
		g := gwv1.Group(input.GatewayAPIGroup)
		ls.SupportedKinds = append(ls.SupportedKinds, gwv1.RouteGroupKind{Group: &g, Kind: gwv1.Kind(kind)})
	}
	reject := func(reason, f, msg string) *listener {
		setListenerConditions(ls, gen, false, reason, true, resolved, false, noConflict, false, msg)
		t.d.Error(obj, "invalid-listener", field+f, "%s; listener not served", msg)
		return nil
	}

	passthrough := l.TLS != nil && l.TLS.Mode != nil && *l.TLS.Mode == gwv1.TLSModePassthrough
	if l.Protocol == gwv1.TLSProtocolType && passthrough && len(l.TLS.CertificateRefs) > 0 {
		t.d.Warn(obj, "ignored-field", field+".tls.certificateRefs", "a Passthrough listener does not use certificates")
	}
	if ar := l.AllowedRoutes; ar != nil && ar.Namespaces != nil && ar.Namespaces.From != nil && *ar.Namespaces.From == gwv1.NamespacesFromSelector {
		if _, err := metav1.LabelSelectorAsSelector(ar.Namespaces.Selector); err != nil || ar.Namespaces.Selector == nil {
			return reject(string(gwv1.ListenerReasonUnsupportedValue), ".allowedRoutes.namespaces.selector",
				"allowedRoutes.namespaces.selector is missing or invalid")
		}
	}
	if l.Port < 1 || l.Port > 65535 {
		return reject(string(gwv1.ListenerReasonUnsupportedValue), ".port", fmt.Sprintf("port %d is not a valid port", l.Port))
	}
	host := "*"
	if l.Hostname != nil && *l.Hostname != "" {
		h := string(*l.Hostname)
		if l.Protocol == gwv1.TCPProtocolType {
			// The spec: hostname does not apply to TCP listeners.
			t.d.Warn(obj, "ignored-field", field+".hostname", "hostname %q does not apply to a TCP listener; ignored", h)
		} else {
			if strings.ContainsAny(h, "/ \x00\r\n") || strings.Contains(h[1:], "*") {
				return reject(string(gwv1.ListenerReasonUnsupportedValue), ".hostname", fmt.Sprintf("hostname %q is not valid", h))
			}
			host = strings.ToLower(h)
		}
	}
	port := uint32(l.Port)
	conflict := func(reason, f, msg string) *listener {
		setListenerConditions(ls, gen, true, accepted, true, resolved, true, reason, false, msg)
		t.d.Error(obj, "listener-conflict", field+f, "%s; listener not served", msg)
		return nil
	}
	if p, ok := t.portProtocols[port]; ok && !compatibleProtocols(p, l.Protocol) {
		return conflict(string(gwv1.ListenerReasonProtocolConflict), ".port", fmt.Sprintf("port %d is already served as %s", port, p))
	}
	id := fmt.Sprintf("%s/%s/%s", gw.Namespace, gw.Name, l.Name)
	if l.Protocol == gwv1.TLSProtocolType {
		if owner := t.l4.passthroughHosts[port][host]; owner != "" {
			return conflict(string(gwv1.ListenerReasonHostnameConflict), ".hostname",
				fmt.Sprintf("host %q on port %d is already passed through by listener %s", host, port, owner))
		}
		if server, ok := t.b.TLSServer(port, host); ok {
			return conflict(string(gwv1.ListenerReasonHostnameConflict), ".hostname",
				fmt.Sprintf("host %q on port %d already has TLS from %s", host, port, server.Source))
		}
	}
	// TLS mode Terminate (the default; the extended feature
	// TLSRouteModeTerminate): the chains terminate TLS with the listener's
	// certificate, then proxy the plain bytes.
	terminate := ""
	if l.Protocol == gwv1.TLSProtocolType && !passthrough {
		sds, cert, key, reason, msg := t.certificate(gw, l)
		if reason != "" {
			setListenerConditions(ls, gen, true, accepted, false, reason, false, noConflict, false, msg)
			t.d.Error(obj, "invalid-certificate-ref", field+".tls", "%s; listener not served", msg)
			return nil
		}
		t.b.AddSecret(&ir.Secret{Name: sds, Namespace: sdsNamespace(gw, l), SecretName: string(l.TLS.CertificateRefs[0].Name), Cert: cert, Key: key})
		terminate = sds
	}
	if badKinds {
		msg := fmt.Sprintf("only %s (gateway.networking.k8s.io) can attach to a %s listener", kind, l.Protocol)
		setListenerConditions(ls, gen, true, accepted, false, string(gwv1.ListenerReasonInvalidRouteKinds), false, noConflict, allowed, msg)
		t.d.Warn(obj, "invalid-route-kinds", field+".allowedRoutes.kinds", "%s", msg)
		if !allowed {
			return nil
		}
	} else {
		setListenerConditions(ls, gen, true, accepted, true, resolved, false, noConflict, true, "")
	}
	// Claim the port (a TCP port was free: any other listener on it now
	// conflicts) and, for TLS, the hostname on it.
	if _, ok := t.portProtocols[port]; !ok {
		t.portProtocols[port] = l.Protocol
	}
	if l.Protocol == gwv1.TLSProtocolType {
		if t.l4.passthroughHosts == nil {
			t.l4.passthroughHosts = map[uint32]map[string]string{}
		}
		if t.l4.passthroughHosts[port] == nil {
			t.l4.passthroughHosts[port] = map[string]string{}
		}
		t.l4.passthroughHosts[port][host] = id
	}
	return &listener{gw: gw, index: i, spec: l, host: host, allowL4Route: true, terminate: terminate}
}

// sortL4Statuses orders TCPRoute and TLSRoute statuses by namespace/name.
func sortL4Statuses(st *Status) {
	sort.SliceStable(st.TCPRoutes, func(i, j int) bool {
		a, b := st.TCPRoutes[i], st.TCPRoutes[j]
		return a.Namespace < b.Namespace || (a.Namespace == b.Namespace && a.Name < b.Name)
	})
	sort.SliceStable(st.TLSRoutes, func(i, j int) bool {
		a, b := st.TLSRoutes[i], st.TLSRoutes[j]
		return a.Namespace < b.Namespace || (a.Namespace == b.Namespace && a.Name < b.Name)
	})
}
