package registry_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

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

// TestGolden translates each testdata/<case>.in.yaml (Kubernetes objects)
// with the registry hosts of testdata/<case>.registry.yaml (what discovery
// would have put in the snapshot) and compares the clusters and findings
// with testdata/<case>.out.yaml (-update rewrites). Everything served must
// pass envoy.Check.
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
		raw, err := os.ReadFile(strings.TrimSuffix(in, ".in.yaml") + ".registry.yaml")
		if err != nil {
			t.Fatal(err)
		}
		var services []*input.RegistryService
		if err := yaml.UnmarshalStrict(raw, &services); err != nil {
			t.Fatalf("decode registry services: %v", err)
		}
		for _, s := range services {
			snap.Registry[s.Host] = s
		}
		opts := input.DefaultOptions()
		res := translate.Translate(snap, opts)
		group := res.Groups[opts.Group]
		if err := envoy.Check(group.AllByType(envoy.IndexSlices(snap.EndpointSlices))); err != nil {
			t.Errorf("generated resources fail the check:\n%v", err)
		}
		out, err := yaml.Marshal(struct {
			Listeners       any                    `json:"listeners,omitempty"`
			Clusters        any                    `json:"clusters"`
			EndpointTargets []envoy.EndpointTarget `json:"endpointTargets"`
			Status          []diag.Status          `json:"status"`
		}{messagesJSON(t, group.Listeners), messagesJSON(t, group.Clusters), group.EndpointTargets, res.Diagnostics.List()})
		if err != nil {
			t.Fatal(err)
		}
		return out
	})
}

// messagesJSON renders resources in proto JSON (field names as in the
// proto), one generic value each.
func messagesJSON[M proto.Message](t *testing.T, ms []M) []any {
	out := make([]any, 0, len(ms))
	for _, c := range ms {
		b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

// TestExample: the bundled registries example loads and translates without
// a problem.
func TestExample(t *testing.T) {
	loaded, err := file.LoadPaths("../../examples/registries")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range loaded.Problems.List() {
		t.Errorf("example problem: %+v", s)
	}
	res := translate.Translate(loaded.Snapshot(), input.DefaultOptions())
	for _, st := range res.Diagnostics.List() {
		if !st.Accepted || len(st.Findings) > 0 {
			t.Errorf("example finding: %+v", st)
		}
	}
}
