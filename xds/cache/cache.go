// Package cache holds the xDS resources hxds serves, one resource set per gateway
// group and type, and implements go-control-plane's cache.Cache interface
// (pkg/cache/v3) so that go-control-plane's ADS server (state-of-the-world and
// delta) can serve them.
//
// Why not SnapshotCache or LinearCache: SnapshotCache marshals resources for
// every client response, and LinearCache versions are counters that differ
// between processes. This cache follows the "Encode once" principle of
// DESIGN.md:
//
//   - every resource is marshalled once, deterministically, when it is stored;
//     its version is a hash of those bytes, and the same bytes (one *anypb.Any,
//     one *discovery.Resource) are shared by every response to every client;
//   - a type's version (SotW version_info, delta system_version_info) is a hash
//     over the sorted (name, resource version) pairs, so identical content has
//     an identical version across processes and restarts;
//   - storing content that did not change keeps the stored entries, encodes
//     nothing (unchanged messages are recognised with proto.Equal before any
//     marshalling) and wakes no watch;
//   - a change to a few resources costs O(changed) per client, not
//     O(subscribed): snapshots carry a change log, and a client known to be
//     in sync with an earlier snapshot is answered from the names changed
//     since (incremental.go), falling back to a full evaluation otherwise.
//
// Gateway groups: an Envoy belongs to the group named by its node.cluster (or
// Options.DefaultGroup when empty). All connections of a group share the same
// stored entries. A group without resources behaves like an empty set.
//
// Messages handed to SetResources/UpdateResources become owned by the cache:
// callers must not modify them afterwards (they are kept for Entries and for
// the proto.Equal change check). Responses handed to the server hold shared
// pointers (Any, Resource, and for wildcard full-state responses the resource
// slice itself); nobody may modify them.
package cache

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	gcpcache "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// DefaultGroupName is the group used when Options.DefaultGroup is empty; it is
// Higress's gateway cluster name.
const DefaultGroupName = "higress-gateway"

// Options configures a Cache.
type Options struct {
	// DefaultGroup is the group of nodes whose node.cluster is empty.
	// Empty means DefaultGroupName.
	DefaultGroup string
	// Logger receives cache logs (per-watch events at Debug level). Nil means no logs.
	Logger *zap.Logger
}

// Entry is one stored resource, as returned by Entries.
type Entry struct {
	Name string
	// Version is the resource's content hash (its delta resource version).
	Version string
	// Resource is the stored message. Do not modify it.
	Resource proto.Message
	// Any holds the encoded bytes served to clients. Do not modify it.
	Any *anypb.Any
}

// Cache stores resources per (group, type URL) and serves watches from
// go-control-plane's xDS servers. It is safe for concurrent use.
type Cache struct {
	defaultGroup string
	log          *zap.Logger

	encodes  atomic.Uint64
	watchIDs atomic.Uint64

	// fullOnly disables incremental evaluation (tests compare both);
	// incrementals counts incremental evaluations.
	fullOnly     bool
	incrementals atomic.Uint64

	// mu guards groups and typeSet.pinned. Lock order: mu, then typeSet.mu.
	mu     sync.RWMutex
	groups map[string]map[string]*typeSet
}

var _ gcpcache.Cache = (*Cache)(nil)

// New returns an empty cache.
func New(opts Options) *Cache {
	c := &Cache{
		defaultGroup: opts.DefaultGroup,
		log:          opts.Logger,
		groups:       map[string]map[string]*typeSet{},
	}
	if c.defaultGroup == "" {
		c.defaultGroup = DefaultGroupName
	}
	if c.log == nil {
		c.log = zap.NewNop()
	}
	return c
}

// GroupOf returns the group a node belongs to: node.cluster, or the default
// group when it is empty.
func (c *Cache) GroupOf(node *core.Node) string {
	if g := node.GetCluster(); g != "" {
		return g
	}
	return c.defaultGroup
}

// EncodeCount returns how many new resource versions have been encoded and
// stored since New. A resource handed in again with identical content is
// marshalled to compare its bytes but keeps the stored entry, and is not
// counted; serving any number of clients encodes nothing.
func (c *Cache) EncodeCount() uint64 { return c.encodes.Load() }

// Version returns the type version of a group's resource set (the SotW
// version_info). A group or type without resources has the version of the
// empty set.
func (c *Cache) Version(group, typeURL string) string {
	return c.snapshotOf(group, typeURL).version
}

// Entries returns a group's resources of one type, sorted by name.
func (c *Cache) Entries(group, typeURL string) []Entry {
	s := c.snapshotOf(group, typeURL)
	out := make([]Entry, 0, len(s.names))
	for _, n := range s.names {
		e := s.entries[n]
		out = append(out, Entry{Name: e.name, Version: e.version, Resource: e.msg, Any: e.any})
	}
	return out
}

// Groups returns, sorted, the groups that resources have been set for (even
// if empty).
func (c *Cache) Groups() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]string, 0, len(c.groups))
	for g, types := range c.groups {
		for _, ts := range types {
			if ts.pinned {
				out = append(out, g)
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

// NumWatches returns the number of parked watches of a group and type.
func (c *Cache) NumWatches(group, typeURL string) int {
	c.mu.RLock()
	ts := c.groups[group][typeURL]
	c.mu.RUnlock()
	if ts == nil {
		return 0
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return len(ts.watches)
}

// Fetch implements the REST (polling) part of cache.Cache: it returns the
// requested resources (all wildcard-visible ones when no name or "*" is
// requested), or *types.SkipFetchError when the request already carries the
// current type version.
func (c *Cache) Fetch(_ context.Context, req *gcpcache.Request) (gcpcache.Response, error) {
	return c.fetch(req)
}

// snapshotOf returns the current snapshot of (group, typeURL), or the empty one.
func (c *Cache) snapshotOf(group, typeURL string) *snapshot {
	c.mu.RLock()
	ts := c.groups[group][typeURL]
	c.mu.RUnlock()
	if ts == nil {
		return emptySnapshot
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.snap
}

// typeSet is the resource set of one (group, type URL) and its parked watches.
type typeSet struct {
	group     string
	typeURL   string
	fullState bool // LDS/CDS: SotW responses carry the complete set

	// pinned is set once a writer stored resources here; unpinned typeSets
	// exist only while watches park on them. Guarded by Cache.mu.
	pinned bool

	// writeMu serialises writers, so the snapshot a writer builds on stays
	// current and watches see snapshots in order.
	writeMu sync.Mutex

	mu      sync.Mutex // guards snap and watches
	snap    *snapshot
	watches map[uint64]*watch

	// provMu guards prov: which returned-resources maps are known to be in
	// sync with which snapshot (incremental.go). Never held with ts.mu
	// acquired after it.
	provMu sync.Mutex
	prov   map[unsafe.Pointer]*provenance
}

func newTypeSet(group, typeURL string) *typeSet {
	return &typeSet{
		group:     group,
		typeURL:   typeURL,
		fullState: gcpcache.ResourceRequiresFullStateInSotw(typeURL),
		snap:      emptySnapshot,
		watches:   map[uint64]*watch{},
		prov:      map[unsafe.Pointer]*provenance{},
	}
}

// typeSetLocked returns (creating it if needed) the typeSet; c.mu must be held
// for writing.
func (c *Cache) typeSetLocked(group, typeURL string) *typeSet {
	types := c.groups[group]
	if types == nil {
		types = map[string]*typeSet{}
		c.groups[group] = types
	}
	ts := types[typeURL]
	if ts == nil {
		ts = newTypeSet(group, typeURL)
		types[typeURL] = ts
	}
	return ts
}

// writerTypeSet returns the typeSet a writer stores into, pinned so that it is
// never dropped.
func (c *Cache) writerTypeSet(group, typeURL string) *typeSet {
	c.mu.Lock()
	defer c.mu.Unlock()
	ts := c.typeSetLocked(group, typeURL)
	ts.pinned = true
	return ts
}
