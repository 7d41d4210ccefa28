// Package fleet runs many simulated Envoys (xds/adsclient clients) against
// one ADS server and measures, per client, how long it takes to get the
// full configuration and how long a change takes to reach it. The hxds-load
// tool and the in-process fan-out benchmark share it.
//
// Timing comes from the clients' events: a client "has" a version when it
// has read and decoded the response carrying it (adsclient.Event.Received),
// so the figures include the server's work, the transport and the client's
// decoding, which all share the machine's CPUs when run on one host.
package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/hxds/hxds/internal/gen"
	"github.com/hxds/hxds/xds/adsclient"
)

// Options configure a Fleet.
type Options struct {
	// Address of the ADS server (host:port).
	Address string
	// Clients is the number of simulated Envoys.
	Clients int
	// Conns is the number of gRPC connections the clients share, round
	// robin. 0 gives every client its own connection, like separate Envoys.
	Conns int
	// Delta selects incremental xDS instead of state-of-the-world.
	Delta bool
	// Cluster is node.cluster (the hxds gateway group); "" is the default group.
	Cluster string
	// NodePrefix names the nodes <NodePrefix>-<i>. Default "hxds-load".
	NodePrefix string
	// DialConcurrency bounds parallel connection set-ups. Default 64.
	DialConcurrency int
	// Light uses cheap clients that decode only listeners and clusters
	// (see lightClient) instead of adsclient, so that on a shared machine the
	// figures show the server rather than the clients' decoding.
	Light bool
	// Ready lists resources that must also be held (besides Complete) for a
	// client to count as having its full configuration.
	Ready []Check
	// Log receives client logs (nil: none).
	Log *zap.Logger
}

// Fleet is a set of running clients.
type Fleet struct {
	opts    Options
	conns   []*grpc.ClientConn
	members []*member
	started time.Time
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// simClient is one simulated Envoy: an adsclient.Client or a lightClient.
type simClient interface {
	run(ctx context.Context) error
	// nextEvent returns the next handled response; false when ctx ended.
	nextEvent(ctx context.Context) (event, bool)
	complete() bool
	holds(Check) bool
	health() (nacks, reconnects, dropped int, lastNACK string)
}

// event is one handled response.
type event struct {
	typeURL  string
	names    []string // sorted
	nack     bool
	received time.Time
}

// Check is a condition on one resource a client holds. Decoding clients
// evaluate Message, light clients Raw (on the encoded resource).
type Check struct {
	TypeURL, Name string
	Message       func(proto.Message) bool
	Raw           func([]byte) bool
}

type member struct {
	f     *Fleet
	c     simClient
	close func() error
	ready chan struct{}
	// readyAt is when Complete first held (unix ns), 0 before.
	readyAt atomic.Int64
	exp     atomic.Pointer[expectation]
	events  atomic.Int64
	failed  atomic.Pointer[error] // why the stream ended, if it did
}

type expectation struct {
	check Check
	done  chan struct{}
	at    atomic.Int64 // unix ns of the event that satisfied it
}

// Start dials every client and starts its ADS flow. Clients run until
// Close (or ctx ends).
func Start(ctx context.Context, opts Options) (*Fleet, error) {
	if opts.Clients <= 0 {
		return nil, errors.New("fleet: no clients")
	}
	if opts.NodePrefix == "" {
		opts.NodePrefix = "hxds-load"
	}
	if opts.DialConcurrency <= 0 {
		opts.DialConcurrency = 64
	}
	runCtx, cancel := context.WithCancel(context.Background())
	f := &Fleet{opts: opts, cancel: cancel, started: time.Now()}
	for range opts.Conns {
		cc, err := dialShared(ctx, opts.Address)
		if err != nil {
			f.Close()
			return nil, err
		}
		f.conns = append(f.conns, cc)
	}
	f.members = make([]*member, opts.Clients)
	sem := make(chan struct{}, opts.DialConcurrency)
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	for i := range opts.Clients {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			m, err := f.newMember(ctx, i)
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("client %d: %w", i, err)
				}
				mu.Unlock()
				return
			}
			f.members[i] = m
			f.wg.Go(func() {
				if err := m.c.run(runCtx); err != nil && runCtx.Err() == nil {
					m.failed.Store(&err)
				}
			})
			f.wg.Go(func() { m.loop(runCtx) })
		})
	}
	wg.Wait()
	if firstErr != nil {
		f.Close()
		return nil, firstErr
	}
	return f, nil
}

func (f *Fleet) newMember(ctx context.Context, i int) (*member, error) {
	opts := f.opts
	node := opts.NodePrefix + "-" + strconv.Itoa(i)
	m := &member{f: f, ready: make(chan struct{}), close: func() error { return nil }}
	if opts.Light {
		var cc grpc.ClientConnInterface
		if len(f.conns) > 0 {
			cc = f.conns[i%len(f.conns)]
		} else {
			own, err := dialShared(ctx, opts.Address)
			if err != nil {
				return nil, err
			}
			cc, m.close = own, own.Close
		}
		m.c = newLightClient(cc, &corev3.Node{Id: node, Cluster: opts.Cluster, UserAgentName: "hxds-load-light"}, opts.Delta)
		return m, nil
	}
	co := adsclient.Options{
		Address: opts.Address, NodeID: node, Cluster: opts.Cluster,
		Delta: opts.Delta, Log: opts.Log, EventBuffer: 4096,
	}
	if len(f.conns) > 0 {
		co.Conn = f.conns[i%len(f.conns)]
	}
	c, err := adsclient.Dial(ctx, co)
	if err != nil {
		return nil, err
	}
	m.c, m.close = &decoding{c}, c.Close
	return m, nil
}

// decoding adapts an adsclient.Client.
type decoding struct{ c *adsclient.Client }

func (d *decoding) run(ctx context.Context) error { return d.c.Run(ctx) }

func (d *decoding) nextEvent(ctx context.Context) (event, bool) {
	select {
	case ev := <-d.c.Events():
		return event{typeURL: ev.TypeURL, names: ev.Resources, nack: ev.NACK, received: ev.Received}, true
	case <-ctx.Done():
		return event{}, false
	}
}

func (d *decoding) complete() bool { return Complete(d.c.State()) }

func (d *decoding) holds(ch Check) bool {
	m := d.c.State().Message(ch.TypeURL, ch.Name)
	return m != nil && ch.Message != nil && ch.Message(m)
}

func (d *decoding) health() (nacks, reconnects, dropped int, last string) {
	s := d.c.State()
	for _, ts := range s.Types {
		nacks += ts.NACKs
		if ts.LastNACK != "" {
			last = ts.LastNACK
		}
	}
	return nacks, max(s.Streams-1, 0), s.DroppedEvents, last
}

func dialShared(ctx context.Context, addr string) (*grpc.ClientConn, error) {
	cc, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(256<<20)))
	if err != nil {
		return nil, err
	}
	cc.Connect()
	for s := cc.GetState(); s != connectivity.Ready; s = cc.GetState() {
		if !cc.WaitForStateChange(ctx, s) {
			cc.Close()
			return nil, fmt.Errorf("connect to %s: %w", addr, ctx.Err())
		}
	}
	return cc, nil
}

// Close stops every client and closes the connections.
func (f *Fleet) Close() {
	f.cancel()
	for _, m := range f.members {
		if m != nil {
			_ = m.close()
		}
	}
	for _, cc := range f.conns {
		cc.Close()
	}
	f.wg.Wait()
}

// Clients returns the number of clients.
func (f *Fleet) Clients() int { return len(f.members) }

// loop follows the client's events: readiness, then expectations.
func (m *member) loop(ctx context.Context) {
	for {
		ev, ok := m.c.nextEvent(ctx)
		if !ok {
			return
		}
		m.events.Add(1)
		m.onEvent(ev)
	}
}

func (m *member) onEvent(ev event) {
	if m.readyAt.Load() == 0 && m.isReady() {
		m.readyAt.Store(ev.received.UnixNano())
		close(m.ready)
	}
	e := m.exp.Load()
	if e == nil || ev.nack || ev.typeURL != e.check.TypeURL || e.at.Load() != 0 {
		return
	}
	if _, found := slices.BinarySearch(ev.names, e.check.Name); !found {
		return
	}
	if m.c.holds(e.check) {
		e.at.Store(ev.received.UnixNano())
		close(e.done)
	}
}

func (m *member) isReady() bool {
	if !m.c.complete() {
		return false
	}
	for _, ch := range m.f.opts.Ready {
		if !m.c.holds(ch) {
			return false
		}
	}
	return true
}

// Complete reports whether a client holds a full configuration: it accepted
// listeners and clusters, and holds every route, endpoint, secret and
// extension config they reference. Checked after each response is fully
// handled (subscriptions updated), it never holds while a newly referenced
// resource is still missing.
func Complete(s adsclient.Snapshot) bool {
	for _, t := range []string{resourcev3.ListenerType, resourcev3.ClusterType} {
		if s.Types[t].ACKs == 0 {
			return false
		}
	}
	for _, ts := range s.Types {
		if ts.Wildcard {
			continue
		}
		for _, n := range ts.Names {
			if _, ok := ts.Resources[n]; !ok {
				return false
			}
		}
	}
	return true
}

// WaitReady waits until every client holds its full configuration and
// returns, per client, the time from Start until then.
func (f *Fleet) WaitReady(ctx context.Context) ([]time.Duration, error) {
	out := make([]time.Duration, 0, len(f.members))
	for i, m := range f.members {
		select {
		case <-m.ready:
		case <-ctx.Done():
			if h := f.Health(); h.Failed > 0 {
				return out, fmt.Errorf("%d clients failed (%s); %d of %d ready: %w", h.Failed, h.LastFailure, f.NumReady(), len(f.members), ctx.Err())
			}
			return out, fmt.Errorf("client %d of %d has no full configuration yet (%d ready): %w", i, len(f.members), f.NumReady(), ctx.Err())
		}
		out = append(out, time.Duration(m.readyAt.Load()-f.started.UnixNano()))
	}
	return out, nil
}

// NumReady returns how many clients hold their full configuration.
func (f *Fleet) NumReady() int {
	n := 0
	for _, m := range f.members {
		if m.readyAt.Load() != 0 {
			n++
		}
	}
	return n
}

// Expectation is a change every client must see.
type Expectation struct {
	f    *Fleet
	exps []*expectation
}

// Expect starts watching every client for a response carrying
// check.Name after which check holds. Call it before making the change,
// then Wait.
func (f *Fleet) Expect(check Check) *Expectation {
	x := &Expectation{f: f, exps: make([]*expectation, len(f.members))}
	for i, m := range f.members {
		e := &expectation{check: check, done: make(chan struct{})}
		x.exps[i] = e
		m.exp.Store(e)
	}
	return x
}

// Wait blocks until every client saw the change and returns, per client,
// the time from since (when the change was made) until it had it.
func (x *Expectation) Wait(ctx context.Context, since time.Time) ([]time.Duration, error) {
	out := make([]time.Duration, 0, len(x.exps))
	var err error
	for i, e := range x.exps {
		select {
		case <-e.done:
			out = append(out, time.Duration(e.at.Load()-since.UnixNano()))
		case <-ctx.Done():
			missing := 0
			for _, e := range x.exps[i:] {
				if e.at.Load() == 0 {
					missing++
				}
			}
			err = fmt.Errorf("%d of %d clients did not see the change: %w", missing, len(x.exps), ctx.Err())
		}
		if err != nil {
			break
		}
	}
	for i, m := range x.f.members {
		m.exp.CompareAndSwap(x.exps[i], nil)
	}
	return out, err
}

// Health sums what went wrong on the clients: NACKs sent, streams opened
// beyond the first (reconnects), events dropped, streams that ended.
type Health struct {
	NACKs, Reconnects, DroppedEvents int
	LastNACK                         string
	// Failed counts clients whose stream ended; LastFailure says why.
	Failed      int
	LastFailure string
}

// Health inspects every client.
func (f *Fleet) Health() Health {
	var h Health
	for _, m := range f.members {
		n, r, d, last := m.c.health()
		h.NACKs, h.Reconnects, h.DroppedEvents = h.NACKs+n, h.Reconnects+r, h.DroppedEvents+d
		if last != "" {
			h.LastNACK = last
		}
		if err := m.failed.Load(); err != nil {
			h.Failed++
			h.LastFailure = (*err).Error()
		}
	}
	return h
}

// Summary is the distribution of a set of durations.
type Summary struct {
	N                       int
	Min, P50, P90, P99, Max time.Duration
	Mean                    time.Duration
}

// MarshalJSON writes the summary with durations in milliseconds.
func (s Summary) MarshalJSON() ([]byte, error) {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return json.Marshal(map[string]any{
		"n": s.N, "minMs": ms(s.Min), "p50Ms": ms(s.P50), "p90Ms": ms(s.P90),
		"p99Ms": ms(s.P99), "maxMs": ms(s.Max), "meanMs": ms(s.Mean),
	})
}

// Summarize computes a Summary (nearest-rank percentiles).
func Summarize(ds []time.Duration) Summary {
	if len(ds) == 0 {
		return Summary{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	rank := func(p float64) time.Duration {
		i := int(math.Ceil(p*float64(len(s)))) - 1
		return s[min(max(i, 0), len(s)-1)]
	}
	return Summary{
		N: len(s), Min: s[0], Max: s[len(s)-1], Mean: sum / time.Duration(len(s)),
		P50: rank(0.50), P90: rank(0.90), P99: rank(0.99),
	}
}

// Max returns the largest duration (0 for none).
func Max(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	return slices.Max(ds)
}

// RouteRev checks that the route configuration routeConfig holds revision rev
// for host (see gen.RouteRev; the raw form looks for the Exact path
// gen.RevPath(rev)).
func RouteRev(routeConfig, host string, rev int) Check {
	return Check{
		TypeURL: resourcev3.RouteType, Name: routeConfig,
		Message: func(m proto.Message) bool {
			rc, _ := m.(*routev3.RouteConfiguration)
			return gen.RouteRev(rc, host) == rev
		},
		Raw: func(b []byte) bool { return ContainsString(b, gen.RevPath(rev)) },
	}
}

// EndpointRev checks that the ClusterLoadAssignment of cluster holds the
// endpoint gen.EndpointAddress(rev).
func EndpointRev(cluster string, rev int) Check {
	return Check{
		TypeURL: resourcev3.EndpointType, Name: cluster,
		Message: func(m proto.Message) bool {
			cla, _ := m.(*endpointv3.ClusterLoadAssignment)
			return gen.EndpointRev(cla) == rev
		},
		Raw: func(b []byte) bool { return ContainsString(b, gen.EndpointAddress(rev)) },
	}
}
