package ingress

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/hxds/hxds/translate/input"
	"github.com/hxds/hxds/translate/ir"
)

// backendPolicy is the traffic policy an Ingress gives the Service ports it
// routes to (backend-protocol, proxy-ssl-*, load-balance, hashing).
type backendPolicy struct {
	http2, tls bool
	alpn       []string
	sslSecret  string // [ns/]name of the client certificate
	verify     bool
	sni        string
	lb         string
	hash       []ir.HashPolicy
}

func (b backendPolicy) empty() bool {
	return !b.http2 && !b.tls && b.lb == "" && len(b.hash) == 0
}

var loadBalancers = map[string]string{
	"ROUND_ROBIN": "ROUND_ROBIN", "LEAST_CONN": "LEAST_REQUEST", "LEAST_REQUEST": "LEAST_REQUEST",
	"RANDOM": "RANDOM", "RING_HASH": "RING_HASH", "MAGLEV": "MAGLEV",
}

// backendPolicy reads the upstream annotations (§3.2, §3.7).
func (p parser) backendPolicy() backendPolicy {
	var b backendPolicy
	if v, ok := p.str("backend-protocol", false); ok {
		switch strings.ToUpper(v) {
		case "HTTP":
		case "HTTP2", "GRPC":
			b.http2 = true
		case "HTTPS":
			b.tls = true
		case "GRPCS":
			b.http2, b.tls, b.alpn = true, true, []string{"h2"}
		default:
			p.bad("backend-protocol", v, "must be HTTP, HTTP2, HTTPS, GRPC or GRPCS")
		}
	}
	if v, ok := p.str("proxy-ssl-secret", false); ok {
		// Higress drops the client certificate unless backend-protocol is
		// HTTPS/GRPCS (§13.5); a client certificate only means TLS, so it
		// implies TLS here.
		b.sslSecret, b.tls = v, true
	}
	if v, ok := p.str("proxy-ssl-verify", false); ok {
		switch v {
		case "on":
			b.verify = true
		case "off":
		default:
			p.bad("proxy-ssl-verify", v, "must be on or off")
		}
	}
	if v, ok := p.str("proxy-ssl-server-name", false); ok && v == "on" {
		if name, ok := p.str("proxy-ssl-name", false); ok {
			b.sni = name
		}
	}
	if v, ok := p.str("load-balance", false); ok {
		if strings.EqualFold(v, "mcp-sse") {
			p.d.Warn(p.obj, "unsupported-annotation", "metadata.annotations",
				"load-balance=mcp-sse needs Higress's forked Envoy (mcp_sse_stateful_session filter); the default policy is used")
		} else if lb, known := loadBalancers[strings.ToUpper(v)]; known {
			b.lb = lb
		} else {
			p.bad("load-balance", v, "unknown policy; the default (least request) is used")
		}
	}
	if v, ok := p.str("upstream-hash-by", false); ok {
		switch {
		case v == "$request_uri":
			b.hash = []ir.HashPolicy{{Header: ":path"}}
		case v == "$host":
			b.hash = []ir.HashPolicy{{Header: ":authority"}}
		case v == "$remote_addr":
			b.hash = []ir.HashPolicy{{SourceIP: true}}
		case strings.HasPrefix(v, "$http_") && len(v) > len("$http_"):
			b.hash = []ir.HashPolicy{{Header: strings.TrimPrefix(v, "$http_")}}
		case strings.HasPrefix(v, "$arg_") && len(v) > len("$arg_"):
			b.hash = []ir.HashPolicy{{Query: strings.TrimPrefix(v, "$arg_")}}
		default:
			p.bad("upstream-hash-by", v, "only $request_uri, $host, $remote_addr, $http_<header> and $arg_<param> are supported")
		}
	}
	_, affinity := p.str("affinity", false)
	name, hasName := p.str("session-cookie-name", false)
	path, hasPath := p.str("session-cookie-path", false)
	if b.hash == nil && (affinity || hasName || hasPath) {
		c := &ir.HashCookie{Name: "INGRESSCOOKIE", Path: "/"}
		if hasName {
			c.Name = name
		}
		if hasPath {
			c.Path = path
		}
		ttl := 0
		if n, ok := p.integer("session-cookie-max-age", false); ok {
			ttl = n
		} else if n, ok := p.integer("session-cookie-expires", false); ok {
			ttl = n
		}
		// A zero TTL still makes Envoy set the cookie, as a session cookie.
		c.TTL = &ir.Duration{Duration: seconds(ttl)}
		b.hash = []ir.HashPolicy{{Cookie: c}}
	}
	if b.hash != nil {
		b.lb = "RING_HASH"
	}
	return b
}

// applyBackendPolicy gives a backend the traffic policy of the first
// Ingress that routes to it; a later Ingress with a different policy is told
// its policy is not used.
func (t *translator) applyBackendPolicy(ing *networkingv1.Ingress, be *ir.Backend, b backendPolicy) {
	if b.empty() {
		return
	}
	obj := objectOf(ing)
	if be.PolicySource != nil {
		if *be.PolicySource != obj {
			t.d.Warn(obj, "backend-policy-ignored", "metadata.annotations",
				"backend %s already has the traffic policy of %s/%s (the first Ingress wins)", be.Name, be.PolicySource.Namespace, be.PolicySource.Name)
		}
		return
	}
	be.PolicySource = &obj
	be.HTTP2, be.LB, be.Hash = b.http2, b.lb, b.hash
	if !b.tls {
		return
	}
	be.TLS = &ir.UpstreamTLS{SNI: b.sni, ALPN: b.alpn}
	if b.sslSecret == "" {
		if b.verify {
			t.d.Warn(obj, "invalid-annotation", "metadata.annotations", "proxy-ssl-verify=on needs proxy-ssl-secret with a CA; not verified")
		}
		return
	}
	ref := secretRef(b.sslSecret, ing.Namespace)
	secret := t.snap.Secrets[ref]
	if secret == nil {
		t.d.Warn(obj, "missing-secret", "metadata.annotations", "proxy-ssl-secret %s not found; TLS without a client certificate", ref)
		return
	}
	sds := SecretName(t.opts.ClusterID, ref.Namespace, ref.Name)
	if len(secret.Data[corev1.TLSCertKey]) > 0 && len(secret.Data[corev1.TLSPrivateKeyKey]) > 0 {
		be.TLS.ClientCertificate = sds
		t.b.AddSecret(&ir.Secret{Name: sds, Namespace: ref.Namespace, SecretName: ref.Name,
			Cert: secret.Data[corev1.TLSCertKey], Key: secret.Data[corev1.TLSPrivateKeyKey]})
	}
	if b.verify {
		if ca := t.caOf(ref); ca != nil {
			be.TLS.CA = sds + "-cacert"
			t.b.AddSecret(&ir.Secret{Name: be.TLS.CA, Namespace: ref.Namespace, SecretName: ref.Name, CA: ca})
		} else {
			t.d.Warn(obj, "missing-secret", "metadata.annotations",
				"proxy-ssl-verify=on but neither %s nor %s-cacert has a ca.crt; the upstream certificate is not verified", ref, ref.Name)
		}
	}
}

// caOf finds the CA bundle for a certificate Secret: its own ca.crt, else
// the ca.crt of <name>-cacert (Istio's convention).
func (t *translator) caOf(ref input.NamespacedName) []byte {
	if s := t.snap.Secrets[ref]; s != nil && len(s.Data["ca.crt"]) > 0 {
		return s.Data["ca.crt"]
	}
	if s := t.snap.Secrets[input.NamespacedName{Namespace: ref.Namespace, Name: ref.Name + "-cacert"}]; s != nil && len(s.Data["ca.crt"]) > 0 {
		return s.Data["ca.crt"]
	}
	return nil
}

func secretRef(v, namespace string) input.NamespacedName {
	if ns, name, ok := strings.Cut(v, "/"); ok {
		return input.NamespacedName{Namespace: ns, Name: name}
	}
	return input.NamespacedName{Namespace: namespace, Name: v}
}

// downstreamTLS is what an Ingress asks of the TLS servers of its hosts.
type downstreamTLS struct {
	minVersion, maxVersion string
	ciphers                []string
	authSecret             string
}

func (d downstreamTLS) empty() bool {
	return d.minVersion == "" && d.maxVersion == "" && len(d.ciphers) == 0 && d.authSecret == ""
}

var tlsVersions = map[string]string{"TLSv1.0": "TLSv1_0", "TLSv1.1": "TLSv1_1", "TLSv1.2": "TLSv1_2", "TLSv1.3": "TLSv1_3"}

// Cipher suites Envoy (BoringSSL) accepts in tls_params.cipher_suites, the
// list Istio validates ssl-cipher against.
var validCiphers = map[string]bool{
	"ECDHE-ECDSA-AES128-GCM-SHA256": true, "ECDHE-RSA-AES128-GCM-SHA256": true,
	"ECDHE-ECDSA-AES256-GCM-SHA384": true, "ECDHE-RSA-AES256-GCM-SHA384": true,
	"ECDHE-ECDSA-CHACHA20-POLY1305": true, "ECDHE-RSA-CHACHA20-POLY1305": true,
	"ECDHE-ECDSA-AES128-SHA": true, "ECDHE-RSA-AES128-SHA": true,
	"ECDHE-ECDSA-AES256-SHA": true, "ECDHE-RSA-AES256-SHA": true,
	"AES128-GCM-SHA256": true, "AES256-GCM-SHA384": true, "AES128-SHA": true, "AES256-SHA": true,
	"DES-CBC3-SHA": true,
}

func (p parser) downstreamTLS() downstreamTLS {
	var d downstreamTLS
	version := func(key string) string {
		v, ok := p.str(key, false)
		if !ok {
			return ""
		}
		if ev, known := tlsVersions[v]; known {
			return ev
		}
		p.bad(key, v, "must be TLSv1.0, TLSv1.1, TLSv1.2 or TLSv1.3")
		return ""
	}
	d.minVersion = version("tls-min-protocol-version")
	d.maxVersion = version("tls-max-protocol-version")
	if v, ok := p.str("ssl-cipher", false); ok {
		// OpenSSL lists use ':'; commas are accepted too (§13.6).
		for _, c := range strings.FieldsFunc(v, func(r rune) bool { return r == ':' || r == ',' || r == ' ' }) {
			if validCiphers[c] {
				d.ciphers = append(d.ciphers, c)
			} else {
				p.bad("ssl-cipher", v, "cipher %q is not supported by Envoy; dropped", c)
			}
		}
	}
	d.authSecret, _ = p.str("auth-tls-secret", false)
	return d
}

// applyDownstreamTLS sets the TLS options of a host's server. The first
// Ingress of the host that has any wins (§2.6).
func (t *translator) applyDownstreamTLS(ing *networkingv1.Ingress, server *ir.TLSServer, certRef input.NamespacedName, d downstreamTLS) {
	if d.empty() || server.MinVersion != "" || server.MaxVersion != "" || len(server.Ciphers) > 0 || server.ClientCA != "" {
		return
	}
	server.MinVersion, server.MaxVersion, server.Ciphers = d.minVersion, d.maxVersion, d.ciphers
	if d.authSecret == "" {
		return
	}
	obj := objectOf(ing)
	ca := secretRef(d.authSecret, ing.Namespace)
	// Higress accepts only the certificate Secret itself or <cert>-cacert,
	// in the same namespace (§3.2 auth-tls-secret).
	if ca.Namespace != certRef.Namespace || (ca.Name != certRef.Name && ca.Name != certRef.Name+"-cacert") {
		t.d.Warn(obj, "invalid-annotation", "metadata.annotations",
			"auth-tls-secret %s must be %s or %s-cacert; client certificates are not required", ca, certRef, certRef)
		return
	}
	s := t.snap.Secrets[ca]
	if s == nil || len(s.Data["ca.crt"]) == 0 {
		t.d.Warn(obj, "missing-secret", "metadata.annotations", "auth-tls-secret %s has no ca.crt; client certificates are not required", ca)
		return
	}
	server.ClientCA = SecretName(t.opts.ClusterID, certRef.Namespace, certRef.Name) + "-cacert"
	t.b.AddSecret(&ir.Secret{Name: server.ClientCA, Namespace: ca.Namespace, SecretName: ca.Name, CA: s.Data["ca.crt"]})
}
