package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	wasmfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/hxds/hxds/internal/app"
	"github.com/hxds/hxds/translate/wasm"
	"github.com/hxds/hxds/wasmfetch/wasmtest"
	"github.com/hxds/hxds/xds/adsclient"
)

// emptyModule is the smallest valid Wasm module (magic and version): what
// direct mode fetches, verifies, caches and serves does not depend on the
// module's content. Loading real proxy-wasm modules is tested in wasmfetch.
var emptyModule = []byte("\x00asm\x01\x00\x00\x00")

// TestWasmDirectMode: hxds fetches a WasmPlugin's module itself and serves
// it on its admin /wasm/<sha256>.wasm, and the ECDS resource an ADS client
// receives points there with that checksum, through the module server's
// cluster. A changed module URL is fetched again.
func TestWasmDirectMode(t *testing.T) {
	var fetches atomic.Int32
	modules := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		_, _ = w.Write(emptyModule)
	}))
	t.Cleanup(modules.Close)
	sum := sha256.Sum256(emptyModule)
	checksum := hex.EncodeToString(sum[:])

	dir := copyQuickstart(t)
	plugin := func(path string) string {
		return fmt.Sprintf(`apiVersion: extensions.higress.io/v1alpha1
kind: WasmPlugin
metadata: {name: block, namespace: higress-system}
spec:
  url: %s%s
  phase: AUTHN
  defaultConfig: {block_urls: [/admin]}
`, modules.URL, path)
	}
	writeFile(t, dir, "60-wasm.yaml", plugin("/block.wasm"))
	const server = "http://hxds.internal:8888/wasm"
	h := startHxds(t, dir, func(c *app.Config) {
		c.Options.WasmModuleServer = server
		c.WasmCacheDir = t.TempDir()
	})
	cl := connect(t, h.xds, adsclient.Options{NodeID: "envoy-1", Cluster: defaultGroup, Delta: true})
	remote := func(s adsclient.Snapshot) *corev3.RemoteDataSource {
		m, ok := s.Types[resourcev3.ExtensionConfigType].Resources["higress-system.block"]
		if !ok {
			return nil
		}
		w := &wasmfilterv3.Wasm{}
		if tec, _ := m.Message.(*corev3.TypedExtensionConfig); tec.GetTypedConfig().UnmarshalTo(w) != nil {
			return nil
		}
		return w.GetConfig().GetVmConfig().GetCode().GetRemote()
	}
	s := cl.wait("the plugin served from hxds's module server", func(s adsclient.Snapshot) bool {
		return remote(s).GetSha256() == checksum
	})
	r := remote(s)
	if r.GetHttpUri().GetUri() != server+"/"+checksum+".wasm" || r.GetHttpUri().GetCluster() != wasm.ModuleServerCluster {
		t.Errorf("remote code: %v", r)
	}
	if s.Cluster(wasm.ModuleServerCluster) == nil {
		t.Errorf("no %s cluster", wasm.ModuleServerCluster)
	}
	// The module server answers with the verified module.
	code, body := h.get(t, "/wasm/"+checksum+".wasm")
	if code != http.StatusOK || string(body) != string(emptyModule) {
		t.Errorf("GET /wasm/<sha256>.wasm: %d %q", code, body)
	}
	if code, _ := h.get(t, "/wasm/"+checksum[:10]+".wasm"); code != http.StatusNotFound {
		t.Errorf("unknown module: %d", code)
	}
	// Another URL: fetched again (the content, so the checksum, is the same).
	before := fetches.Load()
	writeFile(t, dir, "60-wasm.yaml", plugin("/block-v2.wasm"))
	waitUntil(t, "the new URL to be fetched", func() (bool, string) {
		return fetches.Load() > before, fmt.Sprintf("%d fetches", fetches.Load())
	})
}

// TestWasmDirectModeOCI is issue 6's done-when for direct mode: a WasmPlugin
// pointing at a real proxy-wasm module in a local OCI registry reaches an
// ADS client as an HTTP remote source on hxds's module server, whose bytes
// match the checksum Envoy will verify and load as a proxy-wasm module.
func TestWasmDirectModeOCI(t *testing.T) {
	mod := wasmtest.RequirePlugin(t)
	reg := wasmtest.NewRegistry(t)
	digest := wasmtest.Push(t, reg.Host, "plugins/hello", "v1", wasmtest.LayoutOCIArtifact, mod)
	checksum := strings.TrimPrefix(digest, "sha256:")

	dir := copyQuickstart(t)
	writeFile(t, dir, "60-wasm.yaml", fmt.Sprintf(`apiVersion: extensions.higress.io/v1alpha1
kind: WasmPlugin
metadata: {name: hello, namespace: higress-system}
spec:
  url: oci://%s/plugins/hello:v1
  defaultConfig: {greeting: hi}
`, reg.Host))
	const server = "http://hxds.internal:8888/wasm"
	h := startHxds(t, dir, func(c *app.Config) {
		c.Options.WasmModuleServer = server
		c.WasmCacheDir = t.TempDir()
	})
	cl := connect(t, h.xds, adsclient.Options{NodeID: "envoy-1", Cluster: defaultGroup})
	s := cl.wait("the OCI module served from hxds", func(s adsclient.Snapshot) bool {
		r, ok := s.Types[resourcev3.ExtensionConfigType].Resources["higress-system.hello"]
		if !ok {
			return false
		}
		w := &wasmfilterv3.Wasm{}
		tec, _ := r.Message.(*corev3.TypedExtensionConfig)
		return tec.GetTypedConfig().UnmarshalTo(w) == nil && w.GetConfig().GetVmConfig().GetCode().GetRemote().GetSha256() == checksum
	})
	w := &wasmfilterv3.Wasm{}
	_ = s.Types[resourcev3.ExtensionConfigType].Resources["higress-system.hello"].Message.(*corev3.TypedExtensionConfig).GetTypedConfig().UnmarshalTo(w)
	r := w.GetConfig().GetVmConfig().GetCode().GetRemote()
	if r.GetSha256() != checksum || r.GetHttpUri().GetUri() != server+"/"+checksum+".wasm" {
		t.Fatalf("remote code %v, want the manifest digest %s", r, checksum)
	}
	// What Envoy downloads from the module server is the module, and it
	// loads as a proxy-wasm module.
	code, body := h.get(t, "/wasm/"+checksum+".wasm")
	if code != http.StatusOK || !bytes.Equal(body, mod) {
		t.Fatalf("GET /wasm/%s.wasm: %d, %d bytes (want the %d-byte module)", checksum, code, len(body), len(mod))
	}
	file := filepath.Join(t.TempDir(), "served.wasm")
	if err := os.WriteFile(file, body, 0o644); err != nil {
		t.Fatal(err)
	}
	wasmtest.AssertProxyWasm(t, file)
}
