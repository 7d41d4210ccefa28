package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/hxds/hxds/internal/testutil" // accepts -update
	"github.com/hxds/hxds/routecheck"
)

const (
	quickstart      = "../../examples/quickstart"
	quickstartTests = "../../examples/quickstart-routes.test.yaml"
)

// routeCheck runs "hxds route-check args..." and returns its output and exit code.
func routeCheck(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	exited := -1
	prev := routeCheckExit
	routeCheckExit = func(c int) { exited = c }
	t.Cleanup(func() { routeCheckExit = prev })
	stdout, stderr, err := run(t, append([]string{"route-check"}, args...)...)
	var ec *exitCodeError
	switch {
	case err == nil:
		if exited != -1 {
			t.Fatalf("exit(%d) called but the command returned no error", exited)
		}
		return stdout, stderr, 0
	case errors.As(err, &ec):
		if ec.code != exited {
			t.Fatalf("exit(%d) called, error says %d", exited, ec.code)
		}
		return stdout, stderr, ec.code
	default:
		t.Fatalf("route-check failed outside its exit codes: %v", err)
	}
	return
}

// TestRouteCheckQuickstart runs the committed quickstart behaviour tests,
// against the translation and against a ConfigDump of it.
func TestRouteCheckQuickstart(t *testing.T) {
	out, stderr, code := routeCheck(t, "-f", quickstart, "--tests", quickstartTests)
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q:\n%s", code, stderr, out)
	}
	if strings.Contains(out, "FAIL") || !strings.Contains(out, " 0 failed, 0 errors\n") {
		t.Fatalf("quickstart tests:\n%s", out)
	}

	dump, _, err := run(t, "translate", "-f", quickstart, "-o", "json", "--include-eds")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "dump.json")
	if err := os.WriteFile(path, []byte(dump), 0o644); err != nil {
		t.Fatal(err)
	}
	fromDump, stderr, code := routeCheck(t, "--config-dump", path, "--tests", quickstartTests)
	if code != 0 || stderr != "" || fromDump != out {
		t.Fatalf("from the config dump: exit %d, stderr %q:\n%s", code, stderr, fromDump)
	}
}

func TestRouteCheckFailingTest(t *testing.T) {
	dir := t.TempDir()
	tests := filepath.Join(dir, "tests.yaml")
	if err := os.WriteFile(tests, []byte(`tests:
- name: good
  request: {host: echo.example.com, path: /api/x}
  expect: {service: demo/api:8080}
- name: wrong backend
  request: {host: echo.example.com, path: /apix}
  expect: {service: demo/api:8080, route: demo/api}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, code := routeCheck(t, "-f", quickstart, "--tests", tests)
	if code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, out)
	}
	want := `PASS  good
FAIL  wrong backend
      route: want "demo/api", got "demo/echo"
      service: want "demo/api:8080", got "demo/echo:80"
2 tests: 1 passed, 1 failed, 0 errors
`
	if out != want {
		t.Errorf("output:\n%s\nwant:\n%s", out, want)
	}

	js, _, code := routeCheck(t, "-f", quickstart, "--tests", tests, "-o", "json")
	if code != 1 {
		t.Fatalf("json: exit %d", code)
	}
	var rep routecheck.Report
	if err := json.Unmarshal([]byte(js), &rep); err != nil {
		t.Fatalf("not a JSON report: %v\n%s", err, js)
	}
	if rep.Passed != 1 || rep.Failed != 1 || len(rep.Tests) != 2 || rep.Tests[1].Outcome == nil ||
		rep.Tests[1].Outcome.Cluster != "outbound|80||echo.demo.svc.cluster.local" || len(rep.Tests[1].Mismatches) != 2 {
		t.Errorf("report: %+v", rep)
	}

	details, _, _ := routeCheck(t, "-f", quickstart, "--tests", tests, "--details")
	if !strings.Contains(details, "      | route: demo/api\n") || !strings.Contains(details, "      | virtualHost: echo.example.com:80\n") {
		t.Errorf("--details prints outcomes:\n%s", details)
	}
}

func TestRouteCheckUsageErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("tests:\n- name: a\n  expect: {clustr: x}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	unsupported := filepath.Join(dir, "dump.json")
	if err := os.WriteFile(unsupported, []byte(`{"configs": []}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"-f", quickstart},           // no tests
		{"--tests", quickstartTests}, // no configuration
		{"-f", quickstart, "--config-dump", "x.json", "--tests", quickstartTests}, // both
		{"-f", quickstart, "--tests", bad},                                        // unknown field in the test file
		{"-f", quickstart, "--tests", "/does/not/exist"},
		{"-f", "/does/not/exist", "--tests", quickstartTests},
		{"--config-dump", unsupported, "--tests", quickstartTests},
		{"-f", quickstart, "--tests", quickstartTests, "-o", "xml"},
		{"--no-such-flag"},
		{"-f", quickstart, "--tests", quickstartTests, "stray-argument"},
	} {
		_, stderr, code := routeCheck(t, args...)
		if code != 2 || !strings.Contains(stderr, "hxds route-check: ") {
			t.Errorf("%v: exit %d, stderr %q; want 2 and a message", args, code, stderr)
		}
	}
}
