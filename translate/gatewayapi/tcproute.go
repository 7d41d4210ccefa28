package gatewayapi

import (
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/hxds/hxds/translate/input"
)

// TCPRouteStatus is the status of one TCPRoute: one entry per parentRef
// that names a Gateway of ours.
type TCPRouteStatus struct {
	Namespace string              `json:"namespace"`
	Name      string              `json:"name"`
	Status    gwv1.TCPRouteStatus `json:"status"`
}

// tcpRouteSource: a TCPRoute forwards every connection of the TCP listeners
// it attaches to; its rules' backendRefs together share the connections.
func (t *translator) tcpRouteSource(r *gwv1.TCPRoute) *l4Route {
	src := &l4Route{kind: input.KindTCPRoute, meta: &r.ObjectMeta, parents: r.Spec.ParentRefs}
	for _, rule := range r.Spec.Rules {
		src.rules = append(src.rules, rule.BackendRefs)
	}
	src.status = func(parents []gwv1.RouteParentStatus) {
		t.st.TCPRoutes = append(t.st.TCPRoutes, TCPRouteStatus{Namespace: r.Namespace, Name: r.Name,
			Status: gwv1.TCPRouteStatus{RouteStatus: gwv1.RouteStatus{Parents: parents}}})
	}
	return src
}
