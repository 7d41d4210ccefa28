// Command hxds is a standalone xDS control plane for stock Envoy: it serves
// Kubernetes Ingress (with Higress annotations) and Higress resources over ADS.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	if err := newRootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "hxds:", err)
		os.Exit(1)
	}
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "hxds",
		Short:         "Standalone xDS control plane for stock Envoy, Higress-compatible",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(serveCommand(), translateCommand(), routeCheckCommand(), versionCommand())
	return root
}
