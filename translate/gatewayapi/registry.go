package gatewayapi

// Registry backends: backendRef {group: networking.higress.io, kind:
// Service, name: <registry host>} names a service discovered through the
// McpBridge registries (higress-semantics §4.3, §8.4). Higress documents it
// but never reaches that code (§13.2); here it resolves to the same cluster
// the Ingress higress.io/destination annotation gives that host.

import (
	"fmt"
	"strings"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/hxds/hxds/translate/registry"
)

// RegistryGroup is the backendRef group of registry hosts.
const RegistryGroup = "networking.higress.io"

// isRegistryRef reports a backendRef to a registry host.
func isRegistryRef(br gwv1.BackendRef) bool {
	return br.Group != nil && string(*br.Group) == RegistryGroup && (br.Kind == nil || *br.Kind == "Service")
}

// registryBackend registers the EDS cluster of a registry host. Registry
// hosts are not namespaced, so a namespace on the ref is ignored and no
// ReferenceGrant is needed; the host is always "resolved", since registries
// are dynamic and its endpoints may arrive later (until then: 503).
func (t *translator) registryBackend(src *routeSource, field string, br gwv1.BackendRef, rr *ruleResult) (name, reason, msg string) {
	host := string(br.Name)
	if host == "" || strings.ContainsAny(host, "/| \t\x00\r\n") {
		return "", string(gwv1.RouteReasonBackendNotFound), fmt.Sprintf("%q is not a registry host name", host)
	}
	if br.Namespace != nil && *br.Namespace != "" && string(*br.Namespace) != src.meta.Namespace {
		t.d.Warn(src.object(), "ignored-field", field+".namespace",
			"registry hosts are not namespaced; namespace %s is ignored", *br.Namespace)
	}
	port := registry.Port(t.snap, host)
	if br.Port != nil {
		if *br.Port < 1 || *br.Port > 65535 {
			return "", string(gwv1.RouteReasonBackendNotFound), fmt.Sprintf("port %d is not a port", *br.Port)
		}
		port = uint32(*br.Port)
	}
	name = registry.ClusterName(port, "", host)
	if old := t.b.Backend(name); old != nil && !t.registered[name] && !old.HTTP2 {
		t.ingressHTTP1[name] = true
	}
	t.registered[name] = true
	t.b.AddBackend(registry.Backend(t.snap, t.opts, host, port, ""))
	rr.clusters = append(rr.clusters, clusterUse{field: field, name: name})
	return name, "", ""
}
