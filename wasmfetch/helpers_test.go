package wasmfetch

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/hxds/hxds/wasmfetch/wasmtest"
)

var (
	// testModule is the proxy-wasm module served in tests; realModule reports whether it is a real
	// proxy-wasm-go-sdk build (else a hand-written minimal wasm binary).
	testModule  []byte
	realModule  bool
	buildErrMsg string
	// otherModule is a second, different valid module (for re-pull tests).
	otherModule = wasmtest.MinimalWasm("v2")
)

func TestMain(m *testing.M) {
	b, err := wasmtest.Plugin()
	if err != nil {
		buildErrMsg = err.Error()
		fmt.Fprintf(os.Stderr, "wasmfetch tests: building the proxy-wasm plugin failed, falling back to a hand-written wasm binary (loading tests will fail/skip): %v\n", err)
		testModule = wasmtest.MinimalWasm("fallback")
	} else {
		testModule, realModule = b, true
	}
	os.Exit(m.Run())
}

// requireRealModule fails in CI and skips elsewhere when the real plugin could not be built.
func requireRealModule(t *testing.T) {
	t.Helper()
	if realModule {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("real proxy-wasm module unavailable: %s", buildErrMsg)
	}
	t.Skipf("real proxy-wasm module unavailable: %s", buildErrMsg)
}

func newTestCache(t *testing.T, opts Options) *Cache {
	t.Helper()
	if opts.HTTPInitialBackoff == 0 {
		opts.HTTPInitialBackoff = 5 * time.Millisecond
	}
	c, err := New(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// ---- OCI registry helpers ----

// The OCI layouts and pushes are wasmtest's.
type ociLayout = wasmtest.Layout

const (
	layoutDocker      = wasmtest.LayoutDocker
	layoutOCICompat   = wasmtest.LayoutOCICompat
	layoutOCIArtifact = wasmtest.LayoutOCIArtifact
)

// newRegistry starts an in-process OCI registry on loopback and returns its host:port.
func newRegistry(t *testing.T) (host string, handler http.Handler) {
	t.Helper()
	h := registry.New(registry.Logger(nopLogger()))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), h
}

// pushImage pushes wasm as host/repo:tag in the given layout with oras-go
// and returns the hex manifest digest.
func pushImage(t *testing.T, host, repo, tag string, layout ociLayout, wasm []byte) string {
	t.Helper()
	return wasmtest.Push(t, host, repo, tag, layout, wasm)
}

func nopLogger() *log.Logger { return log.New(io.Discard, "", 0) }
