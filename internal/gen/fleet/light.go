package fleet

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// lightClient is a cheap simulated Envoy for measuring the server rather
// than the clients: it follows the same ADS flow as adsclient (wildcard CDS
// and LDS, then EDS/RDS/SDS by the names they reference, ACK every
// response) but decodes only listeners and clusters (to find those names);
// routes, endpoints and secrets are kept as received bytes, named by their
// first field, and checked with Check.Raw. It never NACKs.
type lightClient struct {
	ads    discoverygrpc.AggregatedDiscoveryServiceClient
	node   *corev3.Node
	delta  bool
	events chan event

	mu      sync.Mutex
	types   map[string]*lightType
	streams int
	dropped int
}

type lightType struct {
	wildcard  bool
	version   string
	nonce     string
	names     map[string]bool // dependent types: subscribed names
	sorted    []string        // names, sorted (SotW requests carry them all)
	requested bool
	acks      int
	raw       map[string][]byte // name → encoded resource
	refs      map[string][]ref  // wildcard types: name → references
}

type ref struct{ typeURL, name string }

var (
	lightWildcard  = []string{resourcev3.ClusterType, resourcev3.ListenerType}
	lightDependent = []string{resourcev3.EndpointType, resourcev3.SecretType, resourcev3.RouteType}
)

func newLightClient(cc grpc.ClientConnInterface, node *corev3.Node, delta bool) *lightClient {
	c := &lightClient{
		ads: discoverygrpc.NewAggregatedDiscoveryServiceClient(cc), node: node, delta: delta,
		events: make(chan event, 4096), types: map[string]*lightType{},
	}
	for _, t := range lightWildcard {
		c.types[t] = &lightType{wildcard: true, raw: map[string][]byte{}, refs: map[string][]ref{}}
	}
	for _, t := range lightDependent {
		c.types[t] = &lightType{names: map[string]bool{}, raw: map[string][]byte{}}
	}
	return c
}

func (c *lightClient) nextEvent(ctx context.Context) (event, bool) {
	select {
	case ev := <-c.events:
		return ev, true
	case <-ctx.Done():
		return event{}, false
	}
}

func (c *lightClient) emit(ev event) {
	select {
	case c.events <- ev:
	default:
		c.mu.Lock()
		c.dropped++
		c.mu.Unlock()
	}
}

// lightStream abstracts the two protocols.
type lightStream interface {
	subscribe(typeURL string, lt *lightType, added, removed []string) error
	ack(typeURL string, lt *lightType) error
	// recv returns the type, version, nonce, (name, bytes) pairs, removed names.
	recv() (typeURL, version, nonce string, names []string, raws [][]byte, removed []string, err error)
}

func (c *lightClient) run(ctx context.Context) error {
	c.mu.Lock()
	c.streams++
	c.mu.Unlock()
	var st lightStream
	if c.delta {
		s, err := c.ads.DeltaAggregatedResources(ctx)
		if err != nil {
			return err
		}
		st = &lightDelta{c: c, s: s}
	} else {
		s, err := c.ads.StreamAggregatedResources(ctx)
		if err != nil {
			return err
		}
		st = &lightSotw{c: c, s: s}
	}
	for _, t := range lightWildcard {
		c.mu.Lock()
		lt := c.types[t]
		lt.requested = true
		c.mu.Unlock()
		if err := st.subscribe(t, lt, nil, nil); err != nil {
			return err
		}
	}
	for {
		t, version, nonce, names, raws, removed, err := st.recv()
		if err != nil {
			return err
		}
		received := time.Now()
		c.mu.Lock()
		lt := c.types[t]
		if lt == nil || !lt.requested {
			c.mu.Unlock()
			continue
		}
		var next map[string][]byte
		if lt.wildcard && !c.delta {
			next = make(map[string][]byte, len(names))
		} else {
			next = maps.Clone(lt.raw)
			for _, n := range removed {
				delete(next, n)
			}
		}
		for i, n := range names {
			if lt.wildcard || lt.names[n] {
				next[n] = raws[i]
			}
		}
		var refsErr error
		if lt.wildcard {
			lt.refs, refsErr = refsOf(t, next, lt.raw, lt.refs)
		}
		lt.version, lt.nonce, lt.raw = version, nonce, next
		lt.acks++
		c.mu.Unlock()
		if refsErr != nil {
			return refsErr
		}
		if err := st.ack(t, lt); err != nil {
			return err
		}
		if lt.wildcard {
			if err := c.resubscribe(st); err != nil {
				return err
			}
		}
		slices.Sort(names)
		c.emit(event{typeURL: t, names: names, received: received})
	}
}

// refsOf returns the references of every held listener or cluster,
// decoding only those whose bytes differ from oldRaw.
func refsOf(typeURL string, held, oldRaw map[string][]byte, oldRefs map[string][]ref) (map[string][]ref, error) {
	out := make(map[string][]ref, len(held))
	for name, raw := range held {
		if r, ok := oldRefs[name]; ok && bytes.Equal(oldRaw[name], raw) {
			out[name] = r
			continue
		}
		var rs []ref
		switch typeURL {
		case resourcev3.ListenerType:
			l := &listenerv3.Listener{}
			if err := proto.Unmarshal(raw, l); err != nil {
				return nil, fmt.Errorf("listener %q: %w", name, err)
			}
			for _, fc := range l.GetFilterChains() {
				if ts := fc.GetTransportSocket().GetTypedConfig(); ts != nil {
					tls := &tlsv3.DownstreamTlsContext{}
					if ts.UnmarshalTo(tls) == nil {
						for _, s := range tls.GetCommonTlsContext().GetTlsCertificateSdsSecretConfigs() {
							rs = append(rs, ref{resourcev3.SecretType, s.GetName()})
						}
					}
				}
				for _, f := range fc.GetFilters() {
					hcm := &hcmv3.HttpConnectionManager{}
					if f.GetTypedConfig().UnmarshalTo(hcm) == nil && hcm.GetRds() != nil {
						rs = append(rs, ref{resourcev3.RouteType, hcm.GetRds().GetRouteConfigName()})
					}
				}
			}
		case resourcev3.ClusterType:
			cl := &clusterv3.Cluster{}
			if err := proto.Unmarshal(raw, cl); err != nil {
				return nil, fmt.Errorf("cluster %q: %w", name, err)
			}
			if cl.GetType() == clusterv3.Cluster_EDS {
				n := cl.GetEdsClusterConfig().GetServiceName()
				if n == "" {
					n = cl.GetName()
				}
				rs = append(rs, ref{resourcev3.EndpointType, n})
			}
		}
		out[name] = rs
	}
	return out, nil
}

// resubscribe recomputes the names of the dependent types and sends changes.
func (c *lightClient) resubscribe(st lightStream) error {
	want := map[string]map[string]bool{}
	c.mu.Lock()
	for _, t := range lightWildcard {
		for _, rs := range c.types[t].refs {
			for _, r := range rs {
				if want[r.typeURL] == nil {
					want[r.typeURL] = map[string]bool{}
				}
				want[r.typeURL][r.name] = true
			}
		}
	}
	type sub struct {
		t              string
		lt             *lightType
		added, removed []string
	}
	var subs []sub
	for _, t := range lightDependent {
		lt := c.types[t]
		var added, removed []string
		for n := range want[t] {
			if !lt.names[n] {
				added = append(added, n)
			}
		}
		for n := range lt.names {
			if !want[t][n] {
				removed = append(removed, n)
				delete(lt.raw, n)
			}
		}
		if len(added) == 0 && len(removed) == 0 {
			continue
		}
		lt.names = want[t]
		if lt.names == nil {
			lt.names = map[string]bool{}
		}
		lt.sorted = slices.Sorted(maps.Keys(lt.names))
		lt.requested = true
		slices.Sort(added)
		slices.Sort(removed)
		subs = append(subs, sub{t, lt, added, removed})
	}
	c.mu.Unlock()
	for _, s := range subs {
		if err := st.subscribe(s.t, s.lt, s.added, s.removed); err != nil {
			return err
		}
	}
	return nil
}

func (c *lightClient) complete() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range lightWildcard {
		if c.types[t].acks == 0 {
			return false
		}
	}
	for _, t := range lightDependent {
		lt := c.types[t]
		for n := range lt.names {
			if _, ok := lt.raw[n]; !ok {
				return false
			}
		}
	}
	return true
}

func (c *lightClient) holds(ch Check) bool {
	c.mu.Lock()
	raw, ok := c.types[ch.TypeURL].raw[ch.Name]
	c.mu.Unlock()
	return ok && ch.Raw != nil && ch.Raw(raw)
}

func (c *lightClient) health() (nacks, reconnects, dropped int, last string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return 0, max(c.streams-1, 0), c.dropped, ""
}

// lightSotw speaks state-of-the-world.
type lightSotw struct {
	c        *lightClient
	s        discoverygrpc.AggregatedDiscoveryService_StreamAggregatedResourcesClient
	nodeSent bool
}

func (s *lightSotw) request(t string, lt *lightType) *discoverygrpc.DiscoveryRequest {
	s.c.mu.Lock()
	req := &discoverygrpc.DiscoveryRequest{TypeUrl: t, VersionInfo: lt.version, ResponseNonce: lt.nonce}
	if !lt.wildcard {
		req.ResourceNames = lt.sorted
	}
	s.c.mu.Unlock()
	if !s.nodeSent {
		req.Node, s.nodeSent = s.c.node, true
	}
	return req
}

func (s *lightSotw) subscribe(t string, lt *lightType, _, _ []string) error {
	return s.s.Send(s.request(t, lt))
}

func (s *lightSotw) ack(t string, lt *lightType) error { return s.s.Send(s.request(t, lt)) }

func (s *lightSotw) recv() (string, string, string, []string, [][]byte, []string, error) {
	resp, err := s.s.Recv()
	if err != nil {
		return "", "", "", nil, nil, nil, err
	}
	names := make([]string, 0, len(resp.GetResources()))
	raws := make([][]byte, 0, len(resp.GetResources()))
	for _, a := range resp.GetResources() {
		names = append(names, firstString(a))
		raws = append(raws, a.GetValue())
	}
	return resp.GetTypeUrl(), resp.GetVersionInfo(), resp.GetNonce(), names, raws, nil, nil
}

// firstString returns field 1 of an encoded resource: the name of a
// Listener, Cluster, RouteConfiguration, Secret, and the cluster_name of a
// ClusterLoadAssignment.
func firstString(a *anypb.Any) string {
	b := a.GetValue()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return ""
		}
		b = b[n:]
		if num == 1 && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return ""
			}
			return string(v)
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return ""
		}
		b = b[n:]
	}
	return ""
}

// lightDelta speaks incremental xDS.
type lightDelta struct {
	c        *lightClient
	s        discoverygrpc.AggregatedDiscoveryService_DeltaAggregatedResourcesClient
	nodeSent bool
}

func (s *lightDelta) send(req *discoverygrpc.DeltaDiscoveryRequest) error {
	if !s.nodeSent {
		req.Node, s.nodeSent = s.c.node, true
	}
	return s.s.Send(req)
}

func (s *lightDelta) subscribe(t string, _ *lightType, added, removed []string) error {
	return s.send(&discoverygrpc.DeltaDiscoveryRequest{TypeUrl: t, ResourceNamesSubscribe: added, ResourceNamesUnsubscribe: removed})
}

func (s *lightDelta) ack(t string, lt *lightType) error {
	s.c.mu.Lock()
	nonce := lt.nonce
	s.c.mu.Unlock()
	return s.send(&discoverygrpc.DeltaDiscoveryRequest{TypeUrl: t, ResponseNonce: nonce})
}

func (s *lightDelta) recv() (string, string, string, []string, [][]byte, []string, error) {
	resp, err := s.s.Recv()
	if err != nil {
		return "", "", "", nil, nil, nil, err
	}
	names := make([]string, 0, len(resp.GetResources()))
	raws := make([][]byte, 0, len(resp.GetResources()))
	for _, r := range resp.GetResources() {
		names = append(names, r.GetName())
		raws = append(raws, r.GetResource().GetValue())
	}
	return resp.GetTypeUrl(), resp.GetSystemVersionInfo(), resp.GetNonce(), names, raws, resp.GetRemovedResources(), nil
}

// ContainsString reports whether raw (an encoded message) holds s as a
// length-delimited field value anywhere, at any depth: a cheap test for a
// marker string without decoding. s must be shorter than 128 bytes.
func ContainsString(raw []byte, s string) bool {
	pat := append([]byte{byte(len(s))}, s...)
	for {
		i := bytes.Index(raw, pat)
		if i < 0 {
			return false
		}
		// The length must follow a tag of wire type "bytes" (one-byte tag),
		// or the last byte of a multi-byte tag.
		if i > 0 && (raw[i-1]&0x7 == byte(protowire.BytesType) || (i > 1 && raw[i-1]&0x80 == 0 && raw[i-2]&0x80 != 0)) {
			return true
		}
		raw = raw[i+1:]
	}
}
