package consul

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hxds/hxds/discovery"
	"github.com/hxds/hxds/discovery/discoverytest"
	"github.com/hxds/hxds/internal/api"
	"github.com/hxds/hxds/internal/testutil"
)

func TestNewValidates(t *testing.T) {
	pub := discoverytest.NewRecorder()
	for _, c := range []struct {
		name string
		reg  api.RegistryConfig
		ok   bool
	}{
		{"ok", api.RegistryConfig{Type: Type, Name: "c", Domain: "127.0.0.1", Port: 8500}, true},
		{"ipv6", api.RegistryConfig{Type: Type, Name: "c", Domain: "[::1]", Port: 8500}, true},
		{"no domain", api.RegistryConfig{Type: Type, Name: "c", Port: 8500}, false},
		{"url domain", api.RegistryConfig{Type: Type, Name: "c", Domain: "http://consul", Port: 8500}, false},
		{"list domain", api.RegistryConfig{Type: Type, Name: "c", Domain: "a,b", Port: 8500}, false},
		{"no port", api.RegistryConfig{Type: Type, Name: "c", Domain: "consul"}, false},
		{"big port", api.RegistryConfig{Type: Type, Name: "c", Domain: "consul", Port: 70000}, false},
		{"bad dc", api.RegistryConfig{Type: Type, Name: "c", Domain: "consul", Port: 8500, ConsulDatacenter: "a/b"}, false},
	} {
		w, err := New(discovery.Config{Registry: c.reg}, pub, nil)
		if (err == nil) != c.ok {
			t.Errorf("%s: err = %v, want ok %v", c.name, err, c.ok)
		}
		if err == nil && w.Status().Healthy {
			t.Errorf("%s: healthy before any exchange", c.name)
		}
	}
}

func TestRefreshIntervalBounds(t *testing.T) {
	for _, c := range []struct {
		ns   int64
		want time.Duration
	}{
		{0, defaultWait},
		{30, minWait}, // "30" meant as seconds: clamped, not a busy loop
		{int64(5 * time.Second), 5 * time.Second},
		{int64(time.Hour), maxWait},
	} {
		w, err := New(discovery.Config{Registry: api.RegistryConfig{Domain: "x", Port: 1, ConsulRefreshInterval: c.ns}}, discoverytest.NewRecorder(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := w.(*watcher).wait; got != c.want {
			t.Errorf("interval %d: wait %s, want %s", c.ns, got, c.want)
		}
	}
}

// fakeConsul answers the two endpoints the watcher uses with a fixed
// listing, records request headers, and holds blocking queries (index > 0)
// until the client gives up.
type fakeConsul struct {
	mu      sync.Mutex
	tokens  []string
	dcs     []string
	servers *httptest.Server
}

func newFakeConsul(t *testing.T) *fakeConsul {
	f := &fakeConsul{}
	f.servers = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.tokens = append(f.tokens, r.Header.Get("X-Consul-Token"))
		f.dcs = append(f.dcs, r.URL.Query().Get("dc"))
		f.mu.Unlock()
		if idx := r.URL.Query().Get("index"); idx != "" && idx != "0" {
			<-r.Context().Done()
			return
		}
		w.Header().Set("X-Consul-Index", "7")
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/v1/catalog/services":
			_, _ = w.Write([]byte(`{"web":["higress"]}`))
		case strings.HasPrefix(r.URL.Path, "/v1/health/service/web"):
			_, _ = w.Write([]byte(`[{"Node":{"Node":"n1","Address":"10.1.1.1"},"Service":{"Service":"web","Address":"","Port":8080,"Weights":{"Passing":2,"Warning":1}},"Checks":[{"CheckID":"serfHealth","Status":"passing"}]}]`))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(f.servers.Close)
	return f
}

func (f *fakeConsul) seen() (tokens, dcs []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.tokens...), append([]string(nil), f.dcs...)
}

// TestTokenAndDatacenterSent checks every request carries the
// authSecretName token (X-Consul-Token) and the datacenter, and the
// listing is parsed into a published service.
func TestTokenAndDatacenterSent(t *testing.T) {
	for _, c := range []struct{ token, dc string }{
		{"", ""},
		{"s3cr3t-token", "dc9"},
	} {
		t.Run("token="+c.token, func(t *testing.T) {
			f := newFakeConsul(t)
			host, port, _ := net.SplitHostPort(strings.TrimPrefix(f.servers.URL, "http://"))
			p, _ := strconv.Atoi(port)
			rec := discoverytest.NewRecorder()
			w, err := New(discovery.Config{
				Registry: api.RegistryConfig{Type: Type, Name: "c", Domain: host, Port: uint32(p), ConsulDatacenter: c.dc},
				Auth:     discovery.Auth{ConsulToken: c.token},
			}, rec, testutil.Logger(t))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error)
			go func() { done <- w.Run(ctx) }()
			defer func() { cancel(); <-done }()
			want := Host("web", c.dc)
			rec.WaitFor(t, 5*time.Second, want, func(s map[string]discovery.Service) bool {
				in := s[want].Instances
				return len(in) == 1 && in[0].Address == "10.1.1.1" && in[0].Weight == 2 && s[want].Port == 8080
			})
			tokens, dcs := f.seen()
			if len(tokens) == 0 {
				t.Fatal("no request seen")
			}
			for i := range tokens {
				if tokens[i] != c.token || dcs[i] != c.dc {
					t.Fatalf("request %d: token %q dc %q, want %q %q", i, tokens[i], dcs[i], c.token, c.dc)
				}
			}
			waitStatus(t, w.(*watcher), "healthy and ready", func(s discovery.Status) bool { return s.Healthy && s.Ready })
		})
	}
}

// TestThrottle covers Consul's blocking-query index rules.
func TestThrottle(t *testing.T) {
	w := &watcher{log: testutil.Logger(t)}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // a pause returns at once; only the index matters here
	long := time.Now().Add(-time.Minute)
	for _, c := range []struct {
		last, got, want uint64
	}{
		{0, 5, 5},    // first read
		{5, 9, 9},    // change
		{9, 3, 0},    // went backwards: reset, next read non-blocking
		{0, 0, 1},    // never block on 0
		{12, 12, 12}, // timed out unchanged
	} {
		if got := w.throttle(ctx, long, c.last, c.got); got != c.want {
			t.Errorf("throttle(%d, %d) = %d, want %d", c.last, c.got, got, c.want)
		}
	}
	// An unchanged index returned at once pauses (spin guard).
	start := time.Now()
	w.throttle(context.Background(), time.Now(), 12, 12)
	if d := time.Since(start); d < spinPause/2 {
		t.Errorf("no pause after an unchanged quick answer (%s)", d)
	}
}

// TestSelectCollisions: "a_b" and "a-b" are one host; the first name in
// order wins, deterministically.
func TestSelectCollisions(t *testing.T) {
	w := &watcher{log: testutil.Logger(t), dc: "dc1", warned: map[string]string{}}
	got := w.select_(map[string][]string{"a_b": nil, "a-b": nil, "c": {"x"}, "": nil})
	if len(got) != 2 || got["a-b.dc1.consul"] != "a-b" || got["c.dc1.consul"] != "c" {
		t.Fatalf("select = %v", got)
	}
}
