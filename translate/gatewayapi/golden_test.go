package gatewayapi_test

import (
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/hxds/hxds/internal/source/file"
	"github.com/hxds/hxds/internal/testutil"
	"github.com/hxds/hxds/translate"
	"github.com/hxds/hxds/translate/diag"
	"github.com/hxds/hxds/translate/envoy"
	"github.com/hxds/hxds/translate/gatewayapi"
	"github.com/hxds/hxds/translate/input"
	"github.com/hxds/hxds/translate/ir"
)

// TestGolden translates each testdata/<case>.in.yaml through the whole
// pipeline and compares the group's IR, the findings and the computed
// Gateway API status with testdata/<case>.out.yaml (-update rewrites). The
// Envoy resources must pass envoy.Check.
func TestGolden(t *testing.T) {
	testutil.GoldenCases(t, "testdata", func(t *testing.T, in string) []byte {
		loaded, err := file.LoadPaths(in)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range loaded.Problems.List() {
			t.Errorf("test input problem: %+v", s)
		}
		snap := loaded.Snapshot()
		opts := input.DefaultOptions()
		res := translate.Translate(snap, opts)
		all := res.Groups[opts.Group].AllByType(envoy.IndexSlices(snap.EndpointSlices))
		if err := envoy.Check(all); err != nil {
			t.Errorf("generated resources fail the check:\n%v", err)
		}
		out, err := yaml.Marshal(struct {
			Gateway          *ir.Gateway        `json:"gateway"`
			Diagnostics      []diag.Status      `json:"diagnostics"`
			GatewayAPIStatus *gatewayapi.Status `json:"gatewayAPIStatus"`
		}{res.Gateways[opts.Group], res.Diagnostics.List(), res.GatewayAPI})
		if err != nil {
			t.Fatal(err)
		}
		return out
	})
}
