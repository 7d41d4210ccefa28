package cache

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/server/stream/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"

	gcpcache "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
)

const grp = "higress-gateway"

func TestFirstRequestOnEmptyGroup(t *testing.T) {
	c := New(Options{})
	emptyVersion := c.Version("nobody", cdsType)

	// Full-state types answer the first request even with nothing stored.
	for _, typ := range []string{cdsType, ldsType} {
		cl := newSotwClient(t, c, "", typ)
		cl.request(nil, false)
		r := cl.expect()
		eq(t, typ+" resources", len(r.GetResources()), 0)
		eq(t, typ+" version", r.GetVersionInfo(), emptyVersion)
		eq(t, typ+" type", r.GetTypeUrl(), typ)
		// The ACK parks.
		cl.request(nil, false)
		cl.expectNone()
		eq(t, "parked "+typ, c.NumWatches(grp, typ), 1)
	}

	// Other types park until resources arrive.
	rds := newSotwClient(t, c, "", rdsType)
	rds.request([]string{"http.80"}, false)
	rds.expectNone()
	eq(t, "parked RDS", c.NumWatches(grp, rdsType), 1)
	if len(c.Groups()) != 0 {
		t.Fatalf("watches alone must not create a listed group: %v", c.Groups())
	}
	mustSet(t, c, grp, rdsType, msgs(makeRoute("http.80", "a")))
	r := rds.expect()
	eqList(t, "RDS names", names(r.GetResources()), []string{"http.80"})
	eqList(t, "groups", c.Groups(), []string{grp})

	// Delta: the first request of a full-state type gets an empty response, others park.
	dc := newDeltaClient(t, c, "", cdsType)
	dc.request(nil, nil, nil, false)
	dr := dc.expect()
	eq(t, "delta CDS resources", len(dr.GetResources())+len(dr.GetRemovedResources()), 0)
	eq(t, "delta CDS system version", dr.GetSystemVersionInfo(), emptyVersion)
	dc.request(nil, nil, nil, false)
	dc.expectNone()
	de := newDeltaClient(t, c, "", edsType)
	de.request([]string{"c1"}, nil, nil, false)
	de.expectNone()
}

func TestSotwWildcardFullState(t *testing.T) {
	c := New(Options{})
	mustSet(t, c, grp, cdsType, msgs(makeCluster("a", 1), makeCluster("b", 1)))
	cl := newSotwClient(t, c, "", cdsType)
	cl.request(nil, false)
	r := cl.expect()
	eqList(t, "first", names(r.GetResources()), []string{"a", "b"})
	eq(t, "version", r.GetVersionInfo(), c.Version(grp, cdsType))
	eq(t, "returned", fmt.Sprint(cl.sub.ReturnedResources()), fmt.Sprint(versionsOf(c, grp, cdsType)))

	cl.request(nil, false) // ACK
	cl.expectNone()

	// One cluster changes: the full set is sent.
	before := c.EncodeCount()
	if !mustSet(t, c, grp, cdsType, msgs(makeCluster("a", 1), makeCluster("b", 2))) {
		t.Fatal("change not detected")
	}
	eq(t, "encodes for one changed cluster", c.EncodeCount()-before, uint64(1))
	r = cl.expect()
	eqList(t, "after update", names(r.GetResources()), []string{"a", "b"})
	eq(t, "version", r.GetVersionInfo(), c.Version(grp, cdsType))

	// A removal is a change too (full state).
	cl.request(nil, false)
	cl.expectNone()
	mustSet(t, c, grp, cdsType, msgs(makeCluster("b", 2)))
	r = cl.expect()
	eqList(t, "after removal", names(r.GetResources()), []string{"b"})
	eq(t, "returned after removal", len(cl.sub.ReturnedResources()), 1)

	// Removing everything sends an empty full state.
	cl.request(nil, false)
	mustSet(t, c, grp, cdsType, nil)
	r = cl.expect()
	eq(t, "empty state", len(r.GetResources()), 0)
	cl.request(nil, false)
	cl.expectNone()
}

func versionsOf(c *Cache, group, typeURL string) map[string]string {
	out := map[string]string{}
	for _, e := range c.Entries(group, typeURL) {
		out[e.Name] = e.Version
	}
	return out
}

func TestSotwNamedPartialUpdates(t *testing.T) {
	c := New(Options{})
	mustSet(t, c, grp, rdsType, msgs(makeRoute("r1", "a"), makeRoute("r2", "a"), makeRoute("r3", "a")))
	cl := newSotwClient(t, c, "", rdsType)
	cl.request([]string{"r1", "r2", "missing"}, false)
	r := cl.expect()
	eqList(t, "subscribed only", names(r.GetResources()), []string{"r1", "r2"})
	cl.request([]string{"r1", "r2", "missing"}, false)
	cl.expectNone()

	// r2 and r3 change: only r2 is sent.
	mustSet(t, c, grp, rdsType, msgs(makeRoute("r1", "a"), makeRoute("r2", "b"), makeRoute("r3", "b")))
	r = cl.expect()
	eqList(t, "changed only", names(r.GetResources()), []string{"r2"})
	eq(t, "returned keeps unchanged", len(cl.sub.ReturnedResources()), 2)
	cl.request([]string{"r1", "r2", "missing"}, false)

	// A change outside the subscription wakes nothing.
	mustSet(t, c, grp, rdsType, msgs(makeRoute("r1", "a"), makeRoute("r2", "b"), makeRoute("r3", "c")))
	cl.expectNone()
	// A removal alone cannot be expressed: nothing is sent.
	mustSet(t, c, grp, rdsType, msgs(makeRoute("r2", "b"), makeRoute("r3", "c")))
	cl.expectNone()
	// The missing resource appears: only it is sent, and r1 leaves the returned map.
	mustSet(t, c, grp, rdsType, msgs(makeRoute("r2", "b"), makeRoute("r3", "c"), makeRoute("missing", "a")))
	r = cl.expect()
	eqList(t, "appeared", names(r.GetResources()), []string{"missing"})
	eq(t, "returned", fmt.Sprint(cl.sub.ReturnedResources()), fmt.Sprint(map[string]string{
		"missing": versionsOf(c, grp, rdsType)["missing"], "r2": versionsOf(c, grp, rdsType)["r2"]}))

	// Subscribing to one more name sends just that one.
	cl.request([]string{"r2", "r3", "missing"}, false)
	r = cl.expect()
	eqList(t, "new subscription", names(r.GetResources()), []string{"r3"})

	// EDS through UpdateResources: one assignment re-encoded and sent.
	mustSet(t, c, grp, edsType, msgs(makeCLA("c1", 80), makeCLA("c2", 80)))
	eds := newSotwClient(t, c, "", edsType)
	eds.request([]string{"c1", "c2"}, false)
	eqList(t, "eds first", names(eds.expect().GetResources()), []string{"c1", "c2"})
	eds.request([]string{"c1", "c2"}, false)
	before := c.EncodeCount()
	changed, err := c.UpdateResources(grp, edsType, msgs(makeCLA("c2", 80, 81)), nil)
	if err != nil || !changed {
		t.Fatalf("UpdateResources: %v %v", changed, err)
	}
	eq(t, "EDS encodes", c.EncodeCount()-before, uint64(1))
	eqList(t, "eds update", names(eds.expect().GetResources()), []string{"c2"})
	eds.request([]string{"c1", "c2"}, false)
	// Same content again: unchanged, nothing encoded, nobody woken.
	changed, err = c.UpdateResources(grp, edsType, msgs(makeCLA("c2", 80, 81)), nil)
	if err != nil || changed {
		t.Fatalf("unchanged UpdateResources: %v %v", changed, err)
	}
	eq(t, "no encode", c.EncodeCount()-before, uint64(1))
	eds.expectNone()
	// Removing an unknown name is no change.
	if changed, _ := c.UpdateResources(grp, edsType, nil, []string{"nope"}); changed {
		t.Fatal("removing an unknown name reported a change")
	}
}

func TestUnchangedSetWakesNobody(t *testing.T) {
	c := New(Options{})
	build := func() map[string]proto.Message {
		return msgs(makeCluster("a", 1), makeCluster("b", 1)) // fresh messages each time
	}
	mustSet(t, c, grp, cdsType, build())
	a0 := c.Entries(grp, cdsType)[0].Any
	cl := newSotwClient(t, c, "", cdsType)
	cl.request(nil, false)
	cl.expect()
	cl.request(nil, false)

	before := c.EncodeCount()
	version := c.Version(grp, cdsType)
	if mustSet(t, c, grp, cdsType, build()) {
		t.Fatal("identical content reported as changed")
	}
	cl.expectNone()
	eq(t, "encodes", c.EncodeCount(), before)
	eq(t, "version", c.Version(grp, cdsType), version)
	if c.Entries(grp, cdsType)[0].Any != a0 {
		t.Fatal("stored Any replaced although content is identical")
	}
	eq(t, "watch still parked", c.NumWatches(grp, cdsType), 1)
}

func TestDeltaSemantics(t *testing.T) {
	c := New(Options{Logger: zaptest.NewLogger(t, zaptest.Level(zap.DebugLevel))})
	mustSet(t, c, grp, cdsType, msgs(makeCluster("a", 1), makeCluster("b", 1), makeCluster("c", 1)))
	d := newDeltaClient(t, c, "", cdsType)
	d.request(nil, nil, nil, false)
	r := d.expect()
	eqList(t, "initial", deltaNames(r.GetResources()), []string{"a", "b", "c"})
	eq(t, "system version", r.GetSystemVersionInfo(), c.Version(grp, cdsType))
	vs := versionsOf(c, grp, cdsType)
	for _, res := range r.GetResources() {
		eq(t, "resource version "+res.GetName(), res.GetVersion(), vs[res.GetName()])
	}
	d.request(nil, nil, nil, false)
	d.expectNone()

	// One update and one removal.
	mustSet(t, c, grp, cdsType, msgs(makeCluster("a", 1), makeCluster("b", 2)))
	r = d.expect()
	eqList(t, "updated", deltaNames(r.GetResources()), []string{"b"})
	eqList(t, "removed", r.GetRemovedResources(), []string{"c"})
	eq(t, "returned", len(d.sub.ReturnedResources()), 2)

	// NACK: nothing resent.
	d.request(nil, nil, nil, true)
	d.expectNone()

	// A reconnecting client that already holds the current versions gets only
	// the (empty) first answer of a full-state type; a stale one gets the diff.
	d2 := newDeltaClient(t, c, "", cdsType)
	d2.request(nil, nil, versionsOf(c, grp, cdsType), false)
	r = d2.expect()
	eq(t, "up-to-date reconnect", len(r.GetResources())+len(r.GetRemovedResources()), 0)
	d3 := newDeltaClient(t, c, "", cdsType)
	d3.request(nil, nil, map[string]string{"a": vs["a"], "b": vs["b"], "gone": "x"}, false)
	r = d3.expect()
	eqList(t, "stale reconnect updated", deltaNames(r.GetResources()), []string{"b"})
	eqList(t, "stale reconnect removed", r.GetRemovedResources(), []string{"gone"})

	// Explicit subscriptions.
	mustSet(t, c, grp, edsType, msgs(makeCLA("a", 80), makeCLA("b", 80)))
	e := newDeltaClient(t, c, "", edsType)
	e.request([]string{"a"}, nil, nil, false)
	eqList(t, "eds a", deltaNames(e.expect().GetResources()), []string{"a"})
	e.request(nil, nil, nil, false)
	mustSet(t, c, grp, edsType, msgs(makeCLA("a", 80), makeCLA("b", 81)))
	e.expectNone() // b is not subscribed
	e.request([]string{"b"}, nil, nil, false)
	eqList(t, "eds subscribe b", deltaNames(e.expect().GetResources()), []string{"b"})
	e.request(nil, []string{"a"}, nil, false)
	e.expectNone() // unsubscribing needs no answer
	mustSet(t, c, grp, edsType, msgs(makeCLA("a", 82)))
	r = e.expect()
	eq(t, "eds removal of subscribed b", fmt.Sprint(deltaNames(r.GetResources()), r.GetRemovedResources()), "[] [b]")
}

func TestSotwNackDoesNotResend(t *testing.T) {
	c := New(Options{})
	mustSet(t, c, grp, cdsType, msgs(makeCluster("a", 1)))
	mustSet(t, c, grp, rdsType, msgs(makeRoute("r", "a")))
	for _, typ := range []string{cdsType, rdsType} {
		cl := newSotwClient(t, c, "", typ)
		var names []string
		if typ == rdsType {
			names = []string{"r"}
		}
		cl.request(names, false)
		cl.expect()
		cl.request(names, true) // NACK
		cl.expectNone()
		eq(t, "NACK parks "+typ, c.NumWatches(grp, typ), 1)
		cl.cancel()
	}
	// After a NACK, a fixed resource is delivered.
	cl := newSotwClient(t, c, "", cdsType)
	cl.request(nil, false)
	cl.expect()
	cl.request(nil, true)
	mustSet(t, c, grp, cdsType, msgs(makeCluster("a", 2)))
	eqList(t, "after fix", names(cl.expect().GetResources()), []string{"a"})
}

func TestAPIListenerNamedOnly(t *testing.T) {
	c := New(Options{})
	mustSet(t, c, grp, ldsType, msgs(makeListener(80), makeListener(443), makeAPIListener("grpc-api")))

	wild := newSotwClient(t, c, "", ldsType)
	wild.request(nil, false)
	eqList(t, "wildcard", names(wild.expect().GetResources()), []string{"0.0.0.0_443", "0.0.0.0_80"})
	wild.request(nil, false)

	named := newSotwClient(t, c, "", ldsType)
	named.request([]string{"grpc-api"}, false)
	eqList(t, "by name", names(named.expect().GetResources()), []string{"grpc-api"})
	named.request([]string{"grpc-api"}, false)

	both := newSotwClient(t, c, "", ldsType)
	both.request([]string{"*", "grpc-api"}, false)
	eqList(t, "wildcard + name", names(both.expect().GetResources()), []string{"0.0.0.0_443", "0.0.0.0_80", "grpc-api"})
	both.request([]string{"*", "grpc-api"}, false)

	dw := newDeltaClient(t, c, "", ldsType)
	dw.request(nil, nil, nil, false)
	eqList(t, "delta wildcard", deltaNames(dw.expect().GetResources()), []string{"0.0.0.0_443", "0.0.0.0_80"})
	dw.request(nil, nil, nil, false)

	// Changing the API listener wakes the named subscriptions only.
	api := makeAPIListener("grpc-api")
	api.StatPrefix = "changed"
	if _, err := c.UpdateResources(grp, ldsType, msgs(api), nil); err != nil {
		t.Fatal(err)
	}
	eqList(t, "named update", names(named.expect().GetResources()), []string{"grpc-api"})
	eqList(t, "wildcard+name update", names(both.expect().GetResources()), []string{"0.0.0.0_443", "0.0.0.0_80", "grpc-api"})
	wild.expectNone()
	dw.expectNone()
}

func TestGroupsIsolated(t *testing.T) {
	c := New(Options{DefaultGroup: "default-gw"})
	eq(t, "GroupOf empty", c.GroupOf(&core.Node{}), "default-gw")
	eq(t, "GroupOf nil", c.GroupOf(nil), "default-gw")
	eq(t, "GroupOf cluster", c.GroupOf(&core.Node{Cluster: "g1"}), "g1")

	mustSet(t, c, "g1", cdsType, msgs(makeCluster("only-g1", 1)))
	mustSet(t, c, "default-gw", cdsType, msgs(makeCluster("only-default", 1)))
	a := newSotwClient(t, c, "g1", cdsType)
	b := newSotwClient(t, c, "", cdsType)
	a.request(nil, false)
	b.request(nil, false)
	eqList(t, "g1", names(a.expect().GetResources()), []string{"only-g1"})
	eqList(t, "default", names(b.expect().GetResources()), []string{"only-default"})
	a.request(nil, false)
	b.request(nil, false)
	mustSet(t, c, "g1", cdsType, msgs(makeCluster("only-g1", 2)))
	a.expect()
	b.expectNone()
	eqList(t, "groups", c.Groups(), []string{"default-gw", "g1"})
	if c.Version("g1", cdsType) == c.Version("default-gw", cdsType) {
		t.Fatal("different content, same version")
	}

	// Two connections of a group share the stored Any pointers.
	a2 := newSotwClient(t, c, "g1", cdsType)
	a2.request(nil, false)
	got := <-a2.ch
	r, _ := got.GetDiscoveryResponse()
	if r.GetResources()[0] != c.Entries("g1", cdsType)[0].Any {
		t.Fatal("response does not share the stored Any")
	}
}

func TestContentHashVersions(t *testing.T) {
	c1, c2 := New(Options{}), New(Options{})
	mustSet(t, c1, grp, cdsType, msgs(makeCluster("a", 1), makeCluster("b", 1), makeCluster("c", 1)))
	// Same content reached differently: different group name, insert order, Update path.
	mustSet(t, c2, "other", cdsType, msgs(makeCluster("c", 1)))
	if _, err := c2.UpdateResources("other", cdsType, msgs(makeCluster("b", 1), makeCluster("a", 1)), nil); err != nil {
		t.Fatal(err)
	}
	eq(t, "type version", c2.Version("other", cdsType), c1.Version(grp, cdsType))
	eq(t, "entries", fmt.Sprint(versionsOf(c2, "other", cdsType)), fmt.Sprint(versionsOf(c1, grp, cdsType)))
	eq(t, "empty-set version", New(Options{}).Version("x", cdsType), "e3b0c44298fc1c14")
	v := c1.Version(grp, cdsType)
	eq(t, "version length", len(v), 16)
	mustSet(t, c1, grp, cdsType, msgs(makeCluster("a", 1), makeCluster("b", 1), makeCluster("c", 2)))
	if c1.Version(grp, cdsType) == v {
		t.Fatal("version did not change with content")
	}
	// Entries are sorted and carry the encoded bytes.
	es := c1.Entries(grp, cdsType)
	eq(t, "sorted", fmt.Sprint(es[0].Name, es[1].Name, es[2].Name), "abc")
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(es[2].Resource)
	eq(t, "Any bytes", string(es[2].Any.GetValue()), string(b))
}

func TestValidation(t *testing.T) {
	c := New(Options{})
	cases := map[string]func() error{
		"type mismatch": func() error {
			_, err := c.SetResources(grp, cdsType, msgs(makeRoute("r", "a")))
			return err
		},
		"name mismatch": func() error {
			_, err := c.SetResources(grp, cdsType, map[string]proto.Message{"x": makeCluster("y", 1)})
			return err
		},
		"nil message": func() error {
			_, err := c.UpdateResources(grp, cdsType, map[string]proto.Message{"x": nil}, nil)
			return err
		},
		"upsert and remove": func() error {
			_, err := c.UpdateResources(grp, cdsType, msgs(makeCluster("a", 1)), []string{"a"})
			return err
		},
	}
	for name, f := range cases {
		if f() == nil {
			t.Errorf("%s: no error", name)
		}
	}
	eq(t, "nothing stored", len(c.Entries(grp, cdsType)), 0)
	eq(t, "nothing encoded", c.EncodeCount(), uint64(0))
}

func TestCancelAndCleanup(t *testing.T) {
	c := New(Options{})
	cl := newSotwClient(t, c, "stray", rdsType)
	cl.request([]string{"r"}, false)
	eq(t, "parked", c.NumWatches("stray", rdsType), 1)
	cl.cancel()
	cl.cancel() // idempotent
	eq(t, "cancelled", c.NumWatches("stray", rdsType), 0)
	c.mu.RLock()
	_, kept := c.groups["stray"]
	c.mu.RUnlock()
	if kept {
		t.Fatal("group kept alive only by a cancelled watch was not dropped")
	}
	mustSet(t, c, "stray", rdsType, msgs(makeRoute("r", "a")))
	cl.expectNone() // a cancelled watch never sends

	d := newDeltaClient(t, c, "stray", edsType)
	d.request([]string{"c"}, nil, nil, false)
	d.cancel()
	mustSet(t, c, "stray", edsType, msgs(makeCLA("c", 1)))
	d.expectNone()
}

func TestFetch(t *testing.T) {
	c := New(Options{})
	mustSet(t, c, grp, ldsType, msgs(makeListener(80), makeAPIListener("api")))
	resp, err := c.Fetch(t.Context(), &discovery.DiscoveryRequest{TypeUrl: ldsType})
	if err != nil {
		t.Fatal(err)
	}
	out, _ := resp.GetDiscoveryResponse()
	eqList(t, "fetch wildcard", names(out.GetResources()), []string{"0.0.0.0_80"})
	resp, _ = c.Fetch(t.Context(), &discovery.DiscoveryRequest{TypeUrl: ldsType, ResourceNames: []string{"api"}})
	out, _ = resp.GetDiscoveryResponse()
	eqList(t, "fetch named", names(out.GetResources()), []string{"api"})
	_, err = c.Fetch(t.Context(), &discovery.DiscoveryRequest{TypeUrl: ldsType, VersionInfo: out.GetVersionInfo()})
	if _, ok := err.(*types.SkipFetchError); !ok {
		t.Fatalf("up-to-date fetch: %v", err)
	}
}

// TestConcurrentWatchesAndWriters exercises the locking under -race: streams
// re-requesting and cancelling while writers change the set.
func TestConcurrentWatchesAndWriters(t *testing.T) {
	c := New(Options{})
	const streams, rounds = 16, 200
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 2 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				set := map[string]proto.Message{}
				for j := range 20 {
					set[fmt.Sprint("c", j)] = makeCluster(fmt.Sprint("c", j), int64(rand.IntN(3)))
				}
				if _, err := c.SetResources(grp, cdsType, set); err != nil {
					t.Error(err)
				}
				if _, err := c.UpdateResources(grp, edsType, msgs(makeCLA(fmt.Sprint("c", i%20), uint32(w*1000+i%7))), nil); err != nil {
					t.Error(err)
				}
			}
		})
	}
	var clients sync.WaitGroup
	for s := range streams {
		clients.Go(func() {
			typ, names := cdsType, []string(nil)
			if s%2 == 1 {
				typ, names = edsType, []string{"c1", "c2", fmt.Sprint("c", s)}
			}
			sub := stream.NewSotwSubscription(names, true)
			nonce := ""
			for range rounds {
				ch := make(chan gcpcache.Response, 1)
				cancel, _ := c.CreateWatch(&discovery.DiscoveryRequest{TypeUrl: typ, ResourceNames: names, ResponseNonce: nonce}, sub, ch)
				select {
				case r := <-ch:
					out, _ := r.GetDiscoveryResponse()
					out.Nonce = "n" // sent, as the server does
					cancel()
					sub.SetReturnedResources(r.GetReturnedResources())
					nonce = "n"
				default:
					cancel()
				}
				sub.SetResourceSubscription(names)
			}
		})
	}
	for s := range streams / 2 {
		clients.Go(func() {
			typ, names := cdsType, []string(nil)
			if s%2 == 1 {
				typ, names = edsType, []string{"c1", fmt.Sprint("c", s)}
			}
			sub := stream.NewDeltaSubscription(names, nil, nil, true)
			ch := make(chan gcpcache.DeltaResponse, 1)
			nonce := ""
			for range rounds {
				cancel, _ := c.CreateDeltaWatch(&discovery.DeltaDiscoveryRequest{TypeUrl: typ, ResponseNonce: nonce}, sub, ch)
				select {
				case r := <-ch:
					out, _ := r.GetDeltaDiscoveryResponse()
					out.Nonce = "n" // sent, as the server does
					cancel()
					sub.SetReturnedResources(r.GetReturnedResources())
					nonce = "n"
				default:
					cancel()
					select { // a response queued just before cancel: the server drains it
					case r := <-ch:
						sub.SetReturnedResources(r.GetReturnedResources())
					default:
					}
				}
				sub.UpdateResourceSubscriptions(nil, nil)
			}
		})
	}
	clients.Wait()
	close(stop)
	wg.Wait()
	eq(t, "no watch left", c.NumWatches(grp, cdsType)+c.NumWatches(grp, edsType), 0)
}

// TestFullChannelRetry covers a response channel without room: the cache never
// blocks, delivers once there is room, and stops trying once cancelled (the
// delta server closes its channel right after cancelling).
func TestFullChannelRetry(t *testing.T) {
	c := New(Options{})
	mustSet(t, c, grp, cdsType, msgs(makeCluster("a", 1)))

	ch := make(chan gcpcache.Response) // no buffer
	cancel, _ := c.CreateWatch(&discovery.DiscoveryRequest{TypeUrl: cdsType}, stream.NewSotwSubscription(nil, true), ch)
	select {
	case r := <-ch:
		out, _ := r.GetDiscoveryResponse()
		eqList(t, "retried", names(out.GetResources()), []string{"a"})
	case <-time.After(2 * time.Second):
		t.Fatal("not delivered after retry")
	}
	cancel()

	dch := make(chan gcpcache.DeltaResponse)
	cancel, _ = c.CreateDeltaWatch(&discovery.DeltaDiscoveryRequest{TypeUrl: cdsType}, stream.NewDeltaSubscription(nil, nil, nil, true), dch)
	cancel()
	close(dch) // would panic in the retry goroutine if it still sent
	time.Sleep(20 * time.Millisecond)
}
