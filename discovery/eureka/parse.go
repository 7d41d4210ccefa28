package eureka

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"github.com/hudl/fargo"

	"github.com/hxds/hxds/discovery"
)

// Eureka instance statuses we act on (fargo names them too).
const (
	statusUP = string(fargo.UP)
	// actionDeleted is a delta instance's actionType when it deregistered
	// (ADDED and MODIFIED both mean "this is the instance now").
	actionDeleted = "DELETED"
)

// maxWeight caps the metadata weight: Envoy requires the sum of a
// locality's endpoint weights to fit in uint32, so one instance must not
// be able to take it all.
const maxWeight = 1 << 16

// instance is what we keep of one Eureka instance, whatever its status:
// the apps hashcode of a delta check counts every status, so DOWN
// instances stay in the model even though they are never published.
type instance struct {
	id     string
	status string
	// addr is ipAddr (hostName when there is none); port the non-secure
	// port when enabled, else the secure one (secure is then true).
	addr   string
	port   uint32
	secure bool
	// usable: the instance has an address and an enabled port in range.
	usable   bool
	meta     map[string]string
	weight   uint32
	protocol string // metadata "protocol", raw
	action   string // delta actionType
}

// model is the registry as we know it: app name → instance id → instance.
type model map[string]map[string]*instance

// listing is one decoded /apps or /apps/delta response.
type listing struct {
	hashcode string
	apps     []decodedApp
	// skipped counts instances that could not be decoded; firstErr says
	// why the first one was skipped.
	skipped  int
	firstErr error
}

type decodedApp struct {
	name      string
	instances []*instance
}

// envelope is the response's outer shape. fargo's GetAppsResponse decodes
// the whole document at once, so a single malformed instance would fail
// the entire listing; we split it into raw applications and instances
// and let fargo's Instance decoder handle each instance alone.
type envelope struct {
	Applications *struct {
		Application  json.RawMessage `json:"application"`
		AppsHashcode string          `json:"apps__hashcode"`
	} `json:"applications"`
}

type rawApp struct {
	Name     string          `json:"name"`
	Instance json.RawMessage `json:"instance"`
}

// actionJSON reads the delta field fargo's Instance does not have.
type actionJSON struct {
	ActionType string `json:"actionType"`
}

// parseListing decodes an Eureka JSON apps document (full or delta). It
// fails only when the document as a whole is not an Eureka listing; bad
// applications or instances are skipped and counted.
func parseListing(body []byte, delta bool) (*listing, error) {
	// Fast path: the usual shape (arrays all the way down) in one pass,
	// without re-scanning each level's raw JSON.
	var fast fastEnvelope
	if err := json.Unmarshal(body, &fast); err == nil && fast.Applications != nil {
		l := &listing{hashcode: fast.Applications.AppsHashcode}
		for _, app := range fast.Applications.Application {
			l.addApp(app.Name, app.Instance, delta)
		}
		return l, nil
	}
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("decoding eureka apps JSON: %w", err)
	}
	// A document without "applications" is not a listing (a proxy's error
	// page, say); treating it as empty would deregister everything.
	if env.Applications == nil {
		return nil, fmt.Errorf("eureka apps JSON has no \"applications\" object")
	}
	l := &listing{hashcode: env.Applications.AppsHashcode}
	apps, err := oneOrMany(env.Applications.Application)
	if err != nil {
		return nil, fmt.Errorf("eureka applications.application: %w", err)
	}
	for _, ra := range apps {
		var app rawApp
		if err := json.Unmarshal(ra, &app); err != nil {
			l.skip(fmt.Errorf("application: %w", err))
			continue
		}
		ins, err := oneOrMany(app.Instance)
		if err != nil {
			l.skip(fmt.Errorf("application %q instances: %w", app.Name, err))
			continue
		}
		l.addApp(app.Name, ins, delta)
	}
	return l, nil
}

// fastEnvelope is the usual listing shape; a document Eureka wrote with
// a bare object for a one-element list does not fit it and takes the
// envelope path.
type fastEnvelope struct {
	Applications *struct {
		Application []struct {
			Name     string            `json:"name"`
			Instance []json.RawMessage `json:"instance"`
		} `json:"application"`
		AppsHashcode string `json:"apps__hashcode"`
	} `json:"applications"`
}

// addApp decodes one application's instances into l.
func (l *listing) addApp(name string, ins []json.RawMessage, delta bool) {
	if err := checkAppName(name); err != nil {
		l.skip(err)
		return
	}
	da := decodedApp{name: name, instances: make([]*instance, 0, len(ins))}
	for _, ri := range ins {
		in, err := decodeInstance(ri, delta)
		if err != nil {
			l.skip(fmt.Errorf("application %q: %w", name, err))
			continue
		}
		da.instances = append(da.instances, in)
	}
	l.apps = append(l.apps, da)
}

func (l *listing) skip(err error) {
	l.skipped++
	if l.firstErr == nil {
		l.firstErr = err
	}
}

// oneOrMany reads a JSON value that Eureka's (XStream-derived) encoder
// writes as an array, as a bare object when there is only one element, or
// leaves null/absent when there is none.
func oneOrMany(raw json.RawMessage) ([]json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	switch raw[0] {
	case '[':
		var out []json.RawMessage
		if err := json.Unmarshal(raw, &out); err != nil {
			return nil, err
		}
		return out, nil
	case '{':
		return []json.RawMessage{raw}, nil
	}
	return nil, fmt.Errorf("expected an object or an array, got %.20q", raw)
}

// checkAppName rejects names that cannot make a registry host.
func checkAppName(name string) error {
	if name == "" {
		return fmt.Errorf("application without a name")
	}
	if len(name) > 253 {
		return fmt.Errorf("application name %.40q... is too long", name)
	}
	for _, r := range name {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r == '/' || r == unicode.ReplacementChar {
			return fmt.Errorf("application name %q has a character a host cannot hold", name)
		}
	}
	return nil
}

// decodeInstance decodes one instance with fargo's Instance type.
func decodeInstance(raw json.RawMessage, delta bool) (in *instance, err error) {
	// fargo v1.4.0's DataCenterInfo.UnmarshalJSON dereferences a nil
	// pointer when dataCenterInfo is null or has neither name nor @class;
	// registry data must never take the process down, so that panic
	// becomes this instance's error.
	defer func() {
		if r := recover(); r != nil {
			in, err = nil, fmt.Errorf("malformed instance (decoder panic: %v)", r)
		}
	}()
	var fi fargo.Instance
	if err := json.Unmarshal(raw, &fi); err != nil {
		return nil, fmt.Errorf("instance: %w", err)
	}
	in = &instance{status: string(fi.Status)}
	if delta {
		var a actionJSON
		if err := json.Unmarshal(raw, &a); err != nil {
			return nil, fmt.Errorf("instance actionType: %w", err)
		}
		in.action = a.ActionType
	}
	meta, err := stringMetadata(fi.Metadata.Raw)
	if err != nil {
		return nil, fmt.Errorf("instance %q metadata: %w", fi.InstanceId, err)
	}
	in.meta = meta
	in.protocol = meta["protocol"]
	in.weight = weightOf(meta["weight"])

	// Eureka's instance identity (InstanceInfo.getId): instanceId, else
	// hostName. Neither ⇒ the address, so that the instance still counts.
	in.addr = fi.IPAddr
	if in.addr == "" {
		in.addr = fi.HostName
	}
	in.id = fi.InstanceId
	if in.id == "" {
		in.id = fi.HostName
	}
	switch {
	case fi.PortEnabled:
		in.port, in.usable = portOf(fi.Port)
	case fi.SecurePortEnabled:
		in.port, in.usable = portOf(fi.SecurePort)
		in.secure = true
	}
	if in.addr == "" || !validAddress(in.addr) {
		in.usable = false
	}
	if in.id == "" {
		in.id = in.addr + ":" + strconv.Itoa(int(in.port))
	}
	return in, nil
}

func portOf(p int) (uint32, bool) {
	if p <= 0 || p > 65535 {
		return 0, false
	}
	return uint32(p), true
}

// validAddress accepts an IP (no zone) or something that looks like a host
// name; anything else could not make an Envoy endpoint.
func validAddress(a string) bool {
	if ip, err := netip.ParseAddr(a); err == nil {
		return ip.Zone() == ""
	}
	if len(a) > 253 {
		return false
	}
	for _, r := range a {
		if !(r == '.' || r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

// stringMetadata reads Eureka instance metadata (a JSON object in JSON
// mode): string values only, without Jackson's "@class" type marker
// (Eureka writes {"@class":"java.util.Collections$EmptyMap"} for none).
func stringMetadata(raw []byte) (map[string]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	var out map[string]string
	for k, v := range m {
		s, ok := v.(string)
		if !ok || k == "@class" {
			continue
		}
		if out == nil {
			out = make(map[string]string, len(m))
		}
		out[k] = s
	}
	return out, nil
}

// weightOf reads metadata "weight", the key Spring Cloud LoadBalancer's
// weighted instance supplier uses (Eureka itself has no weight): a
// positive integer, capped; anything else is 1.
func weightOf(s string) uint32 {
	if s == "" {
		return 1
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < 1 {
		return 1
	}
	if n > maxWeight {
		return maxWeight
	}
	return uint32(n)
}

// fullModel builds the model of a full listing. Duplicate ids: the last
// one wins, as in Eureka's own client.
func fullModel(l *listing) model {
	m := make(model, len(l.apps))
	for _, a := range l.apps {
		ins := m[a.name]
		if ins == nil {
			ins = make(map[string]*instance, len(a.instances))
			m[a.name] = ins
		}
		for _, in := range a.instances {
			ins[in.id] = in
		}
	}
	return m
}

// applyDelta applies a delta listing to m as Eureka's client does
// (DiscoveryClient.updateDelta): ADDED/MODIFIED replace the instance by
// id, DELETED removes it, and an app left without instances is removed.
func (m model) applyDelta(l *listing) {
	for _, a := range l.apps {
		for _, in := range a.instances {
			ins := m[a.name]
			if in.action == actionDeleted {
				if ins != nil {
					delete(ins, in.id)
					if len(ins) == 0 {
						delete(m, a.name)
					}
				}
				continue
			}
			if ins == nil {
				ins = map[string]*instance{}
				m[a.name] = ins
			}
			ins[in.id] = in
		}
	}
}

// hashcode is Eureka's apps reconcile hashcode: "<STATUS>_<count>_" per
// instance status, statuses in lexical order (Applications.getReconcileHashCode).
func (m model) hashcode() string {
	counts := map[string]int{}
	for _, ins := range m {
		for _, in := range ins {
			counts[in.status]++
		}
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte('_')
		b.WriteString(strconv.Itoa(counts[k]))
		b.WriteByte('_')
	}
	return b.String()
}

// skippedService is an app left out of the listing, and why.
type skippedService struct {
	host string
	err  error
}

// services turns the model into the published listing, sorted by host.
// prev (the last published services by host) keeps the port and protocol
// of an app that has no instance left to read them from.
func (m model) services(vport func(host string, first uint32) uint32, prev map[string]discovery.Service) ([]discovery.Service, []skippedService) {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]discovery.Service, 0, len(names))
	var skipped []skippedService
	for _, name := range names {
		host := name + ".eureka"
		svc, err := buildService(host, m[name], vport, prev)
		if err != nil {
			skipped = append(skipped, skippedService{host, err})
			continue
		}
		out = append(out, svc)
	}
	return out, skipped
}

type candidate struct {
	discovery.Instance
	in *instance
}

func buildService(host string, ins map[string]*instance, vport func(string, uint32) uint32, prev map[string]discovery.Service) (discovery.Service, error) {
	var up, known []candidate
	for _, in := range ins {
		if !in.usable {
			continue
		}
		c := candidate{discovery.Instance{Address: in.addr, Port: in.port, Weight: in.weight, Metadata: in.meta}, in}
		known = append(known, c)
		// Only UP instances take traffic (Higress publishes every status).
		if in.status == statusUP {
			up = append(up, c)
		}
	}
	sortCandidates(up)
	// Two ids on one address and port (a re-registration under a new id
	// before the old lease expired) are one endpoint to Envoy.
	up = slices.CompactFunc(up, func(a, b candidate) bool { return a.Address == b.Address && a.Port == b.Port })
	svc := discovery.Service{Host: host, Resolution: discovery.Static}
	// The service's protocol and port come from its first UP instance; with
	// none UP, from the first known instance, so that a service whose
	// instances all went DOWN keeps its cluster shape (only its endpoints
	// empty) instead of flapping.
	var first *instance
	switch {
	case len(up) > 0:
		first = up[0].in
	case len(known) > 0:
		sortCandidates(known)
		first = known[0].in
	}
	if first != nil {
		p, err := instanceProtocol(first)
		if err != nil {
			return svc, err
		}
		svc.Protocol = p
		svc.Port = vport(host, first.port)
	} else if old, ok := prev[host]; ok {
		svc.Protocol, svc.Port = old.Protocol, old.Port
	} else {
		svc.Protocol, svc.Port = discovery.ProtocolHTTP, vport(host, 0)
	}
	if len(up) > 0 {
		svc.Instances = make([]discovery.Instance, len(up))
		for i, c := range up {
			svc.Instances[i] = c.Instance
			if _, err := netip.ParseAddr(c.Address); err != nil {
				svc.Resolution = discovery.DNS
			}
		}
	}
	return svc, nil
}

func sortCandidates(c []candidate) {
	sort.Slice(c, func(i, j int) bool {
		if c[i].Address != c[j].Address {
			return c[i].Address < c[j].Address
		}
		if c[i].Port != c[j].Port {
			return c[i].Port < c[j].Port
		}
		// Same address and port under two ids: order by id, so the
		// listing does not depend on map order.
		return c[i].in.id < c[j].in.id
	})
}

// instanceProtocol is the instance's metadata protocol; an instance only
// reachable on its secure port speaks TLS (http ⇒ https, grpc ⇒ grpcs).
func instanceProtocol(in *instance) (discovery.Protocol, error) {
	p, err := discovery.ParseProtocol(in.protocol)
	if err != nil {
		return "", err
	}
	if in.secure {
		switch p {
		case discovery.ProtocolHTTP:
			p = discovery.ProtocolHTTPS
		case discovery.ProtocolGRPC:
			p = discovery.ProtocolGRPCS
		}
	}
	return p, nil
}
