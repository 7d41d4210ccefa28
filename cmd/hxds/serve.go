package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/hxds/hxds/internal/app"
)

func serveCommand() *cobra.Command {
	var cfg app.Config
	var logs logFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve a directory of Kubernetes YAML to Envoy over ADS",
		Example: `  hxds serve --config-dir examples/quickstart
  envoy -c deploy/envoy/bootstrap.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.ConfigDir == "" {
				return fmt.Errorf("--config-dir is required")
			}
			log, err := logs.build()
			if err != nil {
				return err
			}
			defer func() { _ = log.Sync() }()
			cfg.Log = log
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return app.Run(ctx, cfg)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&cfg.XDSAddress, "xds-address", "127.0.0.1:15010", "gRPC address of the ADS server")
	fs.StringVar(&cfg.AdminAddress, "admin-address", "127.0.0.1:8888", "HTTP address of the admin endpoint")
	fs.StringVar(&cfg.ConfigDir, "config-dir", "", "directory of Kubernetes YAML/JSON to serve (watched)")
	fs.DurationVar(&cfg.DebounceHoldoff, "debounce-holdoff", 50*time.Millisecond, "quiet time after a change before translating")
	fs.DurationVar(&cfg.DebounceMax, "debounce-max", 500*time.Millisecond, "longest a burst of changes may delay translation")
	fs.DurationVar(&cfg.RegistryGrace, "registry-grace", app.DefaultRegistryGrace,
		"how long a service registry's last known instances are served when it goes away or lists nothing (0: not at all)")
	addTranslationFlags(fs, &cfg.Options)
	logs.add(fs)
	return cmd
}
