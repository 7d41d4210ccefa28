package adsclient

import (
	"maps"
	"slices"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// Resource is one resource the client holds.
type Resource struct {
	Name string
	// Version is the resource's own version (delta xDS only; empty for
	// state-of-the-world, whose versions are per type).
	Version string
	// Message is the decoded resource: *listenerv3.Listener,
	// *clusterv3.Cluster, *routev3.RouteConfiguration,
	// *endpointv3.ClusterLoadAssignment, *tlsv3.Secret,
	// *corev3.TypedExtensionConfig. Shared between snapshots: do not modify.
	Message proto.Message
	// Any is the resource as received. Shared: do not modify.
	Any *anypb.Any
}

// TypeState is what the client knows about one resource type.
type TypeState struct {
	TypeURL string
	// Wildcard is true for LDS and CDS, which are subscribed by wildcard.
	Wildcard bool
	// Names are the resource names explicitly subscribed, sorted: for RDS,
	// EDS, SDS and ECDS the names referenced by the held listeners and
	// clusters. Empty for wildcard types.
	Names []string
	// Version is the version_info (delta: system_version_info) of the last
	// accepted response; it is what the client sends back in requests.
	Version string
	// Nonce is the nonce of the last response received, accepted or not.
	Nonce string
	// Resources held, by name. The map is never modified once published in
	// a Snapshot: do not modify it.
	Resources map[string]*Resource
	// Responses counts responses received for this type; ACKs and NACKs
	// how they were answered (Responses == ACKs + NACKs).
	Responses, ACKs, NACKs int
	// LastNACK is the error message of the last NACK, "" if none.
	LastNACK string
}

// Snapshot is a consistent copy of the client's state. It shares the (never
// modified) resource maps with the client, so taking one is cheap.
type Snapshot struct {
	// Types by type URL: every type subscribed or received.
	Types map[string]TypeState
	// Streams is the number of ADS streams opened so far (reconnects add one).
	Streams int
	// Connected is true while a stream is open.
	Connected bool
	// DroppedEvents counts events not delivered because the Events channel
	// was full.
	DroppedEvents int
}

// Type returns the state of one type (the zero TypeState when unknown).
func (s Snapshot) Type(typeURL string) TypeState { return s.Types[typeURL] }

// Version returns the last accepted version of a type.
func (s Snapshot) Version(typeURL string) string { return s.Types[typeURL].Version }

// Names returns the names of the held resources of a type, sorted.
func (s Snapshot) Names(typeURL string) []string {
	return slices.Sorted(maps.Keys(s.Types[typeURL].Resources))
}

// Has reports whether the client holds a resource.
func (s Snapshot) Has(typeURL, name string) bool {
	_, ok := s.Types[typeURL].Resources[name]
	return ok
}

// Message returns a held resource, or nil.
func (s Snapshot) Message(typeURL, name string) proto.Message {
	if r := s.Types[typeURL].Resources[name]; r != nil {
		return r.Message
	}
	return nil
}

// Messages returns the held resources of a type by name.
func (s Snapshot) Messages(typeURL string) map[string]proto.Message {
	res := s.Types[typeURL].Resources
	out := make(map[string]proto.Message, len(res))
	for n, r := range res {
		out[n] = r.Message
	}
	return out
}

// ByType returns every held resource by type URL and name: the shape
// translate/envoy.Check takes.
func (s Snapshot) ByType() map[string]map[string]proto.Message {
	out := make(map[string]map[string]proto.Message, len(s.Types))
	for t := range s.Types {
		out[t] = s.Messages(t)
	}
	return out
}

// Listener returns a held listener, or nil.
func (s Snapshot) Listener(name string) *listenerv3.Listener {
	m, _ := s.Message(resourcev3.ListenerType, name).(*listenerv3.Listener)
	return m
}

// Cluster returns a held cluster, or nil.
func (s Snapshot) Cluster(name string) *clusterv3.Cluster {
	m, _ := s.Message(resourcev3.ClusterType, name).(*clusterv3.Cluster)
	return m
}

// Route returns a held route configuration, or nil.
func (s Snapshot) Route(name string) *routev3.RouteConfiguration {
	m, _ := s.Message(resourcev3.RouteType, name).(*routev3.RouteConfiguration)
	return m
}

// Endpoints returns a held cluster load assignment, or nil.
func (s Snapshot) Endpoints(name string) *endpointv3.ClusterLoadAssignment {
	m, _ := s.Message(resourcev3.EndpointType, name).(*endpointv3.ClusterLoadAssignment)
	return m
}

// Secret returns a held secret, or nil.
func (s Snapshot) Secret(name string) *tlsv3.Secret {
	m, _ := s.Message(resourcev3.SecretType, name).(*tlsv3.Secret)
	return m
}

// Event describes one response the client received and how it answered.
type Event struct {
	// Stream is the 1-based number of the stream it arrived on.
	Stream  int
	TypeURL string
	// Version is the response's version_info (delta: system_version_info).
	Version string
	Nonce   string
	// Resources are the names of the resources the response carried, sorted.
	Resources []string
	// Removed are the names the response removed, sorted: delta
	// removed_resources; for state-of-the-world LDS and CDS, held names
	// missing from the new full state. Empty for a NACKed response.
	Removed []string
	// NACK is true when the client rejected the response; Error says why.
	NACK  bool
	Error string
	// Received is when the response had been read from the stream and
	// decoded, just before the client applied and answered it.
	Received time.Time
}
