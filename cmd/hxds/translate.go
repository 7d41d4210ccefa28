package main

import (
	"fmt"
	"io"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"sigs.k8s.io/yaml"

	"github.com/hxds/hxds/internal/app"
	"github.com/hxds/hxds/internal/source/file"
	"github.com/hxds/hxds/translate/diag"
	"github.com/hxds/hxds/translate/envoy"
	"github.com/hxds/hxds/translate/input"
	"github.com/hxds/hxds/xds/admin"
)

func translateCommand() *cobra.Command {
	var (
		opts       input.Options
		paths      []string
		output     string
		includeEDS bool
		strict     bool
	)
	cmd := &cobra.Command{
		Use:   "translate",
		Short: "Print the Envoy configuration for Kubernetes YAML, offline",
		Long: `Translate files or directories of Kubernetes YAML exactly as "hxds serve" does and print
the result as an Envoy admin ConfigDump: the same document /debug/config_dump serves.
Findings (rejected objects and why) go to standard error.`,
		Example: `  hxds translate -f examples/quickstart -o yaml
  hxds translate -f ingress.yaml -o json --include-eds`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(paths) == 0 {
				return fmt.Errorf("-f is required")
			}
			if output != "json" && output != "yaml" {
				return fmt.Errorf("-o must be json or yaml, not %q", output)
			}
			res, err := file.LoadPaths(paths...)
			if err != nil {
				return err
			}
			snap := res.Snapshot()
			p := app.NewPipeline(opts, func() envoy.ServiceSlices { return envoy.IndexSlices(snap.EndpointSlices) },
				prometheus.NewRegistry(), zap.NewNop())
			tr, err := p.Rebuild(snap)
			if err != nil {
				return err
			}
			cd, err := admin.ConfigDump(p.Cache, opts.Group, includeEDS)
			if err != nil {
				return err
			}
			out, err := admin.MarshalConfigDump(cd)
			if err != nil {
				return err
			}
			if output == "yaml" {
				if out, err = yaml.JSONToYAML(out); err != nil {
					return fmt.Errorf("convert to YAML: %w", err)
				}
			}
			if _, err := cmd.OutOrStdout().Write(out); err != nil {
				return err
			}
			rejected := printFindings(cmd.ErrOrStderr(), app.Status(res.Problems, app.Loaded(res), tr))
			if strict && rejected > 0 {
				return fmt.Errorf("%d object(s) rejected", rejected)
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringArrayVarP(&paths, "filename", "f", nil, "file or directory of Kubernetes YAML/JSON (repeatable)")
	fs.StringVarP(&output, "output", "o", "yaml", "output format: yaml or json")
	fs.BoolVar(&includeEDS, "include-eds", false, "include endpoints (ClusterLoadAssignments)")
	fs.BoolVar(&strict, "strict", false, "exit non-zero when any object is rejected")
	addTranslationFlags(fs, &opts)
	return cmd
}

// printFindings writes one line per finding and returns how many objects were
// rejected outright.
func printFindings(w io.Writer, statuses []diag.Status) int {
	rejected := 0
	for _, s := range statuses {
		if !s.Accepted && !s.Ignored {
			rejected++
		}
		for _, f := range s.Findings {
			field := ""
			if f.Field != "" {
				field = " " + f.Field
			}
			fmt.Fprintf(w, "%s: %s%s: %s (%s)\n", f.Severity, s.Object, field, f.Message, f.Reason)
		}
	}
	return rejected
}
