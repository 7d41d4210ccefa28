package gatewayapi

import (
	"sort"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// supportedFeatures are the Gateway API features hxds claims in every
// GatewayClass's status.supportedFeatures. The conformance replay
// (conformance/, run by `make test`) infers the features to test from that
// status and must pass every test of each; docs/conformance.md is its report.
// Claim a feature here only with its conformance tests passing.
var supportedFeatures = []string{
	// Core.
	"Gateway",
	"HTTPRoute",
	"ReferenceGrant",
	"GRPCRoute",
	// Gateway extended.
	"GatewayPort8080",
	"GatewayAddressEmpty",
	"GatewayHTTPListenerIsolation",
	"GatewayFrontendClientCertificateValidation",
	"GatewayFrontendClientCertificateValidationInsecureFallback",
	"GatewayBackendClientCertificate",
	"GatewayHTTPSListenerDetectMisdirectedRequests",
	// HTTPRoute extended.
	"HTTPRouteDestinationPortMatching",
	"HTTPRouteQueryParamMatching",
	"HTTPRouteMethodMatching",
	"HTTPRouteResponseHeaderModification",
	"HTTPRoutePathRedirect",
	"HTTPRoutePortRedirect",
	"HTTPRouteSchemeRedirect",
	"HTTPRouteHostRewrite",
	"HTTPRoutePathRewrite",
	"HTTPRouteRequestMirror",
	"HTTPRouteRequestMultipleMirrors",
	"HTTPRouteRequestPercentageMirror",
	"HTTPRouteRequestTimeout",
	"HTTPRouteBackendTimeout",
	"HTTPRouteParentRefPort",
	"HTTPRouteNamedRouteRule",
	"HTTPRoute303RedirectStatusCode",
	"HTTPRoute307RedirectStatusCode",
	"HTTPRoute308RedirectStatusCode",
	"HTTPRouteRetry",
	"HTTPRouteCORS",
	"HTTPRouteBackendProtocolH2C",
	"HTTPRouteBackendRequestHeaderModification",
	// BackendTLSPolicy.
	"BackendTLSPolicy",
	"BackendTLSPolicySANValidation",
	// GRPCRoute extended.
	"GRPCRouteNamedRouteRule",
}

// SupportedFeatures returns the claimed features, sorted as the API requires.
func SupportedFeatures() []gwv1.SupportedFeature {
	names := append([]string(nil), supportedFeatures...)
	sort.Strings(names)
	out := make([]gwv1.SupportedFeature, 0, len(names))
	for _, n := range names {
		out = append(out, gwv1.SupportedFeature{Name: gwv1.FeatureName(n)})
	}
	return out
}
