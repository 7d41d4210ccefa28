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

// TestIncrementalScenarios drives a client of each protocol through the
// cases incremental evaluation must get right, checking the responses, the
// versions the server then records as held, and that the incremental path
// was taken where it should be.
func TestIncrementalScenarios(t *testing.T) {
	claSet := func(port uint32, names ...string) map[string]proto.Message {
		out := map[string]proto.Message{}
		for _, n := range names {
			out[n] = makeCLA(n, port)
		}
		return out
	}
	update := func(c *Cache, up map[string]proto.Message, rm ...string) {
		t.Helper()
		if _, err := c.UpdateResources(grp, edsType, up, rm); err != nil {
			t.Fatal(err)
		}
	}
	start := func(t *testing.T, delta bool, names ...string) (*Cache, *stepClient) {
		c := New(Options{})
		mustSet(t, c, grp, edsType, claSet(1, "a", "b", "c", "d", "e"))
		cl := newStepClient(t, c, edsType, delta)
		cl.request(names, false)
		if _, ok := cl.receive(); !ok {
			t.Fatal("no initial response")
		}
		return c, cl
	}
	respond := func(t *testing.T, cl *stepClient) (resources, removed []string) {
		t.Helper()
		if cl.pending() == 0 {
			t.Fatal("no response")
		}
		cl.nonce++
		if cl.delta {
			r := <-cl.dch
			out, _ := r.GetDeltaDiscoveryResponse()
			out.Nonce = strconv.Itoa(cl.nonce)
			cl.sub.SetReturnedResources(r.GetNextVersionMap())
			return deltaNames(out.GetResources()), out.GetRemovedResources()
		}
		r := <-cl.ch
		out, _ := r.GetDiscoveryResponse()
		out.Nonce = strconv.Itoa(cl.nonce)
		cl.sub.SetReturnedResources(r.GetReturnedResources())
		return names(out.GetResources()), nil
	}
	held := func(cl *stepClient) string { return fmt.Sprint(sortedMap(cl.sub.ReturnedResources())) }
	want := func(c *Cache, ns ...string) string {
		m := map[string]string{}
		v := versionsOf(c, grp, edsType)
		for _, n := range ns {
			m[n] = v[n]
		}
		return fmt.Sprint(sortedMap(m))
	}

	protocols := func(t *testing.T, f func(t *testing.T, delta bool)) {
		t.Run("sotw", func(t *testing.T) { f(t, false) })
		t.Run("delta", func(t *testing.T) { f(t, true) })
	}

	t.Run("behind by several versions", func(t *testing.T) {
		protocols(t, func(t *testing.T, delta bool) {
			c, cl := start(t, delta, "a", "b", "c", "d")
			// Three changes while the client has not answered yet.
			update(c, claSet(2, "a"))
			update(c, claSet(3, "a", "c"))
			update(c, nil, "b")
			update(c, claSet(9, "e")) // not subscribed
			before := c.incrementals.Load()
			cl.request(nil, false) // ACK of the initial response
			res, rm := respond(t, cl)
			eqList(t, "resources", res, []string{"a", "c"})
			if delta {
				eqList(t, "removed", rm, []string{"b"})
				eq(t, "held", held(cl), want(c, "a", "c", "d"))
			} else {
				// SotW cannot express the removal: b leaves the returned map.
				eq(t, "held", held(cl), want(c, "a", "c", "d"))
			}
			if c.incrementals.Load() == before {
				t.Error("the ACK was not evaluated incrementally")
			}
			cl.request(nil, false)
			if cl.pending() != 0 {
				t.Fatal("response to an up-to-date ACK")
			}
		})
	})

	t.Run("further behind than the log", func(t *testing.T) {
		protocols(t, func(t *testing.T, delta bool) {
			c, cl := start(t, delta, "a", "b")
			for i := range maxLogEntries + 5 {
				update(c, claSet(uint32(10+i), "c"))
			}
			update(c, claSet(7, "a"))
			cl.request(nil, false)
			res, _ := respond(t, cl)
			eqList(t, "resources", res, []string{"a"})
			eq(t, "held", held(cl), want(c, "a", "b"))
		})
	})

	t.Run("subscription change", func(t *testing.T) {
		protocols(t, func(t *testing.T, delta bool) {
			c, cl := start(t, delta, "a", "b")
			update(c, claSet(2, "b"))
			cl.request([]string{"a", "b", "e"}, false) // ACK that also subscribes to e
			res, _ := respond(t, cl)
			eqList(t, "resources", res, []string{"b", "e"})
			eq(t, "held", held(cl), want(c, "a", "b", "e"))
			cl.request([]string{"b", "e"}, false) // unsubscribes a
			if cl.pending() != 0 {
				t.Fatal("response to an unsubscription")
			}
			before := c.incrementals.Load()
			update(c, claSet(3, "a", "e"))
			res, _ = respond(t, cl)
			eqList(t, "resources after unsubscribing a", res, []string{"e"})
			eq(t, "held", held(cl), want(c, "b", "e"))
			if c.incrementals.Load() == before {
				t.Error("the parked watch was not evaluated incrementally")
			}
		})
	})

	t.Run("removed and re-created", func(t *testing.T) {
		protocols(t, func(t *testing.T, delta bool) {
			c, cl := start(t, delta, "a", "b")
			cl.request(nil, false)
			update(c, nil, "a")
			if !delta {
				// SotW EDS: nothing to say about a removal (the owning
				// cluster's removal makes Envoy unsubscribe).
				if cl.pending() != 0 {
					t.Fatal("SotW response for a removal")
				}
				update(c, claSet(5, "b"))
				res, _ := respond(t, cl)
				eqList(t, "resources", res, []string{"b"})
				eq(t, "held", held(cl), want(c, "b"))
			} else {
				res, rm := respond(t, cl)
				eqList(t, "resources", res, []string{})
				eqList(t, "removed", rm, []string{"a"})
			}
			cl.request(nil, false)
			update(c, claSet(1, "a")) // same content as before the removal
			res, _ := respond(t, cl)
			eqList(t, "re-created", res, []string{"a"})
		})
	})

	t.Run("SotW response dropped by a request", func(t *testing.T) {
		c, cl := start(t, false, "a", "b")
		cl.request(nil, false)
		update(c, claSet(2, "a")) // queued, then dropped: the server never sends it
		if cl.pending() != 1 {
			t.Fatal("no response queued")
		}
		cl.request(nil, false) // a request (e.g. a late re-send) replaces the watch
		res, _ := respond(t, cl)
		eqList(t, "resent", res, []string{"a"})
		eq(t, "held", held(cl), want(c, "a", "b"))
	})
}
