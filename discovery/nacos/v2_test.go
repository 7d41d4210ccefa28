package nacos

// NOTE: these tests run against nacostest.Server, a protocol fake
// of a Nacos 2.x naming server speaking the real gRPC protocol; no real
// Nacos server can run on this machine.

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	nacosgrpc "github.com/nacos-group/nacos-sdk-go/v2/api/grpc"
	"github.com/nacos-group/nacos-sdk-go/v2/model"
	"go.uber.org/zap"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/hxds/hxds/discovery"
	"github.com/hxds/hxds/discovery/discoverytest"
	"github.com/hxds/hxds/discovery/nacos/nacostest"
	"github.com/hxds/hxds/internal/api"
)

// testLog is silent unless HXDS_TEST_LOG is set: the SDK's logger is
// process-wide and must not outlive a test's t.Log.
func testLog() *zap.Logger {
	if os.Getenv("HXDS_TEST_LOG") != "" {
		l, _ := zap.NewDevelopment()
		return l
	}
	return zap.NewNop()
}

func startV2(t testing.TB, cfg api.RegistryConfig, auth discovery.Auth, pub discovery.Publisher, tune func(*V2Watcher)) *V2Watcher {
	t.Helper()
	wi, err := NewV2(discovery.Config{Registry: cfg, Auth: auth}, pub, testLog())
	if err != nil {
		t.Fatal(err)
	}
	w := wi.(*V2Watcher)
	w.refresh = 300 * time.Millisecond
	w.healthEvery = 100 * time.Millisecond
	w.addrRefresh = 200 * time.Millisecond
	w.retryBase = 50 * time.Millisecond
	w.timeout = time.Second
	if tune != nil {
		tune(w)
	}
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

func v2Config(f *nacostest.Server) api.RegistryConfig {
	return api.RegistryConfig{Type: TypeV2, Name: "reg", Domain: "127.0.0.1", Port: uint32(f.HTTPPort()),
		NacosGroups: []string{"DEFAULT_GROUP"}}
}

func waitStatus(t testing.TB, w discovery.Watcher, timeout time.Duration, what string, cond func(discovery.Status) bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond(w.Status()) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; status %+v", timeout, what, w.Status())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func has(host string, check func(discovery.Service) bool) func(map[string]discovery.Service) bool {
	return func(m map[string]discovery.Service) bool {
		s, ok := m[host]
		return ok && (check == nil || check(s))
	}
}

func endpoints(s discovery.Service) string { return strings.Join(discoverytest.Endpoints(s), ",") }

const hostA = "svc-a.DEFAULT-GROUP.public.nacos"

func TestV2ServiceLifecycle(t *testing.T) {
	f := nacostest.NewServer(t)
	f.Set("public", "DEFAULT_GROUP", "svc-a", []model.Instance{
		nacostest.Instance("10.0.0.2", 8080, 1, nil), nacostest.Instance("10.0.0.1", 8080, 2.6, map[string]string{"zone": "a"}),
	})
	rec := discoverytest.NewRecorder()
	// A long refresh: instance changes below can only arrive by push.
	w := startV2(t, v2Config(f), discovery.Auth{}, rec, func(w *V2Watcher) { w.refresh = time.Hour })

	got := rec.WaitFor(t, 10*time.Second, "svc-a", has(hostA, nil))[hostA]
	if got.Port != 8080 || got.Protocol != discovery.ProtocolHTTP || got.Resolution != discovery.Static ||
		endpoints(got) != "10.0.0.1:8080,10.0.0.2:8080" || got.Instances[0].Weight != 3 || got.Instances[1].Weight != 1 ||
		got.Instances[0].Metadata["zone"] != "a" {
		t.Fatalf("svc-a = %+v", got)
	}
	waitStatus(t, w, 5*time.Second, "ready and healthy", func(s discovery.Status) bool { return s.Ready && s.Healthy })
	if rec.Calls("replace") != 1 {
		t.Errorf("replace calls = %d, want 1", rec.Calls("replace"))
	}

	// Weight and metadata change: pushed.
	f.Set("public", "DEFAULT_GROUP", "svc-a", []model.Instance{
		nacostest.Instance("10.0.0.2", 8080, 7, map[string]string{"v": "2"}), nacostest.Instance("10.0.0.1", 8080, 2.6, map[string]string{"zone": "a"}),
	})
	rec.WaitFor(t, 5*time.Second, "weight 7", has(hostA, func(s discovery.Service) bool {
		return len(s.Instances) == 2 && s.Instances[1].Weight == 7 && s.Instances[1].Metadata["v"] == "2"
	}))

	// Unhealthy and disabled instances disappear.
	un := nacostest.Instance("10.0.0.2", 8080, 7, nil)
	un.Healthy = false
	dis := nacostest.Instance("10.0.0.1", 8080, 1, nil)
	dis.Enable = false
	f.Set("public", "DEFAULT_GROUP", "svc-a", []model.Instance{un, dis, nacostest.Instance("10.0.0.3", 9090, 0, nil)})
	got = rec.WaitFor(t, 5*time.Second, "only 10.0.0.3", has(hostA, func(s discovery.Service) bool {
		return endpoints(s) == "10.0.0.3:9090"
	}))[hostA]
	if got.Instances[0].Weight != 1 || got.Port != 9090 {
		t.Errorf("weight 0 → %d (want 1), port %d", got.Instances[0].Weight, got.Port)
	}

	// Every instance gone: an Update with no instances, port kept.
	f.Set("public", "DEFAULT_GROUP", "svc-a", []model.Instance{})
	got = rec.WaitFor(t, 5*time.Second, "no instances", has(hostA, func(s discovery.Service) bool { return len(s.Instances) == 0 }))[hostA]
	if got.Port != 9090 {
		t.Errorf("port of emptied service = %d, want 9090 kept", got.Port)
	}

	// A steady registry causes no churn.
	calls := rec.Calls("update") + rec.Calls("replace") + rec.Calls("remove")
	time.Sleep(300 * time.Millisecond)
	if n := rec.Calls("update") + rec.Calls("replace") + rec.Calls("remove"); n != calls {
		t.Errorf("steady registry published %d more times", n-calls)
	}
}

func TestV2NewAndDeregisteredServices(t *testing.T) {
	f := nacostest.NewServer(t)
	f.Set("public", "DEFAULT_GROUP", "svc-a", []model.Instance{nacostest.Instance("10.0.0.1", 80, 1, nil)})
	rec := discoverytest.NewRecorder()
	startV2(t, v2Config(f), discovery.Auth{}, rec, nil)
	rec.WaitFor(t, 10*time.Second, "svc-a", has(hostA, nil))

	f.Set("public", "DEFAULT_GROUP", "svc-b", []model.Instance{nacostest.Instance("10.0.0.9", 81, 1, nil)})
	rec.WaitFor(t, 5*time.Second, "svc-b", has("svc-b.DEFAULT-GROUP.public.nacos", nil))
	subs := f.Count("SubscribeServiceRequest")

	start := time.Now()
	f.Set("public", "DEFAULT_GROUP", "svc-a", nil)
	rec.WaitFor(t, 5*time.Second, "svc-a removed", func(m map[string]discovery.Service) bool { _, ok := m[hostA]; return !ok })
	t.Logf("deregistered service removed after %s (refresh 300ms)", time.Since(start))
	// ... and unsubscribed.
	deadline := time.Now().Add(3 * time.Second)
	for f.Count("SubscribeServiceRequest") == subs && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if f.Count("SubscribeServiceRequest") == subs {
		t.Errorf("vanished service was not unsubscribed")
	}
	if rec.Calls("remove") != 1 {
		t.Errorf("remove calls = %d, want 1", rec.Calls("remove"))
	}
}

func TestV2ServerDownAndBack(t *testing.T) {
	f := nacostest.NewServer(t)
	f.Set("public", "DEFAULT_GROUP", "svc-a", []model.Instance{nacostest.Instance("10.0.0.1", 80, 1, nil)})
	rec := discoverytest.NewRecorder()
	w := startV2(t, v2Config(f), discovery.Auth{}, rec, nil)
	rec.WaitFor(t, 10*time.Second, "svc-a", has(hostA, nil))
	waitStatus(t, w, 5*time.Second, "healthy", func(s discovery.Status) bool { return s.Healthy && s.Ready })

	f.Stop()
	waitStatus(t, w, 5*time.Second, "unhealthy after stop", func(s discovery.Status) bool { return !s.Healthy && s.LastError != "" })
	// The last listing is kept while the registry is down.
	if _, ok := rec.Services()[hostA]; !ok {
		t.Fatalf("svc-a dropped while the registry is down")
	}
	// Changes made while we were away.
	f.Set("public", "DEFAULT_GROUP", "svc-a", []model.Instance{nacostest.Instance("10.0.0.2", 80, 1, nil)})
	f.Set("public", "DEFAULT_GROUP", "svc-c", []model.Instance{nacostest.Instance("10.0.0.3", 80, 1, nil)})
	f.Restart()
	waitStatus(t, w, 30*time.Second, "healthy after restart", func(s discovery.Status) bool { return s.Healthy })
	rec.WaitFor(t, 10*time.Second, "resynced", func(m map[string]discovery.Service) bool {
		return endpoints(m[hostA]) == "10.0.0.2:80" && len(m["svc-c.DEFAULT-GROUP.public.nacos"].Instances) == 1
	})
}

func TestV2DownAtStart(t *testing.T) {
	f := nacostest.NewServer(t)
	f.Set("public", "DEFAULT_GROUP", "svc-a", []model.Instance{nacostest.Instance("10.0.0.1", 80, 1, nil)})
	f.Stop()
	rec := discoverytest.NewRecorder()
	w := startV2(t, v2Config(f), discovery.Auth{}, rec, nil)
	waitStatus(t, w, 10*time.Second, "unhealthy", func(s discovery.Status) bool { return !s.Healthy && s.Errors > 0 })
	if w.Status().Ready {
		t.Fatal("ready without a listing")
	}
	f.Restart()
	rec.WaitFor(t, 30*time.Second, "svc-a", has(hostA, nil))
	waitStatus(t, w, 5*time.Second, "healthy and ready", func(s discovery.Status) bool { return s.Healthy && s.Ready })
}

func TestV2Auth(t *testing.T) {
	f := nacostest.NewServer(t)
	f.SetAuth("nacos", "s3cret")
	f.Set("public", "DEFAULT_GROUP", "svc-a", []model.Instance{nacostest.Instance("10.0.0.1", 80, 1, nil)})
	rec := discoverytest.NewRecorder()
	startV2(t, v2Config(f), discovery.Auth{NacosUsername: "nacos", NacosPassword: "s3cret"}, rec, nil)
	rec.WaitFor(t, 10*time.Second, "svc-a with auth", has(hostA, nil))
	if f.Logins() == 0 {
		t.Errorf("no login at the HTTP endpoint")
	}

	// Wrong password: the watcher stays unhealthy and publishes nothing.
	rec2 := discoverytest.NewRecorder()
	w2 := startV2(t, v2Config(f), discovery.Auth{NacosUsername: "nacos", NacosPassword: "wrong"}, rec2, nil)
	waitStatus(t, w2, 10*time.Second, "auth failure reported", func(s discovery.Status) bool {
		return !s.Healthy && strings.Contains(s.LastError, "access denied")
	})
	if len(rec2.Services()) != 0 || w2.Status().Ready {
		t.Errorf("published without auth: %v", rec2.Services())
	}
}

func TestV2AccessKeySignature(t *testing.T) {
	f := nacostest.NewServer(t)
	f.Set("public", "DEFAULT_GROUP", "svc-a", []model.Instance{nacostest.Instance("10.0.0.1", 80, 1, nil)})
	cfg := v2Config(f)
	cfg.NacosAccessKey, cfg.NacosSecretKey = "test-ak", "test-sk"
	rec := discoverytest.NewRecorder()
	w := startV2(t, cfg, discovery.Auth{}, rec, nil)
	rec.WaitFor(t, 10*time.Second, "svc-a", has(hostA, nil))
	h := f.Headers("SubscribeServiceRequest")
	if h["ak"] != "test-ak" || h["signature"] == "" || !strings.HasSuffix(h["data"], "@@DEFAULT_GROUP@@svc-a") {
		t.Errorf("subscribe headers %v lack the AK/SK signature", h)
	}
	// Health checks are signed too and keep the connection.
	for f.Count("HealthCheckRequest") < 3 {
		time.Sleep(20 * time.Millisecond)
	}
	if s := w.Status(); !s.Healthy || f.Count("ServerCheckRequest") != 1 {
		t.Errorf("status %+v after %d server checks", s, f.Count("ServerCheckRequest"))
	}
}

func TestV2GroupsNamespaceVportLoopGuard(t *testing.T) {
	f := nacostest.NewServer(t)
	ns := "ns-id-1"
	f.Set(ns, "DEFAULT_GROUP", "plain", []model.Instance{nacostest.Instance("10.0.0.1", 8080, 1, nil)})
	f.Set(ns, "my_group", "dubbo_svc", []model.Instance{nacostest.Instance("10.0.0.2", 20880, 1, map[string]string{"protocol": "dubbo"})})
	f.Set(ns, "my_group", "consumers:com.foo.Bar", []model.Instance{nacostest.Instance("10.0.0.3", 1, 1, nil)})
	f.Set(ns, "my_group", "looped", []model.Instance{nacostest.Instance("10.0.0.4", 80, 1, map[string]string{"register-resource": "mcp-bridge"})})
	f.Set(ns, "my_group", "mixed", []model.Instance{
		nacostest.Instance("10.0.0.5", 80, 1, map[string]string{"register-resource": "mcp-bridge"}), nacostest.Instance("10.0.0.6", 80, 1, nil)})
	f.Set(ns, "my_group", "bad-proto", []model.Instance{nacostest.Instance("10.0.0.7", 80, 1, map[string]string{"protocol": "carrier-pigeon"})})
	f.Set(ns, "my_group", "by-name", []model.Instance{nacostest.Instance("backend.example.com", 443, 1, map[string]string{"protocol": "https"})})
	f.Set(ns, "other_group", "unwatched", []model.Instance{nacostest.Instance("10.0.0.8", 80, 1, nil)})
	f.Set("public", "DEFAULT_GROUP", "other-namespace", []model.Instance{nacostest.Instance("10.0.0.9", 80, 1, nil)})

	cfg := v2Config(f)
	cfg.Type = TypeV3
	enable := true
	cfg.EnableMCPServer = &enable
	cfg.NacosNamespaceID = ns
	cfg.NacosNamespace = "my_ns"
	cfg.NacosGroups = []string{"DEFAULT_GROUP", "my_group", ""}
	cfg.Vport = &api.RegistryVport{Default: 8000, Services: []api.ServiceVport{{Name: "PLAIN.default-group.my-ns.nacos", Value: 9000}}}
	rec := discoverytest.NewRecorder()
	w := startV2(t, cfg, discovery.Auth{}, rec, nil)
	waitStatus(t, w, 10*time.Second, "ready", func(s discovery.Status) bool { return s.Ready })
	got := rec.Services()
	want := map[string]string{
		"plain.DEFAULT-GROUP.my-ns.nacos": "port=9000 HTTP 10.0.0.1:8080",
		"dubbo_svc.my-group.my-ns.nacos":  "port=8000 Dubbo 10.0.0.2:20880",
		"mixed.my-group.my-ns.nacos":      "port=8000 HTTP 10.0.0.6:80",
		"by-name.my-group.my-ns.nacos":    "port=8000 HTTPS backend.example.com:443 DNS",
	}
	if len(got) != len(want) {
		t.Errorf("got hosts:\n%s", discoverytest.Describe(got))
	}
	for h, desc := range want {
		s, ok := got[h]
		if !ok {
			t.Errorf("missing %s; got:\n%s", h, discoverytest.Describe(got))
			continue
		}
		d := "port=" + itoa(s.Port) + " " + string(s.Protocol) + " " + endpoints(s)
		if s.Resolution == discovery.DNS {
			d += " DNS"
		}
		if d != desc {
			t.Errorf("%s = %q, want %q", h, d, desc)
		}
	}
}

func itoa(n uint32) string { return strings.TrimSpace(strings.Repeat(" ", 0) + uitoa(uint64(n))) }

func uitoa(n uint64) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for n > 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(b)
}

func TestV2AddressServer(t *testing.T) {
	f1 := nacostest.NewServer(t)
	f1.Set("public", "DEFAULT_GROUP", "svc-a", []model.Instance{nacostest.Instance("10.0.0.1", 80, 1, nil)})
	f2 := nacostest.NewServer(t)
	f2.Set("public", "DEFAULT_GROUP", "svc-a", []model.Instance{nacostest.Instance("10.0.0.2", 80, 1, nil)})

	var mu sync.Mutex
	list := "127.0.0.1:" + uitoa(uint64(f1.HTTPPort())) + "\n"
	var gotNS, gotModule string
	as := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/nacos/serverlist" {
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		gotNS, gotModule = r.URL.Query().Get("namespace"), r.Header.Get("Request-Module")
		w.Write([]byte(list))
	}))
	t.Cleanup(as.Close)

	cfg := api.RegistryConfig{Type: TypeV2, Name: "reg", NacosAddressServer: as.URL, NacosGroups: []string{"DEFAULT_GROUP"}}
	rec := discoverytest.NewRecorder()
	startV2(t, cfg, discovery.Auth{}, rec, nil)
	rec.WaitFor(t, 10*time.Second, "svc-a from server 1", has(hostA, func(s discovery.Service) bool { return endpoints(s) == "10.0.0.1:80" }))
	mu.Lock()
	if gotNS != "public" || gotModule != "Naming" {
		t.Errorf("address server asked with namespace %q, Request-Module %q", gotNS, gotModule)
	}
	// The address server now lists only server 2: the watcher moves.
	list = "# comment\n\nnot a host!\n127.0.0.1:" + uitoa(uint64(f2.HTTPPort())) + "\n"
	mu.Unlock()
	rec.WaitFor(t, 10*time.Second, "svc-a from server 2", has(hostA, func(s discovery.Service) bool { return endpoints(s) == "10.0.0.2:80" }))

	// Server 2 dies while still listed (and 1 is back): another one is picked.
	mu.Lock()
	list = "127.0.0.1:" + uitoa(uint64(f1.HTTPPort())) + "\n127.0.0.1:" + uitoa(uint64(f2.HTTPPort())) + "\n"
	mu.Unlock()
	f1.Set("public", "DEFAULT_GROUP", "svc-a", []model.Instance{nacostest.Instance("10.0.0.11", 80, 1, nil)})
	f2.Stop()
	rec.WaitFor(t, 20*time.Second, "svc-a from server 1 again", has(hostA, func(s discovery.Service) bool { return endpoints(s) == "10.0.0.11:80" }))
}

func TestNewV2Validation(t *testing.T) {
	for name, tc := range map[string]struct {
		cfg  api.RegistryConfig
		auth discovery.Auth
	}{
		"wrong type":        {cfg: api.RegistryConfig{Type: "consul", Domain: "h", Port: 8848}},
		"no domain":         {cfg: api.RegistryConfig{Type: TypeV2, Port: 8848}},
		"no port":           {cfg: api.RegistryConfig{Type: TypeV2, Domain: "h"}},
		"port too high":     {cfg: api.RegistryConfig{Type: TypeV2, Domain: "h", Port: 65000}},
		"url as domain":     {cfg: api.RegistryConfig{Type: TypeV2, Domain: "http://h", Port: 8848}},
		"bad address srv":   {cfg: api.RegistryConfig{Type: TypeV2, NacosAddressServer: "ftp://x"}},
		"ak without sk":     {cfg: api.RegistryConfig{Type: TypeV2, Domain: "h", Port: 8848, NacosAccessKey: "ak"}},
		"user without pass": {cfg: api.RegistryConfig{Type: TypeV2, Domain: "h", Port: 8848}, auth: discovery.Auth{NacosUsername: "u"}},
	} {
		if _, err := NewV2(discovery.Config{Registry: tc.cfg, Auth: tc.auth}, discoverytest.NewRecorder(), nil); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	for _, cfg := range []api.RegistryConfig{
		{Type: TypeV2, Domain: "nacos.example", Port: 8848},
		{Type: TypeV3, NacosAddressServer: "addr.example:8080"},
	} {
		if _, err := NewV2(discovery.Config{Registry: cfg}, discoverytest.NewRecorder(), nil); err != nil {
			t.Errorf("%+v: %v", cfg, err)
		}
	}
}

func TestV2HostilePayloads(t *testing.T) {
	f := nacostest.NewServer(t)
	f.Set("public", "DEFAULT_GROUP", "svc-a", []model.Instance{nacostest.Instance("10.0.0.1", 80, 1, nil)})
	rec := discoverytest.NewRecorder()
	// Listing every 20ms; instance changes still come only by push (a
	// listing subscribes new services, it does not refetch known ones).
	w := startV2(t, v2Config(f), discovery.Auth{}, rec, func(w *V2Watcher) { w.refresh = 20 * time.Millisecond })
	rec.WaitFor(t, 10*time.Second, "svc-a", has(hostA, nil))

	// Pushes: unreadable, unknown, unsubscribed, stale, and odd instances.
	f.PushRaw(&nacosgrpc.Payload{Metadata: &nacosgrpc.Metadata{Type: "NotifySubscriberRequest"}, Body: &anypb.Any{Value: []byte("{not json")}})
	f.PushRaw(&nacosgrpc.Payload{Metadata: &nacosgrpc.Metadata{Type: "SomethingNew"}, Body: &anypb.Any{Value: []byte("{}")}})
	f.PushRaw(&nacosgrpc.Payload{})
	f.PushRaw(nacostest.Payload("NotifySubscriberRequest", map[string]any{"serviceInfo": map[string]any{"name": "nobody", "groupName": "DEFAULT_GROUP",
		"hosts": []any{map[string]any{"ip": "1.1.1.1", "port": 1, "healthy": true, "enabled": true}}, "lastRefTime": nacostest.NextRefTime()}}))
	f.PushRaw(nacostest.Payload("NotifySubscriberRequest", map[string]any{"serviceInfo": map[string]any{"name": "svc-a", "groupName": "DEFAULT_GROUP",
		"hosts": []any{map[string]any{"ip": "9.9.9.9", "port": 9, "healthy": true, "enabled": true}}, "lastRefTime": 1}}))
	f.Set("public", "DEFAULT_GROUP", "svc-a", []model.Instance{
		nacostest.Instance("", 80, 1, nil), nacostest.Instance("10.0.0.5", 0, 1, nil), nacostest.Instance("bad host", 80, 1, nil), nacostest.Instance("10.0.0.6", 70000, 1, nil),
		nacostest.Instance("10.0.0.7", 81, 1e300, map[string]string{}),
	})
	got := rec.WaitFor(t, 5*time.Second, "only the sane instance", has(hostA, func(s discovery.Service) bool { return endpoints(s) == "10.0.0.7:81" }))[hostA]
	if got.Instances[0].Weight != maxWeight {
		t.Errorf("weight 1e300 → %d", got.Instances[0].Weight)
	}
	// A push naming the service with its group ("G@@name") is understood too.
	f.PushRaw(nacostest.Payload("NotifySubscriberRequest", map[string]any{"serviceInfo": map[string]any{"name": "DEFAULT_GROUP@@svc-a",
		"hosts": []any{map[string]any{"ip": "10.0.0.8", "port": 82, "weight": 1, "healthy": true, "enabled": true}}, "lastRefTime": nacostest.NextRefTime()}}))
	rec.WaitFor(t, 5*time.Second, "group@@name push", has(hostA, func(s discovery.Service) bool { return endpoints(s) == "10.0.0.8:82" }))
	if _, ok := rec.Services()["nobody.DEFAULT-GROUP.public.nacos"]; ok {
		t.Error("a push for an unsubscribed service was published")
	}

	// Hostile responses to the listing: the watcher reports errors, keeps
	// what it has, and recovers.
	for _, p := range []*nacosgrpc.Payload{
		{Metadata: &nacosgrpc.Metadata{Type: "ServiceListResponse"}, Body: &anypb.Any{Value: []byte("[1,2")}},
		{Metadata: &nacosgrpc.Metadata{Type: "InstanceResponse"}, Body: &anypb.Any{Value: []byte("{}")}},
		{Metadata: &nacosgrpc.Metadata{Type: "ServiceListResponse"}, Body: &anypb.Any{Value: []byte(`{"resultCode":200,"success":true,"count":1000000,"serviceNames":[]}`)}},
		{},
	} {
		f.SetHook(func(typ string) *nacosgrpc.Payload {
			if typ == "ServiceListRequest" {
				return p
			}
			return nil
		})
		n := w.Status().Errors
		deadline := time.Now().Add(5 * time.Second)
		for w.Status().Errors == n && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if w.Status().Errors == n {
			t.Errorf("hostile listing response %v not reported", p)
		}
	}
	f.SetHook(nil)
	if _, ok := rec.Services()[hostA]; !ok {
		t.Fatal("svc-a lost to hostile listing responses")
	}
	waitStatus(t, w, 5*time.Second, "healthy again", func(s discovery.Status) bool { return s.Healthy })
}

func TestV2ServerRequests(t *testing.T) {
	f := nacostest.NewServer(t)
	f.Set("public", "DEFAULT_GROUP", "svc-a", []model.Instance{nacostest.Instance("10.0.0.1", 80, 1, nil)})
	rec := discoverytest.NewRecorder()
	w := startV2(t, v2Config(f), discovery.Auth{}, rec, nil)
	rec.WaitFor(t, 10*time.Second, "svc-a", has(hostA, nil))

	// Client detection is answered on the stream.
	f.PushRaw(nacostest.Payload("ClientDetectionRequest", map[string]any{"requestId": "42"}))
	deadline := time.Now().Add(5 * time.Second)
	for f.Count("ClientDetectionResponse") == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if f.Count("ClientDetectionResponse") == 0 {
		t.Error("client detection not answered")
	}
	// A connection reset makes the watcher reconnect and resubscribe.
	subs := f.Count("SubscribeServiceRequest")
	f.PushRaw(nacostest.Payload("ConnectResetRequest", map[string]any{"requestId": "43"}))
	for (f.Count("ServerCheckRequest") < 2 || f.Count("SubscribeServiceRequest") == subs) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if f.Count("ServerCheckRequest") < 2 || f.Count("SubscribeServiceRequest") == subs {
		t.Errorf("no reconnection after ConnectResetRequest (%d server checks)", f.Count("ServerCheckRequest"))
	}
	waitStatus(t, w, 5*time.Second, "healthy after reconnecting", func(s discovery.Status) bool { return s.Healthy })
	if rec.Calls("replace") != 1 {
		t.Errorf("reconnection re-published everything: %d replaces", rec.Calls("replace"))
	}
}
