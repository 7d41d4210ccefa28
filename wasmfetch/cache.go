// Package wasmfetch resolves remote Wasm module URLs (oci://, http(s)://, file://) to local files
// in a sha256-addressed cache, following Istio's agent-side Wasm cache semantics (Higress spec
// §7.5):
//
//   - oci:// (the default scheme when a URL has none) is pulled with oras-go; Docker-compat images
//     (last layer application/vnd.docker.image.rootfs.diff.tar.gzip containing plugin.wasm),
//     OCI-compat images (last layer application/vnd.oci.image.layer.v1.tar+gzip containing
//     plugin.wasm) and OCI artifacts (exactly two layers, one
//     application/vnd.module.wasm.content.layer.v1+wasm) are supported. The checksum is the hex
//     manifest digest. Pull secrets are docker config JSON.
//   - http(s):// is fetched with retries (exponential backoff, 5xx except 501/505/511 and transport
//     errors are retried), a per-attempt timeout and a body cap; gzip and tar bodies are unpacked
//     (first regular file). The checksum is the hex sha256 of the module bytes.
//   - file:// is returned as is.
//
// Modules are stored as <dir>/<sha256(moduleName)>/<checksum>.wasm (moduleName = URL without tag
// and digest for OCI, the URL otherwise), written atomically. Pull policies decide whether the last
// checksum seen for a URL may be reused without contacting the source. Purge removes modules
// unused for Options.ModuleExpiry.
package wasmfetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
)

// PullPolicy mirrors Istio's WasmPlugin imagePullPolicy.
type PullPolicy int

const (
	// PullUnspecified behaves as PullIfNotPresent, except for OCI URLs whose tag is ":latest",
	// which behave as PullAlways.
	PullUnspecified PullPolicy = iota
	// PullIfNotPresent reuses the last checksum seen for the URL.
	PullIfNotPresent
	// PullAlways reuses the last checksum seen for the URL only while ResourceVersion is unchanged.
	PullAlways
)

func (p PullPolicy) String() string {
	switch p {
	case PullIfNotPresent:
		return "IfNotPresent"
	case PullAlways:
		return "Always"
	default:
		return "Unspecified"
	}
}

// Request describes one module to resolve.
type Request struct {
	// URL of the module: oci://host/repo[:tag][@sha256:hex], host/repo[:tag] (oci implied),
	// http(s)://..., file:///path.
	URL string
	// SHA256 is the expected checksum (hex, optionally prefixed "sha256:"). For OCI it is compared
	// with the manifest digest, for HTTP with the sha256 of the module bytes. "" and "nil" mean
	// unset. An OCI URL's @sha256: digest counts as the checksum when SHA256 is unset.
	SHA256     string
	PullPolicy PullPolicy
	// PullSecret is a docker config JSON ({"auths": {...}} or the legacy .dockercfg map). nil means
	// anonymous pulls; a non-nil empty slice is an error (the referenced secret had no content).
	PullSecret []byte
	// ResourceVersion of the owning object (WasmPlugin); PullAlways re-pulls when it changes.
	ResourceVersion string
	// Timeout bounds the whole fetch (all retries). 0 means Options.DefaultTimeout.
	Timeout time.Duration
}

// Options configure a Cache. Zero values select the defaults in brackets.
type Options struct {
	ModuleExpiry       time.Duration // [24h] Purge deletes modules unused for this long
	PurgeInterval      time.Duration // [1h] interval of the Run loop
	DefaultTimeout     time.Duration // [5s] whole-fetch timeout when Request.Timeout is 0
	HTTPRequestTimeout time.Duration // [15s] per HTTP attempt
	HTTPMaxRetries     int           // [5] retries after the first HTTP attempt; <0 means none
	HTTPInitialBackoff time.Duration // [500ms] doubled after every retry
	MaxModuleSize      int64         // [256 MiB] cap on HTTP bodies, OCI layers and unpacked modules
	// InsecureRegistries lists hosts (host or host:port; "*" = all) whose TLS certificates are not
	// verified (HTTP and OCI) and which OCI pulls reach over plain HTTP. Loopback OCI registries
	// (localhost, 127.0.0.0/8, ::1) are always reached over plain HTTP.
	InsecureRegistries []string
	MaxErrors          int              // [32] recent errors kept for Errors()
	Now                func() time.Time // [time.Now] clock used for last-used stamps
	// Transport is the base HTTP transport (tests); nil means a clone of http.DefaultTransport.
	Transport *http.Transport
}

func (o *Options) defaults() {
	if o.ModuleExpiry <= 0 {
		o.ModuleExpiry = 24 * time.Hour
	}
	if o.PurgeInterval <= 0 {
		o.PurgeInterval = time.Hour
	}
	if o.DefaultTimeout <= 0 {
		o.DefaultTimeout = 5 * time.Second
	}
	if o.HTTPRequestTimeout <= 0 {
		o.HTTPRequestTimeout = 15 * time.Second
	}
	if o.HTTPMaxRetries == 0 {
		o.HTTPMaxRetries = 5
	} else if o.HTTPMaxRetries < 0 {
		o.HTTPMaxRetries = 0
	}
	if o.HTTPInitialBackoff <= 0 {
		o.HTTPInitialBackoff = 500 * time.Millisecond
	}
	if o.MaxModuleSize <= 0 {
		o.MaxModuleSize = 256 << 20
	}
	if o.MaxErrors <= 0 {
		o.MaxErrors = 32
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// ModuleInfo describes one cached module (for /debug listings).
type ModuleInfo struct {
	URL        string    `json:"url"`
	ModuleName string    `json:"moduleName"`
	Checksum   string    `json:"checksum"`
	Size       int64     `json:"size"`
	LastUsed   time.Time `json:"lastUsed"`
	Path       string    `json:"path"`
}

// FetchError records one failed Get.
type FetchError struct {
	Time  time.Time `json:"time"`
	URL   string    `json:"url"`
	Error string    `json:"error"`
}

type moduleKey struct{ name, checksum string }

type urlState struct {
	moduleName      string
	checksum        string
	resourceVersion string
}

// Cache is a concurrency-safe module cache. Create it with New.
type Cache struct {
	dir  string
	opts Options

	secureClient   *http.Client
	insecureClient *http.Client

	sf singleflight.Group

	hits, downloads, failures atomic.Uint64

	mu      sync.Mutex
	modules map[moduleKey]*ModuleInfo
	byURL   map[string]urlState
	errs    []FetchError
}

// New creates the cache directory and returns a Cache storing modules under it.
func New(dir string, opts Options) (*Cache, error) {
	opts.defaults()
	if dir == "" {
		return nil, errors.New("wasmfetch: empty cache directory")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("wasmfetch: create cache dir: %w", err)
	}
	base := opts.Transport
	if base == nil {
		base = http.DefaultTransport.(*http.Transport).Clone()
	} else {
		base = base.Clone()
	}
	insecure := base.Clone()
	if insecure.TLSClientConfig == nil {
		insecure.TLSClientConfig = newInsecureTLS()
	} else {
		insecure.TLSClientConfig = insecure.TLSClientConfig.Clone()
		insecure.TLSClientConfig.InsecureSkipVerify = true
	}
	return &Cache{
		dir:            abs,
		opts:           opts,
		secureClient:   &http.Client{Transport: base},
		insecureClient: &http.Client{Transport: insecure},
		modules:        map[moduleKey]*ModuleInfo{},
		byURL:          map[string]urlState{},
	}, nil
}

// Stats counts what Get did since New.
type Stats struct {
	// Hits are Gets answered from the cache without contacting the source.
	Hits uint64 `json:"hits"`
	// Downloads are modules fetched, verified and stored (concurrent Gets of one module share one).
	Downloads uint64 `json:"downloads"`
	// Failures are Gets that returned an error.
	Failures uint64 `json:"failures"`
}

// Stats returns the cache's counters.
func (c *Cache) Stats() Stats {
	return Stats{Hits: c.hits.Load(), Downloads: c.downloads.Load(), Failures: c.failures.Load()}
}

// Dir returns the absolute cache directory.
func (c *Cache) Dir() string { return c.dir }

// Get resolves req to a local file. It returns the file path and the module checksum (hex; empty
// for file:// URLs, which are returned as is without fetching).
func (c *Cache) Get(ctx context.Context, req Request) (path, checksum string, err error) {
	path, checksum, err = c.get(ctx, req)
	if err != nil {
		c.failures.Add(1)
		c.recordError(req.URL, err)
	}
	return path, checksum, err
}

func (c *Cache) get(ctx context.Context, req Request) (string, string, error) {
	src, err := parseSource(req.URL)
	if err != nil {
		return "", "", err
	}
	if src.scheme == "file" {
		return src.filePath, "", nil
	}
	if req.PullSecret != nil && len(req.PullSecret) == 0 {
		return "", "", fmt.Errorf("wasmfetch: %s: pull secret is empty", req.URL)
	}
	want := normalizeChecksum(req.SHA256)
	if want == "" && src.digest != "" {
		want = src.digest
	}
	policy := req.PullPolicy
	if policy == PullUnspecified {
		policy = PullIfNotPresent
		if src.scheme == "oci" && src.tag == "latest" && src.digest == "" {
			policy = PullAlways
		}
	}

	// Cache lookup: the pinned checksum, else the last one seen for the URL if the policy allows.
	lookup := want
	c.mu.Lock()
	if lookup == "" {
		if st, ok := c.byURL[req.URL]; ok && (policy == PullIfNotPresent || st.resourceVersion == req.ResourceVersion) {
			lookup = st.checksum
		}
	}
	if lookup != "" {
		if p, ok := c.hitLocked(req, src, lookup); ok {
			c.mu.Unlock()
			c.hits.Add(1)
			return p, lookup, nil
		}
	}
	c.mu.Unlock()

	timeout := req.Timeout
	if timeout <= 0 {
		timeout = c.opts.DefaultTimeout
	}
	// Requests with different pull secrets never share a fetch (a wrong secret must not ride on a
	// right one, nor fail it).
	key := req.URL + "\x00" + want + "\x00" + digestHex(req.PullSecret)
	ch := c.sf.DoChan(key, func() (any, error) {
		// Detached from the first caller's cancellation so one impatient caller does not fail the
		// others; bounded by the timeout instead.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		defer cancel()
		return c.fetchAndStore(fctx, req, src, want)
	})
	select {
	case <-ctx.Done():
		return "", "", ctx.Err()
	case r := <-ch:
		if r.Err != nil {
			return "", "", r.Err
		}
		info := r.Val.(ModuleInfo)
		c.mu.Lock()
		c.byURL[req.URL] = urlState{moduleName: src.moduleName, checksum: info.Checksum, resourceVersion: req.ResourceVersion}
		if e, ok := c.modules[moduleKey{src.moduleName, info.Checksum}]; ok {
			e.LastUsed = c.opts.Now()
			e.URL = req.URL
		}
		c.mu.Unlock()
		return info.Path, info.Checksum, nil
	}
}

// hitLocked returns the cached file for (module, checksum) if present, registering files found on
// disk (e.g. after a restart). c.mu must be held.
func (c *Cache) hitLocked(req Request, src *source, checksum string) (string, bool) {
	k := moduleKey{src.moduleName, checksum}
	now := c.opts.Now()
	if e, ok := c.modules[k]; ok {
		if _, err := os.Stat(e.Path); err == nil {
			e.LastUsed = now
			e.URL = req.URL
			c.byURL[req.URL] = urlState{moduleName: src.moduleName, checksum: checksum, resourceVersion: req.ResourceVersion}
			return e.Path, true
		}
		delete(c.modules, k)
	}
	p := c.modulePath(src.moduleName, checksum)
	if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
		c.modules[k] = &ModuleInfo{URL: req.URL, ModuleName: src.moduleName, Checksum: checksum, Size: fi.Size(), LastUsed: now, Path: p}
		c.byURL[req.URL] = urlState{moduleName: src.moduleName, checksum: checksum, resourceVersion: req.ResourceVersion}
		return p, true
	}
	return "", false
}

func (c *Cache) fetchAndStore(ctx context.Context, req Request, src *source, want string) (any, error) {
	var (
		data []byte
		sum  string
		err  error
	)
	switch src.scheme {
	case "http", "https":
		data, err = c.fetchHTTP(ctx, req.URL, src.host)
		if err == nil {
			sum = digestHex(data)
		}
	case "oci":
		data, sum, err = c.fetchOCI(ctx, src, req.PullSecret)
	default:
		err = fmt.Errorf("unsupported scheme %q", src.scheme)
	}
	if err != nil {
		return nil, fmt.Errorf("wasmfetch: fetch %s: %w", req.URL, err)
	}
	if want != "" && want != sum {
		return nil, fmt.Errorf("wasmfetch: %s: checksum mismatch: want %s, got %s", req.URL, want, sum)
	}
	if err := validateWasm(data); err != nil {
		return nil, fmt.Errorf("wasmfetch: %s: %w", req.URL, err)
	}
	p := c.modulePath(src.moduleName, sum)
	if err := writeAtomic(p, data); err != nil {
		return nil, fmt.Errorf("wasmfetch: store %s: %w", req.URL, err)
	}
	info := ModuleInfo{URL: req.URL, ModuleName: src.moduleName, Checksum: sum, Size: int64(len(data)), LastUsed: c.opts.Now(), Path: p}
	c.downloads.Add(1)
	c.mu.Lock()
	cp := info
	c.modules[moduleKey{src.moduleName, sum}] = &cp
	c.mu.Unlock()
	return info, nil
}

func (c *Cache) modulePath(moduleName, checksum string) string {
	h := sha256.Sum256([]byte(moduleName))
	return filepath.Join(c.dir, hex.EncodeToString(h[:]), checksum+".wasm")
}

func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".tmp-*.wasm")
	if err != nil {
		return err
	}
	tmp := f.Name()
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// Purge deletes modules whose last use is older than now - ModuleExpiry and forgets the URL
// checksums pointing at them. It returns the number of modules removed.
func (c *Cache) Purge(now time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for k, e := range c.modules {
		if now.Sub(e.LastUsed) <= c.opts.ModuleExpiry {
			continue
		}
		if err := os.Remove(e.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
			continue
		}
		_ = os.Remove(filepath.Dir(e.Path)) // only succeeds when empty
		delete(c.modules, k)
		n++
		for u, st := range c.byURL {
			if st.moduleName == k.name && st.checksum == k.checksum {
				delete(c.byURL, u)
			}
		}
	}
	return n
}

// Run purges expired modules every PurgeInterval until ctx is done.
func (c *Cache) Run(ctx context.Context) {
	t := time.NewTicker(c.opts.PurgeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.Purge(c.opts.Now())
		}
	}
}

// List returns the cached modules sorted by path.
func (c *Cache) List() []ModuleInfo {
	c.mu.Lock()
	out := make([]ModuleInfo, 0, len(c.modules))
	for _, e := range c.modules {
		out = append(out, *e)
	}
	c.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// Errors returns the most recent failed Gets, oldest first.
func (c *Cache) Errors() []FetchError {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]FetchError(nil), c.errs...)
}

func (c *Cache) recordError(url string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.errs = append(c.errs, FetchError{Time: c.opts.Now(), URL: url, Error: err.Error()})
	if over := len(c.errs) - c.opts.MaxErrors; over > 0 {
		c.errs = append(c.errs[:0:0], c.errs[over:]...)
	}
}

func normalizeChecksum(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "nil" {
		return ""
	}
	return strings.TrimPrefix(s, "sha256:")
}

func (c *Cache) insecureHost(host string) bool {
	for _, h := range c.opts.InsecureRegistries {
		if h == "*" || strings.EqualFold(h, host) || strings.EqualFold(h, hostOnly(host)) {
			return true
		}
	}
	return false
}

func (c *Cache) clientFor(host string) *http.Client {
	if c.insecureHost(host) {
		return c.insecureClient
	}
	return c.secureClient
}
