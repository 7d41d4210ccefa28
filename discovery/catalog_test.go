package discovery

import (
	"slices"
	"sync"
	"testing"
	"time"
)

// recordingListener counts what the catalog told it.
type recordingListener struct {
	mu        sync.Mutex
	shapes    int
	endpoints []string
}

func (l *recordingListener) ShapesChanged() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.shapes++
}

func (l *recordingListener) EndpointsChanged(hosts []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.endpoints = append(l.endpoints, hosts...)
}

func (l *recordingListener) take() (shapes int, endpoints []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	shapes, endpoints = l.shapes, l.endpoints
	l.shapes, l.endpoints = 0, nil
	return
}

func svc(host string, port uint32, addrs ...string) Service {
	s := Service{Host: host, Port: port, Protocol: ProtocolHTTP}
	for _, a := range addrs {
		s.Instances = append(s.Instances, Instance{Address: a, Port: port, Weight: 1})
	}
	return s
}

func addrs(in []Instance) []string {
	var out []string
	for _, i := range in {
		out = append(out, i.Address)
	}
	return out
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCatalogClassifiesChanges(t *testing.T) {
	l := &recordingListener{}
	c := NewCatalog(0, l)
	p := c.Publisher("consul/c")
	p.Update(svc("a.dc1.consul", 80, "10.0.0.2", "10.0.0.1"))
	if s, e := l.take(); s != 1 || !slices.Equal(e, []string{"a.dc1.consul"}) {
		t.Fatalf("new host: shapes %d endpoints %v", s, e)
	}
	if got := addrs(c.Instances("a.dc1.consul")); !slices.Equal(got, []string{"10.0.0.1", "10.0.0.2"}) {
		t.Errorf("instances not sorted: %v", got)
	}
	if sh := c.Shapes()["a.dc1.consul"]; sh == nil || sh.Registry != "consul/c" || sh.Port != 80 || sh.DNS {
		t.Errorf("shape: %+v", sh)
	}
	before := c.Instances("a.dc1.consul")

	// The same content again: nothing downstream, same slice.
	p.Replace([]Service{svc("a.dc1.consul", 80, "10.0.0.1", "10.0.0.2")})
	if s, e := l.take(); s != 0 || len(e) != 0 {
		t.Errorf("unchanged listing: shapes %d endpoints %v", s, e)
	}
	if after := c.Instances("a.dc1.consul"); &after[0] != &before[0] {
		t.Errorf("an unchanged list was replaced, so the endpoint path would re-encode it")
	}

	// A weight change: endpoints only, no translation.
	w := svc("a.dc1.consul", 80, "10.0.0.1", "10.0.0.2")
	w.Instances[1].Weight = 7
	p.Update(w)
	if s, e := l.take(); s != 0 || !slices.Equal(e, []string{"a.dc1.consul"}) {
		t.Errorf("weight change: shapes %d endpoints %v", s, e)
	}
	// A protocol change: the cluster changes.
	g := w
	g.Protocol = ProtocolGRPC
	p.Update(g)
	if s, _ := l.take(); s != 1 {
		t.Errorf("protocol change did not change shapes")
	}
	// Deregistered: gone at once.
	p.Remove("a.dc1.consul")
	if s, e := l.take(); s != 1 || len(e) != 1 || c.Instances("a.dc1.consul") != nil {
		t.Errorf("remove: shapes %d endpoints %v", s, e)
	}
	// A DNS service's endpoints are part of its cluster.
	d := svc("x.dns", 443, "api.example.org")
	d.Resolution = DNS
	c.Publisher("dns/x").Update(d)
	l.take()
	d2 := svc("x.dns", 443, "api.example.org", "api2.example.org")
	d2.Resolution = DNS
	c.Publisher("dns/x").Update(d2)
	if s, _ := l.take(); s != 1 {
		t.Errorf("a DNS endpoint change must retranslate")
	}
	if sh := c.Shapes()["x.dns"]; !sh.DNS || len(sh.Endpoints) != 2 {
		t.Errorf("DNS shape: %+v", sh)
	}
}

func TestCatalogHoldsInstancesThroughEmptyLists(t *testing.T) {
	l := &recordingListener{}
	c := NewCatalog(200*time.Millisecond, l)
	p := c.Publisher("nacos2/n")
	p.Update(svc("a.DEFAULT-GROUP.public.nacos", 8080, "10.0.0.1"))
	l.take()
	p.Update(svc("a.DEFAULT-GROUP.public.nacos", 8080))
	if got := addrs(c.Instances("a.DEFAULT-GROUP.public.nacos")); !slices.Equal(got, []string{"10.0.0.1"}) {
		t.Fatalf("empty list within grace must keep the last instances, got %v", got)
	}
	if h := c.Counts()["nacos2/n"].Held; h["a.DEFAULT-GROUP.public.nacos"] == "" {
		t.Errorf("a held host is not reported: %+v", c.Counts())
	}
	if s, e := l.take(); s != 0 || len(e) != 0 {
		t.Errorf("holding must not push: shapes %d endpoints %v", s, e)
	}
	eventually(t, "the grace period to end", func() bool { return len(c.Instances("a.DEFAULT-GROUP.public.nacos")) == 0 })
	if _, e := l.take(); !slices.Contains(e, "a.DEFAULT-GROUP.public.nacos") {
		t.Errorf("the end of grace did not reach the endpoint path: %v", e)
	}
	// Instances back: served at once.
	p.Update(svc("a.DEFAULT-GROUP.public.nacos", 8080, "10.0.0.3"))
	if got := addrs(c.Instances("a.DEFAULT-GROUP.public.nacos")); !slices.Equal(got, []string{"10.0.0.3"}) {
		t.Errorf("instances back: %v", got)
	}
}

func TestCatalogHoldsARegistryThatGoesAway(t *testing.T) {
	l := &recordingListener{}
	c := NewCatalog(200*time.Millisecond, l)
	p := c.Publisher("eureka/e")
	p.Replace([]Service{svc("A.eureka", 80, "10.0.0.1"), svc("B.eureka", 80, "10.0.0.2")})

	// An empty listing: held, then hidden.
	p.Replace(nil)
	if len(c.Shapes()) != 2 || len(c.Counts()["eureka/e"].Held) != 2 {
		t.Fatalf("an empty listing must be held: %+v", c.Counts())
	}
	eventually(t, "the empty listing to apply", func() bool { return len(c.Shapes()) == 0 })
	p.Replace([]Service{svc("A.eureka", 80, "10.0.0.1")})
	if len(c.Shapes()) != 1 {
		t.Fatalf("listing back: %v", c.Shapes())
	}

	// Watcher unhealthy: held, hidden after grace, back when healthy.
	c.SetHealthy("eureka/e", false)
	if got := c.Counts()["eureka/e"]; got.Services != 1 || len(got.Held) != 1 {
		t.Fatalf("unhealthy within grace: %+v", got)
	}
	eventually(t, "an unhealthy registry to be hidden", func() bool { return len(c.Shapes()) == 0 })
	c.SetHealthy("eureka/e", true)
	if got := addrs(c.Instances("A.eureka")); !slices.Equal(got, []string{"10.0.0.1"}) {
		t.Errorf("healthy again: %v", got)
	}

	// Removed from the McpBridge: gone at once.
	c.Drop("eureka/e")
	if len(c.Shapes()) != 0 {
		t.Errorf("dropped registry still served: %v", c.Shapes())
	}
}

func TestCatalogFirstRegistryWinsAHost(t *testing.T) {
	c := NewCatalog(0, nil)
	c.Publisher("static/b").Update(svc("x.static", 80, "10.0.0.2"))
	c.Publisher("dns/a").Update(svc("x.static", 80, "10.0.0.1"))
	if got := c.Shapes()["x.static"].Registry; got != "dns/a" {
		t.Errorf("host served by %s, want the first key dns/a", got)
	}
}
