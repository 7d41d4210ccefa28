package main

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/hxds/hxds/internal/gen"
)

// genMain writes a generated configuration directory for `hxds serve`.
func genMain(args []string) error {
	fs := flag.NewFlagSet("hxds-load gen", flag.ContinueOnError)
	dir := fs.String("dir", "", "directory to write (created if needed)")
	routes := fs.Int("routes", 0, "standard shape (gen.ForRoutes): this many routes, 2 hosts × 2 paths per Ingress, one Service per 2 routes, 10 endpoints each, 10% TLS hosts; the flags below override parts of it")
	var s gen.Spec
	fs.IntVar(&s.Ingresses, "ingresses", 0, "Ingresses")
	fs.IntVar(&s.RulesPerIngress, "rules-per-ingress", 0, "hosts per Ingress (default 1)")
	fs.IntVar(&s.PathsPerRule, "paths-per-rule", 0, "paths per host (default 1)")
	fs.IntVar(&s.Services, "services", 0, "Services (default: as many as Ingresses)")
	fs.IntVar(&s.EndpointsPerService, "endpoints", 0, "endpoints per Service (default 3)")
	fs.IntVar(&s.TLSHosts, "tls-hosts", -1, "hosts also served over HTTPS")
	fs.IntVar(&s.Namespaces, "namespaces", 0, "namespaces (default 10)")
	fs.StringVar(&s.IngressClass, "ingress-class", "", "ingress class (default higress)")
	fs.IntVar(&s.ObjectsPerFile, "objects-per-file", 0, "Ingresses or Service+EndpointSlice pairs per file (default 100)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("gen: --dir is required")
	}
	spec := s
	if *routes > 0 {
		spec = gen.ForRoutes(*routes)
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		over := func(name string, dst *int, v int) {
			if set[name] {
				*dst = v
			}
		}
		over("ingresses", &spec.Ingresses, s.Ingresses)
		over("rules-per-ingress", &spec.RulesPerIngress, s.RulesPerIngress)
		over("paths-per-rule", &spec.PathsPerRule, s.PathsPerRule)
		over("services", &spec.Services, s.Services)
		over("endpoints", &spec.EndpointsPerService, s.EndpointsPerService)
		over("tls-hosts", &spec.TLSHosts, s.TLSHosts)
		over("namespaces", &spec.Namespaces, s.Namespaces)
		over("objects-per-file", &spec.ObjectsPerFile, s.ObjectsPerFile)
		if set["ingress-class"] {
			spec.IngressClass = s.IngressClass
		}
	} else if spec.TLSHosts < 0 {
		spec.TLSHosts = 0
	}
	if spec.Ingresses <= 0 {
		return errors.New("gen: give --routes or --ingresses")
	}
	if err := gen.WriteDir(*dir, spec); err != nil {
		return err
	}
	n := spec.Normalize()
	fmt.Fprintf(os.Stderr, "hxds-load gen: wrote %s: %d Ingresses, %d hosts (%d on TLS), %d routes, %d Services × %d endpoints\n",
		*dir, n.Ingresses, n.Hosts(), n.TLSHosts, n.Routes(), n.Services, n.EndpointsPerService)
	return nil
}
