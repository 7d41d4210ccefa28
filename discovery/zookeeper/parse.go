package zookeeper

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/hxds/hxds/discovery"
)

// errSkip marks a registry entry that is valid but must not be published
// (a disabled or not-UP instance, a non-dubbo protocol URL).
var errSkip = errors.New("skipped")

// dubboDefaultWeight is Dubbo's own default provider weight: a provider
// without a weight parameter weighs as much as one with weight=100.
const dubboDefaultWeight = 100

// maxWeight bounds instance weights so that a hostile weight cannot make
// Envoy reject a locality whose weights overflow uint32.
const maxWeight = 10000

// parseDubboProvider reads one child of /dubbo/<iface>/providers: a
// URL-encoded provider URL, as Dubbo writes it
// (URL.encode(url.toFullString())), e.g.
// dubbo%3A%2F%2F10.0.0.1%3A20880%2Fcom.Foo%3Fversion%3D1.0.0%26group%3Dg.
// The host is built from the interface node's name (as Higress does), the
// version (default 0.0.0) and group query parameters; the instance
// metadata is every single-valued query parameter plus protocol=dubbo.
// Only dubbo:// URLs are published: Dubbo registers one URL per exported
// protocol (tri://, rest://) under the same interface, and mixing ports of
// different protocols into one host would send Dubbo frames to a Triple or
// REST port.
func parseDubboProvider(iface, node string) (string, discovery.Instance, error) {
	raw := node
	if dec, err := url.QueryUnescape(node); err == nil {
		raw = dec
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", discovery.Instance{}, fmt.Errorf("provider URL: %w", err)
	}
	if !strings.EqualFold(u.Scheme, "dubbo") {
		return "", discovery.Instance{}, fmt.Errorf("protocol %q is not dubbo: %w", u.Scheme, errSkip)
	}
	addr := u.Hostname()
	if addr == "" {
		return "", discovery.Instance{}, errors.New("provider URL has no address")
	}
	port, err := parsePort(u.Port())
	if err != nil {
		return "", discovery.Instance{}, fmt.Errorf("provider URL: %w", err)
	}
	// ParseQuery keeps every well-formed pair and reports the first bad
	// one; Dubbo does not escape parameter values, so a stray '%' must not
	// cost the whole provider.
	values, _ := url.ParseQuery(u.RawQuery)
	if v := values.Get("enabled"); strings.EqualFold(v, "false") {
		return "", discovery.Instance{}, fmt.Errorf("provider is disabled: %w", errSkip)
	}
	version := values.Get("version")
	if version == "" {
		version = "0.0.0"
	}
	host := "providers:" + iface + ":" + version + ":" + values.Get("group") + ".zookeeper"
	if err := checkHost(host); err != nil {
		return "", discovery.Instance{}, err
	}
	md := make(map[string]string, len(values)+1)
	for k, v := range values {
		if len(v) == 1 {
			md[k] = v[0]
		}
	}
	md["protocol"] = "dubbo"
	weight := uint32(dubboDefaultWeight)
	if w, err := strconv.ParseInt(values.Get("weight"), 10, 64); err == nil {
		weight = clampWeight(w)
	}
	return host, discovery.Instance{Address: addr, Port: port, Weight: weight, Metadata: md}, nil
}

// springInstance is the JSON Spring Cloud Zookeeper (Curator's
// ServiceInstance) stores in <root>/<service>/<id>. Only what hxds reads.
type springInstance struct {
	Address *string          `json:"address"`
	Port    *json.RawMessage `json:"port"`
	Enabled *bool            `json:"enabled"`
	Payload *struct {
		// Metadata is decoded loosely: Curator writes strings, but a
		// hand-written node with a number must not lose the instance.
		Metadata map[string]json.RawMessage `json:"metadata"`
	} `json:"payload"`
}

// springStatusKey is where Spring Cloud Zookeeper keeps an instance's
// status (ZookeeperServiceRegistry.setStatus); its load balancer only uses
// instances whose status is UP (or unset).
const springStatusKey = "instance_status"

// parseSpringInstance reads one Spring Cloud instance node. Instances that
// Curator marks disabled or whose instance_status is not UP are errSkip.
func parseSpringInstance(data []byte) (discovery.Instance, error) {
	var si springInstance
	if err := json.Unmarshal(data, &si); err != nil {
		return discovery.Instance{}, fmt.Errorf("instance JSON: %w", err)
	}
	if si.Address == nil || strings.TrimSpace(*si.Address) == "" {
		return discovery.Instance{}, errors.New("instance has no address")
	}
	addr := strings.TrimSpace(*si.Address)
	if strings.ContainsAny(addr, " \t\r\n/|") {
		return discovery.Instance{}, fmt.Errorf("instance address %q is not a host", addr)
	}
	if si.Port == nil {
		return discovery.Instance{}, errors.New("instance has no port")
	}
	port, err := parsePort(string(*si.Port))
	if err != nil {
		return discovery.Instance{}, fmt.Errorf("instance: %w", err)
	}
	if si.Enabled != nil && !*si.Enabled {
		return discovery.Instance{}, fmt.Errorf("instance is disabled: %w", errSkip)
	}
	var md map[string]string
	if si.Payload != nil && len(si.Payload.Metadata) > 0 {
		md = make(map[string]string, len(si.Payload.Metadata))
		for k, v := range si.Payload.Metadata {
			if s, ok := jsonScalar(v); ok {
				md[k] = s
			}
		}
	}
	if st, ok := md[springStatusKey]; ok && !strings.EqualFold(st, "UP") {
		return discovery.Instance{}, fmt.Errorf("instance status is %q: %w", st, errSkip)
	}
	if len(md) == 0 {
		md = nil
	}
	return discovery.Instance{Address: addr, Port: port, Weight: 1, Metadata: md}, nil
}

// jsonScalar renders a JSON string, number or boolean as metadata text.
func jsonScalar(v json.RawMessage) (string, bool) {
	if strings.TrimSpace(string(v)) == "null" {
		return "", false
	}
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s, true
	}
	t := strings.TrimSpace(string(v))
	if t == "true" || t == "false" {
		return t, true
	}
	var n json.Number
	if json.Unmarshal(v, &n) == nil {
		return n.String(), true
	}
	return "", false
}

// parsePort reads a port 1–65535.
func parsePort(s string) (uint32, error) {
	p, err := strconv.ParseUint(strings.TrimSpace(s), 10, 16)
	if err != nil || p == 0 {
		return 0, fmt.Errorf("port %q is not 1-65535", s)
	}
	return uint32(p), nil
}

func clampWeight(w int64) uint32 {
	switch {
	case w < 1:
		return 1
	case w > maxWeight:
		return maxWeight
	}
	return uint32(w)
}

// checkHost rejects hosts that cannot become part of a cluster name
// (outbound|<port>||<host>) or a route destination: registry node names
// and query parameters are arbitrary text.
func checkHost(h string) error {
	if h == "" || len(h) > 1024 {
		return fmt.Errorf("host %q: empty or too long", h)
	}
	for _, r := range h {
		if r <= ' ' || r == '|' || r == '/' || r == 0x7f || r == '\uFFFD' {
			return fmt.Errorf("host %q contains %q", h, r)
		}
	}
	return nil
}

// springHost is the host of Spring Cloud service svc under a root whose
// host suffix is suffix ("" for the root "/").
func springHost(svc, suffix string) string {
	if suffix == "" {
		return svc + ".zookeeper"
	}
	return svc + "." + suffix + ".zookeeper"
}

// rootSuffix is the host part of a Spring Cloud root: without the leading
// slash, '/' → '-' ("/services" → "services", "/" → "").
func rootSuffix(root string) string {
	return strings.ReplaceAll(strings.TrimPrefix(root, "/"), "/", "-")
}

// resolution is DNS when any instance address is not an IP.
func resolution(in []discovery.Instance) discovery.Resolution {
	for _, i := range in {
		if net.ParseIP(i.Address) == nil {
			return discovery.DNS
		}
	}
	return discovery.Static
}
