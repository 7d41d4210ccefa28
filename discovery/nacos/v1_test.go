package nacos

// NOTE: no real Nacos server can run on this machine. These tests run
// against nacostest.V1Server, an HTTP handler serving the Nacos 1.x
// OpenAPI endpoints the watcher uses, with the JSON shapes a Nacos 1.4
// server returns.

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hxds/hxds/discovery"
	"github.com/hxds/hxds/discovery/discoverytest"
	"github.com/hxds/hxds/discovery/nacos/nacostest"
	"github.com/hxds/hxds/internal/api"
)

func startV1(t testing.TB, cfg api.RegistryConfig, pub discovery.Publisher) *V1Watcher {
	t.Helper()
	wi, err := NewV1(discovery.Config{Registry: cfg}, pub, testLog())
	if err != nil {
		t.Fatal(err)
	}
	w := wi.(*V1Watcher)
	w.refresh = 100 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := w.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Errorf("Run did not return after cancel")
		}
	})
	return w
}

func v1Config(f *nacostest.V1Server) api.RegistryConfig {
	return api.RegistryConfig{Type: TypeV1, Name: "reg", Domain: "127.0.0.1", Port: uint32(f.Port()), NacosGroups: []string{"DEFAULT_GROUP"}}
}

func TestV1ServiceLifecycle(t *testing.T) {
	f := nacostest.NewV1Server(t)
	f.Set("public", "DEFAULT_GROUP", "svc-a", []nacostest.V1Host{nacostest.V1Instance("10.0.0.2", 8080, 1, nil), nacostest.V1Instance("10.0.0.1", 8080, 2.5, map[string]string{"zone": "a"})})
	rec := discoverytest.NewRecorder()
	w := startV1(t, v1Config(f), rec)

	got := rec.WaitFor(t, 5*time.Second, "svc-a", has(hostA, nil))[hostA]
	if got.Port != 8080 || got.Protocol != discovery.ProtocolHTTP || endpoints(got) != "10.0.0.1:8080,10.0.0.2:8080" ||
		got.Instances[0].Weight != 3 || got.Instances[0].Metadata["zone"] != "a" {
		t.Fatalf("svc-a = %+v", got)
	}
	waitStatus(t, w, 5*time.Second, "ready and healthy", func(s discovery.Status) bool { return s.Ready && s.Healthy })

	f.Set("public", "DEFAULT_GROUP", "svc-a", []nacostest.V1Host{nacostest.V1Instance("10.0.0.2", 8080, 9, map[string]string{"v": "2"}), nacostest.V1Instance("10.0.0.1", 8080, 2.5, map[string]string{"zone": "a"})})
	rec.WaitFor(t, 5*time.Second, "weight 9", has(hostA, func(s discovery.Service) bool {
		return len(s.Instances) == 2 && s.Instances[1].Weight == 9 && s.Instances[1].Metadata["v"] == "2"
	}))

	un, dis := nacostest.V1Instance("10.0.0.2", 8080, 1, nil), nacostest.V1Instance("10.0.0.1", 8080, 1, nil)
	un.Healthy, dis.Enabled = false, false
	f.Set("public", "DEFAULT_GROUP", "svc-a", []nacostest.V1Host{un, dis, nacostest.V1Instance("10.0.0.3", 9090, -3, nil)})
	got = rec.WaitFor(t, 5*time.Second, "only 10.0.0.3", has(hostA, func(s discovery.Service) bool { return endpoints(s) == "10.0.0.3:9090" }))[hostA]
	if got.Instances[0].Weight != 1 {
		t.Errorf("weight -3 → %d, want 1", got.Instances[0].Weight)
	}

	f.Set("public", "DEFAULT_GROUP", "svc-a", []nacostest.V1Host{})
	got = rec.WaitFor(t, 5*time.Second, "no instances", has(hostA, func(s discovery.Service) bool { return len(s.Instances) == 0 }))[hostA]
	if got.Port != 9090 {
		t.Errorf("emptied service port %d, want 9090 kept", got.Port)
	}

	calls := rec.Calls("update") + rec.Calls("replace") + rec.Calls("remove")
	time.Sleep(350 * time.Millisecond) // three sweeps
	if n := rec.Calls("update") + rec.Calls("replace") + rec.Calls("remove"); n != calls {
		t.Errorf("steady registry published %d more times", n-calls)
	}

	start := time.Now()
	f.Set("public", "DEFAULT_GROUP", "svc-a", nil)
	rec.WaitFor(t, 5*time.Second, "svc-a removed", func(m map[string]discovery.Service) bool { _, ok := m[hostA]; return !ok })
	t.Logf("deregistered service removed after %s (refresh 100ms)", time.Since(start))
	if rec.Calls("replace") != 1 || rec.Calls("remove") != 1 {
		t.Errorf("replace %d, remove %d; want 1, 1", rec.Calls("replace"), rec.Calls("remove"))
	}
}

func TestV1ServerDownAndBack(t *testing.T) {
	f := nacostest.NewV1Server(t)
	f.Set("public", "DEFAULT_GROUP", "svc-a", []nacostest.V1Host{nacostest.V1Instance("10.0.0.1", 80, 1, nil)})
	rec := discoverytest.NewRecorder()
	w := startV1(t, v1Config(f), rec)
	rec.WaitFor(t, 5*time.Second, "svc-a", has(hostA, nil))
	waitStatus(t, w, 5*time.Second, "healthy", func(s discovery.Status) bool { return s.Healthy && s.Ready })

	f.Stop()
	waitStatus(t, w, 5*time.Second, "unhealthy", func(s discovery.Status) bool { return !s.Healthy && s.LastError != "" })
	if _, ok := rec.Services()[hostA]; !ok {
		t.Fatal("svc-a dropped while the registry is down")
	}
	f.Set("public", "DEFAULT_GROUP", "svc-a", []nacostest.V1Host{nacostest.V1Instance("10.0.0.2", 80, 1, nil)})
	f.Set("public", "DEFAULT_GROUP", "svc-c", []nacostest.V1Host{nacostest.V1Instance("10.0.0.3", 80, 1, nil)})
	f.Restart()
	waitStatus(t, w, 10*time.Second, "healthy again", func(s discovery.Status) bool { return s.Healthy })
	rec.WaitFor(t, 5*time.Second, "resynced", func(m map[string]discovery.Service) bool {
		return endpoints(m[hostA]) == "10.0.0.2:80" && len(m["svc-c.DEFAULT-GROUP.public.nacos"].Instances) == 1
	})
}

func TestV1GroupsNamespaceVportPaging(t *testing.T) {
	f := nacostest.NewV1Server(t)
	ns := "ns-id-1"
	for i := range 120 { // three pages
		f.Set(ns, "my_group", fmt.Sprintf("svc-%03d", i), []nacostest.V1Host{nacostest.V1Instance("10.1.0.1", 1000+i, 1, nil)})
	}
	f.Set(ns, "DEFAULT_GROUP", "dubbo", []nacostest.V1Host{nacostest.V1Instance("10.0.0.2", 20880, 1, map[string]string{"protocol": "triple"})})
	f.Set(ns, "DEFAULT_GROUP", "consumers:x", []nacostest.V1Host{nacostest.V1Instance("10.0.0.3", 80, 1, nil)})
	f.Set(ns, "DEFAULT_GROUP", "looped", []nacostest.V1Host{nacostest.V1Instance("10.0.0.4", 80, 1, map[string]string{"register-resource": "mcp-bridge"})})
	f.Set(ns, "DEFAULT_GROUP", "bad-proto", []nacostest.V1Host{nacostest.V1Instance("10.0.0.5", 80, 1, map[string]string{"protocol": "smtp"})})
	f.Set(ns, "DEFAULT_GROUP", "by-name", []nacostest.V1Host{nacostest.V1Instance("db.example.com", 5432, 1, map[string]string{"protocol": "tcp"})})
	f.Set("public", "DEFAULT_GROUP", "elsewhere", []nacostest.V1Host{nacostest.V1Instance("10.0.0.6", 80, 1, nil)})

	cfg := v1Config(f)
	cfg.NacosNamespaceID = ns
	cfg.NacosNamespace = "team_a"
	cfg.NacosGroups = []string{"DEFAULT_GROUP", "my_group"}
	cfg.Vport = &api.RegistryVport{Services: []api.ServiceVport{{Name: "dubbo.DEFAULT-GROUP.team-a.nacos", Value: 50051}}}
	rec := discoverytest.NewRecorder()
	w := startV1(t, cfg, rec)
	waitStatus(t, w, 5*time.Second, "ready", func(s discovery.Status) bool { return s.Ready })
	got := rec.Services()
	if len(got) != 122 {
		t.Fatalf("%d services, want 120 + dubbo + by-name:\n%s", len(got), discoverytest.Describe(got))
	}
	if s := got["svc-119.my-group.team-a.nacos"]; s.Port != 1119 {
		t.Errorf("svc-119 (page 3) = %+v", s)
	}
	if s := got["dubbo.DEFAULT-GROUP.team-a.nacos"]; s.Port != 50051 || s.Protocol != discovery.ProtocolGRPC || endpoints(s) != "10.0.0.2:20880" {
		t.Errorf("dubbo = %+v", s)
	}
	if s := got["by-name.DEFAULT-GROUP.team-a.nacos"]; s.Resolution != discovery.DNS || s.Protocol != discovery.ProtocolTCP {
		t.Errorf("by-name = %+v", s)
	}
}

func TestV1HostilePayloads(t *testing.T) {
	f := nacostest.NewV1Server(t)
	f.Set("public", "DEFAULT_GROUP", "svc-a", []nacostest.V1Host{nacostest.V1Instance("10.0.0.1", 80, 1, nil)})
	rec := discoverytest.NewRecorder()
	w := startV1(t, v1Config(f), rec)
	rec.WaitFor(t, 5*time.Second, "svc-a", has(hostA, nil))
	for _, raw := range []string{`not json`, `{"count":1e400,"doms":{}}`, `[]`, `{"count":-5,"doms":[1,null,"x"]}`, "\x00\xff"} {
		f.SetRaw([]byte(raw))
		n := f.Requests()
		deadline := time.Now().Add(3 * time.Second)
		for {
			m := f.Requests()
			if m > n+2 || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	f.SetRaw(nil)
	waitStatus(t, w, 5*time.Second, "healthy after garbage", func(s discovery.Status) bool { return s.Healthy })
	rec.WaitFor(t, 5*time.Second, "svc-a back", has(hostA, func(s discovery.Service) bool { return endpoints(s) == "10.0.0.1:80" }))
	if w.Status().Errors == 0 {
		t.Errorf("garbage responses were not counted as errors")
	}
}

func TestNewV1Validation(t *testing.T) {
	for name, cfg := range map[string]api.RegistryConfig{
		"wrong type":     {Type: TypeV2, Domain: "h", Port: 8848},
		"no domain":      {Type: TypeV1, Port: 8848},
		"address server": {Type: TypeV1, NacosAddressServer: "http://a"},
		"no port":        {Type: TypeV1, Domain: "h"},
		"bad domain":     {Type: TypeV1, Domain: "h:8848", Port: 8848},
	} {
		if _, err := NewV1(discovery.Config{Registry: cfg}, discoverytest.NewRecorder(), nil); err == nil {
			t.Errorf("%s: no error", name)
		} else if !strings.Contains(err.Error(), "registry") {
			t.Errorf("%s: error %q does not name the registry", name, err)
		}
	}
	w, err := NewV1(discovery.Config{Registry: api.RegistryConfig{Type: TypeV1, Domain: "nacos.example", Port: 8848, NacosRefreshInterval: 30}}, discoverytest.NewRecorder(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := w.(*V1Watcher).refresh; r != MinRefresh {
		t.Errorf("refresh of 30ns = %s, want %s", r, MinRefresh)
	}
}
