package gatewayapi

import (
	"fmt"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/hxds/hxds/translate/ir"
)

// routeBackend is a backendRef with the header edits of its own filters,
// applied only to the requests sent to it: Envoy's weighted-cluster header
// options, which Envoy applies before the route's (a header both set ends
// with the rule's value).
type routeBackend struct {
	ref         gwv1.BackendRef
	reqH, respH *ir.HeaderOps
}

// httpRouteBackends reads an HTTPRoute rule's backendRefs and their filters;
// a filter other than a header modifier is a problem that drops the rule.
func httpRouteBackends(field string, refs []gwv1.HTTPBackendRef) (out []routeBackend, problemField, problem string) {
	for bi, br := range refs {
		b := routeBackend{ref: br.BackendRef}
		for fi, f := range br.Filters {
			ff := fmt.Sprintf("%s.backendRefs[%d].filters[%d]", field, bi, fi)
			if p := b.headerFilter(string(f.Type), f.RequestHeaderModifier, f.ResponseHeaderModifier); p != "" {
				return nil, ff, p
			}
		}
		out = append(out, b)
	}
	return out, "", ""
}

// grpcRouteBackends is httpRouteBackends for a GRPCRoute rule.
func grpcRouteBackends(field string, refs []gwv1.GRPCBackendRef) (out []routeBackend, problemField, problem string) {
	for bi, br := range refs {
		b := routeBackend{ref: br.BackendRef}
		for fi, f := range br.Filters {
			ff := fmt.Sprintf("%s.backendRefs[%d].filters[%d]", field, bi, fi)
			if p := b.headerFilter(string(f.Type), f.RequestHeaderModifier, f.ResponseHeaderModifier); p != "" {
				return nil, ff, p
			}
		}
		out = append(out, b)
	}
	return out, "", ""
}

// headerFilter applies one backendRef filter of type typ to b.
func (b *routeBackend) headerFilter(typ string, req, resp *gwv1.HTTPHeaderFilter) string {
	var target **ir.HeaderOps
	var f *gwv1.HTTPHeaderFilter
	switch typ {
	case string(gwv1.HTTPRouteFilterRequestHeaderModifier):
		target, f = &b.reqH, req
	case string(gwv1.HTTPRouteFilterResponseHeaderModifier):
		target, f = &b.respH, resp
	default:
		return fmt.Sprintf("backendRef filter type %s is not supported (only RequestHeaderModifier and ResponseHeaderModifier)", typ)
	}
	if f == nil {
		return fmt.Sprintf("backendRef filter type %s has no configuration", typ)
	}
	if *target != nil {
		return fmt.Sprintf("only one %s filter is allowed per backendRef", typ)
	}
	if p := checkHeaderFilter(f); p != "" {
		return p
	}
	*target = headerOps(f)
	return ""
}
