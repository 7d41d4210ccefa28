package envoy

import (
	"strconv"

	xdscorev3 "github.com/cncf/xds/go/xds/core/v3"
	matcherxds "github.com/cncf/xds/go/xds/type/matcher/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	customresponsev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/custom_response/v3"
	redirectpolicyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/http/custom_response/redirect_policy/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"

	"github.com/hxds/hxds/translate/ir"
)

const filterCustomResponse = "envoy.filters.http.custom_response"

// customResponseConfig is the filter's own (empty) config in the HCM: it
// acts only where a route configures it.
var customResponseConfig = mustAny(&customresponsev3.CustomResponse{})

// errorFallback is stock Envoy's counterpart of Higress's forked
// internal_active_redirect_policy: the custom_response filter matches the
// upstream status code and internally redirects the request (path and
// headers changed) so that it matches the fallback route.
func errorFallback(f *ir.ErrorFallback) *customresponsev3.CustomResponse {
	var headers []*corev3.HeaderValueOption
	for _, h := range f.Headers {
		headers = append(headers, &corev3.HeaderValueOption{
			Header:       &corev3.HeaderValue{Key: h.Name, Value: h.Value},
			AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
		})
	}
	action := &xdscorev3.TypedExtensionConfig{
		Name: "error-fallback",
		TypedConfig: mustAny(&redirectpolicyv3.RedirectPolicy{
			RedirectActionSpecifier: &redirectpolicyv3.RedirectPolicy_RedirectAction{RedirectAction: &routev3.RedirectAction{
				HostRedirect:         f.Host,
				PathRewriteSpecifier: &routev3.RedirectAction_PathRedirect{PathRedirect: f.Path},
			}},
			RequestHeadersToAdd: headers,
		}),
	}
	input := &xdscorev3.TypedExtensionConfig{
		Name:        "status-code",
		TypedConfig: mustAny(&matcherv3.HttpResponseStatusCodeMatchInput{}),
	}
	list := &matcherxds.Matcher_MatcherList{}
	for _, code := range f.Codes {
		list.Matchers = append(list.Matchers, &matcherxds.Matcher_MatcherList_FieldMatcher{
			Predicate: &matcherxds.Matcher_MatcherList_Predicate{MatchType: &matcherxds.Matcher_MatcherList_Predicate_SinglePredicate_{
				SinglePredicate: &matcherxds.Matcher_MatcherList_Predicate_SinglePredicate{
					Input: input,
					Matcher: &matcherxds.Matcher_MatcherList_Predicate_SinglePredicate_ValueMatch{ValueMatch: &matcherxds.StringMatcher{
						MatchPattern: &matcherxds.StringMatcher_Exact{Exact: strconv.Itoa(int(code))},
					}},
				},
			}},
			OnMatch: &matcherxds.Matcher_OnMatch{OnMatch: &matcherxds.Matcher_OnMatch_Action{Action: action}},
		})
	}
	return &customresponsev3.CustomResponse{CustomResponseMatcher: &matcherxds.Matcher{
		MatcherType: &matcherxds.Matcher_MatcherList_{MatcherList: list},
	}}
}
