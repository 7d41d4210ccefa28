// Command hxds-load simulates many Envoys connected to one hxds over ADS and
// measures how fast they get their configuration and how fast changes reach
// all of them.
//
//	hxds-load --xds-address 127.0.0.1:15010 --clients 1000 --duration 30s \
//	    --change-dir ./cfg --admin-address 127.0.0.1:8888
//	hxds-load gen --dir ./cfg --routes 3000
//
// Each client is an xds/adsclient client (wildcard CDS/LDS, then EDS/RDS/SDS
// by name, ACK/NACK, state-of-the-world or --delta) on its own gRPC
// connection unless --conns-per-process shares connections. With
// --change-dir, the tool drops a small probe (one Ingress, Service and
// EndpointSlice, see internal/gen.Probe) into hxds's config dir and then
// alternately changes one route and one endpoint of it, measuring per change
// the time until every client holds the new version. The run is bounded by
// --duration and only talks to loopback addresses.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	args := os.Args[1:]
	var err error
	if len(args) > 0 && args[0] == "gen" {
		err = genMain(args[1:])
	} else {
		err = runMain(args)
	}
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "hxds-load:", err)
		os.Exit(1)
	}
}

func runMain(args []string) error {
	cfg, err := parseRunFlags(args, os.Stderr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, runErr := run(ctx, cfg, os.Stderr)
	if rep != nil {
		rep.printTable(os.Stdout)
		if cfg.JSON != "" {
			if err := rep.writeJSON(cfg.JSON); err != nil && runErr == nil {
				runErr = err
			}
		}
	}
	return runErr
}
