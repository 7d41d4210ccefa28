// Package higress reads Higress's own configuration objects (ConfigMaps and
// CRDs in the system namespace) into what the front-ends need.
package higress

import (
	"fmt"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/hxds/hxds/translate/diag"
	"github.com/hxds/hxds/translate/input"
)

// HTTPSConfigMap is the name of Higress's certificate ConfigMap (§9.1).
const HTTPSConfigMap = "higress-https"

// HTTPS is the `cert` key of the higress-https ConfigMap. Only what
// translation uses is interpreted here; ACME settings belong to the
// certificate manager.
type HTTPS struct {
	AutomaticHTTPS           *bool        `json:"automaticHttps,omitempty"`
	FallbackForInvalidSecret bool         `json:"fallbackForInvalidSecret,omitempty"`
	RenewBeforeDays          int          `json:"renewBeforeDays,omitempty"`
	CredentialConfig         []Credential `json:"credentialConfig,omitempty"`
	ACMEIssuer               []ACMEIssuer `json:"acmeIssuer,omitempty"`
	Version                  string       `json:"version,omitempty"`
}

// Credential maps domains to a TLS Secret.
type Credential struct {
	Domains      []string `json:"domains"`
	TLSIssuer    string   `json:"tlsIssuer,omitempty"`
	TLSSecret    string   `json:"tlsSecret"`
	CACertSecret string   `json:"cacertSecret,omitempty"`
}

// ACMEIssuer configures an ACME account.
type ACMEIssuer struct {
	Name  string `json:"name"`
	Email string `json:"email,omitempty"`
	AK    string `json:"ak,omitempty"`
	SK    string `json:"sk,omitempty"`
}

// ParseHTTPS reads higress-https from the system namespace. A missing
// ConfigMap is an empty configuration; an invalid one is reported on the
// ConfigMap and ignored as a whole (nil), so a typo never half-applies.
func ParseHTTPS(snap *input.Snapshot, systemNamespace string, d *diag.Set) *HTTPS {
	cm := snap.ConfigMaps[input.NamespacedName{Namespace: systemNamespace, Name: HTTPSConfigMap}]
	if cm == nil {
		return &HTTPS{}
	}
	obj := diag.Object{Kind: string(input.KindConfigMap), Namespace: cm.Namespace, Name: cm.Name}
	raw, ok := cm.Data["cert"]
	if !ok {
		d.Warn(obj, "invalid-configmap", "data.cert", "higress-https has no \"cert\" key; ignored")
		return &HTTPS{}
	}
	cfg := &HTTPS{}
	if err := yaml.UnmarshalStrict([]byte(raw), cfg); err != nil {
		d.Reject(obj, "invalid-configmap", "data.cert", "higress-https: %v; the whole ConfigMap is ignored", err)
		return &HTTPS{}
	}
	if err := cfg.validate(); err != nil {
		d.Reject(obj, "invalid-configmap", "data.cert", "higress-https: %v; the whole ConfigMap is ignored", err)
		return &HTTPS{}
	}
	d.Accept(obj)
	return cfg
}

func (h *HTTPS) validate() error {
	if h.RenewBeforeDays != 0 && (h.RenewBeforeDays < 1 || h.RenewBeforeDays > 89) {
		return fmt.Errorf("renewBeforeDays %d must be 1..89", h.RenewBeforeDays)
	}
	for i, c := range h.CredentialConfig {
		if c.TLSSecret == "" {
			return fmt.Errorf("credentialConfig[%d]: tlsSecret is required", i)
		}
		if len(c.Domains) == 0 {
			return fmt.Errorf("credentialConfig[%d]: domains is required", i)
		}
		switch c.TLSIssuer {
		case "":
		case "letsencrypt":
			if len(c.Domains) != 1 {
				return fmt.Errorf("credentialConfig[%d]: a letsencrypt entry must have exactly one domain", i)
			}
		default:
			return fmt.Errorf("credentialConfig[%d]: tlsIssuer %q is not supported (only letsencrypt)", i, c.TLSIssuer)
		}
	}
	return nil
}

// SecretFor returns the credentialConfig Secret for host, as
// namespace/name: the first entry with a domain covering the host wins, in
// list order, as Higress's MatchSecretNameByDomain does. Domains compare
// case-insensitively.
func (h *HTTPS) SecretFor(host, systemNamespace string) (input.NamespacedName, bool) {
	host = strings.ToLower(host)
	for _, c := range h.CredentialConfig {
		for _, d := range c.Domains {
			if matchRank(strings.ToLower(d), host) < 0 {
				continue
			}
			if ns, name, ok := strings.Cut(c.TLSSecret, "/"); ok {
				return input.NamespacedName{Namespace: ns, Name: name}, true
			}
			return input.NamespacedName{Namespace: systemNamespace, Name: c.TLSSecret}, true
		}
	}
	return input.NamespacedName{}, false
}

// matchRank scores how well domain covers host: -1 not at all. A wildcard covers the host itself when the host is the same
// wildcard, or any name under its suffix.
func matchRank(domain, host string) int {
	switch {
	case domain == host:
		return 1 << 20
	case domain == "*":
		return 0
	case strings.HasPrefix(domain, "*."):
		suffix := domain[1:]
		if strings.HasSuffix(host, suffix) && len(host) > len(suffix) {
			return len(suffix)
		}
	}
	return -1
}
