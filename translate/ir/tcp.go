package ir

import "github.com/hxds/hxds/translate/diag"

// Protocols of ports that proxy connections rather than HTTP requests.
const (
	// ProtocolTLS: TLS passthrough only; one chain per SNI (Listener.Passthrough).
	// An HTTPS port carries passthrough chains too, next to its servers.
	ProtocolTLS Protocol = "TLS"
	// ProtocolTCP: every connection goes through Listener.TCP.
	ProtocolTCP Protocol = "TCP"
)

// BlackHoleBackend is the destination of connections that must be refused:
// a cluster without endpoints (Istio's name), so the TCP proxy closes them.
// It stands for invalid backendRefs of TCPRoutes and TLSRoutes, which the
// Gateway API asks to reject in proportion to their weight.
const BlackHoleBackend = "BlackHoleCluster"

// TCPProxy is a filter chain whose connections are proxied byte for byte
// to weighted backends (TCPRoute, TLSRoute with passthrough).
type TCPProxy struct {
	// Name is the filter chain name: tcp.<port> or tls.<port>.<host>.
	Name string `json:"name,omitempty"`
	// Host is the SNI the chain matches (passthrough); "*" matches every
	// TLS client without a more specific chain. Empty for TCP.
	Host string `json:"host,omitempty"`
	// Destinations share connections by weight; BlackHoleBackend refuses its
	// share. Never empty: a route without backends has only BlackHoleBackend.
	Destinations []Destination `json:"destinations,omitempty"`
	// Certificate, when set, is the SDS name of the certificate the chain
	// terminates TLS with before proxying (TLSRoute on a listener in mode
	// Terminate); empty passes TLS through.
	Certificate string `json:"certificate,omitempty"`
	// Tunnel, when set, tunnels each connection through the destination,
	// an HTTP proxy, with CONNECT to this host:port; it may use Envoy's
	// %REQUESTED_SERVER_NAME% (the TLS SNI of the connection).
	Tunnel string `json:"tunnel,omitempty"`
	// Route is <ns>/<route> of the route served, Source the route object.
	Route  string      `json:"route,omitempty"`
	Source diag.Object `json:"source,omitempty"`
}

// UsesBlackHole reports whether some share of the connections is refused.
func (p *TCPProxy) UsesBlackHole() bool {
	for _, d := range p.Destinations {
		if d.Backend == BlackHoleBackend {
			return true
		}
	}
	return false
}
