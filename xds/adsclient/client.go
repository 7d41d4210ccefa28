// Package adsclient is an xDS client that talks to an ADS server the way
// stock Envoy does, for end-to-end tests and load tools.
//
// A Client opens one ADS stream (state-of-the-world or delta) and follows
// Envoy's flow:
//
//   - on connect it subscribes to clusters (CDS) and listeners (LDS) by
//     wildcard, the node is sent on the first request of the stream only
//     (Envoy's set_node_on_first_message_only);
//   - after each accepted CDS response it subscribes EDS to the
//     eds_cluster_config.service_name (or the cluster name) of every EDS
//     cluster, and SDS to the secrets of upstream TLS contexts; after each
//     accepted LDS response it subscribes RDS to every HTTP connection
//     manager's rds.route_config_name, SDS to every SDS secret of the filter
//     chains' TLS contexts, and ECDS to every HTTP filter with a
//     config_discovery; only references whose config source is ADS (or self)
//     count, and names no longer referenced are unsubscribed and dropped;
//   - it answers every response: an ACK carries the response's version and
//     nonce; a NACK carries the nonce, the version of the last accepted
//     response of that type and the error, and leaves the held resources
//     unchanged;
//   - state-of-the-world LDS and CDS responses replace the whole set; RDS,
//     EDS, SDS and ECDS responses update resources by name; delta responses
//     add or update resources by name and delete removed_resources.
//
// A response is NACKed, as Envoy would, when a resource cannot be decoded, has
// another type than the response, has no name or a duplicate name, or is a
// listener with an api_listener (Envoy takes those only from its bootstrap);
// and when Options.Nack returns an error. Resources of a name-subscribed type
// that were not asked for are ignored.
//
// State returns the held resources, decoded; WaitFor blocks until a condition
// on them holds; Events reports every response and its answer.
//
// Where it differs from Envoy: LDS is requested together with CDS instead of
// after the clusters warmed; a listener or cluster is never "warming" (what a
// response holds is applied at once, all or nothing); nothing beyond the
// checks above is validated (use Options.Nack, e.g. with ValidateAll, for
// more); on-demand (ODCDS/VHDS) and non-ADS config sources are not followed.
package adsclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"go.uber.org/zap"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/anypb"
)

// UserAgentName is the node.user_agent_name the client sends.
const UserAgentName = "hxds-adsclient"

// maxRecvMsgSize matches the server side: large gateways send large responses.
const maxRecvMsgSize = 256 << 20

// DefaultEventBuffer is the capacity of the Events channel when
// Options.EventBuffer is 0.
const DefaultEventBuffer = 1024

// Options configure a Client.
type Options struct {
	// Address of the ADS server, host:port, dialled without TLS. Ignored when
	// Conn is set.
	Address string
	// Conn, when set, carries the stream instead of a connection of the
	// client's own (so many clients can share one); Close leaves it open.
	Conn grpc.ClientConnInterface
	// NodeID and Cluster fill node.id and node.cluster (the hxds gateway group).
	NodeID, Cluster string
	// Delta selects the incremental protocol (DeltaAggregatedResources)
	// instead of state-of-the-world (StreamAggregatedResources).
	Delta bool
	// Nack, when set, is asked about every response that passed the client's
	// own checks; a non-nil error rejects it (NACK) with the error's text.
	// resources are the response's resources as received (delta: the added or
	// updated ones). It runs on Run's goroutine.
	Nack func(typeURL string, resources []*anypb.Any) error
	// Reconnect makes Run open a new stream, after a short backoff, when the
	// stream fails, as Envoy does; the new stream re-subscribes with what the
	// client holds (state-of-the-world: the last accepted versions; delta:
	// initial_resource_versions). Without it Run returns the stream's error.
	Reconnect bool
	// EventBuffer is the capacity of the Events channel (DefaultEventBuffer
	// when 0; negative disables events). Events that find it full are
	// dropped and counted in Snapshot.DroppedEvents.
	EventBuffer int
	// Log receives the client's logs (nil: none).
	Log *zap.Logger
}

// Client is one simulated Envoy. Its methods are safe for concurrent use.
type Client struct {
	opts    Options
	node    *corev3.Node
	conn    *grpc.ClientConn // owned, nil when Options.Conn was given
	ads     discoverygrpc.AggregatedDiscoveryServiceClient
	log     *zap.Logger
	events  chan Event
	running atomic.Bool

	mu        sync.Mutex
	types     map[string]*typeState
	streams   int
	connected bool
	dropped   int
	stopped   bool  // Run returned
	stopErr   error // what it returned
	changed   chan struct{}
}

// typeState is the client's view of one type. resources is replaced, never
// modified, once published. Guarded by Client.mu; written only by Run.
type typeState struct {
	typeURL   string
	wildcard  bool
	names     map[string]struct{}
	version   string
	nonce     string
	resources map[string]*Resource
	// refs per held resource (listeners and clusters only).
	refs map[string]refs

	responses, acks, nacks int
	lastNACK               string

	requested bool // a request for this type went out on the current stream
}

// Dial connects to opts.Address (unless opts.Conn is set) and waits until
// the connection is ready or ctx ends. Call Run to start the ADS flow and
// Close when done.
func Dial(ctx context.Context, opts Options) (*Client, error) {
	c := &Client{
		opts:    opts,
		node:    &corev3.Node{Id: opts.NodeID, Cluster: opts.Cluster, UserAgentName: UserAgentName},
		log:     opts.Log,
		types:   map[string]*typeState{},
		changed: make(chan struct{}),
	}
	if c.log == nil {
		c.log = zap.NewNop()
	}
	c.log = c.log.With(zap.String("node", opts.NodeID))
	switch {
	case opts.EventBuffer == 0:
		c.events = make(chan Event, DefaultEventBuffer)
	case opts.EventBuffer > 0:
		c.events = make(chan Event, opts.EventBuffer)
	}
	for _, t := range wildcardTypes {
		c.types[t] = &typeState{typeURL: t, wildcard: true, names: map[string]struct{}{}, resources: map[string]*Resource{}, refs: map[string]refs{}}
	}
	for _, t := range dependentTypes {
		c.types[t] = &typeState{typeURL: t, names: map[string]struct{}{}, resources: map[string]*Resource{}}
	}

	cc := opts.Conn
	if cc == nil {
		conn, err := grpc.NewClient(opts.Address,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxRecvMsgSize)))
		if err != nil {
			return nil, fmt.Errorf("adsclient: %w", err)
		}
		conn.Connect()
		for s := conn.GetState(); s != connectivity.Ready; s = conn.GetState() {
			if !conn.WaitForStateChange(ctx, s) {
				conn.Close()
				return nil, fmt.Errorf("adsclient: connect to %s: %w (last state %s)", opts.Address, ctx.Err(), s)
			}
		}
		c.conn, cc = conn, conn
	}
	c.ads = discoverygrpc.NewAggregatedDiscoveryServiceClient(cc)
	return c, nil
}

// Close closes the client's own connection, which ends Run.
func (c *Client) Close() error {
	if c.conn == nil {
		return nil
	}
	return c.conn.Close()
}

// Events returns the channel that receives an Event per response, after the
// response was answered and the state updated. It is nil when events are
// disabled. It is never closed.
func (c *Client) Events() <-chan Event { return c.events }

// State returns a snapshot of what the client holds.
func (c *Client) State() Snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.snapshotLocked()
}

func (c *Client) snapshotLocked() Snapshot {
	s := Snapshot{Types: make(map[string]TypeState, len(c.types)), Streams: c.streams, Connected: c.connected, DroppedEvents: c.dropped}
	for t, ts := range c.types {
		if !ts.requested && ts.responses == 0 && len(ts.resources) == 0 && len(ts.names) == 0 && !ts.wildcard {
			continue // never used
		}
		s.Types[t] = TypeState{
			TypeURL: t, Wildcard: ts.wildcard, Names: sortedNames(ts.names),
			Version: ts.version, Nonce: ts.nonce, Resources: ts.resources,
			Responses: ts.responses, ACKs: ts.acks, NACKs: ts.nacks, LastNACK: ts.lastNACK,
		}
	}
	return s
}

// WaitFor blocks until cond holds for the client's state, and returns that
// state. It fails when ctx ends first, or when Run has returned without the
// condition holding.
func (c *Client) WaitFor(ctx context.Context, cond func(Snapshot) bool) (Snapshot, error) {
	for {
		c.mu.Lock()
		s := c.snapshotLocked()
		changed, stopped, stopErr := c.changed, c.stopped, c.stopErr
		c.mu.Unlock()
		if cond(s) {
			return s, nil
		}
		if stopped {
			return s, fmt.Errorf("adsclient: client stopped before the condition held (Run returned %v)", stopErr)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return s, fmt.Errorf("adsclient: condition not met: %w", ctx.Err())
		}
	}
}

// notifyLocked wakes WaitFor callers; c.mu must be held.
func (c *Client) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// Run drives the ADS flow until ctx ends (it then returns nil) or, without
// Options.Reconnect, until the stream fails (it returns the error). State
// is kept across calls: calling Run again after it returned reconnects the
// way Options.Reconnect does. Run must not be called concurrently.
func (c *Client) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("adsclient: Run is already running")
	}
	defer c.running.Store(false)
	c.mu.Lock()
	c.stopped, c.stopErr = false, nil
	c.mu.Unlock()

	stop := func(err error) error {
		c.mu.Lock()
		c.stopped, c.stopErr = true, err
		c.notifyLocked()
		c.mu.Unlock()
		return err
	}
	backoff := 50 * time.Millisecond
	for {
		start := time.Now()
		err := c.runStream(ctx)
		if ctx.Err() != nil {
			return stop(nil)
		}
		if !c.opts.Reconnect {
			return stop(err)
		}
		if time.Since(start) > 5*time.Second {
			backoff = 50 * time.Millisecond
		}
		c.log.Info("ADS stream ended; reconnecting", zap.Error(err), zap.Duration("backoff", backoff))
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return stop(nil)
		case <-t.C:
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// stream is one open ADS stream of either protocol.
type stream interface {
	// subscribe sends the first request of a type on this stream.
	subscribe(ts *typeState) error
	// answer ACKs (nackErr nil) or NACKs the last response of ts.
	answer(ts *typeState, nackErr error) error
	// resubscribe tells the server the new name set of ts; added and removed
	// are the differences from the previous one.
	resubscribe(ts *typeState, added, removed []string) error
	// recv reads the next response.
	recv() (*response, error)
}

// response is a received response of either protocol, before it is applied.
type response struct {
	typeURL, version, nonce string
	raw                     []*anypb.Any
	names                   []string // as carried, for the event
	resources               []*Resource
	removed                 []string // delta only
	full                    bool     // state-of-the-world LDS/CDS: replaces the set
	err                     error    // decoding problem: NACK
}

func (c *Client) runStream(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The size limit is set per call too, for a shared Options.Conn.
	callOpts := []grpc.CallOption{grpc.WaitForReady(c.opts.Reconnect), grpc.MaxCallRecvMsgSize(maxRecvMsgSize)}
	var st stream
	if c.opts.Delta {
		s, err := c.ads.DeltaAggregatedResources(ctx, callOpts...)
		if err != nil {
			return fmt.Errorf("open delta ADS stream: %w", err)
		}
		st = &deltaStream{c: c, s: s}
	} else {
		s, err := c.ads.StreamAggregatedResources(ctx, callOpts...)
		if err != nil {
			return fmt.Errorf("open ADS stream: %w", err)
		}
		st = &sotwStream{c: c, s: s}
	}

	c.mu.Lock()
	c.streams++
	streamNo := c.streams
	c.connected = true
	for _, ts := range c.types {
		ts.requested = false
		ts.nonce = "" // nonces belong to a stream
	}
	c.notifyLocked()
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.connected = false
		c.notifyLocked()
		c.mu.Unlock()
	}()

	// Initial requests: wildcard types, then whatever is already referenced
	// (after a reconnect).
	for _, t := range append(slices.Clone(wildcardTypes), dependentTypes...) {
		c.mu.Lock()
		ts := c.types[t]
		send := ts.wildcard || len(ts.names) > 0
		if send {
			ts.requested = true
		}
		c.mu.Unlock()
		if send {
			if err := st.subscribe(ts); err != nil {
				return err
			}
		}
	}
	for {
		r, err := st.recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return errors.New("ADS stream closed by the server")
			}
			return err
		}
		if err := c.handle(st, streamNo, r); err != nil {
			return err
		}
	}
}

// handle applies (or rejects) one response, answers it, updates dependent
// subscriptions and reports the event.
func (c *Client) handle(st stream, streamNo int, r *response) error {
	received := time.Now()
	c.mu.Lock()
	ts := c.types[r.typeURL]
	asked := ts != nil && ts.requested
	c.mu.Unlock()
	if !asked {
		// Never asked for on this stream: Envoy ignores it. Answering would
		// open a (legacy wildcard) subscription the client does not want.
		c.log.Warn("response for a type not subscribed ignored", zap.String("type", r.typeURL), zap.String("nonce", r.nonce))
		return nil
	}

	nackErr := r.err
	if nackErr == nil && c.opts.Nack != nil {
		nackErr = c.opts.Nack(r.typeURL, r.raw)
	}
	var (
		next     map[string]*Resource
		nextRefs map[string]refs
		removed  []string
	)
	if nackErr == nil {
		next, nextRefs, removed, nackErr = c.nextState(ts, r)
	}

	ev := Event{
		Stream: streamNo, TypeURL: r.typeURL, Version: r.version, Nonce: r.nonce,
		Resources: sortedStrings(r.names), Received: received,
	}
	c.mu.Lock()
	ts.responses++
	ts.nonce = r.nonce
	if nackErr != nil {
		ts.nacks++
		ts.lastNACK = nackErr.Error()
		ev.NACK, ev.Error = true, nackErr.Error()
	} else {
		ts.acks++
		ts.version = r.version
		ts.resources = next
		if nextRefs != nil {
			ts.refs = nextRefs
		}
		ev.Removed = removed
	}
	c.notifyLocked()
	c.mu.Unlock()

	if nackErr != nil {
		c.log.Warn("NACK", zap.String("type", r.typeURL), zap.String("nonce", r.nonce), zap.Error(nackErr))
	} else {
		c.log.Debug("ACK", zap.String("type", r.typeURL), zap.String("version", r.version),
			zap.String("nonce", r.nonce), zap.Int("resources", len(r.names)), zap.Int("removed", len(removed)))
	}
	if err := st.answer(ts, nackErr); err != nil {
		return err
	}
	if nackErr == nil && ts.wildcard {
		if err := c.updateSubscriptions(st); err != nil {
			return err
		}
	}
	c.emit(ev)
	return nil
}

// nextState computes the resources a type holds once r is accepted, the
// references of the wildcard types, and the names removed. An error means
// the response must be NACKed.
func (c *Client) nextState(ts *typeState, r *response) (map[string]*Resource, map[string]refs, []string, error) {
	seen := make(map[string]bool, len(r.resources))
	for _, res := range r.resources {
		if seen[res.Name] {
			return nil, nil, nil, fmt.Errorf("duplicate resource name %q", res.Name)
		}
		seen[res.Name] = true
	}

	var next map[string]*Resource
	var removed []string
	if r.full {
		next = make(map[string]*Resource, len(r.resources))
		for n := range ts.resources {
			if !seen[n] {
				removed = append(removed, n)
			}
		}
	} else {
		next = maps.Clone(ts.resources)
		for _, n := range r.removed {
			delete(next, n)
		}
		removed = slices.Clone(r.removed)
	}
	for _, res := range r.resources {
		if !ts.wildcard {
			if _, ok := ts.names[res.Name]; !ok {
				continue // not asked for: ignored, as Envoy does
			}
		}
		next[res.Name] = res
	}
	slices.Sort(removed)

	if !ts.wildcard {
		return next, nil, removed, nil
	}
	nextRefs := make(map[string]refs, len(next))
	for n, res := range next {
		if old := ts.resources[n]; old == res {
			nextRefs[n] = ts.refs[n]
			continue
		}
		rf, err := resourceRefs(res.Message)
		if err != nil {
			return nil, nil, nil, err
		}
		nextRefs[n] = rf
	}
	return next, nextRefs, removed, nil
}

// updateSubscriptions recomputes the names of every dependent type from the
// held listeners and clusters and sends the changes.
func (c *Client) updateSubscriptions(st stream) error {
	want := refs{}
	c.mu.Lock()
	for _, t := range wildcardTypes {
		for _, rf := range c.types[t].refs {
			for typ, names := range rf {
				for n := range names {
					want.add(typ, n)
				}
			}
		}
	}
	type change struct {
		ts             *typeState
		first          bool
		added, removed []string
	}
	var changes []change
	for _, t := range dependentTypes {
		ts := c.types[t]
		names := want[t]
		var added, removed []string
		for n := range names {
			if _, ok := ts.names[n]; !ok {
				added = append(added, n)
			}
		}
		for n := range ts.names {
			if _, ok := names[n]; !ok {
				removed = append(removed, n)
			}
		}
		if len(added) == 0 && len(removed) == 0 {
			continue
		}
		slices.Sort(added)
		slices.Sort(removed)
		ts.names = make(map[string]struct{}, len(names))
		for n := range names {
			ts.names[n] = struct{}{}
		}
		// Envoy drops what it no longer subscribes to.
		if len(removed) > 0 {
			kept := make(map[string]*Resource, len(ts.resources))
			for n, r := range ts.resources {
				if _, ok := ts.names[n]; ok {
					kept[n] = r
				}
			}
			ts.resources = kept
		}
		first := !ts.requested
		if first && len(ts.names) == 0 {
			continue // nothing to ask for yet
		}
		ts.requested = true
		changes = append(changes, change{ts: ts, first: first, added: added, removed: removed})
	}
	if len(changes) > 0 {
		c.notifyLocked()
	}
	c.mu.Unlock()

	for _, ch := range changes {
		var err error
		if ch.first {
			err = st.subscribe(ch.ts)
		} else {
			err = st.resubscribe(ch.ts, ch.added, ch.removed)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (c *Client) emit(ev Event) {
	if c.events == nil {
		return
	}
	select {
	case c.events <- ev:
	default:
		c.mu.Lock()
		c.dropped++
		c.mu.Unlock()
	}
}

// nackStatus is the error_detail of a NACK.
func nackStatus(err error) *status.Status {
	return &status.Status{Code: int32(codes.InvalidArgument), Message: err.Error()}
}

func sortedNames(m map[string]struct{}) []string {
	if len(m) == 0 {
		return nil
	}
	return slices.Sorted(maps.Keys(m))
}

func sortedStrings(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}
