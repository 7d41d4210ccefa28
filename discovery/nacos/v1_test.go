package nacos

// NOTE: no real Nacos server can run on this machine. These tests run
// against fakeV1, an HTTP handler serving the Nacos 1.x OpenAPI endpoints
// the watcher uses, with the JSON shapes a Nacos 1.4 server returns.

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hxds/hxds/discovery"
	"github.com/hxds/hxds/discovery/discoverytest"
	"github.com/hxds/hxds/internal/api"
)

// v1Host is an instance as /nacos/v1/ns/instance/list returns it.
type v1Host struct {
	InstanceID                string            `json:"instanceId"`
	IP                        string            `json:"ip"`
	Port                      int               `json:"port"`
	Weight                    float64           `json:"weight"`
	Healthy                   bool              `json:"healthy"`
	Enabled                   bool              `json:"enabled"`
	Ephemeral                 bool              `json:"ephemeral"`
	ClusterName               string            `json:"clusterName"`
	ServiceName               string            `json:"serviceName"`
	Metadata                  map[string]string `json:"metadata"`
	InstanceHeartBeatInterval int               `json:"instanceHeartBeatInterval"`
	InstanceIDGenerator       string            `json:"instanceIdGenerator"`
	InstanceHeartBeatTimeOut  int               `json:"instanceHeartBeatTimeOut"`
	IPDeleteTimeout           int               `json:"ipDeleteTimeout"`
}

func h1(ip string, port int, weight float64, md map[string]string) v1Host {
	if md == nil {
		md = map[string]string{}
	}
	return v1Host{IP: ip, Port: port, Weight: weight, Healthy: true, Enabled: true, Ephemeral: true,
		ClusterName: "DEFAULT", Metadata: md, InstanceHeartBeatInterval: 5000, InstanceIDGenerator: "simple",
		InstanceHeartBeatTimeOut: 15000, IPDeleteTimeout: 30000}
}

type fakeV1 struct {
	t    testing.TB
	port int
	mu   sync.Mutex
	// services: namespace → group@@name → hosts
	services map[string]map[string][]v1Host
	// raw, when set, is returned for every request (hostile payloads).
	raw      []byte
	requests int
	srv      *http.Server
}

func newFakeV1(t testing.TB) *fakeV1 {
	f := &fakeV1{t: t, services: map[string]map[string][]v1Host{}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.port = l.Addr().(*net.TCPAddr).Port
	f.serve(l)
	t.Cleanup(f.stop)
	return f
}

func (f *fakeV1) serve(l net.Listener) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /nacos/v1/ns/service/list", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		f.mu.Lock()
		defer f.mu.Unlock()
		f.requests++
		if f.raw != nil {
			w.Write(f.raw)
			return
		}
		var names []string
		for k := range f.services[q.Get("namespaceId")] {
			if g, n, _ := cut(k); g == q.Get("groupName") {
				names = append(names, n)
			}
		}
		slices.Sort(names)
		no, _ := strconv.Atoi(q.Get("pageNo"))
		size, _ := strconv.Atoi(q.Get("pageSize"))
		from, to := min(max((no-1)*size, 0), len(names)), min(max(no*size, 0), len(names))
		json.NewEncoder(w).Encode(map[string]any{"count": len(names), "doms": append([]string{}, names[from:to]...)})
	})
	mux.HandleFunc("GET /nacos/v1/ns/instance/list", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		f.mu.Lock()
		defer f.mu.Unlock()
		f.requests++
		if f.raw != nil {
			w.Write(f.raw)
			return
		}
		k := skey(q.Get("groupName"), q.Get("serviceName"))
		hosts, ok := f.services[q.Get("namespaceId")][k]
		if !ok {
			http.Error(w, "caused: service not found: "+k, http.StatusBadRequest)
			return
		}
		for i := range hosts {
			hosts[i].ServiceName = k
			hosts[i].InstanceID = fmt.Sprintf("%s#%d#DEFAULT#%s", hosts[i].IP, hosts[i].Port, k)
		}
		json.NewEncoder(w).Encode(map[string]any{"name": k, "groupName": q.Get("groupName"), "clusters": "",
			"cacheMillis": 10000, "hosts": hosts, "lastRefTime": refTime.Add(1), "checksum": "",
			"allIPs": false, "reachProtectionThreshold": false, "valid": true})
	})
	f.srv = &http.Server{Handler: mux}
	go f.srv.Serve(l)
}

func (f *fakeV1) stop() {
	if f.srv != nil {
		f.srv.Close()
		f.srv = nil
	}
}

func (f *fakeV1) restart() {
	var l net.Listener
	var err error
	for i := 0; i < 50; i++ {
		if l, err = net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(f.port)); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		f.t.Fatalf("restart: %v", err)
	}
	f.serve(l)
}

func (f *fakeV1) set(ns, group, name string, hosts []v1Host) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.services[ns] == nil {
		f.services[ns] = map[string][]v1Host{}
	}
	if hosts == nil {
		delete(f.services[ns], skey(group, name))
		return
	}
	f.services[ns][skey(group, name)] = hosts
}

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

func v1Config(f *fakeV1) api.RegistryConfig {
	return api.RegistryConfig{Type: TypeV1, Name: "reg", Domain: "127.0.0.1", Port: uint32(f.port), NacosGroups: []string{"DEFAULT_GROUP"}}
}

func TestV1ServiceLifecycle(t *testing.T) {
	f := newFakeV1(t)
	f.set("public", "DEFAULT_GROUP", "svc-a", []v1Host{h1("10.0.0.2", 8080, 1, nil), h1("10.0.0.1", 8080, 2.5, map[string]string{"zone": "a"})})
	rec := discoverytest.NewRecorder()
	w := startV1(t, v1Config(f), rec)

	got := rec.WaitFor(t, 5*time.Second, "svc-a", has(hostA, nil))[hostA]
	if got.Port != 8080 || got.Protocol != discovery.ProtocolHTTP || endpoints(got) != "10.0.0.1:8080,10.0.0.2:8080" ||
		got.Instances[0].Weight != 3 || got.Instances[0].Metadata["zone"] != "a" {
		t.Fatalf("svc-a = %+v", got)
	}
	waitStatus(t, w, 5*time.Second, "ready and healthy", func(s discovery.Status) bool { return s.Ready && s.Healthy })

	f.set("public", "DEFAULT_GROUP", "svc-a", []v1Host{h1("10.0.0.2", 8080, 9, map[string]string{"v": "2"}), h1("10.0.0.1", 8080, 2.5, map[string]string{"zone": "a"})})
	rec.WaitFor(t, 5*time.Second, "weight 9", has(hostA, func(s discovery.Service) bool {
		return len(s.Instances) == 2 && s.Instances[1].Weight == 9 && s.Instances[1].Metadata["v"] == "2"
	}))

	un, dis := h1("10.0.0.2", 8080, 1, nil), h1("10.0.0.1", 8080, 1, nil)
	un.Healthy, dis.Enabled = false, false
	f.set("public", "DEFAULT_GROUP", "svc-a", []v1Host{un, dis, h1("10.0.0.3", 9090, -3, nil)})
	got = rec.WaitFor(t, 5*time.Second, "only 10.0.0.3", has(hostA, func(s discovery.Service) bool { return endpoints(s) == "10.0.0.3:9090" }))[hostA]
	if got.Instances[0].Weight != 1 {
		t.Errorf("weight -3 → %d, want 1", got.Instances[0].Weight)
	}

	f.set("public", "DEFAULT_GROUP", "svc-a", []v1Host{})
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
	f.set("public", "DEFAULT_GROUP", "svc-a", nil)
	rec.WaitFor(t, 5*time.Second, "svc-a removed", func(m map[string]discovery.Service) bool { _, ok := m[hostA]; return !ok })
	t.Logf("deregistered service removed after %s (refresh 100ms)", time.Since(start))
	if rec.Calls("replace") != 1 || rec.Calls("remove") != 1 {
		t.Errorf("replace %d, remove %d; want 1, 1", rec.Calls("replace"), rec.Calls("remove"))
	}
}

func TestV1ServerDownAndBack(t *testing.T) {
	f := newFakeV1(t)
	f.set("public", "DEFAULT_GROUP", "svc-a", []v1Host{h1("10.0.0.1", 80, 1, nil)})
	rec := discoverytest.NewRecorder()
	w := startV1(t, v1Config(f), rec)
	rec.WaitFor(t, 5*time.Second, "svc-a", has(hostA, nil))
	waitStatus(t, w, 5*time.Second, "healthy", func(s discovery.Status) bool { return s.Healthy && s.Ready })

	f.stop()
	waitStatus(t, w, 5*time.Second, "unhealthy", func(s discovery.Status) bool { return !s.Healthy && s.LastError != "" })
	if _, ok := rec.Services()[hostA]; !ok {
		t.Fatal("svc-a dropped while the registry is down")
	}
	f.set("public", "DEFAULT_GROUP", "svc-a", []v1Host{h1("10.0.0.2", 80, 1, nil)})
	f.set("public", "DEFAULT_GROUP", "svc-c", []v1Host{h1("10.0.0.3", 80, 1, nil)})
	f.restart()
	waitStatus(t, w, 10*time.Second, "healthy again", func(s discovery.Status) bool { return s.Healthy })
	rec.WaitFor(t, 5*time.Second, "resynced", func(m map[string]discovery.Service) bool {
		return endpoints(m[hostA]) == "10.0.0.2:80" && len(m["svc-c.DEFAULT-GROUP.public.nacos"].Instances) == 1
	})
}

func TestV1GroupsNamespaceVportPaging(t *testing.T) {
	f := newFakeV1(t)
	ns := "ns-id-1"
	for i := range 120 { // three pages
		f.set(ns, "my_group", fmt.Sprintf("svc-%03d", i), []v1Host{h1("10.1.0.1", 1000+i, 1, nil)})
	}
	f.set(ns, "DEFAULT_GROUP", "dubbo", []v1Host{h1("10.0.0.2", 20880, 1, map[string]string{"protocol": "triple"})})
	f.set(ns, "DEFAULT_GROUP", "consumers:x", []v1Host{h1("10.0.0.3", 80, 1, nil)})
	f.set(ns, "DEFAULT_GROUP", "looped", []v1Host{h1("10.0.0.4", 80, 1, map[string]string{"register-resource": "mcp-bridge"})})
	f.set(ns, "DEFAULT_GROUP", "bad-proto", []v1Host{h1("10.0.0.5", 80, 1, map[string]string{"protocol": "smtp"})})
	f.set(ns, "DEFAULT_GROUP", "by-name", []v1Host{h1("db.example.com", 5432, 1, map[string]string{"protocol": "tcp"})})
	f.set("public", "DEFAULT_GROUP", "elsewhere", []v1Host{h1("10.0.0.6", 80, 1, nil)})

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
	f := newFakeV1(t)
	f.set("public", "DEFAULT_GROUP", "svc-a", []v1Host{h1("10.0.0.1", 80, 1, nil)})
	rec := discoverytest.NewRecorder()
	w := startV1(t, v1Config(f), rec)
	rec.WaitFor(t, 5*time.Second, "svc-a", has(hostA, nil))
	for _, raw := range []string{`not json`, `{"count":1e400,"doms":{}}`, `[]`, `{"count":-5,"doms":[1,null,"x"]}`, "\x00\xff"} {
		f.mu.Lock()
		f.raw = []byte(raw)
		n := f.requests
		f.mu.Unlock()
		deadline := time.Now().Add(3 * time.Second)
		for {
			f.mu.Lock()
			m := f.requests
			f.mu.Unlock()
			if m > n+2 || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	f.mu.Lock()
	f.raw = nil
	f.mu.Unlock()
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
