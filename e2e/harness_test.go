package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/hxds/hxds/internal/app"
	_ "github.com/hxds/hxds/internal/testutil" // every test binary accepts -update
	"github.com/hxds/hxds/translate/diag"
	"github.com/hxds/hxds/translate/input"
	"github.com/hxds/hxds/xds/adsclient"
	"github.com/hxds/hxds/xds/server"
)

// Bounds of every wait in these tests.
const (
	waitTimeout = 15 * time.Second
	httpTimeout = 5 * time.Second
)

const (
	lds = resourcev3.ListenerType
	cds = resourcev3.ClusterType
	rds = resourcev3.RouteType
	eds = resourcev3.EndpointType
	sds = resourcev3.SecretType
)

// allTypes are the types Envoy ends up subscribed to for the quickstart.
var allTypes = []string{cds, eds, sds, lds, rds}

// Names in the quickstart's configuration.
const (
	defaultGroup   = "higress-gateway"
	echoCluster    = "outbound|80||echo.demo.svc.cluster.local"
	apiCluster     = "outbound|8080||api.demo.svc.cluster.local"
	legacyCluster  = "outbound|80||legacy.demo.svc.cluster.local"
	httpRoutes     = "http.80"
	httpsRoutes    = "https.443.secure.example.com"
	demoSecret     = "kubernetes-ingress://Kubernetes/demo/demo-tls"
	httpListener   = "0.0.0.0_80"
	httpsListener  = "0.0.0.0_443"
	quickstartPath = "../examples/quickstart"
)

// quickstart is what an Envoy of the default group holds for the quickstart.
var quickstart = map[string][]string{
	lds: {httpsListener, httpListener},
	rds: {httpRoutes, httpsRoutes},
	cds: {apiCluster, echoCluster, legacyCluster},
	eds: {apiCluster, echoCluster, legacyCluster},
	sds: {demoSecret},
}

// copyQuickstart copies examples/quickstart into a new temporary directory.
func copyQuickstart(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	entries, err := os.ReadDir(quickstartPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(quickstartPath, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// writeFile replaces a file of the config directory atomically (a hidden
// temporary file, which hxds skips, renamed over it), so the watcher never
// sees a half-written file.
func writeFile(t testing.TB, dir, name, content string) {
	t.Helper()
	tmp := filepath.Join(dir, ".tmp-"+name)
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

// editFile replaces the first occurrence of old in a config file.
func editFile(t testing.TB, dir, name, old, new string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("%s does not contain %q", name, old)
	}
	writeFile(t, dir, name, strings.Replace(string(b), old, new, 1))
}

func removeFile(t testing.TB, dir, name string) {
	t.Helper()
	if err := os.Remove(filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

// echoPaths is the only path of Ingress demo/echo in 30-ingresses.yaml.
const echoPaths = `          - path: /
            pathType: Prefix
            backend: {service: {name: echo, port: {number: 80}}}
`

// addEchoPath adds a Prefix path to Ingress demo/echo, routed to Service api.
func addEchoPath(t testing.TB, dir, path string) {
	t.Helper()
	editFile(t, dir, "30-ingresses.yaml", echoPaths, echoPaths+`          - path: `+path+`
            pathType: Prefix
            backend: {service: {name: api, port: {name: http}}}
`)
}

// echoEndpoint is the only endpoint of EndpointSlice demo/echo-1.
const echoEndpoint = `  - addresses: ["127.0.0.1"]
    conditions: {ready: true}
`

// testLogger logs to the test log while the test runs, and drops what
// goroutines still log afterwards.
func testLogger(t testing.TB) *zap.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	enc := zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig())
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(w), zap.InfoLevel))
}

type testWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Logf("%s", bytes.TrimRight(p, "\n"))
	}
	return len(p), nil
}

// hxds is one running hxds.
type hxds struct {
	dir   string
	xds   string // ADS address
	admin string // admin base URL
}

// startHxds runs hxds in process (app.Run) on dir until the test ends.
func startHxds(t testing.TB, dir string, configure ...func(*app.Config)) *hxds {
	t.Helper()
	cfg := app.Config{
		XDSAddress:      "127.0.0.1:0",
		AdminAddress:    "127.0.0.1:0",
		ConfigDir:       dir,
		Options:         input.DefaultOptions(),
		DebounceHoldoff: 10 * time.Millisecond,
		DebounceMax:     100 * time.Millisecond,
		RegistryGrace:   app.DefaultRegistryGrace,
		Log:             testLogger(t),
	}
	for _, c := range configure {
		c(&cfg)
	}
	xds, admin := runUntilListening(t, "app.Run", func(ctx context.Context, listening func(a, b net.Addr)) error {
		cfg.Listening = listening
		return app.Run(ctx, cfg)
	})
	h := &hxds{dir: dir, xds: xds.String(), admin: "http://" + admin.String()}
	h.waitReady(t)
	return h
}

// runUntilListening runs a server (app.Run, agent.Run) in the background
// until the test ends, and returns the two addresses it reports once it
// listens. The test fails if it stops early or does not return after
// cancellation.
func runUntilListening(t testing.TB, name string, run func(ctx context.Context, listening func(a, b net.Addr)) error) (net.Addr, net.Addr) {
	t.Helper()
	type addrs struct{ a, b net.Addr }
	listening := make(chan addrs, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, func(a, b net.Addr) { listening <- addrs{a, b} }) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
		case <-time.After(waitTimeout):
			t.Errorf("%s did not return after cancel", name)
		}
	})
	select {
	case a := <-listening:
		return a.a, a.b
	case err := <-done:
		t.Fatalf("%s: %v", name, err)
	case <-time.After(waitTimeout):
		t.Fatalf("%s did not start listening", name)
	}
	return nil, nil
}

var httpClient = &http.Client{Timeout: httpTimeout}

// get fetches an admin path and returns the status code and body.
func (h *hxds) get(t testing.TB, path string) (int, []byte) {
	t.Helper()
	resp, err := httpClient.Get(h.admin + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, b
}

func (h *hxds) getJSON(t testing.TB, path string, v any) {
	t.Helper()
	code, b := h.get(t, path)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, code, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v\n%s", path, err, b)
	}
}

// waitReady waits until /ready answers 200.
func (h *hxds) waitReady(t testing.TB) {
	t.Helper()
	waitUntil(t, "hxds /ready", func() (bool, string) {
		resp, err := httpClient.Get(h.admin + "/ready")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
}

// waitUntil polls cond (every 10 ms) until it holds, failing after
// waitTimeout with cond's last explanation. Only for conditions nothing
// notifies about (admin endpoints, files, processes).
func waitUntil(t testing.TB, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within %s: %s", what, waitTimeout, why)
		}
		<-tick.C
	}
}

// connections returns /debug/connections.
func (h *hxds) connections(t testing.TB) []server.Connection {
	t.Helper()
	var out []server.Connection
	h.getJSON(t, "/debug/connections", &out)
	return out
}

// connection returns the connection of a node, or nil.
func (h *hxds) connection(t testing.TB, node string) *server.Connection {
	t.Helper()
	for _, c := range h.connections(t) {
		if c.NodeID == node {
			return &c
		}
	}
	return nil
}

func typeStatus(c *server.Connection, typeURL string) server.TypeStatus {
	if c != nil {
		for _, ts := range c.Types {
			if ts.TypeURL == typeURL {
				return ts
			}
		}
	}
	return server.TypeStatus{}
}

// statusReport is /debug/status.
type statusReport struct {
	Objects  int           `json:"objects"`
	Accepted int           `json:"accepted"`
	Rejected int           `json:"rejected"`
	Status   []diag.Status `json:"status"`
}

func (h *hxds) status(t testing.TB, problemsOnly bool) statusReport {
	t.Helper()
	var r statusReport
	path := "/debug/status"
	if problemsOnly {
		path += "?problems"
	}
	h.getJSON(t, path, &r)
	return r
}

// metric returns the value of one sample of /metrics, e.g.
// `hxds_translations_total{result="ok"}`; 0 when absent.
func (h *hxds) metric(t testing.TB, sample string) float64 {
	t.Helper()
	_, b := h.get(t, "/metrics")
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, sample+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				t.Fatalf("metric %s: %v", sample, err)
			}
			return v
		}
	}
	return 0
}

// servedVersions returns, from /debug/config_dump, the version of every
// type the default group is served.
func (h *hxds) servedVersions(t testing.TB) map[string]string {
	t.Helper()
	var dump struct {
		Configs []map[string]json.RawMessage `json:"configs"`
	}
	h.getJSON(t, "/debug/config_dump?include_eds", &dump)
	out := map[string]string{}
	str := func(raw json.RawMessage) string {
		var s string
		_ = json.Unmarshal(raw, &s)
		return s
	}
	first := func(raw json.RawMessage) string {
		var items []map[string]json.RawMessage
		_ = json.Unmarshal(raw, &items)
		if len(items) == 0 {
			return ""
		}
		return str(items[0]["version_info"])
	}
	for _, c := range dump.Configs {
		switch str(c["@type"]) {
		case "type.googleapis.com/envoy.admin.v3.ClustersConfigDump":
			out[cds] = str(c["version_info"])
		case "type.googleapis.com/envoy.admin.v3.ListenersConfigDump":
			out[lds] = str(c["version_info"])
		case "type.googleapis.com/envoy.admin.v3.RoutesConfigDump":
			out[rds] = first(c["dynamic_route_configs"])
		case "type.googleapis.com/envoy.admin.v3.SecretsConfigDump":
			out[sds] = first(c["dynamic_active_secrets"])
		case "type.googleapis.com/envoy.admin.v3.EndpointsConfigDump":
			out[eds] = first(c["dynamic_endpoint_configs"])
		}
	}
	return out
}

// connect starts an Envoy-like ADS client for the test.
func connect(t testing.TB, addr string, opts adsclient.Options) *client {
	t.Helper()
	opts.Address = addr
	if opts.Log == nil {
		opts.Log = testLogger(t).Named(opts.NodeID)
	}
	dctx, dcancel := context.WithTimeout(context.Background(), waitTimeout)
	defer dcancel()
	c, err := adsclient.Dial(dctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cl := &client{Client: c, t: t, node: opts.NodeID, cancel: cancel, done: make(chan struct{})}
	go func() {
		cl.runErr = c.Run(ctx)
		close(cl.done)
	}()
	go cl.collect(ctx)
	t.Cleanup(cl.stop)
	return cl
}

// client is an adsclient.Client with a log of its events.
type client struct {
	*adsclient.Client
	t      testing.TB
	node   string
	cancel context.CancelFunc
	done   chan struct{}
	runErr error
	once   sync.Once

	mu     sync.Mutex
	events []adsclient.Event
}

// stop ends the client (before the test ends, e.g. to stop the server
// without the client reporting the closed stream).
func (c *client) stop() {
	c.once.Do(func() {
		c.cancel()
		select {
		case <-c.done:
			if c.runErr != nil {
				c.t.Errorf("client %s: Run: %v", c.node, c.runErr)
			}
		case <-time.After(waitTimeout):
			c.t.Errorf("client %s: Run did not return", c.node)
		}
		_ = c.Close()
	})
}

func (c *client) collect(ctx context.Context) {
	for {
		select {
		case ev := <-c.Events():
			c.mu.Lock()
			c.events = append(c.events, ev)
			c.mu.Unlock()
		case <-ctx.Done():
			return
		}
	}
}

// mark returns a position in the event log.
func (c *client) mark() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.events)
}

// since returns the events received after mark.
func (c *client) since(mark int) []adsclient.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.events[mark:])
}

// wait waits until cond holds for the client's state.
func (c *client) wait(what string, cond func(adsclient.Snapshot) bool) adsclient.Snapshot {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	s, err := c.WaitFor(ctx, cond)
	if err != nil {
		c.t.Fatalf("%s: %v\nclient state:%s", what, err, describe(s))
	}
	return s
}

// synced waits until the client holds, for every quickstart type, the
// version hxds currently serves.
func (c *client) synced(h *hxds) adsclient.Snapshot {
	c.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		want := h.servedVersions(c.t)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		s, err := c.WaitFor(ctx, func(s adsclient.Snapshot) bool {
			for _, typ := range allTypes {
				if s.Version(typ) != want[typ] {
					return false
				}
			}
			return true
		})
		cancel()
		if err == nil && mapsEqual(h.servedVersions(c.t), want) {
			return s
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("client not in sync with hxds: served %v\nclient state:%s", want, describe(s))
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

// holdsQuickstart reports whether a snapshot holds exactly the quickstart.
func holdsQuickstart(s adsclient.Snapshot) bool {
	for typ, names := range quickstart {
		if !slices.Equal(s.Names(typ), names) {
			return false
		}
	}
	return true
}

func short(typeURL string) string { return typeURL[strings.LastIndex(typeURL, ".")+1:] }

// summarize renders events compactly for failure messages.
func summarize(evs []adsclient.Event) []string {
	out := make([]string, 0, len(evs))
	for _, ev := range evs {
		s := fmt.Sprintf("%s v=%s res=%v", short(ev.TypeURL), ev.Version, ev.Resources)
		if len(ev.Removed) > 0 {
			s += fmt.Sprintf(" removed=%v", ev.Removed)
		}
		if ev.NACK {
			s += " NACK: " + ev.Error
		}
		out = append(out, s)
	}
	return out
}

func describe(s adsclient.Snapshot) string {
	var b strings.Builder
	for _, typ := range slices.Sorted(func(yield func(string) bool) {
		for k := range s.Types {
			if !yield(k) {
				return
			}
		}
	}) {
		ts := s.Types[typ]
		fmt.Fprintf(&b, "\n  %s version=%s responses=%d nacks=%d held=%v", short(typ), ts.Version, ts.Responses, ts.NACKs, s.Names(typ))
		if ts.LastNACK != "" {
			fmt.Fprintf(&b, " lastNACK=%q", ts.LastNACK)
		}
	}
	return b.String()
}

// typesOf lists the types of events.
func typesOf(evs []adsclient.Event) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, short(ev.TypeURL))
	}
	return out
}

func protocols(t *testing.T, f func(t *testing.T, delta bool)) {
	t.Run("sotw", func(t *testing.T) { t.Parallel(); f(t, false) })
	t.Run("delta", func(t *testing.T) { t.Parallel(); f(t, true) })
}
