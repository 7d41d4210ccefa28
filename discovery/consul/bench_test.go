package consul

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	capi "github.com/hashicorp/consul/api"
	"go.uber.org/zap"

	"github.com/hxds/hxds/discovery"
	"github.com/hxds/hxds/discovery/discoverytest"
	"github.com/hxds/hxds/internal/api"
	"github.com/hxds/hxds/internal/testutil/consultest"
)

// BenchmarkAgentChangeToPublish measures, on a real agent, the time from
// an agent API call returning to the Publisher holding the result:
// "instance" registers (then deregisters) one more instance of a watched
// service; "service" registers (then deregisters) a new service, which
// goes through the catalog watch and a first health read. Reported as
// ns/change (each registration and each deregistration is a change).
func BenchmarkAgentChangeToPublish(b *testing.B) {
	agent := consultest.Start(b, consultest.Options{})
	c := agent.Client()
	register(b, c, &capi.AgentServiceRegistration{ID: "base-1", Name: "base", Address: "10.0.0.1", Port: 80})

	b.Run("instance", func(b *testing.B) {
		_, rec := run(b, agent, api.RegistryConfig{}, "")
		host := Host("base", dc)
		rec.WaitFor(b, waitLong, "base", func(s map[string]discovery.Service) bool { return len(s[host].Instances) == 1 })
		var total time.Duration
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			start := time.Now()
			register(b, c, &capi.AgentServiceRegistration{ID: "base-2", Name: "base", Address: "10.0.0.2", Port: 80})
			rec.WaitFor(b, waitLong, "two", func(s map[string]discovery.Service) bool { return len(s[host].Instances) == 2 })
			deregister(b, c, "base-2")
			rec.WaitFor(b, waitLong, "one", func(s map[string]discovery.Service) bool { return len(s[host].Instances) == 1 })
			total += time.Since(start)
		}
		b.ReportMetric(float64(total.Nanoseconds())/float64(2*b.N), "ns/change")
	})

	b.Run("service", func(b *testing.B) {
		_, rec := run(b, agent, api.RegistryConfig{}, "")
		host := Host("fresh", dc)
		rec.WaitFor(b, waitLong, "base", func(s map[string]discovery.Service) bool { return len(s[Host("base", dc)].Instances) == 1 })
		var total time.Duration
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			start := time.Now()
			register(b, c, &capi.AgentServiceRegistration{ID: "fresh-1", Name: "fresh", Address: "10.0.0.3", Port: 80})
			rec.WaitFor(b, waitLong, "fresh", func(s map[string]discovery.Service) bool { return len(s[host].Instances) == 1 })
			deregister(b, c, "fresh-1")
			rec.WaitFor(b, waitLong, "fresh gone", func(s map[string]discovery.Service) bool { _, ok := s[host]; return !ok })
			total += time.Since(start)
		}
		b.ReportMetric(float64(total.Nanoseconds())/float64(2*b.N), "ns/change")
	})
}

// listing builds /v1/health/service bodies for n services × m instances;
// gen varies every weight so that consecutive generations differ.
func listing(b *testing.B, n, m, gen int) [][]byte {
	out := make([][]byte, n)
	for i := range n {
		entries := make([]*capi.ServiceEntry, m)
		for j := range m {
			entries[j] = &capi.ServiceEntry{
				Node: &capi.Node{Node: fmt.Sprintf("node-%d", j), Address: fmt.Sprintf("10.%d.%d.%d", i/250, i%250, j+1)},
				Service: &capi.AgentService{ID: fmt.Sprintf("svc-%d-%d", i, j), Service: fmt.Sprintf("svc-%d", i),
					Port: 8000 + j, Meta: map[string]string{"protocol": "http", "zone": "z1", "version": "v1"},
					Weights: capi.AgentWeights{Passing: 1 + gen%3, Warning: 1}},
				Checks: capi.HealthChecks{
					{Node: "n", CheckID: "serfHealth", Status: capi.HealthPassing},
					{Node: "n", CheckID: "service:x", Status: capi.HealthPassing, ServiceID: "x"},
				},
			}
		}
		body, err := json.Marshal(entries)
		if err != nil {
			b.Fatal(err)
		}
		out[i] = body
	}
	return out
}

// BenchmarkParseDiff1000x10: one op decodes the health answers of 1,000
// services × 10 instances, builds the services and diffs them against what
// was last published ("steady": nothing changed, nothing published;
// "changed": every service's weights changed, 1,000 Updates).
func BenchmarkParseDiff1000x10(b *testing.B) {
	const n, m = 1000, 10
	gens := [2][][]byte{listing(b, n, m, 0), listing(b, n, m, 1)}
	var bytes int64
	for _, body := range gens[0] {
		bytes += int64(len(body))
	}
	for _, changed := range []bool{false, true} {
		name := "steady"
		if changed {
			name = "changed"
		}
		b.Run(name, func(b *testing.B) {
			w := &watcher{pub: discoverytest.NewRecorder(), log: zap.NewNop(), published: map[string]discovery.Service{}, warned: map[string]string{}}
			watches := make([]*svcWatch, n)
			for i := range watches {
				watches[i] = &svcWatch{name: fmt.Sprintf("svc-%d", i), host: Host(fmt.Sprintf("svc-%d", i), "dc1")}
			}
			step := func(gen [][]byte) {
				for i, body := range gen {
					var entries []*capi.ServiceEntry
					if err := json.Unmarshal(body, &entries); err != nil {
						b.Fatal(err)
					}
					w.update(watches[i], buildService(watches[i].host, entries))
				}
			}
			step(gens[0])
			b.SetBytes(bytes)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				g := 0
				if changed {
					g = (i + 1) % 2
				}
				step(gens[g])
			}
		})
	}
}
