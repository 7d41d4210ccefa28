package cache

import (
	"context"
	"maps"
	"slices"
	"strings"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	gcpcache "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

// sotwResponse is one client's response. The DiscoveryResponse struct is the
// client's own (the server writes its nonce into it); the resources in it are
// shared.
type sotwResponse struct {
	req      *gcpcache.Request
	resp     *discovery.DiscoveryResponse
	returned map[string]string
}

var _ gcpcache.Response = (*sotwResponse)(nil)

func (r *sotwResponse) GetDiscoveryResponse() (*discovery.DiscoveryResponse, error) {
	return r.resp, nil
}
func (r *sotwResponse) GetRequest() *discovery.DiscoveryRequest { return r.req }
func (r *sotwResponse) GetVersion() (string, error)             { return r.resp.GetVersionInfo(), nil }
func (r *sotwResponse) GetResponseVersion() string              { return r.resp.GetVersionInfo() }
func (r *sotwResponse) GetReturnedResources() map[string]string { return r.returned }
func (r *sotwResponse) GetContext() context.Context             { return context.Background() }

// deltaResponse is one client's delta response (own struct, shared resources).
type deltaResponse struct {
	req      *gcpcache.DeltaRequest
	resp     *discovery.DeltaDiscoveryResponse
	returned map[string]string
}

var _ gcpcache.DeltaResponse = (*deltaResponse)(nil)

func (r *deltaResponse) GetDeltaDiscoveryResponse() (*discovery.DeltaDiscoveryResponse, error) {
	return r.resp, nil
}
func (r *deltaResponse) GetDeltaRequest() *discovery.DeltaDiscoveryRequest { return r.req }
func (r *deltaResponse) GetSystemVersion() (string, error) {
	return r.resp.GetSystemVersionInfo(), nil
}
func (r *deltaResponse) GetResponseVersion() string              { return r.resp.GetSystemVersionInfo() }
func (r *deltaResponse) GetNextVersionMap() map[string]string    { return r.returned }
func (r *deltaResponse) GetReturnedResources() map[string]string { return r.returned }
func (r *deltaResponse) GetContext() context.Context             { return context.Background() }

// visible reports whether e is served to a subscription: named-only
// resources need to be subscribed by name.
func visible(e *entry, subscribed map[string]struct{}) bool {
	if !e.namedOnly {
		return true
	}
	_, ok := subscribed[e.name]
	return ok
}

// scope returns the existing resources a subscription covers, sorted by name:
// for a wildcard subscription every resource visible to it (which includes
// named-only resources it also names), otherwise the named ones that exist.
func scope(s *snapshot, wildcard bool, subscribed map[string]struct{}) []*entry {
	if wildcard {
		out := make([]*entry, 0, len(s.names))
		for _, n := range s.names {
			if e := s.entries[n]; visible(e, subscribed) {
				out = append(out, e)
			}
		}
		return out
	}
	out := make([]*entry, 0, len(subscribed))
	for n := range subscribed {
		if e, ok := s.entries[n]; ok {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b *entry) int { return strings.Compare(a.name, b.name) })
	return out
}

// subscribesNamedOnly reports whether a subscription names a named-only
// resource of s (which takes it off the shared wildcard view).
func subscribesNamedOnly(s *snapshot, subscribed map[string]struct{}) bool {
	if s.namedOnly == 0 {
		return false
	}
	for n := range subscribed {
		if e, ok := s.entries[n]; ok && e.namedOnly {
			return true
		}
	}
	return false
}

// sotwResponseFor decides a state-of-the-world response from what the stream
// was last sent (ReturnedResources: name → resource hash), never from the
// request's version, so a NACK (same returned set, nothing new) parks instead
// of resending. Returns nil when there is nothing to send.
//
//   - Full-state types (LDS, CDS): respond when a covered resource changed,
//     appeared or disappeared, or on the subscription's first request (even
//     with an empty set, so Envoy finishes initialising); the response carries
//     every covered resource.
//   - Other types: respond with the changed and new resources only. Removals
//     cannot be expressed, so they only leave the returned map (a later
//     re-creation is then sent again).
//
// The returned map of the response is what the client holds afterwards.
func sotwResponseFor(w *watch, s *snapshot) *sotwResponse {
	returned := w.sub.ReturnedResources()
	subscribed := w.sub.SubscribedResources()
	wildcard := w.sub.IsWildcard()
	full := w.ts.fullState

	if full && wildcard && !subscribesNamedOnly(s, subscribed) {
		// Common Envoy case: the whole wildcard view, shared across clients.
		wv := s.wildcard()
		if !w.first && sameVersions(returned, wv.versions) {
			return nil
		}
		return newSotwResponse(w, s, wv.anys, maps.Clone(wv.versions))
	}

	if !full && !wildcard {
		// By-name type (RDS/EDS/SDS): only changed resources are sent, so
		// there is nothing to sort but them.
		next := make(map[string]string, len(subscribed))
		var changedEntries []*entry
		for n := range subscribed {
			e, ok := s.entries[n]
			if !ok {
				continue
			}
			next[n] = e.version
			if v, ok := returned[n]; !ok || v != e.version {
				changedEntries = append(changedEntries, e)
			}
		}
		if len(changedEntries) == 0 {
			return nil
		}
		slices.SortFunc(changedEntries, func(a, b *entry) int { return strings.Compare(a.name, b.name) })
		send := make([]*anypb.Any, len(changedEntries))
		for i, e := range changedEntries {
			send[i] = e.any
		}
		return newSotwResponse(w, s, send, next)
	}
	covered := scope(s, wildcard, subscribed)
	next := make(map[string]string, len(covered))
	var send []*anypb.Any
	changed := false
	for _, e := range covered {
		next[e.name] = e.version
		if v, ok := returned[e.name]; ok && v == e.version {
			if full {
				send = append(send, e.any)
			}
			continue
		}
		changed = true
		send = append(send, e.any)
	}
	if full {
		if !changed && len(next) == len(returned) && !w.first {
			return nil
		}
		if send == nil {
			send = []*anypb.Any{}
		}
	} else if !changed {
		return nil
	}
	return newSotwResponse(w, s, send, next)
}

func newSotwResponse(w *watch, s *snapshot, res []*anypb.Any, returned map[string]string) *sotwResponse {
	return &sotwResponse{
		req: w.req,
		resp: &discovery.DiscoveryResponse{
			VersionInfo: s.version,
			Resources:   res,
			TypeUrl:     w.ts.typeURL,
		},
		returned: returned,
	}
}

func sameVersions(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range b {
		if av, ok := a[k]; !ok || av != v {
			return false
		}
	}
	return true
}

// deltaResponseFor decides a delta response: resources whose hash differs
// from what the client holds (ReturnedResources, seeded by the server from
// initial_resource_versions), and removed_resources for names the client holds
// and still covers (subscribed or wildcard) that no longer exist or are no
// longer visible to it. Returns nil when there is nothing to send, except for
// the first request of a full-state type (LDS/CDS), which gets an empty
// response so Envoy does not wait for initial_fetch_timeout.
func deltaResponseFor(w *watch, s *snapshot) *deltaResponse {
	returned := w.sub.ReturnedResources()
	subscribed := w.sub.SubscribedResources()
	wildcard := w.sub.IsWildcard()

	var send []*discovery.Resource
	for _, e := range scope(s, wildcard, subscribed) {
		if v, ok := returned[e.name]; ok && v == e.version {
			continue
		}
		send = append(send, e.res)
	}
	var removed []string
	for n := range returned {
		_, named := subscribed[n]
		if !wildcard && !named {
			continue // not covered any more; the server forgets it
		}
		if e, ok := s.entries[n]; ok && visible(e, subscribed) {
			continue
		}
		removed = append(removed, n)
	}
	if len(send) == 0 && len(removed) == 0 && !(w.first && w.ts.fullState) {
		return nil
	}
	slices.Sort(removed)
	next := make(map[string]string, len(returned)+len(send))
	maps.Copy(next, returned)
	for _, r := range send {
		next[r.Name] = r.Version
	}
	for _, n := range removed {
		delete(next, n)
	}
	return newDeltaResponse(w, s, send, removed, next)
}

// newDeltaResponse is the delta response carrying send and removed, after
// which the client holds next.
func newDeltaResponse(w *watch, s *snapshot, send []*discovery.Resource, removed []string, next map[string]string) *deltaResponse {
	if send == nil {
		send = []*discovery.Resource{}
	}
	return &deltaResponse{
		req: w.dreq,
		resp: &discovery.DeltaDiscoveryResponse{
			SystemVersionInfo: s.version,
			Resources:         send,
			RemovedResources:  removed,
			TypeUrl:           w.ts.typeURL,
		},
		returned: next,
	}
}

// fetch serves a REST request from the current snapshot.
func (c *Cache) fetch(req *gcpcache.Request) (gcpcache.Response, error) {
	typeURL := req.GetTypeUrl()
	s := c.snapshotOf(c.GroupOf(req.GetNode()), typeURL)
	if req.GetVersionInfo() == s.version {
		return nil, &types.SkipFetchError{}
	}
	subscribed := map[string]struct{}{}
	wildcard := len(req.GetResourceNames()) == 0
	for _, n := range req.GetResourceNames() {
		if n == "*" {
			wildcard = true
		} else {
			subscribed[n] = struct{}{}
		}
	}
	covered := scope(s, wildcard, subscribed)
	res := make([]*anypb.Any, 0, len(covered))
	returned := make(map[string]string, len(covered))
	for _, e := range covered {
		res = append(res, e.any)
		returned[e.name] = e.version
	}
	return &sotwResponse{
		req: req,
		resp: &discovery.DiscoveryResponse{
			VersionInfo: s.version,
			Resources:   res,
			TypeUrl:     typeURL,
		},
		returned: returned,
	}, nil
}

// sortedNames returns a sorted copy of names (which may be a change log's).
func sortedNames(names []string) []string {
	out := slices.Clone(names)
	slices.Sort(out)
	return out
}

// deltaIncremental is deltaResponseFor for a client in sync with an earlier
// snapshot, changed being every name changed since: only those can differ.
func deltaIncremental(w *watch, s *snapshot, changed []string, inPlace bool) (*deltaResponse, *edit) {
	returned := w.sub.ReturnedResources()
	subscribed := w.sub.SubscribedResources()
	wildcard := w.sub.IsWildcard()

	var send []*discovery.Resource
	var removed []string
	for _, n := range sortedNames(changed) {
		if _, named := subscribed[n]; !wildcard && !named {
			continue
		}
		if e, ok := s.entries[n]; ok && visible(e, subscribed) {
			if v, ok := returned[n]; !ok || v != e.version {
				send = append(send, e.res)
			}
			continue
		}
		if _, held := returned[n]; held {
			removed = append(removed, n)
		}
	}
	if len(send) == 0 && len(removed) == 0 {
		return nil, nil
	}
	next, ed := nextMap(returned, inPlace)
	for _, r := range send {
		ed.set(next, r.Name, r.Version)
	}
	for _, n := range removed {
		ed.del(next, n)
	}
	return newDeltaResponse(w, s, send, removed, next), ed
}

// sotwIncremental is sotwResponseFor for a client in sync with an earlier
// snapshot, changed being every name changed since. inSync reports, when
// there is nothing to send, whether the client is in sync with s: not when
// a held resource was removed, which SotW cannot express for these types and
// which must leave the returned map with the next response (as the full
// evaluation does), so the change is replayed again then.
func sotwIncremental(w *watch, s *snapshot, changed []string, inPlace bool) (r *sotwResponse, ed *edit, inSync bool) {
	returned := w.sub.ReturnedResources()
	subscribed := w.sub.SubscribedResources()
	wildcard := w.sub.IsWildcard()

	covers := func(n string) (*entry, bool) {
		if _, named := subscribed[n]; !wildcard && !named {
			return nil, false
		}
		e, ok := s.entries[n]
		if ok && visible(e, subscribed) {
			return e, true
		}
		return nil, true
	}
	if w.ts.fullState {
		// Full-state responses carry everything: replay only decides whether
		// one is due.
		for _, n := range changed {
			_, held := returned[n]
			if _, cov := covers(n); cov || held {
				return sotwResponseFor(w, s), nil, true
			}
		}
		return nil, nil, true
	}
	var send []*entry
	var gone []string
	for _, n := range sortedNames(changed) {
		e, cov := covers(n)
		if !cov {
			continue
		}
		if e == nil {
			if _, held := returned[n]; held {
				gone = append(gone, n)
			}
			continue
		}
		if v, ok := returned[n]; !ok || v != e.version {
			send = append(send, e)
		}
	}
	if len(send) == 0 {
		return nil, nil, len(gone) == 0
	}
	next, ed := nextMap(returned, inPlace)
	for _, n := range gone {
		ed.del(next, n)
	}
	res := make([]*anypb.Any, len(send))
	for i, e := range send {
		res[i] = e.any
		ed.set(next, e.name, e.version)
	}
	return newSotwResponse(w, s, res, next), ed, true
}
