// Package eds is the endpoint path: EndpointSlice changes become
// ClusterLoadAssignments in the cache without re-running translation. A full
// translation tells it which EDS clusters exist (targets); after that, a
// change to one Service's slices re-encodes only that Service's assignments.
package eds

import (
	"fmt"
	"slices"
	"sort"
	"sync"

	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discoveryv1 "k8s.io/api/discovery/v1"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/hxds/hxds/translate/envoy"
	"github.com/hxds/hxds/translate/input"
)

// Sink receives assignments; *cache.Cache implements it.
type Sink interface {
	SetResources(group, typeURL string, resources map[string]proto.Message) (bool, error)
	UpdateResources(group, typeURL string, upsert map[string]proto.Message, remove []string) (bool, error)
}

// Updater keeps, per gateway group, the EDS targets of the last translation
// and an index from Service to the clusters that select it.
type Updater struct {
	sink Sink
	// slices returns the current EndpointSlices. It is read under mu so that
	// a full SetTargets and an endpoint-only update never publish out of
	// order: whichever runs last uses the latest slices.
	slices func() envoy.ServiceSlices

	// registry returns the current instances of a registry host (nil
	// until SetRegistry); like slices, read under mu.
	registry envoy.RegistryInstances

	mu      sync.Mutex
	targets map[string][]envoy.EndpointTarget                          // group → targets
	built   map[string]map[string]builtCLA                             // group → cluster → last assignment
	bySvc   map[input.NamespacedName]map[string][]envoy.EndpointTarget // service → group → targets
	byHost  map[string]map[string][]envoy.EndpointTarget               // registry host → group → targets

	updates prometheus.Counter
}

// New returns an updater writing to sink and reading slices; reg receives its metrics.
func New(sink Sink, slices func() envoy.ServiceSlices, reg prometheus.Registerer) *Updater {
	u := &Updater{
		sink:    sink,
		slices:  slices,
		targets: map[string][]envoy.EndpointTarget{},
		built:   map[string]map[string]builtCLA{},
		bySvc:   map[input.NamespacedName]map[string][]envoy.EndpointTarget{},
		byHost:  map[string]map[string][]envoy.EndpointTarget{},
		updates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hxds_eds_assignments_updated_total",
			Help: "ClusterLoadAssignments re-encoded by the endpoint path (without translation).",
		}),
	}
	reg.MustRegister(u.updates)
	return u
}

// SetRegistry sets where registry hosts' instances come from (the
// discovery catalog). Call it before the first SetTargets.
func (u *Updater) SetRegistry(lookup envoy.RegistryInstances) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.registry = lookup
}

// SetTargets installs the EDS targets of a new translation for one group and
// sets every assignment from slices. Assignments whose content did not change
// keep their encoded form in the cache and are not pushed again.
func (u *Updater) SetTargets(group string, targets []envoy.EndpointTarget) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	slices := u.slices()
	u.targets[group] = targets
	u.reindex()
	all := make(map[string]proto.Message, len(targets))
	prev, next := u.built[group], make(map[string]builtCLA, len(targets))
	for _, t := range targets {
		all[t.ClusterName] = u.assignment(prev, next, t, slices)
	}
	u.built[group] = next
	if _, err := u.sink.SetResources(group, resourcev3.EndpointType, all); err != nil {
		return fmt.Errorf("set endpoints of group %s: %w", group, err)
	}
	return nil
}

// RemoveGroup forgets a group that no longer exists.
func (u *Updater) RemoveGroup(group string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.targets, group)
	u.reindex()
}

func (u *Updater) reindex() {
	u.bySvc = map[input.NamespacedName]map[string][]envoy.EndpointTarget{}
	u.byHost = map[string]map[string][]envoy.EndpointTarget{}
	for group, targets := range u.targets {
		for _, t := range targets {
			if t.RegistryHost != "" {
				if u.byHost[t.RegistryHost] == nil {
					u.byHost[t.RegistryHost] = map[string][]envoy.EndpointTarget{}
				}
				u.byHost[t.RegistryHost][group] = append(u.byHost[t.RegistryHost][group], t)
				continue
			}
			k := input.NamespacedName{Namespace: t.Namespace, Name: t.Service}
			if u.bySvc[k] == nil {
				u.bySvc[k] = map[string][]envoy.EndpointTarget{}
			}
			u.bySvc[k][group] = append(u.bySvc[k][group], t)
		}
	}
}

// ServicesChanged rebuilds the assignments of the clusters that select any of
// services, and only those. It returns how many assignments it re-encoded.
func (u *Updater) ServicesChanged(services []input.NamespacedName) (int, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	var hit []map[string][]envoy.EndpointTarget
	for _, svc := range services {
		hit = append(hit, u.bySvc[svc])
	}
	return u.rebuild(hit)
}

// RegistryChanged rebuilds the assignments of the clusters of registry
// hosts, and only those: a registry's instance change reaches Envoy
// without translation. It returns how many assignments it re-encoded.
func (u *Updater) RegistryChanged(hosts []string) (int, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	var hit []map[string][]envoy.EndpointTarget
	for _, h := range hosts {
		hit = append(hit, u.byHost[h])
	}
	return u.rebuild(hit)
}

// rebuild re-encodes the targets of hit (each group → targets) and
// pushes them group by group. u.mu is held.
func (u *Updater) rebuild(hit []map[string][]envoy.EndpointTarget) (int, error) {
	slices := u.slices()
	perGroup := map[string]map[string]proto.Message{}
	for _, byGroup := range hit {
		for group, targets := range byGroup {
			if perGroup[group] == nil {
				perGroup[group] = map[string]proto.Message{}
			}
			for _, t := range targets {
				perGroup[group][t.ClusterName] = u.assignment(u.built[group], u.built[group], t, slices)
			}
		}
	}
	groups := make([]string, 0, len(perGroup))
	for g := range perGroup {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	n := 0
	for _, g := range groups {
		if _, err := u.sink.UpdateResources(g, resourcev3.EndpointType, perGroup[g], nil); err != nil {
			return n, fmt.Errorf("update endpoints of group %s: %w", g, err)
		}
		n += len(perGroup[g])
	}
	u.updates.Add(float64(n))
	return n, nil
}

type builtCLA struct {
	t        envoy.EndpointTarget
	slices   []*discoveryv1.EndpointSlice
	registry []input.RegistryEndpoint
	cla      *endpointv3.ClusterLoadAssignment
}

// assignment reuses the previous assignment when the target and its slices
// or registry instances (immutable, compared by identity) are unchanged.
func (u *Updater) assignment(prev, next map[string]builtCLA, t envoy.EndpointTarget, all envoy.ServiceSlices) proto.Message {
	if t.RegistryHost != "" {
		var eps []input.RegistryEndpoint
		if u.registry != nil {
			eps = u.registry(t.RegistryHost)
		}
		if b, ok := prev[t.ClusterName]; ok && b.t == t && sameInstances(b.registry, eps) {
			next[t.ClusterName] = b
			return b.cla
		}
		cla := envoy.RegistryAssignment(t.ClusterName, eps)
		next[t.ClusterName] = builtCLA{t: t, registry: eps, cla: cla}
		return cla
	}
	ss := all.For(t.Namespace, t.Service)
	if b, ok := prev[t.ClusterName]; ok && b.t == t && slices.Equal(b.slices, ss) {
		next[t.ClusterName] = b
		return b.cla
	}
	cla := envoy.ClusterLoadAssignment(t, ss)
	next[t.ClusterName] = builtCLA{t: t, slices: ss, cla: cla}
	return cla
}

// sameInstances: the catalog never changes a published instance list in
// place, so identity (same backing array and length) means equal.
func sameInstances(a, b []input.RegistryEndpoint) bool {
	if len(a) != len(b) {
		return false
	}
	return len(a) == 0 || &a[0] == &b[0]
}
