// Package behaviour runs route-check test files against the full translation
// pipeline: what Envoy does with requests, not the shape of the
// configuration. Front-end packages call Run from a test.
package behaviour

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

// Run evaluates, for each dir/<case>.routes.yaml, every request of the file
// against the default group's resources (endpoints included) that
// translate.Translate makes of dir/<case>.in.yaml. Expectations come from
// the specification the front-end implements, not from golden outputs.
func Run(t *testing.T, dir string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.routes.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no %s/*.routes.yaml files", dir)
	}
	for _, routes := range files {
		name := strings.TrimSuffix(filepath.Base(routes), ".routes.yaml")
		t.Run(name, func(t *testing.T) {
			in := filepath.Join(dir, name+".in.yaml")
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
			res := Resources(t, in)
			for _, r := range routecheck.RunTests(res, tf) {
				if r.Result != routecheck.Pass {
					t.Errorf("%s: test %q: %s", routes, r.Name, failure(r))
				}
			}
		})
	}
}

// Resources translates input files as the server does and returns the
// default group's Envoy resources with their endpoints.
func Resources(t testing.TB, paths ...string) routecheck.Resources {
	t.Helper()
	loaded, err := file.LoadPaths(paths...)
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
