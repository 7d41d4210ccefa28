// Package admin is the admin HTTP endpoint: readiness, health, Prometheus
// metrics, and debug views of what is served (config dump), to whom
// (connections) and what was rejected (status).
package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/hxds/hxds/translate/diag"
	"github.com/hxds/hxds/xds/server"
)

// Deps are the parts of the process the endpoints read.
type Deps struct {
	// Ready reports whether every source synced and a first snapshot was built.
	Ready func() bool
	// Dump is the cache view behind /debug/config_dump.
	Dump Source
	// DefaultGroup is used when ?group= is not given.
	DefaultGroup string
	// Connections lists connected xDS clients.
	Connections func() []server.Connection
	// Status lists every input object's verdict.
	Status func() []diag.Status
	// GatewayAPI returns the Gateway API status computed by the last
	// translation (what a Kubernetes deployment writes back to the objects).
	GatewayAPI func() any
	// Registries lists the registry watchers (/registry/watcherStatus).
	Registries func() any
	// WasmModules finds a cached Wasm module file by its sha256 (direct
	// mode's module server, /wasm/<sha256>.wasm); nil disables it.
	WasmModules func(checksum string) (path string, ok bool)
	// Gatherer serves /metrics.
	Gatherer prometheus.Gatherer
	Log      *zap.Logger
}

// Handler returns the admin mux.
func Handler(d Deps) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/ready", func(w http.ResponseWriter, _ *http.Request) {
		if d.Ready() {
			fmt.Fprintln(w, "ready")
			return
		}
		http.Error(w, "not ready: sources not synced or no snapshot built yet", http.StatusServiceUnavailable)
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.Handle("/metrics", promhttp.HandlerFor(d.Gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("/debug/config_dump", func(w http.ResponseWriter, r *http.Request) {
		group := r.URL.Query().Get("group")
		if group == "" {
			group = d.DefaultGroup
		}
		includeEDS := queryFlag(r, "include_eds")
		cd, err := ConfigDump(d.Dump, group, includeEDS)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		b, err := MarshalConfigDump(cd)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	})
	mux.HandleFunc("/debug/connections", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, d.Connections())
	})
	mux.HandleFunc("/debug/status", func(w http.ResponseWriter, r *http.Request) {
		all := d.Status()
		summary := struct {
			Objects  int           `json:"objects"`
			Accepted int           `json:"accepted"`
			Rejected int           `json:"rejected"`
			Ignored  int           `json:"ignored"`
			Warnings int           `json:"with_findings"`
			Status   []diag.Status `json:"status"`
		}{Objects: len(all), Status: all}
		for _, s := range all {
			switch {
			case s.Ignored:
				summary.Ignored++
			case s.Accepted:
				summary.Accepted++
			default:
				summary.Rejected++
			}
			if len(s.Findings) > 0 {
				summary.Warnings++
			}
		}
		if queryFlag(r, "problems") {
			kept := summary.Status[:0:0]
			for _, s := range all {
				if len(s.Findings) > 0 {
					kept = append(kept, s)
				}
			}
			summary.Status = kept
		}
		writeJSON(w, summary)
	})
	mux.HandleFunc("/debug/gatewayapi", func(w http.ResponseWriter, _ *http.Request) {
		if d.GatewayAPI == nil {
			writeJSON(w, struct{}{})
			return
		}
		writeJSON(w, d.GatewayAPI())
	})
	mux.HandleFunc("/registry/watcherStatus", func(w http.ResponseWriter, _ *http.Request) {
		if d.Registries == nil {
			writeJSON(w, []struct{}{})
			return
		}
		writeJSON(w, d.Registries())
	})
	mux.HandleFunc("/wasm/", func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/wasm/")
		sum, ok := strings.CutSuffix(name, ".wasm")
		if d.WasmModules == nil || !ok || strings.Contains(sum, "/") {
			http.NotFound(w, r)
			return
		}
		path, ok := d.WasmModules(sum)
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/wasm")
		http.ServeFile(w, r, path)
	})
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `hxds admin
/ready                      sources synced and first snapshot built
/healthz                    process alive
/metrics                    Prometheus metrics
/debug/config_dump          what a gateway group is served (?group=, ?include_eds)
/debug/connections          connected xDS clients: versions sent and ACKed, last NACK
/debug/status               every input object: accepted, rejected or ignored, and why (?problems)
/debug/gatewayapi           Gateway API status: GatewayClasses, Gateways and listeners, HTTPRoute parents
/wasm/<sha256>.wasm         Wasm modules fetched in direct mode (--wasm-module-server)
/registry/watcherStatus     service registry watchers: name, type, healthy, ready, services, held instances
/debug/pprof/               Go profiles
`)
	})
	return mux
}

func queryFlag(r *http.Request, name string) bool {
	v, ok := r.URL.Query()[name]
	if !ok {
		return false
	}
	if len(v) == 0 || v[0] == "" {
		return true
	}
	b, err := strconv.ParseBool(v[0])
	return err == nil && b
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

// Serve runs the admin server on lis until it is closed.
func Serve(lis net.Listener, h http.Handler, log *zap.Logger) (*http.Server, <-chan error) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() {
		log.Info("serving admin HTTP", zap.String("address", lis.Addr().String()))
		if err := srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("admin server: %w", err)
		}
		close(errc)
	}()
	return srv, errc
}
