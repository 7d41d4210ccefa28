package ingress

import (
	"slices"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
)

// knownKeys are the annotation keys hxds reads (without prefix); "H" marks
// keys read only under the higress.io prefix (§3.1).
var knownKeys = map[string]string{
	"canary": "", "canary-by-header": "", "canary-by-header-value": "", "canary-by-header-pattern": "",
	"canary-by-cookie": "", "canary-weight": "", "canary-weight-total": "",
	"enable-cors": "", "cors-allow-origin": "", "cors-allow-methods": "", "cors-allow-headers": "",
	"cors-expose-headers": "", "cors-allow-credentials": "", "cors-max-age": "",
	"app-root": "", "temporal-redirect": "", "permanent-redirect": "", "permanent-redirect-code": "",
	"ssl-redirect": "", "force-ssl-redirect": "",
	"rewrite-target": "", "use-regex": "", "upstream-vhost": "", "rewrite-path": "H", "full-path-regex": "H",
	"backend-protocol": "", "proxy-ssl-secret": "", "proxy-ssl-verify": "", "proxy-ssl-name": "", "proxy-ssl-server-name": "",
	"auth-tls-secret": "", "ssl-cipher": "", "tls-min-protocol-version": "", "tls-max-protocol-version": "",
	"whitelist-source-range": "", "timeout": "H",
	"proxy-next-upstream": "", "proxy-next-upstream-tries": "", "proxy-next-upstream-timeout": "",
	"load-balance": "", "upstream-hash-by": "", "affinity": "", "affinity-mode": "", "affinity-canary-behavior": "",
	"session-cookie-name": "", "session-cookie-path": "", "session-cookie-max-age": "", "session-cookie-expires": "",
	"route-limit-rpm": "H", "route-limit-rps": "H", "route-limit-burst-multiplier": "H",
	"default-backend": "", "custom-http-errors": "",
	"mirror-target-service": "", "mirror-target-fqdn": "", "mirror-target-fqdn-port": "", "mirror-percentage": "",
	"destination": "H", "ignore-path-case": "", "match-method": "H",
	"request-header-control-add": "H", "request-header-control-update": "H", "request-header-control-remove": "H",
	"response-header-control-add": "H", "response-header-control-update": "H", "response-header-control-remove": "H",
}

// notServed are keys Higress knows that hxds does not serve yet, with why.
var notServed = map[string]string{
	"rpc-destination-name":           "HTTP-to-Dubbo transcoding (Http2Rpc) needs Higress's forked Envoy",
	"mcp-server":                     "MCP server registration is not supported yet",
	"mcp-server-match-rule-domains":  "MCP server registration is not supported yet",
	"mcp-server-match-rule-type":     "MCP server registration is not supported yet",
	"mcp-server-match-rule-value":    "MCP server registration is not supported yet",
	"mcp-server-upstream-type":       "MCP server registration is not supported yet",
	"mcp-server-enable-path-rewrite": "MCP server registration is not supported yet",
	"mcp-server-path-rewrite-prefix": "MCP server registration is not supported yet",
	"mcp-sse-stateful-param-name":    "load-balance=mcp-sse needs Higress's forked Envoy",
	"auth-type":                      "not supported since Higress 2.0: use the basic-auth Wasm plugin",
	"auth-secret":                    "not supported since Higress 2.0: use the basic-auth Wasm plugin",
	"auth-realm":                     "not supported since Higress 2.0: use the basic-auth Wasm plugin",
	"auth-secret-type":               "not supported since Higress 2.0: use the basic-auth Wasm plugin",
}

// reportUnknownAnnotations warns about every annotation under the nginx or
// Higress prefix that has no effect: unknown keys (a typo, or an
// ingress-nginx feature Higress never had), Higress-only keys under the
// nginx prefix, and keys not served yet. Nothing is dropped.
func (t *translator) reportUnknownAnnotations(ing *networkingv1.Ingress) {
	obj := objectOf(ing)
	keys := make([]string, 0, len(ing.Annotations))
	for k := range ing.Annotations {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, full := range keys {
		var key string
		var nginx bool
		switch {
		case strings.HasPrefix(full, nginxPrefix):
			key, nginx = strings.TrimPrefix(full, nginxPrefix), true
		case strings.HasPrefix(full, higressPrefix):
			key = strings.TrimPrefix(full, higressPrefix)
		default:
			continue
		}
		field := "metadata.annotations[" + full + "]"
		if why, ok := notServed[key]; ok {
			t.d.Warn(obj, "unsupported-annotation", field, "annotation %s has no effect: %s", full, why)
			continue
		}
		only, known := knownKeys[key]
		if !known && isMatchKey(key) {
			known, only = true, "H"
		}
		switch {
		case !known:
			t.d.Warn(obj, "unsupported-annotation", field, "annotation %s is not supported (Higress does not implement it either); ignored", full)
		case nginx && only == "H":
			t.d.Warn(obj, "unsupported-annotation", field, "annotation %s is read only as %s%s; ignored", full, higressPrefix, key)
		}
	}
}

// isMatchKey recognises {exact,prefix,regex}-match-{header,pseudo-header,query}-<name>.
func isMatchKey(key string) bool {
	kind, rest, ok := strings.Cut(key, "-match-")
	if !ok || (kind != "exact" && kind != "prefix" && kind != "regex") {
		return false
	}
	for _, p := range []string{"header-", "pseudo-header-", "query-"} {
		if strings.HasPrefix(rest, p) && len(rest) > len(p) {
			return true
		}
	}
	return false
}
