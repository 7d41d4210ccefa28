// Package nacostest holds protocol fakes of Nacos servers for tests, in
// this package and in others (the end-to-end tests run hxds against them).
//
// NOTE: no real Nacos server can run on this machine (no Docker, no
// package), so tests use protocol fakes instead:
//
//   - Server is a Nacos 2.x naming server that speaks the real gRPC
//     protocol (the SDK's own generated stubs, its request and response
//     types, JSON bodies in Payloads, pushes on the bidi stream), plus the
//     HTTP login endpoint the SDK uses for username/password. It serves the
//     registry types nacos2 and nacos3.
//   - V1Server is an HTTP handler serving the Nacos 1.x OpenAPI endpoints
//     the "nacos" registry type uses, with the JSON shapes a Nacos 1.4
//     server returns.
//
// Both listen on free loopback ports, are stopped when the test ends, and
// can be stopped and restarted on the same ports with the same data.
package nacostest

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	nacosgrpc "github.com/nacos-group/nacos-sdk-go/v2/api/grpc"
	"github.com/nacos-group/nacos-sdk-go/v2/common/remote/rpc/rpc_request"
	"github.com/nacos-group/nacos-sdk-go/v2/common/remote/rpc/rpc_response"
	"github.com/nacos-group/nacos-sdk-go/v2/model"
	"google.golang.org/grpc"
	"google.golang.org/grpc/peer"
	"google.golang.org/protobuf/types/known/anypb"
)

// GRPCPortOffset is where Nacos 2.x listens for gRPC relative to its HTTP
// port; the SDK dials HTTPPort()+GRPCPortOffset.
const GRPCPortOffset = 1000

// Token is the access token the login endpoint hands out.
const Token = "fake-access-token"

// refTime is the LastRefTime of every snapshot the fakes serve: the SDK
// drops data older than what it has, so it only grows (even across fake
// restarts).
var refTime atomic.Uint64

func init() { refTime.Store(uint64(time.Now().UnixMilli())) }

// NextRefTime returns a LastRefTime newer than any the fakes served so far
// (for hand-built pushes).
func NextRefTime() uint64 { return refTime.Add(1) }

// Server is a fake Nacos 2.x naming server (gRPC, plus the HTTP login).
// Configure it with the setters; they are safe to call at any time.
type Server struct {
	t        testing.TB
	httpPort int // the SDK dials httpPort+GRPCPortOffset for gRPC

	mu sync.Mutex
	// user/password: when set, login is required and gRPC requests must
	// carry the token.
	user, password string
	services       map[string]map[string][]model.Instance // namespace → group@@name → instances
	streams        map[string]*fakeStream                 // by client address
	subs           map[string]map[string]bool             // client address → namespace/group@@name
	logins         int
	requests       map[string]int
	grpcSrv        *grpc.Server
	httpSrv        *http.Server
	// hook, when it returns a payload, answers a request instead
	// (hostile responses).
	hook func(typ string) *nacosgrpc.Payload
	// headers of the last request of each type.
	headers map[string]map[string]string
}

type fakeStream struct {
	mu sync.Mutex
	s  nacosgrpc.BiRequestStream_RequestBiStreamServer
}

// NewServer starts a Server on a free loopback port pair (HTTPPort and
// HTTPPort+GRPCPortOffset); it is stopped when the test ends.
func NewServer(t testing.TB) *Server {
	t.Helper()
	f := &Server{t: t, services: map[string]map[string][]model.Instance{}}
	for i := 0; ; i++ {
		l1, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := l1.Addr().(*net.TCPAddr).Port
		l2, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+GRPCPortOffset))
		if err != nil || p+GRPCPortOffset > 65535 {
			l1.Close()
			if i > 50 {
				t.Fatalf("no free port pair: %v", err)
			}
			continue
		}
		f.httpPort = p
		f.serve(l1, l2)
		break
	}
	t.Cleanup(f.Stop)
	return f
}

// HTTPPort is the port to give the registry (McpBridge "port").
func (f *Server) HTTPPort() int { return f.httpPort }

// GRPCPort is the gRPC port, HTTPPort()+GRPCPortOffset.
func (f *Server) GRPCPort() int { return f.httpPort + GRPCPortOffset }

func (f *Server) serve(httpL, grpcL net.Listener) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.streams = map[string]*fakeStream{}
	f.subs = map[string]map[string]bool{}
	if f.requests == nil {
		f.requests = map[string]int{}
	}
	f.grpcSrv = grpc.NewServer()
	nacosgrpc.RegisterRequestServer(f.grpcSrv, (*fakeRequest)(f))
	nacosgrpc.RegisterBiRequestStreamServer(f.grpcSrv, (*fakeBiStream)(f))
	mux := http.NewServeMux()
	mux.HandleFunc("POST /nacos/v1/auth/users/login", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		f.mu.Lock()
		f.logins++
		user, password := f.user, f.password
		f.mu.Unlock()
		if r.Form.Get("username") != user || r.Form.Get("password") != password {
			http.Error(w, "unknown user!", http.StatusForbidden)
			return
		}
		fmt.Fprintf(w, `{"accessToken":%q,"tokenTtl":18000,"globalAdmin":true,"username":%q}`, Token, user)
	})
	f.httpSrv = &http.Server{Handler: mux}
	go f.grpcSrv.Serve(grpcL)
	go f.httpSrv.Serve(httpL)
}

// Stop closes the listeners and every connection (the server goes down).
func (f *Server) Stop() {
	f.mu.Lock()
	g, h := f.grpcSrv, f.httpSrv
	f.grpcSrv, f.httpSrv = nil, nil
	f.mu.Unlock()
	if g != nil {
		g.Stop()
		h.Close()
	}
}

// Restart serves again on the same ports, with the same data.
func (f *Server) Restart() {
	f.t.Helper()
	var l1, l2 net.Listener
	var err error
	for i := 0; i < 50; i++ { // the old sockets may linger a moment
		if l1, err = net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(f.httpPort)); err == nil {
			if l2, err = net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(f.httpPort+GRPCPortOffset)); err == nil {
				break
			}
			l1.Close()
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		f.t.Fatalf("restart fake nacos: %v", err)
	}
	f.serve(l1, l2)
}

// SetAuth requires a login with user and password (the HTTP endpoint) and
// the token it returns on gRPC requests; empty user: no auth.
func (f *Server) SetAuth(user, password string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.user, f.password = user, password
}

// SetHook installs a function that may answer a unary request of type typ
// in the server's stead (a non-nil payload); nil removes it.
func (f *Server) SetHook(hook func(typ string) *nacosgrpc.Payload) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hook = hook
}

// Logins is how many login requests the HTTP endpoint received.
func (f *Server) Logins() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.logins
}

// Headers returns the metadata headers of the last request of type typ.
func (f *Server) Headers(typ string) map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.headers[typ]
}

// Count is how many messages of type typ the server received (unary
// requests and messages on the bidi stream).
func (f *Server) Count(typ string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests[typ]
}

func skey(group, name string) string { return group + "@@" + name }

// Set replaces a service's instances (nil: deregister the service; empty:
// a service with no instances) and pushes the change to its subscribers.
func (f *Server) Set(namespace, group, name string, instances []model.Instance) {
	f.mu.Lock()
	if f.services[namespace] == nil {
		f.services[namespace] = map[string][]model.Instance{}
	}
	k := skey(group, name)
	if instances == nil {
		delete(f.services[namespace], k)
	} else {
		f.services[namespace][k] = instances
	}
	svc := f.snapshotLocked(namespace, group, name)
	var targets []*fakeStream
	for addr, subs := range f.subs {
		if subs[namespace+"/"+k] && f.streams[addr] != nil {
			targets = append(targets, f.streams[addr])
		}
	}
	f.mu.Unlock()
	for _, s := range targets {
		req := &rpc_request.NotifySubscriberRequest{
			NamingRequest: rpc_request.NewNamingRequest(namespace, name, group),
			ServiceInfo:   svc,
		}
		req.RequestId = strconv.FormatUint(refTime.Add(1), 10)
		s.mu.Lock()
		_ = s.s.Send(Payload(req.GetRequestType(), req))
		s.mu.Unlock()
	}
}

func (f *Server) snapshotLocked(namespace, group, name string) model.Service {
	hosts := append([]model.Instance{}, f.services[namespace][skey(group, name)]...)
	return model.Service{Name: name, GroupName: group, Hosts: hosts, LastRefTime: refTime.Add(1), Valid: true, CacheMillis: 10000}
}

// Payload wraps body, as JSON, in a gRPC payload of type typ.
func Payload(typ string, body any) *nacosgrpc.Payload {
	b, _ := json.Marshal(body)
	return &nacosgrpc.Payload{Metadata: &nacosgrpc.Metadata{Type: typ}, Body: &anypb.Any{Value: b}}
}

func ok() *rpc_response.Response { return &rpc_response.Response{ResultCode: 200, Success: true} }

type fakeRequest Server

// Request answers the unary requests the naming client sends.
func (fr *fakeRequest) Request(ctx context.Context, p *nacosgrpc.Payload) (*nacosgrpc.Payload, error) {
	f := (*Server)(fr)
	typ := p.GetMetadata().GetType()
	body := p.GetBody().GetValue()
	client := ""
	if pr, ok := peer.FromContext(ctx); ok {
		client = pr.Addr.String()
	}
	f.mu.Lock()
	f.requests[typ]++
	if f.headers == nil {
		f.headers = map[string]map[string]string{}
	}
	f.headers[typ] = p.GetMetadata().GetHeaders()
	hook := f.hook
	user := f.user
	f.mu.Unlock()
	if hook != nil {
		if p := hook(typ); p != nil {
			return p, nil
		}
	}
	reply := func(r rpc_response.IResponse) (*nacosgrpc.Payload, error) {
		return Payload(r.GetResponseType(), r), nil
	}
	if typ == "ServerCheckRequest" {
		return reply(&rpc_response.ServerCheckResponse{Response: ok(), ConnectionId: client})
	}
	if user != "" && typ != "HealthCheckRequest" && p.GetMetadata().GetHeaders()["accessToken"] != Token {
		return reply(&rpc_response.ErrorResponse{Response: &rpc_response.Response{ResultCode: 500, ErrorCode: 403, Message: "access denied"}})
	}
	nr := &rpc_request.NamingRequest{Request: &rpc_request.Request{}}
	switch typ {
	case "HealthCheckRequest":
		return reply(&rpc_response.HealthCheckResponse{Response: ok()})
	case "ServiceListRequest":
		req := rpc_request.ServiceListRequest{NamingRequest: nr}
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, err
		}
		f.mu.Lock()
		var names []string
		for k := range f.services[req.Namespace] {
			if g, n, _ := cut(k); g == req.GroupName {
				names = append(names, n)
			}
		}
		f.mu.Unlock()
		slices.Sort(names)
		total := len(names)
		from, to := (req.PageNo-1)*req.PageSize, req.PageNo*req.PageSize
		from, to = min(max(from, 0), total), min(max(to, 0), total)
		return reply(&rpc_response.ServiceListResponse{Response: ok(), Count: total, ServiceNames: names[from:to]})
	case "SubscribeServiceRequest":
		req := rpc_request.SubscribeServiceRequest{NamingRequest: nr}
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, err
		}
		f.mu.Lock()
		k := req.Namespace + "/" + skey(req.GroupName, req.ServiceName)
		if f.subs[client] == nil {
			f.subs[client] = map[string]bool{}
		}
		if req.Subscribe {
			f.subs[client][k] = true
		} else {
			delete(f.subs[client], k)
		}
		svc := f.snapshotLocked(req.Namespace, req.GroupName, req.ServiceName)
		f.mu.Unlock()
		return reply(&rpc_response.SubscribeServiceResponse{Response: ok(), ServiceInfo: svc})
	case "ServiceQueryRequest":
		req := rpc_request.ServiceQueryRequest{NamingRequest: nr}
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, err
		}
		f.mu.Lock()
		svc := f.snapshotLocked(req.Namespace, req.GroupName, req.ServiceName)
		f.mu.Unlock()
		return reply(&rpc_response.QueryServiceResponse{Response: ok(), ServiceInfo: svc})
	case "InstanceRequest":
		req := rpc_request.InstanceRequest{NamingRequest: nr}
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, err
		}
		f.mu.Lock()
		cur := append([]model.Instance{}, f.services[req.Namespace][skey(req.GroupName, req.ServiceName)]...)
		f.mu.Unlock()
		var next []model.Instance
		for _, in := range cur {
			if in.Ip != req.Instance.Ip || in.Port != req.Instance.Port {
				next = append(next, in)
			}
		}
		if req.Type == "registerInstance" {
			next = append(next, req.Instance)
		}
		if next == nil {
			next = []model.Instance{}
		}
		f.Set(req.Namespace, req.GroupName, req.ServiceName, next)
		return reply(&rpc_response.InstanceResponse{Response: ok()})
	}
	return reply(&rpc_response.ErrorResponse{Response: &rpc_response.Response{ResultCode: 500, ErrorCode: 500, Message: "unsupported " + typ}})
}

type fakeBiStream Server

// RequestBiStream keeps the stream to push on; it reads the client's
// ConnectionSetupRequest and push acknowledgements.
func (fb *fakeBiStream) RequestBiStream(s nacosgrpc.BiRequestStream_RequestBiStreamServer) error {
	f := (*Server)(fb)
	client := ""
	if pr, ok := peer.FromContext(s.Context()); ok {
		client = pr.Addr.String()
	}
	f.mu.Lock()
	f.streams[client] = &fakeStream{s: s}
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.streams, client)
		delete(f.subs, client)
		f.mu.Unlock()
	}()
	for {
		p, err := s.Recv()
		if err != nil {
			return nil
		}
		f.mu.Lock()
		f.requests[p.GetMetadata().GetType()]++
		f.mu.Unlock()
	}
}

func cut(k string) (group, name string, ok bool) {
	for i := 0; i+1 < len(k); i++ {
		if k[i] == '@' && k[i+1] == '@' {
			return k[:i], k[i+2:], true
		}
	}
	return "", k, false
}

// Instance is a healthy, enabled, ephemeral instance in cluster DEFAULT.
func Instance(ip string, port uint64, weight float64, md map[string]string) model.Instance {
	return model.Instance{Ip: ip, Port: port, Weight: weight, Healthy: true, Enable: true, Ephemeral: true,
		ClusterName: "DEFAULT", Metadata: md}
}

// PushRaw sends p on every client's bidi stream.
func (f *Server) PushRaw(p *nacosgrpc.Payload) {
	f.mu.Lock()
	var targets []*fakeStream
	for _, s := range f.streams {
		targets = append(targets, s)
	}
	f.mu.Unlock()
	for _, s := range targets {
		s.mu.Lock()
		_ = s.s.Send(p)
		s.mu.Unlock()
	}
}
