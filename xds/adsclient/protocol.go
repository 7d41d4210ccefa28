package adsclient

import (
	"fmt"

	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// sotwStream speaks state-of-the-world ADS. Every request of a type carries
// the full name set (none for wildcard types: Envoy's legacy wildcard), the
// version of the last accepted response and the nonce of the last response.
type sotwStream struct {
	c        *Client
	s        discoverygrpc.AggregatedDiscoveryService_StreamAggregatedResourcesClient
	nodeSent bool
}

func (s *sotwStream) request(ts *typeState, nackErr error) *discoverygrpc.DiscoveryRequest {
	s.c.mu.Lock()
	req := &discoverygrpc.DiscoveryRequest{
		TypeUrl:       ts.typeURL,
		VersionInfo:   ts.version,
		ResponseNonce: ts.nonce,
	}
	if !ts.wildcard {
		req.ResourceNames = sortedNames(ts.names)
	}
	s.c.mu.Unlock()
	if !s.nodeSent {
		req.Node, s.nodeSent = s.c.node, true
	}
	if nackErr != nil {
		req.ErrorDetail = nackStatus(nackErr)
	}
	return req
}

func (s *sotwStream) send(req *discoverygrpc.DiscoveryRequest) error {
	if err := s.s.Send(req); err != nil {
		return fmt.Errorf("send %s request: %w", req.GetTypeUrl(), err)
	}
	return nil
}

func (s *sotwStream) subscribe(ts *typeState) error { return s.send(s.request(ts, nil)) }

func (s *sotwStream) answer(ts *typeState, nackErr error) error {
	return s.send(s.request(ts, nackErr))
}

func (s *sotwStream) resubscribe(ts *typeState, _, _ []string) error {
	return s.send(s.request(ts, nil))
}

func (s *sotwStream) recv() (*response, error) {
	resp, err := s.s.Recv()
	if err != nil {
		return nil, err
	}
	t := resp.GetTypeUrl()
	r := &response{
		typeURL: t, version: resp.GetVersionInfo(), nonce: resp.GetNonce(), raw: resp.GetResources(),
		full: t == resourcev3.ListenerType || t == resourcev3.ClusterType,
	}
	for i, a := range resp.GetResources() {
		m, err := decode(t, a)
		if err != nil {
			r.fail(fmt.Errorf("resource %d: %w", i, err))
			continue
		}
		name := nameOf(m)
		if name == "" {
			r.fail(fmt.Errorf("resource %d has no name", i))
			continue
		}
		r.names = append(r.names, name)
		r.resources = append(r.resources, &Resource{Name: name, Message: m, Any: a})
	}
	return r, nil
}

// deltaStream speaks incremental ADS: subscriptions are diffs, ACKs carry
// only the nonce.
type deltaStream struct {
	c        *Client
	s        discoverygrpc.AggregatedDiscoveryService_DeltaAggregatedResourcesClient
	nodeSent bool
}

func (s *deltaStream) send(req *discoverygrpc.DeltaDiscoveryRequest) error {
	if !s.nodeSent {
		req.Node, s.nodeSent = s.c.node, true
	}
	if err := s.s.Send(req); err != nil {
		return fmt.Errorf("send %s delta request: %w", req.GetTypeUrl(), err)
	}
	return nil
}

// subscribe sends the first request of a type: the names (none for a
// wildcard type: Envoy's legacy wildcard) and, after a reconnect, the
// versions of what the client still holds.
func (s *deltaStream) subscribe(ts *typeState) error {
	s.c.mu.Lock()
	req := &discoverygrpc.DeltaDiscoveryRequest{TypeUrl: ts.typeURL}
	if !ts.wildcard {
		req.ResourceNamesSubscribe = sortedNames(ts.names)
	}
	if len(ts.resources) > 0 {
		req.InitialResourceVersions = make(map[string]string, len(ts.resources))
		for n, r := range ts.resources {
			req.InitialResourceVersions[n] = r.Version
		}
	}
	s.c.mu.Unlock()
	return s.send(req)
}

func (s *deltaStream) answer(ts *typeState, nackErr error) error {
	s.c.mu.Lock()
	req := &discoverygrpc.DeltaDiscoveryRequest{TypeUrl: ts.typeURL, ResponseNonce: ts.nonce}
	s.c.mu.Unlock()
	if nackErr != nil {
		req.ErrorDetail = nackStatus(nackErr)
	}
	return s.send(req)
}

func (s *deltaStream) resubscribe(ts *typeState, added, removed []string) error {
	return s.send(&discoverygrpc.DeltaDiscoveryRequest{
		TypeUrl: ts.typeURL, ResourceNamesSubscribe: added, ResourceNamesUnsubscribe: removed,
	})
}

func (s *deltaStream) recv() (*response, error) {
	resp, err := s.s.Recv()
	if err != nil {
		return nil, err
	}
	t := resp.GetTypeUrl()
	r := &response{
		typeURL: t, version: resp.GetSystemVersionInfo(), nonce: resp.GetNonce(),
		removed: resp.GetRemovedResources(),
	}
	for i, res := range resp.GetResources() {
		name := res.GetName()
		if res.GetResource() == nil {
			r.fail(fmt.Errorf("resource %d (%q) has no body", i, name))
			continue
		}
		r.raw = append(r.raw, res.GetResource())
		m, err := decode(t, res.GetResource())
		if err != nil {
			r.fail(fmt.Errorf("resource %d (%q): %w", i, name, err))
			continue
		}
		if declared := nameOf(m); name == "" {
			name = declared
		} else if declared != "" && declared != name {
			r.fail(fmt.Errorf("resource %q declares the name %q", name, declared))
			continue
		}
		if name == "" {
			r.fail(fmt.Errorf("resource %d has no name", i))
			continue
		}
		r.names = append(r.names, name)
		r.resources = append(r.resources, &Resource{Name: name, Version: res.GetVersion(), Message: m, Any: res.GetResource()})
	}
	return r, nil
}

// fail records the first problem of a response; it will be NACKed.
func (r *response) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}
