package eureka

// These tests run against eurekatest.Server, REST handlers for
// /eureka/apps and /eureka/apps/delta built on fargo's exported JSON types,
// because no real Eureka server can be had on these machines (Java web
// application, no package reachable from here).

import (
	"context"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/hudl/fargo"
	"go.uber.org/zap/zaptest"

	"github.com/hxds/hxds/discovery"
	"github.com/hxds/hxds/discovery/discoverytest"
	"github.com/hxds/hxds/discovery/eureka/eurekatest"
	"github.com/hxds/hxds/internal/api"
)

const wait = 5 * time.Second

type harness struct {
	fake *eurekatest.Server
	rec  *discoverytest.Recorder
	w    *Watcher
}

func startWatcher(t *testing.T, reg api.RegistryConfig, setup func(*eurekatest.Server)) *harness {
	t.Helper()
	f := eurekatest.NewServer(t)
	if setup != nil {
		setup(f)
	}
	reg.Type, reg.Domain, reg.Port = "eureka", "127.0.0.1", f.Port()
	if reg.Name == "" {
		reg.Name = "eu"
	}
	rec := discoverytest.NewRecorder()
	wt, err := New(discovery.Config{Registry: reg}, rec, zaptest.NewLogger(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	w := wt.(*Watcher)
	w.interval = 40 * time.Millisecond
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
		case <-time.After(wait):
			t.Errorf("Run did not return after cancel")
		}
	})
	return &harness{f, rec, w}
}

func hasEndpoints(host string, want ...string) func(map[string]discovery.Service) bool {
	return func(s map[string]discovery.Service) bool {
		svc, ok := s[host]
		if !ok {
			return false
		}
		got := discoverytest.Endpoints(svc)
		return strings.Join(got, ",") == strings.Join(want, ",")
	}
}

func waitStatus(t *testing.T, w *Watcher, what string, cond func(discovery.Status) bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond(w.Status()) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; status %+v", what, w.Status())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestAppsAndInstancesAppear(t *testing.T) {
	h := startWatcher(t, api.RegistryConfig{}, func(f *eurekatest.Server) {
		f.Put(eurekatest.Instance("ORDERS", "10.0.0.2", 8080, eurekatest.WithMeta("zone", "a", "version", "v1")))
		f.Put(eurekatest.Instance("ORDERS", "10.0.0.1", 8080))
		f.Put(eurekatest.Instance("PAYMENTS", "10.0.1.1", 9090, eurekatest.WithMeta("protocol", "grpc")))
	})
	got := h.rec.WaitFor(t, wait, "two apps", func(s map[string]discovery.Service) bool { return len(s) == 2 })
	o := got["ORDERS.eureka"]
	if o.Port != 8080 || o.Protocol != discovery.ProtocolHTTP || o.Resolution != discovery.Static {
		t.Errorf("ORDERS: %+v", o)
	}
	if e := discoverytest.Endpoints(o); strings.Join(e, ",") != "10.0.0.1:8080,10.0.0.2:8080" {
		t.Errorf("ORDERS endpoints %v", e)
	}
	if o.Instances[0].Metadata != nil {
		t.Errorf("@class marker kept as metadata: %v", o.Instances[0].Metadata)
	}
	if m := o.Instances[1].Metadata; !maps.Equal(m, map[string]string{"zone": "a", "version": "v1"}) || o.Instances[1].Weight != 1 {
		t.Errorf("ORDERS instance 2: %+v", o.Instances[1])
	}
	if p := got["PAYMENTS.eureka"]; p.Protocol != discovery.ProtocolGRPC || p.Port != 9090 {
		t.Errorf("PAYMENTS: %+v", p)
	}
	waitStatus(t, h.w, "ready and healthy", func(s discovery.Status) bool { return s.Ready && s.Healthy })
}

func TestNonUPInstancesAreNotPublished(t *testing.T) {
	a := eurekatest.Instance("ORDERS", "10.0.0.1", 8080)
	b := eurekatest.Instance("ORDERS", "10.0.0.2", 8080)
	c := eurekatest.Instance("ORDERS", "10.0.0.3", 8080, eurekatest.WithStatus(fargo.STARTING))
	h := startWatcher(t, api.RegistryConfig{}, func(f *eurekatest.Server) { f.Put(a); f.Put(b); f.Put(c) })
	h.rec.WaitFor(t, wait, "two UP instances", hasEndpoints("ORDERS.eureka", "10.0.0.1:8080", "10.0.0.2:8080"))

	h.fake.Put(eurekatest.Instance("ORDERS", "10.0.0.2", 8080, eurekatest.WithStatus(fargo.DOWN)))
	h.rec.WaitFor(t, wait, "DOWN instance gone", hasEndpoints("ORDERS.eureka", "10.0.0.1:8080"))

	h.fake.Put(eurekatest.Instance("ORDERS", "10.0.0.1", 8080, eurekatest.WithStatus(fargo.OUTOFSERVICE)))
	s := h.rec.WaitFor(t, wait, "service with no instances", hasEndpoints("ORDERS.eureka"))
	if svc := s["ORDERS.eureka"]; svc.Port != 8080 || svc.Protocol != discovery.ProtocolHTTP {
		t.Errorf("an app with no UP instance should keep its port and protocol: %+v", svc)
	}

	h.fake.Put(eurekatest.Instance("ORDERS", "10.0.0.3", 8080))
	h.rec.WaitFor(t, wait, "STARTING instance now UP", hasEndpoints("ORDERS.eureka", "10.0.0.3:8080"))
}

func TestWeightAndMetadataChanges(t *testing.T) {
	h := startWatcher(t, api.RegistryConfig{}, func(f *eurekatest.Server) {
		f.Put(eurekatest.Instance("ORDERS", "10.0.0.1", 8080, eurekatest.WithMeta("weight", "5", "v", "1")))
	})
	h.rec.WaitFor(t, wait, "weight 5", func(s map[string]discovery.Service) bool {
		in := s["ORDERS.eureka"].Instances
		return len(in) == 1 && in[0].Weight == 5 && in[0].Metadata["v"] == "1"
	})
	h.fake.Put(eurekatest.Instance("ORDERS", "10.0.0.1", 8080, eurekatest.WithMeta("weight", "20", "v", "2")))
	h.rec.WaitFor(t, wait, "weight 20, v=2", func(s map[string]discovery.Service) bool {
		in := s["ORDERS.eureka"].Instances
		return len(in) == 1 && in[0].Weight == 20 && in[0].Metadata["v"] == "2"
	})
	h.fake.Put(eurekatest.Instance("ORDERS", "10.0.0.1", 8080, eurekatest.WithMeta("weight", "bogus")))
	h.rec.WaitFor(t, wait, "invalid weight is 1", func(s map[string]discovery.Service) bool {
		in := s["ORDERS.eureka"].Instances
		return len(in) == 1 && in[0].Weight == 1 && in[0].Metadata["v"] == ""
	})
}

func TestAppRemovedPromptly(t *testing.T) {
	h := startWatcher(t, api.RegistryConfig{}, func(f *eurekatest.Server) {
		f.Put(eurekatest.Instance("ORDERS", "10.0.0.1", 8080))
		f.Put(eurekatest.Instance("USERS", "10.0.2.1", 8080))
		f.Put(eurekatest.Instance("USERS", "10.0.2.2", 8080))
	})
	h.rec.WaitFor(t, wait, "two apps", func(s map[string]discovery.Service) bool { return len(s) == 2 })
	h.fake.Delete("USERS", "users:10.0.2.1:8080")
	h.rec.WaitFor(t, wait, "one USERS instance", hasEndpoints("USERS.eureka", "10.0.2.2:8080"))
	h.fake.Delete("USERS", "users:10.0.2.2:8080")
	h.rec.WaitFor(t, wait, "USERS gone", func(s map[string]discovery.Service) bool {
		_, ok := s["USERS.eureka"]
		return !ok && len(s) == 1
	})
}

func TestServerDownAndBack(t *testing.T) {
	h := startWatcher(t, api.RegistryConfig{}, func(f *eurekatest.Server) {
		f.Put(eurekatest.Instance("ORDERS", "10.0.0.1", 8080))
	})
	h.rec.WaitFor(t, wait, "ORDERS", hasEndpoints("ORDERS.eureka", "10.0.0.1:8080"))
	waitStatus(t, h.w, "healthy", func(s discovery.Status) bool { return s.Healthy && s.Ready })

	h.fake.Stop()
	waitStatus(t, h.w, "unhealthy while the server is down", func(s discovery.Status) bool {
		return !s.Healthy && s.Ready && s.LastError != "" && s.Errors > 0
	})
	// The last listing is kept while the server is down.
	if s := h.rec.Services(); len(s["ORDERS.eureka"].Instances) != 1 {
		t.Errorf("listing lost while down: %s", discoverytest.Describe(s))
	}
	h.fake.Put(eurekatest.Instance("ORDERS", "10.0.0.9", 8080))
	h.fake.Delete("ORDERS", "orders:10.0.0.1:8080")
	h.fake.Put(eurekatest.Instance("USERS", "10.0.2.1", 8080))
	h.fake.Restart()
	waitStatus(t, h.w, "healthy again", func(s discovery.Status) bool { return s.Healthy })
	h.rec.WaitFor(t, wait, "resynced", func(s map[string]discovery.Service) bool {
		return hasEndpoints("ORDERS.eureka", "10.0.0.9:8080")(s) && hasEndpoints("USERS.eureka", "10.0.2.1:8080")(s)
	})
}

func TestDeltasAreUsedAndChecked(t *testing.T) {
	h := startWatcher(t, api.RegistryConfig{}, func(f *eurekatest.Server) {
		f.Put(eurekatest.Instance("ORDERS", "10.0.0.1", 8080))
	})
	h.rec.WaitFor(t, wait, "ORDERS", hasEndpoints("ORDERS.eureka", "10.0.0.1:8080"))
	// Steady state: deltas, no further full fetch, no churn.
	deadline := time.Now().Add(wait)
	for h.fake.Count("/apps/delta") < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if full, delta := h.fake.Count("/apps"), h.fake.Count("/apps/delta"); full != 1 || delta < 3 {
		t.Fatalf("full=%d delta=%d; want one full fetch then deltas", full, delta)
	}
	if n := h.rec.Calls("replace"); n != 1 {
		t.Errorf("steady registry published %d times, want 1", n)
	}
	// A change through a delta.
	h.fake.Put(eurekatest.Instance("ORDERS", "10.0.0.2", 8080))
	h.rec.WaitFor(t, wait, "delta applied", hasEndpoints("ORDERS.eureka", "10.0.0.1:8080", "10.0.0.2:8080"))
	if full := h.fake.Count("/apps"); full != 1 {
		t.Errorf("a delta that checks out caused %d full fetches", full-1)
	}
	// A delta that fails the hashcode check falls back to full fetches.
	h.fake.SetBadHashcode(true)
	h.fake.Put(eurekatest.Instance("ORDERS", "10.0.0.3", 8080))
	h.rec.WaitFor(t, wait, "full fetch after a bad hashcode", hasEndpoints("ORDERS.eureka", "10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.3:8080"))
	if full := h.fake.Count("/apps"); full < 2 {
		t.Errorf("hashcode mismatch did not trigger a full fetch")
	}
}

func TestDeltaDisabledFallsBackToFull(t *testing.T) {
	h := startWatcher(t, api.RegistryConfig{}, func(f *eurekatest.Server) {
		f.SetDeltaDisabled(true)
		f.Put(eurekatest.Instance("ORDERS", "10.0.0.1", 8080))
	})
	h.rec.WaitFor(t, wait, "ORDERS", hasEndpoints("ORDERS.eureka", "10.0.0.1:8080"))
	h.fake.Put(eurekatest.Instance("ORDERS", "10.0.0.2", 8080))
	h.rec.WaitFor(t, wait, "change through full fetches", hasEndpoints("ORDERS.eureka", "10.0.0.1:8080", "10.0.0.2:8080"))
	if d := h.fake.Count("/apps/delta"); d != 1 {
		t.Errorf("asked for deltas %d times after a 403, want once", d)
	}
	waitStatus(t, h.w, "healthy", func(s discovery.Status) bool { return s.Healthy })
}

func TestSecurePortProtocolAndVport(t *testing.T) {
	reg := api.RegistryConfig{Vport: &api.RegistryVport{Default: 80, Services: []api.ServiceVport{{Name: "secure.eureka", Value: 443}}}}
	h := startWatcher(t, reg, func(f *eurekatest.Server) {
		f.Put(eurekatest.Instance("SECURE", "10.0.0.1", 8080, eurekatest.SecureOnly(8443)))
		f.Put(eurekatest.Instance("GSECURE", "10.0.0.2", 8080, eurekatest.SecureOnly(9443), eurekatest.WithMeta("protocol", "grpc")))
		f.Put(eurekatest.Instance("PLAIN", "10.0.0.3", 8080))
		f.Put(eurekatest.Instance("WEIRD", "10.0.0.4", 8080, eurekatest.WithMeta("protocol", "smtp")))
		f.Put(eurekatest.Instance("NAMED", "", 8080, func(i *fargo.Instance) { i.HostName = "orders.internal" }))
	})
	s := h.rec.WaitFor(t, wait, "four apps", func(s map[string]discovery.Service) bool { return len(s) == 4 })
	if svc := s["SECURE.eureka"]; svc.Protocol != discovery.ProtocolHTTPS || svc.Port != 443 || discoverytest.Endpoints(svc)[0] != "10.0.0.1:8443" {
		t.Errorf("SECURE: %+v", svc)
	}
	if svc := s["GSECURE.eureka"]; svc.Protocol != discovery.ProtocolGRPCS || svc.Port != 80 {
		t.Errorf("GSECURE: %+v", svc)
	}
	if svc := s["PLAIN.eureka"]; svc.Protocol != discovery.ProtocolHTTP || svc.Port != 80 || svc.Instances[0].Port != 8080 {
		t.Errorf("PLAIN: %+v", svc)
	}
	if svc := s["NAMED.eureka"]; svc.Resolution != discovery.DNS || discoverytest.Endpoints(svc)[0] != "orders.internal:8080" {
		t.Errorf("NAMED: %+v", svc)
	}
	if _, ok := s["WEIRD.eureka"]; ok {
		t.Errorf("unsupported protocol published")
	}
}

func TestHostileListingKeepsLastGood(t *testing.T) {
	h := startWatcher(t, api.RegistryConfig{}, func(f *eurekatest.Server) {
		f.Put(eurekatest.Instance("ORDERS", "10.0.0.1", 8080))
	})
	h.rec.WaitFor(t, wait, "ORDERS", hasEndpoints("ORDERS.eureka", "10.0.0.1:8080"))
	h.fake.SetDeltaDisabled(true)
	h.fake.SetOverride([]byte(`{"error": "not a listing"}`))
	waitStatus(t, h.w, "unhealthy on a non-listing", func(s discovery.Status) bool { return !s.Healthy })
	if s := h.rec.Services(); len(s) != 1 {
		t.Errorf("a non-listing changed what is published: %s", discoverytest.Describe(s))
	}
}

func TestNewValidates(t *testing.T) {
	for _, tc := range []struct {
		domain string
		port   uint32
		want   string // base URL, or "" for an error
	}{
		{"eureka.local", 8761, "http://eureka.local:8761/eureka"},
		{"10.0.0.1", 8761, "http://10.0.0.1:8761/eureka"},
		{"eureka.local/eureka/v2", 8080, "http://eureka.local:8080/eureka/v2"},
		{"eureka.local/ctx/eureka/", 8080, "http://eureka.local:8080/ctx/eureka"},
		{"https://eureka.local", 443, "https://eureka.local:443/eureka"},
		{"HTTP://eureka.local/x", 80, "http://eureka.local:80/x"},
		{"  eureka.local ", 8761, "http://eureka.local:8761/eureka"},
		{"", 8761, ""},
		{"eureka.local", 0, ""},
		{"eureka.local", 70000, ""},
		{"eureka.local:8761", 8761, ""},
		{"/eureka", 8761, ""},
		{"http://", 8761, ""},
		{"bad host", 8761, ""},
		{"[::1]", 8761, "http://[::1]:8761/eureka"},
		{"::1", 8761, "http://[::1]:8761/eureka"},
		{"[fe80::1%eth0]", 8761, ""},
	} {
		reg := api.RegistryConfig{Type: "eureka", Name: "eu", Domain: tc.domain, Port: tc.port}
		w, err := New(discovery.Config{Registry: reg}, discoverytest.NewRecorder(), nil)
		if tc.want == "" {
			if err == nil {
				t.Errorf("%q:%d: want an error, got base %s", tc.domain, tc.port, w.(*Watcher).base)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q:%d: %v", tc.domain, tc.port, err)
			continue
		}
		if got := w.(*Watcher).base; got != tc.want {
			t.Errorf("%q:%d: base %s, want %s", tc.domain, tc.port, got, tc.want)
		}
	}
}
