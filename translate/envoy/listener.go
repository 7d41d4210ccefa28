package envoy

import (
	"fmt"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	tlsinspectorv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/hxds/hxds/translate/ir"
)

// adsSource is the config source of every dynamic reference: the ADS stream.
func adsSource() *corev3.ConfigSource {
	return &corev3.ConfigSource{
		ResourceApiVersion:    corev3.ApiVersion_V3,
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
	}
}

// rdsSource waits for routes without a deadline, as Istio gateways do, so a
// listener never starts serving with an empty route table.
func rdsSource() *corev3.ConfigSource {
	s := adsSource()
	s.InitialFetchTimeout = durationpb.New(0)
	return s
}

// mustAny packs m deterministically (map entries sorted): the cache
// versions resources by their bytes, so equal configs must encode equally.
func mustAny(m proto.Message) *anypb.Any {
	a := &anypb.Any{}
	if err := anypb.MarshalFrom(a, m, proto.MarshalOptions{Deterministic: true}); err != nil {
		// Only reachable with a nil or unregistered message: a programming error.
		panic(fmt.Sprintf("marshal %T: %v", m, err))
	}
	return a
}

func buildListener(l *ir.Listener, plugins []*ir.WasmPlugin) *listenerv3.Listener {
	out := &listenerv3.Listener{
		Name: l.Name,
		Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address:       l.Address,
			PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: l.Port},
		}}},
		// Istio's gateway listeners carry the traffic direction too.
		TrafficDirection: corev3.TrafficDirection_OUTBOUND,
	}
	statPrefix := "outbound_" + l.Name
	switch l.Protocol {
	case ir.ProtocolHTTP:
		out.FilterChains = []*listenerv3.FilterChain{{
			Filters: []*listenerv3.Filter{httpConnectionManager(statPrefix, l.Routes.Name, plugins)},
		}}
	case ir.ProtocolHTTPS, ir.ProtocolTLS:
		out.ListenerFilters = []*listenerv3.ListenerFilter{{
			Name:       wellknown.TlsInspector,
			ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: mustAny(&tlsinspectorv3.TlsInspector{})},
		}}
		for _, s := range l.Servers {
			out.FilterChains = append(out.FilterChains, tlsFilterChain(s, statPrefix, plugins))
		}
		for _, p := range l.Passthrough {
			out.FilterChains = append(out.FilterChains, passthroughFilterChain(p, statPrefix))
		}
	case ir.ProtocolTCP:
		if strings.Contains(l.TCP.Tunnel, "%REQUESTED_SERVER_NAME%") {
			// The tunnel target is the client's SNI: read it first.
			out.ListenerFilters = []*listenerv3.ListenerFilter{{
				Name:       wellknown.TlsInspector,
				ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: mustAny(&tlsinspectorv3.TlsInspector{})},
			}}
		}
		out.FilterChains = []*listenerv3.FilterChain{tcpFilterChain(l.TCP, statPrefix)}
	}
	return out
}

// tlsFilterChain matches the server's hosts by SNI. The "*" host matches no
// SNI list, so it also serves clients that send no SNI at all.
func tlsFilterChain(s *ir.TLSServer, statPrefix string, plugins []*ir.WasmPlugin) *listenerv3.FilterChain {
	var serverNames []string
	for _, h := range s.Hosts {
		if h != "*" {
			serverNames = append(serverNames, h)
		}
	}
	ctx := &tlsv3.DownstreamTlsContext{
		CommonTlsContext: &tlsv3.CommonTlsContext{
			AlpnProtocols: []string{"h2", "http/1.1"},
			TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{{
				Name: s.Certificate, SdsConfig: adsSource(),
			}},
		},
	}
	if s.MinVersion != "" || s.MaxVersion != "" || len(s.Ciphers) > 0 {
		ctx.CommonTlsContext.TlsParams = &tlsv3.TlsParameters{
			TlsMinimumProtocolVersion: tlsv3.TlsParameters_TlsProtocol(tlsv3.TlsParameters_TlsProtocol_value[s.MinVersion]),
			TlsMaximumProtocolVersion: tlsv3.TlsParameters_TlsProtocol(tlsv3.TlsParameters_TlsProtocol_value[s.MaxVersion]),
			CipherSuites:              s.Ciphers,
		}
	}
	switch {
	case s.RejectClients:
		// No certificate has the SHA-256 hash 00…00.
		ctx.RequireClientCertificate = wrapperspb.Bool(true)
		ctx.CommonTlsContext.ValidationContextType = &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
			VerifyCertificateHash: []string{strings.Repeat("00", 32)},
		}}
	case s.ClientCA != "" && s.ClientCertOptional:
		// Ask for a certificate, accept any (or none): the combined
		// context adds ACCEPT_UNTRUSTED to the CAs from SDS.
		ctx.RequireClientCertificate = wrapperspb.Bool(false)
		ctx.CommonTlsContext.ValidationContextType = &tlsv3.CommonTlsContext_CombinedValidationContext{CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
			DefaultValidationContext:         &tlsv3.CertificateValidationContext{TrustChainVerification: tlsv3.CertificateValidationContext_ACCEPT_UNTRUSTED},
			ValidationContextSdsSecretConfig: &tlsv3.SdsSecretConfig{Name: s.ClientCA, SdsConfig: adsSource()},
		}}
	case s.ClientCA != "":
		ctx.RequireClientCertificate = wrapperspb.Bool(true)
		ctx.CommonTlsContext.ValidationContextType = &tlsv3.CommonTlsContext_ValidationContextSdsSecretConfig{
			ValidationContextSdsSecretConfig: &tlsv3.SdsSecretConfig{Name: s.ClientCA, SdsConfig: adsSource()},
		}
	}
	fc := &listenerv3.FilterChain{
		Name:    s.Routes.Name,
		Filters: []*listenerv3.Filter{httpConnectionManager(statPrefix, s.Routes.Name, plugins)},
		TransportSocket: &corev3.TransportSocket{
			Name:       wellknown.TransportSocketTLS,
			ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(ctx)},
		},
	}
	if len(serverNames) > 0 {
		fc.FilterChainMatch = &listenerv3.FilterChainMatch{ServerNames: serverNames}
	}
	return fc
}

// httpConnectionManager is the gateway HCM: routes over RDS, the client
// address taken from the connection (a gateway is the edge), websocket
// upgrades allowed, normalized paths, router last.
func httpConnectionManager(statPrefix, routeConfig string, plugins []*ir.WasmPlugin) *listenerv3.Filter {
	hcm := &hcmv3.HttpConnectionManager{
		StatPrefix: statPrefix,
		CodecType:  hcmv3.HttpConnectionManager_AUTO,
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
			ConfigSource: rdsSource(), RouteConfigName: routeConfig,
		}},
		HttpFilters:                  gatewayHTTPFilters(plugins),
		UseRemoteAddress:             wrapperspb.Bool(true),
		NormalizePath:                wrapperspb.Bool(true),
		MergeSlashes:                 false,
		UpgradeConfigs:               []*hcmv3.HttpConnectionManager_UpgradeConfig{{UpgradeType: "websocket"}},
		PathWithEscapedSlashesAction: hcmv3.HttpConnectionManager_KEEP_UNCHANGED,
	}
	return &listenerv3.Filter{
		Name:       wellknown.HTTPConnectionManager,
		ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(hcm)},
	}
}

// routerConfig is encoded once: every HCM carries the same router config,
// and encoded protos are never modified after they are built.
var routerConfig = mustAny(&routerv3.Router{})

func routerFilter() *hcmv3.HttpFilter {
	return &hcmv3.HttpFilter{
		Name:       wellknown.Router,
		ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: routerConfig},
	}
}

// buildAPIListeners serves proxyless gRPC clients (grpc-go, grpc-java,
// grpc-js with the xds resolver). Such a client dialing xds:///<host> asks LDS
// for a listener named <host>; it gets an API listener whose HCM points at the
// gateway's route table for that host's port, so it sees exactly the routes
// and clusters an Envoy of the group sees. One listener per exact (non-wildcard)
// HTTP host: <host> for the lowest HTTP port, <host>:<port> for every port.
// The cache never sends API listeners to wildcard LDS subscriptions, so Envoys
// (which would reject them) never receive them.
func buildAPIListeners(gw *ir.Gateway) []*listenerv3.Listener {
	var out []*listenerv3.Listener
	seenBare := map[string]bool{}
	for _, l := range gw.Listeners {
		if l.Protocol != ir.ProtocolHTTP {
			continue
		}
		for _, vh := range l.Routes.VirtualHosts {
			if strings.Contains(vh.Host, "*") {
				continue
			}
			names := []string{fmt.Sprintf("%s:%d", vh.Host, l.Port)}
			if !seenBare[vh.Host] {
				seenBare[vh.Host] = true
				names = append(names, vh.Host)
			}
			for _, name := range names {
				hcm := &hcmv3.HttpConnectionManager{
					StatPrefix: "grpc_" + name,
					RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
						ConfigSource: adsSource(), RouteConfigName: l.Routes.Name,
					}},
					HttpFilters: []*hcmv3.HttpFilter{routerFilter()},
				}
				out = append(out, &listenerv3.Listener{
					Name:        name,
					ApiListener: &listenerv3.ApiListener{ApiListener: mustAny(hcm)},
				})
			}
		}
	}
	return out
}
