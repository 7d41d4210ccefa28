package zookeeper

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"path"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/hxds/hxds/discovery"
	"github.com/hxds/hxds/discovery/discoverytest"
	"github.com/hxds/hxds/internal/api"
	"github.com/hxds/hxds/internal/testutil"
	"github.com/hxds/hxds/internal/testutil/zktest"
)

const wait = 15 * time.Second

// session is a registering application's own ZooKeeper session, as a Dubbo
// provider or a Spring Cloud Zookeeper app keeps one: its instance nodes
// are ephemeral and vanish when it closes.
type session struct {
	t    testing.TB
	conn *zk.Conn
}

func newSession(t testing.TB, addr string) *session {
	t.Helper()
	c, _, err := zk.Connect([]string{addr}, 10*time.Second, zk.WithLogInfo(false), zk.WithLogger(nopLogger{}))
	if err != nil {
		t.Fatal(err)
	}
	s := &session{t: t, conn: c}
	t.Cleanup(s.close)
	deadline := time.Now().Add(wait)
	for c.State() != zk.StateHasSession {
		if time.Now().After(deadline) {
			t.Fatalf("no session with %s", addr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return s
}

func (s *session) close() { s.conn.Close() }

// mkdirs creates p and its parents as persistent nodes (Curator's
// creatingParentsIfNeeded; Dubbo's ZookeeperRegistry does the same).
func (s *session) mkdirs(p string) {
	s.t.Helper()
	cur := ""
	for _, part := range strings.Split(strings.Trim(p, "/"), "/") {
		cur += "/" + part
		if _, err := s.conn.Create(cur, nil, 0, zk.WorldACL(zk.PermAll)); err != nil && !errors.Is(err, zk.ErrNodeExists) {
			s.t.Fatalf("create %s: %v", cur, err)
		}
	}
}

func (s *session) ephemeral(p string, data []byte) {
	s.t.Helper()
	s.mkdirs(path.Dir(p))
	if _, err := s.conn.Create(p, data, zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
		s.t.Fatalf("create %s: %v", p, err)
	}
}

func (s *session) delete(p string) {
	s.t.Helper()
	if err := s.conn.Delete(p, -1); err != nil {
		s.t.Fatalf("delete %s: %v", p, err)
	}
}

func (s *session) set(p string, data []byte) {
	s.t.Helper()
	if _, err := s.conn.Set(p, data, -1); err != nil {
		s.t.Fatalf("set %s: %v", p, err)
	}
}

// dubboURL is a provider URL as Dubbo 3's ZookeeperRegistry registers it.
func dubboURL(ip string, port int, iface string, params string) string {
	return fmt.Sprintf("dubbo://%s:%d/%s?anyhost=true&application=demo-provider&deprecated=false&dubbo=2.0.2&dynamic=true&generic=false&interface=%s&methods=sayHi,sayHello&release=3.2.0&side=provider&timestamp=1700000000000%s",
		ip, port, iface, iface, params)
}

// registerDubbo writes a provider node: the URL-encoded URL as the
// node's name, the IP as its data (what Dubbo writes).
func (s *session) registerDubbo(iface, providerURL, ip string) string {
	s.t.Helper()
	p := "/dubbo/" + iface + "/providers/" + url.QueryEscape(providerURL)
	s.ephemeral(p, []byte(ip))
	return p
}

// springJSON is an instance node as Spring Cloud Zookeeper (Curator's
// JsonInstanceSerializer) writes it.
func springJSON(name, id, addr string, port int, md map[string]string) []byte {
	b, _ := json.Marshal(map[string]any{
		"name": name, "id": id, "address": addr, "port": port, "sslPort": nil,
		"payload": map[string]any{
			"@class": "org.springframework.cloud.zookeeper.discovery.ZookeeperInstance",
			"id":     name + "-1", "name": name, "metadata": md,
		},
		"registrationTimeUTC": 1700000000000, "serviceType": "DYNAMIC",
		"uriSpec": map[string]any{"parts": []map[string]any{{"value": "scheme", "variable": true}}},
	})
	return b
}

type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}

func startWatcher(t *testing.T, srv *zktest.Server, roots ...string) (*Watcher, *discoverytest.Recorder) {
	t.Helper()
	return startWatcherOn(t, srv.Port(), 0, roots...)
}

// startWatcherOn runs a watcher of the server on port; a session timeout
// other than 0 replaces the 10 s one.
func startWatcherOn(t *testing.T, port int, session time.Duration, roots ...string) (*Watcher, *discoverytest.Recorder) {
	t.Helper()
	rec := discoverytest.NewRecorder()
	cfg := discovery.Config{Registry: api.RegistryConfig{Type: "zookeeper", Name: "zk", Domain: "127.0.0.1", Port: uint32(port), ZkServicesPath: roots}}
	wt, err := New(cfg, rec, testutil.Logger(t).Named("zookeeper"))
	if err != nil {
		t.Fatal(err)
	}
	w := wt.(*Watcher)
	if session != 0 {
		w.sessionTimeout = session
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Run did not return after cancel")
		}
	})
	return w, rec
}

func waitStatus(t *testing.T, w *Watcher, what string, cond func(discovery.Status) bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond(w.Status()) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; status %+v", what, w.Status())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func endpoints(s map[string]discovery.Service, host string) string {
	svc, ok := s[host]
	if !ok {
		return "<absent>"
	}
	return strings.Join(discoverytest.Endpoints(svc), ",")
}

const greeting = "org.apache.dubbo.samples.api.GreetingService"

func TestDubboProviders(t *testing.T) {
	srv := zktest.Start(t)
	app1 := newSession(t, srv.Addr())
	app2 := newSession(t, srv.Addr())
	app1.registerDubbo(greeting, dubboURL("10.0.0.1", 20880, greeting, "&version=1.0.0"), "10.0.0.1")
	// Skipped: Dubbo's config/mapping/metadata nodes, a tri:// URL of the
	// same service, a disabled provider.
	app1.mkdirs("/dubbo/config/dubbo")
	app1.mkdirs("/dubbo/mapping/" + greeting)
	app1.mkdirs("/dubbo/metadata/" + greeting)
	app1.registerDubbo(greeting, strings.Replace(dubboURL("10.0.0.1", 50051, greeting, "&version=1.0.0"), "dubbo://", "tri://", 1), "10.0.0.1")
	app1.registerDubbo(greeting, dubboURL("10.0.0.9", 20880, greeting, "&version=1.0.0&enabled=false"), "10.0.0.9")

	w, rec := startWatcher(t, srv)
	host := "providers:" + greeting + ":1.0.0:.zookeeper"
	got := rec.WaitFor(t, wait, "first provider", func(s map[string]discovery.Service) bool { return endpoints(s, host) == "10.0.0.1:20880" })
	waitStatus(t, w, "ready and healthy", func(s discovery.Status) bool { return s.Ready && s.Healthy })
	svc := got[host]
	if svc.Port != 20880 || svc.Protocol != discovery.ProtocolDubbo || svc.Resolution != discovery.Static || len(got) != 1 {
		t.Fatalf("service: %+v (all: %s)", svc, discoverytest.Describe(got))
	}
	in := svc.Instances[0]
	if in.Weight != 100 || in.Metadata["protocol"] != "dubbo" || in.Metadata["version"] != "1.0.0" || in.Metadata["application"] != "demo-provider" || in.Metadata["methods"] != "sayHi,sayHello" {
		t.Fatalf("instance: %+v", in)
	}

	// A second provider, another version and group of the same interface.
	p2 := app2.registerDubbo(greeting, dubboURL("10.0.0.2", 20881, greeting, "&version=1.0.0&weight=200"), "10.0.0.2")
	app2.registerDubbo(greeting, dubboURL("10.0.0.3", 20880, greeting, "&group=g1"), "10.0.0.3")
	host2 := "providers:" + greeting + ":0.0.0:g1.zookeeper"
	rec.WaitFor(t, wait, "second provider and group host", func(s map[string]discovery.Service) bool {
		return endpoints(s, host) == "10.0.0.1:20880,10.0.0.2:20881" && endpoints(s, host2) == "10.0.0.3:20880" && s[host].Instances[1].Weight == 200
	})

	// A provider re-registers with other parameters (Dubbo deletes and
	// re-creates the node): weight and metadata change.
	app2.delete(p2)
	app2.registerDubbo(greeting, dubboURL("10.0.0.2", 20881, greeting, "&version=1.0.0&weight=50&tag=blue"), "10.0.0.2")
	rec.WaitFor(t, wait, "changed weight and metadata", func(s map[string]discovery.Service) bool {
		return len(s[host].Instances) == 2 && s[host].Instances[1].Weight == 50 && s[host].Instances[1].Metadata["tag"] == "blue"
	})

	// A provider application stops: its session closes, its ephemeral
	// nodes vanish, and so do its instances.
	app2.close()
	got = rec.WaitFor(t, wait, "app2's instances gone", func(s map[string]discovery.Service) bool {
		h2, ok := s[host2]
		return endpoints(s, host) == "10.0.0.1:20880" && ok && len(h2.Instances) == 0
	})
	// The emptied host keeps its port and protocol (the catalog applies
	// the grace period).
	if h2 := got[host2]; h2.Port != 20880 || h2.Protocol != discovery.ProtocolDubbo {
		t.Fatalf("emptied host: %+v", h2)
	}

	// Steady registry: nothing more is published.
	before := rec.Calls("update") + rec.Calls("replace") + rec.Calls("remove")
	time.Sleep(700 * time.Millisecond)
	if after := rec.Calls("update") + rec.Calls("replace") + rec.Calls("remove"); after != before {
		t.Fatalf("steady registry published %d more times", after-before)
	}

	// The interface is deleted: its hosts are removed at once.
	app1.close()
	admin := newSession(t, srv.Addr())
	for _, p := range []string{"/dubbo/" + greeting + "/providers", "/dubbo/" + greeting} {
		admin.delete(p)
	}
	rec.WaitFor(t, wait, "interface removed", func(s map[string]discovery.Service) bool { return len(s) == 0 })
	if rec.Calls("remove") < 2 {
		t.Fatalf("removes: %d", rec.Calls("remove"))
	}
}

func TestSpringCloud(t *testing.T) {
	srv := zktest.Start(t)
	app := newSession(t, srv.Addr())
	app.ephemeral("/services/service-provider/id-1", springJSON("service-provider", "id-1", "10.1.0.1", 8080, map[string]string{"instance_status": "UP"}))
	app.ephemeral("/custom/path/grpc-svc/id-1", springJSON("grpc-svc", "id-1", "10.1.0.5", 9090, map[string]string{"protocol": "grpc"}))
	app.ephemeral("/custom/path/bad-proto/id-1", springJSON("bad-proto", "id-1", "10.1.0.6", 9090, map[string]string{"protocol": "carrier-pigeon"}))
	app.ephemeral("/services/dns-svc/id-1", springJSON("dns-svc", "id-1", "backend.internal", 8080, nil))
	app.ephemeral("/services/broken/id-1", []byte("{not json"))

	w, rec := startWatcher(t, srv, "/custom/path/", "/dubbo", "/services")
	sp, gs, dn := "service-provider.services.zookeeper", "grpc-svc.custom-path.zookeeper", "dns-svc.services.zookeeper"
	got := rec.WaitFor(t, wait, "spring cloud services", func(s map[string]discovery.Service) bool {
		return endpoints(s, sp) == "10.1.0.1:8080" && endpoints(s, gs) == "10.1.0.5:9090" && endpoints(s, dn) == "backend.internal:8080"
	})
	waitStatus(t, w, "ready", func(s discovery.Status) bool { return s.Ready && s.Healthy })
	if len(got) != 3 {
		t.Fatalf("want 3 services (bad protocol and broken JSON skipped):\n%s", discoverytest.Describe(got))
	}
	if got[gs].Protocol != discovery.ProtocolGRPC || got[sp].Protocol != discovery.ProtocolHTTP || got[sp].Port != 8080 || got[dn].Resolution != discovery.DNS {
		t.Fatalf("services:\n%s", discoverytest.Describe(got))
	}
	if in := got[sp].Instances[0]; in.Weight != 1 || in.Metadata["instance_status"] != "UP" {
		t.Fatalf("instance: %+v", in)
	}

	// A second instance; then its metadata changes in place (Spring Cloud
	// sets the node's data).
	app2 := newSession(t, srv.Addr())
	app2.ephemeral("/services/service-provider/id-2", springJSON("service-provider", "id-2", "10.1.0.2", 8080, map[string]string{"instance_status": "UP"}))
	rec.WaitFor(t, wait, "second instance", func(s map[string]discovery.Service) bool {
		return endpoints(s, sp) == "10.1.0.1:8080,10.1.0.2:8080"
	})
	app2.set("/services/service-provider/id-2", springJSON("service-provider", "id-2", "10.1.0.2", 8080, map[string]string{"instance_status": "UP", "zone": "b"}))
	rec.WaitFor(t, wait, "metadata change", func(s map[string]discovery.Service) bool {
		return len(s[sp].Instances) == 2 && s[sp].Instances[1].Metadata["zone"] == "b"
	})
	// The instance is taken out of service: it disappears.
	app2.set("/services/service-provider/id-2", springJSON("service-provider", "id-2", "10.1.0.2", 8080, map[string]string{"instance_status": "OUT_OF_SERVICE"}))
	rec.WaitFor(t, wait, "out-of-service instance gone", func(s map[string]discovery.Service) bool {
		return endpoints(s, sp) == "10.1.0.1:8080"
	})

	// The application stops: the service stays, with no instances.
	app.close()
	rec.WaitFor(t, wait, "instances gone", func(s map[string]discovery.Service) bool {
		svc, ok := s[sp]
		return ok && len(svc.Instances) == 0 && svc.Port == 8080 && len(s[gs].Instances) == 0
	})

	// The service node is deleted: removed at once.
	admin := newSession(t, srv.Addr())
	admin.delete("/services/service-provider/id-2")
	admin.delete("/services/service-provider")
	rec.WaitFor(t, wait, "service removed", func(s map[string]discovery.Service) bool {
		_, ok := s[sp]
		return !ok
	})
	// A root that is deleted and re-created is watched again.
	for _, p := range []string{"/custom/path/grpc-svc", "/custom/path/bad-proto", "/custom/path"} {
		admin.delete(p)
	}
	rec.WaitFor(t, wait, "root's service removed", func(s map[string]discovery.Service) bool {
		_, ok := s[gs]
		return !ok
	})
	admin.ephemeral("/custom/path/grpc-svc/id-9", springJSON("grpc-svc", "id-9", "10.1.0.9", 9091, map[string]string{"protocol": "grpc"}))
	rec.WaitFor(t, wait, "re-created root", func(s map[string]discovery.Service) bool { return endpoints(s, gs) == "10.1.0.9:9091" })
}

func TestRootSlash(t *testing.T) {
	srv := zktest.Start(t)
	app := newSession(t, srv.Addr())
	app.ephemeral("/top-svc/id-1", springJSON("top-svc", "id-1", "10.2.0.1", 8080, nil))
	app.ephemeral("/services/svc/id-1", springJSON("svc", "id-1", "10.2.0.2", 8080, nil))
	app.registerDubbo(greeting, dubboURL("10.2.0.3", 20880, greeting, ""), "10.2.0.3")
	_, rec := startWatcher(t, srv, "/")
	got := rec.WaitFor(t, wait, "services", func(s map[string]discovery.Service) bool {
		return endpoints(s, "top-svc.zookeeper") == "10.2.0.1:8080" && endpoints(s, "svc.services.zookeeper") == "10.2.0.2:8080" &&
			endpoints(s, "providers:"+greeting+":0.0.0:.zookeeper") == "10.2.0.3:20880"
	})
	if len(got) != 3 {
		t.Fatalf("/dubbo, /services and /zookeeper must not be services of /:\n%s", discoverytest.Describe(got))
	}
}

func TestOutageAndResync(t *testing.T) {
	srv := zktest.Start(t)
	app := newSession(t, srv.Addr())
	app.ephemeral("/services/svc/id-1", springJSON("svc", "id-1", "10.3.0.1", 8080, nil))
	app.registerDubbo(greeting, dubboURL("10.3.0.2", 20880, greeting, ""), "10.3.0.2")
	w, rec := startWatcher(t, srv)
	dh := "providers:" + greeting + ":0.0.0:.zookeeper"
	rec.WaitFor(t, wait, "listing", func(s map[string]discovery.Service) bool {
		return endpoints(s, "svc.services.zookeeper") == "10.3.0.1:8080" && endpoints(s, dh) == "10.3.0.2:20880"
	})
	waitStatus(t, w, "healthy", func(s discovery.Status) bool { return s.Ready && s.Healthy })

	// The server goes down: unhealthy at once; the listing is kept.
	srv.Stop()
	waitStatus(t, w, "unhealthy", func(s discovery.Status) bool { return !s.Healthy && s.Ready && s.LastError != "" })
	if got := rec.Services(); len(got) != 2 {
		t.Fatalf("listing dropped during the outage:\n%s", discoverytest.Describe(got))
	}

	// Back with its data within the session timeout: the same sessions
	// resume, the watcher re-lists, and watches work again.
	srv.Restart()
	waitStatus(t, w, "healthy again", func(s discovery.Status) bool { return s.Healthy })
	app2 := newSession(t, srv.Addr())
	app2.ephemeral("/services/svc/id-2", springJSON("svc", "id-2", "10.3.0.3", 8080, nil))
	rec.WaitFor(t, wait, "change after restart", func(s map[string]discovery.Service) bool {
		return endpoints(s, "svc.services.zookeeper") == "10.3.0.1:8080,10.3.0.3:8080" && endpoints(s, dh) == "10.3.0.2:20880"
	})

}

func TestStartWhileDown(t *testing.T) {
	srv := zktest.Start(t)
	srv.Stop()
	w, rec := startWatcher(t, srv)
	time.Sleep(1500 * time.Millisecond)
	if st := w.Status(); st.Healthy || st.Ready {
		t.Fatalf("status while the server is down: %+v", st)
	}
	srv.Restart()
	waitStatus(t, w, "ready once the server is up", func(s discovery.Status) bool { return s.Ready && s.Healthy })
	if rec.Calls("replace") != 1 || len(rec.Services()) != 0 {
		t.Fatalf("want one empty Replace, got %d replaces, services:\n%s", rec.Calls("replace"), discoverytest.Describe(rec.Services()))
	}
}

func TestNew(t *testing.T) {
	ok := api.RegistryConfig{Type: "zookeeper", Name: "zk", Domain: "zk.example.com", Port: 2181}
	for _, tc := range []struct {
		name  string
		edit  func(*api.RegistryConfig)
		err   string
		roots []string
	}{
		{name: "defaults", edit: func(*api.RegistryConfig) {}, roots: []string{"/services"}},
		{name: "extra roots", edit: func(r *api.RegistryConfig) {
			r.ZkServicesPath = []string{"/dubbo", "/services/", "/a/b/", "/c", "/c"}
		}, roots: []string{"/services", "/a/b", "/c"}},
		{name: "no domain", edit: func(r *api.RegistryConfig) { r.Domain = " " }, err: "domain is empty"},
		{name: "domain with port", edit: func(r *api.RegistryConfig) { r.Domain = "zk:2181,zk2:2181" }, err: "one host"},
		{name: "url domain", edit: func(r *api.RegistryConfig) { r.Domain = "http://zk" }, err: "one host"},
		{name: "no port", edit: func(r *api.RegistryConfig) { r.Port = 0 }, err: "port 0"},
		{name: "big port", edit: func(r *api.RegistryConfig) { r.Port = 70000 }, err: "port 70000"},
		{name: "relative root", edit: func(r *api.RegistryConfig) { r.ZkServicesPath = []string{"services2"} }, err: "absolute"},
		{name: "root in dubbo", edit: func(r *api.RegistryConfig) { r.ZkServicesPath = []string{"/dubbo/x"} }, err: "inside /dubbo"},
		{name: "same suffix", edit: func(r *api.RegistryConfig) { r.ZkServicesPath = []string{"/a-b", "/a/b"} }, err: "same host suffix"},
		{name: "wrong type", edit: func(r *api.RegistryConfig) { r.Type = "consul" }, err: "type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ok
			tc.edit(&r)
			w, err := New(discovery.Config{Registry: r}, discoverytest.NewRecorder(), nil)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := w.(*Watcher).roots; strings.Join(got, " ") != strings.Join(tc.roots, " ") {
				t.Fatalf("roots %v, want %v", got, tc.roots)
			}
			if st := w.Status(); st.Healthy || st.Ready {
				t.Fatalf("status before Run: %+v", st)
			}
		})
	}
}

// TestSessionExpiry cuts the watcher off the server (through a proxy) for
// longer than its session timeout while the registry changes: the server
// expires the session, which drops every watch; on reconnecting the
// watcher gets a new session, re-lists, and watches work again.
func TestSessionExpiry(t *testing.T) {
	srv := zktest.Start(t)
	app := newSession(t, srv.Addr())
	app.ephemeral("/services/svc/id-1", springJSON("svc", "id-1", "10.4.0.1", 8080, nil))
	app.ephemeral("/services/gone/id-1", springJSON("gone", "id-1", "10.4.0.2", 8080, nil))
	px := newProxy(t, srv.Addr())
	w, rec := startWatcherOn(t, px.port(), 2*time.Second)
	rec.WaitFor(t, wait, "listing", func(s map[string]discovery.Service) bool {
		return endpoints(s, "svc.services.zookeeper") == "10.4.0.1:8080" && endpoints(s, "gone.services.zookeeper") == "10.4.0.2:8080"
	})
	var sessionID int64
	waitStatus(t, w, "ready", func(s discovery.Status) bool { sessionID = w.conn.SessionID(); return s.Ready && s.Healthy })

	px.pause(true)
	waitStatus(t, w, "unhealthy", func(s discovery.Status) bool { return !s.Healthy })
	app.delete("/services/gone/id-1")
	app.delete("/services/gone")
	app.ephemeral("/services/svc/id-2", springJSON("svc", "id-2", "10.4.0.3", 8080, nil))
	time.Sleep(3 * time.Second) // > the 2 s session timeout
	px.pause(false)

	rec.WaitFor(t, wait, "re-listed after expiry", func(s map[string]discovery.Service) bool {
		return len(s) == 1 && endpoints(s, "svc.services.zookeeper") == "10.4.0.1:8080,10.4.0.3:8080"
	})
	waitStatus(t, w, "healthy", func(s discovery.Status) bool { return s.Healthy })
	if id := w.conn.SessionID(); id == sessionID {
		t.Fatalf("session %x did not expire", id)
	}
	app.delete("/services/svc/id-2")
	rec.WaitFor(t, wait, "watch in the new session", func(s map[string]discovery.Service) bool {
		return endpoints(s, "svc.services.zookeeper") == "10.4.0.1:8080"
	})
}

// proxy forwards loopback TCP to a server; paused, it drops every
// connection and refuses new ones (a network partition).
type proxy struct {
	t      *testing.T
	ln     net.Listener
	target string
	mu     sync.Mutex
	paused bool
	conns  []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{t: t, ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.pause(true) })
	go p.serve()
	return p
}

func (p *proxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.paused {
			p.mu.Unlock()
			c.Close()
			continue
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(s, c); s.Close() }()
		go func() { _, _ = io.Copy(c, s); c.Close() }()
	}
}

func (p *proxy) pause(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paused = on
	if on {
		for _, c := range p.conns {
			c.Close()
		}
		p.conns = nil
	}
}

// TestServerReplaced restarts the server without its data: it refuses the
// watcher's client (which has seen later zxids) until the watcher, long
// after its session must have expired, starts a new client, re-lists, and
// removes what is gone.
func TestServerReplaced(t *testing.T) {
	srv := zktest.Start(t)
	app := newSession(t, srv.Addr())
	for i := 0; i < 20; i++ { // advance the zxid well past the new server's
		app.ephemeral(fmt.Sprintf("/services/old/id-%d", i), springJSON("old", "id", "10.5.0.1", 8000+i, nil))
	}
	w, rec := startWatcherOn(t, srv.Port(), 2*time.Second)
	rec.WaitFor(t, wait, "listing", func(s map[string]discovery.Service) bool { return len(s["old.services.zookeeper"].Instances) == 20 })
	app.close()
	srv.Replace()
	app2 := newSession(t, srv.Addr())
	app2.ephemeral("/services/new/id-1", springJSON("new", "id-1", "10.5.0.2", 7070, nil))
	rec.WaitFor(t, 30*time.Second, "re-listed from the new server", func(s map[string]discovery.Service) bool {
		return len(s) == 1 && endpoints(s, "new.services.zookeeper") == "10.5.0.2:7070"
	})
	waitStatus(t, w, "healthy", func(s discovery.Status) bool { return s.Healthy && s.Ready })
	app2.ephemeral("/services/new/id-2", springJSON("new", "id-2", "10.5.0.3", 7070, nil))
	rec.WaitFor(t, wait, "watches in the new client", func(s map[string]discovery.Service) bool {
		return endpoints(s, "new.services.zookeeper") == "10.5.0.2:7070,10.5.0.3:7070"
	})
}
