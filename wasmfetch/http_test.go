package wasmfetch

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hxds/hxds/wasmfetch/wasmtest"
)

// countingServer serves handler and counts requests per path.
type countingServer struct {
	*httptest.Server
	mu    sync.Mutex
	count map[string]int
}

func newCountingServer(t *testing.T, h http.HandlerFunc) *countingServer {
	t.Helper()
	s := &countingServer{count: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.count[r.URL.Path]++
		s.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *countingServer) n(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count[path]
}

// bodies are the packed forms of testModule, computed once (gzip is slow under -race).
var (
	bodiesOnce sync.Once
	bodies     struct{ gz, tar, tgz []byte }
)

func moduleServer(t *testing.T) *countingServer {
	t.Helper()
	bodiesOnce.Do(func() {
		bodies.gz = wasmtest.Gzip(t, testModule)
		bodies.tar = wasmtest.Tar(t, "plugin.wasm", testModule, "other.txt", []byte("x"))
		bodies.tgz = wasmtest.Gzip(t, bodies.tar)
	})
	gz, tr, tgz := bodies.gz, bodies.tar, bodies.tgz
	return newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/plain.wasm":
			w.Write(testModule)
		case "/plugin.wasm.gz":
			w.Write(gz)
		case "/plugin.tar":
			w.Write(tr)
		case "/plugin.tar.gz":
			w.Write(tgz)
		case "/text":
			w.Write([]byte("hello, this is not wasm"))
		default:
			http.NotFound(w, r)
		}
	})
}

func TestHTTPPlainGzipTar(t *testing.T) {
	srv := moduleServer(t)
	c := newTestCache(t, Options{})
	want := digestHex(testModule)
	var first string
	for _, p := range []string{"/plain.wasm", "/plugin.wasm.gz", "/plugin.tar", "/plugin.tar.gz"} {
		path, sum, err := c.Get(context.Background(), Request{URL: srv.URL + p})
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if sum != want {
			t.Errorf("%s: checksum %s, want sha256 of the module %s", p, sum, want)
		}
		b, err := os.ReadFile(path)
		if err != nil || string(b) != string(testModule) {
			t.Fatalf("%s: cached file differs from the module (err %v)", p, err)
		}
		if !strings.HasPrefix(path, c.Dir()) || !strings.HasSuffix(path, "/"+want+".wasm") {
			t.Errorf("%s: unexpected cache path %s", p, path)
		}
		if first == "" {
			first = path
		}
	}
	if got := len(c.List()); got != 4 {
		t.Errorf("List has %d modules, want 4 (one per URL module name)", got)
	}
	wasmtest.AssertProxyWasm(t, first)
}

func TestHTTPRetries503ThenSucceeds(t *testing.T) {
	var n atomic.Int32
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) <= 2 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		w.Write(testModule)
	})
	c := newTestCache(t, Options{HTTPInitialBackoff: 20 * time.Millisecond})
	start := time.Now()
	if _, _, err := c.Get(context.Background(), Request{URL: srv.URL + "/m.wasm"}); err != nil {
		t.Fatal(err)
	}
	if got := srv.n("/m.wasm"); got != 3 {
		t.Errorf("requests = %d, want 3", got)
	}
	if el := time.Since(start); el < 60*time.Millisecond {
		t.Errorf("finished in %v; backoff 20ms+40ms not applied", el)
	}
}

func TestHTTPNotRetried(t *testing.T) {
	for _, code := range []int{http.StatusNotFound, http.StatusForbidden, http.StatusNotImplemented, http.StatusHTTPVersionNotSupported, http.StatusNetworkAuthenticationRequired} {
		srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(code) })
		c := newTestCache(t, Options{})
		_, _, err := c.Get(context.Background(), Request{URL: srv.URL + "/m.wasm"})
		if err == nil {
			t.Fatalf("%d: want error", code)
		}
		if got := srv.n("/m.wasm"); got != 1 {
			t.Errorf("%d: requests = %d, want 1 (not retried)", code, got)
		}
	}
}

func TestHTTPRetriesExhausted(t *testing.T) {
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadGateway) })
	c := newTestCache(t, Options{HTTPMaxRetries: 2, HTTPInitialBackoff: time.Millisecond})
	_, _, err := c.Get(context.Background(), Request{URL: srv.URL + "/m.wasm"})
	if err == nil || !strings.Contains(err.Error(), "502") {
		t.Fatalf("err = %v, want HTTP 502", err)
	}
	if got := srv.n("/m.wasm"); got != 3 {
		t.Errorf("requests = %d, want 3 (1 + 2 retries)", got)
	}
}

func TestHTTPBodyCap(t *testing.T) {
	big := append(append([]byte{}, testModule...), make([]byte, 4096)...)
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/chunked" {
			w.(http.Flusher).Flush() // no Content-Length
		}
		w.Write(big[:4096+8])
	})
	c := newTestCache(t, Options{MaxModuleSize: 4096})
	for _, p := range []string{"/sized", "/chunked"} {
		_, _, err := c.Get(context.Background(), Request{URL: srv.URL + p})
		if err == nil || !strings.Contains(err.Error(), "size limit") {
			t.Errorf("%s: err = %v, want size limit", p, err)
		}
		if got := srv.n(p); got != 1 {
			t.Errorf("%s: requests = %d, want 1", p, got)
		}
	}
	// a gzip bomb is capped after unpacking too
	bomb := wasmtest.Gzip(t, append(append([]byte{}, testModule[:8]...), make([]byte, 1<<20)...))
	srv2 := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) { w.Write(bomb) })
	c2 := newTestCache(t, Options{MaxModuleSize: 64 << 10})
	if _, _, err := c2.Get(context.Background(), Request{URL: srv2.URL + "/bomb.gz"}); err == nil || !strings.Contains(err.Error(), "size limit") {
		t.Errorf("gzip bomb: err = %v, want size limit", err)
	}
}

func TestHTTPTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	c := newTestCache(t, Options{HTTPRequestTimeout: 50 * time.Millisecond, HTTPInitialBackoff: 10 * time.Millisecond})
	start := time.Now()
	_, _, err := c.Get(context.Background(), Request{URL: srv.URL + "/slow", Timeout: 300 * time.Millisecond})
	if err == nil {
		t.Fatal("want timeout error")
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("took %v, want ≈ Request.Timeout", el)
	}
	if got := srv.n("/slow"); got < 2 {
		t.Errorf("requests = %d, want the per-attempt timeout to be retried", got)
	}
}

func TestChecksumMismatchAndMatch(t *testing.T) {
	srv := moduleServer(t)
	c := newTestCache(t, Options{})
	bad := strings.Repeat("ab", 32)
	_, _, err := c.Get(context.Background(), Request{URL: srv.URL + "/plain.wasm", SHA256: bad})
	if err == nil || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Fatalf("err = %v, want checksum mismatch", err)
	}
	if len(c.List()) != 0 {
		t.Error("mismatching module was stored")
	}
	if errs := c.Errors(); len(errs) != 1 || !strings.Contains(errs[0].Error, "checksum mismatch") {
		t.Errorf("Errors() = %+v", errs)
	}
	good := "sha256:" + strings.ToUpper(digestHex(testModule))
	if _, sum, err := c.Get(context.Background(), Request{URL: srv.URL + "/plain.wasm", SHA256: good}); err != nil || sum != digestHex(testModule) {
		t.Fatalf("matching sha256: sum %s err %v", sum, err)
	}
	// "nil" means unset
	if _, _, err := c.Get(context.Background(), Request{URL: srv.URL + "/plugin.tar", SHA256: "nil"}); err != nil {
		t.Fatal(err)
	}
}

func TestNotWasmRejected(t *testing.T) {
	srv := moduleServer(t)
	c := newTestCache(t, Options{})
	_, _, err := c.Get(context.Background(), Request{URL: srv.URL + "/text"})
	if err == nil || !strings.Contains(err.Error(), "not a Wasm binary") {
		t.Fatalf("err = %v", err)
	}
}

func TestCacheHitNoSecondRequest(t *testing.T) {
	srv := moduleServer(t)
	c := newTestCache(t, Options{})
	for _, pol := range []PullPolicy{PullUnspecified, PullIfNotPresent, PullIfNotPresent} {
		_, _, err := c.Get(context.Background(), Request{URL: srv.URL + "/plain.wasm", PullPolicy: pol, ResourceVersion: pol.String()})
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := srv.n("/plain.wasm"); got != 1 {
		t.Errorf("requests = %d, want 1", got)
	}
	// a pinned checksum is served from the cache as well
	if _, _, err := c.Get(context.Background(), Request{URL: srv.URL + "/plain.wasm", SHA256: digestHex(testModule), PullPolicy: PullAlways, ResourceVersion: "x"}); err != nil {
		t.Fatal(err)
	}
	if got := srv.n("/plain.wasm"); got != 1 {
		t.Errorf("requests = %d after pinned Get, want 1", got)
	}
	// a new Cache on the same directory finds the file for a pinned checksum (restart)
	c2, err := New(c.Dir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c2.Get(context.Background(), Request{URL: srv.URL + "/plain.wasm", SHA256: digestHex(testModule)}); err != nil {
		t.Fatal(err)
	}
	if got := srv.n("/plain.wasm"); got != 1 {
		t.Errorf("requests = %d after restart, want 1", got)
	}
}

func TestAlwaysRepullsOnResourceVersionChange(t *testing.T) {
	var mu sync.Mutex
	body := testModule
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.Write(body)
	})
	c := newTestCache(t, Options{})
	get := func(rv string) string {
		t.Helper()
		_, sum, err := c.Get(context.Background(), Request{URL: srv.URL + "/m.wasm", PullPolicy: PullAlways, ResourceVersion: rv})
		if err != nil {
			t.Fatal(err)
		}
		return sum
	}
	s1 := get("1")
	get("1")
	if got := srv.n("/m.wasm"); got != 1 {
		t.Fatalf("requests = %d, want 1 (same resourceVersion)", got)
	}
	mu.Lock()
	body = otherModule
	mu.Unlock()
	s2 := get("2")
	if got := srv.n("/m.wasm"); got != 2 {
		t.Fatalf("requests = %d, want 2 (resourceVersion changed)", got)
	}
	if s1 == s2 || s2 != digestHex(otherModule) {
		t.Errorf("checksums %s → %s, want the new module", s1, s2)
	}
	// IfNotPresent keeps the last checksum whatever the resourceVersion
	_, s3, err := c.Get(context.Background(), Request{URL: srv.URL + "/m.wasm", PullPolicy: PullIfNotPresent, ResourceVersion: "3"})
	if err != nil || s3 != s2 || srv.n("/m.wasm") != 2 {
		t.Errorf("IfNotPresent: sum %s err %v requests %d", s3, err, srv.n("/m.wasm"))
	}
}

func TestConcurrentGetsFetchOnce(t *testing.T) {
	release := make(chan struct{})
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		<-release
		w.Write(testModule)
	})
	c := newTestCache(t, Options{})
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, err := c.Get(context.Background(), Request{URL: srv.URL + "/m.wasm", Timeout: 5 * time.Second})
			errs <- err
		}()
	}
	time.Sleep(100 * time.Millisecond)
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := srv.n("/m.wasm"); got != 1 {
		t.Errorf("requests = %d, want 1", got)
	}
}

func TestPurgeExpired(t *testing.T) {
	srv := moduleServer(t)
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	c := newTestCache(t, Options{Now: clock})
	p1, _, err := c.Get(context.Background(), Request{URL: srv.URL + "/plain.wasm"})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(12 * time.Hour)
	mu.Unlock()
	p2, _, err := c.Get(context.Background(), Request{URL: srv.URL + "/plugin.tar"})
	if err != nil {
		t.Fatal(err)
	}
	if n := c.Purge(now.Add(13 * time.Hour)); n != 1 {
		t.Fatalf("purged %d, want 1 (only the module unused for 25h)", n)
	}
	if _, err := os.Stat(p1); !os.IsNotExist(err) {
		t.Errorf("%s still exists", p1)
	}
	if _, err := os.Stat(p2); err != nil {
		t.Errorf("%s removed too early: %v", p2, err)
	}
	if l := c.List(); len(l) != 1 || l[0].Path != p2 || l[0].Size != int64(len(testModule)) {
		t.Errorf("List = %+v", l)
	}
	// the purged URL is fetched again
	if _, _, err := c.Get(context.Background(), Request{URL: srv.URL + "/plain.wasm"}); err != nil {
		t.Fatal(err)
	}
	if got := srv.n("/plain.wasm"); got != 2 {
		t.Errorf("requests = %d, want 2 after purge", got)
	}
}

func TestFileURLReturnedAsIs(t *testing.T) {
	c := newTestCache(t, Options{})
	p, sum, err := c.Get(context.Background(), Request{URL: "file:///opt/plugins/x.wasm"})
	if err != nil || p != "/opt/plugins/x.wasm" || sum != "" {
		t.Fatalf("got %q %q %v", p, sum, err)
	}
}

func TestEmptyPullSecretFails(t *testing.T) {
	c := newTestCache(t, Options{})
	_, _, err := c.Get(context.Background(), Request{URL: "oci://127.0.0.1:1/x/y:v1", PullSecret: []byte{}})
	if err == nil || !strings.Contains(err.Error(), "pull secret is empty") {
		t.Fatalf("err = %v", err)
	}
}

func TestParseSource(t *testing.T) {
	d := strings.Repeat("a", 64)
	for _, tc := range []struct {
		in                                 string
		scheme, host, repo, tag, dig, name string
	}{
		{in: "oci://reg:5000/ns/plugin:v1", scheme: "oci", host: "reg:5000", repo: "ns/plugin", tag: "v1", name: "oci://reg:5000/ns/plugin"},
		{in: "reg.io/ns/plugin", scheme: "oci", host: "reg.io", repo: "ns/plugin", tag: "latest", name: "oci://reg.io/ns/plugin"},
		{in: "oci://reg.io/p@sha256:" + d, scheme: "oci", host: "reg.io", repo: "p", dig: d, name: "oci://reg.io/p"},
		{in: "oci://reg.io/p:1.0@sha256:" + d, scheme: "oci", host: "reg.io", repo: "p", tag: "1.0", dig: d, name: "oci://reg.io/p"},
		{in: "https://h/x.wasm?a=b", scheme: "https", host: "h", name: "https://h/x.wasm?a=b"},
	} {
		s, err := parseSource(tc.in)
		if err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		if s.scheme != tc.scheme || s.host != tc.host || s.repository != tc.repo || s.tag != tc.tag || s.digest != tc.dig || s.moduleName != tc.name {
			t.Errorf("%s: got %+v", tc.in, *s)
		}
	}
	for _, bad := range []string{"", "ftp://x/y", "oci://noslash", "oci://r/p@sha256:xyz", "http:///nohost"} {
		if _, err := parseSource(bad); err == nil {
			t.Errorf("%q: want error", bad)
		}
	}
}

func TestHTTPSInsecureRegistries(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(testModule) }))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "https://")
	c := newTestCache(t, Options{HTTPMaxRetries: -1})
	if _, _, err := c.Get(context.Background(), Request{URL: srv.URL + "/m.wasm"}); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("self-signed cert without InsecureRegistries: err = %v", err)
	}
	for _, list := range [][]string{{host}, {"127.0.0.1"}, {"*"}} {
		c := newTestCache(t, Options{InsecureRegistries: list})
		if _, _, err := c.Get(context.Background(), Request{URL: srv.URL + "/m.wasm"}); err != nil {
			t.Errorf("InsecureRegistries %v: %v", list, err)
		}
	}
}
