// Package wasmtest holds test support for Wasm module fetching: a real
// proxy-wasm module built from source, an in-process OCI registry and an
// oras-go push helper, and a wazero check of a module's proxy_on_* exports.
// It is imported by tests only.
package wasmtest

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
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/tetratelabs/wazero"
	"oras.land/oras-go/v2/registry/remote"
)

// ProxyWasmSDKVersion is the proxy-wasm-go-sdk version the test plugin is built with.
const ProxyWasmSDKVersion = "v0.0.0-20250212164326-ab4161dcf924"

// Media types of the OCI layouts Push supports (as in wasmfetch).
const (
	mediaTypeDockerManifest  = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeDockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	mediaTypeOCILayerGzip    = "application/vnd.oci.image.layer.v1.tar+gzip"
	mediaTypeWasmContent     = "application/vnd.module.wasm.content.layer.v1+wasm"
)

// MinimalWasm is a tiny valid wasm binary: the header plus one custom section named tag.
func MinimalWasm(tag string) []byte {
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

var (
	buildOnce sync.Once
	built     []byte
	buildErr  error
)

// Plugin returns a tiny proxy-wasm-go-sdk plugin compiled with GOOS=wasip1
// GOARCH=wasm (built once per process).
func Plugin() ([]byte, error) {
	buildOnce.Do(func() { built, buildErr = buildPlugin() })
	return built, buildErr
}

// RequirePlugin returns the real plugin, failing the test in CI and skipping
// it elsewhere when it cannot be built (e.g. no module download possible).
func RequirePlugin(t testing.TB) []byte {
	t.Helper()
	b, err := Plugin()
	if err == nil {
		return b
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("real proxy-wasm module unavailable: %v", err)
	}
	t.Skipf("real proxy-wasm module unavailable: %v", err)
	return nil
}

func buildPlugin() ([]byte, error) {
	dir, err := os.MkdirTemp("", "hxds-wasmplugin-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	gomod := "module hxdstestplugin\n\ngo 1.24\n\nrequire github.com/proxy-wasm/proxy-wasm-go-sdk " + ProxyWasmSDKVersion + "\n"
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

// ProxyExports compiles the wasm file with wazero and returns its proxy_on_* exports.
func ProxyExports(t testing.TB, path string) map[string]bool {
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

// AssertProxyWasm fails the test unless path compiles and exports the core proxy_on_* functions.
func AssertProxyWasm(t testing.TB, path string) {
	t.Helper()
	ex := ProxyExports(t, path)
	for _, want := range []string{"proxy_on_vm_start", "proxy_on_context_create", "proxy_on_request_headers", "proxy_on_configure"} {
		if !ex[want] {
			t.Errorf("%s: missing export %s (have %v)", path, want, ex)
		}
	}
}

// Registry is an in-process OCI registry on loopback that counts manifest requests.
type Registry struct {
	Host string // host:port
	srv  *httptest.Server

	mu        sync.Mutex
	manifests int
}

// NewRegistry starts a registry that is closed when the test ends.
func NewRegistry(t testing.TB) *Registry {
	t.Helper()
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	r := &Registry{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if strings.Contains(req.URL.Path, "/manifests/") && req.Method != http.MethodPut {
			r.mu.Lock()
			r.manifests++
			r.mu.Unlock()
		}
		h.ServeHTTP(w, req)
	}))
	t.Cleanup(r.srv.Close)
	r.Host = strings.TrimPrefix(r.srv.URL, "http://")
	return r
}

// Close stops the registry (a registry that is down).
func (r *Registry) Close() { r.srv.Close() }

// ManifestGets is the number of manifest reads (GET/HEAD) so far.
func (r *Registry) ManifestGets() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.manifests
}

// Layout is an OCI image layout of a Wasm module.
type Layout int

// Supported layouts.
const (
	LayoutDocker Layout = iota
	LayoutOCICompat
	LayoutOCIArtifact
)

func (l Layout) String() string {
	return [...]string{"docker", "oci-compat", "oci-artifact"}[l]
}

// Push pushes wasm as host/repo:tag in the given layout with oras-go and
// returns the hex manifest digest.
func Push(t testing.TB, host, repo, tag string, layout Layout, wasm []byte) string {
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
	case LayoutDocker:
		m.MediaType = mediaTypeDockerManifest
		m.Config = push("application/vnd.docker.container.image.v1+json", []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`))
		m.Layers = []ocispec.Descriptor{
			push(mediaTypeDockerLayerGzip, Gzip(t, Tar(t, "README", []byte("base layer")))),
			push(mediaTypeDockerLayerGzip, Gzip(t, Tar(t, "plugin.wasm", wasm))),
		}
	case LayoutOCICompat:
		m.MediaType = ocispec.MediaTypeImageManifest
		m.Config = push(ocispec.MediaTypeImageConfig, []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`))
		layer := Tar(t, "plugin.wasm", wasm)
		if wasm == nil {
			layer = Tar(t, "README", []byte("no plugin here"))
		}
		m.Layers = []ocispec.Descriptor{push(mediaTypeOCILayerGzip, Gzip(t, layer))}
	case LayoutOCIArtifact:
		m.MediaType = ocispec.MediaTypeImageManifest
		m.Config = push("application/vnd.module.wasm.config.v1+json", []byte(`{}`))
		m.Layers = []ocispec.Descriptor{
			push(mediaTypeWasmContent, wasm),
			push("application/vnd.module.wasm.content.layer.v1+tar", Tar(t, "README", []byte("docs"))),
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

// Gzip compresses b.
func Gzip(t testing.TB, b []byte) []byte {
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

// Tar builds a tar archive of name/content pairs (after a directory entry).
func Tar(t testing.TB, files ...any) []byte {
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
