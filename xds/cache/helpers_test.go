package cache

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	gcpcache "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/stream/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
)

const (
	cdsType = resource.ClusterType
	edsType = resource.EndpointType
	ldsType = resource.ListenerType
	rdsType = resource.RouteType
)

func makeCluster(name string, timeoutSec int64) *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 name,
		ConnectTimeout:       durationpb.New(time.Duration(timeoutSec) * time.Second),
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig: &clusterv3.Cluster_EdsClusterConfig{
			ServiceName: name,
			EdsConfig:   &core.ConfigSource{ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}}},
		},
	}
}

func makeCLA(name string, ports ...uint32) *endpointv3.ClusterLoadAssignment {
	var lbs []*endpointv3.LbEndpoint
	for _, p := range ports {
		lbs = append(lbs, &endpointv3.LbEndpoint{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
			Address: &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
				Address: "10.0.0.1", PortSpecifier: &core.SocketAddress_PortValue{PortValue: p},
			}}},
		}}})
	}
	return &endpointv3.ClusterLoadAssignment{
		ClusterName: name,
		Endpoints:   []*endpointv3.LocalityLbEndpoints{{LbEndpoints: lbs}},
	}
}

func makeRoute(name, cluster string) *routev3.RouteConfiguration {
	return &routev3.RouteConfiguration{
		Name: name,
		VirtualHosts: []*routev3.VirtualHost{{
			Name:    name,
			Domains: []string{"*"},
			Routes: []*routev3.Route{{
				Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
				Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: cluster}}},
			}},
		}},
	}
}

func makeListener(port uint32) *listenerv3.Listener {
	return &listenerv3.Listener{
		Name: "0.0.0.0_" + strconv.Itoa(int(port)),
		Address: &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
			Address: "0.0.0.0", PortSpecifier: &core.SocketAddress_PortValue{PortValue: port},
		}}},
	}
}

func makeAPIListener(name string) *listenerv3.Listener {
	hcm, _ := anypb.New(&routev3.RouteConfiguration{Name: "placeholder"}) // content is irrelevant here
	return &listenerv3.Listener{Name: name, ApiListener: &listenerv3.ApiListener{ApiListener: hcm}}
}

func msgs[T proto.Message](items ...T) map[string]proto.Message {
	out := map[string]proto.Message{}
	for _, m := range items {
		out[gcpcache.GetResourceName(m)] = m
	}
	return out
}

func mustSet(t testing.TB, c *Cache, group, typeURL string, res map[string]proto.Message) bool {
	t.Helper()
	changed, err := c.SetResources(group, typeURL, res)
	if err != nil {
		t.Fatalf("SetResources: %v", err)
	}
	return changed
}

// sotwClient drives the cache the way go-control-plane's SotW server does:
// one subscription per type, a new watch per request, returned resources
// recorded when a response is "sent", stale requests not modelled.
type sotwClient struct {
	t       testing.TB
	c       *Cache
	node    *core.Node
	typeURL string

	sub     stream.Subscription
	started bool
	nonce   int
	last    *discovery.DiscoveryResponse
	ch      chan gcpcache.Response
	cancel  func()
}

func newSotwClient(t testing.TB, c *Cache, cluster, typeURL string) *sotwClient {
	return &sotwClient{t: t, c: c, typeURL: typeURL, node: &core.Node{Id: "node-" + cluster, Cluster: cluster}}
}

func (s *sotwClient) request(names []string, nack bool) {
	s.t.Helper()
	req := &discovery.DiscoveryRequest{Node: s.node, TypeUrl: s.typeURL, ResourceNames: names}
	if s.last != nil {
		req.ResponseNonce = s.last.GetNonce()
		req.VersionInfo = s.last.GetVersionInfo()
		if nack {
			req.ErrorDetail = &status.Status{Code: 3, Message: "rejected"}
			req.VersionInfo = "" // previous accepted version; irrelevant to the cache
		}
	}
	if s.cancel != nil {
		s.cancel()
	}
	if !s.started {
		s.sub = stream.NewSotwSubscription(names, true)
		s.started = true
	} else {
		s.sub.SetResourceSubscription(names)
	}
	s.ch = make(chan gcpcache.Response, 1)
	cancel, err := s.c.CreateWatch(req, s.sub, s.ch)
	if err != nil {
		s.t.Fatalf("CreateWatch: %v", err)
	}
	s.cancel = cancel
}

// expect waits for the response and "sends" it.
func (s *sotwClient) expect() *discovery.DiscoveryResponse {
	s.t.Helper()
	select {
	case r := <-s.ch:
		out, err := r.GetDiscoveryResponse()
		if err != nil {
			s.t.Fatal(err)
		}
		s.nonce++
		out.Nonce = strconv.Itoa(s.nonce) // the server writes the nonce into the response it sends
		out = proto.CloneOf(out)          // the test keeps it
		s.sub.SetReturnedResources(r.GetReturnedResources())
		s.last = out
		return out
	case <-time.After(2 * time.Second):
		s.t.Fatalf("%s: no response", s.typeURL)
		return nil
	}
}

func (s *sotwClient) expectNone() {
	s.t.Helper()
	select {
	case r := <-s.ch:
		out, _ := r.GetDiscoveryResponse()
		s.t.Fatalf("%s: unexpected response %v", s.typeURL, names(out.GetResources()))
	case <-time.After(30 * time.Millisecond):
	}
}

type deltaClient struct {
	t       testing.TB
	c       *Cache
	node    *core.Node
	typeURL string

	sub     stream.Subscription
	started bool
	nonce   int
	last    *discovery.DeltaDiscoveryResponse
	ch      chan gcpcache.DeltaResponse
	cancel  func()
}

func newDeltaClient(t testing.TB, c *Cache, cluster, typeURL string) *deltaClient {
	return &deltaClient{t: t, c: c, typeURL: typeURL, node: &core.Node{Id: "node-" + cluster, Cluster: cluster},
		ch: make(chan gcpcache.DeltaResponse, 20)}
}

func (d *deltaClient) request(subscribe, unsubscribe []string, initial map[string]string, nack bool) {
	d.t.Helper()
	req := &discovery.DeltaDiscoveryRequest{Node: d.node, TypeUrl: d.typeURL,
		ResourceNamesSubscribe: subscribe, ResourceNamesUnsubscribe: unsubscribe, InitialResourceVersions: initial}
	if d.last != nil {
		req.ResponseNonce = d.last.GetNonce()
		if nack {
			req.ErrorDetail = &status.Status{Code: 3, Message: "rejected"}
		}
	}
	if d.cancel != nil {
		d.cancel()
	}
	if !d.started {
		d.sub = stream.NewDeltaSubscription(subscribe, unsubscribe, initial, true)
		d.started = true
	} else {
		d.sub.UpdateResourceSubscriptions(subscribe, unsubscribe)
	}
	cancel, err := d.c.CreateDeltaWatch(req, d.sub, d.ch)
	if err != nil {
		d.t.Fatalf("CreateDeltaWatch: %v", err)
	}
	d.cancel = cancel
}

func (d *deltaClient) expect() *discovery.DeltaDiscoveryResponse {
	d.t.Helper()
	select {
	case r := <-d.ch:
		out, err := r.GetDeltaDiscoveryResponse()
		if err != nil {
			d.t.Fatal(err)
		}
		d.nonce++
		out.Nonce = strconv.Itoa(d.nonce) // as the server does
		out = proto.CloneOf(out)
		d.sub.SetReturnedResources(r.GetReturnedResources())
		d.last = out
		return out
	case <-time.After(2 * time.Second):
		d.t.Fatalf("%s: no delta response", d.typeURL)
		return nil
	}
}

func (d *deltaClient) expectNone() {
	d.t.Helper()
	select {
	case r := <-d.ch:
		out, _ := r.GetDeltaDiscoveryResponse()
		d.t.Fatalf("%s: unexpected delta response %v removed %v", d.typeURL, deltaNames(out.GetResources()), out.GetRemovedResources())
	case <-time.After(30 * time.Millisecond):
	}
}

// names decodes the names of SotW resources.
func names(res []*anypb.Any) []string {
	out := []string{}
	for _, a := range res {
		m, err := a.UnmarshalNew()
		if err != nil {
			panic(err)
		}
		out = append(out, gcpcache.GetResourceName(m))
	}
	return out
}

func deltaNames(res []*discovery.Resource) []string {
	out := []string{}
	for _, r := range res {
		out = append(out, r.GetName())
	}
	return out
}

func eq[T comparable](t testing.TB, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: got %v, want %v", what, got, want)
	}
}

func eqList(t testing.TB, what string, got, want []string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s: got %v, want %v", what, got, want)
	}
}
