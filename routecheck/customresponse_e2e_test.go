package routecheck_test

import (
	"path/filepath"
	"testing"

	"github.com/hxds/hxds/internal/testutil/behaviour"
	"github.com/hxds/hxds/routecheck"
)

// TestCustomHTTPErrorsEndToEnd runs the Ingress annotation custom-http-errors
// through the real pipeline (as translate/ingress's behaviour tests do, with
// ready endpoints added so that the backend answers) and checks that the
// custom_response filter sends 404 and 503 answers of the backend to the
// <route>-fallback route, and the default backend.
func TestCustomHTTPErrorsEndToEnd(t *testing.T) {
	res := behaviour.Resources(t, filepath.Join("..", "translate", "ingress", "testdata", "default-backend.in.yaml"),
		filepath.Join("testdata", "default-backend-endpoints.yaml"))

	const (
		fallbackRoute   = "default/custom-errors-fallback"
		fallbackCluster = "outbound|8080||fallback.default.svc.cluster.local"
	)
	for _, code := range []int{404, 503} {
		o, err := routecheck.Evaluate(res, routecheck.Request{Host: "errors.example.com", Path: "/api", UpstreamStatus: code})
		if err != nil {
			t.Fatal(err)
		}
		if o.Route != "default/custom-errors" {
			t.Errorf("%d: route %q", code, o.Route)
		}
		cr := o.CustomResponse
		if cr == nil || cr.Redirected == nil {
			t.Fatalf("%d: not redirected: %+v (filters %+v)", code, cr, o.Filters)
		}
		r := cr.Redirected
		if r.Route != fallbackRoute || r.Cluster != fallbackCluster || r.Service != "default/fallback:8080" || r.UpstreamPath != "/" {
			t.Errorf("%d: redirected to route %q cluster %q service %q path %q", code, r.Route, r.Cluster, r.Service, r.UpstreamPath)
		}
		// No status_code: the client gets the original status with the
		// default backend's answer.
		if !o.Forwarded || !r.Forwarded || len(r.Endpoints) != 1 || r.Endpoints[0] != "10.0.0.2:8080" || cr.Status != code {
			t.Errorf("%d: forwarded %v, redirected forwarded %v to %v, status %d", code, o.Forwarded, r.Forwarded, r.Endpoints, cr.Status)
		}
	}

	o, err := routecheck.Evaluate(res, routecheck.Request{Host: "errors.example.com", Path: "/api", UpstreamStatus: 500})
	if err != nil {
		t.Fatal(err)
	}
	if o.Route != "default/custom-errors" || o.CustomResponse != nil {
		t.Errorf("500: route %q, custom response %+v", o.Route, o.CustomResponse)
	}

	// hxds lists the two headers as internal-only, so a client that sends
	// them itself does not reach the fallback route (Higress lets it).
	o, err = routecheck.Evaluate(res, routecheck.Request{Host: "errors.example.com", Path: "/", Headers: []routecheck.Header{
		{Name: "x-envoy-route-name", Value: fallbackRoute},
		{Name: "x-envoy-fallback-service", Value: "default/fallback"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if o.Route == fallbackRoute || o.Cluster == fallbackCluster {
		t.Errorf("client-sent headers reached the fallback route: route %q cluster %q", o.Route, o.Cluster)
	}

	// upstream-vhost rewrites the Host in place; the redirect restores the
	// rule host so the error still reaches that host's fallback route.
	o, err = routecheck.Evaluate(res, routecheck.Request{Host: "vhost-errors.example.com", Path: "/page", UpstreamStatus: 404})
	if err != nil {
		t.Fatal(err)
	}
	if o.CustomResponse == nil || o.CustomResponse.Redirected == nil ||
		o.CustomResponse.Redirected.Route != "default/errors-vhost-fallback" || o.CustomResponse.Redirected.Cluster != fallbackCluster {
		t.Errorf("upstream-vhost + custom-http-errors: %+v", o.CustomResponse)
	}
}
