package input

import (
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1a2 "sigs.k8s.io/gateway-api/apis/v1alpha2"
)

// Translation reads TCPRoute and TLSRoute only as the v1 Go types. The alpha
// versions have the same fields (v1alpha3's TLSRoute is the v1 type itself),
// so a source that hands over typed alpha objects converts them here.

// TCPRouteV1 converts a v1alpha2 TCPRoute to the v1 type.
func TCPRouteV1(in *gwv1a2.TCPRoute) *gwv1.TCPRoute {
	out := &gwv1.TCPRoute{TypeMeta: in.TypeMeta, ObjectMeta: in.ObjectMeta}
	out.Spec.CommonRouteSpec = in.Spec.CommonRouteSpec
	for _, r := range in.Spec.Rules {
		out.Spec.Rules = append(out.Spec.Rules, gwv1.TCPRouteRule(r))
	}
	out.Status = gwv1.TCPRouteStatus(in.Status)
	return out
}

// TLSRouteV1Alpha2 converts a v1alpha2 TLSRoute to the v1 type.
func TLSRouteV1Alpha2(in *gwv1a2.TLSRoute) *gwv1.TLSRoute {
	out := &gwv1.TLSRoute{TypeMeta: in.TypeMeta, ObjectMeta: in.ObjectMeta}
	out.Spec.CommonRouteSpec = in.Spec.CommonRouteSpec
	out.Spec.Hostnames = in.Spec.Hostnames
	for _, r := range in.Spec.Rules {
		out.Spec.Rules = append(out.Spec.Rules, gwv1.TLSRouteRule(r))
	}
	out.Status = gwv1.TLSRouteStatus(in.Status)
	return out
}
