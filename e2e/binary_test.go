package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/hxds/hxds/xds/adsclient"
)

// startHxdsBinary runs the built hxds binary (`hxds serve`) on dir with free
// ports and extra flags, and waits until it is ready.
func startHxdsBinary(t testing.TB, dir string, flags ...string) (*hxds, *proc) {
	t.Helper()
	bin := hxdsBinary(t)
	xdsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	adminAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	args := append([]string{"serve", "--config-dir", dir, "--xds-address", xdsAddr, "--admin-address", adminAddr,
		"--debounce-holdoff", "10ms", "--debounce-max", "100ms"}, flags...)
	p := startProc(t, "hxds serve", bin, args...)
	h := &hxds{dir: dir, xds: xdsAddr, admin: "http://" + adminAddr}
	waitUntil(t, "hxds serve /ready", func() (bool, string) {
		if p.exited() {
			t.Fatalf("hxds serve exited: %v\n%s", p.err, p.out.String())
		}
		resp, err := httpClient.Get(h.admin + "/ready")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
	return h, p
}

// TestServeBinary runs the real binary: Envoys of both protocols get the
// quickstart, /debug/config_dump is byte for byte what `hxds translate`
// prints for the same directory, and SIGTERM stops the process cleanly.
func TestServeBinary(t *testing.T) {
	t.Parallel()
	dir := copyQuickstart(t)
	h, p := startHxdsBinary(t, dir)
	if code, body := h.get(t, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: %d %s", code, body)
	}

	sotw := connect(t, h.xds, adsclient.Options{NodeID: "envoy-sotw", Cluster: defaultGroup})
	delta := connect(t, h.xds, adsclient.Options{NodeID: "envoy-delta", Cluster: defaultGroup, Delta: true})
	var states []adsclient.Snapshot
	for _, c := range []*client{sotw, delta} {
		c.wait("the quickstart", holdsQuickstart)
		s := c.synced(h)
		checkQuickstart(t, s, 80, 443)
		states = append(states, s)
	}
	for _, typ := range allTypes {
		if states[0].Version(typ) != states[1].Version(typ) {
			t.Errorf("%s: state-of-the-world version %q, delta %q", short(typ), states[0].Version(typ), states[1].Version(typ))
		}
	}

	for _, tc := range []struct{ path, flag string }{
		{"/debug/config_dump?include_eds", "--include-eds"},
		{"/debug/config_dump", ""},
	} {
		code, served := h.get(t, tc.path)
		if code != http.StatusOK {
			t.Fatalf("%s: %d %s", tc.path, code, served)
		}
		args := []string{"translate", "-f", dir, "-o", "json"}
		if tc.flag != "" {
			args = append(args, tc.flag)
		}
		cmd := exec.Command(hxdsBinary(t), args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		offline, err := cmd.Output()
		if err != nil {
			t.Fatalf("hxds %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		if !bytes.Contains(served, []byte(`"0.0.0.0_80"`)) {
			t.Errorf("%s does not dump the listeners:\n%s", tc.path, served)
		}
		if !bytes.Equal(served, offline) {
			t.Errorf("%s differs from `hxds %s`:\n%s", tc.path, strings.Join(args, " "), firstDiff(string(served), string(offline)))
		}
		if stderr.Len() != 0 {
			t.Errorf("hxds translate reported findings for the quickstart:\n%s", stderr.String())
		}
	}

	// Graceful stop: clients first, then SIGTERM; the process exits 0.
	sotw.stop()
	delta.stop()
	if err := p.stop(); err != nil {
		t.Errorf("hxds serve on SIGTERM: %v", err)
	}
}

// firstDiff shows where two texts start to differ.
func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) || i < len(bl); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return fmt.Sprintf("line %d:\n  served:  %s\n  offline: %s", i+1, x, y)
		}
	}
	return "(identical lines, different bytes)"
}
