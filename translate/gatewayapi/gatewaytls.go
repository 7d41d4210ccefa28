package gatewayapi

// Gateway spec.tls: frontend client certificate validation of HTTPS
// listeners (default and per port) and the client certificate the Gateway
// presents to backends that BackendTLSPolicies make it reach over TLS.

import (
	"crypto/tls"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/hxds/hxds/translate/ingress"
	"github.com/hxds/hxds/translate/input"
	"github.com/hxds/hxds/translate/ir"
)

// frontendValidation is the resolved client certificate validation of an
// HTTPS listener.
type frontendValidation struct {
	ca       *ir.Secret // nil: no client certificate validation
	insecure bool       // AllowInsecureFallback
	// reason/msg: a CA reference is invalid (ResolvedRefs=False); with ca
	// nil no reference was valid (the listener is not accepted).
	reason, msg string
}

// frontendTLS returns the validation that applies to an HTTPS listener on
// port: the perPort entry for the port, else the default.
func (t *translator) frontendTLS(gw *gwv1.Gateway, port gwv1.PortNumber) frontendValidation {
	if gw.Spec.TLS == nil || gw.Spec.TLS.Frontend == nil {
		return frontendValidation{}
	}
	cfg, scope := gw.Spec.TLS.Frontend.Default, "default"
	for _, pp := range gw.Spec.TLS.Frontend.PerPort {
		if pp.Port == port {
			cfg, scope = pp.TLS, fmt.Sprintf("port-%d", port)
			break
		}
	}
	v := cfg.Validation
	if v == nil || len(v.CACertificateRefs) == 0 {
		return frontendValidation{}
	}
	out := frontendValidation{insecure: v.Mode == gwv1.AllowInsecureFallback}
	fail := func(reason, msg string) {
		if out.reason == "" {
			out.reason, out.msg = reason, msg
		}
	}
	var bundle []byte
	for i, ref := range v.CACertificateRefs {
		ns := gw.Namespace
		if ref.Namespace != nil && *ref.Namespace != "" {
			ns = string(*ref.Namespace)
		}
		nn := input.NamespacedName{Namespace: ns, Name: string(ref.Name)}
		if ref.Group != "" || (ref.Kind != "ConfigMap" && ref.Kind != "Secret") {
			fail(string(gwv1.ListenerReasonInvalidCACertificateKind),
				fmt.Sprintf("tls.frontend caCertificateRefs[%d]: kind %s (group %q) is not supported; ConfigMap and Secret are", i, ref.Kind, ref.Group))
			continue
		}
		if ns != gw.Namespace && !t.granted(input.KindGateway, gw.Namespace, "", string(ref.Kind), ns, string(ref.Name)) {
			fail(string(gwv1.ListenerReasonRefNotPermitted),
				fmt.Sprintf("tls.frontend caCertificateRefs[%d]: %s %s is in another namespace and no ReferenceGrant allows it", i, ref.Kind, nn))
			continue
		}
		var data []byte
		found := false
		if ref.Kind == "ConfigMap" {
			if cm := t.snap.ConfigMaps[nn]; cm != nil {
				found, data = true, []byte(cm.Data["ca.crt"])
			}
		} else if s := t.snap.Secrets[nn]; s != nil {
			found, data = true, s.Data["ca.crt"]
		}
		switch {
		case !found:
			fail(string(gwv1.ListenerReasonInvalidCACertificateRef), fmt.Sprintf("tls.frontend caCertificateRefs[%d]: %s %s not found", i, ref.Kind, nn))
		case !validCABundle(data):
			fail(string(gwv1.ListenerReasonInvalidCACertificateRef),
				fmt.Sprintf("tls.frontend caCertificateRefs[%d]: %s %s has no PEM certificate under ca.crt", i, ref.Kind, nn))
		default:
			if len(bundle) > 0 && bundle[len(bundle)-1] != '\n' {
				bundle = append(bundle, '\n')
			}
			bundle = append(bundle, data...)
		}
	}
	if len(bundle) > 0 {
		name := fmt.Sprintf("kubernetes-gateway://%s/%s/%s-client-cacert-%s", t.opts.ClusterID, gw.Namespace, gw.Name, scope)
		out.ca = &ir.Secret{Name: name, Namespace: gw.Namespace, SecretName: string(v.CACertificateRefs[0].Name), CA: bundle}
	}
	return out
}

// insecureFrontend reports whether any HTTPS listener of gw validates client
// certificates in mode AllowInsecureFallback.
func (t *translator) insecureFrontend(gw *gwv1.Gateway) bool {
	for _, l := range gw.Spec.Listeners {
		if l.Protocol != gwv1.HTTPSProtocolType {
			continue
		}
		if fv := t.frontendTLS(gw, l.Port); fv.ca != nil && fv.insecure {
			return true
		}
	}
	return false
}

// backendClientCert resolves spec.tls.backend.clientCertificateRef: the
// SDS secret of the client certificate, or the Gateway ResolvedRefs reason.
func (t *translator) backendClientCert(gw *gwv1.Gateway) (secret *ir.Secret, reason, msg string) {
	if gw.Spec.TLS == nil || gw.Spec.TLS.Backend == nil || gw.Spec.TLS.Backend.ClientCertificateRef == nil {
		return nil, "", ""
	}
	ref := gw.Spec.TLS.Backend.ClientCertificateRef
	invalid := string(gwv1.GatewayReasonInvalidClientCertificateRef)
	if (ref.Group != nil && *ref.Group != "") || (ref.Kind != nil && *ref.Kind != "Secret") {
		return nil, invalid, "tls.backend.clientCertificateRef must be a core Secret"
	}
	ns := gw.Namespace
	if ref.Namespace != nil && *ref.Namespace != "" {
		ns = string(*ref.Namespace)
	}
	if ns != gw.Namespace && !t.granted(input.KindGateway, gw.Namespace, "", "Secret", ns, string(ref.Name)) {
		return nil, string(gwv1.GatewayReasonRefNotPermitted),
			fmt.Sprintf("tls.backend.clientCertificateRef: Secret %s/%s is in another namespace and no ReferenceGrant allows it", ns, ref.Name)
	}
	nn := input.NamespacedName{Namespace: ns, Name: string(ref.Name)}
	s := t.snap.Secrets[nn]
	if s == nil {
		return nil, invalid, fmt.Sprintf("tls.backend.clientCertificateRef: Secret %s not found", nn)
	}
	cert, key := s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey]
	err, done := t.keyPairs[nn]
	if !done {
		_, err = tls.X509KeyPair(cert, key)
		t.keyPairs[nn] = err
	}
	if err != nil {
		return nil, invalid, fmt.Sprintf("tls.backend.clientCertificateRef: Secret %s has no usable tls.crt/tls.key: %v", nn, err)
	}
	return &ir.Secret{Name: ingress.SecretName(t.opts.ClusterID, ns, string(ref.Name)), Namespace: ns, SecretName: string(ref.Name), Cert: cert, Key: key}, "", ""
}

// gatewayTLSConditions resolves a Gateway's backend client certificate and
// adds the Gateway conditions spec.tls calls for: ResolvedRefs when a
// backend client certificate is set, InsecureFrontendValidationMode when a
// listener accepts clients whose certificates do not verify.
func (t *translator) gatewayTLSConditions(gw *gwv1.Gateway, gs *GatewayStatus) {
	obj, gen := gatewayObject(gw), gw.Generation
	secret, reason, msg := t.backendClientCert(gw)
	switch {
	case reason != "":
		gs.Status.Conditions = append(gs.Status.Conditions, condition(string(gwv1.GatewayConditionResolvedRefs), false, reason, msg, gen))
		t.d.Error(obj, "invalid-client-certificate-ref", "spec.tls.backend.clientCertificateRef", "%s; backends are reached without a client certificate", msg)
	case secret != nil:
		gs.Status.Conditions = append(gs.Status.Conditions, condition(string(gwv1.GatewayConditionResolvedRefs), true, string(gwv1.GatewayReasonResolvedRefs), "", gen))
		t.backendCerts[input.NamespacedName{Namespace: gw.Namespace, Name: gw.Name}] = secret
	}
	if t.insecureFrontend(gw) {
		gs.Status.Conditions = append(gs.Status.Conditions, condition(string(gwv1.GatewayConditionInsecureFrontendValidationMode), true,
			string(gwv1.GatewayReasonConfigurationChanged), "an HTTPS listener accepts clients without a valid certificate (AllowInsecureFallback)", gen))
		t.d.Warn(obj, "insecure-frontend-validation", "spec.tls.frontend", "mode AllowInsecureFallback accepts clients without a valid certificate")
	}
}

// applyBackendClientCerts gives the TLS clusters (BackendTLSPolicy) an
// accepted route uses the client certificate of its Gateways. Clusters are
// per Service port, shared by every Gateway of the group: a cluster used
// through Gateways with different client certificates keeps the first one.
func (t *translator) applyBackendClientCerts(src *routeSource, gateways []input.NamespacedName, uses []clusterUse) {
	for _, u := range uses {
		be := t.b.Backend(u.name)
		if be == nil || be.TLS == nil || be.PolicySource == nil || be.PolicySource.Kind != string(input.KindBackendTLSPolicy) {
			continue
		}
		for _, g := range gateways {
			want := ""
			if s := t.backendCerts[g]; s != nil {
				want = s.Name
			}
			owner, seen := t.clientCertOwner[u.name]
			switch {
			case !seen:
				t.clientCertOwner[u.name] = g
				if want != "" {
					t.b.AddSecret(t.backendCerts[g])
					be.TLS.ClientCertificate = want
				}
			case be.TLS.ClientCertificate != want:
				t.d.Warn(src.object(), "backend-client-certificate-conflict", u.field,
					"cluster %s is also used through Gateway %s, whose backend client certificate (%q) it keeps; Gateway %s wants %q",
					u.name, owner, be.TLS.ClientCertificate, g, want)
			}
		}
	}
}

// listenerCAConds are the listener conditions of an HTTPS listener whose
// client certificate validation has no valid CA.
func listenerNoValidCA(fv frontendValidation, gen int64) []metav1.Condition {
	return []metav1.Condition{
		condition(string(gwv1.ListenerConditionAccepted), false, string(gwv1.ListenerReasonNoValidCACertificate), fv.msg, gen),
		condition(string(gwv1.ListenerConditionConflicted), false, string(gwv1.ListenerReasonNoConflicts), "", gen),
		condition(string(gwv1.ListenerConditionResolvedRefs), false, fv.reason, fv.msg, gen),
		condition(string(gwv1.ListenerConditionProgrammed), false, string(gwv1.ListenerReasonInvalid), fv.msg, gen),
	}
}
