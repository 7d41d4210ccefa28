package discovery

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/hxds/hxds/internal/api"
)

// fakeWatcher publishes one service per registry and reports the health
// the test sets.
type fakeWatcher struct {
	Tracker
	cfg     Config
	pub     Publisher
	started atomic.Int32
}

func (f *fakeWatcher) Run(ctx context.Context) error {
	f.started.Add(1)
	f.pub.Replace([]Service{svc(f.cfg.Registry.Name+".fake", f.cfg.Registry.Port, "10.0.0.1")})
	f.Synced(true)
	<-ctx.Done()
	return nil
}

type fakeFactory struct {
	mu       sync.Mutex
	watchers map[string][]*fakeWatcher
}

func (ff *fakeFactory) New(cfg Config, pub Publisher, _ *zap.Logger) (Watcher, error) {
	if cfg.Registry.Domain == "" {
		return nil, errorString("domain is required")
	}
	w := &fakeWatcher{cfg: cfg, pub: pub}
	ff.mu.Lock()
	defer ff.mu.Unlock()
	ff.watchers[cfg.Registry.Name] = append(ff.watchers[cfg.Registry.Name], w)
	return w, nil
}

func (ff *fakeFactory) latest(name string) *fakeWatcher {
	ff.mu.Lock()
	defer ff.mu.Unlock()
	ws := ff.watchers[name]
	if len(ws) == 0 {
		return nil
	}
	return ws[len(ws)-1]
}

type errorString string

func (e errorString) Error() string { return string(e) }

func bridge(regs ...api.RegistryConfig) *api.McpBridge {
	return &api.McpBridge{Spec: api.McpBridgeSpec{Registries: regs}}
}

func TestReconcilerStartsRestartsAndStopsWatchers(t *testing.T) {
	ff := &fakeFactory{watchers: map[string][]*fakeWatcher{}}
	cat := NewCatalog(time.Hour, nil)
	r := NewReconciler(map[string]Factory{"fake": ff.New}, cat, zap.NewNop())
	defer r.Stop()

	a := api.RegistryConfig{Type: "fake", Name: "a", Domain: "127.0.0.1", Port: 80, AuthSecretName: "creds"}
	err := r.Apply(bridge(a,
		api.RegistryConfig{Type: "mystery", Name: "m", Domain: "x", Port: 1},
		api.RegistryConfig{Type: "fake", Name: "nodomain", Port: 1},
	), func(name string) map[string][]byte {
		if name == "creds" {
			return map[string][]byte{"consulToken": []byte("t0k")}
		}
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), `type "mystery" is not supported`) || !strings.Contains(err.Error(), "domain is required") {
		t.Fatalf("Apply error = %v", err)
	}
	eventually(t, "registry a to publish", func() bool { return cat.Instances("a.fake") != nil })
	if got := ff.latest("a").cfg.Auth.ConsulToken; got != "t0k" {
		t.Errorf("auth secret not resolved: %q", got)
	}
	st := r.Statuses()
	if len(st) != 3 || st[0].Name != "a" || !st[0].Ready || !st[0].Healthy || st[0].Services != 1 || st[0].Instances != 1 {
		t.Fatalf("statuses: %+v", st)
	}
	if st[2].Type != "mystery" || st[2].LastError == "" {
		t.Errorf("a registry that cannot start is listed with why: %+v", st[2])
	}
	if n := promtest.CollectAndCount(r, "hxds_registry_services"); n != 3 {
		t.Errorf("metrics: %d hxds_registry_services series, want 3", n)
	}

	// Unhealthy: the catalog holds the services and says so.
	first := ff.latest("a")
	first.Failed(errorString("connection refused"))
	eventually(t, "the catalog to hold a's services", func() bool { return len(cat.Counts()["fake/a"].Held) == 1 })
	first.Synced(false)
	eventually(t, "a to be healthy again", func() bool { return len(cat.Counts()["fake/a"].Held) == 0 })

	// Unchanged config: the same watcher keeps running.
	if err := r.Apply(bridge(a), nil); err != nil {
		t.Fatal(err)
	}
	// Apply without the secret function changes Auth: restarted.
	if ff.latest("a") == first {
		t.Errorf("a changed registry config must restart its watcher")
	}
	second := ff.latest("a")
	if err := r.Apply(bridge(a), nil); err != nil {
		t.Fatal(err)
	}
	if ff.latest("a") != second {
		t.Errorf("an unchanged registry was restarted")
	}

	// Removed: services leave at once.
	if err := r.Apply(nil, nil); err != nil {
		t.Fatal(err)
	}
	if cat.Instances("a.fake") != nil || len(r.Statuses()) != 0 {
		t.Errorf("removed registry still served: %v %+v", cat.Shapes(), r.Statuses())
	}
}
