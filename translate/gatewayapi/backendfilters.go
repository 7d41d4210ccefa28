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

// backendFilter is what hxds reads of an HTTPRoute or GRPCRoute backendRef
// filter.
type backendFilter struct {
	typ       string
	req, resp *gwv1.HTTPHeaderFilter
}

// routeBackends reads a rule's backendRefs and their filters (parts splits
// one backendRef of either route kind); a filter other than a header
// modifier is a problem that drops the rule.
func routeBackends[B any](field string, refs []B, parts func(B) (gwv1.BackendRef, []backendFilter)) (out []routeBackend, problemField, problem string) {
	for bi, br := range refs {
		ref, filters := parts(br)
		b := routeBackend{ref: ref}
		for fi, f := range filters {
			if p := b.headerFilter(f.typ, f.req, f.resp); p != "" {
				return nil, fmt.Sprintf("%s.backendRefs[%d].filters[%d]", field, bi, fi), p
			}
		}
		out = append(out, b)
	}
	return out, "", ""
}

func httpBackendParts(b gwv1.HTTPBackendRef) (gwv1.BackendRef, []backendFilter) {
	fs := make([]backendFilter, len(b.Filters))
	for i, f := range b.Filters {
		fs[i] = backendFilter{string(f.Type), f.RequestHeaderModifier, f.ResponseHeaderModifier}
	}
	return b.BackendRef, fs
}

func grpcBackendParts(b gwv1.GRPCBackendRef) (gwv1.BackendRef, []backendFilter) {
	fs := make([]backendFilter, len(b.Filters))
	for i, f := range b.Filters {
		fs[i] = backendFilter{string(f.Type), f.RequestHeaderModifier, f.ResponseHeaderModifier}
	}
	return b.BackendRef, fs
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
