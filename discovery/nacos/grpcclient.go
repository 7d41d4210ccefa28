package nacos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	nacosgrpc "github.com/nacos-group/nacos-sdk-go/v2/api/grpc"
	"github.com/nacos-group/nacos-sdk-go/v2/common/constant"
	"github.com/nacos-group/nacos-sdk-go/v2/common/http_agent"
	"github.com/nacos-group/nacos-sdk-go/v2/common/remote/rpc/rpc_request"
	"github.com/nacos-group/nacos-sdk-go/v2/common/remote/rpc/rpc_response"
	"github.com/nacos-group/nacos-sdk-go/v2/common/security"
	"github.com/nacos-group/nacos-sdk-go/v2/model"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/protobuf/types/known/anypb"
)

// grpcConn is one connection to a Nacos 2.x server, speaking its gRPC
// protocol with nacos-sdk-go v2's generated stubs and request/response
// types. The SDK's own RpcClient is not used: it races on its connection
// state (go test -race fails as soon as it reconnects), hides the
// connection state behind an HTTP probe, reconnects on its own schedule
// and writes cache files. Here a connection is used until it breaks; the
// watcher then dials again and resubscribes, which is all the
// reconnection logic a watcher needs.
type grpcConn struct {
	cc     *grpc.ClientConn
	req    nacosgrpc.RequestClient
	stream nacosgrpc.BiRequestStream_RequestBiStreamClient
	cancel context.CancelFunc
	sendMu sync.Mutex

	namespace string
	timeout   time.Duration
	auth      *security.SecurityProxy // nil without credentials

	done    chan struct{} // closed when the bidi stream breaks
	doneErr error
}

// clientAbilities as the SDK announces them.
var clientAbilities = rpc_request.ClientAbilities{}

// dialNacos connects: server check, bidi stream, connection setup. onPush
// receives every NotifySubscriberRequest the server sends.
func dialNacos(ctx context.Context, server serverAddr, namespace string, timeout time.Duration,
	auth *security.SecurityProxy, onPush func(model.Service)) (*grpcConn, error) {
	target := net.JoinHostPort(server.host, strconv.Itoa(int(server.port)+grpcPortOffset))
	cc, err := grpc.NewClient(target,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second, PermitWithoutStream: true}))
	if err != nil {
		return nil, fmt.Errorf("gRPC client for %s: %w", target, err)
	}
	c := &grpcConn{cc: cc, req: nacosgrpc.NewRequestClient(cc), namespace: namespace, timeout: timeout, auth: auth,
		done: make(chan struct{})}
	var check rpc_response.ServerCheckResponse
	if err := c.call(ctx, rpc_request.NewServerCheckRequest(), "ServerCheckResponse", &check); err != nil {
		cc.Close()
		return nil, fmt.Errorf("server check of %s: %w", target, err)
	}
	sctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.stream, err = nacosgrpc.NewBiRequestStreamClient(cc).RequestBiStream(sctx)
	if err != nil {
		cancel()
		cc.Close()
		return nil, fmt.Errorf("bidi stream to %s: %w", target, err)
	}
	setup := rpc_request.NewConnectionSetupRequest()
	setup.ClientVersion = constant.CLIENT_VERSION
	setup.Tenant = namespace
	setup.Labels = map[string]string{constant.LABEL_SOURCE: constant.LABEL_SOURCE_SDK, constant.LABEL_MODULE: constant.LABEL_MODULE_NAMING}
	setup.ClientAbilities = clientAbilities
	if err := c.send(toPayload(setup, nil)); err != nil {
		c.Close()
		return nil, fmt.Errorf("connection setup with %s: %w", target, err)
	}
	go c.recv(onPush)
	return c, nil
}

func toPayload(r rpc_request.IRequest, headers map[string]string) *nacosgrpc.Payload {
	h := map[string]string{}
	for k, v := range r.GetHeaders() {
		h[k] = v
	}
	for k, v := range headers {
		h[k] = v
	}
	return &nacosgrpc.Payload{
		Metadata: &nacosgrpc.Metadata{Type: r.GetRequestType(), Headers: h},
		Body:     &anypb.Any{Value: []byte(r.GetBody(r))},
	}
}

func (c *grpcConn) send(p *nacosgrpc.Payload) error {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	return c.stream.Send(p)
}

// recv serves the server's requests on the bidi stream until it breaks.
func (c *grpcConn) recv(onPush func(model.Service)) {
	defer close(c.done)
	for {
		p, err := c.stream.Recv()
		if err != nil {
			c.doneErr = err
			return
		}
		typ := p.GetMetadata().GetType()
		body := p.GetBody().GetValue()
		var ack rpc_response.IResponse
		var reqID string
		switch typ {
		case constant.NOTIFY_SUBSCRIBE_REQUEST_NAME:
			n := rpc_request.NotifySubscriberRequest{NamingRequest: &rpc_request.NamingRequest{Request: &rpc_request.Request{}}}
			if err := json.Unmarshal(body, &n); err != nil {
				continue // a push we cannot read; the next listing catches up
			}
			onPush(n.ServiceInfo)
			reqID = n.RequestId
			ack = &rpc_response.NotifySubscriberResponse{Response: &rpc_response.Response{ResultCode: 200, Success: true}}
		case "ClientDetectionRequest":
			var r struct {
				RequestID string `json:"requestId"`
			}
			_ = json.Unmarshal(body, &r)
			reqID = r.RequestID
			ack = &rpc_response.ClientDetectionResponse{Response: &rpc_response.Response{ResultCode: 200, Success: true}}
		case "ConnectResetRequest":
			// The server asks us to go elsewhere: end this connection.
			c.doneErr = errors.New("server asked the client to reconnect")
			c.cancel()
			return
		default:
			continue
		}
		ack.SetRequestId(reqID)
		_ = c.send(&nacosgrpc.Payload{
			Metadata: &nacosgrpc.Metadata{Type: ack.GetResponseType()},
			Body:     &anypb.Any{Value: []byte(ack.GetBody())},
		})
	}
}

// alive says whether the bidi stream still stands; err says why not.
func (c *grpcConn) alive() (bool, error) {
	select {
	case <-c.done:
		if c.doneErr != nil {
			return false, c.doneErr
		}
		return false, errors.New("stream closed")
	default:
		return true, nil
	}
}

// Close ends the connection.
func (c *grpcConn) Close() {
	if c.cancel != nil {
		c.cancel()
	}
	c.cc.Close()
}

// errUnregistered is the server's answer before it has processed the
// connection setup (a moment after connecting).
const errUnregistered = 301

// call sends one request and decodes the response into out (whose type
// must be wantType).
func (c *grpcConn) call(ctx context.Context, r rpc_request.IRequest, wantType string, out rpc_response.IResponse) (err error) {
	defer func() {
		if p := recover(); p != nil { // the SDK's security code type-asserts server data
			err = fmt.Errorf("panic in nacos SDK: %v", p)
		}
	}()
	var sec map[string]string
	if c.auth != nil {
		sec = c.auth.GetSecurityInfo(security.BuildNamingResourceByRequest(r))
	}
	p := toPayload(r, sec)
	for attempt := 0; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, c.timeout)
		resp, err := c.req.Request(cctx, p)
		cancel()
		if err != nil {
			return err
		}
		typ := resp.GetMetadata().GetType()
		body := resp.GetBody().GetValue()
		if typ == "ErrorResponse" {
			var e rpc_response.ErrorResponse
			e.Response = &rpc_response.Response{}
			_ = json.Unmarshal(body, &e)
			if e.ErrorCode == errUnregistered && attempt < 20 {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(50 * time.Millisecond):
				}
				continue
			}
			return fmt.Errorf("%s: nacos error %d: %s", r.GetRequestType(), e.ErrorCode, truncate(e.Message, 200))
		}
		if typ != wantType {
			return fmt.Errorf("%s: unexpected response type %q", r.GetRequestType(), truncate(typ, 80))
		}
		if err := json.Unmarshal(body, out); err != nil {
			return fmt.Errorf("%s: %w", wantType, err)
		}
		if !out.IsSuccess() && out.GetResultCode() != 200 {
			return fmt.Errorf("%s: nacos error %d: %s", r.GetRequestType(), out.GetErrorCode(), truncate(out.GetMessage(), 200))
		}
		return nil
	}
}

func (c *grpcConn) healthCheck(ctx context.Context) error {
	out := rpc_response.HealthCheckResponse{Response: &rpc_response.Response{}}
	return c.call(ctx, rpc_request.NewHealthCheckRequest(), "HealthCheckResponse", &out)
}

// listServices pages through one group's service names.
func (c *grpcConn) listServices(ctx context.Context, group string) ([]string, error) {
	var names []string
	for page := 1; page <= maxPages; page++ {
		out := rpc_response.ServiceListResponse{Response: &rpc_response.Response{}}
		req := rpc_request.NewServiceListRequest(c.namespace, "", group, page, pageSize, "")
		if err := c.call(ctx, req, "ServiceListResponse", &out); err != nil {
			return nil, err
		}
		names = append(names, out.ServiceNames...)
		if len(names) >= out.Count {
			break
		}
		if len(out.ServiceNames) == 0 {
			return nil, errShortListing(group, out.Count, len(names))
		}
	}
	return names, nil
}

// subscribe (or unsubscribe) one service; subscribing returns its
// current instances.
func (c *grpcConn) subscribe(ctx context.Context, group, name string, on bool) (model.Service, error) {
	out := rpc_response.SubscribeServiceResponse{Response: &rpc_response.Response{}}
	req := rpc_request.NewSubscribeServiceRequest(c.namespace, name, group, "", on)
	req.Headers["app"] = "hxds"
	err := c.call(ctx, req, "SubscribeServiceResponse", &out)
	return out.ServiceInfo, err
}

// newAuth returns the SDK's security proxy (username/password login,
// AK/SK signatures), or nil without credentials.
func newAuth(s settings, server serverAddr, timeout time.Duration) (sp *security.SecurityProxy, err error) {
	a, r := s.cfg.Auth, s.cfg.Registry
	if a.NacosUsername == "" && r.NacosAccessKey == "" {
		return nil, nil
	}
	defer func() {
		if p := recover(); p != nil {
			sp, err = nil, fmt.Errorf("nacos login: panic in nacos SDK: %v", p)
		}
	}()
	cc := constant.ClientConfig{NamespaceId: s.namespaceID, TimeoutMs: uint64(timeout / time.Millisecond),
		Username: a.NacosUsername, Password: a.NacosPassword, AccessKey: r.NacosAccessKey, SecretKey: r.NacosSecretKey,
		ContextPath: "/nacos"}
	sc := []constant.ServerConfig{{IpAddr: server.host, Port: uint64(server.port), Scheme: "http", ContextPath: "/nacos"}}
	p := security.NewSecurityProxy(cc, sc, &http_agent.HttpAgent{})
	// Login only fetches a token when the current one is due for refresh
	// (or missing), so calling it often is cheap.
	p.Login()
	return &p, nil
}

// serviceKey is how pushes name a service: "group@@name".
func serviceKey(group, name string) string { return group + constant.SERVICE_INFO_SPLITER + name }

// pushKey reads the service key of a pushed ServiceInfo, whose name may
// or may not carry the group already.
func pushKey(s model.Service) string {
	if strings.Contains(s.Name, constant.SERVICE_INFO_SPLITER) {
		return s.Name
	}
	g := s.GroupName
	if g == "" {
		g = defaultGroup
	}
	return serviceKey(g, s.Name)
}
