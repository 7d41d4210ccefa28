package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/hxds/hxds/internal/app"
	"github.com/hxds/hxds/internal/cli"
	"github.com/hxds/hxds/translate/wasm"
)

func serveCommand() *cobra.Command {
	var cfg app.Config
	var logs cli.LogFlags
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
			if s := cfg.Options.WasmModuleServer; s != "" && wasm.ModuleServerBackend(s) == nil {
				return fmt.Errorf("--wasm-module-server %q: want http://<host>[:<port>]/<path>, the URL at which Envoys reach this hxds's admin /wasm/ path", s)
			}
			log, err := logs.Build()
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
	fs.StringVar(&cfg.Options.WasmModuleServer, "wasm-module-server", "",
		"Wasm direct mode: the URL at which Envoys reach this hxds's admin /wasm path (e.g. http://hxds.higress-system:8888/wasm); "+
			"hxds then fetches WasmPlugin modules itself and Envoy loads them from there, no hxds-agent needed")
	fs.StringVar(&cfg.WasmCacheDir, "wasm-cache-dir", "", "directory of fetched Wasm modules in direct mode (default: <tmp>/hxds-wasm)")
	fs.StringSliceVar(&cfg.WasmInsecureRegistries, "wasm-insecure-registries", nil, "registry hosts fetched without TLS verification (\"*\": all)")
	addTranslationFlags(fs, &cfg.Options)
	logs.Add(fs)
	return cmd
}
