// Package discoverytest helps test registry watchers: a Publisher that
// keeps what a watcher published and waits for it.
package discoverytest

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hxds/hxds/discovery"
)

// Recorder is a discovery.Publisher that keeps the current services (by
// host) of one watcher, as the Catalog would see them.
type Recorder struct {
	mu       sync.Mutex
	services map[string]discovery.Service
	changed  chan struct{}
	// Calls counts Replace, Update and Remove calls.
	calls map[string]int
}

// NewRecorder returns an empty recorder.
func NewRecorder() *Recorder {
	return &Recorder{services: map[string]discovery.Service{}, changed: make(chan struct{}, 1), calls: map[string]int{}}
}

// Replace implements discovery.Publisher.
func (r *Recorder) Replace(services []discovery.Service) {
	r.mu.Lock()
	r.services = map[string]discovery.Service{}
	for _, s := range services {
		r.services[s.Host] = s
	}
	r.calls["replace"]++
	r.mu.Unlock()
	r.notify()
}

// Update implements discovery.Publisher.
func (r *Recorder) Update(s discovery.Service) {
	r.mu.Lock()
	r.services[s.Host] = s
	r.calls["update"]++
	r.mu.Unlock()
	r.notify()
}

// Remove implements discovery.Publisher.
func (r *Recorder) Remove(host string) {
	r.mu.Lock()
	delete(r.services, host)
	r.calls["remove"]++
	r.mu.Unlock()
	r.notify()
}

func (r *Recorder) notify() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// Services returns a copy of the current services by host.
func (r *Recorder) Services() map[string]discovery.Service {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]discovery.Service, len(r.services))
	for h, s := range r.services {
		out[h] = s
	}
	return out
}

// Calls returns how many times kind ("replace", "update", "remove") was called.
func (r *Recorder) Calls(kind string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[kind]
}

// WaitFor waits up to timeout until cond holds for the current services;
// it fails the test with what was last seen otherwise.
func (r *Recorder) WaitFor(t testing.TB, timeout time.Duration, what string, cond func(map[string]discovery.Service) bool) map[string]discovery.Service {
	t.Helper()
	deadline := time.After(timeout)
	for {
		s := r.Services()
		if cond(s) {
			return s
		}
		select {
		case <-r.changed:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("timed out after %s waiting for %s; services now:\n%s", timeout, what, Describe(r.Services()))
			return nil
		}
	}
}

// Describe renders services one per line, for failure messages.
func Describe(services map[string]discovery.Service) string {
	hosts := make([]string, 0, len(services))
	for h := range services {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	var b strings.Builder
	for _, h := range hosts {
		s := services[h]
		fmt.Fprintf(&b, "  %s port=%d protocol=%s instances=", h, s.Port, s.Protocol)
		for i, in := range s.Instances {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, "%s:%d(w%d)", in.Address, in.Port, in.Weight)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// Endpoints lists a service's instances as "address:port" in order.
func Endpoints(s discovery.Service) []string {
	out := make([]string, 0, len(s.Instances))
	for _, in := range s.Instances {
		out = append(out, fmt.Sprintf("%s:%d", in.Address, in.Port))
	}
	return out
}
