package gatewayapi

import (
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/hxds/hxds/translate/input"
)

// TLSRouteStatus is the status of one TLSRoute: one entry per parentRef
// that names a Gateway of ours.
type TLSRouteStatus struct {
	Namespace string              `json:"namespace"`
	Name      string              `json:"name"`
	Status    gwv1.TLSRouteStatus `json:"status"`
}

// tlsRouteSource: a TLSRoute takes the TLS connections whose SNI is one of
// its hostnames (intersected with the listener's) and passes them through
// to its backendRefs, which share them by weight.
func (t *translator) tlsRouteSource(r *gwv1.TLSRoute) *l4Route {
	src := &l4Route{kind: input.KindTLSRoute, meta: &r.ObjectMeta, parents: r.Spec.ParentRefs, hostnames: r.Spec.Hostnames}
	for _, rule := range r.Spec.Rules {
		src.rules = append(src.rules, rule.BackendRefs)
	}
	src.status = func(parents []gwv1.RouteParentStatus) {
		t.st.TLSRoutes = append(t.st.TLSRoutes, TLSRouteStatus{Namespace: r.Namespace, Name: r.Name,
			Status: gwv1.TLSRouteStatus{RouteStatus: gwv1.RouteStatus{Parents: parents}}})
	}
	return src
}
