// Package eurekatest holds a protocol fake of a Eureka server for tests,
// in this package and in others (the end-to-end tests run hxds against it).
//
// No Eureka server can run on these machines (it is a Java web application
// with no Debian package, and only the Go module proxy, apt and npm are
// reachable), so the tests talk to Server: the /eureka/apps and
// /eureka/apps/delta REST handlers of an Eureka server, with documents
// built from fargo's exported JSON types (GetAppsResponseJson,
// GetAppsResponse, Application, Instance) in JSON mode, the delta
// "actionType" field and Eureka's apps reconcile hashcode.
package eurekatest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/hudl/fargo"
)

type change struct {
	action string // ADDED, MODIFIED, DELETED
	inst   fargo.Instance
}

// Server is a fake Eureka server. Configure it with its methods; they
// are safe to call at any time.
type Server struct {
	t    testing.TB
	mu   sync.Mutex
	apps map[string]map[string]*fargo.Instance // app → instanceId → instance
	// changes since start, replayed by /apps/delta (idempotent in order).
	changes []change
	// deltaDisabled makes /apps/delta answer 403 (eureka.disableDelta).
	deltaDisabled bool
	// badHashcode makes /apps/delta lie about the hashcode.
	badHashcode bool
	// override, when set, is served as the /apps body.
	override []byte
	requests map[string]int

	addr string
	srv  *http.Server
	ln   net.Listener
}

// NewServer starts a Server on a free loopback port; it is stopped when the
// test ends.
func NewServer(t testing.TB) *Server {
	t.Helper()
	f := &Server{t: t, apps: map[string]map[string]*fargo.Instance{}, requests: map[string]int{}}
	f.start("127.0.0.1:0")
	t.Cleanup(f.Stop)
	return f
}

func (f *Server) start(addr string) {
	f.t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		f.t.Fatalf("fake eureka listen %s: %v", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /eureka/apps", f.serveApps)
	mux.HandleFunc("GET /eureka/apps/", f.serveApps)
	mux.HandleFunc("GET /eureka/apps/delta", f.serveDelta)
	srv := &http.Server{Handler: mux}
	f.mu.Lock()
	f.ln, f.srv, f.addr = ln, srv, ln.Addr().String()
	f.mu.Unlock()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			f.t.Logf("fake eureka: %v", err)
		}
	}()
}

// Stop closes the server and its connections (the registry goes down).
func (f *Server) Stop() {
	f.mu.Lock()
	srv := f.srv
	f.srv = nil
	f.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// Restart brings the server back on the same address, with the same data.
func (f *Server) Restart() { f.start(f.addr) }

// Port is the port to give the registry (McpBridge "port").
func (f *Server) Port() uint32 {
	_, p, _ := net.SplitHostPort(f.addr)
	n, _ := strconv.Atoi(p)
	return uint32(n)
}

// Count is how many requests the server received for path, "/apps" or
// "/apps/delta".
func (f *Server) Count(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests[path]
}

// InstanceOption modifies an instance built by Instance.
type InstanceOption func(*fargo.Instance)

// WithStatus sets the instance status (UP by default).
func WithStatus(s fargo.StatusType) InstanceOption { return func(i *fargo.Instance) { i.Status = s } }

// WithMeta sets the instance metadata from key, value pairs.
func WithMeta(kv ...string) InstanceOption {
	return func(i *fargo.Instance) {
		m := map[string]string{}
		for j := 0; j+1 < len(kv); j += 2 {
			m[kv[j]] = kv[j+1]
		}
		b, _ := json.Marshal(m)
		i.Metadata.Raw = b
	}
}

// SecureOnly disables the non-secure port and enables the secure one.
func SecureOnly(port int) InstanceOption {
	return func(i *fargo.Instance) {
		i.PortEnabled, i.SecurePort, i.SecurePortEnabled = false, port, true
	}
}

// Instance is an UP instance of app on ip:port, its id
// "<app in lower case>:<ip>:<port>", without metadata.
func Instance(app, ip string, port int, opts ...InstanceOption) *fargo.Instance {
	in := &fargo.Instance{
		InstanceId:     fmt.Sprintf("%s:%s:%d", strings.ToLower(app), ip, port),
		HostName:       ip,
		App:            app,
		IPAddr:         ip,
		VipAddress:     strings.ToLower(app),
		Status:         fargo.UP,
		Port:           port,
		PortEnabled:    true,
		SecurePort:     443,
		DataCenterInfo: fargo.DataCenterInfo{Name: fargo.MyOwn},
		// What Eureka writes for an instance without metadata.
		Metadata: fargo.InstanceMetadata{Raw: []byte(`{"@class":"java.util.Collections$EmptyMap"}`)},
	}
	for _, o := range opts {
		o(in)
	}
	return in
}

// Put registers or replaces an instance (by App and InstanceId).
func (f *Server) Put(in *fargo.Instance) {
	f.mu.Lock()
	defer f.mu.Unlock()
	action := "MODIFIED"
	if f.apps[in.App] == nil {
		f.apps[in.App] = map[string]*fargo.Instance{}
	}
	if f.apps[in.App][in.InstanceId] == nil {
		action = "ADDED"
	}
	f.apps[in.App][in.InstanceId] = in
	f.changes = append(f.changes, change{action, *in})
}

// Delete deregisters an instance; an app left empty leaves the listing.
func (f *Server) Delete(app, id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	in := f.apps[app][id]
	if in == nil {
		return
	}
	delete(f.apps[app], id)
	if len(f.apps[app]) == 0 {
		delete(f.apps, app)
	}
	f.changes = append(f.changes, change{"DELETED", *in})
}

// hashcodeLocked is Eureka's Applications.getReconcileHashCode, written
// independently of the watcher's.
func (f *Server) hashcodeLocked() string {
	counts := map[string]int{}
	for _, ins := range f.apps {
		for _, in := range ins {
			counts[string(in.Status)]++
		}
	}
	var keys []string
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	s := ""
	for _, k := range keys {
		s += fmt.Sprintf("%s_%d_", k, counts[k])
	}
	return s
}

func (f *Server) serveApps(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests["/apps"]++
	w.Header().Set("Content-Type", "application/json")
	if f.override != nil {
		_, _ = w.Write(f.override)
		return
	}
	resp := fargo.GetAppsResponseJson{Response: &fargo.GetAppsResponse{AppsHashcode: f.hashcodeLocked(), VersionsDelta: len(f.changes)}}
	names := make([]string, 0, len(f.apps))
	for n := range f.apps {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		app := &fargo.Application{Name: n}
		for _, in := range f.apps[n] {
			app.Instances = append(app.Instances, in)
		}
		resp.Response.Applications = append(resp.Response.Applications, app)
	}
	if err := json.NewEncoder(w).Encode(resp); err != nil {
		f.t.Errorf("fake eureka encode: %v", err)
	}
}

func (f *Server) serveDelta(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests["/apps/delta"]++
	if f.deltaDisabled {
		http.Error(w, "delta disabled", http.StatusForbidden)
		return
	}
	hash := f.hashcodeLocked()
	if f.badHashcode {
		hash = "UP_999_"
	}
	// One application entry per change keeps their order, which Eureka's
	// grouping by app would too for a single app.
	type deltaApp struct {
		Name     string            `json:"name"`
		Instance []json.RawMessage `json:"instance"`
	}
	var apps []deltaApp
	for _, c := range f.changes {
		in := c.inst
		b, err := json.Marshal(&in)
		if err != nil {
			f.t.Errorf("fake eureka encode: %v", err)
			return
		}
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		m["actionType"] = c.action
		b, _ = json.Marshal(m)
		apps = append(apps, deltaApp{Name: in.App, Instance: []json.RawMessage{b}})
	}
	doc := map[string]any{"applications": map[string]any{
		"versions__delta": "1", "apps__hashcode": hash, "application": apps,
	}}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(doc)
}

// SetApp makes instances the whole of app's instances: the others are
// deregistered, these registered or replaced (no instances: the app leaves
// the listing). Each change is recorded for /apps/delta.
func (f *Server) SetApp(app string, instances ...*fargo.Instance) {
	keep := map[string]bool{}
	for _, in := range instances {
		keep[in.InstanceId] = true
	}
	f.mu.Lock()
	var gone []string
	for id := range f.apps[app] {
		if !keep[id] {
			gone = append(gone, id)
		}
	}
	f.mu.Unlock()
	sort.Strings(gone)
	for _, id := range gone {
		f.Delete(app, id)
	}
	for _, in := range instances {
		f.Put(in)
	}
}

// SetDeltaDisabled makes /apps/delta answer 403, as a server with
// eureka.disableDelta does.
func (f *Server) SetDeltaDisabled(disabled bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deltaDisabled = disabled
}

// SetBadHashcode makes /apps/delta report a wrong apps hashcode.
func (f *Server) SetBadHashcode(bad bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.badHashcode = bad
}

// SetOverride makes /apps answer body instead of the listing (hostile
// payloads); nil restores the listing.
func (f *Server) SetOverride(body []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.override = body
}
