// Package store holds the current input objects, tells what kind of change an
// update is (configuration, which needs translation, or endpoints only, which
// does not), and builds translation snapshots.
package store

import (
	"maps"
	"reflect"
	"slices"
	"sort"
	"sync"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/hxds/hxds/translate/envoy"
	"github.com/hxds/hxds/translate/input"
)

// Change describes what one update altered.
type Change struct {
	// Config is true when anything translation reads changed.
	Config bool
	// EndpointServices lists Services whose EndpointSlices changed, sorted.
	EndpointServices []input.NamespacedName
	// Keys changed (added, updated or removed), for logs.
	Keys int
}

// Empty reports whether nothing changed.
func (c Change) Empty() bool { return !c.Config && len(c.EndpointServices) == 0 }

// Store is safe for concurrent use.
type Store struct {
	mu      sync.RWMutex
	objects map[input.Key]runtime.Object
	// members indexes EndpointSlices by Service and slice name; it is
	// updated only for the slices a change touches.
	members map[input.NamespacedName]map[string]*discoveryv1.EndpointSlice
	// slices is the published index: replaced, never modified, so readers
	// may keep a map they were given while the store moves on.
	slices envoy.ServiceSlices
}

// New returns an empty store.
func New() *Store {
	return &Store{
		objects: map[input.Key]runtime.Object{},
		members: map[input.NamespacedName]map[string]*discoveryv1.EndpointSlice{},
		slices:  envoy.ServiceSlices{},
	}
}

// Replace swaps the whole object set (what a directory source delivers) and
// returns what changed. Objects that are the same pointer or deeply equal to
// the stored ones are not changes.
func (s *Store) Replace(objects map[input.Key]runtime.Object) Change {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ch Change
	svcs := map[input.NamespacedName]bool{}
	mark := func(k input.Key, old, cur runtime.Object) {
		ch.Keys++
		if k.Kind != input.KindEndpointSlice {
			ch.Config = true
			return
		}
		if es, ok := old.(*discoveryv1.EndpointSlice); ok {
			s.unindex(es)
			if svc := envoy.ServiceOf(es); svc != "" {
				svcs[input.NamespacedName{Namespace: es.Namespace, Name: svc}] = true
			}
		}
		if es, ok := cur.(*discoveryv1.EndpointSlice); ok {
			s.index(es)
			if svc := envoy.ServiceOf(es); svc != "" {
				svcs[input.NamespacedName{Namespace: es.Namespace, Name: svc}] = true
			}
		}
	}
	for k, cur := range objects {
		old, ok := s.objects[k]
		if !ok || (old != cur && !reflect.DeepEqual(old, cur)) {
			mark(k, old, cur)
		}
	}
	for k, old := range s.objects {
		if _, ok := objects[k]; !ok {
			mark(k, old, nil)
		}
	}
	// Keep a copy: the caller's map stays the caller's.
	s.objects = maps.Clone(objects)
	for svc := range svcs {
		ch.EndpointServices = append(ch.EndpointServices, svc)
	}
	if len(svcs) > 0 {
		s.publishSlices(svcs)
	}
	sort.Slice(ch.EndpointServices, func(i, j int) bool {
		a, b := ch.EndpointServices[i], ch.EndpointServices[j]
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
	return ch
}

// Snapshot builds the translation input from the current objects. The objects
// are shared, not copied: nothing downstream may modify them.
func (s *Store) Snapshot() *input.Snapshot {
	s.mu.RLock()
	defer s.mu.RUnlock()
	snap := input.NewSnapshot()
	for k, o := range s.objects {
		snap.Add(k, o)
	}
	return snap
}

// Slices indexes the current EndpointSlices by Service, for the endpoint path.
//
// The index is maintained incrementally: an endpoint change costs the
// changed Services' slices, not every slice (the endpoint path must not grow
// with the size of the configuration). The returned map is never modified.
func (s *Store) Slices() envoy.ServiceSlices {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.slices
}

func memberKey(es *discoveryv1.EndpointSlice) (input.NamespacedName, bool) {
	svc := envoy.ServiceOf(es)
	return input.NamespacedName{Namespace: es.Namespace, Name: svc}, svc != ""
}

func (s *Store) index(es *discoveryv1.EndpointSlice) {
	if k, ok := memberKey(es); ok {
		if s.members[k] == nil {
			s.members[k] = map[string]*discoveryv1.EndpointSlice{}
		}
		s.members[k][es.Name] = es
	}
}

func (s *Store) unindex(es *discoveryv1.EndpointSlice) {
	if k, ok := memberKey(es); ok {
		delete(s.members[k], es.Name)
		if len(s.members[k]) == 0 {
			delete(s.members, k)
		}
	}
}

// publishSlices replaces the published index with one where the changed
// Services' entries are rebuilt (sorted by slice name, as IndexSlices does).
func (s *Store) publishSlices(changed map[input.NamespacedName]bool) {
	next := maps.Clone(s.slices)
	for svc := range changed {
		m := s.members[svc]
		if len(m) == 0 {
			delete(next, svc)
			continue
		}
		list := make([]*discoveryv1.EndpointSlice, 0, len(m))
		for _, name := range slices.Sorted(maps.Keys(m)) {
			list = append(list, m[name])
		}
		next[svc] = list
	}
	s.slices = next
}
