package conformance

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	pb "sigs.k8s.io/gateway-api/conformance/echo-basic/grpcechoserver"
	confgrpc "sigs.k8s.io/gateway-api/conformance/utils/grpc"

	"github.com/hxds/hxds/routecheck"
)

// grpcEchoService is the service the conformance gRPC echo server implements.
const grpcEchoService = "gateway_api_conformance.echo_basic.grpcecho.GrpcEcho"

// grpcClient is the suite's gRPC client over the simulated data plane: the
// RPC is an HTTP/2 POST to /<service>/<method>, routed like any request, and
// answered by the simulated gRPC echo server (or by Envoy, whose local
// replies carry the gRPC status its HTTP status maps to).
type grpcClient struct{ d *dataPlane }

var _ confgrpc.Client = grpcClient{}

func (g grpcClient) Close() {}

func (g grpcClient) SendRPC(_ *testing.T, address string, expected confgrpc.ExpectedResponse, _ time.Duration) (*confgrpc.Response, error) {
	method := "Echo"
	req := expected.EchoRequest
	switch {
	case expected.EchoTwoRequest != nil:
		method, req = "EchoTwo", expected.EchoTwoRequest
	case expected.EchoThreeRequest != nil:
		method, req = "EchoThree", expected.EchoThreeRequest
	}
	if req == nil {
		// The request message itself is not inspected: the echo server
		// answers every RPC the same way.
		return &confgrpc.Response{}, fmt.Errorf("no request specified")
	}
	// gRPC addresses always carry the port.
	port, err := gatewayPort(address, "")
	if err != nil {
		return &confgrpc.Response{}, err
	}
	authority := address
	rq := routecheck.Request{
		Port:   port,
		Path:   "/" + grpcEchoService + "/" + method,
		Method: http.MethodPost,
		Headers: []routecheck.Header{
			{Name: "content-type", Value: "application/grpc"},
			{Name: "te", Value: "trailers"},
		},
		SourceIP:    "10.1.0.1",
		RandomValue: rand.Uint64(),
	}
	if md := expected.RequestMetadata; md != nil {
		if md.Authority != "" {
			authority = md.Authority
		}
		keys := make([]string, 0, len(md.Metadata))
		for k := range md.Metadata {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			rq.Headers = append(rq.Headers, routecheck.Header{Name: strings.ToLower(k), Value: md.Metadata[k]})
		}
	}
	rq.Host = authority

	res := g.d.ctl.current()
	if res == nil {
		return &confgrpc.Response{}, fmt.Errorf("%w: nothing served yet", errConnection)
	}
	out, err := routecheck.Evaluate(res, rq)
	if err != nil {
		return &confgrpc.Response{}, fmt.Errorf("simulate the RPC: %w", err)
	}
	if out.ConnectionError != "" {
		return &confgrpc.Response{}, fmt.Errorf("%w: %s", errConnection, out.ConnectionError)
	}
	headers, trailers := metadata.MD{}, metadata.MD{}
	resp := &confgrpc.Response{Headers: &headers, Trailers: &trailers}
	if !out.Forwarded {
		resp.Code = grpcCode(localStatus(out))
		return resp, nil
	}
	g.d.mirror(res, out, out.UpstreamPath)
	pod := g.d.work.pod(hostOf(pickEndpoint(out.Endpoints)))
	if pod == nil {
		resp.Code = codes.Unavailable
		return resp, nil
	}
	env := podEnv(pod)
	c, _ := res[resourcev3.ClusterType][out.Cluster].(*clusterv3.Cluster)
	switch {
	case env["GRPC_ECHO_SERVER"] == "":
		// An HTTP/1 echo server answers a gRPC request with a non-gRPC reply.
		resp.Code = codes.Unknown
		return resp, nil
	case !speaksH2(c):
		// Envoy sends HTTP/1.1 to a gRPC server: the connection fails.
		resp.Code = codes.Unavailable
		return resp, nil
	case !strings.HasPrefix(out.UpstreamPath, "/"+grpcEchoService+"/"):
		resp.Code = codes.Unimplemented
		return resp, nil
	}
	var echoed []*pb.Header
	names := make([]string, 0, len(out.RequestHeaders))
	for n := range out.RequestHeaders {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		echoed = append(echoed, &pb.Header{Key: strings.ToLower(n), Value: out.RequestHeaders[n]})
	}
	echoed = append(echoed, &pb.Header{Key: ":authority", Value: out.UpstreamHost})
	for n, v := range out.ResponseHeaders {
		headers.Append(n, v)
	}
	resp.Code = codes.OK
	resp.Response = &pb.EchoResponse{Assertions: &pb.Assertions{
		FullyQualifiedMethod: out.UpstreamPath,
		Headers:              echoed,
		Authority:            out.UpstreamHost,
		Context:              &pb.Context{Namespace: pod.Namespace, Pod: pod.Name},
	}}
	return resp, nil
}

// grpcCode is the gRPC status of an HTTP reply without grpc-status, as Envoy
// (Grpc::Utility::httpToGrpcStatus) and gRPC clients map it.
func grpcCode(status int) codes.Code {
	switch status {
	case 400:
		return codes.Internal
	case 401:
		return codes.Unauthenticated
	case 403:
		return codes.PermissionDenied
	case 404:
		return codes.Unimplemented
	case 429, 502, 503, 504:
		return codes.Unavailable
	}
	return codes.Unknown
}
