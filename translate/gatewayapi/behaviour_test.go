package gatewayapi_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hxds/hxds/internal/source/file"
	"github.com/hxds/hxds/routecheck"
	"github.com/hxds/hxds/translate"
	"github.com/hxds/hxds/translate/envoy"
	"github.com/hxds/hxds/translate/input"
)

// TestBehaviour checks what Envoy does with requests, not the shape of the
// configuration: for each testdata/<case>.routes.yaml, the input
// testdata/<case>.in.yaml goes through the full pipeline (translate.Translate)
// and every request of the routes file is evaluated with routecheck against
// the default group's resources, endpoints included. The expectations come
// from the Gateway API specification and docs/gateway-api.md (the Gateway API spec), not from
// the golden outputs.
func TestBehaviour(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.routes.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no testdata/*.routes.yaml files")
	}
	for _, routes := range files {
		name := strings.TrimSuffix(filepath.Base(routes), ".routes.yaml")
		t.Run(name, func(t *testing.T) {
			in := filepath.Join("testdata", name+".in.yaml")
			if _, err := os.Stat(in); err != nil {
				t.Fatalf("%s has no input %s: %v", routes, in, err)
			}
			data, err := os.ReadFile(routes)
			if err != nil {
				t.Fatal(err)
			}
			tf, err := routecheck.ParseTests(data)
			if err != nil {
				t.Fatalf("%s: %v", routes, err)
			}
			res := behaviourResources(t, in)
			for _, r := range routecheck.RunTests(res, tf) {
				if r.Result != routecheck.Pass {
					t.Errorf("%s: test %q: %s", routes, r.Name, failure(r))
				}
			}
		})
	}
}

// behaviourResources translates the input file as the server does and
// returns the default group's Envoy resources with their endpoints.
func behaviourResources(t *testing.T, in string) routecheck.Resources {
	t.Helper()
	loaded, err := file.LoadPaths(in)
	if err != nil {
		t.Fatal(err)
	}
	snap := loaded.Snapshot()
	opts := input.DefaultOptions()
	res := translate.Translate(snap, opts)
	group, ok := res.Groups[opts.Group]
	if !ok {
		t.Fatalf("no resources for the default group %q", opts.Group)
	}
	return group.AllByType(envoy.IndexSlices(snap.EndpointSlices))
}

// failure renders why a test did not pass: the evaluation error, or each
// expected field with what Envoy would do instead.
func failure(r routecheck.Result) string {
	var b strings.Builder
	b.WriteString(r.Result)
	if r.Error != "" {
		fmt.Fprintf(&b, "\n    error: %s", r.Error)
	}
	for _, m := range r.Mismatches {
		fmt.Fprintf(&b, "\n    %s: want %s, got %s", m.Field, m.Want, m.Got)
	}
	if o := r.Outcome; o != nil && o.NoRouteReason+o.ConnectionError != "" {
		fmt.Fprintf(&b, "\n    (%s)", o.NoRouteReason+o.ConnectionError)
	}
	return b.String()
}
