package wasm_test

import (
	"os"
	"path/filepath"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	wasmfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"

	"github.com/hxds/hxds/translate"
	"github.com/hxds/hxds/translate/envoy"
	"github.com/hxds/hxds/translate/input"
	"github.com/hxds/hxds/translate/wasm"
)

const directPlugins = `apiVersion: extensions.higress.io/v1alpha1
kind: WasmPlugin
metadata: {name: ready, namespace: higress-system, resourceVersion: "7"}
spec:
  url: oci://registry.example.com/plugins/ready:1.0.0
  imagePullPolicy: Always
  vmConfig: {env: [{name: LEVEL, value: debug}]}
  defaultConfig: {a: 1}
---
apiVersion: extensions.higress.io/v1alpha1
kind: WasmPlugin
metadata: {name: closed, namespace: higress-system}
spec:
  url: https://downloads.example.com/closed.wasm
  defaultConfig: {a: 1}
---
apiVersion: extensions.higress.io/v1alpha1
kind: WasmPlugin
metadata: {name: open, namespace: higress-system}
spec:
  url: oci://registry.example.com/plugins/open:1.0.0
  failStrategy: FAIL_OPEN
  defaultConfig: {a: 1}
---
apiVersion: extensions.higress.io/v1alpha1
kind: WasmPlugin
metadata: {name: local, namespace: higress-system}
spec:
  url: file:///opt/plugins/local.wasm
  defaultConfig: {a: 1}
`

// TestDirectMode: with a module server, a fetched module is served from it
// under its checksum (no agent hints in the VM env), a FAIL_CLOSE plugin
// without its module gets code Envoy cannot load (it keeps its last config),
// a FAIL_OPEN one an allow-all filter, a file:// one is untouched, and the
// module server has a cluster. Everything passes envoy.Check.
func TestDirectMode(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "plugins.yaml"), []byte(directPlugins), 0o644); err != nil {
		t.Fatal(err)
	}
	snap := load(t, dir)
	const sum = "2b1c8b5e0d2e6c57ed4eb9a6e63d6b2b0f6c33bb0b1e7b1a3f4e1c9d8a7b6c5d"
	snap.WasmModules[input.NamespacedName{Namespace: "higress-system", Name: "ready"}] = &input.WasmModule{
		URL: "oci://registry.example.com/plugins/ready:1.0.0", Checksum: sum, WAMRAOT: true,
	}
	snap.WasmModules[input.NamespacedName{Namespace: "higress-system", Name: "closed"}] = &input.WasmModule{
		URL: "https://downloads.example.com/closed.wasm", Error: "checksum mismatch",
	}
	opts := input.DefaultOptions()
	opts.WasmModuleServer = "http://hxds.example:8888/wasm/"
	res := translate.Translate(snap, opts)
	group := res.Groups[opts.Group]
	if err := envoy.Check(group.AllByType(envoy.IndexSlices(snap.EndpointSlices))); err != nil {
		t.Fatalf("check: %v", err)
	}
	ecds := map[string]*corev3.TypedExtensionConfig{}
	for _, e := range group.ExtensionConfigs {
		ecds[e.Name] = e
	}
	code := func(name string) (*wasmfilterv3.Wasm, *corev3.RemoteDataSource) {
		t.Helper()
		w := &wasmfilterv3.Wasm{}
		if err := ecds[name].GetTypedConfig().UnmarshalTo(w); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return w, w.GetConfig().GetVmConfig().GetCode().GetRemote()
	}
	w, r := code("higress-system.ready")
	if r.GetHttpUri().GetUri() != "http://hxds.example:8888/wasm/"+sum+".wasm" || r.GetSha256() != sum ||
		r.GetHttpUri().GetCluster() != wasm.ModuleServerCluster {
		t.Errorf("fetched module: %v", r)
	}
	if vm := w.GetConfig().GetVmConfig(); vm.GetRuntime() != "envoy.wasm.runtime.wamr" || !vm.GetAllowPrecompiled() {
		t.Errorf("a WAMR AOT module runs on WAMR: %q %v", vm.GetRuntime(), vm.GetAllowPrecompiled())
	}
	if env := w.GetConfig().GetVmConfig().GetEnvironmentVariables().GetKeyValues(); len(env) != 1 || env["LEVEL"] != "debug" {
		t.Errorf("VM env keeps only the user's variables: %v", env)
	}
	if _, r := code("higress-system.closed"); r.GetSha256() == sum || r.GetHttpUri().GetCluster() != wasm.ModuleServerCluster {
		t.Errorf("unavailable FAIL_CLOSE module: %v", r)
	}
	if err := ecds["higress-system.open"].GetTypedConfig().UnmarshalTo(&rbacv3.RBAC{}); err != nil {
		t.Errorf("unavailable FAIL_OPEN module is not an allow-all RBAC filter: %v", err)
	}
	if w, _ := code("higress-system.local"); w.GetConfig().GetVmConfig().GetCode().GetLocal().GetFilename() != "/opt/plugins/local.wasm" {
		t.Errorf("file:// module changed: %v", w.GetConfig().GetVmConfig().GetCode())
	}
	found := false
	for _, c := range group.Clusters {
		if c.Name == wasm.ModuleServerCluster {
			found = true
		}
	}
	if !found {
		t.Errorf("no %s cluster", wasm.ModuleServerCluster)
	}
	errs := 0
	for _, st := range res.Diagnostics.List() {
		for _, f := range st.Findings {
			if f.Reason == "wasm-module-unavailable" {
				errs++
			}
		}
	}
	if errs != 2 {
		t.Errorf("want 2 wasm-module-unavailable findings, got %d", errs)
	}
}
