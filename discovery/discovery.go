// Package discovery turns service registries (the McpBridge's: Nacos,
// Consul, ZooKeeper, Eureka, DNS, static addresses) into a service catalog:
// registry hosts (higress-semantics §4.3) with their protocol and
// instances. One package per registry type implements Watcher and publishes
// what it sees through a Publisher; the Catalog merges the registries and
// hands changes to the endpoint path (instances → ClusterLoadAssignments,
// no translation) and to translation (a new host, or a host whose port,
// protocol, TLS or resolution changed, adds or changes a cluster).
package discovery

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/hxds/hxds/internal/api"
	"github.com/hxds/hxds/translate/input"
)

// Protocol is a registry service's protocol, as Higress reads it from the
// registry (instance metadata "protocol") or the McpBridge (static, dns).
type Protocol string

// Protocols.
const (
	ProtocolHTTP  Protocol = "HTTP"
	ProtocolHTTPS Protocol = "HTTPS"
	ProtocolHTTP2 Protocol = "HTTP2"
	ProtocolGRPC  Protocol = "GRPC"
	ProtocolGRPCS Protocol = "GRPCS"
	ProtocolTCP   Protocol = "TCP"
	ProtocolDubbo Protocol = "Dubbo"
)

// ParseProtocol reads a protocol name case-insensitively: empty is HTTP,
// triple/tri are gRPC (Higress's aliases); anything else is an error.
func ParseProtocol(s string) (Protocol, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "http":
		return ProtocolHTTP, nil
	case "https":
		return ProtocolHTTPS, nil
	case "http2", "h2c":
		return ProtocolHTTP2, nil
	case "grpc", "triple", "tri":
		return ProtocolGRPC, nil
	case "grpcs":
		return ProtocolGRPCS, nil
	case "tcp":
		return ProtocolTCP, nil
	case "dubbo":
		return ProtocolDubbo, nil
	}
	return "", fmt.Errorf("protocol %q is not supported (http, https, http2, grpc, grpcs, tcp, dubbo, triple)", s)
}

// HTTP2 says whether Envoy talks HTTP/2 to the service's instances.
func (p Protocol) HTTP2() bool {
	return p == ProtocolGRPC || p == ProtocolGRPCS || p == ProtocolHTTP2
}

// TLS says whether Envoy talks TLS to the service's instances.
func (p Protocol) TLS() bool { return p == ProtocolHTTPS || p == ProtocolGRPCS }

// Resolution is how Envoy finds a service's instances.
type Resolution int

const (
	// Static: instances are IP addresses, served over EDS.
	Static Resolution = iota
	// DNS: instances are host names Envoy resolves (a STRICT_DNS cluster).
	DNS
)

// Instance is one endpoint of a registry service (the type translation
// and the endpoint path read).
type Instance = input.RegistryEndpoint

// Service is one registry host and its instances.
type Service struct {
	// Host is the registry host (§4.3), e.g. "foo.DEFAULT-GROUP.public.nacos".
	Host string `json:"host"`
	// Port is the service (cluster) port: the registry's vport for the
	// host, else the first instance's port (static/dns: the McpBridge port).
	Port       uint32     `json:"port"`
	Protocol   Protocol   `json:"protocol"`
	SNI        string     `json:"sni,omitempty"`
	Resolution Resolution `json:"resolution,omitempty"`
	Instances  []Instance `json:"instances,omitempty"`
	// Registry is "<type>/<name>" of the registry it came from; the
	// Catalog sets it.
	Registry string `json:"registry,omitempty"`
}

// SortInstances orders instances by address then port, so that equal
// listings compare equal and encode identically.
func SortInstances(in []Instance) {
	slices.SortFunc(in, func(a, b Instance) int {
		if c := strings.Compare(a.Address, b.Address); c != 0 {
			return c
		}
		return int(a.Port) - int(b.Port)
	})
}

// Publisher receives one registry's view. Watchers call it from any
// goroutine; implementations are safe for concurrent use.
type Publisher interface {
	// Replace publishes the registry's whole listing: services missing
	// from it were deregistered.
	Replace(services []Service)
	// Update publishes one service; no instances means none right now.
	Update(svc Service)
	// Remove says a service was deregistered.
	Remove(host string)
}

// Watcher watches one registry and publishes what it sees.
type Watcher interface {
	// Run watches until ctx is done. It returns only then (nil) or when
	// the watcher cannot work at all (an error); a registry that is down
	// is retried, not returned.
	Run(ctx context.Context) error
	// Status is the watcher's live health.
	Status() Status
}

// Status is what /registry/watcherStatus and the metrics show of a watcher.
type Status struct {
	// Healthy: the last exchange with the registry succeeded (or, for
	// watch-based clients, the connection is up).
	Healthy bool `json:"healthy"`
	// Ready: a complete listing has been published at least once.
	Ready bool `json:"ready"`
	// LastSync is when the last complete listing or watch event was
	// received; LastError the last failure, if any since.
	LastSync  time.Time `json:"lastSync,omitempty"`
	LastError string    `json:"lastError,omitempty"`
	Errors    uint64    `json:"errors"`
}

// Config is one McpBridge registry with what it refers to resolved.
type Config struct {
	Registry api.RegistryConfig
	// Auth is read from the registry's authSecretName Secret.
	Auth Auth
}

// Auth holds the registry credentials of an authSecretName Secret (keys
// nacosUsername, nacosPassword, consulToken).
type Auth struct {
	NacosUsername, NacosPassword string
	ConsulToken                  string
}

// Factory creates the watcher of one registry type. It validates cfg and
// returns an error for a configuration that cannot work; it does not
// contact the registry (Run does).
type Factory func(cfg Config, pub Publisher, log *zap.Logger) (Watcher, error)

// Interval reads a refresh interval given in nanoseconds (the McpBridge
// unit): 0 means def; anything else is clamped to [min, max]. A user who
// writes 30 (meaning seconds) gets min, not a busy loop.
func Interval(ns int64, def, min, max time.Duration) time.Duration {
	if ns == 0 {
		return def
	}
	d := time.Duration(ns)
	if d < min {
		return min
	}
	if d > max {
		return max
	}
	return d
}

// Vport is the service port of host under the registry's vport setting:
// a per-service value (host compared case-insensitively), else the default,
// else fallback (the first instance's port).
func Vport(v *api.RegistryVport, host string, fallback uint32) uint32 {
	if v == nil {
		return fallback
	}
	for _, s := range v.Services {
		if strings.EqualFold(s.Name, host) && s.Value != 0 {
			return s.Value
		}
	}
	if v.Default != 0 {
		return v.Default
	}
	return fallback
}
