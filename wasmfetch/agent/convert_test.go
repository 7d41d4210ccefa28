package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	wasmfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/hxds/hxds/wasmfetch"
)

type fakeFetcher struct {
	mu   sync.Mutex
	reqs []wasmfetch.Request
	err  error
}

func (f *fakeFetcher) Get(_ context.Context, req wasmfetch.Request) (string, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, req)
	if f.err != nil {
		return "", "", f.err
	}
	if req.PullSecret != nil && len(req.PullSecret) == 0 {
		return "", "", errors.New("pull secret is empty")
	}
	return "/cache/" + req.URL + ".wasm", "abc", nil
}

func remoteWasm(t *testing.T, env map[string]string, sha string, failOpen bool) *anypb.Any {
	t.Helper()
	vm := &wasmv3.VmConfig{Runtime: "envoy.wasm.runtime.v8", Code: &corev3.AsyncDataSource{Specifier: &corev3.AsyncDataSource_Remote{Remote: &corev3.RemoteDataSource{
		HttpUri: &corev3.HttpUri{Uri: "oci://r/p:v1", HttpUpstreamType: &corev3.HttpUri_Cluster{Cluster: "_"}, Timeout: durationpb.New(30 * time.Second)},
		Sha256:  sha,
	}}}}
	if env != nil {
		vm.EnvironmentVariables = &wasmv3.EnvironmentVariables{KeyValues: env}
	}
	w := &wasmfilterv3.Wasm{Config: &wasmv3.PluginConfig{Name: "ns.p", RootId: "p", Vm: &wasmv3.PluginConfig_VmConfig{VmConfig: vm}, FailOpen: failOpen}}
	return mustAny(&corev3.TypedExtensionConfig{Name: "ns.p", TypedConfig: mustAny(w)})
}

func decodeWasm(t *testing.T, a *anypb.Any) *wasmv3.VmConfig {
	t.Helper()
	tec := &corev3.TypedExtensionConfig{}
	if err := a.UnmarshalTo(tec); err != nil {
		t.Fatal(err)
	}
	w := &wasmfilterv3.Wasm{}
	if err := tec.GetTypedConfig().UnmarshalTo(w); err != nil {
		t.Fatal(err)
	}
	return w.GetConfig().GetVmConfig()
}

func TestConvertRemote(t *testing.T) {
	f := &fakeFetcher{}
	in := remoteWasm(t, map[string]string{
		envPullSecret: `{"auths":{}}`, envPullPolicy: "Always", envResourceVersion: "7", "ISTIO_META_OTHER": "x", "MODE": "strict",
	}, "nil", false)
	out, oc, err := convertResource(context.Background(), f, in)
	if err != nil || oc != converted {
		t.Fatalf("convert: %v %v", oc, err)
	}
	vm := decodeWasm(t, out)
	if got := vm.GetCode().GetLocal().GetFilename(); got != "/cache/oci://r/p:v1.wasm" {
		t.Errorf("code %v", vm.GetCode())
	}
	if kv := vm.GetEnvironmentVariables().GetKeyValues(); len(kv) != 1 || kv["MODE"] != "strict" {
		t.Errorf("env %v", kv)
	}
	r := f.reqs[0]
	if r.URL != "oci://r/p:v1" || r.SHA256 != "" || string(r.PullSecret) != `{"auths":{}}` || r.PullPolicy != wasmfetch.PullAlways ||
		r.ResourceVersion != "7" || r.Timeout != 30*time.Second {
		t.Errorf("request %+v", r)
	}
	// The input is not modified.
	if decodeWasm(t, in).GetCode().GetRemote() == nil {
		t.Error("input modified")
	}
}

func TestConvertDropsEmptyEnvAndKeepsSHA(t *testing.T) {
	f := &fakeFetcher{}
	out, _, err := convertResource(context.Background(), f, remoteWasm(t, map[string]string{envPullPolicy: "IfNotPresent"}, "deadbeef", false))
	if err != nil {
		t.Fatal(err)
	}
	if vm := decodeWasm(t, out); vm.GetEnvironmentVariables() != nil {
		t.Errorf("env block kept: %v", vm.GetEnvironmentVariables())
	}
	if r := f.reqs[0]; r.SHA256 != "deadbeef" || r.PullPolicy != wasmfetch.PullIfNotPresent || r.PullSecret != nil {
		t.Errorf("request %+v", r)
	}
}

func TestConvertEmptyPullSecretFails(t *testing.T) {
	_, _, err := convertResource(context.Background(), &fakeFetcher{}, remoteWasm(t, map[string]string{envPullSecret: ""}, "nil", false))
	if err == nil || !strings.Contains(err.Error(), "pull secret is empty") {
		t.Fatalf("err %v", err)
	}
}

func TestConvertFailOpen(t *testing.T) {
	out, oc, err := convertResource(context.Background(), &fakeFetcher{err: errors.New("down")}, remoteWasm(t, nil, "nil", true))
	if oc != failedOpen || err == nil || out == nil {
		t.Fatalf("%v %v %v", out, oc, err)
	}
	tec := &corev3.TypedExtensionConfig{}
	if err := out.UnmarshalTo(tec); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(tec, &corev3.TypedExtensionConfig{Name: "ns.p", TypedConfig: mustAny(&rbacv3.RBAC{})}) {
		t.Errorf("got %v", tec)
	}
}

func TestConvertPassThrough(t *testing.T) {
	f := &fakeFetcher{}
	local := mustAny(&corev3.TypedExtensionConfig{Name: "l", TypedConfig: mustAny(&wasmfilterv3.Wasm{Config: &wasmv3.PluginConfig{
		Vm: &wasmv3.PluginConfig_VmConfig{VmConfig: &wasmv3.VmConfig{Code: &corev3.AsyncDataSource{Specifier: &corev3.AsyncDataSource_Local{
			Local: &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: "/p.wasm"}}}}}},
	}})})
	other := mustAny(&corev3.TypedExtensionConfig{Name: "r", TypedConfig: mustAny(&routerv3.Router{})})
	for _, in := range []*anypb.Any{local, other} {
		out, oc, err := convertResource(context.Background(), f, in)
		if err != nil || oc != passed || out != in {
			t.Errorf("%v %v %v", out, oc, err)
		}
	}
	none := mustAny(&corev3.TypedExtensionConfig{Name: "n", TypedConfig: mustAny(&wasmfilterv3.Wasm{Config: &wasmv3.PluginConfig{
		Vm: &wasmv3.PluginConfig_VmConfig{VmConfig: &wasmv3.VmConfig{}}}})})
	if _, _, err := convertResource(context.Background(), f, none); err == nil {
		t.Error("wasm without code accepted")
	}
	if len(f.reqs) != 0 {
		t.Errorf("fetched %v", f.reqs)
	}
}

// Responses of one stream are delivered in order even when a later one converts faster.
func TestPipeKeepsOrder(t *testing.T) {
	in := make(chan *wrapped, 10)
	for i := range 10 {
		in <- &wrapped{n: i}
	}
	close(in)
	var got []int
	p := &pipe[*wrapped]{
		recv: func() (*wrapped, error) {
			w, ok := <-in
			if !ok {
				return nil, errors.New("eof")
			}
			return w, nil
		},
		convert: func(_ context.Context, w *wrapped) (*wrapped, error) {
			time.Sleep(time.Duration(10-w.n) * 3 * time.Millisecond)
			if w.n == 4 {
				return w, errors.New("nack")
			}
			return w, nil
		},
		deliver: func(w *wrapped, err error) error {
			if err != nil {
				got = append(got, -w.n)
			} else {
				got = append(got, w.n)
			}
			return nil
		},
	}
	// run returns when recv fails; wait for pending deliveries first by reading slowly.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	p.recv = func(orig func() (*wrapped, error)) func() (*wrapped, error) {
		return func() (*wrapped, error) {
			w, err := orig()
			if err != nil {
				time.Sleep(200 * time.Millisecond)
			}
			return w, err
		}
	}(p.recv)
	go func() { _ = p.run(ctx); close(done) }()
	<-done
	want := []int{0, 1, 2, 3, -4, 5, 6, 7, 8, 9}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}

// wrapped is a proto.Message stand-in for the pipe test.
type wrapped struct {
	corev3.Node
	n int
}

// aotFetcher returns a module compiled ahead of time for WAMR.
type aotFetcher struct{ path string }

func (f aotFetcher) Get(context.Context, wasmfetch.Request) (string, string, error) {
	return f.path, "abc", nil
}

// TestConvertWAMRAOT: a module with a wamr-aot custom section runs on
// WAMR with precompiled code allowed (§7.5 step 7); others stay on v8.
func TestConvertWAMRAOT(t *testing.T) {
	dir := t.TempDir()
	aot := filepath.Join(dir, "aot.wasm")
	name := "wamr-aot"
	section := append([]byte{byte(len(name))}, name...)
	module := append([]byte("\x00asm\x01\x00\x00\x00\x00"), byte(len(section)))
	if err := os.WriteFile(aot, append(module, section...), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, err := convertResource(context.Background(), aotFetcher{aot}, remoteWasm(t, nil, "nil", false))
	if err != nil {
		t.Fatal(err)
	}
	if vm := decodeWasm(t, out); vm.GetRuntime() != wasmfetch.WAMRRuntime || !vm.GetAllowPrecompiled() {
		t.Errorf("AOT module: runtime %q, allow_precompiled %v", vm.GetRuntime(), vm.GetAllowPrecompiled())
	}
	plain := filepath.Join(dir, "plain.wasm")
	if err := os.WriteFile(plain, []byte("\x00asm\x01\x00\x00\x00"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, err = convertResource(context.Background(), aotFetcher{plain}, remoteWasm(t, nil, "nil", false))
	if err != nil {
		t.Fatal(err)
	}
	if vm := decodeWasm(t, out); vm.GetRuntime() != "envoy.wasm.runtime.v8" || vm.GetAllowPrecompiled() {
		t.Errorf("plain module: runtime %q", vm.GetRuntime())
	}
}
