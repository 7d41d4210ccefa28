package envoy_test

import (
	"os"
	"strings"
	"testing"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"sigs.k8s.io/yaml"

	"github.com/hxds/hxds/translate/envoy"
	"github.com/hxds/hxds/translate/ir"
)

// Check resolves the clusters of tcp_proxy filters, including the black
// hole, and rejects a passthrough chain that duplicates another's match.
func TestCheckTCPProxy(t *testing.T) {
	load := func() *ir.Gateway {
		raw, err := os.ReadFile("testdata/tcp.in.yaml")
		if err != nil {
			t.Fatal(err)
		}
		gw := &ir.Gateway{}
		if err := yaml.UnmarshalStrict(raw, gw); err != nil {
			t.Fatal(err)
		}
		return gw
	}
	all := envoy.Build(load()).AllByType(nil)
	if err := envoy.Check(all); err != nil {
		t.Fatalf("valid TCP resources fail: %v", err)
	}
	delete(all[resourcev3.ClusterType], ir.BlackHoleBackend)
	if err := envoy.Check(all); err == nil || !strings.Contains(err.Error(), `tcp_proxy cluster "BlackHoleCluster" is not served`) {
		t.Errorf("missing tcp_proxy cluster: got %v", err)
	}

	gw := load()
	dup := *gw.Listeners[1].Passthrough[0]
	dup.Name = "tls.9443.dup"
	gw.Listeners[1].Passthrough = append(gw.Listeners[1].Passthrough, &dup)
	if err := envoy.Check(envoy.Build(gw).AllByType(nil)); err == nil || !strings.Contains(err.Error(), "have the same match") {
		t.Errorf("duplicate SNI chains: got %v", err)
	}
}
