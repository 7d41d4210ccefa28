package cache

import (
	"runtime"
	"sync"
	"time"

	gcpcache "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"go.uber.org/zap"
)

type watchState uint8

const (
	parked   watchState = iota // registered in its typeSet, waiting for a change
	retrying                   // response ready but the channel was full; a goroutine retries
	finished                   // responded or cancelled
)

// watch is one open request of one stream for one type. It receives at most
// one response; the server creates a new watch with the next request.
type watch struct {
	id    uint64
	ts    *typeSet
	sub   gcpcache.Subscription
	first bool // the request carries no response nonce
	node  string

	// base is the seq of a snapshot the client was found in sync with by
	// an evaluation of this watch (hasBase); see incremental.go.
	base    uint64
	hasBase bool
	// edit is the in-place edit of the returned map made by this watch's
	// response, reverted on cancel if the response was not sent.
	edit *edit

	// SotW (req, ch) or delta (dreq, dch).
	req  *gcpcache.Request
	ch   chan gcpcache.Response
	dreq *gcpcache.DeltaRequest
	dch  chan gcpcache.DeltaResponse

	// mu guards state and every read of sub once the watch is published: the
	// server modifies the subscription after cancelling the watch, so a
	// watch is only evaluated while it is known not to be cancelled.
	mu    sync.Mutex
	state watchState
}

func (w *watch) delta() bool { return w.dch != nil }

// CreateWatch implements cache.ConfigWatcher for state-of-the-world streams.
func (c *Cache) CreateWatch(req *gcpcache.Request, sub gcpcache.Subscription, ch chan gcpcache.Response) (func(), error) {
	w := &watch{
		sub:   sub,
		first: req.GetResponseNonce() == "",
		node:  req.GetNode().GetId(),
		req:   req,
		ch:    ch,
	}
	return c.openWatch(c.GroupOf(req.GetNode()), req.GetTypeUrl(), w), nil
}

// CreateDeltaWatch implements cache.ConfigWatcher for delta streams.
func (c *Cache) CreateDeltaWatch(req *gcpcache.DeltaRequest, sub gcpcache.Subscription, ch chan gcpcache.DeltaResponse) (func(), error) {
	w := &watch{
		sub:   sub,
		first: req.GetResponseNonce() == "",
		node:  req.GetNode().GetId(),
		dreq:  req,
		dch:   ch,
	}
	if deltaChangesSubscription(req) {
		// The server has just edited the returned map in place.
		c.forgetReturned(c.GroupOf(req.GetNode()), req.GetTypeUrl(), sub.ReturnedResources())
	}
	return c.openWatch(c.GroupOf(req.GetNode()), req.GetTypeUrl(), w), nil
}

// openWatch answers the watch at once when there is something to send,
// otherwise parks it until its (group, type) changes.
func (c *Cache) openWatch(group, typeURL string, w *watch) func() {
	w.id = c.watchIDs.Add(1)

	// Evaluate and register under c.mu (read) and ts.mu, so that a writer
	// either sees the watch registered or the watch sees the writer's snapshot,
	// and so that an unpinned typeSet is not dropped meanwhile.
	c.mu.RLock()
	ts := c.groups[group][typeURL]
	if ts == nil {
		c.mu.RUnlock()
		c.mu.Lock()
		ts = c.typeSetLocked(group, typeURL)
		defer c.mu.Unlock()
	} else {
		defer c.mu.RUnlock()
	}
	w.ts = ts

	ts.mu.Lock()
	defer ts.mu.Unlock()
	// Nobody else knows w yet, but the retry goroutine may start from here.
	w.mu.Lock()
	defer w.mu.Unlock()
	if c.respond(w, ts.snap) {
		return w.cancel(c)
	}
	ts.watches[w.id] = w
	if ce := c.log.Check(zap.DebugLevel, "watch parked"); ce != nil {
		ce.Write(w.fields(ts.snap)...)
	}
	return w.cancel(c)
}

func (w *watch) fields(s *snapshot) []zap.Field {
	return []zap.Field{
		zap.String("group", w.ts.group), zap.String("type", w.ts.typeURL),
		zap.String("node", w.node), zap.Uint64("watch", w.id),
		zap.Bool("delta", w.delta()), zap.String("version", s.version),
	}
}

// cancel returns the watch's cancel func; it may be called any number of times.
// Once it returns, the watch sends nothing and reads nothing from its
// subscription.
func (w *watch) cancel(c *Cache) func() {
	return func() {
		w.mu.Lock()
		wasParked := w.state == parked
		w.state = finished
		if e := w.edit; e != nil {
			w.edit = nil
			if e.sent() == "" {
				e.revert()
				w.ts.forget(e.m)
			}
		}
		w.mu.Unlock()
		if wasParked {
			c.removeWatch(w)
		}
	}
}

// removeWatch unregisters a cancelled watch and drops its typeSet when it was
// only kept alive by watches.
func (c *Cache) removeWatch(w *watch) {
	ts := w.ts
	ts.mu.Lock()
	_, present := ts.watches[w.id]
	delete(ts.watches, w.id)
	empty := len(ts.watches) == 0
	ts.mu.Unlock()
	if !present {
		return
	}
	if ce := c.log.Check(zap.DebugLevel, "watch cancelled"); ce != nil {
		ce.Write(zap.String("group", ts.group), zap.String("type", ts.typeURL),
			zap.String("node", w.node), zap.Uint64("watch", w.id))
	}
	if !empty {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if ts.pinned {
		return
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	types := c.groups[ts.group]
	if len(ts.watches) == 0 && types[ts.typeURL] == ts {
		delete(types, ts.typeURL)
		if len(types) == 0 {
			delete(c.groups, ts.group)
		}
	}
}

// notifyPerWorker is the number of watches from which waking is spread over
// the available CPUs.
const notifyPerWorker = 64

// notify evaluates parked watches against a new snapshot and returns those
// that are no longer parked. Each watch is evaluated under its own lock; no
// lock of the cache is held.
func (c *Cache) notify(ts *typeSet, s *snapshot, cands []*watch, changed map[string]struct{}) []*watch {
	one := func(w *watch) bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.state != parked {
			return true // cancelled meanwhile
		}
		if !w.sub.IsWildcard() && !intersects(w.sub.SubscribedResources(), changed) {
			// Nothing the watch looks at changed: what it saw when parked
			// (nothing to send) still holds.
			if w.hasBase && w.base+1 == s.seq {
				w.base = s.seq
			}
			return false
		}
		return c.respond(w, s)
	}
	workers := min(runtime.GOMAXPROCS(0), len(cands)/notifyPerWorker)
	if workers <= 1 {
		var done []*watch
		for _, w := range cands {
			if one(w) {
				done = append(done, w)
			}
		}
		return done
	}
	results := make([][]*watch, workers)
	chunk := (len(cands) + workers - 1) / workers
	var wg sync.WaitGroup
	for i := range workers {
		part := cands[min(i*chunk, len(cands)):min((i+1)*chunk, len(cands))]
		wg.Go(func() {
			for _, w := range part {
				if one(w) {
					results[i] = append(results[i], w)
				}
			}
		})
	}
	wg.Wait()
	var done []*watch
	for _, r := range results {
		done = append(done, r...)
	}
	return done
}

func intersects(sub, changed map[string]struct{}) bool {
	a, b := sub, changed
	if len(b) < len(a) {
		a, b = b, a
	}
	for n := range a {
		if _, ok := b[n]; ok {
			return true
		}
	}
	return false
}

// respond computes the watch's response against s and sends it. It returns
// false, leaving the watch parked, when there is nothing to send. w.mu must be
// held and w must be parked.
func (c *Cache) respond(w *watch, s *snapshot) bool {
	var changed []string
	incremental := false
	if base, ok := w.baseFor(); ok && !w.first && !c.fullOnly {
		changed, incremental = s.changesSince(base)
		incremental = incremental && incrementalWorth(s, changed)
	}
	if incremental {
		c.incrementals.Add(1)
	}
	returned := w.sub.ReturnedResources()
	inPlace := incremental && w.ts.owns(returned)
	// inSync: with nothing to send, the client is in sync with s.
	inSync := true
	if w.delta() {
		var r *deltaResponse
		if incremental {
			r, w.edit = deltaIncremental(w, s, changed, inPlace)
		} else {
			r = deltaResponseFor(w, s)
		}
		if r == nil {
			c.parkedAt(w, s, incremental, inSync)
			return false
		}
		w.ts.recordSync(w, returned, r.returned, s, true)
		if w.edit != nil {
			w.edit.sent = r.resp.GetNonce
		}
		if ce := c.log.Check(zap.DebugLevel, "watch responded"); ce != nil {
			ce.Write(append(w.fields(s), zap.Bool("incremental", incremental), zap.Bool("in-place", w.edit != nil),
				zap.Int("resources", len(r.resp.Resources)), zap.Int("removed", len(r.resp.RemovedResources)))...)
		}
		select {
		case w.dch <- r:
			w.state = finished
		default:
			w.state = retrying
			go c.retry(w, func() bool {
				select {
				case w.dch <- r:
					return true
				default:
					return false
				}
			})
		}
		return true
	}
	var r *sotwResponse
	if incremental {
		r, w.edit, inSync = sotwIncremental(w, s, changed, inPlace)
	} else {
		r = sotwResponseFor(w, s)
	}
	if r == nil {
		c.parkedAt(w, s, incremental, inSync)
		return false
	}
	w.ts.recordSync(w, returned, r.returned, s, true)
	if w.edit != nil {
		w.edit.sent = r.resp.GetNonce
	}
	if ce := c.log.Check(zap.DebugLevel, "watch responded"); ce != nil {
		ce.Write(append(w.fields(s), zap.Bool("incremental", incremental), zap.Bool("in-place", w.edit != nil),
			zap.Int("resources", len(r.resp.Resources)))...)
	}
	select {
	case w.ch <- r:
		w.state = finished
	default:
		w.state = retrying
		go c.retry(w, func() bool {
			select {
			case w.ch <- r:
				return true
			default:
				return false
			}
		})
	}
	return true
}

// parkedAt notes that an evaluation against s found nothing to send: when
// the client is in sync with s, later evaluations replay the changes after
// s, and a full evaluation's finding is recorded for the watches that follow
// on the same returned map.
func (c *Cache) parkedAt(w *watch, s *snapshot, incremental, inSync bool) {
	if !inSync {
		return // keep the older base: its changes are replayed again
	}
	w.base, w.hasBase = s.seq, true
	if !incremental && !w.first {
		w.ts.recordSync(w, nil, w.sub.ReturnedResources(), s, false)
	}
}

// forgetReturned drops what is known about a returned map whose subscription
// the server has edited.
func (c *Cache) forgetReturned(group, typeURL string, m map[string]string) {
	c.mu.RLock()
	ts := c.groups[group][typeURL]
	c.mu.RUnlock()
	if ts != nil {
		ts.forget(m)
	}
}

// retry delivers a response whose channel was full. The server's channels
// have room for one response per type, so this only happens with more
// watched types than the server planned for; the send is retried without ever
// blocking under a lock, and abandoned when the watch is cancelled (the delta
// server closes its channel after cancelling).
func (c *Cache) retry(w *watch, try func() bool) {
	c.log.Warn("response channel full, retrying", zap.String("group", w.ts.group),
		zap.String("type", w.ts.typeURL), zap.String("node", w.node), zap.Uint64("watch", w.id))
	backoff := time.Millisecond
	for {
		time.Sleep(backoff)
		w.mu.Lock()
		if w.state != retrying {
			w.mu.Unlock()
			return
		}
		if try() {
			w.state = finished
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		backoff = min(2*backoff, 100*time.Millisecond)
	}
}
