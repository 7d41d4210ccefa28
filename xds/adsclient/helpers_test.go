package adsclient

import (
	"context"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/hxds/hxds/internal/testutil"
	"github.com/hxds/hxds/xds/cache"
)

const (
	lds  = resourcev3.ListenerType
	cds  = resourcev3.ClusterType
	rds  = resourcev3.RouteType
	eds  = resourcev3.EndpointType
	sds  = resourcev3.SecretType
	ecds = resourcev3.ExtensionConfigType
)

// waitTimeout bounds every wait of these tests.
const waitTimeout = 10 * time.Second

func ads() *corev3.ConfigSource {
	return &corev3.ConfigSource{ResourceApiVersion: corev3.ApiVersion_V3, ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}}}
}

func mustAny(t testing.TB, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func hcmFilter(t testing.TB, route string) *listenerv3.Filter {
	router := &hcmv3.HttpFilter{Name: wellknown.Router, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(t, &routerv3.Router{})}}
	hcm := &hcmv3.HttpConnectionManager{
		StatPrefix:     "test",
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{ConfigSource: ads(), RouteConfigName: route}},
		HttpFilters:    []*hcmv3.HttpFilter{router},
	}
	return &listenerv3.Filter{Name: wellknown.HTTPConnectionManager, ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, hcm)}}
}

// makeListener listens on port with one HCM using route; a non-empty secret
// puts the chain behind TLS with that SDS certificate.
func makeListener(t testing.TB, name string, port uint32, route, secret string) *listenerv3.Listener {
	fc := &listenerv3.FilterChain{Filters: []*listenerv3.Filter{hcmFilter(t, route)}}
	if secret != "" {
		fc.TransportSocket = &corev3.TransportSocket{
			Name: wellknown.TransportSocketTLS,
			ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(t, &tlsv3.DownstreamTlsContext{
				CommonTlsContext: &tlsv3.CommonTlsContext{TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{{Name: secret, SdsConfig: ads()}}},
			})},
		}
	}
	return &listenerv3.Listener{
		Name: name,
		Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: "0.0.0.0", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
		}}},
		FilterChains: []*listenerv3.FilterChain{fc},
	}
}

func apiListener(t testing.TB, name, route string) *listenerv3.Listener {
	hcm := &hcmv3.HttpConnectionManager{
		StatPrefix:     "grpc",
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{ConfigSource: ads(), RouteConfigName: route}},
	}
	return &listenerv3.Listener{Name: name, ApiListener: &listenerv3.ApiListener{ApiListener: mustAny(t, hcm)}}
}

// edsCluster is an EDS cluster; an empty service makes Envoy use the cluster name.
func edsCluster(name, service string) *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 name,
		ConnectTimeout:       durationpb.New(time.Second),
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig:     &clusterv3.Cluster_EdsClusterConfig{EdsConfig: ads(), ServiceName: service},
	}
}

func staticCluster(name string) *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 name,
		ConnectTimeout:       durationpb.New(time.Second),
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC},
		LoadAssignment:       makeCLA(name, 9000),
	}
}

func makeRoute(name, cluster string) *routev3.RouteConfiguration {
	return &routev3.RouteConfiguration{
		Name: name,
		VirtualHosts: []*routev3.VirtualHost{{
			Name: name, Domains: []string{"*"},
			Routes: []*routev3.Route{{
				Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
				Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: cluster}}},
			}},
		}},
	}
}

func makeCLA(name string, ports ...uint32) *endpointv3.ClusterLoadAssignment {
	var lbs []*endpointv3.LbEndpoint
	for _, p := range ports {
		lbs = append(lbs, &endpointv3.LbEndpoint{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
			Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
				Address: "127.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: p},
			}}},
		}}})
	}
	return &endpointv3.ClusterLoadAssignment{ClusterName: name, Endpoints: []*endpointv3.LocalityLbEndpoints{{LbEndpoints: lbs}}}
}

func makeSecret(name string) *tlsv3.Secret {
	return &tlsv3.Secret{Name: name, Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
		CertificateChain: &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: "cert of " + name}},
	}}}
}

func byName[M proto.Message](items ...M) map[string]proto.Message {
	out := map[string]proto.Message{}
	for _, m := range items {
		out[nameOf(m)] = m
	}
	return out
}

func set(t testing.TB, c *cache.Cache, group, typeURL string, resources map[string]proto.Message) {
	t.Helper()
	if _, err := c.SetResources(group, typeURL, resources); err != nil {
		t.Fatal(err)
	}
}

// adsServer is go-control-plane's ADS server over an hxds cache, recording
// every request it receives.
type adsServer struct {
	addr string
	gs   *grpc.Server

	mu      sync.Mutex
	sotw    []*discovery.DiscoveryRequest
	delta   []*discovery.DeltaDiscoveryRequest
	changed chan struct{}
}

// startServer serves c on addr ("127.0.0.1:0" for any port) until the test ends.
func startServer(t testing.TB, c *cache.Cache, addr string) *adsServer {
	t.Helper()
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := &adsServer{addr: lis.Addr().String(), changed: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	cb := serverv3.CallbackFuncs{
		StreamRequestFunc: func(_ int64, r *discovery.DiscoveryRequest) error {
			s.mu.Lock()
			s.sotw = append(s.sotw, proto.Clone(r).(*discovery.DiscoveryRequest))
			close(s.changed)
			s.changed = make(chan struct{})
			s.mu.Unlock()
			return nil
		},
		StreamDeltaRequestFunc: func(_ int64, r *discovery.DeltaDiscoveryRequest) error {
			s.mu.Lock()
			s.delta = append(s.delta, proto.Clone(r).(*discovery.DeltaDiscoveryRequest))
			close(s.changed)
			s.changed = make(chan struct{})
			s.mu.Unlock()
			return nil
		},
	}
	s.gs = grpc.NewServer()
	discovery.RegisterAggregatedDiscoveryServiceServer(s.gs, serverv3.NewServer(ctx, c, cb))
	go func() { _ = s.gs.Serve(lis) }()
	t.Cleanup(func() {
		cancel()
		s.gs.Stop()
	})
	return s
}

// waitSotw waits until cond holds for the state-of-the-world requests received.
func (s *adsServer) waitSotw(t testing.TB, what string, cond func([]*discovery.DiscoveryRequest) bool) []*discovery.DiscoveryRequest {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		reqs, ch := slices.Clone(s.sotw), s.changed
		s.mu.Unlock()
		if cond(reqs) {
			return reqs
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("server: %s: not seen in %d requests: %v", what, len(reqs), reqs)
		}
	}
}

// waitDelta waits until cond holds for the delta requests received.
func (s *adsServer) waitDelta(t testing.TB, what string, cond func([]*discovery.DeltaDiscoveryRequest) bool) []*discovery.DeltaDiscoveryRequest {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		reqs, ch := slices.Clone(s.delta), s.changed
		s.mu.Unlock()
		if cond(reqs) {
			return reqs
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("server: %s: not seen in %d requests: %v", what, len(reqs), reqs)
		}
	}
}

// runner is a client's Run in the background.
type runner struct {
	done chan struct{}
	err  error
	// allowErr: the test expects Run to fail.
	allowErr bool
}

// wait returns Run's result, failing the test after waitTimeout.
func (r *runner) wait(t testing.TB) error {
	t.Helper()
	select {
	case <-r.done:
		return r.err
	case <-time.After(waitTimeout):
		t.Fatal("Run did not return")
	}
	return nil
}

// startClient dials and runs a client until the test ends.
func startClient(t testing.TB, opts Options) (*Client, *runner) {
	t.Helper()
	if opts.Log == nil {
		opts.Log = testutil.Logger(t)
	}
	dctx, dcancel := context.WithTimeout(context.Background(), waitTimeout)
	defer dcancel()
	c, err := Dial(dctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &runner{done: make(chan struct{})}
	go func() {
		r.err = c.Run(ctx)
		close(r.done)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
			if r.err != nil && !r.allowErr {
				t.Errorf("Run: %v", r.err)
			}
		case <-time.After(waitTimeout):
			t.Error("Run did not return after cancel")
		}
		_ = c.Close()
	})
	return c, r
}

func waitState(t testing.TB, c *Client, what string, cond func(Snapshot) bool) Snapshot {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	s, err := c.WaitFor(ctx, cond)
	if err != nil {
		t.Fatalf("%s: %v\nstate: %s", what, err, describe(s))
	}
	return s
}

// describe summarises a snapshot for failure messages.
func describe(s Snapshot) string {
	out := ""
	for _, t := range slices.Sorted(func(yield func(string) bool) {
		for k := range s.Types {
			if !yield(k) {
				return
			}
		}
	}) {
		ts := s.Types[t]
		out += "\n  " + t[len(resourcev3.APITypePrefix):] + " version=" + ts.Version + " names=" + join(ts.Names) + " held=" + join(s.Names(t))
		if ts.LastNACK != "" {
			out += " lastNACK=" + ts.LastNACK
		}
	}
	return out
}

func join(s []string) string {
	out := "["
	for i, n := range s {
		if i > 0 {
			out += " "
		}
		out += n
	}
	return out + "]"
}

// nextEvent returns the next event of the client, failing after waitTimeout.
func nextEvent(t testing.TB, c *Client) Event {
	t.Helper()
	select {
	case ev := <-c.Events():
		return ev
	case <-time.After(waitTimeout):
		t.Fatal("no event")
	}
	return Event{}
}

func eqStrings(t testing.TB, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

func protocols(t *testing.T, f func(t *testing.T, delta bool)) {
	t.Run("sotw", func(t *testing.T) { f(t, false) })
	t.Run("delta", func(t *testing.T) { f(t, true) })
}

// fakeADS is a scripted ADS server: tests send the responses and read the
// requests as they arrived on the wire.
type fakeADS struct {
	discovery.UnimplementedAggregatedDiscoveryServiceServer
	addr     string
	reqs     chan fakeRequest
	sotwOut  chan *discovery.DiscoveryResponse
	deltaOut chan *discovery.DeltaDiscoveryResponse
}

type fakeRequest struct {
	node    *corev3.Node
	typeURL string
	sotw    *discovery.DiscoveryRequest
	delta   *discovery.DeltaDiscoveryRequest
}

func startFake(t testing.TB) *fakeADS {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeADS{
		addr: lis.Addr().String(), reqs: make(chan fakeRequest, 1000),
		sotwOut: make(chan *discovery.DiscoveryResponse), deltaOut: make(chan *discovery.DeltaDiscoveryResponse),
	}
	gs := grpc.NewServer()
	discovery.RegisterAggregatedDiscoveryServiceServer(gs, f)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	return f
}

func (f *fakeADS) StreamAggregatedResources(s discovery.AggregatedDiscoveryService_StreamAggregatedResourcesServer) error {
	go func() {
		for {
			r, err := s.Recv()
			if err != nil {
				return
			}
			f.reqs <- fakeRequest{node: r.GetNode(), typeURL: r.GetTypeUrl(), sotw: r}
		}
	}()
	for {
		select {
		case resp := <-f.sotwOut:
			if err := s.Send(resp); err != nil {
				return err
			}
		case <-s.Context().Done():
			return nil
		}
	}
}

func (f *fakeADS) DeltaAggregatedResources(s discovery.AggregatedDiscoveryService_DeltaAggregatedResourcesServer) error {
	go func() {
		for {
			r, err := s.Recv()
			if err != nil {
				return
			}
			f.reqs <- fakeRequest{node: r.GetNode(), typeURL: r.GetTypeUrl(), delta: r}
		}
	}()
	for {
		select {
		case resp := <-f.deltaOut:
			if err := s.Send(resp); err != nil {
				return err
			}
		case <-s.Context().Done():
			return nil
		}
	}
}

// next returns the next request the fake received.
func (f *fakeADS) next(t testing.TB) fakeRequest {
	t.Helper()
	select {
	case r := <-f.reqs:
		return r
	case <-time.After(waitTimeout):
		t.Fatal("fake ADS server: no request")
	}
	return fakeRequest{}
}
