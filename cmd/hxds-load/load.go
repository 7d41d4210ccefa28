package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hxds/hxds/internal/gen"
	"github.com/hxds/hxds/internal/gen/fleet"
)

// config is everything a run takes.
type config struct {
	XDSAddress      string        `json:"xdsAddress"`
	AdminAddress    string        `json:"adminAddress,omitempty"`
	Clients         int           `json:"clients"`
	ConnsPerProcess int           `json:"connsPerProcess"`
	Delta           bool          `json:"delta"`
	Light           bool          `json:"light"`
	Group           string        `json:"group,omitempty"`
	Duration        time.Duration `json:"-"`
	ChangeDir       string        `json:"changeDir,omitempty"`
	Changes         []string      `json:"changes,omitempty"`
	Interval        time.Duration `json:"-"`
	ChangeTimeout   time.Duration `json:"-"`
	IngressClass    string        `json:"ingressClass"`
	ProbeNamespace  string        `json:"probeNamespace"`
	DialConcurrency int           `json:"dialConcurrency"`
	JSON            string        `json:"-"`
}

func parseRunFlags(args []string, out io.Writer) (*config, error) {
	cfg := &config{}
	fs := flag.NewFlagSet("hxds-load", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&cfg.XDSAddress, "xds-address", "127.0.0.1:15010", "ADS address of hxds (loopback only)")
	fs.StringVar(&cfg.AdminAddress, "admin-address", "", "admin address of hxds (loopback only); when set, the tool waits for /ready and reports the server's CPU time and RSS from /metrics")
	fs.IntVar(&cfg.Clients, "clients", 100, "number of simulated Envoys")
	fs.IntVar(&cfg.ConnsPerProcess, "conns-per-process", 0, "gRPC connections shared by all clients, round robin (0: one connection per client, like separate Envoys)")
	fs.BoolVar(&cfg.Delta, "delta", false, "use incremental (delta) ADS instead of state-of-the-world")
	fs.BoolVar(&cfg.Light, "light", false, "light clients: decode only listeners and clusters, keep routes/endpoints/secrets as bytes (measures the server rather than the clients' decoding)")
	fs.StringVar(&cfg.Group, "group", "", "node.cluster of the clients (hxds gateway group; empty: the default group)")
	fs.DurationVar(&cfg.Duration, "duration", 30*time.Second, "the whole run stops after this long")
	fs.StringVar(&cfg.ChangeDir, "change-dir", "", "hxds's --config-dir: the tool writes its probe files there and changes them to measure propagation")
	changes := fs.String("changes", "route,endpoint", "with --change-dir: the kinds of change to make, in turn (route, endpoint)")
	fs.DurationVar(&cfg.Interval, "interval", 200*time.Millisecond, "pause between two changes")
	fs.DurationVar(&cfg.ChangeTimeout, "change-timeout", 30*time.Second, "longest wait for one change to reach every client")
	fs.StringVar(&cfg.IngressClass, "ingress-class", "higress", "ingress class hxds serves (--ingress-class of hxds), put on the probe Ingress")
	fs.StringVar(&cfg.ProbeNamespace, "probe-namespace", "hxds-probe", "namespace of the probe objects")
	fs.IntVar(&cfg.DialConcurrency, "dial-concurrency", 64, "connections set up in parallel")
	fs.StringVar(&cfg.JSON, "json", "", "also write the report as JSON to this file (- for standard output)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: hxds-load [flags]\n       hxds-load gen --dir DIR [flags]   (write a generated config dir; gen --help)\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	for _, c := range strings.Split(*changes, ",") {
		switch c = strings.TrimSpace(c); c {
		case "route", "endpoint":
			cfg.Changes = append(cfg.Changes, c)
		case "":
		default:
			return nil, fmt.Errorf("--changes: unknown kind %q (route, endpoint)", c)
		}
	}
	switch {
	case cfg.Clients <= 0:
		return nil, errors.New("--clients must be positive")
	case cfg.Duration <= 0:
		return nil, errors.New("--duration must be positive")
	case cfg.ChangeDir != "" && len(cfg.Changes) == 0:
		return nil, errors.New("--changes names no change")
	}
	if err := loopback(cfg.XDSAddress); err != nil {
		return nil, fmt.Errorf("--xds-address: %w", err)
	}
	if cfg.AdminAddress != "" {
		if err := loopback(cfg.AdminAddress); err != nil {
			return nil, fmt.Errorf("--admin-address: %w", err)
		}
	}
	return cfg, nil
}

// loopback accepts only host:port addresses on a loopback IP or localhost.
func loopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%s is not a loopback address (this tool only loads a local hxds)", addr)
	}
	return nil
}

// run performs one bounded load run and returns its report (also when the
// run ended early; the error says why).
func run(ctx context.Context, cfg *config, log io.Writer) (*report, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	rep := &report{Config: cfg, Mode: mode(cfg), Duration: cfg.Duration.String()}
	logf := func(format string, args ...any) { fmt.Fprintf(log, "hxds-load: "+format+"\n", args...) }

	var before *serverStats
	if cfg.AdminAddress != "" {
		if err := waitReady(ctx, cfg.AdminAddress); err != nil {
			return rep, err
		}
		s, err := scrape(ctx, cfg.AdminAddress)
		if err != nil {
			return rep, err
		}
		before = s
	}

	probe := gen.Probe{Namespace: cfg.ProbeNamespace, IngressClass: cfg.IngressClass}
	revs := newRevs()
	var ready []fleet.Check
	if cfg.ChangeDir != "" {
		r := revs.next()
		if err := probe.WriteRoute(cfg.ChangeDir, r); err != nil {
			return rep, err
		}
		if err := probe.WriteEndpoints(cfg.ChangeDir, r); err != nil {
			return rep, err
		}
		revs.route, revs.endpoint = r, r
		ready = []fleet.Check{fleet.RouteRev("http.80", gen.ProbeHost, r), fleet.EndpointRev(probe.ClusterName(), r)}
		// One scout client waits until hxds serves the probe, so that the
		// fleet's time to full configuration does not include applying it.
		logf("probe written to %s; waiting for hxds to serve it", cfg.ChangeDir)
		scout, err := fleet.Start(ctx, fleet.Options{Address: cfg.XDSAddress, Clients: 1, Light: true, Delta: cfg.Delta,
			Cluster: cfg.Group, NodePrefix: "hxds-load-scout", Ready: ready})
		if err != nil {
			return rep, fmt.Errorf("scout client: %w", err)
		}
		_, err = scout.WaitReady(ctx)
		scout.Close()
		if err != nil {
			return rep, fmt.Errorf("hxds does not serve the probe (is --change-dir its --config-dir, --ingress-class its class?): %w", err)
		}
	}

	logf("connecting %d clients (%s) to %s", cfg.Clients, rep.Mode, cfg.XDSAddress)
	f, err := fleet.Start(ctx, fleet.Options{
		Address: cfg.XDSAddress, Clients: cfg.Clients, Conns: cfg.ConnsPerProcess, Delta: cfg.Delta, Light: cfg.Light,
		Cluster: cfg.Group, DialConcurrency: cfg.DialConcurrency, Ready: ready,
	})
	if err != nil {
		return rep, err
	}
	defer f.Close()
	readyLat, err := f.WaitReady(ctx)
	rep.FullConfig = newPhase("full config after connect", "", readyLat)
	rep.FullConfig.AllClients = fleet.Max(readyLat)
	if err != nil {
		rep.Health = f.Health()
		return rep, err
	}
	logf("all %d clients hold the full configuration after %v", cfg.Clients, rep.FullConfig.AllClients.Round(time.Millisecond))

	var runErr error
	if cfg.ChangeDir != "" {
		runErr = changeLoop(ctx, cfg, f, probe, revs, rep, logf)
	} else {
		logf("no --change-dir: holding the connections until --duration ends")
		<-ctx.Done()
	}
	rep.Health = f.Health()
	if before != nil {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		after, err := scrape(sctx, cfg.AdminAddress)
		scancel()
		if err == nil {
			rep.Server = &serverReport{
				CPUSeconds: after.cpuSeconds - before.cpuSeconds,
				RSSMiB:     after.rssBytes / (1 << 20),
				Proxies:    after.proxies,
			}
		}
	}
	if errors.Is(runErr, context.DeadlineExceeded) && ctx.Err() != nil {
		runErr = nil // --duration ended the run: expected
	}
	return rep, runErr
}

// revs hands out probe revisions: distinct from what a previous run left in
// the config dir (the start depends on the clock), within 1..65000.
type revs struct{ cur, route, endpoint int }

func newRevs() *revs { return &revs{cur: int(time.Now().UnixNano()/1e6) % 65000} }

func (r *revs) next() int {
	r.cur = r.cur%65000 + 1
	return r.cur
}

func changeLoop(ctx context.Context, cfg *config, f *fleet.Fleet, probe gen.Probe, revs *revs, rep *report, logf func(string, ...any)) error {
	lats := map[string][]time.Duration{}
	alls := map[string][]time.Duration{}
	defer func() {
		for _, kind := range cfg.Changes {
			p := newPhase(kind+" change", typeOf(kind, probe), lats[kind])
			p.Changes = len(alls[kind])
			all := fleet.Summarize(alls[kind])
			p.AllClientsPerChange = &all
			rep.Changes = append(rep.Changes, p)
		}
	}()
	for i := 0; ; i++ {
		if ctx.Err() != nil {
			return nil
		}
		kind := cfg.Changes[i%len(cfg.Changes)]
		rev := revs.next()
		var x *fleet.Expectation
		var write func() error
		switch kind {
		case "route":
			x = f.Expect(fleet.RouteRev("http.80", gen.ProbeHost, rev))
			write = func() error { return probe.WriteRoute(cfg.ChangeDir, rev) }
		case "endpoint":
			x = f.Expect(fleet.EndpointRev(probe.ClusterName(), rev))
			write = func() error { return probe.WriteEndpoints(cfg.ChangeDir, rev) }
		}
		start := time.Now()
		if err := write(); err != nil {
			return err
		}
		wctx, wcancel := context.WithTimeout(ctx, cfg.ChangeTimeout)
		got, err := x.Wait(wctx, start)
		wcancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil // the run's time is up mid-change: not counted
			}
			return fmt.Errorf("%s change %d: %w", kind, rev, err)
		}
		lats[kind] = append(lats[kind], got...)
		alls[kind] = append(alls[kind], fleet.Max(got))
		if kind == "route" {
			revs.route = rev
		} else {
			revs.endpoint = rev
		}
		logf("%s change reached all %d clients in %v", kind, len(got), fleet.Max(got).Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(cfg.Interval):
		}
	}
}

func typeOf(kind string, p gen.Probe) string {
	if kind == "route" {
		return "RDS http.80"
	}
	return "EDS " + p.ClusterName()
}

func mode(cfg *config) string {
	var parts []string
	if cfg.Delta {
		parts = append(parts, "delta")
	} else {
		parts = append(parts, "SotW")
	}
	if cfg.Light {
		parts = append(parts, "light clients")
	} else {
		parts = append(parts, "adsclient")
	}
	if cfg.ConnsPerProcess > 0 {
		parts = append(parts, fmt.Sprintf("%d shared connections", cfg.ConnsPerProcess))
	} else {
		parts = append(parts, "one connection per client")
	}
	return strings.Join(parts, ", ")
}

// serverStats are read from hxds's /metrics.
type serverStats struct {
	cpuSeconds, rssBytes, proxies float64
}

func waitReady(ctx context.Context, admin string) error {
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/ready", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("hxds at %s is not ready: %w", admin, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func scrape(ctx context.Context, admin string) (*serverStats, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	s := &serverStats{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		name, value, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			continue
		}
		switch {
		case name == "process_cpu_seconds_total":
			s.cpuSeconds = v
		case name == "process_resident_memory_bytes":
			s.rssBytes = v
		case strings.HasPrefix(name, "hxds_xds_connected_proxies"):
			s.proxies += v
		}
	}
	return s, sc.Err()
}
