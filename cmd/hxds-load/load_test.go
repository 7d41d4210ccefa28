package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/hxds/hxds/internal/app"
	"github.com/hxds/hxds/internal/gen"
	_ "github.com/hxds/hxds/internal/testutil"
	"github.com/hxds/hxds/translate/input"
)

func TestLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"10.0.0.1:15010", "example.com:15010", "0.0.0.0:15010"} {
		if _, err := parseRunFlags([]string{"--xds-address", addr}, &bytes.Buffer{}); err == nil {
			t.Errorf("%s accepted", addr)
		}
	}
	for _, addr := range []string{"127.0.0.1:15010", "localhost:1", "[::1]:15010"} {
		if _, err := parseRunFlags([]string{"--xds-address", addr}, &bytes.Buffer{}); err != nil {
			t.Errorf("%s: %v", addr, err)
		}
	}
}

// TestRun loads an in-process hxds with a few clients of each kind and makes
// route and endpoint changes until --duration ends.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	if err := gen.WriteDir(dir, gen.Spec{Ingresses: 10, RulesPerIngress: 2, PathsPerRule: 2, TLSHosts: 3}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type addrs struct{ xds, admin net.Addr }
	listening := make(chan addrs, 1)
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, app.Config{
			XDSAddress: "127.0.0.1:0", AdminAddress: "127.0.0.1:0", ConfigDir: dir, Options: input.DefaultOptions(),
			DebounceHoldoff: 5 * time.Millisecond, DebounceMax: 100 * time.Millisecond, Log: zap.NewNop(),
			Listening: func(x, a net.Addr) { listening <- addrs{x, a} },
		})
	}()
	var a addrs
	select {
	case a = <-listening:
	case err := <-done:
		t.Fatal(err)
	}
	for _, extra := range [][]string{nil, {"--delta", "--light", "--conns-per-process", "2"}} {
		args := append([]string{"--xds-address", a.xds.String(), "--admin-address", a.admin.String(),
			"--clients", "4", "--duration", "3s", "--change-dir", dir, "--interval", "20ms"}, extra...)
		cfg, err := parseRunFlags(args, &bytes.Buffer{})
		if err != nil {
			t.Fatal(err)
		}
		var log bytes.Buffer
		rep, err := run(context.Background(), cfg, &log)
		if err != nil {
			t.Fatalf("%v: %v\n%s", extra, err, log.String())
		}
		if rep.FullConfig.PerClient.N != 4 || len(rep.Changes) != 2 {
			t.Fatalf("%v: report %+v", extra, rep)
		}
		for _, p := range rep.Changes {
			if p.Changes == 0 || p.PerClient.N != 4*p.Changes {
				t.Errorf("%v: %s: %d changes, %d samples", extra, p.Name, p.Changes, p.PerClient.N)
			}
		}
		if h := rep.Health; h.NACKs+h.Failed+h.Reconnects > 0 {
			t.Errorf("%v: health %+v", extra, h)
		}
		if rep.Server == nil || rep.Server.Proxies < 4 {
			t.Errorf("%v: server stats %+v", extra, rep.Server)
		}
		jsonPath := filepath.Join(t.TempDir(), "report.json")
		if err := rep.writeJSON(jsonPath); err != nil {
			t.Fatal(err)
		}
		var decoded struct {
			FullConfig struct {
				PerClient struct {
					N     int     `json:"n"`
					P99MS float64 `json:"p99Ms"`
				} `json:"perClient"`
			} `json:"fullConfig"`
		}
		if b, err := os.ReadFile(jsonPath); err != nil || json.Unmarshal(b, &decoded) != nil || decoded.FullConfig.PerClient.N != 4 || decoded.FullConfig.PerClient.P99MS <= 0 {
			t.Errorf("JSON report: %+v (%v)", decoded, err)
		}
		var out bytes.Buffer
		rep.printTable(&out)
		if !strings.Contains(out.String(), "route change, all clients") {
			t.Errorf("table:\n%s", out.String())
		}
	}
	cancel()
	<-done
}
