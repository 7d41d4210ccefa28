// Package grpcxds checks hxds against an xDS client that is not Envoy: grpc-go's
// xds resolver ("proxyless gRPC"). A client dialing xds:///<ingress host>
// resolves LDS (an API listener) → RDS → CDS → EDS from hxds and calls a real
// gRPC backend; endpoint changes in the config directory move its traffic.
package grpcxds

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/xds" // registers the xds resolver and balancers

	"github.com/hxds/hxds/internal/app"
	"github.com/hxds/hxds/internal/testutil"
	"github.com/hxds/hxds/translate/input"
	"github.com/hxds/hxds/xds/server"
)

// Resource type URLs a proxyless client subscribes to, in the order it does.
var xdsTypes = map[string]string{
	"LDS": "type.googleapis.com/envoy.config.listener.v3.Listener",
	"RDS": "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
	"CDS": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
	"EDS": "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
}

// backend is a real gRPC server whose UnaryCall says who answered.
type backend struct {
	testgrpc.UnimplementedTestServiceServer
	id   string
	port int
}

func (b *backend) UnaryCall(context.Context, *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	return &testgrpc.SimpleResponse{ServerId: b.id}, nil
}

func startBackend(t *testing.T, id string) *backend {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{id: id, port: lis.Addr().(*net.TCPAddr).Port}
	s := grpc.NewServer()
	testgrpc.RegisterTestServiceServer(s, b)
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	return b
}

const staticConfig = `
apiVersion: v1
kind: Namespace
metadata: {name: demo}
---
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: higress}
spec: {controller: higress.io/higress-controller}
---
apiVersion: v1
kind: Service
metadata: {name: greeter, namespace: demo}
spec:
  ports:
    - {name: grpc, port: 80, targetPort: 50051}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: greeter, namespace: demo}
spec:
  ingressClassName: higress
  rules:
    - host: grpc.example.com
      http:
        paths:
          - path: /
            pathType: Prefix
            backend: {service: {name: greeter, port: {number: 80}}}
    - host: other.example.com
      http:
        paths:
          - path: /
            pathType: Prefix
            backend: {service: {name: greeter, port: {name: grpc}}}
    - host: "*.wild.example.com"
      http:
        paths:
          - path: /
            pathType: Prefix
            backend: {service: {name: greeter, port: {number: 80}}}
---
# Annotations whose Envoy config lands in the same route table (http.80) as
# the gRPC hosts: per-route CORS, RBAC, local rate limit and custom_response
# configs, an aggregate fallback cluster, retries and header edits. grpc-go
# validates every virtual host of the table, so these must not make it NACK.
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: annotated
  namespace: demo
  annotations:
    nginx.ingress.kubernetes.io/enable-cors: "true"
    nginx.ingress.kubernetes.io/whitelist-source-range: "127.0.0.0/8"
    higress.io/route-limit-rps: "1000"
    nginx.ingress.kubernetes.io/default-backend: greeter
    nginx.ingress.kubernetes.io/custom-http-errors: "404,503"
    nginx.ingress.kubernetes.io/proxy-next-upstream-tries: "2"
    higress.io/request-header-control-add: x-from hxds
    higress.io/exact-match-header-x-any: "yes"
spec:
  ingressClassName: higress
  rules:
    - host: annotated.example.com
      http:
        paths:
          - path: /
            pathType: Prefix
            backend: {service: {name: greeter, port: {number: 80}}}
`

// writeEndpoints (re)writes the EndpointSlice of Service greeter with one
// endpoint per backend. The file is renamed into place so the watcher never
// reads half of it.
func writeEndpoints(t *testing.T, dir string, backends ...*backend) {
	t.Helper()
	var b strings.Builder
	for i, be := range backends {
		fmt.Fprintf(&b, `---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: greeter-%d
  namespace: demo
  labels: {kubernetes.io/service-name: greeter}
addressType: IPv4
ports: [{name: grpc, port: %d}]
endpoints:
  - addresses: ["127.0.0.1"]
    conditions: {ready: true}
`, i, be.port)
	}
	tmp := filepath.Join(t.TempDir(), "endpoints.yaml")
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "20-endpoints.yaml")); err != nil {
		t.Fatal(err)
	}
}

// startHxds runs hxds in process on dir and returns its xDS and admin addresses.
func startHxds(t *testing.T, dir string) (xdsAddr, adminAddr string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan [2]string, 1)
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, app.Config{
			XDSAddress: "127.0.0.1:0", AdminAddress: "127.0.0.1:0", ConfigDir: dir,
			Options:         input.DefaultOptions(),
			DebounceHoldoff: 10 * time.Millisecond, DebounceMax: 100 * time.Millisecond,
			Log: testutil.Logger(t),
			Listening: func(x, a net.Addr) {
				addrs <- [2]string{x.String(), a.String()}
			},
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("hxds: %v", err)
		}
	})
	select {
	case a := <-addrs:
		return a[0], a[1]
	case err := <-done:
		t.Fatalf("hxds exited before listening: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("hxds did not start listening")
	}
	return "", ""
}

// xdsResolver builds grpc-go's xds resolver for one client node. grpc-go reads
// GRPC_XDS_BOOTSTRAP_CONFIG once, into a package variable at init
// (internal/envconfig), so a test cannot set it with t.Setenv; the exported
// NewXDSResolverWithConfigForTesting takes the same JSON and gives each
// builder its own xDS client pool, which also keeps node ids apart.
func xdsResolver(t *testing.T, xdsAddr, nodeID string) resolver.Builder {
	t.Helper()
	bootstrap := fmt.Sprintf(`{
  "xds_servers": [{
    "server_uri": %q,
    "channel_creds": [{"type": "insecure"}],
    "server_features": ["xds_v3"]
  }],
  "node": {"id": %q, "cluster": "higress-gateway", "locality": {"zone": "z"}}
}`, xdsAddr, nodeID)
	rb, err := xds.NewXDSResolverWithConfigForTesting([]byte(bootstrap))
	if err != nil {
		t.Fatalf("xds resolver: %v", err)
	}
	return rb
}

func dial(t *testing.T, rb resolver.Builder, target string) testgrpc.TestServiceClient {
	t.Helper()
	cc, err := grpc.NewClient(target, grpc.WithResolvers(rb), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("dial %s: %v", target, err)
	}
	t.Cleanup(func() { cc.Close() })
	return testgrpc.NewTestServiceClient(cc)
}

// call makes one RPC and returns the id of the backend that answered.
func call(c testgrpc.TestServiceClient) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := c.UnaryCall(ctx, &testgrpc.SimpleRequest{FillServerId: true})
	if err != nil {
		return "", err
	}
	return resp.GetServerId(), nil
}

// eventually polls RPCs on c until every backend in want has answered, or
// fails after a bounded wait. It returns the answers seen.
func eventually(t *testing.T, c testgrpc.TestServiceClient, what string, want ...string) map[string]int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	seen := map[string]int{}
	var lastErr error
	for {
		id, err := call(c)
		if err != nil {
			lastErr = err
		} else {
			seen[id]++
		}
		all := true
		for _, w := range want {
			if seen[w] == 0 {
				all = false
			}
		}
		if all {
			return seen
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: backends %v never all answered within 10s; answers %v, last error %v", what, want, seen, lastErr)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// only makes n RPCs that must all succeed on backend id.
func only(t *testing.T, c testgrpc.TestServiceClient, what, id string, n int) {
	t.Helper()
	for range n {
		got, err := call(c)
		if err != nil {
			t.Fatalf("%s: RPC failed: %v", what, err)
		}
		if got != id {
			t.Fatalf("%s: answered by %q, want only %q", what, got, id)
		}
	}
}

func TestProxylessGRPC(t *testing.T) {
	start := time.Now()
	a, b := startBackend(t, "backend-a"), startBackend(t, "backend-b")

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "00-config.yaml"), []byte(staticConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	writeEndpoints(t, dir, a)
	xdsAddr, adminAddr := startHxds(t, dir)

	wild := wildcardRefused(t, xdsAddr)

	const node = "grpc-e2e-client"
	rb := xdsResolver(t, xdsAddr, node)
	bare := dial(t, rb, "xds:///grpc.example.com")
	withPort := dial(t, rb, "xds:///grpc.example.com:80")
	other := dial(t, rb, "xds:///other.example.com")

	// 1. Every name resolves through LDS → RDS → CDS → EDS to backend a.
	eventually(t, bare, "xds:///grpc.example.com", a.id)
	only(t, bare, "xds:///grpc.example.com", a.id, 5)
	eventually(t, withPort, "xds:///grpc.example.com:80", a.id)
	only(t, withPort, "xds:///grpc.example.com:80", a.id, 5)
	eventually(t, other, "xds:///other.example.com", a.id)
	t.Logf("first RPCs answered after %v", time.Since(start))

	// 2. Moving the endpoints moves the traffic: the EndpointSlice now names
	// backend b only (an EDS-only update in hxds).
	moved := time.Now()
	writeEndpoints(t, dir, b)
	eventually(t, bare, "after moving endpoints to b", b.id)
	t.Logf("endpoint move reached the client after %v", time.Since(moved))
	only(t, bare, "after moving endpoints to b", b.id, 10)
	eventually(t, withPort, "host:port after moving endpoints to b", b.id)
	only(t, withPort, "host:port after moving endpoints to b", b.id, 10)

	// 3. Both backends: round robin reaches each.
	writeEndpoints(t, dir, a, b)
	seen := eventually(t, bare, "with both endpoints", a.id, b.id)
	t.Logf("both endpoints answering: %v", seen)

	// 4. hxds saw the client ACK every type and NACK none.
	checkConnections(t, adminAddr, node)

	// 5. Wildcard hosts get no API listener (see wildcardRefused).
	if r := <-wild; r.err != nil {
		t.Error(r.err)
	} else {
		t.Log(r.msg)
	}

	t.Logf("total %v", time.Since(start))
}

// result is what a background check found: a failure, or a note for the log.
type result struct {
	msg string
	err error
}

// wildcardRefused dials a name that only the wildcard Ingress host
// *.wild.example.com covers. hxds serves no API listener for it, so grpc-go
// must fail the RPC with "resource does not exist". grpc-go decides that only
// when its resource watch timer (15 s, not settable through the exported
// API) fires: a listener absent from a response is "not yet known", not
// "deleted". The check runs beside the rest of the test so that wait overlaps.
func wildcardRefused(t *testing.T, xdsAddr string) <-chan result {
	t.Helper()
	wild := dial(t, xdsResolver(t, xdsAddr, "grpc-e2e-wildcard"), "xds:///a.wild.example.com")
	out := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
		defer cancel()
		began := time.Now()
		for {
			resp, err := wild.UnaryCall(ctx, &testgrpc.SimpleRequest{FillServerId: true})
			switch {
			case err == nil:
				out <- result{err: fmt.Errorf("xds:///a.wild.example.com answered by %q; wildcard hosts must not be served to gRPC", resp.GetServerId())}
				return
			case status.Code(err) == codes.Unavailable && strings.Contains(status.Convert(err).Message(), `"a.wild.example.com"`):
				out <- result{msg: fmt.Sprintf("xds:///a.wild.example.com refused after %v: %v", time.Since(began).Round(time.Millisecond), err)}
				return
			case status.Code(err) == codes.Unavailable && ctx.Err() == nil:
				// The resolver first installs an empty config ("produced
				// zero addresses"), then reports the listener error.
				time.Sleep(10 * time.Millisecond)
			default:
				out <- result{err: fmt.Errorf("xds:///a.wild.example.com: want UNAVAILABLE naming the missing listener, got %v", err)}
				return
			}
		}
	}()
	return out
}

// checkConnections polls /debug/connections until the client's stream shows
// an ACK of the latest sent version for LDS, RDS, CDS and EDS, and fails on
// any NACK.
func checkConnections(t *testing.T, adminAddr, node string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		conns := fetchConnections(t, adminAddr)
		var problems []string
		found := false
		for _, c := range conns {
			if c.NodeID != node {
				continue
			}
			found = true
			if c.Group != "higress-gateway" {
				t.Errorf("client %s in group %q, want higress-gateway", node, c.Group)
			}
			byType := map[string]server.TypeStatus{}
			for _, ts := range c.Types {
				byType[ts.TypeURL] = ts
				if ts.LastNack != nil {
					t.Fatalf("client %s NACKed %s version %s: %s", node, ts.TypeURL, ts.LastNack.Version, ts.LastNack.Error)
				}
			}
			for _, short := range []string{"LDS", "RDS", "CDS", "EDS"} {
				ts, ok := byType[xdsTypes[short]]
				switch {
				case !ok:
					problems = append(problems, short+": never requested")
				case ts.SentVersion == "":
					problems = append(problems, short+": nothing sent")
				case ts.AckedVersion != ts.SentVersion:
					problems = append(problems, fmt.Sprintf("%s: sent %s, acked %q", short, ts.SentVersion, ts.AckedVersion))
				}
			}
		}
		if !found {
			problems = append(problems, "client not connected")
		}
		if len(problems) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/debug/connections for %s: %s\n%+v", node, strings.Join(problems, "; "), conns)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func fetchConnections(t *testing.T, adminAddr string) []server.Connection {
	t.Helper()
	resp, err := http.Get("http://" + adminAddr + "/debug/connections")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/debug/connections: %s", resp.Status)
	}
	var conns []server.Connection
	if err := json.NewDecoder(resp.Body).Decode(&conns); err != nil {
		t.Fatalf("/debug/connections: %v", err)
	}
	return conns
}
