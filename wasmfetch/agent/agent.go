// Package agent is hxds-agent's library: an ADS proxy that runs beside
// Envoy, forwards both ADS protocols (state-of-the-world and delta) to hxds
// and turns remote Wasm modules in ECDS responses into verified local files
// (higress-semantics §7.5, Istio's pilot-agent xds_proxy).
//
// One upstream stream is opened per downstream stream; requests are
// forwarded as they come (the node passes through). Responses are forwarded
// in order; a response of type TypedExtensionConfig is converted first,
// asynchronously, its resources in parallel:
//
//   - non-Wasm configs and Wasm with local code pass through;
//   - remote code: the ISTIO_META_* variables are stripped from the VM's
//     environment (pull secret, pull policy, resource version), the module
//     is fetched through the wasmfetch cache, and vm_config.code becomes
//     local.filename = the cached file;
//   - a module that cannot be loaded NACKs the whole response upstream (not
//     forwarded: Envoy keeps its last config) unless the filter is
//     fail_open, in which case that resource becomes an allow-all RBAC
//     filter of the same name.
package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/hxds/hxds/wasmfetch"
)

const maxMsgSize = 256 << 20

// queueDepth bounds the responses of one stream being converted or waiting
// to be sent; the upstream is not read further while it is full.
const queueDepth = 16

// Options configure an Agent.
type Options struct {
	// Upstream is the hxds ADS address (host:port, or any gRPC target),
	// dialled without TLS.
	Upstream string
	// Cache fetches and stores modules.
	Cache *wasmfetch.Cache
	// Log receives the agent's logs (nil: none).
	Log *zap.Logger
}

// Agent is the ADS proxy. Register it on a gRPC server.
type Agent struct {
	discoverygrpc.UnimplementedAggregatedDiscoveryServiceServer

	cache *wasmfetch.Cache
	f     fetcher
	log   *zap.Logger
	conn  *grpc.ClientConn
	ads   discoverygrpc.AggregatedDiscoveryServiceClient
	m     *metrics
}

// New creates an Agent; the upstream connection is made lazily and
// re-established by gRPC when it breaks.
func New(opts Options) (*Agent, error) {
	if opts.Cache == nil {
		return nil, errors.New("agent: no module cache")
	}
	conn, err := grpc.NewClient(opts.Upstream,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMsgSize), grpc.MaxCallSendMsgSize(maxMsgSize)))
	if err != nil {
		return nil, fmt.Errorf("agent: upstream %s: %w", opts.Upstream, err)
	}
	conn.Connect()
	a := &Agent{
		cache: opts.Cache, f: opts.Cache, log: opts.Log, conn: conn,
		ads: discoverygrpc.NewAggregatedDiscoveryServiceClient(conn),
	}
	if a.log == nil {
		a.log = zap.NewNop()
	}
	a.m = newMetrics(a)
	return a, nil
}

// Register serves the agent's ADS on s.
func (a *Agent) Register(s *grpc.Server) {
	discoverygrpc.RegisterAggregatedDiscoveryServiceServer(s, a)
}

// Close closes the upstream connection, which ends every proxied stream.
func (a *Agent) Close() error { return a.conn.Close() }

// Ready reports whether the upstream connection is up, connecting it if idle.
func (a *Agent) Ready(ctx context.Context) bool {
	for {
		s := a.conn.GetState()
		switch s {
		case connectivity.Ready:
			return true
		case connectivity.Idle:
			a.conn.Connect()
		case connectivity.Shutdown, connectivity.TransientFailure:
			return false
		}
		if !a.conn.WaitForStateChange(ctx, s) {
			return false
		}
	}
}

// Registry returns the agent's Prometheus metrics.
func (a *Agent) Registry() *prometheus.Registry { return a.m.reg }

// nackStatus is the error_detail of a NACK.
func nackStatus(err error) *status.Status {
	return &status.Status{Code: int32(codes.InvalidArgument), Message: err.Error()}
}

// pending is a response of the stream, possibly still being converted.
type pending[R any] struct {
	done chan struct{}
	resp R
	err  error // NACK the response with this error instead of forwarding it
}

// pipe is the common part of both protocols: it reads upstream responses,
// converts ECDS ones asynchronously and hands them, in order, to deliver.
type pipe[R proto.Message] struct {
	a       *Agent
	recv    func() (R, error)
	convert func(context.Context, R) (R, error) // nil result: pass through
	deliver func(R, error) error                // forward (err nil) or NACK
}

func (p *pipe[R]) run(ctx context.Context) error {
	queue := make(chan *pending[R], queueDepth)
	sctx, scancel := context.WithCancel(ctx)
	sendErr := make(chan error, 1)
	senderDone := make(chan struct{})
	go func() {
		defer close(senderDone)
		for pd := range queue {
			select {
			case <-pd.done:
			case <-sctx.Done():
				return
			}
			if sctx.Err() != nil {
				return
			}
			if err := p.deliver(pd.resp, pd.err); err != nil {
				sendErr <- err
				return
			}
		}
	}()
	// The sender never runs after run returns (nor, so, after the stream handler did).
	defer func() {
		scancel()
		close(queue)
		<-senderDone
	}()
	for {
		resp, err := p.recv()
		if err != nil {
			return err
		}
		pd := &pending[R]{done: make(chan struct{}), resp: resp}
		go func() {
			defer close(pd.done)
			out, err := p.convert(sctx, resp)
			if err != nil {
				pd.err = err
				return
			}
			pd.resp = out
		}()
		select {
		case queue <- pd:
		case err := <-sendErr:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// StreamAggregatedResources proxies a state-of-the-world ADS stream.
func (a *Agent) StreamAggregatedResources(ds discoverygrpc.AggregatedDiscoveryService_StreamAggregatedResourcesServer) error {
	ctx, cancel := context.WithCancel(ds.Context())
	defer cancel()
	us, err := a.ads.StreamAggregatedResources(ctx)
	if err != nil {
		return grpcstatus.Errorf(codes.Unavailable, "hxds-agent: upstream: %v", err)
	}
	a.m.streams.WithLabelValues("sotw").Inc()
	defer a.m.streams.WithLabelValues("sotw").Dec()

	var (
		sendMu sync.Mutex // upstream sends: forwarded requests and NACKs
		stMu   sync.Mutex
		last   = map[string]*discoverygrpc.DiscoveryRequest{} // last downstream request per type
	)
	upSend := func(req *discoverygrpc.DiscoveryRequest) error {
		sendMu.Lock()
		defer sendMu.Unlock()
		return us.Send(req)
	}
	downErr := make(chan error, 1)
	go func() {
		for {
			req, err := ds.Recv()
			if err != nil {
				downErr <- err
				return
			}
			stMu.Lock()
			last[req.GetTypeUrl()] = req
			stMu.Unlock()
			if err := upSend(req); err != nil {
				downErr <- err
				return
			}
		}
	}()
	p := &pipe[*discoverygrpc.DiscoveryResponse]{
		a:    a,
		recv: us.Recv,
		convert: func(ctx context.Context, r *discoverygrpc.DiscoveryResponse) (*discoverygrpc.DiscoveryResponse, error) {
			if r.GetTypeUrl() != ExtensionConfigType {
				return r, nil
			}
			r = proto.Clone(r).(*discoverygrpc.DiscoveryResponse)
			return r, convertAll(ctx, a.f, r.Resources, a.m.observe)
		},
		deliver: func(r *discoverygrpc.DiscoveryResponse, cerr error) error {
			if cerr == nil {
				return ds.Send(r)
			}
			// NACK as Envoy would: the last version Envoy accepted, the
			// rejected nonce, and the names it subscribes to (a
			// state-of-the-world request replaces the subscription).
			nack := &discoverygrpc.DiscoveryRequest{TypeUrl: r.GetTypeUrl(), ResponseNonce: r.GetNonce(), ErrorDetail: nackStatus(cerr)}
			stMu.Lock()
			if prev := last[r.GetTypeUrl()]; prev != nil {
				nack.VersionInfo = prev.GetVersionInfo()
				nack.ResourceNames = prev.GetResourceNames()
			}
			stMu.Unlock()
			a.m.nacks.Inc()
			a.log.Warn("NACK ECDS response", zap.String("version", r.GetVersionInfo()), zap.String("nonce", r.GetNonce()), zap.Error(cerr))
			return upSend(nack)
		},
	}
	return a.finish(ctx, cancel, p.run, downErr, us.CloseSend)
}

// DeltaAggregatedResources proxies a delta (incremental) ADS stream.
func (a *Agent) DeltaAggregatedResources(ds discoverygrpc.AggregatedDiscoveryService_DeltaAggregatedResourcesServer) error {
	ctx, cancel := context.WithCancel(ds.Context())
	defer cancel()
	us, err := a.ads.DeltaAggregatedResources(ctx)
	if err != nil {
		return grpcstatus.Errorf(codes.Unavailable, "hxds-agent: upstream: %v", err)
	}
	a.m.streams.WithLabelValues("delta").Inc()
	defer a.m.streams.WithLabelValues("delta").Dec()

	var sendMu sync.Mutex
	upSend := func(req *discoverygrpc.DeltaDiscoveryRequest) error {
		sendMu.Lock()
		defer sendMu.Unlock()
		return us.Send(req)
	}
	downErr := make(chan error, 1)
	go func() {
		for {
			req, err := ds.Recv()
			if err != nil {
				downErr <- err
				return
			}
			if err := upSend(req); err != nil {
				downErr <- err
				return
			}
		}
	}()
	p := &pipe[*discoverygrpc.DeltaDiscoveryResponse]{
		a:    a,
		recv: us.Recv,
		convert: func(ctx context.Context, r *discoverygrpc.DeltaDiscoveryResponse) (*discoverygrpc.DeltaDiscoveryResponse, error) {
			if r.GetTypeUrl() != ExtensionConfigType {
				return r, nil
			}
			r = proto.Clone(r).(*discoverygrpc.DeltaDiscoveryResponse)
			anys := make([]*anypb.Any, len(r.Resources))
			for i, res := range r.Resources {
				anys[i] = res.GetResource()
			}
			err := convertAll(ctx, a.f, anys, a.m.observe)
			for i, res := range r.Resources {
				res.Resource = anys[i]
			}
			return r, err
		},
		deliver: func(r *discoverygrpc.DeltaDiscoveryResponse, cerr error) error {
			if cerr == nil {
				return ds.Send(r)
			}
			a.m.nacks.Inc()
			a.log.Warn("NACK ECDS response", zap.String("nonce", r.GetNonce()), zap.Error(cerr))
			return upSend(&discoverygrpc.DeltaDiscoveryRequest{TypeUrl: r.GetTypeUrl(), ResponseNonce: r.GetNonce(), ErrorDetail: nackStatus(cerr)})
		},
	}
	return a.finish(ctx, cancel, p.run, downErr, us.CloseSend)
}

// finish runs the response pipe until either side ends: Envoy closing its
// side ends the stream cleanly; an upstream failure is reported to Envoy as
// Unavailable so that it reconnects.
func (a *Agent) finish(ctx context.Context, cancel context.CancelFunc, run func(context.Context) error, downErr <-chan error, closeSend func() error) error {
	upErr := make(chan error, 1)
	go func() { upErr <- run(ctx) }()
	select {
	case err := <-downErr:
		_ = closeSend()
		cancel()
		<-upErr
		if errors.Is(err, io.EOF) || grpcstatus.Code(err) == codes.Canceled {
			return nil
		}
		return err
	case err := <-upErr:
		if s, ok := grpcstatus.FromError(err); ok && s.Code() != codes.Unknown {
			return grpcstatus.Errorf(codes.Unavailable, "hxds-agent: upstream: %s", s.Message())
		}
		return grpcstatus.Errorf(codes.Unavailable, "hxds-agent: upstream: %v", err)
	}
}
