package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	wasmfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/hxds/hxds/wasmfetch"
	"github.com/hxds/hxds/wasmfetch/agent"
	"github.com/hxds/hxds/wasmfetch/wasmtest"
	"github.com/hxds/hxds/xds/adsclient"
)

const (
	ecds       = resourcev3.ExtensionConfigType
	pluginName = "higress-system.hello"
)

// hxdsAgent is one running hxds-agent (in process, agent.Run).
type hxdsAgent struct {
	ads   string // address for adsclient (host:port or unix:///path)
	admin string // admin base URL
}

func startAgent(t testing.TB, upstream string, unix bool) *hxdsAgent {
	t.Helper()
	listen := "127.0.0.1:0"
	if unix {
		listen = "unix://" + filepath.Join(t.TempDir(), "ads.sock")
	}
	ads, admin := runUntilListening(t, "agent.Run", func(ctx context.Context, listening func(a, b net.Addr)) error {
		return agent.Run(ctx, agent.Config{
			Listen: listen, Upstream: upstream, AdminAddress: "127.0.0.1:0",
			CacheDir:     t.TempDir(),
			CacheOptions: wasmfetch.Options{DefaultTimeout: 5 * time.Second},
			Log:          testLogger(t).Named("agent"),
			Listening:    listening,
		})
	})
	ag := &hxdsAgent{ads: ads.String(), admin: "http://" + admin.String()}
	if unix {
		ag.ads = listen
	}
	return ag
}

func (a *hxdsAgent) get(t testing.TB, path string) (int, string) {
	t.Helper()
	resp, err := httpClient.Get(a.admin + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metric returns the value of an exact sample line prefix (name{labels}) of /metrics.
func (a *hxdsAgent) metric(t testing.TB, sample string) float64 {
	t.Helper()
	_, body := a.get(t, "/metrics")
	for _, line := range strings.Split(body, "\n") {
		if rest, ok := strings.CutPrefix(line, sample+" "); ok {
			var v float64
			if _, err := fmt.Sscan(rest, &v); err == nil {
				return v
			}
		}
	}
	return 0
}

// wasmPluginYAML is a WasmPlugin in the system namespace.
func wasmPluginYAML(url, sha string, failOpen bool) string {
	s := fmt.Sprintf(`apiVersion: extensions.higress.io/v1alpha1
kind: WasmPlugin
metadata: {name: hello, namespace: higress-system, resourceVersion: "7"}
spec:
  url: %s
  pluginName: hello
  phase: AUTHN
  imagePullPolicy: IfNotPresent
  vmConfig:
    env:
    - {name: MODE, value: strict}
  defaultConfig: {greeting: hi}
`, url)
	if sha != "" {
		s += "  sha256: " + sha + "\n"
	}
	if failOpen {
		s += "  failStrategy: FAIL_OPEN\n"
	}
	return s
}

// agentSetup starts a registry holding the test plugin, hxds serving the
// quickstart plus a WasmPlugin (built by plugin from the registry host and
// manifest digest) and an agent in front of hxds.
func agentSetup(t *testing.T, unix bool, plugin func(host, digest string) string) (*wasmtest.Registry, *hxds, *hxdsAgent, []byte) {
	t.Helper()
	mod := wasmtest.RequirePlugin(t)
	reg := wasmtest.NewRegistry(t)
	digest := wasmtest.Push(t, reg.Host, "plugins/hello", "v1", wasmtest.LayoutOCIArtifact, mod)
	dir := copyQuickstart(t)
	writeFile(t, dir, "90-wasmplugin.yaml", plugin(reg.Host, digest))
	h := startHxds(t, dir)
	return reg, h, startAgent(t, h.xds, unix), mod
}

func ecdsWasm(t testing.TB, s adsclient.Snapshot) (*corev3.TypedExtensionConfig, *wasmfilterv3.Wasm) {
	t.Helper()
	tec, ok := s.Message(ecds, pluginName).(*corev3.TypedExtensionConfig)
	if !ok {
		t.Fatalf("no ECDS %s", pluginName)
	}
	w := &wasmfilterv3.Wasm{}
	if err := tec.GetTypedConfig().UnmarshalTo(w); err != nil {
		return tec, nil
	}
	return tec, w
}

func TestAgentConvertsRemoteWasm(t *testing.T) {
	protocols(t, func(t *testing.T, delta bool) {
		reg, h, ag, mod := agentSetup(t, delta, func(host, digest string) string {
			return wasmPluginYAML("oci://"+host+"/plugins/hello:v1", digest, false)
		})
		if code, body := ag.get(t, "/ready"); code != http.StatusOK {
			t.Fatalf("/ready: %d %s", code, body)
		}
		cl := connect(t, ag.ads, adsclient.Options{NodeID: "envoy-1", Cluster: defaultGroup, Delta: delta})
		s := cl.wait("ECDS with a local module", func(s adsclient.Snapshot) bool { return s.Has(ecds, pluginName) })
		cl.synced(h)
		_, w := ecdsWasm(t, s)
		if w == nil {
			t.Fatal("ECDS is not a Wasm filter")
		}
		vm := w.GetConfig().GetVmConfig()
		file := vm.GetCode().GetLocal().GetFilename()
		if file == "" {
			t.Fatalf("code is not local: %v", vm.GetCode())
		}
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := sha256.Sum256(b), sha256.Sum256(mod); got != want {
			t.Fatalf("module sha256 %s, pushed %s", hex.EncodeToString(got[:]), hex.EncodeToString(want[:]))
		}
		wasmtest.AssertProxyWasm(t, file)
		if kv := vm.GetEnvironmentVariables().GetKeyValues(); len(kv) != 1 || kv["MODE"] != "strict" {
			t.Errorf("env after stripping ISTIO_META_*: %v", kv)
		}
		if n := reg.ManifestGets(); n != 1 {
			t.Errorf("registry manifest reads: %d, want 1", n)
		}

		// A second Envoy: served from the cache, the registry is not asked again.
		cl2 := connect(t, ag.ads, adsclient.Options{NodeID: "envoy-2", Cluster: defaultGroup, Delta: delta})
		s2 := cl2.wait("ECDS for the second client", func(s adsclient.Snapshot) bool { return s.Has(ecds, pluginName) })
		if _, w2 := ecdsWasm(t, s2); w2.GetConfig().GetVmConfig().GetCode().GetLocal().GetFilename() != file {
			t.Errorf("second client got %v", w2.GetConfig().GetVmConfig().GetCode())
		}
		if n := reg.ManifestGets(); n != 1 {
			t.Errorf("registry manifest reads after the second client: %d, want 1", n)
		}
		if v := ag.metric(t, "hxds_agent_wasm_cache_hits_total"); v < 1 {
			t.Errorf("cache hits %v", v)
		}
		if v := ag.metric(t, "hxds_agent_wasm_fetches_total"); v != 1 {
			t.Errorf("fetches %v, want 1", v)
		}
		var d agent.DebugInfo
		_, body := ag.get(t, "/debug")
		if err := json.Unmarshal([]byte(body), &d); err != nil || len(d.Modules) != 1 || d.Modules[0].Path != file {
			t.Errorf("/debug: %v %s", err, body)
		}
	})
}

func TestAgentChecksumMismatchNACKs(t *testing.T) {
	protocols(t, func(t *testing.T, delta bool) {
		_, h, ag, _ := agentSetup(t, false, func(host, _ string) string {
			return wasmPluginYAML("oci://"+host+"/plugins/hello:v1", strings.Repeat("ab", 32), false)
		})
		cl := connect(t, ag.ads, adsclient.Options{NodeID: "envoy-1", Cluster: defaultGroup, Delta: delta})
		waitUntil(t, "hxds records the agent's ECDS NACK", func() (bool, string) {
			ts := typeStatus(h.connection(t, "envoy-1"), ecds)
			if ts.LastNack == nil {
				return false, fmt.Sprintf("%+v", ts)
			}
			return strings.Contains(ts.LastNack.Error, "checksum mismatch"), ts.LastNack.Error
		})
		// One NACK per response: hxds does not resend the rejected version in a loop.
		time.Sleep(300 * time.Millisecond)
		if v := ag.metric(t, "hxds_agent_nacks_total"); v != 1 {
			t.Errorf("agent NACKs %v, want 1", v)
		}
		s := cl.State()
		if s.Has(ecds, pluginName) {
			t.Fatalf("client got the plugin that failed to load")
		}
		for _, ev := range cl.since(0) {
			if ev.TypeURL == ecds {
				t.Errorf("client received an ECDS response: %+v", ev)
			}
		}
		if !s.Has(lds, httpListener) {
			t.Errorf("client lacks the listeners (other types must flow): %s", describe(s))
		}
		_, body := ag.get(t, "/debug")
		if !strings.Contains(body, "checksum mismatch") {
			t.Errorf("/debug lacks the error: %s", body)
		}
	})
}

func TestAgentFailOpenAllowAll(t *testing.T) {
	protocols(t, func(t *testing.T, delta bool) {
		_, _, ag, _ := agentSetup(t, false, func(host, _ string) string {
			return wasmPluginYAML("oci://"+host+"/plugins/hello:v1", strings.Repeat("ab", 32), true)
		})
		cl := connect(t, ag.ads, adsclient.Options{NodeID: "envoy-1", Cluster: defaultGroup, Delta: delta})
		s := cl.wait("allow-all ECDS", func(s adsclient.Snapshot) bool { return s.Has(ecds, pluginName) })
		tec, _ := ecdsWasm(t, s)
		rb := &rbacv3.RBAC{}
		if err := tec.GetTypedConfig().UnmarshalTo(rb); err != nil {
			t.Fatalf("ECDS is not RBAC: %s: %v", tec.GetTypedConfig().GetTypeUrl(), err)
		}
		if rb.GetRules() != nil {
			t.Errorf("RBAC has rules: %v", rb)
		}
		if v := ag.metric(t, `hxds_agent_wasm_conversions_total{result="fail_open"}`); v < 1 {
			t.Errorf("fail_open conversions %v", v)
		}
	})
}

func TestAgentRegistryDown(t *testing.T) {
	reg, h, ag, _ := agentSetup(t, false, func(host, digest string) string {
		return wasmPluginYAML("oci://"+host+"/plugins/hello:v1", digest, false)
	})
	reg.Close()
	cl := connect(t, ag.ads, adsclient.Options{NodeID: "envoy-1", Cluster: defaultGroup})
	waitUntil(t, "hxds records the agent's ECDS NACK", func() (bool, string) {
		ts := typeStatus(h.connection(t, "envoy-1"), ecds)
		return ts.LastNack != nil, fmt.Sprintf("%+v", ts)
	})
	if cl.State().Has(ecds, pluginName) {
		t.Fatal("client got the plugin whose registry is down")
	}
	if v := ag.metric(t, "hxds_agent_wasm_fetch_failures_total"); v < 1 {
		t.Errorf("fetch failures %v", v)
	}
}

// After a NACK, fixing the plugin delivers it: the agent's NACK leaves the
// stream usable, and later responses flow again.
func TestAgentRecoversAfterNACK(t *testing.T) {
	protocols(t, func(t *testing.T, delta bool) {
		var good string
		_, h, ag, _ := agentSetup(t, false, func(host, digest string) string {
			good = wasmPluginYAML("oci://"+host+"/plugins/hello:v1", digest, false)
			return wasmPluginYAML("oci://"+host+"/plugins/hello:v1", strings.Repeat("ab", 32), false)
		})
		cl := connect(t, ag.ads, adsclient.Options{NodeID: "envoy-1", Cluster: defaultGroup, Delta: delta})
		waitUntil(t, "hxds records the agent's ECDS NACK", func() (bool, string) {
			ts := typeStatus(h.connection(t, "envoy-1"), ecds)
			return ts.LastNack != nil, fmt.Sprintf("%+v", ts)
		})
		// A second plugin changes the listeners: Envoy re-subscribes ECDS
		// (with the nonce of the last response it saw, not the NACKed one)
		// while the bad one is still served.
		writeFile(t, h.dir, "91-wasmplugin.yaml", strings.Replace(good, "name: hello,", "name: hello2,", 1))
		// hxds sends ECDS by name, the new plugin alone: it converts and arrives.
		s := cl.wait("the second plugin", func(s adsclient.Snapshot) bool { return s.Has(ecds, "higress-system.hello2") })
		if s.Has(ecds, pluginName) {
			t.Fatal("client got the plugin that failed to load")
		}
		writeFile(t, h.dir, "90-wasmplugin.yaml", good)
		s = cl.wait("both plugins after the fix", func(s adsclient.Snapshot) bool {
			return s.Has(ecds, pluginName) && s.Has(ecds, "higress-system.hello2")
		})
		if _, w := ecdsWasm(t, s); w.GetConfig().GetVmConfig().GetCode().GetLocal() == nil {
			t.Errorf("not local: %v", w.GetConfig().GetVmConfig().GetCode())
		}
	})
}
