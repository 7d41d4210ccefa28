// Package gatewayapi translates Gateway API objects (GatewayClass, Gateway,
// HTTPRoute, GRPCRoute, ReferenceGrant) into the gateway IR, into the same builder as
// the Ingress front-end so both share the per-port listeners of the group
// (higress-semantics §8). It also computes the status each object would get,
// as Gateway API Go types, without writing it anywhere.
package gatewayapi

import (
	"crypto/tls"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/hxds/hxds/translate/diag"
	"github.com/hxds/hxds/translate/ingress"
	"github.com/hxds/hxds/translate/input"
	"github.com/hxds/hxds/translate/ir"
)

// ControllerName is the controllerName of GatewayClasses served by hxds (the
// Higress one, so existing classes keep working).
const ControllerName = "higress.io/gateway-controller"

// Status is the computed status of every Gateway API object this controller
// owns, in namespace/name order. Conditions carry observedGeneration but no
// lastTransitionTime: translation has no clock; a status writer sets it.
type Status struct {
	GatewayClasses []GatewayClassStatus `json:"gatewayClasses,omitempty"`
	Gateways       []GatewayStatus      `json:"gateways,omitempty"`
	HTTPRoutes     []HTTPRouteStatus    `json:"httpRoutes,omitempty"`
	GRPCRoutes     []GRPCRouteStatus    `json:"grpcRoutes,omitempty"`
	// BackendTLSPolicies: every policy, with the ancestors it has here.
	BackendTLSPolicies []BackendTLSPolicyStatus `json:"backendTLSPolicies,omitempty"`
	TCPRoutes          []TCPRouteStatus         `json:"tcpRoutes,omitempty"`
	TLSRoutes          []TLSRouteStatus         `json:"tlsRoutes,omitempty"`
}

// GatewayClassStatus is the status of one GatewayClass of ours.
type GatewayClassStatus struct {
	Name   string                  `json:"name"`
	Status gwv1.GatewayClassStatus `json:"status"`
}

// GatewayStatus is the status of one Gateway of our classes.
type GatewayStatus struct {
	Namespace string             `json:"namespace"`
	Name      string             `json:"name"`
	Status    gwv1.GatewayStatus `json:"status"`
}

// HTTPRouteStatus is the status of one HTTPRoute: one entry per parentRef
// that names a Gateway of ours.
type HTTPRouteStatus struct {
	Namespace string               `json:"namespace"`
	Name      string               `json:"name"`
	Status    gwv1.HTTPRouteStatus `json:"status"`
}

// GRPCRouteStatus is the status of one GRPCRoute: one entry per parentRef
// that names a Gateway of ours.
type GRPCRouteStatus struct {
	Namespace string               `json:"namespace"`
	Name      string               `json:"name"`
	Status    gwv1.GRPCRouteStatus `json:"status"`
}

// listener is one Gateway listener that is served.
type listener struct {
	gw     *gwv1.Gateway
	index  int
	spec   gwv1.Listener
	status *gwv1.ListenerStatus
	// host is the listener hostname, "*" when unset.
	host  string
	https bool
	// server is the TLS server of an HTTPS listener.
	server *ir.TLSServer
	// unserved: the listener is accepted but its certificate does not
	// resolve, so it serves nothing; routes still attach to it and count
	// in attachedRoutes, as the spec requires.
	unserved bool
	// kinds allowed to attach.
	allowHTTPRoute, allowGRPCRoute bool
	// allowL4Route: a TCP listener takes TCPRoutes, a TLS one TLSRoutes
	// (l4listener.go); HTTP routes never attach to them. terminate is the
	// SDS certificate of a TLS listener in mode Terminate.
	allowL4Route bool
	terminate    string
	// claims are the hostnames routes accepted on the listener serve, with
	// their kind, for the HTTPRoute/GRPCRoute hostname conflict rule.
	claims []hostClaim
}

// hostClaim is a hostname an accepted route serves on a listener.
type hostClaim struct {
	host  string
	kind  input.Kind
	route string // namespace/name
}

type translator struct {
	snap *input.Snapshot
	opts input.Options
	b    *ir.Builder
	d    *diag.Set
	st   *Status

	classes map[string]bool
	// listeners per Gateway (namespace/name) that are served.
	listeners map[input.NamespacedName][]*listener
	gateways  map[input.NamespacedName]*GatewayStatus
	// portProtocols records which protocol owns each port.
	portProtocols map[uint32]gwv1.ProtocolType
	keyPairs      map[input.NamespacedName]error

	// hosts collects the HTTPRoute routes of each virtual host before
	// sorting, grpcHosts the GRPCRoute ones (with grpcKeys).
	hosts     map[*ir.VirtualHost][]*ir.Route
	grpcHosts map[*ir.VirtualHost][]*ir.Route
	grpcKeys  map[*ir.Route]grpcKey
	// Clusters by upstream protocol: registered by this front-end, used by
	// accepted GRPCRoutes (HTTP/2), by accepted HTTPRoutes, or registered as
	// HTTP/1 by the Ingress front-end.
	registered, grpcClusters, http1Clusters, h2cClusters, ingressHTTP1 map[string]bool
	hostOrder                                                          []*ir.VirtualHost
	order                                                              int

	// BackendTLSPolicies: the winner per target, every policy naming each
	// target, and all of them in precedence order (backendtls.go).
	tlsPolicies   map[tlsTarget]*backendTLS
	tlsByTarget   map[tlsTarget][]*backendTLS
	tlsPolicyList []*backendTLS
	// l4 is the state of TCP and TLS listeners (l4listener.go).
	l4 l4State
	// backendCerts: the resolved spec.tls.backend client certificate per
	// Gateway; clientCertOwner: the Gateway whose certificate a TLS cluster
	// got first (gatewaytls.go).
	backendCerts    map[input.NamespacedName]*ir.Secret
	clientCertOwner map[string]input.NamespacedName
}

// Translate adds every Gateway API object this controller serves to b, records
// what was served and why not in d, and returns the computed status.
func Translate(snap *input.Snapshot, opts input.Options, b *ir.Builder, d *diag.Set) *Status {
	t := &translator{
		snap: snap, opts: opts, b: b, d: d, st: &Status{},
		classes:       map[string]bool{},
		listeners:     map[input.NamespacedName][]*listener{},
		gateways:      map[input.NamespacedName]*GatewayStatus{},
		portProtocols: map[uint32]gwv1.ProtocolType{},
		keyPairs:      map[input.NamespacedName]error{},
		hosts:         map[*ir.VirtualHost][]*ir.Route{},
		grpcHosts:     map[*ir.VirtualHost][]*ir.Route{},
		grpcKeys:      map[*ir.Route]grpcKey{},
		registered:    map[string]bool{},
		grpcClusters:  map[string]bool{},
		http1Clusters: map[string]bool{},
		h2cClusters:   map[string]bool{},
		ingressHTTP1:  map[string]bool{},
		tlsPolicies:   map[tlsTarget]*backendTLS{},
		tlsByTarget:   map[tlsTarget][]*backendTLS{},

		backendCerts:    map[input.NamespacedName]*ir.Secret{},
		clientCertOwner: map[string]input.NamespacedName{},
	}
	// Ingress hosts use these ports (higress-semantics §8.6: both share the
	// listeners), so Gateway listeners must agree on their protocol.
	if opts.HTTPPort != 0 {
		t.portProtocols[opts.HTTPPort] = gwv1.HTTPProtocolType
	}
	if opts.HTTPSPort != 0 {
		t.portProtocols[opts.HTTPSPort] = gwv1.HTTPSProtocolType
	}
	t.translateClasses()
	t.translateGateways()
	t.resolveBackendTLS()
	t.translateRoutes()
	t.translateL4Routes()
	t.isolationHosts()
	t.emit()
	t.misdirected()
	t.backendTLSStatus()
	sort.SliceStable(t.st.Gateways, func(i, j int) bool {
		a, b := t.st.Gateways[i], t.st.Gateways[j]
		return a.Namespace < b.Namespace || (a.Namespace == b.Namespace && a.Name < b.Name)
	})
	sort.SliceStable(t.st.HTTPRoutes, func(i, j int) bool {
		a, b := t.st.HTTPRoutes[i], t.st.HTTPRoutes[j]
		return a.Namespace < b.Namespace || (a.Namespace == b.Namespace && a.Name < b.Name)
	})
	sort.SliceStable(t.st.GRPCRoutes, func(i, j int) bool {
		a, b := t.st.GRPCRoutes[i], t.st.GRPCRoutes[j]
		return a.Namespace < b.Namespace || (a.Namespace == b.Namespace && a.Name < b.Name)
	})
	sortL4Statuses(t.st)
	return t.st
}

func condition(typ string, ok bool, reason, message string, generation int64) metav1.Condition {
	s := metav1.ConditionFalse
	if ok {
		s = metav1.ConditionTrue
	}
	return metav1.Condition{Type: typ, Status: s, Reason: reason, Message: message, ObservedGeneration: generation}
}

func (t *translator) translateClasses() {
	names := make([]string, 0, len(t.snap.GatewayClasses))
	for n := range t.snap.GatewayClasses {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		gc := t.snap.GatewayClasses[n]
		obj := diag.Object{Kind: string(input.KindGatewayClass), Name: gc.Name}
		if string(gc.Spec.ControllerName) != ControllerName {
			t.d.Ignore(obj, "ignored-class", "controllerName %q is not served by this controller (%s)", gc.Spec.ControllerName, ControllerName)
			continue
		}
		t.classes[gc.Name] = true
		t.d.Accept(obj)
		t.st.GatewayClasses = append(t.st.GatewayClasses, GatewayClassStatus{Name: gc.Name, Status: gwv1.GatewayClassStatus{
			Conditions: []metav1.Condition{condition(string(gwv1.GatewayClassConditionStatusAccepted), true,
				string(gwv1.GatewayClassReasonAccepted), "Handled by hxds", gc.Generation)},
			SupportedFeatures: SupportedFeatures(),
		}})
	}
}

func gatewayObject(gw *gwv1.Gateway) diag.Object {
	return diag.Object{Kind: string(input.KindGateway), Namespace: gw.Namespace, Name: gw.Name}
}

// sortedGateways returns the Gateways of our classes, oldest first.
func (t *translator) sortedGateways() []*gwv1.Gateway {
	var out []*gwv1.Gateway
	for _, k := range input.SortedKeys(t.snap.Gateways) {
		gw := t.snap.Gateways[k]
		if !t.classes[string(gw.Spec.GatewayClassName)] {
			t.d.Ignore(gatewayObject(gw), "ignored-class",
				"GatewayClass %q is not served by this controller (%s)", gw.Spec.GatewayClassName, ControllerName)
			continue
		}
		out = append(out, gw)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i].CreationTimestamp, out[j].CreationTimestamp
		return !a.Equal(&b) && a.Before(&b)
	})
	return out
}

func (t *translator) translateGateways() {
	for _, gw := range t.sortedGateways() {
		obj := gatewayObject(gw)
		t.d.Accept(obj)
		gs := &GatewayStatus{Namespace: gw.Namespace, Name: gw.Name}
		nn := input.NamespacedName{Namespace: gw.Namespace, Name: gw.Name}
		t.gateways[nn] = gs
		if len(gw.Spec.Addresses) > 0 {
			t.d.Warn(obj, "unsupported-field", "spec.addresses", "addresses are not supported yet; the gateway group's listeners are used")
		}
		valid := 0
		for i, l := range gw.Spec.Listeners {
			ls := gwv1.ListenerStatus{Name: l.Name}
			if sl := t.translateListener(gw, i, l, &ls); sl != nil {
				if !sl.unserved {
					valid++
				}
				t.listeners[nn] = append(t.listeners[nn], sl)
			}
			gs.Status.Listeners = append(gs.Status.Listeners, ls)
		}
		gen := gw.Generation
		switch {
		case valid == len(gw.Spec.Listeners):
			gs.Status.Conditions = append(gs.Status.Conditions,
				condition(string(gwv1.GatewayConditionAccepted), true, string(gwv1.GatewayReasonAccepted), "Gateway accepted", gen))
		case valid > 0:
			gs.Status.Conditions = append(gs.Status.Conditions,
				condition(string(gwv1.GatewayConditionAccepted), true, string(gwv1.GatewayReasonListenersNotValid), "some listeners are not valid", gen))
		default:
			gs.Status.Conditions = append(gs.Status.Conditions,
				condition(string(gwv1.GatewayConditionAccepted), false, string(gwv1.GatewayReasonListenersNotValid), "no listener is valid", gen))
			t.d.Reject(obj, "no-valid-listener", "spec.listeners", "no listener of the Gateway can be served")
		}
		if valid > 0 {
			gs.Status.Conditions = append(gs.Status.Conditions,
				condition(string(gwv1.GatewayConditionProgrammed), true, string(gwv1.GatewayReasonProgrammed), "Gateway translated", gen))
		} else {
			gs.Status.Conditions = append(gs.Status.Conditions,
				condition(string(gwv1.GatewayConditionProgrammed), false, string(gwv1.GatewayReasonInvalid), "no listener is valid", gen))
		}
		t.gatewayTLSConditions(gw, gs)
		t.st.Gateways = append(t.st.Gateways, *gs)
	}
	// t.st.Gateways holds copies; point the index at them so route
	// attachment updates what is returned.
	for i := range t.st.Gateways {
		g := &t.st.Gateways[i]
		nn := input.NamespacedName{Namespace: g.Namespace, Name: g.Name}
		t.gateways[nn] = g
		for _, sl := range t.listeners[nn] {
			sl.status = &g.Status.Listeners[sl.index]
		}
	}
}

// translateListener validates one listener and sets its conditions; it
// returns the served listener, or nil when the listener is not served.
func (t *translator) translateListener(gw *gwv1.Gateway, i int, l gwv1.Listener, ls *gwv1.ListenerStatus) *listener {
	obj := gatewayObject(gw)
	gen := gw.Generation
	field := fmt.Sprintf("spec.listeners[%d]", i)
	// Route kinds.
	// HTTP and HTTPS listeners allow HTTPRoute and GRPCRoute by default.
	allowHTTPRoute, allowGRPCRoute, badKinds := true, true, false
	if l.AllowedRoutes != nil && len(l.AllowedRoutes.Kinds) > 0 {
		allowHTTPRoute, allowGRPCRoute = false, false
		for _, k := range l.AllowedRoutes.Kinds {
			group := input.GatewayAPIGroup
			if k.Group != nil {
				group = string(*k.Group)
			}
			switch {
			case group == input.GatewayAPIGroup && k.Kind == gwv1.Kind(input.KindHTTPRoute):
				allowHTTPRoute = true
			case group == input.GatewayAPIGroup && k.Kind == gwv1.Kind(input.KindGRPCRoute):
				allowGRPCRoute = true
			default:
				badKinds = true
			}
		}
	}
	ls.SupportedKinds = []gwv1.RouteGroupKind{}
	g := gwv1.Group(input.GatewayAPIGroup)
	if allowHTTPRoute {
		ls.SupportedKinds = append(ls.SupportedKinds, gwv1.RouteGroupKind{Group: &g, Kind: gwv1.Kind(input.KindHTTPRoute)})
	}
	if allowGRPCRoute {
		ls.SupportedKinds = append(ls.SupportedKinds, gwv1.RouteGroupKind{Group: &g, Kind: gwv1.Kind(input.KindGRPCRoute)})
	}
	allowAny := allowHTTPRoute || allowGRPCRoute

	conds := func(accepted bool, acceptedReason string, resolved bool, resolvedReason string, conflicted bool, conflictReason string, msg string) {
		// Invalid route kinds besides HTTPRoute/GRPCRoute leave the listener served.
		routesServed := allowAny && resolvedReason == string(gwv1.ListenerReasonInvalidRouteKinds)
		setListenerConditions(ls, gen, accepted, acceptedReason, resolved, resolvedReason, conflicted, conflictReason, routesServed, msg)
	}
	accepted, resolved, noConflict := string(gwv1.ListenerReasonAccepted), string(gwv1.ListenerReasonResolvedRefs), string(gwv1.ListenerReasonNoConflicts)

	if l.Protocol == gwv1.TLSProtocolType || l.Protocol == gwv1.TCPProtocolType {
		return t.translateL4Listener(gw, i, l, ls)
	}
	if l.Protocol != gwv1.HTTPProtocolType && l.Protocol != gwv1.HTTPSProtocolType {
		msg := fmt.Sprintf("protocol %s is not supported (HTTP, HTTPS, TLS and TCP are)", l.Protocol)
		// No route kind can attach to a listener that is not served.
		ls.SupportedKinds = []gwv1.RouteGroupKind{}
		conds(false, string(gwv1.ListenerReasonUnsupportedProtocol), true, resolved, false, noConflict, msg)
		t.d.Error(obj, "unsupported-protocol", field+".protocol", "%s; listener not served", msg)
		return nil
	}
	if l.AllowedRoutes != nil && l.AllowedRoutes.Namespaces != nil && l.AllowedRoutes.Namespaces.From != nil &&
		*l.AllowedRoutes.Namespaces.From == gwv1.NamespacesFromSelector {
		if _, err := metav1.LabelSelectorAsSelector(l.AllowedRoutes.Namespaces.Selector); err != nil || l.AllowedRoutes.Namespaces.Selector == nil {
			msg := "allowedRoutes.namespaces.selector is missing or invalid"
			conds(false, string(gwv1.ListenerReasonUnsupportedValue), true, resolved, false, noConflict, msg)
			t.d.Error(obj, "invalid-listener", field+".allowedRoutes.namespaces.selector", "%s; listener not served", msg)
			return nil
		}
	}
	if l.Port < 1 || l.Port > 65535 {
		msg := fmt.Sprintf("port %d is not a valid port", l.Port)
		conds(false, string(gwv1.ListenerReasonUnsupportedValue), true, resolved, false, noConflict, msg)
		t.d.Error(obj, "invalid-listener", field+".port", "%s; listener not served", msg)
		return nil
	}
	if l.Hostname != nil && (strings.ContainsAny(string(*l.Hostname), "/ \x00\r\n") || strings.Contains(string(*l.Hostname)[min(1, len(*l.Hostname)):], "*")) {
		msg := fmt.Sprintf("hostname %q is not valid", *l.Hostname)
		conds(false, string(gwv1.ListenerReasonUnsupportedValue), true, resolved, false, noConflict, msg)
		t.d.Error(obj, "invalid-listener", field+".hostname", "%s; listener not served", msg)
		return nil
	}
	port := uint32(l.Port)
	if p, ok := t.portProtocols[port]; ok && !compatibleProtocols(p, l.Protocol) {
		msg := fmt.Sprintf("port %d is already served as %s", port, p)
		conds(true, accepted, true, resolved, true, string(gwv1.ListenerReasonProtocolConflict), msg)
		t.d.Error(obj, "listener-conflict", field+".port", "%s; listener not served", msg)
		return nil
	}
	if badKinds {
		msg := "only HTTPRoute and GRPCRoute (gateway.networking.k8s.io) can attach to this listener"
		conds(true, accepted, false, string(gwv1.ListenerReasonInvalidRouteKinds), false, noConflict, msg)
		t.d.Warn(obj, "invalid-route-kinds", field+".allowedRoutes.kinds", "%s", msg)
		if !allowAny {
			return nil
		}
	}
	host := "*"
	if l.Hostname != nil && *l.Hostname != "" {
		host = strings.ToLower(string(*l.Hostname))
	}
	sl := &listener{gw: gw, index: i, spec: l, host: host, allowHTTPRoute: allowHTTPRoute, allowGRPCRoute: allowGRPCRoute}
	if l.Protocol == gwv1.HTTPSProtocolType {
		sl.https = true
		sds, cert, key, reason, msg := t.certificate(gw, l)
		if reason != "" {
			conds(true, accepted, false, reason, false, noConflict, msg)
			t.d.Error(obj, "invalid-certificate-ref", field+".tls", "%s; listener not served", msg)
			sl.unserved = true
			return sl
		}
		fv := t.frontendTLS(gw, l.Port)
		if owner := t.l4.passthroughHosts[port][host]; owner != "" {
			msg := fmt.Sprintf("host %q on port %d is taken by TLS listener %s", host, port, owner)
			conds(true, accepted, true, resolved, true, string(gwv1.ListenerReasonHostnameConflict), msg)
			t.d.Error(obj, "listener-conflict", field+".hostname", "%s; listener not served", msg)
			return nil
		}
		server, existing := t.b.TLSHost(port, host, sds, obj)
		if existing && (server.Source != obj || server.Certificate != sds) {
			msg := fmt.Sprintf("host %q on port %d already has TLS from %s", host, port, server.Source)
			conds(true, accepted, true, resolved, true, string(gwv1.ListenerReasonHostnameConflict), msg)
			t.d.Error(obj, "listener-conflict", field+".hostname", "%s; listener not served", msg)
			return nil
		}
		t.b.AddSecret(&ir.Secret{Name: sds, Namespace: sdsNamespace(gw, l), SecretName: string(l.TLS.CertificateRefs[0].Name), Cert: cert, Key: key})
		if fv.ca == nil && fv.reason != "" {
			// Not accepted: its host stays claimed, by a chain that refuses
			// every client, so that they are not served by another
			// Gateway's listener on the port.
			server.RejectClients = true
			ls.Conditions = listenerNoValidCA(fv, gen)
			t.d.Error(obj, "invalid-ca-certificate-ref", "spec.tls.frontend", "%s; HTTPS listener %s refuses every client", fv.msg, l.Name)
			sl.unserved = true
			t.portProtocols[port] = l.Protocol
			return sl
		}
		if fv.ca != nil {
			t.b.AddSecret(fv.ca)
			server.ClientCA, server.ClientCertOptional = fv.ca.Name, fv.insecure
		}
		sl.server = server
		if fv.reason != "" {
			// Some CA references are invalid; the valid ones are used.
			defer func() {
				ls.Conditions[2] = condition(string(gwv1.ListenerConditionResolvedRefs), false, fv.reason, fv.msg, gen)
			}()
			t.d.Error(obj, "invalid-ca-certificate-ref", "spec.tls.frontend", "%s; the other references are used", fv.msg)
		}
	}
	t.portProtocols[port] = l.Protocol
	if !badKinds {
		conds(true, accepted, true, resolved, false, noConflict, "")
	}
	return sl
}

func sdsNamespace(gw *gwv1.Gateway, l gwv1.Listener) string {
	ref := l.TLS.CertificateRefs[0]
	if ref.Namespace != nil && *ref.Namespace != "" {
		return string(*ref.Namespace)
	}
	return gw.Namespace
}

// certificate resolves the first certificateRef of an HTTPS listener (only
// mode Terminate). It returns the SDS name and key pair, or a ResolvedRefs
// reason and message.
func (t *translator) certificate(gw *gwv1.Gateway, l gwv1.Listener) (sds string, cert, key []byte, reason, msg string) {
	invalid := string(gwv1.ListenerReasonInvalidCertificateRef)
	if l.TLS != nil && l.TLS.Mode != nil && *l.TLS.Mode != gwv1.TLSModeTerminate {
		return "", nil, nil, invalid, fmt.Sprintf("TLS mode %s is not supported yet (Terminate is)", *l.TLS.Mode)
	}
	if l.TLS == nil || len(l.TLS.CertificateRefs) == 0 {
		return "", nil, nil, invalid, fmt.Sprintf("%s listener has no tls.certificateRefs", l.Protocol)
	}
	ref := l.TLS.CertificateRefs[0]
	if (ref.Group != nil && *ref.Group != "") || (ref.Kind != nil && *ref.Kind != "Secret") {
		return "", nil, nil, invalid, "certificateRefs[0] must be a core Secret"
	}
	ns := sdsNamespace(gw, l)
	if ns != gw.Namespace && !t.granted(input.KindGateway, gw.Namespace, "", "Secret", ns, string(ref.Name)) {
		return "", nil, nil, string(gwv1.ListenerReasonRefNotPermitted),
			fmt.Sprintf("Secret %s/%s is in another namespace and no ReferenceGrant allows it", ns, ref.Name)
	}
	nn := input.NamespacedName{Namespace: ns, Name: string(ref.Name)}
	secret := t.snap.Secrets[nn]
	if secret == nil {
		return "", nil, nil, invalid, fmt.Sprintf("Secret %s not found", nn)
	}
	cert, key = secret.Data[corev1.TLSCertKey], secret.Data[corev1.TLSPrivateKeyKey]
	err, done := t.keyPairs[nn]
	if !done {
		_, err = tls.X509KeyPair(cert, key)
		t.keyPairs[nn] = err
	}
	if err != nil {
		return "", nil, nil, invalid, fmt.Sprintf("Secret %s has no usable tls.crt/tls.key: %v", nn, err)
	}
	return ingress.SecretName(t.opts.ClusterID, ns, string(ref.Name)), cert, key, "", ""
}

// granted reports whether a ReferenceGrant in toNamespace lets objects of
// fromKind in fromNamespace refer to the (group, kind, name) object.
func (t *translator) granted(fromKind input.Kind, fromNamespace, toGroup, toKind, toNamespace, toName string) bool {
	for _, k := range input.SortedKeys(t.snap.ReferenceGrants) {
		if k.Namespace != toNamespace {
			continue
		}
		rg := t.snap.ReferenceGrants[k]
		from := false
		for _, f := range rg.Spec.From {
			if string(f.Group) == input.GatewayAPIGroup && string(f.Kind) == string(fromKind) && string(f.Namespace) == fromNamespace {
				from = true
				break
			}
		}
		if !from {
			continue
		}
		for _, to := range rg.Spec.To {
			if string(to.Group) == toGroup && string(to.Kind) == toKind && (to.Name == nil || *to.Name == "" || string(*to.Name) == toName) {
				return true
			}
		}
	}
	return false
}
