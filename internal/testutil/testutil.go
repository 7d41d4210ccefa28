// Package testutil holds helpers shared by tests: golden files and loggers.
// Every test package imports it (at least for side effects) so that
// `go test ./... -update` is accepted by every test binary.
package testutil

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// Update is set by -update: golden files are rewritten instead of compared.
var Update = flag.Bool("update", false, "rewrite golden files with the current output")

// Golden compares got with the file at path, or rewrites it under -update.
func Golden(t testing.TB, path string, got []byte) {
	t.Helper()
	if *Update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if !bytes.Equal(want, got) {
		t.Errorf("output differs from %s (run `go test -update` and review the diff):\n%s", path, diff(string(want), string(got)))
	}
}

// diff shows the first differing lines, enough to see what moved.
func diff(want, got string) string {
	wl, gl := bytes.Split([]byte(want), []byte("\n")), bytes.Split([]byte(got), []byte("\n"))
	var b bytes.Buffer
	shown := 0
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g []byte
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if !bytes.Equal(w, g) {
			b.WriteString("line ")
			b.WriteString(strconv.Itoa(i + 1))
			b.WriteString(":\n  want: ")
			b.Write(w)
			b.WriteString("\n  got:  ")
			b.Write(g)
			b.WriteString("\n")
			if shown++; shown >= 10 {
				b.WriteString("...\n")
				break
			}
		}
	}
	return b.String()
}

// Logger returns a zap logger writing to the test log.
func Logger(t testing.TB) *zap.Logger {
	return zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))
}

// GoldenCases runs one subtest per testdata/<case>.in.yaml in dir: render
// gets the input path and returns the output, which is compared with
// testdata/<case>.out.yaml (or rewrites it under -update).
func GoldenCases(t *testing.T, dir string, render func(t *testing.T, in string) []byte) {
	t.Helper()
	cases, err := filepath.Glob(filepath.Join(dir, "*.in.yaml"))
	if err != nil || len(cases) == 0 {
		t.Fatalf("no golden cases in %s: %v", dir, err)
	}
	for _, in := range cases {
		name := strings.TrimSuffix(filepath.Base(in), ".in.yaml")
		t.Run(name, func(t *testing.T) {
			Golden(t, filepath.Join(dir, name+".out.yaml"), render(t, in))
		})
	}
}
