// Package conformance replays the Gateway API conformance suite
// (sigs.k8s.io/gateway-api/conformance, the manifests and tests it embeds)
// against hxds without a cluster.
//
// The suite runs unchanged against a Harness:
//   - its Kubernetes client talks to an in-memory API (controller-runtime's
//     fake client, plus the generation bumps and status subresources a real
//     API server has), where simulated kubelet and EndpointSlice controllers
//     turn Deployments into Ready pods and Services into EndpointSlices;
//   - hxds runs as the controller: on every write it reads all inputs,
//     translates them (translate.Translate, the same pure pipeline the server
//     runs), writes the Gateway API status back and serves the Envoy
//     resources, every set checked by envoy.Check;
//   - the suite's RoundTripper and gRPC client are a data plane: each request
//     is routed by routecheck over the served resources, as Envoy would route
//     it, and answered by a simulation of the suite's echo servers running in
//     the selected endpoint's pod (echo-basic's JSON, /status/, /retry/,
//     ?delay=), with route timeouts, retries, mirrors (logged to the pod's
//     log, read through the pod log API) and response header mutations.
//
// What the simulation does not do is stated where it matters: Envoy's
// behaviour comes from routecheck (see its package comment); the backends
// are modelled on echo-basic; nothing is ever dialed.
package conformance
