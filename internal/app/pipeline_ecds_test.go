package app_test

import (
	"testing"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/hxds/hxds/internal/api"
	"github.com/hxds/hxds/internal/app"
	"github.com/hxds/hxds/internal/source/file"
	"github.com/hxds/hxds/translate/envoy"
	"github.com/hxds/hxds/translate/input"
)

// TestPipelinePublishesECDS: Wasm plugins reach the cache as extension
// configs, and a plugin configuration change re-versions ECDS only.
func TestPipelinePublishesECDS(t *testing.T) {
	loaded, err := file.LoadPaths("../../translate/wasm/testdata/plugins.in.yaml")
	if err != nil {
		t.Fatal(err)
	}
	snap := loaded.Snapshot()
	opts := input.DefaultOptions()
	p := app.NewPipeline(opts, func() envoy.ServiceSlices { return envoy.IndexSlices(snap.EndpointSlices) }, prometheus.NewRegistry(), zap.NewNop())
	if _, err := p.Rebuild(snap); err != nil {
		t.Fatal(err)
	}
	g := opts.Group
	if n := len(p.Cache.Entries(g, resourcev3.ExtensionConfigType)); n != 7 {
		t.Fatalf("%d extension configs served, want 7", n)
	}
	versions := map[string]string{}
	for _, typ := range []string{resourcev3.ListenerType, resourcev3.RouteType, resourcev3.ClusterType, resourcev3.ExtensionConfigType} {
		versions[typ] = p.Cache.Version(g, typ)
	}

	key := input.NamespacedName{Namespace: opts.SystemNamespace, Name: "waf"}
	changed := snap.WasmPlugins[key].DeepCopyObject().(*api.WasmPlugin)
	changed.Spec.PluginConfig = map[string]any{"rules": []any{"deny-all"}}
	snap.WasmPlugins[key] = changed
	if _, err := p.Rebuild(snap); err != nil {
		t.Fatal(err)
	}
	for typ, v := range versions {
		changed := p.Cache.Version(g, typ) != v
		if changed != (typ == resourcev3.ExtensionConfigType) {
			t.Errorf("%s: version changed = %v", typ, changed)
		}
	}
}
