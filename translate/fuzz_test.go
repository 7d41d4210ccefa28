package translate_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/hxds/hxds/internal/source/file"
	_ "github.com/hxds/hxds/internal/testutil"
	"github.com/hxds/hxds/translate"
	"github.com/hxds/hxds/translate/envoy"
	"github.com/hxds/hxds/translate/input"
)

// FuzzTranslate feeds arbitrary YAML through the whole pipeline. Whatever
// the input, translation must not panic, and whatever it serves must be
// configuration a stock Envoy accepts (envoy.Check): bad input may be
// rejected, never turned into resources Envoy would NACK.
func FuzzTranslate(f *testing.F) {
	seeds, _ := filepath.Glob("ingress/testdata/*.in.yaml")
	gwapi, _ := filepath.Glob("gatewayapi/testdata/*.in.yaml")
	more, _ := filepath.Glob("../examples/quickstart/*.yaml")
	seeds = append(seeds, gwapi...)
	for _, p := range append(seeds, more...) {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		snap := file.Parse("fuzz.yaml", data).Snapshot()
		res := translate.Translate(snap, input.DefaultOptions())
		for group, r := range res.Groups {
			all := r.AllByType(envoy.IndexSlices(snap.EndpointSlices))
			if err := envoy.Check(all); err != nil {
				t.Fatalf("group %s: translation served invalid configuration:\n%v", group, err)
			}
		}
	})
}
