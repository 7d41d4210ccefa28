package envoy_test

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"
)

// loadBootstrap parses an Envoy bootstrap YAML file strictly (unknown fields
// are errors, Any types must resolve) and runs the proto validation rules
// Envoy itself applies.
func loadBootstrap(t *testing.T, path string) *bootstrapv3.Bootstrap {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	js, err := yaml.YAMLToJSON(raw)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	bs := &bootstrapv3.Bootstrap{}
	if err := protojson.Unmarshal(js, bs); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if err := bs.ValidateAll(); err != nil {
		t.Fatalf("%s: invalid bootstrap: %v", path, err)
	}
	return bs
}

func TestBootstraps(t *testing.T) {
	for _, tc := range []struct {
		file    string
		apiType corev3.ApiConfigSource_ApiType
	}{
		{"bootstrap.yaml", corev3.ApiConfigSource_GRPC},
		{"bootstrap-delta.yaml", corev3.ApiConfigSource_DELTA_GRPC},
	} {
		t.Run(tc.file, func(t *testing.T) {
			bs := loadBootstrap(t, tc.file)

			if got := bs.GetNode().GetCluster(); got != "higress-gateway" {
				t.Errorf("node.cluster = %q, want higress-gateway", got)
			}
			if got := bs.GetNode().GetId(); got != "envoy-1" {
				t.Errorf("node.id = %q, want envoy-1", got)
			}

			dr := bs.GetDynamicResources()
			ads := dr.GetAdsConfig()
			if ads.GetApiType() != tc.apiType {
				t.Errorf("ads_config.api_type = %v, want %v", ads.GetApiType(), tc.apiType)
			}
			if ads.GetTransportApiVersion() != corev3.ApiVersion_V3 {
				t.Errorf("ads_config.transport_api_version = %v, want V3", ads.GetTransportApiVersion())
			}
			if !ads.GetSetNodeOnFirstMessageOnly() {
				t.Error("ads_config.set_node_on_first_message_only is false")
			}
			if gs := ads.GetGrpcServices(); len(gs) != 1 || gs[0].GetEnvoyGrpc().GetClusterName() != "xds_cluster" {
				t.Errorf("ads_config.grpc_services = %v, want one envoy_grpc to xds_cluster", gs)
			}
			for name, cs := range map[string]*corev3.ConfigSource{"lds_config": dr.GetLdsConfig(), "cds_config": dr.GetCdsConfig()} {
				if cs.GetAds() == nil || cs.GetResourceApiVersion() != corev3.ApiVersion_V3 {
					t.Errorf("%s = %v, want {ads: {}, resource_api_version: V3}", name, cs)
				}
			}

			clusters := bs.GetStaticResources().GetClusters()
			if len(clusters) != 1 || clusters[0].GetName() != "xds_cluster" {
				t.Fatalf("static clusters = %v, want only xds_cluster", clusters)
			}
			checkXDSCluster(t, clusters[0])

			admin := bs.GetAdmin().GetAddress().GetSocketAddress()
			if admin.GetAddress() != "127.0.0.1" || admin.GetPortValue() != 9901 {
				t.Errorf("admin address = %v, want 127.0.0.1:9901", admin)
			}
		})
	}
}

func checkXDSCluster(t *testing.T, c *clusterv3.Cluster) {
	t.Helper()
	if c.GetType() != clusterv3.Cluster_STATIC {
		t.Errorf("xds_cluster type = %v, want STATIC", c.GetType())
	}
	eps := c.GetLoadAssignment().GetEndpoints()
	if len(eps) != 1 || len(eps[0].GetLbEndpoints()) != 1 {
		t.Fatalf("xds_cluster endpoints = %v, want exactly one", eps)
	}
	sa := eps[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress()
	if sa.GetAddress() != "127.0.0.1" || sa.GetPortValue() != 15010 {
		t.Errorf("xds_cluster endpoint = %v, want 127.0.0.1:15010", sa)
	}
	// gRPC needs HTTP/2 upstream; without it Envoy speaks HTTP/1.1 to hxds.
	anyOpts, ok := c.GetTypedExtensionProtocolOptions()["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
	if !ok {
		t.Fatal("xds_cluster has no envoy.extensions.upstreams.http.v3.HttpProtocolOptions")
	}
	opts := &upstreamhttpv3.HttpProtocolOptions{}
	if err := anyOpts.UnmarshalTo(opts); err != nil {
		t.Fatalf("xds_cluster protocol options: %v", err)
	}
	if opts.GetExplicitHttpConfig().GetHttp2ProtocolOptions() == nil {
		t.Error("xds_cluster does not use explicit_http_config.http2_protocol_options")
	}
}

// The delta bootstrap must be the SotW one with only api_type changed.
func TestDeltaBootstrapMatchesSotW(t *testing.T) {
	sotw := loadBootstrap(t, "bootstrap.yaml")
	delta := loadBootstrap(t, "bootstrap-delta.yaml")
	delta.GetDynamicResources().GetAdsConfig().ApiType = corev3.ApiConfigSource_GRPC
	if !proto.Equal(sotw, delta) {
		t.Errorf("bootstrap-delta.yaml differs from bootstrap.yaml beyond api_type:\nsotw:  %v\ndelta: %v", sotw, delta)
	}
}

func TestGRPCBootstrap(t *testing.T) {
	raw, err := os.ReadFile("grpc-bootstrap.json")
	if err != nil {
		t.Fatal(err)
	}
	// gRFC A27 bootstrap format shared by grpc-go, grpc-java and grpc-js.
	var bs struct {
		XDSServers []struct {
			ServerURI    string `json:"server_uri"`
			ChannelCreds []struct {
				Type string `json:"type"`
			} `json:"channel_creds"`
			ServerFeatures []string `json:"server_features"`
		} `json:"xds_servers"`
		Node struct {
			ID       string `json:"id"`
			Cluster  string `json:"cluster"`
			Locality struct {
				Zone string `json:"zone"`
			} `json:"locality"`
		} `json:"node"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&bs); err != nil {
		t.Fatalf("grpc-bootstrap.json: %v", err)
	}
	if len(bs.XDSServers) != 1 {
		t.Fatalf("xds_servers has %d entries, want 1", len(bs.XDSServers))
	}
	s := bs.XDSServers[0]
	if s.ServerURI != "127.0.0.1:15010" {
		t.Errorf("server_uri = %q, want 127.0.0.1:15010", s.ServerURI)
	}
	if len(s.ChannelCreds) != 1 || s.ChannelCreds[0].Type != "insecure" {
		t.Errorf("channel_creds = %+v, want [{type: insecure}]", s.ChannelCreds)
	}
	if len(s.ServerFeatures) != 1 || s.ServerFeatures[0] != "xds_v3" {
		t.Errorf("server_features = %v, want [xds_v3]", s.ServerFeatures)
	}
	if bs.Node.ID == "" || bs.Node.Cluster != "higress-gateway" {
		t.Errorf("node = %+v, want an id and cluster higress-gateway", bs.Node)
	}
}
