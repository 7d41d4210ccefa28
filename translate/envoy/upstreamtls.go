package envoy

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"

	"github.com/hxds/hxds/translate/ir"
)

// SystemCAFile is the trust store upstream TLS uses for "system" CAs: the
// bundle of Debian/Ubuntu-based images, the base of the official Envoy
// images. Envoy reads it on the data-plane host, not the control plane.
const SystemCAFile = "/etc/ssl/certs/ca-certificates.crt"

// setUpstreamValidation sets how a cluster verifies its server's certificate: the
// CAs from SDS (or the system trust store) and, when listed, the SANs the
// certificate must carry. SANs with SDS CAs need a combined context, since
// an SDS validation context holds only the trusted CAs. Neither CA nor
// SystemCA: not verified.
func setUpstreamValidation(c *tlsv3.CommonTlsContext, t *ir.UpstreamTLS) {
	sans := sanMatchers(t.SubjectAltNames)
	switch {
	case t.CA != "" && len(sans) > 0:
		c.ValidationContextType = &tlsv3.CommonTlsContext_CombinedValidationContext{CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
			DefaultValidationContext:         &tlsv3.CertificateValidationContext{MatchTypedSubjectAltNames: sans},
			ValidationContextSdsSecretConfig: &tlsv3.SdsSecretConfig{Name: t.CA, SdsConfig: adsSource()},
		}}
	case t.CA != "":
		c.ValidationContextType = &tlsv3.CommonTlsContext_ValidationContextSdsSecretConfig{
			ValidationContextSdsSecretConfig: &tlsv3.SdsSecretConfig{Name: t.CA, SdsConfig: adsSource()},
		}
	case t.SystemCA:
		c.ValidationContextType = &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
			TrustedCa:                 &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: SystemCAFile}},
			MatchTypedSubjectAltNames: sans,
		}}
	}
}

func sanMatchers(sans []ir.SubjectAltName) []*tlsv3.SubjectAltNameMatcher {
	var out []*tlsv3.SubjectAltNameMatcher
	for _, s := range sans {
		typ := tlsv3.SubjectAltNameMatcher_DNS
		if s.Kind == "URI" {
			typ = tlsv3.SubjectAltNameMatcher_URI
		}
		// Exact: Envoy matches a DNS matcher against wildcard certificate
		// SANs itself (*.example.com covers a.example.com).
		out = append(out, &tlsv3.SubjectAltNameMatcher{SanType: typ, Matcher: &matcherv3.StringMatcher{
			MatchPattern: &matcherv3.StringMatcher_Exact{Exact: s.Value},
		}})
	}
	return out
}
