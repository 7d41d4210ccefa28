// Command hxds-agent runs beside Envoy: Envoy's ADS cluster points at it, it
// proxies ADS to hxds and turns remote Wasm modules in ECDS responses into
// verified local files (see docs/wasm.md).
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/hxds/hxds/internal/cli"
	"github.com/hxds/hxds/wasmfetch/agent"
)

func main() {
	if err := newRootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "hxds-agent:", err)
		os.Exit(1)
	}
}

func newRootCommand() *cobra.Command {
	var (
		cfg  agent.Config
		logs cli.LogFlags
	)
	cmd := &cobra.Command{
		Use:   "hxds-agent",
		Short: "ADS proxy beside Envoy that turns remote Wasm modules into local files",
		Example: `  hxds-agent --listen unix:///var/run/hxds-agent/ads.sock --upstream hxds:15010
  hxds-agent --listen 127.0.0.1:15011 --upstream 127.0.0.1:15010 --cache-dir /tmp/wasm`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := logs.Build()
			if err != nil {
				return err
			}
			defer func() { _ = log.Sync() }()
			cfg.Log = log
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return agent.Run(ctx, cfg)
		},
	}
	fs := cmd.Flags()
	o := &cfg.CacheOptions
	fs.StringVar(&cfg.Listen, "listen", "127.0.0.1:15011", "ADS address Envoy connects to: host:port or unix:///path")
	fs.StringVar(&cfg.Upstream, "upstream", "127.0.0.1:15010", "hxds ADS address")
	fs.StringVar(&cfg.AdminAddress, "admin-address", "127.0.0.1:8889", `HTTP address of /ready, /metrics and /debug ("" disables)`)
	fs.StringVar(&cfg.CacheDir, "cache-dir", "/var/lib/hxds-agent/wasm", "directory of cached Wasm modules")
	fs.StringSliceVar(&o.InsecureRegistries, "insecure-registries", nil, `registry hosts whose TLS certificates are not verified ("*" = all)`)
	fs.DurationVar(&o.DefaultTimeout, "fetch-timeout", 5*time.Second, "whole-fetch timeout when the ECDS resource sets none (hxds sets 30s)")
	fs.DurationVar(&o.HTTPRequestTimeout, "http-request-timeout", 15*time.Second, "timeout of one HTTP download attempt")
	fs.IntVar(&o.HTTPMaxRetries, "http-max-retries", 5, "HTTP download retries after the first attempt")
	fs.DurationVar(&o.ModuleExpiry, "module-expiry", 24*time.Hour, "cached modules unused this long are deleted")
	fs.DurationVar(&o.PurgeInterval, "purge-interval", time.Hour, "how often expired modules are purged")
	logs.Add(fs)
	return cmd
}
