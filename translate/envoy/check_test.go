package envoy_test

import (
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
	"sigs.k8s.io/yaml"

	"os"

	"github.com/hxds/hxds/translate/envoy"
	"github.com/hxds/hxds/translate/ir"
)

func httpFixture(t *testing.T) map[string]map[string]proto.Message {
	t.Helper()
	raw, err := os.ReadFile("testdata/http.in.yaml")
	if err != nil {
		t.Fatal(err)
	}
	gw := &ir.Gateway{}
	if err := yaml.UnmarshalStrict(raw, gw); err != nil {
		t.Fatal(err)
	}
	res := envoy.Build(gw)
	return res.AllByType(nil)
}

// TestCheckCatches breaks a valid configuration one way at a time and
// expects Check to name the problem.
func TestCheckCatches(t *testing.T) {
	if err := envoy.Check(httpFixture(t)); err != nil {
		t.Fatalf("fixture must be valid: %v", err)
	}
	hcmOf := func(l *listenerv3.Listener) *hcmv3.HttpConnectionManager {
		h := &hcmv3.HttpConnectionManager{}
		if err := l.FilterChains[0].Filters[0].GetTypedConfig().UnmarshalTo(h); err != nil {
			t.Fatal(err)
		}
		return h
	}
	setHCM := func(l *listenerv3.Listener, h *hcmv3.HttpConnectionManager) {
		a, err := anypb.New(h)
		if err != nil {
			t.Fatal(err)
		}
		l.FilterChains[0].Filters[0].ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: a}
	}
	cases := []struct {
		name   string
		break_ func(m map[string]map[string]proto.Message)
		want   string
	}{
		{"missing cluster", func(m map[string]map[string]proto.Message) {
			delete(m[resourcev3.ClusterType], "outbound|8080||canary.default.svc.cluster.local")
		}, `cluster "outbound|8080||canary.default.svc.cluster.local" is not served`},
		{"missing route config", func(m map[string]map[string]proto.Message) {
			delete(m[resourcev3.RouteType], "http.80")
		}, `RDS route config "http.80" is not served`},
		{"missing endpoints", func(m map[string]map[string]proto.Message) {
			delete(m[resourcev3.EndpointType], "outbound|80||svc.default.svc.cluster.local")
		}, `EDS resource "outbound|80||svc.default.svc.cluster.local" is not served`},
		{"router not last", func(m map[string]map[string]proto.Message) {
			l := m[resourcev3.ListenerType]["0.0.0.0_80"].(*listenerv3.Listener)
			h := hcmOf(l)
			h.HttpFilters = append(h.HttpFilters, &hcmv3.HttpFilter{Name: "envoy.filters.http.cors"})
			setHCM(l, h)
		}, "router must be the last HTTP filter"},
		{"duplicate domain", func(m map[string]map[string]proto.Message) {
			rc := m[resourcev3.RouteType]["http.80"].(*routev3.RouteConfiguration)
			rc.VirtualHosts[1].Domains = append(rc.VirtualHosts[1].Domains, "foo.example.com")
		}, `domain "foo.example.com" is in virtual hosts`},
		{"invalid resource", func(m map[string]map[string]proto.Message) {
			c := m[resourcev3.ClusterType]["outbound|80||svc.default.svc.cluster.local"].(*clusterv3.Cluster)
			c.Name = ""
		}, "Name: value length must be at least 1"},
		{"invalid typed config", func(m map[string]map[string]proto.Message) {
			l := m[resourcev3.ListenerType]["0.0.0.0_80"].(*listenerv3.Listener)
			h := hcmOf(l)
			h.StatPrefix = ""
			setHCM(l, h)
		}, "StatPrefix"},
		{"non-Envoy typed config", func(m map[string]map[string]proto.Message) {
			l := m[resourcev3.ListenerType]["0.0.0.0_80"].(*listenerv3.Listener)
			a, _ := anypb.New(&structpb.Struct{})
			l.FilterChains[0].Filters[0].ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: a}
		}, "is not a stock Envoy type"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := httpFixture(t)
			tc.break_(m)
			err := envoy.Check(m)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Check() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
