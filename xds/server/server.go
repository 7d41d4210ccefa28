// Package server serves the xDS cache over gRPC: ADS state-of-the-world and
// delta through go-control-plane's server, with a tracker that records every
// stream's versions, ACKs and NACKs.
package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	gcpcache "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	gcpserver "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// maxMessageSize bounds one xDS message: large gateways send big CDS/RDS
// responses (Higress raises it to 100 MiB for the same reason).
const maxMessageSize = 100 << 20

// Server is the ADS gRPC server.
type Server struct {
	grpc *grpc.Server
	log  *zap.Logger
}

// New builds the gRPC server for cache; tracker receives every stream event.
func New(ctx context.Context, cache gcpcache.Cache, tracker *Tracker, log *zap.Logger) *Server {
	g := grpc.NewServer(
		grpc.MaxRecvMsgSize(maxMessageSize),
		grpc.MaxSendMsgSize(maxMessageSize),
		grpc.MaxConcurrentStreams(1<<20),
		// Detect dead Envoys so their watches are released, and let Envoys
		// that keep their own keepalive ping us as often as every 10 s.
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	)
	xds := gcpserver.NewServer(ctx, cache, tracker)
	discoverygrpc.RegisterAggregatedDiscoveryServiceServer(g, xds)
	return &Server{grpc: g, log: log}
}

// Serve accepts connections on lis until Stop.
func (s *Server) Serve(lis net.Listener) error {
	s.log.Info("serving xDS (ADS state-of-the-world and delta)", zap.String("address", lis.Addr().String()))
	if err := s.grpc.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("xDS server: %w", err)
	}
	return nil
}

// Stop closes every stream and the listener.
func (s *Server) Stop() { s.grpc.Stop() }
