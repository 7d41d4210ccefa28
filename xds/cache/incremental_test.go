package cache

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	gcpcache "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/stream/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"
)

// stepClient drives one cache the way go-control-plane's servers do, without
// waiting: responses are produced synchronously by CreateWatch and by
// writers, and the test decides when each is "sent" and answered.
type stepClient struct {
	t       testing.TB
	c       *Cache
	node    *core.Node
	typeURL string
	delta   bool

	sub       stream.Subscription
	started   bool
	nonce     int
	names     map[string]struct{} // delta: current subscription
	sotwNames []string            // SotW: current subscription
	ch        chan gcpcache.Response
	dch       chan gcpcache.DeltaResponse
	cancel    func()
}

func newStepClient(t testing.TB, c *Cache, typeURL string, delta bool) *stepClient {
	return &stepClient{t: t, c: c, typeURL: typeURL, delta: delta,
		node: &core.Node{Id: "n", Cluster: grp}, names: map[string]struct{}{}}
}

// request sends the next request: subscribing to names (nil: wildcard for
// a first request, otherwise unchanged), as an ACK or a NACK of the last
// response. A SotW response still pending is dropped, as the SotW server
// does when a request arrives first.
func (s *stepClient) request(names []string, nack bool) {
	s.t.Helper()
	if s.cancel != nil {
		s.cancel()
	}
	nonce := ""
	if s.nonce > 0 {
		nonce = strconv.Itoa(s.nonce)
	}
	var detail *status.Status
	if nack {
		detail = &status.Status{Code: 3, Message: "rejected"}
	}
	if !s.delta {
		if names != nil || !s.started {
			s.sotwNames = names
		}
		names = s.sotwNames
		if !s.started {
			s.sub = stream.NewSotwSubscription(names, true)
			s.started = true
		} else {
			s.sub.SetResourceSubscription(names)
		}
		req := &discovery.DiscoveryRequest{Node: s.node, TypeUrl: s.typeURL, ResponseNonce: nonce,
			ResourceNames: names, ErrorDetail: detail}
		s.ch = make(chan gcpcache.Response, 1)
		cancel, err := s.c.CreateWatch(req, s.sub, s.ch)
		if err != nil {
			s.t.Fatal(err)
		}
		s.cancel = cancel
		return
	}
	var sub, unsub []string
	if names != nil {
		want := map[string]struct{}{}
		for _, n := range names {
			want[n] = struct{}{}
			if _, ok := s.names[n]; !ok {
				sub = append(sub, n)
			}
		}
		for n := range s.names {
			if _, ok := want[n]; !ok {
				unsub = append(unsub, n)
			}
		}
		s.names = want
	}
	if !s.started {
		s.sub = stream.NewDeltaSubscription(sub, unsub, nil, true)
		s.started = true
	} else {
		s.sub.UpdateResourceSubscriptions(sub, unsub)
	}
	req := &discovery.DeltaDiscoveryRequest{Node: s.node, TypeUrl: s.typeURL, ResponseNonce: nonce,
		ResourceNamesSubscribe: sub, ResourceNamesUnsubscribe: unsub, ErrorDetail: detail}
	if s.dch == nil {
		s.dch = make(chan gcpcache.DeltaResponse, 4)
	}
	cancel, err := s.c.CreateDeltaWatch(req, s.sub, s.dch)
	if err != nil {
		s.t.Fatal(err)
	}
	s.cancel = cancel
}

func (s *stepClient) pending() int {
	if s.delta {
		return len(s.dch)
	}
	if s.ch == nil {
		return 0
	}
	return len(s.ch)
}

// receive "sends" the pending response, if any, and returns it in a
// comparable form.
func (s *stepClient) receive() (string, bool) {
	if s.pending() == 0 {
		return "", false
	}
	s.nonce++
	if s.delta {
		r := <-s.dch
		out, _ := r.GetDeltaDiscoveryResponse()
		out.Nonce = strconv.Itoa(s.nonce) // as the server does
		s.sub.SetReturnedResources(r.GetNextVersionMap())
		var res []string
		for _, x := range out.GetResources() {
			res = append(res, x.GetName()+"@"+x.GetVersion())
		}
		return fmt.Sprintf("v=%s res=%v removed=%v held=%v", out.GetSystemVersionInfo(), res,
			out.GetRemovedResources(), sortedMap(r.GetNextVersionMap())), true
	}
	r := <-s.ch
	out, _ := r.GetDiscoveryResponse()
	out.Nonce = strconv.Itoa(s.nonce)
	s.sub.SetReturnedResources(r.GetReturnedResources())
	var res []string
	for _, a := range out.GetResources() {
		m, err := a.UnmarshalNew()
		if err != nil {
			s.t.Fatal(err)
		}
		b, _ := marshalOpts.Marshal(m)
		res = append(res, fmt.Sprintf("%s#%x", gcpcache.GetResourceName(m), b))
	}
	return fmt.Sprintf("v=%s res=%v held=%v", out.GetVersionInfo(), res, sortedMap(r.GetReturnedResources())), true
}

func sortedMap(m map[string]string) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, k+"="+m[k])
	}
	return out
}

// TestIncrementalMatchesFull runs random writes, subscription changes,
// ACKs, NACKs, clients falling behind, and SotW responses dropped by a
// request, against a cache and a full-evaluation-only cache in lockstep:
// every response (content, version, returned map) must be identical.
func TestIncrementalMatchesFull(t *testing.T) {
	for seed := range uint64(6) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 42))
			inc, full := New(Options{}), New(Options{})
			full.fullOnly = true
			type pair struct{ a, b *stepClient }
			var clients []pair
			for i := range 8 {
				typeURL := edsType
				if i%4 == 3 {
					typeURL = cdsType
				}
				delta := i%2 == 1
				clients = append(clients, pair{newStepClient(t, inc, typeURL, delta), newStepClient(t, full, typeURL, delta)})
			}
			edsName := func(i int) string { return fmt.Sprintf("cla-%02d", i) }
			randNames := func() []string {
				var out []string
				for i := range 16 {
					if rng.IntN(3) > 0 {
						out = append(out, edsName(i))
					}
				}
				if len(out) == 0 {
					out = []string{edsName(0)}
				}
				return out
			}
			both := func(f func(c *Cache)) { f(inc); f(full) }
			for step := range 1500 {
				switch op := rng.IntN(10); {
				case op < 3: // endpoint changes
					up := map[string]proto.Message{}
					for range 1 + rng.IntN(3) {
						n := edsName(rng.IntN(16))
						up[n] = makeCLA(n, uint32(1+rng.IntN(4)))
					}
					var rm []string
					if rng.IntN(4) == 0 {
						if n := edsName(rng.IntN(16)); up[n] == nil {
							rm = append(rm, n)
						}
					}
					both(func(c *Cache) {
						if _, err := c.UpdateResources(grp, edsType, up, rm); err != nil {
							t.Fatal(err)
						}
					})
				case op == 3: // whole EDS set
					set := map[string]proto.Message{}
					for _, n := range randNames() {
						set[n] = makeCLA(n, uint32(1+rng.IntN(4)))
					}
					both(func(c *Cache) { mustSet(t, c, grp, edsType, set) })
				case op == 4: // CDS
					set := map[string]proto.Message{}
					for i := range 1 + rng.IntN(5) {
						n := fmt.Sprintf("c-%d", i)
						set[n] = makeCluster(n, int64(1+rng.IntN(3)))
					}
					both(func(c *Cache) { mustSet(t, c, grp, cdsType, set) })
				default: // one client acts
					p := clients[rng.IntN(len(clients))]
					switch {
					case !p.a.started:
						var names []string
						if p.a.typeURL == edsType {
							names = randNames()
						}
						p.a.request(names, false)
						p.b.request(names, false)
					case p.a.pending() > 0 && (p.a.delta || rng.IntN(5) > 0):
						ra, _ := p.a.receive()
						rb, _ := p.b.receive()
						if ra != rb {
							t.Fatalf("step %d: responses differ:\nincremental %s\nfull        %s", step, ra, rb)
						}
					case rng.IntN(3) == 0:
						// stays behind: answers later
					default:
						var names []string
						if p.a.typeURL == edsType && rng.IntN(4) == 0 {
							names = randNames()
						}
						nack := rng.IntN(6) == 0
						p.a.request(names, nack)
						p.b.request(names, nack)
					}
				}
				for i, p := range clients {
					if p.a.pending() != p.b.pending() {
						t.Fatalf("step %d client %d: %d responses pending, full evaluation %d", step, i, p.a.pending(), p.b.pending())
					}
				}
			}
			if inc.incrementals.Load() == 0 {
				t.Fatal("no incremental evaluation")
			}
			t.Logf("incremental evaluations: %d", inc.incrementals.Load())
		})
	}
}

// take "sends" the pending response, if any, without inspecting it.
func (s *stepClient) take() bool {
	if s.pending() == 0 {
		return false
	}
	s.nonce++
	if s.delta {
		r := <-s.dch
		out, _ := r.GetDeltaDiscoveryResponse()
		out.Nonce = strconv.Itoa(s.nonce)
		s.sub.SetReturnedResources(r.GetNextVersionMap())
	} else {
		r := <-s.ch
		out, _ := r.GetDiscoveryResponse()
		out.Nonce = strconv.Itoa(s.nonce)
		s.sub.SetReturnedResources(r.GetReturnedResources())
	}
	return true
}
