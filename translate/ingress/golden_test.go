package ingress_test

import (
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/hxds/hxds/internal/source/file"
	"github.com/hxds/hxds/internal/testutil"
	"github.com/hxds/hxds/translate/diag"
	"github.com/hxds/hxds/translate/envoy"
	"github.com/hxds/hxds/translate/ingress"
	"github.com/hxds/hxds/translate/input"
	"github.com/hxds/hxds/translate/ir"
)

// TestGolden translates each testdata/<case>.in.yaml to the IR and the
// findings, compared with testdata/<case>.out.yaml (-update rewrites). The
// Envoy resources built from the same IR must pass envoy.Check.
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
		d := diag.NewSet()
		b := ir.NewBuilder(opts.Group, "0.0.0.0")
		ingress.Translate(snap, opts, b, d)
		gw := b.Build()

		res := envoy.Build(gw)
		all := res.AllByType(envoy.IndexSlices(snap.EndpointSlices))
		if err := envoy.Check(all); err != nil {
			t.Errorf("generated resources fail the check:\n%v", err)
		}
		out, err := yaml.Marshal(struct {
			Gateway *ir.Gateway   `json:"gateway"`
			Status  []diag.Status `json:"status"`
		}{gw, d.List()})
		if err != nil {
			t.Fatal(err)
		}
		return out
	})
}
