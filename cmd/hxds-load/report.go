package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/hxds/hxds/internal/gen/fleet"
)

// report is what a run measured.
type report struct {
	Config *config `json:"config"`
	Mode   string  `json:"mode"`
	// Duration is --duration.
	Duration string `json:"duration"`
	// FullConfig: per client, time from the start of connecting until it
	// held its full configuration.
	FullConfig *phase `json:"fullConfig,omitempty"`
	// Changes: per kind of change, per client the time from the file write
	// until it held the new version, and per change the time until all did.
	Changes []*phase      `json:"changes,omitempty"`
	Health  fleet.Health  `json:"health"`
	Server  *serverReport `json:"server,omitempty"`
}

type phase struct {
	Name string `json:"name"`
	// Type is the xDS type (and resource) whose new version is awaited.
	Type      string        `json:"type,omitempty"`
	PerClient fleet.Summary `json:"perClient"`
	// AllClients is when the last client had it (full config).
	AllClients time.Duration `json:"-"`
	// AllClientsMS is AllClients in milliseconds.
	AllClientsMS float64 `json:"allClientsMs,omitempty"`
	// Changes made of this kind and, across them, the time until every
	// client had each one.
	Changes             int            `json:"changes,omitempty"`
	AllClientsPerChange *fleet.Summary `json:"allClientsPerChange,omitempty"`
}

type serverReport struct {
	// CPUSeconds hxds used during the run (process_cpu_seconds_total delta).
	CPUSeconds float64 `json:"cpuSeconds"`
	RSSMiB     float64 `json:"rssMiB"`
	Proxies    float64 `json:"connectedProxies"`
}

func newPhase(name, typ string, lats []time.Duration) *phase {
	return &phase{Name: name, Type: typ, PerClient: fleet.Summarize(lats)}
}

func ms(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000)
}

func (r *report) printTable(w io.Writer) {
	c := r.Config
	fmt.Fprintf(w, "\nhxds-load: %d clients (%s) → %s\n\n", c.Clients, r.Mode, c.XDSAddress)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "measurement\ttype\tn\tp50\tp90\tp99\tmax\t")
	row := func(name, typ string, s fleet.Summary) {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t\n", name, typ, s.N, ms(s.P50), ms(s.P90), ms(s.P99), ms(s.Max))
	}
	if r.FullConfig != nil {
		row("full config, per client", "all", r.FullConfig.PerClient)
	}
	for _, p := range r.Changes {
		row(p.Name+", per client", p.Type, p.PerClient)
		if p.AllClientsPerChange != nil {
			row(p.Name+", all clients", p.Type, *p.AllClientsPerChange)
		}
	}
	tw.Flush()
	fmt.Fprintln(w)
	if r.FullConfig != nil && r.FullConfig.AllClients > 0 {
		fmt.Fprintf(w, "all %d clients held the full configuration %s after connecting started\n", r.FullConfig.PerClient.N, ms(r.FullConfig.AllClients))
	}
	h := r.Health
	fmt.Fprintf(w, "client health: %d NACKs, %d reconnects, %d failed streams, %d dropped events\n", h.NACKs, h.Reconnects, h.Failed, h.DroppedEvents)
	if h.LastNACK != "" {
		fmt.Fprintf(w, "  last NACK: %s\n", h.LastNACK)
	}
	if h.LastFailure != "" {
		fmt.Fprintf(w, "  last failure: %s\n", h.LastFailure)
	}
	if s := r.Server; s != nil {
		fmt.Fprintf(w, "hxds: %.2f s CPU during the run, RSS %.0f MiB, %.0f connected proxies\n", s.CPUSeconds, s.RSSMiB, s.Proxies)
	}
}

func (r *report) writeJSON(path string) error {
	if r.FullConfig != nil {
		r.FullConfig.AllClientsMS = float64(r.FullConfig.AllClients.Microseconds()) / 1000
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if path == "-" {
		_, err = os.Stdout.Write(b)
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
