package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/hxds/hxds/internal/app"
	"github.com/hxds/hxds/internal/source/file"
	"github.com/hxds/hxds/routecheck"
	"github.com/hxds/hxds/translate/envoy"
	"github.com/hxds/hxds/translate/input"
)

// Exit codes of route-check.
const (
	routeCheckFailed = 1 // a test failed
	routeCheckUsage  = 2 // bad flags, unreadable input, a test that cannot be evaluated
)

// routeCheckExit ends the process with route-check's exit code; tests replace it.
var routeCheckExit = os.Exit

// exitCodeError is returned (after routeCheckExit) so callers that replaced
// routeCheckExit still see the code.
type exitCodeError struct{ code int }

func (e *exitCodeError) Error() string { return fmt.Sprintf("route-check: exit status %d", e.code) }

func routeCheckCommand() *cobra.Command {
	var (
		opts       input.Options
		paths      []string
		configDump string
		testFiles  []string
		group      string
		details    bool
		output     string
	)
	cmd := &cobra.Command{
		Use:   "route-check",
		Short: "Check what Envoy does with test requests, offline (like Envoy's router_check_tool)",
		Long: `Evaluate a file of test requests against the configuration Envoy gets, with Envoy's
listener, filter chain (SNI), virtual host and route matching rules, and compare each outcome
(cluster or Service, upstream path and host after rewrites, redirect, direct response, header
mutations, RBAC denial, ...) with what the test expects.

The configuration is the translation of Kubernetes YAML (-f, exactly as "hxds translate" does)
or an Envoy/hxds ConfigDump (--config-dump, e.g. from /debug/config_dump?include_eds or Envoy's
/config_dump?include_eds).

The test file is YAML; unknown fields are errors and only the fields under "expect" are compared:

  tests:
  - name: api
    request: {host: echo.example.com, path: /api/v1/status, method: GET,
              headers: {x-user: a}, sourceIP: 10.0.0.1, port: 80}
    expect: {route: demo/api, service: demo/api:8080, upstreamPath: /api/v1/status}
  - name: https                          # sni defaults to the host; sni: "" sends none
    request: {host: secure.example.com, tls: true}
    expect: {filterChain: https.443.secure.example.com, status: 0, forwarded: true}

request: host path method port tls sni alpn scheme headers sourceIP destinationIP clientCert
  random (picks among weighted clusters) responseHeaders (the upstream's, for response mutations)
  upstreamStatus (the upstream's status, for custom_response: custom-http-errors)
expect: listener filterChain certificate routeConfig virtualHost route cluster service weighted
  upstreamPath upstreamHost endpoints mirrors timeout status forwarded noListener noFilterChain
  connectionFailed noRoute clusterMissing noHealthyUpstream redirect{status,location}
  directResponse{status,body,location} requestHeaders{add,remove} responseHeaders{add,remove}
  customResponse{applied,policy,status,body,redirected,route,cluster,service,upstreamPath,...}
  denied deniedBy localRateLimit{maxTokens,tokensPerFill,fillInterval}

Exit status: 0 when every test passes, 1 when one fails, 2 on a usage or configuration error
or a test that cannot be evaluated.`,
		Example: `  hxds route-check -f examples/quickstart --tests examples/quickstart-routes.test.yaml
  curl -s 'localhost:8888/debug/config_dump?include_eds' > dump.json
  hxds route-check --config-dump dump.json --tests routes.test.yaml -o json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "hxds route-check: unexpected arguments %q (test files go after --tests)\n", args)
				routeCheckExit(routeCheckUsage)
				return &exitCodeError{routeCheckUsage}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			code := runRouteCheck(cmd.OutOrStdout(), cmd.ErrOrStderr(), routeCheckArgs{
				opts: opts, paths: paths, configDump: configDump, tests: testFiles,
				group: group, details: details, output: output,
			})
			if code != 0 {
				routeCheckExit(code)
				return &exitCodeError{code}
			}
			return nil
		},
	}
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		fmt.Fprintf(c.ErrOrStderr(), "hxds route-check: %v\n", err)
		routeCheckExit(routeCheckUsage)
		return &exitCodeError{routeCheckUsage}
	})
	fs := cmd.Flags()
	fs.StringArrayVarP(&paths, "filename", "f", nil, "file or directory of Kubernetes YAML/JSON to translate (repeatable)")
	fs.StringVar(&configDump, "config-dump", "", `ConfigDump JSON or YAML to check instead of -f ("-" reads standard input)`)
	fs.StringArrayVarP(&testFiles, "tests", "t", nil, "test file (repeatable)")
	fs.StringVar(&group, "group", "", "gateway group whose configuration is checked (default: --gateway-group)")
	fs.BoolVar(&details, "details", false, "print the full outcome of every test")
	fs.StringVarP(&output, "output", "o", "text", "output format: text or json")
	addTranslationFlags(fs, &opts)
	return cmd
}

type routeCheckArgs struct {
	opts       input.Options
	paths      []string
	configDump string
	tests      []string
	group      string
	details    bool
	output     string
}

func runRouteCheck(stdout, stderr io.Writer, a routeCheckArgs) int {
	usage := func(format string, args ...any) int {
		fmt.Fprintf(stderr, "hxds route-check: "+format+"\n", args...)
		return routeCheckUsage
	}
	switch {
	case len(a.tests) == 0:
		return usage("--tests is required")
	case (len(a.paths) == 0) == (a.configDump == ""):
		return usage("give either -f (Kubernetes YAML) or --config-dump")
	case a.output != "text" && a.output != "json":
		return usage("-o must be text or json, not %q", a.output)
	}
	var tests []routecheck.Test
	for _, path := range a.tests {
		data, err := os.ReadFile(path)
		if err != nil {
			return usage("%v", err)
		}
		tf, err := routecheck.ParseTests(data)
		if err != nil {
			return usage("%s: %v", path, err)
		}
		tests = append(tests, tf.Tests...)
	}
	var res routecheck.Resources
	var err error
	if a.configDump != "" {
		res, err = loadConfigDump(a.configDump)
	} else {
		res, err = translateForCheck(stderr, a.paths, a.opts, a.group)
	}
	if err != nil {
		return usage("%v", err)
	}

	results := routecheck.RunTests(res, &routecheck.TestFile{Tests: tests})
	sum := routecheck.Summarize(results)
	if a.output == "json" {
		if !a.details {
			for i := range results {
				if results[i].Result == routecheck.Pass {
					results[i].Outcome = nil
				}
			}
		}
		out, err := json.MarshalIndent(routecheck.Report{Summary: sum, Tests: results}, "", "  ")
		if err != nil {
			return usage("%v", err)
		}
		fmt.Fprintf(stdout, "%s\n", out)
	} else {
		fmt.Fprint(stdout, routecheck.TextReport(results, a.details))
	}
	switch {
	case sum.Errors > 0:
		return routeCheckUsage
	case sum.Failed > 0:
		return routeCheckFailed
	}
	return 0
}

func loadConfigDump(path string) (routecheck.Resources, error) {
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(os.Stdin)
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, err
	}
	res, err := routecheck.ParseConfigDump(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return res, nil
}

// translateForCheck translates the files exactly as "hxds translate" does
// and returns the group's resources, endpoints included. Findings go to stderr.
func translateForCheck(stderr io.Writer, paths []string, opts input.Options, group string) (routecheck.Resources, error) {
	loaded, err := file.LoadPaths(paths...)
	if err != nil {
		return nil, err
	}
	snap := loaded.Snapshot()
	p := app.NewPipeline(opts, func() envoy.ServiceSlices { return envoy.IndexSlices(snap.EndpointSlices) },
		prometheus.NewRegistry(), zap.NewNop())
	tr, err := p.Rebuild(snap)
	if err != nil {
		return nil, err
	}
	printFindings(stderr, app.Status(loaded.Problems, app.Loaded(loaded), tr))
	if group == "" {
		group = opts.Group
	}
	res := routecheck.Resources{}
	for _, t := range []string{resourcev3.ListenerType, resourcev3.RouteType, resourcev3.ClusterType, resourcev3.EndpointType, resourcev3.SecretType} {
		m := map[string]proto.Message{}
		for _, e := range p.Cache.Entries(group, t) {
			m[e.Name] = e.Resource
		}
		res[t] = m
	}
	if len(res[resourcev3.ListenerType]) == 0 {
		return nil, errors.New("the translation has no listener for group " + group)
	}
	return res, nil
}
