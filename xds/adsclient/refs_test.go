package adsclient

import (
	"slices"
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"google.golang.org/protobuf/types/known/anypb"
)

func names(r refs, typeURL string) []string { return sortedNames(r[typeURL]) }

func TestListenerRefs(t *testing.T) {
	pathSource := &corev3.ConfigSource{ConfigSourceSpecifier: &corev3.ConfigSource_PathConfigSource{PathConfigSource: &corev3.PathConfigSource{Path: "/etc/x"}}}
	self := &corev3.ConfigSource{ConfigSourceSpecifier: &corev3.ConfigSource_Self{Self: &corev3.SelfConfigSource{}}}
	hcm := &hcmv3.HttpConnectionManager{
		StatPrefix:     "x",
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{ConfigSource: self, RouteConfigName: "r-self"}},
		HttpFilters: []*hcmv3.HttpFilter{
			{Name: "wasm-a", ConfigType: &hcmv3.HttpFilter_ConfigDiscovery{ConfigDiscovery: &corev3.ExtensionConfigSource{ConfigSource: ads()}}},
			{Name: "wasm-file", ConfigType: &hcmv3.HttpFilter_ConfigDiscovery{ConfigDiscovery: &corev3.ExtensionConfigSource{ConfigSource: pathSource}}},
		},
	}
	fileRDS := &hcmv3.HttpConnectionManager{
		StatPrefix:     "y",
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{ConfigSource: pathSource, RouteConfigName: "r-file"}},
	}
	tls := &tlsv3.DownstreamTlsContext{
		CommonTlsContext: &tlsv3.CommonTlsContext{
			TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{
				{Name: "cert-ads", SdsConfig: ads()},
				{Name: "cert-static"}, // no sds_config: a bootstrap secret
			},
			ValidationContextType: &tlsv3.CommonTlsContext_CombinedValidationContext{CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
				ValidationContextSdsSecretConfig: &tlsv3.SdsSecretConfig{Name: "ca-ads", SdsConfig: ads()},
			}},
		},
		SessionTicketKeysType: &tlsv3.DownstreamTlsContext_SessionTicketKeysSdsSecretConfig{SessionTicketKeysSdsSecretConfig: &tlsv3.SdsSecretConfig{Name: "tickets", SdsConfig: ads()}},
	}
	l := &listenerv3.Listener{
		Name: "l",
		FilterChains: []*listenerv3.FilterChain{{
			Filters: []*listenerv3.Filter{
				{Name: "some.other.filter", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, &corev3.Node{})}},
				{Name: wellknown.HTTPConnectionManager, ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, hcm)}},
			},
			TransportSocket: &corev3.TransportSocket{Name: "tls", ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(t, tls)}},
		}},
		DefaultFilterChain: &listenerv3.FilterChain{Filters: []*listenerv3.Filter{
			hcmFilter(t, "r-default"),
			{Name: wellknown.HTTPConnectionManager, ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, fileRDS)}},
		}},
	}
	rf, err := resourceRefs(l)
	if err != nil {
		t.Fatal(err)
	}
	eqStrings(t, "RDS", names(rf, rds), []string{"r-default", "r-self"})
	eqStrings(t, "SDS", names(rf, sds), []string{"ca-ads", "cert-ads", "tickets"})
	eqStrings(t, "ECDS", names(rf, ecds), []string{"wasm-a"})

	broken := &listenerv3.Listener{Name: "b", FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{{
		Name: wellknown.HTTPConnectionManager, ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: &anypb.Any{TypeUrl: hcmTypeURL, Value: []byte{0xff}}},
	}}}}}
	if _, err := resourceRefs(broken); err == nil || !strings.Contains(err.Error(), `listener "b"`) {
		t.Errorf("undecodable HCM: err = %v", err)
	}
}

func TestClusterRefs(t *testing.T) {
	up := &tlsv3.UpstreamTlsContext{CommonTlsContext: &tlsv3.CommonTlsContext{
		ValidationContextType: &tlsv3.CommonTlsContext_ValidationContextSdsSecretConfig{ValidationContextSdsSecretConfig: &tlsv3.SdsSecretConfig{Name: "ca", SdsConfig: ads()}},
	}}
	c := edsCluster("c", "")
	c.TransportSocketMatches = []*clusterv3.Cluster_TransportSocketMatch{{
		Name:            "tls",
		TransportSocket: &corev3.TransportSocket{Name: "tls", ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(t, up)}},
	}}
	rf, err := resourceRefs(c)
	if err != nil {
		t.Fatal(err)
	}
	eqStrings(t, "EDS", names(rf, eds), []string{"c"})
	eqStrings(t, "SDS", names(rf, sds), []string{"ca"})

	static := staticCluster("s")
	if rf, _ := resourceRefs(static); len(rf) != 0 {
		t.Errorf("static cluster references %v", rf)
	}
	notADS := edsCluster("n", "svc")
	notADS.EdsClusterConfig.EdsConfig = &corev3.ConfigSource{ConfigSourceSpecifier: &corev3.ConfigSource_PathConfigSource{PathConfigSource: &corev3.PathConfigSource{Path: "/x"}}}
	if rf, _ := resourceRefs(notADS); !slices.Equal(names(rf, eds), nil) {
		t.Errorf("EDS from a file is not fetched over ADS, got %v", names(rf, eds))
	}
}
