package consul

import (
	"context"
	"strings"
	"testing"
	"time"

	capi "github.com/hashicorp/consul/api"

	"github.com/hxds/hxds/discovery"
	"github.com/hxds/hxds/discovery/discoverytest"
	"github.com/hxds/hxds/internal/api"
	"github.com/hxds/hxds/internal/testutil"
	"github.com/hxds/hxds/internal/testutil/consultest"
)

// The dev agent's datacenter.
const dc = "dc1"

const waitLong = 10 * time.Second

// run starts a watcher of agent with reg's filter settings and stops it
// when the test ends.
func run(t testing.TB, agent *consultest.Agent, reg api.RegistryConfig, token string) (*watcher, *discoverytest.Recorder) {
	t.Helper()
	reg.Type, reg.Name, reg.Domain, reg.Port = Type, "test", "127.0.0.1", agent.HTTPPort()
	if reg.ConsulDatacenter == "" {
		reg.ConsulDatacenter = dc
	}
	rec := discoverytest.NewRecorder()
	w, err := New(discovery.Config{Registry: reg, Auth: discovery.Auth{ConsulToken: token}}, rec, testutil.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return w.(*watcher), rec
}

func register(t testing.TB, c *capi.Client, r *capi.AgentServiceRegistration) {
	t.Helper()
	if err := c.Agent().ServiceRegister(r); err != nil {
		t.Fatalf("register %s: %v", r.ID, err)
	}
}

func deregister(t testing.TB, c *capi.Client, id string) {
	t.Helper()
	if err := c.Agent().ServiceDeregister(id); err != nil {
		t.Fatalf("deregister %s: %v", id, err)
	}
}

func waitStatus(t *testing.T, w *watcher, what string, cond func(discovery.Status) bool) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for !cond(w.Status()) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; status %+v", what, w.Status())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAgentServiceLifecycle(t *testing.T) {
	agent := consultest.Start(t, consultest.Options{})
	c := agent.Client()
	w, rec := run(t, agent, api.RegistryConfig{}, "")
	waitStatus(t, w, "ready", func(s discovery.Status) bool { return s.Ready && s.Healthy })

	host := Host("web_app", dc) // '_' → '-'
	if host != "web-app.dc1.consul" {
		t.Fatalf("host %q", host)
	}
	register(t, c, &capi.AgentServiceRegistration{ID: "web-1", Name: "web_app", Address: "10.0.0.1", Port: 8080,
		Meta: map[string]string{"protocol": "grpc", "version": "1"}, Weights: &capi.AgentWeights{Passing: 3, Warning: 1}})
	// No address of its own: the node's (the agent binds 127.0.0.1).
	register(t, c, &capi.AgentServiceRegistration{ID: "web-2", Name: "web_app", Port: 8081,
		Meta:  map[string]string{"protocol": "grpc"},
		Check: &capi.AgentServiceCheck{CheckID: "web-2-ttl", TTL: "1h", Status: capi.HealthPassing}})

	got := rec.WaitFor(t, waitLong, "web-app with two instances", func(s map[string]discovery.Service) bool {
		return len(s[host].Instances) == 2
	})[host]
	if got.Protocol != discovery.ProtocolGRPC || got.Port != 8080 || got.Resolution != discovery.Static {
		t.Fatalf("service %+v", got)
	}
	if e := discoverytest.Endpoints(got); e[0] != "10.0.0.1:8080" || e[1] != "127.0.0.1:8081" {
		t.Fatalf("endpoints %v", e)
	}
	if got.Instances[0].Weight != 3 || got.Instances[0].Metadata["version"] != "1" || got.Instances[1].Weight != 1 {
		t.Fatalf("instances %+v", got.Instances)
	}

	// Weight and metadata change on re-registration.
	register(t, c, &capi.AgentServiceRegistration{ID: "web-1", Name: "web_app", Address: "10.0.0.1", Port: 8080,
		Meta: map[string]string{"protocol": "grpc", "version": "2"}, Weights: &capi.AgentWeights{Passing: 7, Warning: 1}})
	rec.WaitFor(t, waitLong, "weight 7, version 2", func(s map[string]discovery.Service) bool {
		in := s[host].Instances
		return len(in) == 2 && in[0].Weight == 7 && in[0].Metadata["version"] == "2"
	})

	// A failing check takes the instance out; passing again brings it back.
	if err := c.Agent().UpdateTTL("web-2-ttl", "down", capi.HealthCritical); err != nil {
		t.Fatal(err)
	}
	rec.WaitFor(t, waitLong, "web-2 gone (critical)", func(s map[string]discovery.Service) bool {
		e := discoverytest.Endpoints(s[host])
		return len(e) == 1 && e[0] == "10.0.0.1:8080"
	})
	if err := c.Agent().UpdateTTL("web-2-ttl", "up", capi.HealthPassing); err != nil {
		t.Fatal(err)
	}
	rec.WaitFor(t, waitLong, "web-2 back", func(s map[string]discovery.Service) bool { return len(s[host].Instances) == 2 })

	// Every instance failing: published with no instances, port kept.
	if err := c.Agent().EnableServiceMaintenance("web-1", "test"); err != nil {
		t.Fatal(err)
	}
	if err := c.Agent().UpdateTTL("web-2-ttl", "down", capi.HealthCritical); err != nil {
		t.Fatal(err)
	}
	empty := rec.WaitFor(t, waitLong, "no instance passing", func(s map[string]discovery.Service) bool {
		svc, ok := s[host]
		return ok && len(svc.Instances) == 0
	})[host]
	if empty.Port != 8080 || empty.Protocol != discovery.ProtocolGRPC {
		t.Fatalf("empty service lost its port/protocol: %+v", empty)
	}

	// Deregistered: removed promptly, not kept stale.
	removes := rec.Calls("remove")
	start := time.Now()
	deregister(t, c, "web-1")
	deregister(t, c, "web-2")
	rec.WaitFor(t, waitLong, "web-app removed", func(s map[string]discovery.Service) bool {
		_, ok := s[host]
		return !ok
	})
	if rec.Calls("remove") <= removes {
		t.Fatalf("removal not published with Remove")
	}
	t.Logf("removal published %s after deregistration", time.Since(start))
	if st := w.Status(); !st.Healthy || !st.Ready || st.LastError != "" {
		t.Fatalf("status %+v", st)
	}
}

func TestAgentUnsupportedProtocolAndHostnames(t *testing.T) {
	agent := consultest.Start(t, consultest.Options{})
	c := agent.Client()
	_, rec := run(t, agent, api.RegistryConfig{}, "")
	host := Host("odd", dc)
	register(t, c, &capi.AgentServiceRegistration{ID: "odd-1", Name: "odd", Address: "10.0.0.9", Port: 80, Meta: map[string]string{"protocol": "carrier-pigeon"}})
	register(t, c, &capi.AgentServiceRegistration{ID: "ext-1", Name: "ext", Address: "backend.example.com", Port: 443, Meta: map[string]string{"protocol": "https"}})
	ext := rec.WaitFor(t, waitLong, "ext", func(s map[string]discovery.Service) bool { return len(s[Host("ext", dc)].Instances) == 1 })[Host("ext", dc)]
	if ext.Resolution != discovery.DNS || ext.Protocol != discovery.ProtocolHTTPS {
		t.Fatalf("ext %+v", ext)
	}
	if _, ok := rec.Services()[host]; ok {
		t.Fatal("service with an unsupported protocol was published")
	}
	register(t, c, &capi.AgentServiceRegistration{ID: "odd-1", Name: "odd", Address: "10.0.0.9", Port: 80, Meta: map[string]string{"protocol": "tri"}})
	rec.WaitFor(t, waitLong, "odd as gRPC", func(s map[string]discovery.Service) bool {
		return s[host].Protocol == discovery.ProtocolGRPC && len(s[host].Instances) == 1
	})
	register(t, c, &capi.AgentServiceRegistration{ID: "odd-1", Name: "odd", Address: "10.0.0.9", Port: 80, Meta: map[string]string{"protocol": "smoke-signals"}})
	rec.WaitFor(t, waitLong, "odd withdrawn", func(s map[string]discovery.Service) bool { _, ok := s[host]; return !ok })
}

func TestAgentTagFilter(t *testing.T) {
	agent := consultest.Start(t, consultest.Options{})
	c := agent.Client()
	_, rec := run(t, agent, api.RegistryConfig{ConsulServiceTag: "Higress"}, "")
	register(t, c, &capi.AgentServiceRegistration{ID: "a-1", Name: "a", Address: "10.0.0.1", Port: 80, Tags: []string{"higress"}})
	register(t, c, &capi.AgentServiceRegistration{ID: "b-1", Name: "b", Address: "10.0.0.2", Port: 80, Tags: []string{"other"}})
	a, b := Host("a", dc), Host("b", dc)
	rec.WaitFor(t, waitLong, "a", func(s map[string]discovery.Service) bool { return len(s[a].Instances) == 1 })
	// b is tagged differently and consul's own service has no tag.
	register(t, c, &capi.AgentServiceRegistration{ID: "b-1", Name: "b", Address: "10.0.0.2", Port: 80, Tags: []string{"other", "HIGRESS"}})
	s := rec.WaitFor(t, waitLong, "b once tagged", func(s map[string]discovery.Service) bool { return len(s[b].Instances) == 1 })
	if _, ok := s[Host("consul", dc)]; ok {
		t.Fatalf("untagged consul service published:\n%s", discoverytest.Describe(s))
	}
	// Losing the tag removes the service.
	register(t, c, &capi.AgentServiceRegistration{ID: "a-1", Name: "a", Address: "10.0.0.1", Port: 80})
	rec.WaitFor(t, waitLong, "a removed once untagged", func(s map[string]discovery.Service) bool { _, ok := s[a]; return !ok })
}

func TestAgentDownAndBack(t *testing.T) {
	agent := consultest.Start(t, consultest.Options{})
	w, rec := run(t, agent, api.RegistryConfig{}, "")
	register(t, agent.Client(), &capi.AgentServiceRegistration{ID: "x-1", Name: "x", Address: "10.0.0.1", Port: 80})
	rec.WaitFor(t, waitLong, "x", func(s map[string]discovery.Service) bool { return len(s[Host("x", dc)].Instances) == 1 })
	waitStatus(t, w, "healthy", func(s discovery.Status) bool { return s.Healthy && s.Ready })

	agent.Stop()
	waitStatus(t, w, "unhealthy after the agent stopped", func(s discovery.Status) bool { return !s.Healthy && s.LastError != "" })
	st := w.Status()
	if !st.Ready || st.Errors == 0 {
		t.Fatalf("status %+v", st)
	}
	t.Logf("down: %s", st.LastError)
	// The last listing is kept while the registry is away.
	if _, ok := rec.Services()[Host("x", dc)]; !ok {
		t.Fatal("listing dropped while the agent is down")
	}

	// A dev agent restarts empty: x is gone, y is new; the watcher
	// resyncs the whole listing.
	agent.Restart()
	register(t, agent.Client(), &capi.AgentServiceRegistration{ID: "y-1", Name: "y", Address: "10.0.0.2", Port: 80})
	rec.WaitFor(t, 30*time.Second, "resynced: y present, x gone", func(s map[string]discovery.Service) bool {
		_, x := s[Host("x", dc)]
		return !x && len(s[Host("y", dc)].Instances) == 1
	})
	waitStatus(t, w, "healthy again", func(s discovery.Status) bool { return s.Healthy && s.LastError == "" })
}

// TestAgentSteadyNoChurn: blocking queries that time out (refresh
// interval 1s here) publish nothing when nothing changed.
func TestAgentSteadyNoChurn(t *testing.T) {
	agent := consultest.Start(t, consultest.Options{})
	register(t, agent.Client(), &capi.AgentServiceRegistration{ID: "s-1", Name: "s", Address: "10.0.0.1", Port: 80})
	w, rec := run(t, agent, api.RegistryConfig{ConsulRefreshInterval: int64(time.Second)}, "")
	rec.WaitFor(t, waitLong, "s", func(s map[string]discovery.Service) bool { return len(s[Host("s", dc)].Instances) == 1 })
	time.Sleep(300 * time.Millisecond) // let first reads settle
	before := [3]int{rec.Calls("replace"), rec.Calls("update"), rec.Calls("remove")}
	sync0 := w.Status().LastSync
	time.Sleep(2500 * time.Millisecond)
	after := [3]int{rec.Calls("replace"), rec.Calls("update"), rec.Calls("remove")}
	if before != after {
		t.Fatalf("publisher calls changed in a steady registry: %v → %v", before, after)
	}
	if !w.Status().LastSync.After(sync0) {
		t.Fatal("no exchange recorded during 2.5s with a 1s refresh interval")
	}
}

// TestAgentACLToken runs an ACL-enabled agent (default deny): the
// authSecretName token is what lets the watcher read the catalog; a wrong
// token makes it unhealthy with Consul's error.
func TestAgentACLToken(t *testing.T) {
	const root = "6e1f1a4e-2c3b-4e44-9d6f-0123456789ab"
	agent := consultest.Start(t, consultest.Options{Token: root, HCL: `acl {
  enabled = true
  default_policy = "deny"
  tokens { initial_management = "` + root + `"
    agent = "` + root + `" }
}`})
	register(t, agent.Client(), &capi.AgentServiceRegistration{ID: "sec-1", Name: "sec", Address: "10.0.0.1", Port: 80})

	_, rec := run(t, agent, api.RegistryConfig{}, root)
	rec.WaitFor(t, waitLong, "sec with the token", func(s map[string]discovery.Service) bool { return len(s[Host("sec", dc)].Instances) == 1 })

	bad, _ := run(t, agent, api.RegistryConfig{}, "00000000-0000-0000-0000-000000000000")
	waitStatus(t, bad, "unhealthy with a wrong token", func(s discovery.Status) bool { return s.LastError != "" && !s.Healthy })
	if !strings.Contains(bad.Status().LastError, "ACL") {
		t.Fatalf("error %q does not mention ACL", bad.Status().LastError)
	}
}
