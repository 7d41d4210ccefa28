package nacostest

// NOTE: no real Nacos server can run on this machine. V1Server is an HTTP
// handler serving the Nacos 1.x OpenAPI endpoints the "nacos" registry
// type uses, with the JSON shapes a Nacos 1.4 server returns.

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

// V1Host is an instance as /nacos/v1/ns/instance/list returns it.
type V1Host struct {
	InstanceID                string            `json:"instanceId"`
	IP                        string            `json:"ip"`
	Port                      int               `json:"port"`
	Weight                    float64           `json:"weight"`
	Healthy                   bool              `json:"healthy"`
	Enabled                   bool              `json:"enabled"`
	Ephemeral                 bool              `json:"ephemeral"`
	ClusterName               string            `json:"clusterName"`
	ServiceName               string            `json:"serviceName"`
	Metadata                  map[string]string `json:"metadata"`
	InstanceHeartBeatInterval int               `json:"instanceHeartBeatInterval"`
	InstanceIDGenerator       string            `json:"instanceIdGenerator"`
	InstanceHeartBeatTimeOut  int               `json:"instanceHeartBeatTimeOut"`
	IPDeleteTimeout           int               `json:"ipDeleteTimeout"`
}

// V1Instance is a healthy, enabled, ephemeral 1.x instance in cluster
// DEFAULT, with the server's default heartbeat settings.
func V1Instance(ip string, port int, weight float64, md map[string]string) V1Host {
	if md == nil {
		md = map[string]string{}
	}
	return V1Host{IP: ip, Port: port, Weight: weight, Healthy: true, Enabled: true, Ephemeral: true,
		ClusterName: "DEFAULT", Metadata: md, InstanceHeartBeatInterval: 5000, InstanceIDGenerator: "simple",
		InstanceHeartBeatTimeOut: 15000, IPDeleteTimeout: 30000}
}

// V1Server is a fake Nacos 1.x server (service and instance listing).
type V1Server struct {
	t    testing.TB
	port int
	mu   sync.Mutex
	// services: namespace → group@@name → hosts
	services map[string]map[string][]V1Host
	// raw, when set, is returned for every request (hostile payloads).
	raw      []byte
	requests int
	srv      *http.Server
}

// NewV1Server starts a V1Server on a free loopback port; it is stopped
// when the test ends.
func NewV1Server(t testing.TB) *V1Server {
	t.Helper()
	f := &V1Server{t: t, services: map[string]map[string][]V1Host{}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.port = l.Addr().(*net.TCPAddr).Port
	f.serve(l)
	t.Cleanup(f.Stop)
	return f
}

// Port is the HTTP port to give the registry (McpBridge "port").
func (f *V1Server) Port() int { return f.port }

func (f *V1Server) serve(l net.Listener) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /nacos/v1/ns/service/list", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		f.mu.Lock()
		defer f.mu.Unlock()
		f.requests++
		if f.raw != nil {
			w.Write(f.raw)
			return
		}
		var names []string
		for k := range f.services[q.Get("namespaceId")] {
			if g, n, _ := cut(k); g == q.Get("groupName") {
				names = append(names, n)
			}
		}
		slices.Sort(names)
		no, _ := strconv.Atoi(q.Get("pageNo"))
		size, _ := strconv.Atoi(q.Get("pageSize"))
		from, to := min(max((no-1)*size, 0), len(names)), min(max(no*size, 0), len(names))
		json.NewEncoder(w).Encode(map[string]any{"count": len(names), "doms": append([]string{}, names[from:to]...)})
	})
	mux.HandleFunc("GET /nacos/v1/ns/instance/list", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		f.mu.Lock()
		defer f.mu.Unlock()
		f.requests++
		if f.raw != nil {
			w.Write(f.raw)
			return
		}
		k := skey(q.Get("groupName"), q.Get("serviceName"))
		hosts, ok := f.services[q.Get("namespaceId")][k]
		if !ok {
			http.Error(w, "caused: service not found: "+k, http.StatusBadRequest)
			return
		}
		for i := range hosts {
			hosts[i].ServiceName = k
			hosts[i].InstanceID = fmt.Sprintf("%s#%d#DEFAULT#%s", hosts[i].IP, hosts[i].Port, k)
		}
		json.NewEncoder(w).Encode(map[string]any{"name": k, "groupName": q.Get("groupName"), "clusters": "",
			"cacheMillis": 10000, "hosts": hosts, "lastRefTime": refTime.Add(1), "checksum": "",
			"allIPs": false, "reachProtectionThreshold": false, "valid": true})
	})
	srv := &http.Server{Handler: mux}
	f.mu.Lock()
	f.srv = srv
	f.mu.Unlock()
	go srv.Serve(l)
}

// Stop closes the server and its connections (the server goes down).
func (f *V1Server) Stop() {
	f.mu.Lock()
	srv := f.srv
	f.srv = nil
	f.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// Restart serves again on the same port, with the same data.
func (f *V1Server) Restart() {
	f.t.Helper()
	var l net.Listener
	var err error
	for i := 0; i < 50; i++ {
		if l, err = net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(f.port)); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		f.t.Fatalf("restart: %v", err)
	}
	f.serve(l)
}

// Set replaces a service's instances (nil: deregister the service; empty:
// a service with no instances). The 1.x client polls: no push.
func (f *V1Server) Set(ns, group, name string, hosts []V1Host) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.services[ns] == nil {
		f.services[ns] = map[string][]V1Host{}
	}
	if hosts == nil {
		delete(f.services[ns], skey(group, name))
		return
	}
	f.services[ns][skey(group, name)] = hosts
}

// SetRaw makes every request answer raw (hostile payloads); nil restores
// the normal answers.
func (f *V1Server) SetRaw(raw []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.raw = raw
}

// Requests is how many listing requests the server received.
func (f *V1Server) Requests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests
}
