package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"sync"

	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	gcpcache "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

var marshalOpts = proto.MarshalOptions{Deterministic: true}

// entry is one encoded resource. Entries are immutable and shared by every
// snapshot that holds them and by every response that carries them.
type entry struct {
	name    string
	version string // content hash of the encoded bytes
	msg     proto.Message
	any     *anypb.Any          // SotW payload
	res     *discovery.Resource // delta payload, wraps the same Any
	// namedOnly resources are served only to subscriptions that name them,
	// never through a wildcard subscription; see isNamedOnly.
	namedOnly bool
}

// isNamedOnly reports whether a resource must not be served to wildcard
// subscriptions. Today that is a Listener with api_listener set: such
// listeners exist for proxyless gRPC clients, which always subscribe to LDS by
// name, while stock Envoy subscribes to LDS by wildcard and rejects API
// listeners delivered over LDS ("API listener ... cannot be added via LDS"),
// which would NACK the whole update for every Envoy of the group.
func isNamedOnly(typeURL string, msg proto.Message) bool {
	if typeURL != resource.ListenerType {
		return false
	}
	l, ok := msg.(*listener.Listener)
	return ok && l.GetApiListener() != nil
}

// snapshot is an immutable version of one (group, type) resource set.
type snapshot struct {
	version   string
	entries   map[string]*entry
	names     []string // sorted keys of entries
	namedOnly int      // number of namedOnly entries

	// seq numbers the snapshots of a typeSet (emptySnapshot is 0); log holds
	// the names changed by the last installs up to this one (see
	// incremental.go), logNames their total.
	seq      uint64
	log      []change
	logNames int

	wcOnce sync.Once
	wc     wildcardView
}

// wildcardView is what a plain wildcard subscription sees: every resource
// except named-only ones, sorted by name. Built once per snapshot and shared
// by all full-state wildcard responses.
type wildcardView struct {
	anys     []*anypb.Any
	versions map[string]string
}

func (s *snapshot) wildcard() *wildcardView {
	s.wcOnce.Do(func() {
		n := len(s.names) - s.namedOnly
		s.wc.anys = make([]*anypb.Any, 0, n)
		s.wc.versions = make(map[string]string, n)
		for _, name := range s.names {
			e := s.entries[name]
			if e.namedOnly {
				continue
			}
			s.wc.anys = append(s.wc.anys, e.any)
			s.wc.versions[name] = e.version
		}
	})
	return &s.wc
}

var emptySnapshot = newSnapshot(map[string]*entry{}, nil)

// newSnapshot builds a snapshot; names must be the sorted keys of entries.
func newSnapshot(entries map[string]*entry, names []string) *snapshot {
	s := &snapshot{entries: entries, names: names}
	h := sha256.New()
	buf := make([]byte, 0, 128)
	for _, n := range names {
		e := entries[n]
		if e.namedOnly {
			s.namedOnly++
		}
		buf = append(buf[:0], n...)
		buf = append(buf, 0)
		buf = append(buf, e.version...)
		buf = append(buf, '\n')
		h.Write(buf)
	}
	s.version = shortHash(h.Sum(nil))
	return s
}

func shortHash(sum []byte) string { return hex.EncodeToString(sum[:8]) }

// SetResources replaces the whole set of one type in a group. Unchanged
// resources keep their stored entry and are not encoded again. It returns
// changed=false, and wakes no watch, when the set is identical to the stored
// one. On error nothing is changed.
func (c *Cache) SetResources(group, typeURL string, resources map[string]proto.Message) (bool, error) {
	if err := validate(typeURL, resources, nil); err != nil {
		return false, err
	}
	ts := c.writerTypeSet(group, typeURL)
	ts.writeMu.Lock()
	defer ts.writeMu.Unlock()
	old := ts.currentSnapshot()

	next, err := c.encodeChanged(typeURL, old, resources)
	if err != nil {
		return false, err
	}
	var changed []string
	sameKeys := len(resources) == len(old.entries)
	for name, e := range next {
		if oe, ok := old.entries[name]; !ok || oe != e {
			changed = append(changed, name)
			if !ok {
				sameKeys = false
			}
		}
	}
	for name := range old.entries {
		if _, ok := next[name]; !ok {
			changed = append(changed, name)
		}
	}
	if len(changed) == 0 {
		return false, nil
	}
	names := old.names
	if !sameKeys {
		names = slices.Sorted(maps.Keys(next))
	}
	c.install(ts, newSnapshot(next, names), changed)
	return true, nil
}

// UpdateResources upserts and removes some resources of one type in a group
// (the EDS path changes one ClusterLoadAssignment this way). A name may not be
// both upserted and removed. It returns changed=false, and wakes no watch,
// when nothing differs from the stored set. On error nothing is changed.
func (c *Cache) UpdateResources(group, typeURL string, upsert map[string]proto.Message, remove []string) (bool, error) {
	if err := validate(typeURL, upsert, remove); err != nil {
		return false, err
	}
	ts := c.writerTypeSet(group, typeURL)
	ts.writeMu.Lock()
	defer ts.writeMu.Unlock()
	old := ts.currentSnapshot()

	encoded, err := c.encodeChanged(typeURL, old, upsert)
	if err != nil {
		return false, err
	}
	var changed []string
	keysChanged := false
	for name, e := range encoded {
		if oe, ok := old.entries[name]; !ok || oe != e {
			changed = append(changed, name)
			if !ok {
				keysChanged = true
			}
		}
	}
	for _, name := range remove {
		if _, ok := old.entries[name]; ok {
			changed = append(changed, name)
			keysChanged = true
		}
	}
	if len(changed) == 0 {
		return false, nil
	}
	next := maps.Clone(old.entries)
	for _, name := range remove {
		delete(next, name)
	}
	maps.Copy(next, encoded)
	names := old.names
	if keysChanged {
		names = slices.Sorted(maps.Keys(next))
	}
	c.install(ts, newSnapshot(next, names), changed)
	return true, nil
}

func validate(typeURL string, resources map[string]proto.Message, remove []string) error {
	if typeURL == "" {
		return errors.New("empty type URL")
	}
	for name, msg := range resources {
		if name == "" {
			return errors.New("resource with empty name")
		}
		if msg == nil || !msg.ProtoReflect().IsValid() {
			return fmt.Errorf("resource %q: nil message", name)
		}
		if got := resource.APITypePrefix + string(msg.ProtoReflect().Descriptor().FullName()); got != typeURL {
			return fmt.Errorf("resource %q: message type %s does not match %s", name, got, typeURL)
		}
		if n := gcpcache.GetResourceName(msg); n != "" && n != name {
			return fmt.Errorf("resource %q: message is named %q", name, n)
		}
	}
	for _, name := range remove {
		if _, ok := resources[name]; ok {
			return fmt.Errorf("resource %q is both upserted and removed", name)
		}
	}
	return nil
}

func (ts *typeSet) currentSnapshot() *snapshot {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.snap
}

// parallelEncodeMin is the number of resources to encode from which encoding
// is spread over the available CPUs.
const parallelEncodeMin = 32

// encodeChanged returns an entry per resource: the stored one when the message
// is unchanged (same pointer or proto.Equal, no encoding) or encodes to the
// same hash, a new one otherwise.
func (c *Cache) encodeChanged(typeURL string, old *snapshot, resources map[string]proto.Message) (map[string]*entry, error) {
	out := make(map[string]*entry, len(resources))
	type job struct {
		name string
		msg  proto.Message
		e    *entry
		err  error
	}
	var jobs []job
	for name, msg := range resources {
		if oe, ok := old.entries[name]; ok && oe.msg == msg {
			out[name] = oe
			continue
		}
		jobs = append(jobs, job{name: name, msg: msg})
	}
	run := func(j *job) { j.e, j.err = c.encode(typeURL, j.name, j.msg) }
	if workers := min(runtime.GOMAXPROCS(0), len(jobs)/(parallelEncodeMin/2)); workers > 1 {
		var wg sync.WaitGroup
		chunk := (len(jobs) + workers - 1) / workers
		for lo := 0; lo < len(jobs); lo += chunk {
			part := jobs[lo:min(lo+chunk, len(jobs))]
			wg.Go(func() {
				for i := range part {
					run(&part[i])
				}
			})
		}
		wg.Wait()
	} else {
		for i := range jobs {
			run(&jobs[i])
		}
	}
	for _, j := range jobs {
		if j.err != nil {
			return nil, fmt.Errorf("encoding %s %q: %w", typeURL, j.name, j.err)
		}
		if oe, ok := old.entries[j.name]; ok && oe.version == j.e.version {
			out[j.name] = oe // same bytes: keep the stored (shared) entry
			continue
		}
		c.encodes.Add(1)
		out[j.name] = j.e
	}
	return out, nil
}

// encode marshals one resource; this is the only place resources are encoded.
func (c *Cache) encode(typeURL, name string, msg proto.Message) (*entry, error) {
	b, err := marshalOpts.Marshal(msg)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	a := &anypb.Any{TypeUrl: typeURL, Value: b}
	v := shortHash(sum[:])
	return &entry{
		name:      name,
		version:   v,
		msg:       msg,
		any:       a,
		res:       &discovery.Resource{Name: name, Version: v, Resource: a},
		namedOnly: isNamedOnly(typeURL, msg),
	}, nil
}

// install publishes a new snapshot and wakes the parked watches it concerns.
// ts.writeMu must be held.
func (c *Cache) install(ts *typeSet, s *snapshot, changed []string) {
	ts.mu.Lock()
	s.withLog(ts.snap, changed)
	ts.snap = s
	cands := make([]*watch, 0, len(ts.watches))
	for _, w := range ts.watches {
		cands = append(cands, w)
	}
	ts.mu.Unlock()

	c.log.Debug("resources updated",
		zap.String("group", ts.group), zap.String("type", ts.typeURL),
		zap.String("version", s.version), zap.Int("resources", len(s.names)),
		zap.Int("changed", len(changed)), zap.Int("watches", len(cands)))
	if len(cands) == 0 {
		return
	}
	ts.sweepProvenance(s, cands)
	changedSet := make(map[string]struct{}, len(changed))
	for _, n := range changed {
		changedSet[n] = struct{}{}
	}
	done := c.notify(ts, s, cands, changedSet)
	if len(done) == 0 {
		return
	}
	ts.mu.Lock()
	for _, w := range done {
		delete(ts.watches, w.id)
	}
	ts.mu.Unlock()
}
