// Package consultest runs a real Consul agent (`consul agent -dev`) for
// tests: on free loopback ports, with its data in t.TempDir(), stopped by
// PID when the test ends.
//
// The binary is not a Debian package; scripts/build-consul.sh builds it
// into <repo>/.cache/bin/consul-<Version> (`make testdeps`). Tests find it
// through $HXDS_CONSUL_BIN, else that cache path (found by walking up from
// the working directory to go.mod). When it is missing a test fails under
// CI=true and is skipped with a message elsewhere.
package consultest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

// Version is the Consul version scripts/build-consul.sh builds.
const Version = "1.22.7"

// EnvBinary names the environment variable that overrides the binary path.
const EnvBinary = "HXDS_CONSUL_BIN"

// Binary returns the consul binary's path, or skips (fails under CI=true)
// the test when there is none.
func Binary(t testing.TB) string {
	t.Helper()
	path, err := findBinary()
	if err == nil {
		return path
	}
	msg := fmt.Sprintf("consul agent binary not available (%v): run `make testdeps` (scripts/build-consul.sh) or set %s", err, EnvBinary)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

func findBinary() (string, error) {
	if p := os.Getenv(EnvBinary); p != "" {
		if st, err := os.Stat(p); err != nil || st.IsDir() {
			return "", fmt.Errorf("%s=%s: not a file", EnvBinary, p)
		}
		return p, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, ".cache", "bin", "consul-"+Version)
			if _, err := os.Stat(p); err != nil {
				return "", fmt.Errorf("%s not built", p)
			}
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Options tune the agent.
type Options struct {
	// HCL is extra agent configuration (e.g. an acl block).
	HCL string
	// Token is the token Client uses (e.g. the ACL initial management token).
	Token string
}

// Agent is a running (or stopped) dev agent.
type Agent struct {
	t      testing.TB
	bin    string
	dir    string
	opts   Options
	ports  ports
	logf   *os.File
	starts int
	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

type ports struct{ http, serfLAN, server int }

// Start starts a dev agent and waits until it has a leader and has
// registered its own node. It is stopped when the test ends.
func Start(t testing.TB, opts Options) *Agent {
	t.Helper()
	a := &Agent{t: t, bin: Binary(t), dir: t.TempDir(), opts: opts}
	a.ports = ports{http: freePort(t), serfLAN: freePort(t), server: freePort(t)}
	t.Cleanup(a.Stop)
	a.start()
	return a
}

// HTTPAddr is the agent's HTTP API, "127.0.0.1:<port>".
func (a *Agent) HTTPAddr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(a.ports.http)) }

// HTTPPort is the agent's HTTP API port.
func (a *Agent) HTTPPort() uint32 { return uint32(a.ports.http) }

// Client returns an API client of the agent (with Options.Token).
func (a *Agent) Client() *api.Client {
	cfg := api.DefaultConfig()
	cfg.Address = a.HTTPAddr()
	cfg.Token = a.opts.Token
	c, err := api.NewClient(cfg)
	if err != nil {
		a.t.Fatalf("consul client: %v", err)
	}
	return c
}

// Stop kills the agent by PID and waits for it to exit.
func (a *Agent) Stop() {
	a.mu.Lock()
	cmd, exited := a.cmd, a.exited
	a.cmd = nil
	a.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
	<-exited
}

// Restart starts a stopped agent again on the same ports, with a fresh
// data dir: the catalog is empty (a dev agent keeps it in memory) and so
// is the agent's local state (which it would otherwise restore from its
// data dir) — a replaced agent, as far as a watcher can tell.
func (a *Agent) Restart() {
	a.t.Helper()
	a.Stop()
	a.start()
}

func (a *Agent) start() {
	a.t.Helper()
	hcl := fmt.Sprintf(`ports { http = %d
  dns = -1
  serf_lan = %d
  serf_wan = -1
  server = %d
  grpc = -1
  grpc_tls = -1
  https = -1 }
disable_update_check = true
%s`, a.ports.http, a.ports.serfLAN, a.ports.server, a.opts.HCL)
	if a.logf == nil {
		f, err := os.Create(filepath.Join(a.dir, "consul.log"))
		if err != nil {
			a.t.Fatal(err)
		}
		a.logf = f
		a.t.Cleanup(func() {
			_ = f.Close()
			if a.t.Failed() {
				if b, err := os.ReadFile(f.Name()); err == nil {
					a.t.Logf("consul agent log:\n%s", tail(string(b), 4000))
				}
			}
		})
	}
	cmd := exec.Command(a.bin, "agent", "-dev",
		"-bind", "127.0.0.1", "-client", "127.0.0.1",
		"-node", "hxds-test", "-log-level", "warn",
		"-data-dir", filepath.Join(a.dir, fmt.Sprintf("data-%d", a.starts)),
		"-hcl", hcl)
	a.starts++
	cmd.Stdout, cmd.Stderr = a.logf, a.logf
	// Its own process group, so a test binary killed by a signal does not
	// take the terminal's group down with it and vice versa.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		a.t.Fatalf("start consul: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	a.mu.Lock()
	a.cmd, a.exited = cmd, exited
	a.mu.Unlock()
	if err := a.waitReady(exited); err != nil {
		a.Stop()
		b, _ := os.ReadFile(a.logf.Name())
		a.t.Fatalf("consul agent not ready: %v\n%s", err, tail(string(b), 4000))
	}
}

// waitReady polls /v1/status/leader until it names a leader, then the
// catalog until the agent's own node is registered (services registered
// through the agent API before that would not reach the catalog yet).
func (a *Agent) waitReady(exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := a.Client()
	hc := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-exited:
			return errors.New("agent exited")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		resp, err := hc.Get("http://" + a.HTTPAddr() + "/v1/status/leader")
		if err != nil {
			continue
		}
		buf := make([]byte, 128)
		n, _ := resp.Body.Read(buf)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK || strings.Trim(strings.TrimSpace(string(buf[:n])), `"`) == "" {
			continue
		}
		nodes, _, err := c.Catalog().Nodes(nil)
		if err == nil && len(nodes) > 0 {
			return nil
		}
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
