package wasm_test

import (
	"encoding/json"
	"testing"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"

	"github.com/hxds/hxds/internal/source/file"
	"github.com/hxds/hxds/internal/testutil"
	"github.com/hxds/hxds/translate"
	"github.com/hxds/hxds/translate/diag"
	"github.com/hxds/hxds/translate/envoy"
	"github.com/hxds/hxds/translate/input"
)

// TestGolden translates each testdata/<case>.in.yaml and compares the ECDS
// resources, the HTTP filter chain of every HCM (plugin filters in full,
// the fixed filters by name) and the findings with testdata/<case>.out.yaml
// (-update rewrites). Everything served must pass envoy.Check.
func TestGolden(t *testing.T) {
	testutil.GoldenCases(t, "testdata", func(t *testing.T, in string) []byte {
		snap := load(t, in)
		opts := input.DefaultOptions()
		res := translate.Translate(snap, opts)
		group := res.Groups[opts.Group]
		if err := envoy.Check(group.AllByType(envoy.IndexSlices(snap.EndpointSlices))); err != nil {
			t.Errorf("generated resources fail the check:\n%v", err)
		}
		type chain struct {
			Listener    string `json:"listener"`
			Chain       string `json:"chain,omitempty"`
			HTTPFilters []any  `json:"httpFilters"`
		}
		var chains []chain
		for _, l := range group.Listeners {
			for _, fc := range l.FilterChains {
				for _, hcm := range hcms(t, fc) {
					c := chain{Listener: l.Name, Chain: fc.Name}
					for _, f := range hcm.HttpFilters {
						if f.GetConfigDiscovery() != nil {
							c.HTTPFilters = append(c.HTTPFilters, messageJSON(t, f))
						} else {
							c.HTTPFilters = append(c.HTTPFilters, f.Name)
						}
					}
					chains = append(chains, c)
				}
			}
		}
		var ecds []any
		for _, e := range group.ExtensionConfigs {
			ecds = append(ecds, messageJSON(t, e))
		}
		out, err := yaml.Marshal(struct {
			ExtensionConfigs []any         `json:"extensionConfigs"`
			FilterChains     []chain       `json:"filterChains"`
			Status           []diag.Status `json:"status"`
		}{ecds, chains, res.Diagnostics.List()})
		if err != nil {
			t.Fatal(err)
		}
		return out
	})
}

func load(t *testing.T, path string) *input.Snapshot {
	t.Helper()
	loaded, err := file.LoadPaths(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range loaded.Problems.List() {
		t.Errorf("test input problem: %+v", s)
	}
	return loaded.Snapshot()
}

func hcms(t *testing.T, fc *listenerv3.FilterChain) []*hcmv3.HttpConnectionManager {
	var out []*hcmv3.HttpConnectionManager
	for _, f := range fc.Filters {
		if f.Name != wellknown.HTTPConnectionManager {
			continue
		}
		hcm := &hcmv3.HttpConnectionManager{}
		if err := f.GetTypedConfig().UnmarshalTo(hcm); err != nil {
			t.Fatal(err)
		}
		out = append(out, hcm)
	}
	return out
}

// messageJSON renders a resource in proto JSON (field names as in the
// proto) as one generic value.
func messageJSON(t *testing.T, m proto.Message) any {
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}
