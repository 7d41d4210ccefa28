package server

import (
	"context"
	"sort"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Tracker follows every ADS stream through go-control-plane's callbacks: who
// is connected, what each was sent, what it ACKed and what it NACKed. It backs
// /debug/connections and the xDS metrics.
type Tracker struct {
	groupOf func(*corev3.Node) string
	log     *zap.Logger
	now     func() time.Time

	mu sync.Mutex
	// conns is keyed by protocol and stream id: go-control-plane numbers
	// state-of-the-world and delta streams separately, both from 1.
	conns map[streamKey]*connection

	connected *prometheus.GaugeVec
	pushes    *prometheus.CounterVec
	nacks     *prometheus.CounterVec
}

type streamKey struct {
	delta bool
	id    int64
}

type connection struct {
	id        int64
	protocol  string
	node      *corev3.Node
	connected time.Time
	types     map[string]*typeState
}

type typeState struct {
	sentVersion, sentNonce   string
	ackedVersion, ackedNonce string
	// deltaVersions maps a sent nonce to its system version: delta ACKs carry
	// only the nonce.
	deltaVersions map[string]string
	pushes        uint64
	lastNack      *Nack
}

// Nack is the last rejection an Envoy sent for one type.
type Nack struct {
	Version string    `json:"version"`
	Nonce   string    `json:"nonce"`
	Error   string    `json:"error"`
	Time    time.Time `json:"time"`
}

// TypeStatus is what one connection knows of one resource type.
type TypeStatus struct {
	TypeURL      string `json:"type_url"`
	SentVersion  string `json:"sent_version,omitempty"`
	SentNonce    string `json:"sent_nonce,omitempty"`
	AckedVersion string `json:"acked_version,omitempty"`
	AckedNonce   string `json:"acked_nonce,omitempty"`
	Pushes       uint64 `json:"pushes"`
	LastNack     *Nack  `json:"last_nack,omitempty"`
}

// Connection is one connected xDS client.
type Connection struct {
	StreamID  int64        `json:"stream_id"`
	Protocol  string       `json:"protocol"`
	NodeID    string       `json:"node_id"`
	Cluster   string       `json:"node_cluster"`
	Group     string       `json:"group"`
	UserAgent string       `json:"user_agent,omitempty"`
	Connected time.Time    `json:"connected_at"`
	Types     []TypeStatus `json:"types"`
}

// NewTracker registers the xDS metrics on reg.
func NewTracker(groupOf func(*corev3.Node) string, reg prometheus.Registerer, log *zap.Logger) *Tracker {
	t := &Tracker{
		groupOf: groupOf, log: log, now: time.Now,
		conns: map[streamKey]*connection{},
		connected: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hxds_xds_connected_proxies", Help: "xDS streams currently open, by gateway group and protocol.",
		}, []string{"group", "protocol"}),
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hxds_xds_pushes_total", Help: "xDS responses sent, by resource type.",
		}, []string{"type"}),
		nacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hxds_xds_nacks_total", Help: "xDS responses rejected by clients, by resource type.",
		}, []string{"type"}),
	}
	reg.MustRegister(t.connected, t.pushes, t.nacks)
	return t
}

// Connections returns every open stream, ordered by stream id.
func (t *Tracker) Connections() []Connection {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Connection, 0, len(t.conns))
	for _, c := range t.conns {
		if c.node == nil {
			continue // opened, but no request yet: nothing to say
		}
		conn := Connection{
			StreamID: c.id, Protocol: c.protocol, NodeID: c.node.GetId(), Cluster: c.node.GetCluster(),
			Group: t.groupOf(c.node), UserAgent: c.node.GetUserAgentName(), Connected: c.connected,
		}
		for typeURL, s := range c.types {
			conn.Types = append(conn.Types, TypeStatus{
				TypeURL: typeURL, SentVersion: s.sentVersion, SentNonce: s.sentNonce,
				AckedVersion: s.ackedVersion, AckedNonce: s.ackedNonce, Pushes: s.pushes, LastNack: s.lastNack,
			})
		}
		sort.Slice(conn.Types, func(i, j int) bool { return conn.Types[i].TypeURL < conn.Types[j].TypeURL })
		out = append(out, conn)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Protocol != out[j].Protocol {
			return out[i].Protocol > out[j].Protocol // sotw before delta
		}
		return out[i].StreamID < out[j].StreamID
	})
	return out
}

func (t *Tracker) open(k streamKey) {
	t.mu.Lock()
	defer t.mu.Unlock()
	protocol := "sotw"
	if k.delta {
		protocol = "delta"
	}
	t.conns[k] = &connection{id: k.id, protocol: protocol, connected: t.now(), types: map[string]*typeState{}}
}

func (t *Tracker) close(k streamKey) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.conns[k]
	if !ok {
		return
	}
	delete(t.conns, k)
	if c.node != nil {
		t.connected.WithLabelValues(t.groupOf(c.node), c.protocol).Dec()
		t.log.Info("xDS client disconnected", zap.Int64("stream", k.id), zap.String("protocol", c.protocol), zap.String("node", c.node.GetId()))
	}
}

// state returns the type state of a stream, recording the node on the first
// request that carries one. Callers hold t.mu.
func (t *Tracker) state(k streamKey, node *corev3.Node, typeURL string) *typeState {
	c, ok := t.conns[k]
	if !ok {
		return nil
	}
	if c.node == nil && node != nil {
		c.node = node
		t.connected.WithLabelValues(t.groupOf(node), c.protocol).Inc()
		t.log.Info("xDS client connected", zap.Int64("stream", k.id), zap.String("protocol", c.protocol),
			zap.String("node", node.GetId()), zap.String("group", t.groupOf(node)), zap.String("user_agent", node.GetUserAgentName()))
	}
	s := c.types[typeURL]
	if s == nil {
		s = &typeState{deltaVersions: map[string]string{}}
		c.types[typeURL] = s
	}
	return s
}

func (t *Tracker) nack(k streamKey, typeURL string, s *typeState, version, nonce, msg string) {
	s.lastNack = &Nack{Version: version, Nonce: nonce, Error: msg, Time: t.now()}
	t.nacks.WithLabelValues(typeURL).Inc()
	node := ""
	if c := t.conns[k]; c != nil {
		node = c.node.GetId()
	}
	t.log.Warn("xDS client rejected a response", zap.Int64("stream", k.id), zap.String("node", node),
		zap.String("type", typeURL), zap.String("nonce", nonce), zap.String("error", msg))
}

// OnStreamOpen implements server.Callbacks.
func (t *Tracker) OnStreamOpen(_ context.Context, id int64, _ string) error {
	t.open(streamKey{id: id})
	return nil
}

// OnStreamClosed implements server.Callbacks.
func (t *Tracker) OnStreamClosed(id int64, _ *corev3.Node) { t.close(streamKey{id: id}) }

// OnStreamRequest records ACKs and NACKs of state-of-the-world streams.
func (t *Tracker) OnStreamRequest(id int64, req *discovery.DiscoveryRequest) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := streamKey{id: id}
	s := t.state(k, req.GetNode(), req.GetTypeUrl())
	if s == nil || req.GetResponseNonce() == "" {
		return nil
	}
	if req.GetErrorDetail() != nil {
		t.nack(k, req.GetTypeUrl(), s, s.sentVersion, req.GetResponseNonce(), req.GetErrorDetail().GetMessage())
		return nil
	}
	s.ackedVersion, s.ackedNonce = req.GetVersionInfo(), req.GetResponseNonce()
	return nil
}

// OnStreamResponse records what a state-of-the-world stream was sent.
func (t *Tracker) OnStreamResponse(_ context.Context, id int64, req *discovery.DiscoveryRequest, resp *discovery.DiscoveryResponse) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s := t.state(streamKey{id: id}, req.GetNode(), resp.GetTypeUrl()); s != nil {
		s.sentVersion, s.sentNonce = resp.GetVersionInfo(), resp.GetNonce()
		s.pushes++
	}
	t.pushes.WithLabelValues(resp.GetTypeUrl()).Inc()
}

// OnFetchRequest implements server.Callbacks; REST fetches are not tracked.
func (t *Tracker) OnFetchRequest(context.Context, *discovery.DiscoveryRequest) error { return nil }

// OnFetchResponse implements server.Callbacks.
func (t *Tracker) OnFetchResponse(*discovery.DiscoveryRequest, *discovery.DiscoveryResponse) {}

// OnDeltaStreamOpen implements server.Callbacks.
func (t *Tracker) OnDeltaStreamOpen(_ context.Context, id int64, _ string) error {
	t.open(streamKey{delta: true, id: id})
	return nil
}

// OnDeltaStreamClosed implements server.Callbacks.
func (t *Tracker) OnDeltaStreamClosed(id int64, _ *corev3.Node) {
	t.close(streamKey{delta: true, id: id})
}

// OnStreamDeltaRequest records ACKs and NACKs of delta streams.
func (t *Tracker) OnStreamDeltaRequest(id int64, req *discovery.DeltaDiscoveryRequest) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := streamKey{delta: true, id: id}
	s := t.state(k, req.GetNode(), req.GetTypeUrl())
	if s == nil || req.GetResponseNonce() == "" {
		return nil
	}
	version := s.deltaVersions[req.GetResponseNonce()]
	delete(s.deltaVersions, req.GetResponseNonce())
	if req.GetErrorDetail() != nil {
		t.nack(k, req.GetTypeUrl(), s, version, req.GetResponseNonce(), req.GetErrorDetail().GetMessage())
		return nil
	}
	s.ackedVersion, s.ackedNonce = version, req.GetResponseNonce()
	return nil
}

// OnStreamDeltaResponse records what a delta stream was sent.
func (t *Tracker) OnStreamDeltaResponse(id int64, req *discovery.DeltaDiscoveryRequest, resp *discovery.DeltaDiscoveryResponse) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s := t.state(streamKey{delta: true, id: id}, req.GetNode(), resp.GetTypeUrl()); s != nil {
		s.sentVersion, s.sentNonce = resp.GetSystemVersionInfo(), resp.GetNonce()
		s.pushes++
		// Bound the map: a client that never ACKs must not grow it forever.
		if len(s.deltaVersions) > 64 {
			clear(s.deltaVersions)
		}
		s.deltaVersions[resp.GetNonce()] = resp.GetSystemVersionInfo()
	}
	t.pushes.WithLabelValues(resp.GetTypeUrl()).Inc()
}

// Acked reports, for one gateway group and resource type, how many open
// streams have ACKed exactly version and how many streams the group has.
// Streams of that group that never asked for the type do not count.
func (t *Tracker) Acked(group, typeURL, version string) (acked, total int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range t.conns {
		if c.node == nil || t.groupOf(c.node) != group {
			continue
		}
		s, ok := c.types[typeURL]
		if !ok {
			continue
		}
		total++
		if s.ackedVersion == version {
			acked++
		}
	}
	return acked, total
}
