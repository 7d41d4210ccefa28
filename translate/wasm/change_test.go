package wasm_test

import (
	"encoding/json"
	"strings"

	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	wasmfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/hxds/hxds/internal/api"
	"github.com/hxds/hxds/translate"
	"github.com/hxds/hxds/translate/envoy"
	"github.com/hxds/hxds/translate/input"
)

// TestConfigChangeTouchesOnlyECDS: the HCM references a plugin by name, so
// changing its configuration, module or environment changes its ECDS
// resource and nothing else (a listener change would drain connections).
func TestConfigChangeTouchesOnlyECDS(t *testing.T) {
	opts := input.DefaultOptions()
	snap := load(t, "testdata/plugins.in.yaml")
	before := translate.Translate(snap, opts).Groups[opts.Group].ByType()

	key := input.NamespacedName{Namespace: "higress-system", Name: "basic-auth"}
	changed := snap.WasmPlugins[key].DeepCopyObject().(*api.WasmPlugin)
	changed.Spec.DefaultConfig["global_auth"] = true
	changed.Spec.MatchRules = changed.Spec.MatchRules[:1]
	changed.Spec.URL = "oci://registry.example/plugins/basic-auth:1.0.1"
	changed.ResourceVersion = "43"
	snap.WasmPlugins[key] = changed
	after := translate.Translate(snap, opts).Groups[opts.Group].ByType()

	for typeURL, resources := range before {
		for name, m := range resources {
			same := proto.Equal(m, after[typeURL][name])
			wantChange := name == "higress-system.basic-auth"
			if same == wantChange {
				t.Errorf("%s %q: changed=%v, want %v", typeURL, name, !same, wantChange)
			}
		}
		if len(after[typeURL]) != len(resources) {
			t.Errorf("%s: %d resources, want %d", typeURL, len(after[typeURL]), len(resources))
		}
	}
}

// TestInputNotModified: translation never writes into the snapshot's
// plugins (configs are copied before _rules_ and templates are applied).
func TestInputNotModified(t *testing.T) {
	opts := input.DefaultOptions()
	snap := load(t, "testdata/plugins.in.yaml")
	orig := map[input.NamespacedName]*api.WasmPlugin{}
	for k, p := range snap.WasmPlugins {
		orig[k] = p.DeepCopyObject().(*api.WasmPlugin)
	}
	first := translate.Translate(snap, opts).Groups[opts.Group].ByType()
	second := translate.Translate(snap, opts).Groups[opts.Group].ByType()
	for k, p := range snap.WasmPlugins {
		a := jsonOf(t, p)
		if b := jsonOf(t, orig[k]); a != b {
			t.Errorf("%s modified by translation:\n%s\nwas\n%s", k, a, b)
		}
	}
	for typeURL, resources := range first {
		for name, m := range resources {
			if !proto.Equal(m, second[typeURL][name]) {
				t.Errorf("%s %q differs between two translations", typeURL, name)
			}
		}
	}
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestCheckECDSReferences: Check fails a listener whose config_discovery
// names an ECDS resource that is not served, and a Wasm module fetched
// through a cluster that is not served (the placeholder "_" is allowed).
func TestCheckECDSReferences(t *testing.T) {
	opts := input.DefaultOptions()
	snap := load(t, "testdata/plugins.in.yaml")
	group := translate.Translate(snap, opts).Groups[opts.Group]

	byType := group.AllByType(envoy.IndexSlices(snap.EndpointSlices))
	delete(byType[resourcev3.ExtensionConfigType], "higress-system.waf")
	if err := envoy.Check(byType); err == nil || !strings.Contains(err.Error(), `ECDS extension config "higress-system.waf" is not served`) {
		t.Errorf("missing ECDS resource: Check() = %v", err)
	}

	byType = group.AllByType(envoy.IndexSlices(snap.EndpointSlices))
	tec := proto.Clone(byType[resourcev3.ExtensionConfigType]["higress-system.waf"]).(*corev3.TypedExtensionConfig)
	w := &wasmfilterv3.Wasm{}
	if err := tec.TypedConfig.UnmarshalTo(w); err != nil {
		t.Fatal(err)
	}
	w.Config.GetVmConfig().GetCode().GetRemote().HttpUri.HttpUpstreamType = &corev3.HttpUri_Cluster{Cluster: "nowhere"}
	tec.TypedConfig, _ = anypb.New(w)
	byType[resourcev3.ExtensionConfigType]["higress-system.waf"] = tec
	if err := envoy.Check(byType); err == nil || !strings.Contains(err.Error(), `remote code cluster "nowhere" is not served`) {
		t.Errorf("unserved code cluster: Check() = %v", err)
	}
}
