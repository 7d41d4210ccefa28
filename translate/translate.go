// Package translate is the pure pipeline Inputs → Envoy resources: front-ends
// fill the gateway IR, the Envoy builder turns it into resources. The server,
// `hxds translate`, golden tests, fuzzing and benchmarks all call Translate.
package translate

import (
	"github.com/hxds/hxds/translate/diag"
	"github.com/hxds/hxds/translate/envoy"
	"github.com/hxds/hxds/translate/gatewayapi"
	"github.com/hxds/hxds/translate/ingress"
	"github.com/hxds/hxds/translate/input"
	"github.com/hxds/hxds/translate/ir"
	"github.com/hxds/hxds/translate/registry"
	"github.com/hxds/hxds/translate/wasm"
)

// ListenAddress is where gateway listeners bind.
const ListenAddress = "0.0.0.0"

// Result is the output of one translation.
type Result struct {
	// Gateways is the IR of each gateway group.
	Gateways map[string]*ir.Gateway
	// Groups holds the Envoy resources of each gateway group.
	Groups map[string]*envoy.Resources
	// Diagnostics says, per input object, what was served and why not.
	Diagnostics *diag.Set
	// GatewayAPI is the status computed for the Gateway API objects this
	// controller owns (GatewayClass, Gateway, HTTPRoute), ready to be
	// written back; Programmed reflects translation, not Envoy ACKs.
	GatewayAPI *gatewayapi.Status
}

// Translate converts a snapshot of inputs into Envoy resources per gateway
// group. It performs no I/O and gives identical output for identical input.
func Translate(snap *input.Snapshot, opts input.Options) *Result {
	d := diag.NewSet()
	b := ir.NewBuilder(opts.Group, ListenAddress)
	// Registry hosts first: their clusters carry the protocol the registry
	// reports, which Ingress destinations and backendRefs then share.
	registry.Translate(snap, opts, b, d)
	ingress.Translate(snap, opts, b, d)
	// Gateway API after Ingress, into the same builder: both share the
	// group's per-port listeners (higress-semantics §8.6).
	gwStatus := gatewayapi.Translate(snap, opts, b, d)
	// Wasm plugins apply to every HTTP filter chain of the group.
	wasm.Translate(snap, opts, b, d)
	gw := b.Build()
	return &Result{
		Gateways:    map[string]*ir.Gateway{opts.Group: gw},
		Groups:      map[string]*envoy.Resources{opts.Group: envoy.Build(gw)},
		Diagnostics: d,
		GatewayAPI:  gwStatus,
	}
}
