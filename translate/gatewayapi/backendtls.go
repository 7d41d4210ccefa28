package gatewayapi

// BackendTLSPolicy (v1): TLS from the gateway to the Services it targets.
// Policies are resolved before routes, so that backend resolution can give a
// Service port's cluster its TLS settings, or refuse to use it when its
// policy is invalid (the spec: such connections must fail with a 5xx). Their
// status ancestors are the Gateways whose accepted routes use the Service.

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/hxds/hxds/translate/diag"
	"github.com/hxds/hxds/translate/input"
	"github.com/hxds/hxds/translate/ir"
)

// BackendTLSPolicyStatus is the status of one BackendTLSPolicy: one ancestor
// per Gateway of ours whose accepted routes use a targeted Service.
type BackendTLSPolicyStatus struct {
	Namespace string            `json:"namespace"`
	Name      string            `json:"name"`
	Status    gwv1.PolicyStatus `json:"status"`
}

// tlsTarget is a Service, or one named port of it, a policy applies to.
type tlsTarget struct {
	svc     input.NamespacedName
	section string // Service port name; empty: every port
}

// backendTLS is one resolved BackendTLSPolicy.
type backendTLS struct {
	policy *gwv1.BackendTLSPolicy
	// tls is what the policy's clusters get; nil when the policy is not
	// usable (invalid, no valid CA): its clusters are not used at all.
	tls *ir.UpstreamTLS
	// ca is the SDS validation context of tls.CA, served once a cluster
	// uses the policy.
	ca                 *ir.Secret
	accepted, resolved metav1.Condition
	ancestors          map[input.NamespacedName]bool
}

func (p *backendTLS) object() diag.Object {
	return diag.Object{Kind: string(input.KindBackendTLSPolicy), Namespace: p.policy.Namespace, Name: p.policy.Name}
}

// reasonBackendTLSInvalid marks a backend whose BackendTLSPolicy cannot be
// used; it is not a route ResolvedRefs reason (the route's refs resolve).
const reasonBackendTLSInvalid = "BackendTLSPolicyInvalid"

// resolveBackendTLS validates every BackendTLSPolicy, oldest first (then
// namespace/name): on a target (Service and sectionName) several policies
// select, the first wins and the others are Conflicted.
func (t *translator) resolveBackendTLS() {
	keys := input.SortedKeys(t.snap.BackendTLSPolicies)
	sort.SliceStable(keys, func(i, j int) bool {
		a, b := t.snap.BackendTLSPolicies[keys[i]].CreationTimestamp, t.snap.BackendTLSPolicies[keys[j]].CreationTimestamp
		return !a.Equal(&b) && a.Before(&b)
	})
	for _, k := range keys {
		pol := t.snap.BackendTLSPolicies[k]
		p := &backendTLS{policy: pol, ancestors: map[input.NamespacedName]bool{}}
		t.tlsPolicyList = append(t.tlsPolicyList, p)
		obj := p.object()
		gen := pol.Generation
		accepted := func(ok bool, reason, msg string) {
			p.accepted = condition(string(gwv1.PolicyConditionAccepted), ok, reason, msg, gen)
		}
		p.resolved = condition(string(gwv1.BackendTLSPolicyConditionResolvedRefs), true, string(gwv1.BackendTLSPolicyReasonResolvedRefs), "", gen)
		accepted(true, string(gwv1.PolicyReasonAccepted), "")

		tls, reason, msg := t.policyTLS(p)
		switch {
		case reason == string(gwv1.BackendTLSPolicyReasonNoValidCACertificate):
			accepted(false, reason, msg)
			t.d.Reject(obj, "invalid-ca-certificate-ref", "spec.validation.caCertificateRefs", "%s; requests to its targets fail (500)", msg)
		case reason != "":
			accepted(false, reason, msg)
			t.d.Reject(obj, "invalid-policy", "spec.validation", "%s; requests to its targets fail (500)", msg)
		default:
			p.tls = tls
		}

		// Claim targets; a target already claimed by an older policy is not
		// applied, and the policy is Conflicted.
		var lost []string
		claimed := 0
		for i, ref := range pol.Spec.TargetRefs {
			field := fmt.Sprintf("spec.targetRefs[%d]", i)
			if ref.Group != "" || ref.Kind != "Service" {
				t.d.Warn(obj, "unsupported-target", field, "target kind %s (group %q) is not supported; only core Service", ref.Kind, ref.Group)
				continue
			}
			tgt := tlsTarget{svc: input.NamespacedName{Namespace: pol.Namespace, Name: string(ref.Name)}}
			if ref.SectionName != nil {
				tgt.section = string(*ref.SectionName)
			}
			if !t.serviceHasPort(tgt) {
				t.d.Warn(obj, "target-not-found", field, "%s does not exist (yet); the policy applies once it does", targetString(tgt))
			}
			claimed++
			t.tlsByTarget[tgt] = append(t.tlsByTarget[tgt], p)
			if owner := t.tlsPolicies[tgt]; owner != nil {
				lost = append(lost, fmt.Sprintf("%s is already targeted by %s/%s", targetString(tgt), owner.policy.Namespace, owner.policy.Name))
				continue
			}
			t.tlsPolicies[tgt] = p
		}
		switch {
		case len(lost) > 0:
			msg := strings.Join(lost, "; ") + " (the older policy wins)"
			accepted(false, string(gwv1.PolicyReasonConflicted), msg)
			if len(lost) == claimed && reason == "" {
				t.d.Reject(obj, "conflicted", "spec.targetRefs", "%s; not applied", msg)
			} else {
				t.d.Error(obj, "conflicted", "spec.targetRefs", "%s; not applied there", msg)
			}
		case reason == "":
			t.d.Accept(obj)
		}
	}
}

// serviceHasPort reports whether a target's Service (and named port) exists.
func (t *translator) serviceHasPort(tgt tlsTarget) bool {
	svc := t.snap.Services[tgt.svc]
	if svc == nil {
		return false
	}
	if tgt.section == "" {
		return true
	}
	for _, p := range svc.Spec.Ports {
		if p.Name == tgt.section {
			return true
		}
	}
	return false
}

func targetString(tgt tlsTarget) string {
	if tgt.section == "" {
		return "Service " + tgt.svc.String()
	}
	return fmt.Sprintf("Service %s port %s", tgt.svc, tgt.section)
}

// policyTLS builds the upstream TLS of a policy, or the Accepted=False
// reason why it cannot be used (setting p.resolved when a CA reference does
// not resolve).
func (t *translator) policyTLS(p *backendTLS) (*ir.UpstreamTLS, string, string) {
	v := p.policy.Spec.Validation
	invalid := string(gwv1.PolicyReasonInvalid)
	host := string(v.Hostname)
	if host == "" || strings.ContainsAny(host, "/ *\x00\r\n") {
		return nil, invalid, fmt.Sprintf("validation.hostname %q is not a hostname", host)
	}
	tls := &ir.UpstreamTLS{SNI: host}
	for i, san := range v.SubjectAltNames {
		switch {
		case san.Type == gwv1.HostnameSubjectAltNameType && san.Hostname != "":
			tls.SubjectAltNames = append(tls.SubjectAltNames, ir.SubjectAltName{Kind: "DNS", Value: string(san.Hostname)})
		case san.Type == gwv1.URISubjectAltNameType && san.URI != "":
			tls.SubjectAltNames = append(tls.SubjectAltNames, ir.SubjectAltName{Kind: "URI", Value: string(san.URI)})
		default:
			return nil, invalid, fmt.Sprintf("validation.subjectAltNames[%d]: type %q needs its hostname or uri", i, san.Type)
		}
	}
	// Without subjectAltNames the hostname authenticates the server.
	if len(tls.SubjectAltNames) == 0 {
		tls.SubjectAltNames = []ir.SubjectAltName{{Kind: "DNS", Value: host}}
	}
	wk := v.WellKnownCACertificates
	switch {
	case wk != nil && *wk != "" && len(v.CACertificateRefs) > 0:
		return nil, invalid, "only one of validation.caCertificateRefs and validation.wellKnownCACertificates may be set"
	case wk != nil && *wk != "":
		if *wk != gwv1.WellKnownCACertificatesSystem {
			return nil, invalid, fmt.Sprintf("validation.wellKnownCACertificates %q is not supported (System is)", *wk)
		}
		tls.SystemCA = true
		return tls, "", ""
	case len(v.CACertificateRefs) == 0:
		return nil, invalid, "validation needs caCertificateRefs or wellKnownCACertificates"
	}
	bundle, reason, msg := t.policyCA(p)
	if bundle == nil {
		return nil, string(gwv1.BackendTLSPolicyReasonNoValidCACertificate), msg
	}
	if reason != "" {
		t.d.Error(p.object(), "invalid-ca-certificate-ref", "spec.validation.caCertificateRefs", "%s; the other references are used", msg)
	}
	tls.CA = fmt.Sprintf("kubernetes-backendtlspolicy://%s/%s/%s-cacert", t.opts.ClusterID, p.policy.Namespace, p.policy.Name)
	p.ca = &ir.Secret{Name: tls.CA, Namespace: p.policy.Namespace, SecretName: string(v.CACertificateRefs[0].Name), CA: bundle}
	return tls, "", ""
}

// policyCA concatenates the CA bundles of the policy's caCertificateRefs:
// ConfigMaps (Core) and Secrets (implementation-specific), key ca.crt, in
// the policy's namespace. Invalid refs set ResolvedRefs=False (the first
// one's reason) and are left out.
func (t *translator) policyCA(p *backendTLS) (bundle []byte, reason, msg string) {
	gen := p.policy.Generation
	fail := func(r, m string) {
		if reason == "" {
			reason, msg = r, m
			p.resolved = condition(string(gwv1.BackendTLSPolicyConditionResolvedRefs), false, r, m, gen)
		}
	}
	for i, ref := range p.policy.Spec.Validation.CACertificateRefs {
		nn := input.NamespacedName{Namespace: p.policy.Namespace, Name: string(ref.Name)}
		var data []byte
		found := false
		switch {
		case ref.Group == "" && ref.Kind == "ConfigMap":
			if cm := t.snap.ConfigMaps[nn]; cm != nil {
				found, data = true, []byte(cm.Data["ca.crt"])
			}
		case ref.Group == "" && ref.Kind == "Secret":
			if s := t.snap.Secrets[nn]; s != nil {
				found, data = true, s.Data["ca.crt"]
			}
		default:
			fail(string(gwv1.BackendTLSPolicyReasonInvalidKind),
				fmt.Sprintf("caCertificateRefs[%d]: kind %s (group %q) is not supported; ConfigMap and Secret are", i, ref.Kind, ref.Group))
			continue
		}
		switch {
		case !found:
			fail(string(gwv1.BackendTLSPolicyReasonInvalidCACertificateRef), fmt.Sprintf("caCertificateRefs[%d]: %s %s not found", i, ref.Kind, nn))
		case !validCABundle(data):
			fail(string(gwv1.BackendTLSPolicyReasonInvalidCACertificateRef),
				fmt.Sprintf("caCertificateRefs[%d]: %s %s has no PEM certificate under ca.crt", i, ref.Kind, nn))
		default:
			if len(bundle) > 0 && !bytes.HasSuffix(bundle, []byte("\n")) {
				bundle = append(bundle, '\n')
			}
			bundle = append(bundle, data...)
		}
	}
	return bundle, reason, msg
}

// validCABundle reports PEM data whose blocks are all parseable
// certificates, at least one. Text around blocks is allowed (comments in
// CA bundles are common); Envoy skips it too.
func validCABundle(data []byte) bool {
	n := 0
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return false
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return false
		}
		n++
	}
	return n > 0
}

// policyFor returns the policy of a Service port: the one naming the port
// (sectionName) before the one for the whole Service.
func (t *translator) policyFor(svc input.NamespacedName, portName string) *backendTLS {
	if portName != "" {
		if p := t.tlsPolicies[tlsTarget{svc: svc, section: portName}]; p != nil {
			return p
		}
	}
	return t.tlsPolicies[tlsTarget{svc: svc}]
}

// backendTLSUsable records a route's use of a Service port for the status of
// its policies and returns false (with the reason) when its policy makes the
// backend unusable.
func (t *translator) backendTLSUsable(svc input.NamespacedName, portName string, rr *ruleResult) (bool, string) {
	// Every policy on the Service port gets the route's Gateways as
	// ancestors, the one applied and a whole-Service one it overrides.
	// Conflicted ones too: their status must say so to the same Gateways.
	if portName != "" {
		rr.tlsPolicies = append(rr.tlsPolicies, t.tlsByTarget[tlsTarget{svc: svc, section: portName}]...)
	}
	rr.tlsPolicies = append(rr.tlsPolicies, t.tlsByTarget[tlsTarget{svc: svc}]...)
	if p := t.policyFor(svc, portName); p != nil && p.tls == nil {
		return false, fmt.Sprintf("BackendTLSPolicy %s/%s of Service %s is not valid (%s)", p.policy.Namespace, p.policy.Name, svc, p.accepted.Message)
	}
	return true, ""
}

// applyBackendTLS gives a Service port's cluster the TLS of its policy.
func (t *translator) applyBackendTLS(src *routeSource, field string, svc input.NamespacedName, portName string, be *ir.Backend) {
	p := t.policyFor(svc, portName)
	if p == nil || p.tls == nil {
		return
	}
	if be.TLS != nil && be.PolicySource != nil && be.PolicySource.Kind != string(input.KindBackendTLSPolicy) {
		t.d.Warn(src.object(), "backend-policy-overridden", field,
			"cluster %s also gets upstream TLS from %s; BackendTLSPolicy %s/%s replaces it", be.Name, be.PolicySource, p.policy.Namespace, p.policy.Name)
	}
	if p.ca != nil {
		t.b.AddSecret(p.ca)
	}
	tls := *p.tls
	if be.TLS != nil {
		tls.ALPN = be.TLS.ALPN
	}
	be.TLS = &tls
	if be.PolicySource == nil {
		o := p.object()
		be.PolicySource = &o
	}
}

// policyAncestors records the Gateways of an accepted route as ancestors of
// the BackendTLSPolicies of the Services it uses.
func (t *translator) policyAncestors(gateways []input.NamespacedName, rr *ruleResult) {
	for _, p := range rr.tlsPolicies {
		for _, g := range gateways {
			p.ancestors[g] = true
		}
	}
}

// backendTLSStatus computes the status of every BackendTLSPolicy.
func (t *translator) backendTLSStatus() {
	group, kind := gwv1.Group(input.GatewayAPIGroup), gwv1.Kind(input.KindGateway)
	for _, p := range t.tlsPolicyList {
		st := BackendTLSPolicyStatus{Namespace: p.policy.Namespace, Name: p.policy.Name, Status: gwv1.PolicyStatus{Ancestors: []gwv1.PolicyAncestorStatus{}}}
		gws := make([]input.NamespacedName, 0, len(p.ancestors))
		for g := range p.ancestors {
			gws = append(gws, g)
		}
		sort.Slice(gws, func(i, j int) bool { return gws[i].String() < gws[j].String() })
		for _, g := range gws {
			ns := gwv1.Namespace(g.Namespace)
			st.Status.Ancestors = append(st.Status.Ancestors, gwv1.PolicyAncestorStatus{
				AncestorRef:    gwv1.ParentReference{Group: &group, Kind: &kind, Namespace: &ns, Name: gwv1.ObjectName(g.Name)},
				ControllerName: ControllerName,
				Conditions:     []metav1.Condition{p.accepted, p.resolved},
			})
		}
		if len(gws) == 0 {
			t.d.Warn(p.object(), "no-ancestor", "spec.targetRefs", "no accepted route of a Gateway served here uses its targets")
		}
		t.st.BackendTLSPolicies = append(t.st.BackendTLSPolicies, st)
	}
	sort.SliceStable(t.st.BackendTLSPolicies, func(i, j int) bool {
		a, b := t.st.BackendTLSPolicies[i], t.st.BackendTLSPolicies[j]
		return a.Namespace < b.Namespace || (a.Namespace == b.Namespace && a.Name < b.Name)
	})
}
