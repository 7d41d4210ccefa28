package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/hxds/hxds/internal/testutil"
)

func run(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := newRootCommand()
	var out, errb bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SetArgs(args)
	err = cmd.Execute()
	return out.String(), errb.String(), err
}

// TestTranslateQuickstart pins the offline output for the bundled example
// (-update regenerates) and checks it is a ConfigDump with every section.
func TestTranslateQuickstart(t *testing.T) {
	out, stderr, err := run(t, "translate", "-f", "../../examples/quickstart", "-o", "yaml", "--include-eds")
	if err != nil {
		t.Fatalf("translate: %v\n%s", err, stderr)
	}
	if stderr != "" {
		t.Errorf("the quickstart must translate without findings, got:\n%s", stderr)
	}
	testutil.Golden(t, filepath.Join("testdata", "quickstart.out.yaml"), []byte(out))

	js, _, err := run(t, "translate", "-f", "../../examples/quickstart", "-o", "json", "--include-eds")
	if err != nil {
		t.Fatal(err)
	}
	cd := &adminv3.ConfigDump{}
	if err := protojson.Unmarshal([]byte(js), cd); err != nil {
		t.Fatalf("not a ConfigDump: %v", err)
	}
	if len(cd.Configs) != 5 {
		t.Fatalf("configs = %d, want clusters, listeners, routes, secrets, endpoints", len(cd.Configs))
	}
}

func TestTranslateFindingsAndStrict(t *testing.T) {
	dir := t.TempDir()
	bad := `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: broken, namespace: default}
spec:
  ingressClassName: higress
  rules:
  - host: a.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: missing, port: {name: http}}}}
---
apiVersion: v1
kind: Service
metadata: {name: typo, namespace: default}
spec: {portz: []}
`
	if err := os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, err := run(t, "translate", "-f", dir)
	if err != nil {
		t.Fatalf("without --strict findings are not fatal: %v", err)
	}
	for _, want := range []string{"port-name-resolve-error", "unknown-field", "bad.yaml"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if _, _, err := run(t, "translate", "-f", dir, "--strict"); err == nil || !strings.Contains(err.Error(), "rejected") {
		t.Fatalf("--strict with a rejected object: err = %v", err)
	}
}

func TestFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"translate"},
		{"translate", "-f", ".", "-o", "xml"},
		{"translate", "-f", "/does/not/exist"},
		{"serve"},
		{"serve", "--config-dir", ".", "--log-level", "loud"},
	} {
		if _, _, err := run(t, args...); err == nil {
			t.Errorf("%v: expected an error", args)
		}
	}
	out, _, err := run(t, "version")
	if err != nil || !strings.HasPrefix(out, "hxds ") {
		t.Fatalf("version = %q, %v", out, err)
	}
}
