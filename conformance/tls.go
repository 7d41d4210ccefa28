package conformance

// TLS handshakes of the simulated data plane. Both are real crypto/tls
// handshakes over an in-memory pipe, with each side configured from what it
// is in the test:
//
//   - downstream (client → Envoy): the suite's client (server name, trusted
//     CA, client certificate hook) against the DownstreamTlsContext of the
//     filter chain routecheck chose (served certificates, client
//     certificate validation);
//   - upstream (Envoy → backend): the cluster's UpstreamTlsContext (SNI,
//     client certificate, validation context) against echo-basic's HTTPS
//     server as the pod runs it (TLS_SERVER_CERT / TLS_SERVER_PRIVKEY /
//     TLS_CLIENT_CACERTS files from the pod's Secret and ConfigMap volumes).
//
// Certificate verification on Envoy's side follows Envoy, not Go: the chain
// must reach trusted_ca (unless trust_chain_verification is
// ACCEPT_UNTRUSTED), the host name is not checked, and
// match_typed_subject_alt_names must match one SAN when listed.

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"path"
	"regexp"
	"strings"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/gateway-api/conformance/utils/roundtripper"

	"github.com/hxds/hxds/routecheck"
	"github.com/hxds/hxds/translate/envoy"
)

// handshake runs a TLS handshake between client and server configurations
// and returns both sides' connection states.
func handshake(client, server *tls.Config) (tls.ConnectionState, tls.ConnectionState, error) {
	cc, sc := net.Pipe()
	deadline := time.Now().Add(10 * time.Second)
	_ = cc.SetDeadline(deadline)
	_ = sc.SetDeadline(deadline)
	cl, sv := tls.Client(cc, client), tls.Server(sc, server)
	serr := make(chan error, 1)
	go func() {
		err := sv.Handshake()
		if err != nil {
			sc.Close()
		}
		serr <- err
	}()
	cerr := cl.Handshake()
	if cerr != nil {
		cc.Close()
	} else {
		// The server may still write (a TLS 1.3 alert for a rejected
		// client certificate, session tickets): the pipe blocks writers
		// until read.
		go func() { _, _ = io.Copy(io.Discard, cc) }()
	}
	serverErr := <-serr
	cc.Close()
	sc.Close()
	switch {
	case cerr != nil:
		return tls.ConnectionState{}, tls.ConnectionState{}, cerr
	case serverErr != nil:
		return tls.ConnectionState{}, tls.ConnectionState{}, serverErr
	}
	return cl.ConnectionState(), sv.ConnectionState(), nil
}

// tlsSecret is the served SDS secret name.
func tlsSecret(res routecheck.Resources, name string) (*tlsv3.Secret, error) {
	s, ok := res[resourcev3.SecretType][name].(*tlsv3.Secret)
	if !ok {
		return nil, fmt.Errorf("secret %s is not served", name)
	}
	return s, nil
}

// dataSource reads an Envoy DataSource; files other than the system trust
// store do not exist on the simulated Envoy host.
func dataSource(d *corev3.DataSource) ([]byte, error) {
	switch s := d.GetSpecifier().(type) {
	case *corev3.DataSource_InlineBytes:
		return s.InlineBytes, nil
	case *corev3.DataSource_InlineString:
		return []byte(s.InlineString), nil
	case *corev3.DataSource_Filename:
		return nil, fmt.Errorf("file %s is not on the simulated Envoy host", s.Filename)
	}
	return nil, nil
}

// tlsCertificates loads the certificates (with keys) a TLS context presents.
func tlsCertificates(res routecheck.Resources, c *tlsv3.CommonTlsContext) ([]tls.Certificate, error) {
	certs := append([]*tlsv3.TlsCertificate(nil), c.GetTlsCertificates()...)
	for _, sds := range c.GetTlsCertificateSdsSecretConfigs() {
		s, err := tlsSecret(res, sds.GetName())
		if err != nil {
			return nil, err
		}
		if s.GetTlsCertificate() == nil {
			return nil, fmt.Errorf("secret %s is not a TLS certificate", sds.GetName())
		}
		certs = append(certs, s.GetTlsCertificate())
	}
	var out []tls.Certificate
	for _, tc := range certs {
		chain, err := dataSource(tc.GetCertificateChain())
		if err != nil {
			return nil, err
		}
		key, err := dataSource(tc.GetPrivateKey())
		if err != nil {
			return nil, err
		}
		pair, err := tls.X509KeyPair(chain, key)
		if err != nil {
			return nil, fmt.Errorf("certificate: %w", err)
		}
		out = append(out, pair)
	}
	return out, nil
}

// validationContext resolves a TLS context's validation context (inline,
// SDS, or SDS combined with a default one); nil when there is none.
func validationContext(res routecheck.Resources, c *tlsv3.CommonTlsContext) (*tlsv3.CertificateValidationContext, error) {
	sds := func(cfg *tlsv3.SdsSecretConfig) (*tlsv3.CertificateValidationContext, error) {
		s, err := tlsSecret(res, cfg.GetName())
		if err != nil {
			return nil, err
		}
		if s.GetValidationContext() == nil {
			return nil, fmt.Errorf("secret %s is not a validation context", cfg.GetName())
		}
		return s.GetValidationContext(), nil
	}
	switch v := c.GetValidationContextType().(type) {
	case *tlsv3.CommonTlsContext_ValidationContext:
		return v.ValidationContext, nil
	case *tlsv3.CommonTlsContext_ValidationContextSdsSecretConfig:
		return sds(v.ValidationContextSdsSecretConfig)
	case *tlsv3.CommonTlsContext_CombinedValidationContext:
		dyn, err := sds(v.CombinedValidationContext.GetValidationContextSdsSecretConfig())
		if err != nil {
			return nil, err
		}
		// Envoy merges the default context into the dynamic one.
		merged := &tlsv3.CertificateValidationContext{}
		if d := v.CombinedValidationContext.GetDefaultValidationContext(); d != nil {
			merged = protoClone(d)
		}
		mergeValidation(merged, dyn)
		return merged, nil
	}
	return nil, nil
}

func protoClone(v *tlsv3.CertificateValidationContext) *tlsv3.CertificateValidationContext {
	return proto.Clone(v).(*tlsv3.CertificateValidationContext)
}

// mergeValidation is proto MergeFrom for the fields verification reads.
func mergeValidation(dst, src *tlsv3.CertificateValidationContext) {
	if src.GetTrustedCa() != nil {
		dst.TrustedCa = src.TrustedCa
	}
	dst.MatchTypedSubjectAltNames = append(dst.MatchTypedSubjectAltNames, src.GetMatchTypedSubjectAltNames()...)
	if src.GetTrustChainVerification() != tlsv3.CertificateValidationContext_VERIFY_TRUST_CHAIN {
		dst.TrustChainVerification = src.TrustChainVerification
	}
}

// trustedCAs is the pool of a validation context's trusted_ca; nil without one.
func trustedCAs(vc *tlsv3.CertificateValidationContext) (*x509.CertPool, error) {
	ca := vc.GetTrustedCa()
	if ca == nil {
		return nil, nil
	}
	if f := ca.GetFilename(); f == envoy.SystemCAFile {
		// The simulated Envoy host's trust store is this machine's.
		return x509.SystemCertPool()
	}
	data, err := dataSource(ca)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, errors.New("trusted_ca has no PEM certificate")
	}
	return pool, nil
}

// envoyVerify is Envoy's verification of a peer's certificate chain under
// a validation context.
func envoyVerify(vc *tlsv3.CertificateValidationContext, raw [][]byte) error {
	if vc == nil {
		return nil
	}
	if len(raw) == 0 {
		return errors.New("the peer presented no certificate")
	}
	certs := make([]*x509.Certificate, 0, len(raw))
	for _, r := range raw {
		c, err := x509.ParseCertificate(r)
		if err != nil {
			return err
		}
		certs = append(certs, c)
	}
	if hashes := vc.GetVerifyCertificateHash(); len(hashes) > 0 {
		sum := sha256.Sum256(raw[0])
		got, ok := hex.EncodeToString(sum[:]), false
		for _, h := range hashes {
			if strings.EqualFold(strings.ReplaceAll(h, ":", ""), got) {
				ok = true
			}
		}
		if !ok {
			return errors.New("certificate verify failed: the certificate hash is not allowed (verify_certificate_hash)")
		}
	}
	roots, err := trustedCAs(vc)
	if err != nil {
		return err
	}
	if roots != nil && vc.GetTrustChainVerification() != tlsv3.CertificateValidationContext_ACCEPT_UNTRUSTED {
		inter := x509.NewCertPool()
		for _, c := range certs[1:] {
			inter.AddCert(c)
		}
		// Envoy checks neither the host name nor extended key usages.
		opts := x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
		if _, err := certs[0].Verify(opts); err != nil {
			return fmt.Errorf("certificate verify failed: %w", err)
		}
	}
	if m := vc.GetMatchTypedSubjectAltNames(); len(m) > 0 && !sanMatches(m, certs[0]) {
		return fmt.Errorf("certificate verify failed: no subject alternative name of %v matches %v", sanList(certs[0]), m)
	}
	return nil
}

func sanList(c *x509.Certificate) []string {
	out := append([]string(nil), c.DNSNames...)
	for _, u := range c.URIs {
		out = append(out, u.String())
	}
	return out
}

// sanMatches: one matcher matches one SAN of its type. DNS SANs match as
// Envoy matches them: a wildcard SAN covers one label.
func sanMatches(ms []*tlsv3.SubjectAltNameMatcher, c *x509.Certificate) bool {
	for _, m := range ms {
		switch m.GetSanType() {
		case tlsv3.SubjectAltNameMatcher_DNS:
			for _, san := range c.DNSNames {
				if stringMatches(m.GetMatcher(), san) || (m.GetMatcher().GetExact() != "" && dnsWildcardMatch(san, m.GetMatcher().GetExact())) {
					return true
				}
			}
		case tlsv3.SubjectAltNameMatcher_URI:
			for _, u := range c.URIs {
				if stringMatches(m.GetMatcher(), u.String()) {
					return true
				}
			}
		case tlsv3.SubjectAltNameMatcher_IP_ADDRESS:
			for _, ip := range c.IPAddresses {
				if stringMatches(m.GetMatcher(), ip.String()) {
					return true
				}
			}
		case tlsv3.SubjectAltNameMatcher_EMAIL:
			for _, e := range c.EmailAddresses {
				if stringMatches(m.GetMatcher(), e) {
					return true
				}
			}
		}
	}
	return false
}

// dnsWildcardMatch is Envoy's DefaultCertValidator::dnsNameMatch: a SAN
// "*.example.com" matches "a.example.com", not "a.b.example.com".
func dnsWildcardMatch(san, name string) bool {
	san, name = strings.ToLower(san), strings.ToLower(name)
	if !strings.HasPrefix(san, "*.") {
		return false
	}
	i := strings.IndexByte(name, '.')
	return i > 0 && name[i:] == san[1:]
}

func stringMatches(m *matcherv3.StringMatcher, v string) bool {
	value := v
	fold := func(s string) string {
		if m.GetIgnoreCase() {
			return strings.ToLower(s)
		}
		return s
	}
	value = fold(value)
	switch p := m.GetMatchPattern().(type) {
	case *matcherv3.StringMatcher_Exact:
		return value == fold(p.Exact)
	case *matcherv3.StringMatcher_Prefix:
		return strings.HasPrefix(value, fold(p.Prefix))
	case *matcherv3.StringMatcher_Suffix:
		return strings.HasSuffix(value, fold(p.Suffix))
	case *matcherv3.StringMatcher_Contains:
		return strings.Contains(value, fold(p.Contains))
	case *matcherv3.StringMatcher_SafeRegex:
		re, err := regexp.Compile("^(?:" + p.SafeRegex.GetRegex() + ")$")
		return err == nil && re.MatchString(v)
	}
	return false
}

// tlsVersion maps Envoy TLS parameters to Go versions; def when AUTO.
func tlsVersion(v tlsv3.TlsParameters_TlsProtocol, def uint16) uint16 {
	switch v {
	case tlsv3.TlsParameters_TLSv1_0:
		return tls.VersionTLS10
	case tlsv3.TlsParameters_TLSv1_1:
		return tls.VersionTLS11
	case tlsv3.TlsParameters_TLSv1_2:
		return tls.VersionTLS12
	case tlsv3.TlsParameters_TLSv1_3:
		return tls.VersionTLS13
	}
	return def
}

// downstreamTLSContext is the DownstreamTlsContext of the filter chain the
// request was matched to.
func downstreamTLSContext(res routecheck.Resources, out routecheck.Outcome) (*tlsv3.DownstreamTlsContext, error) {
	l, ok := res[resourcev3.ListenerType][out.Listener].(*listenerv3.Listener)
	if !ok {
		return nil, fmt.Errorf("listener %s is not served", out.Listener)
	}
	var fc *listenerv3.FilterChain
	for i, c := range l.GetFilterChains() {
		if c.GetName() == out.FilterChain || fmt.Sprintf("filter_chains[%d]", i) == out.FilterChain {
			fc = c
			break
		}
	}
	if fc == nil && out.FilterChain == "default_filter_chain" {
		fc = l.GetDefaultFilterChain()
	}
	if fc == nil {
		return nil, fmt.Errorf("filter chain %s of %s not found", out.FilterChain, out.Listener)
	}
	ctx := &tlsv3.DownstreamTlsContext{}
	if err := fc.GetTransportSocket().GetTypedConfig().UnmarshalTo(ctx); err != nil {
		return nil, fmt.Errorf("filter chain %s: transport socket: %w", out.FilterChain, err)
	}
	return ctx, nil
}

// verifyServer is the client's TLS handshake with the filter chain the
// request reached: the suite's client verifies the served certificate
// against the CA the test trusts and the server name, and presents its
// client certificate when Envoy asks for one; Envoy verifies it as the
// chain's validation context says.
func verifyServer(res routecheck.Resources, out routecheck.Outcome, req roundtripper.Request) error {
	ctx, err := downstreamTLSContext(res, out)
	if err != nil {
		return fmt.Errorf("%w: TLS handshake: %v", errConnection, err)
	}
	common := ctx.GetCommonTlsContext()
	certs, err := tlsCertificates(res, common)
	if err != nil {
		return fmt.Errorf("%w: TLS handshake: %v", errConnection, err)
	}
	if len(certs) == 0 {
		return fmt.Errorf("%w: TLS handshake: the filter chain has no certificate", errConnection)
	}
	vc, err := validationContext(res, common)
	if err != nil {
		return fmt.Errorf("%w: TLS handshake: %v", errConnection, err)
	}
	params := common.GetTlsParams()
	server := &tls.Config{
		Certificates:           certs,
		SessionTicketsDisabled: true,
		MinVersion:             tlsVersion(params.GetTlsMinimumProtocolVersion(), tls.VersionTLS12),
		MaxVersion:             tlsVersion(params.GetTlsMaximumProtocolVersion(), tls.VersionTLS13),
	}
	required := ctx.GetRequireClientCertificate().GetValue()
	if vc != nil || required {
		// Envoy asks for a certificate whenever it has a validation context.
		server.ClientAuth = tls.RequestClientCert
		if required {
			server.ClientAuth = tls.RequireAnyClientCert
		}
		server.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return nil // not required, not presented
			}
			return envoyVerify(vc, raw)
		}
	}
	client := &tls.Config{ServerName: req.ServerName, GetClientCertificate: req.GetClientCertificateHook}
	if len(req.ServerCertificate) > 0 {
		client.RootCAs = x509.NewCertPool()
		if !client.RootCAs.AppendCertsFromPEM(req.ServerCertificate) {
			return fmt.Errorf("request's server certificate is not PEM")
		}
	}
	if _, _, err := handshake(client, server); err != nil {
		return fmt.Errorf("%w: TLS handshake: %v", errConnection, err)
	}
	return nil
}

// upstreamTLSContext is the cluster's UpstreamTlsContext; nil for plain text.
func upstreamTLSContext(c *clusterv3.Cluster) (*tlsv3.UpstreamTlsContext, error) {
	ts := c.GetTransportSocket()
	if ts == nil {
		return nil, nil
	}
	ctx := &tlsv3.UpstreamTlsContext{}
	if err := ts.GetTypedConfig().UnmarshalTo(ctx); err != nil {
		return nil, fmt.Errorf("cluster %s: transport socket: %w", c.GetName(), err)
	}
	return ctx, nil
}

// upstreamHandshake is Envoy's TLS handshake with echo-basic's HTTPS server
// in pod: it returns what echo-basic reports of the connection (the echoed
// "tls" object) and the negotiated ALPN protocol. An error is a failed
// connection (Envoy answers 503).
func (d *dataPlane) upstreamHandshake(res routecheck.Resources, c *clusterv3.Cluster, pod *corev1.Pod) (roundtripper.TLS, string, error) {
	ctx, err := upstreamTLSContext(c)
	if err != nil {
		return roundtripper.TLS{}, "", err
	}
	env := podEnv(pod)
	certPEM, err := d.podFile(pod, env["TLS_SERVER_CERT"])
	if err != nil {
		return roundtripper.TLS{}, "", err
	}
	keyPEM, err := d.podFile(pod, env["TLS_SERVER_PRIVKEY"])
	if err != nil {
		return roundtripper.TLS{}, "", err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return roundtripper.TLS{}, "", fmt.Errorf("echo-basic does not start: %w", err)
	}
	// echo-basic: http.Server.ListenAndServeTLS (h2 and http/1.1), client
	// certificates verified when given and TLS_CLIENT_CACERTS is set.
	server := &tls.Config{Certificates: []tls.Certificate{pair}, NextProtos: []string{"h2", "http/1.1"}, SessionTicketsDisabled: true}
	if f := env["TLS_CLIENT_CACERTS"]; f != "" {
		ca, err := d.podFile(pod, f)
		if err != nil {
			return roundtripper.TLS{}, "", err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(ca) {
			return roundtripper.TLS{}, "", fmt.Errorf("echo-basic does not start: no CA certificate in %s", f)
		}
		server.ClientAuth, server.ClientCAs = tls.VerifyClientCertIfGiven, pool
	}

	common := ctx.GetCommonTlsContext()
	certs, err := tlsCertificates(res, common)
	if err != nil {
		return roundtripper.TLS{}, "", err
	}
	vc, err := validationContext(res, common)
	if err != nil {
		return roundtripper.TLS{}, "", err
	}
	params := common.GetTlsParams()
	client := &tls.Config{
		ServerName: ctx.GetSni(),
		NextProtos: common.GetAlpnProtocols(),
		// Envoy's client defaults: TLS 1.2 to 1.2.
		MinVersion:         tlsVersion(params.GetTlsMinimumProtocolVersion(), tls.VersionTLS12),
		MaxVersion:         tlsVersion(params.GetTlsMaximumProtocolVersion(), tls.VersionTLS12),
		InsecureSkipVerify: true, // verified below, as Envoy verifies
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			return envoyVerify(vc, raw)
		},
		// Envoy presents its certificate whatever CAs the server names.
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if len(certs) == 0 {
				return &tls.Certificate{}, nil
			}
			return &certs[0], nil
		},
	}
	_, st, err := handshake(client, server)
	if err != nil {
		return roundtripper.TLS{}, "", fmt.Errorf("TLS handshake with %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return echoTLS(st), st.NegotiatedProtocol, nil
}

// echoTLS is echo-basic's tlsStateToAssertions.
func echoTLS(st tls.ConnectionState) roundtripper.TLS {
	out := roundtripper.TLS{
		ServerName:         st.ServerName,
		NegotiatedProtocol: st.NegotiatedProtocol,
		CipherSuite:        tls.CipherSuiteName(st.CipherSuite),
	}
	switch st.Version {
	case tls.VersionTLS13:
		out.Version = "TLSv1.3"
	case tls.VersionTLS12:
		out.Version = "TLSv1.2"
	case tls.VersionTLS11:
		out.Version = "TLSv1.1"
	case tls.VersionTLS10:
		out.Version = "TLSv1.0"
	}
	for _, c := range st.PeerCertificates {
		out.PeerCertificates = append(out.PeerCertificates, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})))
	}
	return out
}

// podFile reads a file of pod's container from its Secret and ConfigMap
// volumes, as kubelet mounts them.
func (d *dataPlane) podFile(pod *corev1.Pod, file string) ([]byte, error) {
	if file == "" {
		return nil, errors.New("no file name")
	}
	for _, c := range pod.Spec.Containers {
		for _, m := range c.VolumeMounts {
			rel, ok := strings.CutPrefix(path.Clean(file), path.Clean(m.MountPath)+"/")
			if !ok {
				continue
			}
			for _, v := range pod.Spec.Volumes {
				if v.Name != m.Name {
					continue
				}
				return d.volumeFile(pod.Namespace, v, rel)
			}
		}
	}
	return nil, fmt.Errorf("pod %s/%s: %s is on no Secret or ConfigMap volume", pod.Namespace, pod.Name, file)
}

func (d *dataPlane) volumeFile(ns string, v corev1.Volume, rel string) ([]byte, error) {
	key := func(items []corev1.KeyToPath) string {
		if len(items) == 0 {
			return rel
		}
		for _, it := range items {
			if it.Path == rel {
				return it.Key
			}
		}
		return ""
	}
	ctx := context.Background()
	switch {
	case v.Secret != nil:
		s := &corev1.Secret{}
		if err := d.ctl.store.raw.Get(ctx, types.NamespacedName{Namespace: ns, Name: v.Secret.SecretName}, s); err != nil {
			return nil, fmt.Errorf("volume %s: %w", v.Name, err)
		}
		if data, ok := s.Data[key(v.Secret.Items)]; ok {
			return data, nil
		}
	case v.ConfigMap != nil:
		cm := &corev1.ConfigMap{}
		if err := d.ctl.store.raw.Get(ctx, types.NamespacedName{Namespace: ns, Name: v.ConfigMap.Name}, cm); err != nil {
			return nil, fmt.Errorf("volume %s: %w", v.Name, err)
		}
		if data, ok := cm.Data[key(v.ConfigMap.Items)]; ok {
			return []byte(data), nil
		}
	}
	return nil, fmt.Errorf("volume %s has no file %s", v.Name, rel)
}
