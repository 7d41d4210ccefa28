package routecheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
	"sigs.k8s.io/yaml"

	// Types a configuration dump of hxds or Envoy holds and Evaluate reads.
	_ "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
)

const structTypeURL = "type.googleapis.com/google.protobuf.Struct"

// originalTypeKey marks a typed config whose type this binary does not know:
// ParseConfigDump keeps it as a Struct holding its JSON and original type URL.
const originalTypeKey = "x-routecheck-original-type"

// ParseConfigDump reads an Envoy admin ConfigDump (JSON as served by Envoy's
// /config_dump or hxds's /debug/config_dump, or the YAML of `hxds translate`)
// into Resources: static and dynamic (active) listeners, clusters, route
// configurations, secrets and, when the dump has them, endpoints. Typed
// configs of types unknown to this binary are kept (as opaque Structs) so
// they are reported as not simulated instead of failing the whole dump;
// fields unknown to this binary are ignored.
func ParseConfigDump(data []byte) (Resources, error) {
	data = bytes.TrimSpace(data)
	if len(data) > 0 && data[0] != '{' {
		j, err := yaml.YAMLToJSON(data)
		if err != nil {
			return nil, fmt.Errorf("config dump: %w", err)
		}
		data = j
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("config dump: %w", err)
	}
	doc = opaqueUnknownTypes(doc)
	data, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("config dump: %w", err)
	}
	cd := &adminv3.ConfigDump{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(data, cd); err != nil {
		return nil, fmt.Errorf("config dump: %w", err)
	}

	res := Resources{}
	var errs []error
	put := func(typeURL string, a *anypb.Any) {
		if a == nil {
			return
		}
		m, err := a.UnmarshalNew()
		if err != nil {
			errs = append(errs, fmt.Errorf("config dump: %s: %w", a.GetTypeUrl(), err))
			return
		}
		name := resourceName(m)
		if res[typeURL] == nil {
			res[typeURL] = map[string]proto.Message{}
		}
		res[typeURL][name] = m
	}
	for _, c := range cd.GetConfigs() {
		m, err := c.UnmarshalNew()
		if err != nil {
			continue // a section this binary does not know (e.g. bootstrap): not needed
		}
		switch d := m.(type) {
		case *adminv3.ListenersConfigDump:
			ensure(res, resourcev3.ListenerType)
			for _, l := range d.GetStaticListeners() {
				put(resourcev3.ListenerType, l.GetListener())
			}
			for _, l := range d.GetDynamicListeners() {
				put(resourcev3.ListenerType, l.GetActiveState().GetListener())
			}
		case *adminv3.ClustersConfigDump:
			ensure(res, resourcev3.ClusterType)
			for _, c := range d.GetStaticClusters() {
				put(resourcev3.ClusterType, c.GetCluster())
			}
			for _, c := range d.GetDynamicActiveClusters() {
				put(resourcev3.ClusterType, c.GetCluster())
			}
		case *adminv3.RoutesConfigDump:
			ensure(res, resourcev3.RouteType)
			for _, r := range d.GetStaticRouteConfigs() {
				put(resourcev3.RouteType, r.GetRouteConfig())
			}
			for _, r := range d.GetDynamicRouteConfigs() {
				put(resourcev3.RouteType, r.GetRouteConfig())
			}
		case *adminv3.SecretsConfigDump:
			ensure(res, resourcev3.SecretType)
			for _, s := range d.GetStaticSecrets() {
				put(resourcev3.SecretType, s.GetSecret())
			}
			for _, s := range d.GetDynamicActiveSecrets() {
				put(resourcev3.SecretType, s.GetSecret())
			}
		case *adminv3.EndpointsConfigDump:
			ensure(res, resourcev3.EndpointType)
			for _, e := range d.GetStaticEndpointConfigs() {
				put(resourcev3.EndpointType, e.GetEndpointConfig())
			}
			for _, e := range d.GetDynamicEndpointConfigs() {
				put(resourcev3.EndpointType, e.GetEndpointConfig())
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if len(res[resourcev3.ListenerType]) == 0 {
		return nil, fmt.Errorf("config dump has no listeners")
	}
	return res, nil
}

func resourceName(m proto.Message) string {
	if n, ok := m.(interface{ GetName() string }); ok && n.GetName() != "" {
		return n.GetName()
	}
	if c, ok := m.(interface{ GetClusterName() string }); ok {
		return c.GetClusterName()
	}
	return ""
}

// opaqueUnknownTypes replaces every JSON Any whose type is not registered in
// this binary by a Struct Any holding the same fields and the original type.
func opaqueUnknownTypes(v any) any {
	switch x := v.(type) {
	case map[string]any:
		if t, ok := x["@type"].(string); ok {
			if _, err := protoregistry.GlobalTypes.FindMessageByURL(t); err != nil {
				value := map[string]any{originalTypeKey: t}
				for k, f := range x {
					if k != "@type" {
						value[k] = f
					}
				}
				return map[string]any{"@type": structTypeURL, "value": value}
			}
		}
		for k, f := range x {
			x[k] = opaqueUnknownTypes(f)
		}
		return x
	case []any:
		for i, f := range x {
			x[i] = opaqueUnknownTypes(f)
		}
		return x
	}
	return v
}

// originalType returns the type URL of a typed config kept opaque by ParseConfigDump.
func originalType(m proto.Message) string {
	s, ok := m.(*structpb.Struct)
	if !ok {
		return ""
	}
	return s.GetFields()[originalTypeKey].GetStringValue()
}

// ensure records that the resources include a type, even without any resource.
func ensure(res Resources, typeURL string) {
	if res[typeURL] == nil {
		res[typeURL] = map[string]proto.Message{}
	}
}
