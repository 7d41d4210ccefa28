package store

import (
	"context"
	"maps"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	_ "github.com/hxds/hxds/internal/testutil"
	"github.com/hxds/hxds/translate/envoy"
	"github.com/hxds/hxds/translate/input"
)

func slice(name, svc string, addrs ...string) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
	}
	for _, a := range addrs {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{a}})
	}
	return s
}

func key(kind input.Kind, name string) input.Key {
	return input.Key{Kind: kind, Namespace: "ns", Name: name}
}

func TestReplaceClassifiesChanges(t *testing.T) {
	s := New()
	ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: "i", Namespace: "ns"}}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "ns"}}
	base := map[input.Key]runtime.Object{
		key(input.KindIngress, "i"):        ing,
		key(input.KindService, "a"):        svc,
		key(input.KindEndpointSlice, "a1"): slice("a1", "a", "10.0.0.1"),
		key(input.KindEndpointSlice, "b1"): slice("b1", "b", "10.0.0.2"),
	}
	if ch := s.Replace(base); !ch.Config || ch.Keys != 4 {
		t.Fatalf("first load = %+v, want a config change of 4 keys", ch)
	}

	// Same content in new objects: nothing changed.
	same := map[input.Key]runtime.Object{}
	for k, v := range base {
		same[k] = v.DeepCopyObject()
	}
	if ch := s.Replace(same); !ch.Empty() || ch.Keys != 0 {
		t.Fatalf("equal content = %+v, want no change", ch)
	}

	// One slice changes: endpoint-only, for its Service alone.
	next := map[input.Key]runtime.Object{}
	for k, v := range same {
		next[k] = v
	}
	next[key(input.KindEndpointSlice, "a1")] = slice("a1", "a", "10.0.0.1", "10.0.0.9")
	ch := s.Replace(next)
	if ch.Config || len(ch.EndpointServices) != 1 || ch.EndpointServices[0] != (input.NamespacedName{Namespace: "ns", Name: "a"}) {
		t.Fatalf("slice edit = %+v, want endpoint-only change of ns/a", ch)
	}

	// A slice moving to another Service touches both Services.
	next2 := map[input.Key]runtime.Object{}
	for k, v := range next {
		next2[k] = v
	}
	next2[key(input.KindEndpointSlice, "b1")] = slice("b1", "c", "10.0.0.2")
	ch = s.Replace(next2)
	if ch.Config || len(ch.EndpointServices) != 2 || ch.EndpointServices[0].Name != "b" || ch.EndpointServices[1].Name != "c" {
		t.Fatalf("slice relabel = %+v, want endpoint-only change of ns/b and ns/c", ch)
	}

	// Removing a Service is a configuration change.
	delete(next2, key(input.KindService, "a"))
	if ch := s.Replace(next2); !ch.Config {
		t.Fatalf("service removal = %+v, want a config change", ch)
	}

	snap := s.Snapshot()
	if len(snap.Ingresses) != 1 || len(snap.Services) != 0 || len(snap.EndpointSlices) != 2 {
		t.Fatalf("snapshot = %d ingresses, %d services, %d slices", len(snap.Ingresses), len(snap.Services), len(snap.EndpointSlices))
	}
	if got := s.Slices().For("ns", "c"); len(got) != 1 || got[0].Name != "b1" {
		t.Fatalf("Slices().For(ns, c) = %v", got)
	}
}

func TestDebouncerCoalescesBursts(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := NewDebouncer(30*time.Millisecond, time.Hour)
	var fires atomic.Int32
	fired := make(chan struct{}, 10)
	go d.Run(ctx, func() { fires.Add(1); fired <- struct{}{} })
	for i := 0; i < 20; i++ {
		d.Trigger()
		time.Sleep(time.Millisecond)
	}
	select {
	case <-fired:
	case <-time.After(5 * time.Second):
		t.Fatal("debouncer never fired")
	}
	// A burst gives exactly one fire; a later trigger gives one more.
	d.Trigger()
	select {
	case <-fired:
	case <-time.After(5 * time.Second):
		t.Fatal("second burst never fired")
	}
	if n := fires.Load(); n != 2 {
		t.Fatalf("fires = %d, want 2", n)
	}
}

func TestDebouncerMaxDelayBoundsAStream(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := NewDebouncer(time.Hour, 50*time.Millisecond)
	fired := make(chan struct{}, 1)
	go d.Run(ctx, func() { fired <- struct{}{} })
	stop := time.After(5 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			d.Trigger() // never quiet: only the max delay can fire
		case <-fired:
			return
		case <-stop:
			t.Fatal("max delay did not bound a never-ending burst")
		}
	}
}

// TestSlicesIndexMatchesFullRebuild: the incrementally maintained index is
// always what indexing every slice from scratch gives, and maps handed out
// earlier are never modified.
func TestSlicesIndexMatchesFullRebuild(t *testing.T) {
	s := New()
	objs := map[input.Key]runtime.Object{}
	check := func(step string) {
		t.Helper()
		all := map[input.NamespacedName]*discoveryv1.EndpointSlice{}
		for k, o := range objs {
			if es, ok := o.(*discoveryv1.EndpointSlice); ok {
				all[input.NamespacedName{Namespace: k.Namespace, Name: k.Name}] = es
			}
		}
		if got, want := s.Slices(), envoy.IndexSlices(all); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: index %v, want %v", step, got, want)
		}
	}
	put := func(name, svc string, addrs ...string) {
		objs[key(input.KindEndpointSlice, name)] = slice(name, svc, addrs...)
	}
	put("a-2", "a", "10.0.0.2")
	put("a-1", "a", "10.0.0.1")
	put("b-1", "b", "10.0.1.1")
	s.Replace(maps.Clone(objs))
	check("initial")
	before := s.Slices()
	beforeA := before.For("ns", "a")

	put("a-1", "a", "10.0.0.9") // edit
	put("b-1", "c", "10.0.1.1") // move to another Service
	delete(objs, key(input.KindEndpointSlice, "a-2"))
	s.Replace(maps.Clone(objs))
	check("after edits")
	if len(before.For("ns", "a")) != len(beforeA) || before.For("ns", "b") == nil {
		t.Fatal("an index handed out earlier was modified")
	}
	delete(objs, key(input.KindEndpointSlice, "a-1"))
	s.Replace(maps.Clone(objs))
	check("after removal")
	if s.Slices().For("ns", "a") != nil {
		t.Fatal("a Service without slices is still indexed")
	}
}
