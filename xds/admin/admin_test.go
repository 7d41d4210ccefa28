package admin_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	wasmfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	_ "github.com/hxds/hxds/internal/testutil"
	"github.com/hxds/hxds/translate/diag"
	"github.com/hxds/hxds/xds/admin"
	"github.com/hxds/hxds/xds/cache"
	"github.com/hxds/hxds/xds/server"
)

func fixture(t *testing.T) (*httptest.Server, *atomic.Bool) {
	t.Helper()
	c := cache.New(cache.Options{DefaultGroup: "gw"})
	set := func(typeURL string, m map[string]proto.Message) {
		if _, err := c.SetResources("gw", typeURL, m); err != nil {
			t.Fatal(err)
		}
	}
	set(resourcev3.ClusterType, map[string]proto.Message{"c1": &clusterv3.Cluster{Name: "c1"}})
	set(resourcev3.EndpointType, map[string]proto.Message{"c1": &endpointv3.ClusterLoadAssignment{ClusterName: "c1"}})
	set(resourcev3.SecretType, map[string]proto.Message{"s1": &tlsv3.Secret{Name: "s1", Type: &tlsv3.Secret_TlsCertificate{
		TlsCertificate: &tlsv3.TlsCertificate{PrivateKey: &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: "SECRET-KEY"}}},
	}}})
	d := diag.NewSet()
	d.Accept(diag.Object{Kind: "Service", Namespace: "ns", Name: "ok"})
	d.Reject(diag.Object{Kind: "Ingress", Namespace: "ns", Name: "bad", File: "a.yaml", Doc: 2}, "parse-error", "spec", "broken")
	d.Ignore(diag.Object{Kind: "Ingress", Namespace: "ns", Name: "other"}, "ignored-class", "class nginx")
	ready := &atomic.Bool{}
	srv := httptest.NewServer(admin.Handler(admin.Deps{
		Ready: ready.Load, Dump: c, DefaultGroup: "gw",
		Connections: func() []server.Connection { return []server.Connection{{StreamID: 3, NodeID: "envoy-1", Group: "gw"}} },
		Status:      d.List, Gatherer: prometheus.NewRegistry(), Log: zap.NewNop(),
		GatewayAPI: func() any { return map[string]any{"gateways": []string{"infra/gw"}} },
	}))
	t.Cleanup(srv.Close)
	return srv, ready
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestReadyAndHealth(t *testing.T) {
	srv, ready := fixture(t)
	if code, _ := get(t, srv.URL+"/ready"); code != http.StatusServiceUnavailable {
		t.Fatalf("/ready before the first snapshot = %d", code)
	}
	ready.Store(true)
	if code, _ := get(t, srv.URL+"/ready"); code != http.StatusOK {
		t.Fatalf("/ready = %d", code)
	}
	if code, _ := get(t, srv.URL+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d", code)
	}
	if code, body := get(t, srv.URL+"/debug/pprof/"); code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Fatalf("/debug/pprof/ = %d", code)
	}
	if code, body := get(t, srv.URL+"/debug/gatewayapi"); code != http.StatusOK || !strings.Contains(body, `"gateways"`) {
		t.Fatalf("/debug/gatewayapi = %d %s", code, body)
	}
}

func TestConfigDump(t *testing.T) {
	srv, _ := fixture(t)
	for _, tc := range []struct {
		query   string
		configs int
	}{{"", 4}, {"?include_eds", 5}, {"?include_eds=true&group=gw", 5}, {"?include_eds=false", 4}} {
		code, body := get(t, srv.URL+"/debug/config_dump"+tc.query)
		if code != http.StatusOK {
			t.Fatalf("%s: status %d", tc.query, code)
		}
		cd := &adminv3.ConfigDump{}
		if err := protojson.Unmarshal([]byte(body), cd); err != nil {
			t.Fatalf("%s: not a ConfigDump: %v", tc.query, err)
		}
		if len(cd.Configs) != tc.configs {
			t.Fatalf("%s: %d configs, want %d", tc.query, len(cd.Configs), tc.configs)
		}
		if strings.Contains(body, "SECRET-KEY") || !strings.Contains(body, "[redacted]") {
			t.Fatalf("%s: private key not redacted", tc.query)
		}
		if !strings.Contains(body, `"dynamic_active_clusters"`) {
			t.Fatalf("%s: proto field names expected", tc.query)
		}
	}
	// Another group is empty, not an error.
	_, body := get(t, srv.URL+"/debug/config_dump?group=nobody")
	if strings.Contains(body, `"c1"`) {
		t.Fatal("group=nobody shows gw's clusters")
	}
}

func TestStatusAndConnections(t *testing.T) {
	srv, _ := fixture(t)
	var st struct {
		Objects, Accepted, Rejected, Ignored int
		Status                               []diag.Status
	}
	_, body := get(t, srv.URL+"/debug/status")
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if st.Objects != 3 || st.Accepted != 1 || st.Rejected != 1 || st.Ignored != 1 {
		t.Fatalf("status summary = %+v", st)
	}
	_, body = get(t, srv.URL+"/debug/status?problems")
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Status) != 2 || st.Status[0].Object.File != "a.yaml" || st.Status[0].Findings[0].Reason != "parse-error" {
		t.Fatalf("problems = %+v", st.Status)
	}
	_, body = get(t, srv.URL+"/debug/connections")
	var conns []server.Connection
	if err := json.Unmarshal([]byte(body), &conns); err != nil || len(conns) != 1 || conns[0].NodeID != "envoy-1" {
		t.Fatalf("connections = %s (%v)", body, err)
	}
}

// TestConfigDumpECDS: extension configs are dumped (ecds_filters) with the
// Wasm image pull secret redacted.
func TestConfigDumpECDS(t *testing.T) {
	c := cache.New(cache.Options{DefaultGroup: "gw"})
	w, err := anypb.New(&wasmfilterv3.Wasm{Config: &wasmv3.PluginConfig{Name: "ns.p", Vm: &wasmv3.PluginConfig_VmConfig{VmConfig: &wasmv3.VmConfig{
		Runtime: "envoy.wasm.runtime.v8",
		EnvironmentVariables: &wasmv3.EnvironmentVariables{KeyValues: map[string]string{
			"ISTIO_META_WASM_IMAGE_PULL_SECRET": "DOCKER-AUTH", "MODE": "x",
		}},
	}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetResources("gw", resourcev3.ExtensionConfigType, map[string]proto.Message{
		"ns.p": &corev3.TypedExtensionConfig{Name: "ns.p", TypedConfig: w},
	}); err != nil {
		t.Fatal(err)
	}
	cd, err := admin.ConfigDump(c, "gw", false)
	if err != nil {
		t.Fatal(err)
	}
	b, err := admin.MarshalConfigDump(cd)
	if err != nil {
		t.Fatal(err)
	}
	body := string(b)
	if !strings.Contains(body, `"ecds_filters"`) || !strings.Contains(body, `"ns.p"`) || !strings.Contains(body, `"MODE"`) {
		t.Fatalf("ECDS resource not dumped:\n%s", body)
	}
	if strings.Contains(body, "DOCKER-AUTH") || !strings.Contains(body, "[redacted]") {
		t.Fatalf("pull secret not redacted:\n%s", body)
	}
}
