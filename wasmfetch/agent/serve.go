package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/hxds/hxds/wasmfetch"
)

// Config is what Run needs.
type Config struct {
	// Listen is the downstream ADS address: host:port or unix:///path.
	Listen string
	// Upstream is the hxds ADS address.
	Upstream string
	// AdminAddress is the admin HTTP address ("" disables it).
	AdminAddress string
	// CacheDir holds the modules; CacheOptions tune fetching.
	CacheDir     string
	CacheOptions wasmfetch.Options
	Log          *zap.Logger
	// Listening, when set, is called with the bound addresses (admin nil when disabled).
	Listening func(ads, admin net.Addr)
}

// Listen opens a listener for "host:port" or "unix:///path" (a stale socket file is replaced).
func Listen(addr string) (net.Listener, error) {
	if p, ok := strings.CutPrefix(addr, "unix://"); ok {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("remove stale socket %s: %w", p, err)
		}
		return net.Listen("unix", p)
	}
	return net.Listen("tcp", addr)
}

// Run serves the agent until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	log := cfg.Log
	if log == nil {
		log = zap.NewNop()
	}
	cache, err := wasmfetch.New(cfg.CacheDir, cfg.CacheOptions)
	if err != nil {
		return fmt.Errorf("wasm module cache %s: %w", cfg.CacheDir, err)
	}
	a, err := New(Options{Upstream: cfg.Upstream, Cache: cache, Log: log})
	if err != nil {
		return fmt.Errorf("agent for upstream %s: %w", cfg.Upstream, err)
	}
	defer a.Close()

	lis, err := Listen(cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	gs := grpc.NewServer(grpc.MaxRecvMsgSize(maxMsgSize), grpc.MaxSendMsgSize(maxMsgSize))
	a.Register(gs)
	errs := make(chan error, 2)
	go func() { errs <- gs.Serve(lis) }()
	defer gs.Stop()

	var adminAddr net.Addr
	if cfg.AdminAddress != "" {
		al, err := net.Listen("tcp", cfg.AdminAddress)
		if err != nil {
			return fmt.Errorf("listen %s: %w", cfg.AdminAddress, err)
		}
		hs := &http.Server{Handler: a.AdminHandler(), ReadHeaderTimeout: 10 * time.Second}
		go func() { errs <- hs.Serve(al) }()
		defer hs.Close()
		adminAddr = al.Addr()
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go cache.Run(runCtx)
	log.Info("hxds-agent serving", zap.String("ads", lis.Addr().String()), zap.String("upstream", cfg.Upstream), zap.String("cache", cache.Dir()))
	if cfg.Listening != nil {
		cfg.Listening(lis.Addr(), adminAddr)
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-errs:
		return err
	}
}

// DebugInfo is the /debug document.
type DebugInfo struct {
	Modules []wasmfetch.ModuleInfo `json:"modules"`
	Errors  []wasmfetch.FetchError `json:"errors"`
	Stats   wasmfetch.Stats        `json:"stats"`
}

// AdminHandler serves /ready, /healthz, /metrics and /debug.
func (a *Agent) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("/ready", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), time.Second)
		defer cancel()
		if !a.Ready(ctx) {
			http.Error(w, "upstream not reachable: "+a.conn.GetState().String(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.Handle("/metrics", promhttp.HandlerFor(a.m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/debug", func(w http.ResponseWriter, _ *http.Request) {
		d := DebugInfo{Modules: a.cache.List(), Errors: a.cache.Errors(), Stats: a.cache.Stats()}
		if d.Modules == nil {
			d.Modules = []wasmfetch.ModuleInfo{}
		}
		if d.Errors == nil {
			d.Errors = []wasmfetch.FetchError{}
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(d)
	})
	return mux
}
