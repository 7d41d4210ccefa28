package envoy_test

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"

	"github.com/hxds/hxds/internal/testutil"
	"github.com/hxds/hxds/translate/envoy"
	"github.com/hxds/hxds/translate/ir"
)

// TestGolden builds Envoy resources from each testdata/<case>.in.yaml (a
// gateway IR) and compares them with testdata/<case>.out.yaml (-update
// rewrites). Every output must pass Check.
func TestGolden(t *testing.T) {
	testutil.GoldenCases(t, "testdata", func(t *testing.T, in string) []byte {
		raw, err := os.ReadFile(in)
		if err != nil {
			t.Fatal(err)
		}
		gw := &ir.Gateway{}
		if err := yaml.UnmarshalStrict(raw, gw); err != nil {
			t.Fatalf("decode IR: %v", err)
		}
		res := envoy.Build(gw)
		if err := envoy.Check(res.AllByType(nil)); err != nil {
			t.Errorf("generated resources fail the check:\n%v", err)
		}
		return MarshalResources(t, res)
	})
}

// MarshalResources renders resources as YAML, each resource in proto JSON.
func MarshalResources(t testing.TB, r *envoy.Resources) []byte {
	t.Helper()
	enc := func(ms ...proto.Message) []json.RawMessage {
		out := []json.RawMessage{}
		for _, m := range ms {
			b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			// protojson output is deliberately unstable in whitespace; compact it.
			var c bytes.Buffer
			if err := json.Compact(&c, b); err != nil {
				t.Fatal(err)
			}
			out = append(out, c.Bytes())
		}
		return out
	}
	doc := map[string]any{
		"listeners":        enc(toMessages(r.Listeners)...),
		"routes":           enc(toMessages(r.Routes)...),
		"clusters":         enc(toMessages(r.Clusters)...),
		"secrets":          enc(toMessages(r.Secrets)...),
		"endpoint_targets": r.EndpointTargets,
	}
	js, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	y, err := yaml.JSONToYAML(js)
	if err != nil {
		t.Fatal(err)
	}
	return y
}

func toMessages[M proto.Message](in []M) []proto.Message {
	out := make([]proto.Message, len(in))
	for i, m := range in {
		out[i] = m
	}
	return out
}
