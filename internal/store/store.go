// Package store holds the current input objects, tells what kind of change an
// update is (configuration, which needs translation, or endpoints only, which
// does not), and builds translation snapshots.
package store

import (
	"maps"
	"reflect"
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
}

// New returns an empty store.
func New() *Store { return &Store{objects: map[input.Key]runtime.Object{}} }

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
		for _, o := range []runtime.Object{old, cur} {
			if es, ok := o.(*discoveryv1.EndpointSlice); ok && envoy.ServiceOf(es) != "" {
				svcs[input.NamespacedName{Namespace: es.Namespace, Name: envoy.ServiceOf(es)}] = true
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
func (s *Store) Slices() envoy.ServiceSlices {
	s.mu.RLock()
	defer s.mu.RUnlock()
	all := map[input.NamespacedName]*discoveryv1.EndpointSlice{}
	for k, o := range s.objects {
		if es, ok := o.(*discoveryv1.EndpointSlice); ok {
			all[input.NamespacedName{Namespace: k.Namespace, Name: k.Name}] = es
		}
	}
	return envoy.IndexSlices(all)
}
