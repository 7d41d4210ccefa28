package cache

import (
	"maps"
	"slices"
	"unsafe"

	gcpcache "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
)

// Incremental evaluation.
//
// Every snapshot of a typeSet carries a sequence number (seq, one more than
// the snapshot it replaced) and a bounded change log: the names changed
// (upserted or removed) by each of the last installs. A watch whose client is
// known to be "in sync" with an earlier snapshot base (the full diff between
// what the client holds and base was empty under the current subscription)
// is answered from the names changed after base only: resources that did not
// change since base are still in sync. That makes the work per change and per
// client O(changed) instead of O(subscribed) (lookups, sorting).
//
// Where the base comes from:
//
//   - a parked watch records the snapshot it was last evaluated against with
//     nothing to send (every install evaluates every parked watch in order,
//     so that base is always the previous snapshot);
//   - a new watch (the server opens one per request) looks up the provenance
//     of its subscription's returned-resources map: the cache records, for
//     each map it hands to the server in a response (and for a map found in
//     sync by a full evaluation), the snapshot it is in sync with. The record
//     is only trusted when the subscription cannot have changed since: delta
//     requests that subscribe or unsubscribe invalidate it (the server edits
//     the map in place), and a SotW request must name exactly the same
//     resources (and wildcard) as when it was recorded.
//
// Anything else (first request, client further behind than the log, too many
// changes, unknown map) falls back to the full evaluation, which is the
// reference behaviour.

const (
	// maxLogEntries bounds the installs remembered per typeSet.
	maxLogEntries = 64
	// maxLogNames bounds the changed names remembered per typeSet.
	maxLogNames = 4096
)

// change is the set of names one install changed.
type change struct {
	seq   uint64
	names []string
}

// withLog sets s's seq and change log as the successor of prev, the change
// being changed (which the log keeps: do not modify it afterwards).
func (s *snapshot) withLog(prev *snapshot, changed []string) {
	s.seq = prev.seq + 1
	if len(changed) > maxLogNames {
		return // too big to be worth replaying: clients fall back to a full diff
	}
	log := prev.log
	total := prev.logNames + len(changed)
	drop := 0
	for drop < len(log) && (len(log)-drop+1 > maxLogEntries || total > maxLogNames) {
		total -= len(log[drop].names)
		drop++
	}
	if drop > 0 {
		// Fresh array: older snapshots keep viewing theirs.
		log = slices.Clone(log[drop:])
	}
	// Appending may write past prev.log's length into a shared array: no
	// snapshot views that slot (only the current snapshot is ever extended,
	// by the single writer).
	s.log = append(log, change{seq: s.seq, names: changed})
	s.logNames = total
}

// changesSince returns the names changed after snapshot base up to s (not
// sorted, possibly with duplicates removed), and false when the log does not
// reach back that far.
func (s *snapshot) changesSince(base uint64) ([]string, bool) {
	if base == s.seq {
		return nil, true
	}
	if base > s.seq {
		return nil, false
	}
	back := s.seq - base
	if back > uint64(len(s.log)) {
		return nil, false
	}
	entries := s.log[len(s.log)-int(back):]
	if len(entries) == 1 {
		return entries[0].names, true
	}
	seen := map[string]struct{}{}
	var out []string
	for _, c := range entries {
		for _, n := range c.names {
			if _, ok := seen[n]; !ok {
				seen[n] = struct{}{}
				out = append(out, n)
			}
		}
	}
	return out, true
}

// incrementalWorth reports whether replaying names is cheaper than a full
// evaluation of s.
func incrementalWorth(s *snapshot, names []string) bool {
	return len(names) <= 64 || len(names)*4 <= len(s.names)
}

// provenance records that a returned-resources map (a client's state as the
// server tracks it) is in sync with snapshot seq under a subscription.
type provenance struct {
	m        map[string]string // held so that its address is never reused
	seq      uint64
	wildcard bool
	// owned: the cache made m for a response (rather than the server from a
	// request), so a later response may edit it in place.
	owned bool
	// sotwSub is the SotW subscribed-names map it was recorded under (the
	// SotW server replaces, never modifies, that map on each request); nil
	// for delta, whose subscription changes are seen on the request.
	sotwSub map[string]struct{}
}

func mapKey(m map[string]string) unsafe.Pointer {
	return *(*unsafe.Pointer)(unsafe.Pointer(&m))
}

// recordSync records that m is in sync with s for w's subscription, and
// forgets the record of old (the map m replaces), if any. w.mu must be held.
func (ts *typeSet) recordSync(w *watch, old, m map[string]string, s *snapshot, owned bool) {
	if m == nil {
		return
	}
	p := &provenance{m: m, seq: s.seq, wildcard: w.sub.IsWildcard(), owned: owned}
	if !w.delta() {
		p.sotwSub = w.sub.SubscribedResources()
	}
	ts.provMu.Lock()
	defer ts.provMu.Unlock()
	if old != nil {
		delete(ts.prov, mapKey(old))
	}
	if prev := ts.prov[mapKey(m)]; prev != nil && prev.owned {
		p.owned = true
	}
	ts.prov[mapKey(m)] = p
}

// owns reports whether the cache made m for a response.
func (ts *typeSet) owns(m map[string]string) bool {
	if m == nil {
		return false
	}
	ts.provMu.Lock()
	defer ts.provMu.Unlock()
	p := ts.prov[mapKey(m)]
	return p != nil && p.owned
}

// Editing returned maps in place.
//
// A response's returned map is what the server records, once it sends the
// response, as the client's state; the next watch gets it back. Cloning the
// client's map for every response is O(subscribed), so an incremental
// response edits the map it got in place when the cache made that map (it is
// then only shared by the server's subscription and the cache), keeping an
// undo log. The edit is only wrong if the response is never sent: the SotW
// servers drop a response still queued when a request of its type arrives,
// and a response being retried is abandoned on cancel. Both happen only
// after the server cancels the watch, from the goroutine that sends
// responses, and the servers write the nonce into the response they send:
// cancel reverts the edit of a response that has no nonce.

type undoEntry struct {
	name, old string
	had       bool
}

// edit is an in-place edit of a returned map, or nil for a fresh map.
type edit struct {
	m    map[string]string
	undo []undoEntry
	// sent reports whether the server sent the response (wrote its nonce).
	sent func() string
}

func (e *edit) set(m map[string]string, k, v string) {
	if e != nil {
		old, had := m[k]
		e.undo = append(e.undo, undoEntry{name: k, old: old, had: had})
	}
	m[k] = v
}

func (e *edit) del(m map[string]string, k string) {
	if e != nil {
		old, had := m[k]
		if !had {
			return
		}
		e.undo = append(e.undo, undoEntry{name: k, old: old, had: true})
	}
	delete(m, k)
}

func (e *edit) revert() {
	for i := len(e.undo) - 1; i >= 0; i-- {
		u := e.undo[i]
		if u.had {
			e.m[u.name] = u.old
		} else {
			delete(e.m, u.name)
		}
	}
}

// nextMap returns the map a response's returned map starts from: returned
// itself with an edit when it may be edited in place, else a clone.
func nextMap(returned map[string]string, inPlace bool) (map[string]string, *edit) {
	if inPlace {
		return returned, &edit{m: returned}
	}
	return maps.Clone(returned), nil
}

// forget drops the record of m.
func (ts *typeSet) forget(m map[string]string) {
	if m == nil {
		return
	}
	ts.provMu.Lock()
	delete(ts.prov, mapKey(m))
	ts.provMu.Unlock()
}

// syncedSeq returns the snapshot the watch's returned map is known to be in
// sync with under its current subscription. w.mu must be held.
func (ts *typeSet) syncedSeq(w *watch) (uint64, bool) {
	m := w.sub.ReturnedResources()
	if m == nil || w.first {
		return 0, false
	}
	ts.provMu.Lock()
	p := ts.prov[mapKey(m)]
	ts.provMu.Unlock()
	if p == nil || p.wildcard != w.sub.IsWildcard() {
		return 0, false
	}
	if !w.delta() && !sameNames(p.sotwSub, w.sub.SubscribedResources()) {
		return 0, false
	}
	return p.seq, true
}

func sameNames(a, b map[string]struct{}) bool {
	if len(a) != len(b) {
		return false
	}
	if len(a) == 0 || mapKeySet(a) == mapKeySet(b) {
		return true
	}
	for n := range a {
		if _, ok := b[n]; !ok {
			return false
		}
	}
	return true
}

func mapKeySet(m map[string]struct{}) unsafe.Pointer {
	return *(*unsafe.Pointer)(unsafe.Pointer(&m))
}

// sweepProvenance drops records nobody can use any more: called by writers
// when the table has grown well past the number of parked watches (records
// of closed streams). A record is kept when it is the returned map of a
// parked watch or recent enough to be replayed from the log.
func (ts *typeSet) sweepProvenance(s *snapshot, cands []*watch) {
	ts.provMu.Lock()
	n := len(ts.prov)
	ts.provMu.Unlock()
	if n <= 2*len(cands)+64 {
		return
	}
	live := make(map[unsafe.Pointer]struct{}, len(cands))
	for _, w := range cands {
		w.mu.Lock()
		if w.state == parked {
			if m := w.sub.ReturnedResources(); m != nil {
				live[mapKey(m)] = struct{}{}
			}
		}
		w.mu.Unlock()
	}
	ts.provMu.Lock()
	defer ts.provMu.Unlock()
	for k, p := range ts.prov {
		if _, ok := live[k]; ok {
			continue
		}
		if s.seq-p.seq < uint64(len(s.log)) && len(ts.prov) <= 4*len(cands)+256 {
			continue
		}
		delete(ts.prov, k)
	}
}

// baseFor returns the snapshot seq the watch can be evaluated incrementally
// from, if any. w.mu must be held.
func (w *watch) baseFor() (uint64, bool) {
	if w.hasBase {
		return w.base, true
	}
	return w.ts.syncedSeq(w)
}

// deltaChangesSubscription reports whether a delta request edits the
// subscription (the server then edits the returned map in place).
func deltaChangesSubscription(req *gcpcache.DeltaRequest) bool {
	return len(req.GetResourceNamesSubscribe()) > 0 || len(req.GetResourceNamesUnsubscribe()) > 0 ||
		len(req.GetInitialResourceVersions()) > 0
}
