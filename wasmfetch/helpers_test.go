package wasmfetch

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/tetratelabs/wazero"
	"oras.land/oras-go/v2/registry/remote"
)

const proxyWasmSDKVersion = "v0.0.0-20250212164326-ab4161dcf924"

var (
	// testModule is the proxy-wasm module served in tests; realModule reports whether it is a real
	// proxy-wasm-go-sdk build (else a hand-written minimal wasm binary).
	testModule  []byte
	realModule  bool
	buildErrMsg string
	// otherModule is a second, different valid module (for re-pull tests).
	otherModule = minimalWasm("v2")
)

// minimalWasm is a tiny valid wasm binary: the header plus one custom section named tag.
func minimalWasm(tag string) []byte {
	b := []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}
	payload := append([]byte{byte(len(tag))}, tag...)
	return append(append(b, 0x00, byte(len(payload))), payload...)
}

const pluginSource = `package main

import (
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func init() { proxywasm.SetVMContext(&vm{}) }

func main() {}

type vm struct{ types.DefaultVMContext }

func (*vm) NewPluginContext(uint32) types.PluginContext { return &plugin{} }

type plugin struct{ types.DefaultPluginContext }

func (*plugin) NewHttpContext(uint32) types.HttpContext { return &httpCtx{} }

type httpCtx struct{ types.DefaultHttpContext }

func (*httpCtx) OnHttpRequestHeaders(int, bool) types.Action {
	_ = proxywasm.AddHttpRequestHeader("x-hxds-wasm", "1")
	return types.ActionContinue
}
`

// buildPlugin compiles a tiny proxy-wasm-go-sdk plugin with GOOS=wasip1 GOARCH=wasm.
func buildPlugin() ([]byte, error) {
	dir, err := os.MkdirTemp("", "hxds-wasmplugin-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	gomod := "module hxdstestplugin\n\ngo 1.24\n\nrequire github.com/proxy-wasm/proxy-wasm-go-sdk " + proxyWasmSDKVersion + "\n"
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(pluginSource), 0o644); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-buildmode=c-shared", "-o", "plugin.wasm", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "GOFLAGS=-mod=mod", "GOWORK=off", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%v: %s", err, out)
	}
	return os.ReadFile(filepath.Join(dir, "plugin.wasm"))
}

func TestMain(m *testing.M) {
	b, err := buildPlugin()
	if err != nil {
		buildErrMsg = err.Error()
		fmt.Fprintf(os.Stderr, "wasmfetch tests: building the proxy-wasm plugin failed, falling back to a hand-written wasm binary (loading tests will fail/skip): %v\n", err)
		testModule = minimalWasm("fallback")
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

// proxyExports compiles the wasm file with wazero and returns its proxy_on_* exports.
func proxyExports(t *testing.T, path string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer r.Close(ctx)
	cm, err := r.CompileModule(ctx, b)
	if err != nil {
		t.Fatalf("wazero compile %s: %v", path, err)
	}
	out := map[string]bool{}
	for name := range cm.ExportedFunctions() {
		if strings.HasPrefix(name, "proxy_on_") {
			out[name] = true
		}
	}
	return out
}

func assertLoadsAsProxyWasm(t *testing.T, path string) {
	t.Helper()
	requireRealModule(t)
	ex := proxyExports(t, path)
	for _, want := range []string{"proxy_on_vm_start", "proxy_on_context_create", "proxy_on_request_headers", "proxy_on_configure"} {
		if !ex[want] {
			t.Errorf("%s: missing export %s (have %v)", path, want, ex)
		}
	}
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

func gzipBytes(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func tarBytes(t *testing.T, files ...any) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "dir/", Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(files); i += 2 {
		name, data := files[i].(string), files[i+1].([]byte)
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// ---- OCI registry helpers ----

type ociLayout int

const (
	layoutDocker ociLayout = iota
	layoutOCICompat
	layoutOCIArtifact
)

func (l ociLayout) String() string {
	return [...]string{"docker", "oci-compat", "oci-artifact"}[l]
}

// newRegistry starts an in-process OCI registry on loopback and returns its host:port.
func newRegistry(t *testing.T) (host string, handler http.Handler) {
	t.Helper()
	h := registry.New(registry.Logger(nopLogger()))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), h
}

// pushImage pushes wasm as host/repo:tag in the given layout with oras-go and returns the hex
// manifest digest.
func pushImage(t *testing.T, host, repo, tag string, layout ociLayout, wasm []byte) string {
	t.Helper()
	ctx := context.Background()
	r, err := remote.NewRepository(host + "/" + repo)
	if err != nil {
		t.Fatal(err)
	}
	r.PlainHTTP = true
	push := func(mt string, b []byte) ocispec.Descriptor {
		d := ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(b), Size: int64(len(b))}
		if err := r.Push(ctx, d, bytes.NewReader(b)); err != nil {
			t.Fatalf("push blob %s: %v", mt, err)
		}
		return d
	}
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}}
	switch layout {
	case layoutDocker:
		m.MediaType = MediaTypeDockerManifest
		m.Config = push("application/vnd.docker.container.image.v1+json", []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`))
		m.Layers = []ocispec.Descriptor{
			push(MediaTypeDockerLayerGzip, gzipBytes(t, tarBytes(t, "README", []byte("base layer")))),
			push(MediaTypeDockerLayerGzip, gzipBytes(t, tarBytes(t, "plugin.wasm", wasm))),
		}
	case layoutOCICompat:
		m.MediaType = ocispec.MediaTypeImageManifest
		m.Config = push(ocispec.MediaTypeImageConfig, []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`))
		layer := tarBytes(t, "plugin.wasm", wasm)
		if wasm == nil { // an image without plugin.wasm
			layer = tarBytes(t, "README", []byte("no plugin here"))
		}
		m.Layers = []ocispec.Descriptor{push(MediaTypeOCILayerGzip, gzipBytes(t, layer))}
	case layoutOCIArtifact:
		m.MediaType = ocispec.MediaTypeImageManifest
		m.Config = push("application/vnd.module.wasm.config.v1+json", []byte(`{}`))
		m.Layers = []ocispec.Descriptor{
			push(MediaTypeWasmContent, wasm),
			push("application/vnd.module.wasm.content.layer.v1+tar", tarBytes(t, "README", []byte("docs"))),
		}
	}
	mb, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	md := ocispec.Descriptor{MediaType: m.MediaType, Digest: digest.FromBytes(mb), Size: int64(len(mb))}
	if err := r.PushReference(ctx, md, bytes.NewReader(mb), tag); err != nil {
		t.Fatalf("push manifest: %v", err)
	}
	return md.Digest.Encoded()
}

func nopLogger() *log.Logger { return log.New(io.Discard, "", 0) }
