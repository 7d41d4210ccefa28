package e2e

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/hxds/hxds/translate/envoy"
	"github.com/hxds/hxds/xds/adsclient"
)

// routeCluster returns the cluster of the route matching exactly path (a
// path or prefix match) in the virtual host serving domain, or "".
func routeCluster(rc *routev3.RouteConfiguration, domain, path string) string {
	for _, vh := range rc.GetVirtualHosts() {
		if !slices.Contains(vh.GetDomains(), domain) {
			continue
		}
		for _, r := range vh.GetRoutes() {
			if m := r.GetMatch(); m.GetPath() == path || m.GetPrefix() == path {
				return r.GetRoute().GetCluster()
			}
		}
	}
	return ""
}

func domains(rc *routev3.RouteConfiguration) []string {
	var out []string
	for _, vh := range rc.GetVirtualHosts() {
		out = append(out, vh.GetDomains()...)
	}
	return out
}

func hcmOf(t testing.TB, fc *listenerv3.FilterChain) *hcmv3.HttpConnectionManager {
	t.Helper()
	if len(fc.GetFilters()) != 1 {
		t.Fatalf("filter chain %q has %d filters, want the HCM only", fc.GetName(), len(fc.GetFilters()))
	}
	hcm := &hcmv3.HttpConnectionManager{}
	if err := fc.GetFilters()[0].GetTypedConfig().UnmarshalTo(hcm); err != nil {
		t.Fatal(err)
	}
	return hcm
}

func endpointAddrs(s adsclient.Snapshot, cluster string) []string {
	var out []string
	for _, le := range s.Endpoints(cluster).GetEndpoints() {
		for _, lb := range le.GetLbEndpoints() {
			sa := lb.GetEndpoint().GetAddress().GetSocketAddress()
			out = append(out, fmt.Sprintf("%s:%d", sa.GetAddress(), sa.GetPortValue()))
		}
	}
	slices.Sort(out)
	return out
}

// checkQuickstart asserts the key fields of the quickstart as an Envoy holds
// it, and that the whole set passes translate/envoy.Check.
func checkQuickstart(t testing.TB, s adsclient.Snapshot, httpPort, httpsPort uint32) {
	t.Helper()
	for typ, names := range quickstart {
		if typ == lds {
			names = []string{fmt.Sprintf("0.0.0.0_%d", httpsPort), fmt.Sprintf("0.0.0.0_%d", httpPort)}
			slices.Sort(names)
		}
		if got := s.Names(typ); !slices.Equal(got, names) {
			t.Errorf("%s: holds %q, want %q", short(typ), got, names)
		}
	}

	// Plain HTTP: one chain, routes over RDS.
	l80 := s.Listener(fmt.Sprintf("0.0.0.0_%d", httpPort))
	if got := l80.GetAddress().GetSocketAddress().GetPortValue(); got != httpPort {
		t.Errorf("HTTP listener port %d, want %d", got, httpPort)
	}
	if l80.GetApiListener() != nil || len(l80.GetFilterChains()) != 1 {
		t.Fatalf("HTTP listener: %v", l80)
	}
	hcm := hcmOf(t, l80.GetFilterChains()[0])
	if hcm.GetStatPrefix() != fmt.Sprintf("outbound_0.0.0.0_%d", httpPort) || hcm.GetRds().GetRouteConfigName() != httpRoutes {
		t.Errorf("HTTP HCM: stat_prefix %q, rds %q", hcm.GetStatPrefix(), hcm.GetRds().GetRouteConfigName())
	}
	if hcm.GetRds().GetConfigSource().GetAds() == nil {
		t.Error("HTTP routes not fetched over ADS")
	}

	// HTTPS: SNI chain with the SDS certificate.
	l443 := s.Listener(fmt.Sprintf("0.0.0.0_%d", httpsPort))
	if got := l443.GetAddress().GetSocketAddress().GetPortValue(); got != httpsPort || len(l443.GetFilterChains()) != 1 {
		t.Fatalf("HTTPS listener: %v", l443)
	}
	fc := l443.GetFilterChains()[0]
	if got := fc.GetFilterChainMatch().GetServerNames(); !slices.Equal(got, []string{"secure.example.com"}) {
		t.Errorf("HTTPS server names %q", got)
	}
	tls := &tlsv3.DownstreamTlsContext{}
	if err := fc.GetTransportSocket().GetTypedConfig().UnmarshalTo(tls); err != nil {
		t.Fatal(err)
	}
	if sc := tls.GetCommonTlsContext().GetTlsCertificateSdsSecretConfigs(); len(sc) != 1 || sc[0].GetName() != demoSecret {
		t.Errorf("HTTPS certificate over SDS: %v", sc)
	}
	if got := hcmOf(t, fc).GetRds().GetRouteConfigName(); got != httpsRoutes {
		t.Errorf("HTTPS routes %q", got)
	}

	// Routes.
	rc := s.Route(httpRoutes)
	for _, tc := range []struct{ domain, path, cluster string }{
		{"echo.example.com", "/", echoCluster},
		{"echo.example.com", "/api/v1/status", apiCluster},
		{"echo.example.com", "/api", apiCluster},
		{"legacy.example.com", "/", legacyCluster},
		{"secure.example.com", "/", echoCluster},
		{"*", "/", echoCluster},
	} {
		if got := routeCluster(rc, tc.domain, tc.path); got != tc.cluster {
			t.Errorf("%s: %s%s goes to %q, want %q", httpRoutes, tc.domain, tc.path, got, tc.cluster)
		}
	}
	if got := routeCluster(s.Route(httpsRoutes), "secure.example.com", "/"); got != echoCluster {
		t.Errorf("%s: secure.example.com/ goes to %q", httpsRoutes, got)
	}

	// Clusters and their endpoints.
	for cluster, addr := range map[string]string{echoCluster: "127.0.0.1:8080", apiCluster: "127.0.0.1:9090", legacyCluster: "127.0.0.1:7070"} {
		c := s.Cluster(cluster)
		if c.GetEdsClusterConfig().GetServiceName() != cluster || c.GetEdsClusterConfig().GetEdsConfig().GetAds() == nil {
			t.Errorf("cluster %s: eds_cluster_config %v", cluster, c.GetEdsClusterConfig())
		}
		if httpPort == 80 { // the real-Envoy test moves the echo endpoint
			if got := endpointAddrs(s, cluster); !slices.Equal(got, []string{addr}) {
				t.Errorf("endpoints of %s = %q, want %q", cluster, got, addr)
			}
		}
	}

	// The certificate, with its key (only the admin dump redacts it).
	cert := s.Secret(demoSecret).GetTlsCertificate()
	if !strings.HasPrefix(string(cert.GetCertificateChain().GetInlineBytes()), "-----BEGIN CERTIFICATE-----") ||
		!strings.Contains(string(cert.GetPrivateKey().GetInlineBytes()), "PRIVATE KEY") {
		t.Errorf("secret %s: %v", demoSecret, cert)
	}

	if err := envoy.Check(s.ByType()); err != nil {
		t.Errorf("translate/envoy.Check over what the client holds:\n%v", err)
	}
	for typ, ts := range s.Types {
		if ts.NACKs != 0 {
			t.Errorf("%s NACKed: %s", short(typ), ts.LastNACK)
		}
	}
}

// fetchByName asks an ADS server for named resources on a fresh
// state-of-the-world stream, as a proxyless gRPC client does, and returns the
// first response.
func fetchByName(t testing.TB, addr, typeURL string, names ...string) *discovery.DiscoveryResponse {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	st, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&discovery.DiscoveryRequest{
		Node: &corev3.Node{Id: "grpc-client", Cluster: defaultGroup}, TypeUrl: typeURL, ResourceNames: names,
	}); err != nil {
		t.Fatal(err)
	}
	resp, err := st.Recv()
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestQuickstart connects as Envoy does and checks everything the quickstart
// serves, the ACKs hxds records, and that API listeners stay away from
// Envoy's wildcard LDS subscription.
func TestQuickstart(t *testing.T) {
	protocols(t, func(t *testing.T, delta bool) {
		h := startHxds(t, copyQuickstart(t))
		cl := connect(t, h.xds, adsclient.Options{NodeID: "envoy-1", Cluster: defaultGroup, Delta: delta})
		cl.wait("the quickstart", holdsQuickstart)
		s := cl.synced(h)
		checkQuickstart(t, s, 80, 443)

		// hxds saw every response ACKed.
		protocol := "sotw"
		if delta {
			protocol = "delta"
		}
		waitUntil(t, "ACKs in /debug/connections", func() (bool, string) {
			c := h.connection(t, "envoy-1")
			if c == nil || c.Group != defaultGroup || c.Protocol != protocol || c.UserAgent != adsclient.UserAgentName {
				return false, fmt.Sprintf("connection %+v", c)
			}
			for _, typ := range allTypes {
				ts := typeStatus(c, typ)
				if ts.SentVersion != s.Version(typ) || ts.AckedVersion != s.Version(typ) || ts.LastNack != nil {
					return false, fmt.Sprintf("%s: %+v", short(typ), ts)
				}
			}
			return true, ""
		})

		// API listeners exist for proxyless gRPC clients that name them...
		resp := fetchByName(t, h.xds, lds, "echo.example.com", "echo.example.com:80")
		if len(resp.GetResources()) != 2 {
			t.Fatalf("named LDS request got %d listeners, want the 2 API listeners", len(resp.GetResources()))
		}
		for _, a := range resp.GetResources() {
			l := &listenerv3.Listener{}
			if err := a.UnmarshalTo(l); err != nil || l.GetApiListener() == nil {
				t.Errorf("named listener %v: not an API listener (%v)", l.GetName(), err)
			}
		}
		// ...but never reach Envoy's wildcard subscription (which would NACK them).
		s = cl.State()
		for name := range s.Types[lds].Resources {
			if s.Listener(name).GetApiListener() != nil {
				t.Errorf("API listener %s sent to a wildcard LDS subscription", name)
			}
		}
		for _, ev := range cl.since(0) {
			if ev.NACK {
				t.Errorf("NACK: %s: %s", short(ev.TypeURL), ev.Error)
			}
		}
	})
}

// TestRouteOnlyChange edits an Ingress: the new RouteConfiguration arrives,
// and nothing else; above all, listeners are not pushed again.
func TestRouteOnlyChange(t *testing.T) {
	protocols(t, func(t *testing.T, delta bool) {
		h := startHxds(t, copyQuickstart(t))
		cl := connect(t, h.xds, adsclient.Options{NodeID: "envoy-1", Cluster: defaultGroup, Delta: delta})
		cl.wait("the quickstart", holdsQuickstart)
		before := cl.synced(h)
		served := h.servedVersions(t)
		ldsPushes := typeStatus(h.connection(t, "envoy-1"), lds).Pushes
		mark := cl.mark()

		addEchoPath(t, h.dir, "/added")
		cl.wait("the new route", func(s adsclient.Snapshot) bool {
			return routeCluster(s.Route(httpRoutes), "echo.example.com", "/added") == apiCluster
		})
		s := cl.synced(h)

		evs := cl.since(mark)
		if got := typesOf(evs); !slices.Equal(got, []string{"RouteConfiguration"}) {
			t.Errorf("responses after a route change: %v, want one RDS response", summarize(evs))
		}
		if len(evs) > 0 && !slices.Equal(evs[0].Resources, []string{httpRoutes}) {
			t.Errorf("RDS response carries %q, want only %s", evs[0].Resources, httpRoutes)
		}
		now := h.servedVersions(t)
		for _, typ := range []string{lds, cds, eds, sds} {
			if now[typ] != served[typ] || s.Version(typ) != before.Version(typ) || s.Type(typ).Responses != before.Type(typ).Responses {
				t.Errorf("%s changed for a route-only change: served %s→%s, client %s→%s, responses %d→%d", short(typ),
					served[typ], now[typ], before.Version(typ), s.Version(typ), before.Type(typ).Responses, s.Type(typ).Responses)
			}
		}
		if p := typeStatus(h.connection(t, "envoy-1"), lds).Pushes; p != ldsPushes {
			t.Errorf("hxds pushed LDS %d more time(s) for a route-only change", p-ldsPushes)
		}
		if !proto.Equal(s.Route(httpsRoutes), before.Route(httpsRoutes)) {
			t.Error("the HTTPS routes changed")
		}
		if err := envoy.Check(s.ByType()); err != nil {
			t.Errorf("Check after the change: %v", err)
		}
	})
}

// TestEndpointOnlyChange edits an EndpointSlice: only EDS is pushed (for
// delta only the changed assignment), without a translation.
func TestEndpointOnlyChange(t *testing.T) {
	protocols(t, func(t *testing.T, delta bool) {
		h := startHxds(t, copyQuickstart(t))
		cl := connect(t, h.xds, adsclient.Options{NodeID: "envoy-1", Cluster: defaultGroup, Delta: delta})
		cl.wait("the quickstart", holdsQuickstart)
		before := cl.synced(h)
		translations := h.metric(t, `hxds_translations_total{result="ok"}`)
		endpointOnly := h.metric(t, "hxds_endpoint_only_updates_total")
		mark := cl.mark()

		editFile(t, h.dir, "10-services.yaml", echoEndpoint, echoEndpoint+`  - addresses: ["127.0.0.2"]
    conditions: {ready: true}
`)
		cl.wait("the new endpoint", func(s adsclient.Snapshot) bool {
			return slices.Equal(endpointAddrs(s, echoCluster), []string{"127.0.0.1:8080", "127.0.0.2:8080"})
		})
		s := cl.synced(h)

		evs := cl.since(mark)
		if got := typesOf(evs); !slices.Equal(got, []string{"ClusterLoadAssignment"}) {
			t.Errorf("responses after an endpoint change: %v, want one EDS response", summarize(evs))
		}
		if len(evs) > 0 && !slices.Equal(evs[0].Resources, []string{echoCluster}) {
			t.Errorf("EDS response carries %q, want only %s", evs[0].Resources, echoCluster)
		}
		for _, typ := range []string{lds, rds, cds, sds} {
			if s.Version(typ) != before.Version(typ) {
				t.Errorf("%s version changed for an endpoint-only change", short(typ))
			}
		}
		for _, c := range []string{apiCluster, legacyCluster} {
			if !proto.Equal(s.Endpoints(c), before.Endpoints(c)) {
				t.Errorf("endpoints of %s changed", c)
			}
		}
		if got := h.metric(t, "hxds_endpoint_only_updates_total"); got != endpointOnly+1 {
			t.Errorf("hxds_endpoint_only_updates_total = %v, want %v", got, endpointOnly+1)
		}
		if got := h.metric(t, `hxds_translations_total{result="ok"}`); got != translations {
			t.Errorf("hxds_translations_total{result=\"ok\"} = %v, want %v (no translation)", got, translations)
		}
		if err := envoy.Check(s.ByType()); err != nil {
			t.Errorf("Check after the change: %v", err)
		}
	})
}

// TestNack makes the client reject a route update: hxds records the NACK
// with its message, the ACKed version stays the previous one, and the
// client keeps the routes it had.
func TestNack(t *testing.T) {
	protocols(t, func(t *testing.T, delta bool) {
		h := startHxds(t, copyQuickstart(t))
		var reject atomic.Bool
		const msg = "route configuration rejected by the e2e test"
		cl := connect(t, h.xds, adsclient.Options{
			NodeID: "envoy-nack", Cluster: defaultGroup, Delta: delta,
			Nack: func(typeURL string, _ []*anypb.Any) error {
				if typeURL == rds && reject.Load() {
					return errors.New(msg)
				}
				return nil
			},
		})
		cl.wait("the quickstart", holdsQuickstart)
		before := cl.synced(h)

		reject.Store(true)
		addEchoPath(t, h.dir, "/rejected")
		s := cl.wait("the NACK", func(s adsclient.Snapshot) bool { return s.Type(rds).NACKs == 1 })
		if s.Version(rds) != before.Version(rds) || !proto.Equal(s.Route(httpRoutes), before.Route(httpRoutes)) {
			t.Error("the client applied the rejected routes")
		}
		rejected := h.servedVersions(t)[rds]
		if rejected == before.Version(rds) {
			t.Fatal("the edit did not change the routes")
		}
		waitUntil(t, "the NACK in /debug/connections", func() (bool, string) {
			ts := typeStatus(h.connection(t, "envoy-nack"), rds)
			ok := ts.LastNack != nil && ts.LastNack.Error == msg && ts.AckedVersion == before.Version(rds) && ts.SentVersion == rejected
			return ok, fmt.Sprintf("RDS status %+v (nack %+v), want last_nack %q, acked %s, sent %s", ts, ts.LastNack, msg, before.Version(rds), rejected)
		})
		if got := h.metric(t, fmt.Sprintf(`hxds_xds_nacks_total{type=%q}`, rds)); got != 1 {
			t.Errorf("hxds_xds_nacks_total for RDS = %v, want 1", got)
		}

		// The next change is accepted again.
		reject.Store(false)
		addEchoPath(t, h.dir, "/accepted")
		s = cl.wait("the accepted routes", func(s adsclient.Snapshot) bool {
			return routeCluster(s.Route(httpRoutes), "echo.example.com", "/accepted") == apiCluster
		})
		waitUntil(t, "the ACK in /debug/connections", func() (bool, string) {
			ts := typeStatus(h.connection(t, "envoy-nack"), rds)
			return ts.AckedVersion == s.Version(rds), fmt.Sprintf("%+v", ts)
		})
	})
}

// brokenFiles are inputs hxds must reject alone.
var brokenFiles = map[string]string{
	"90-garbage.yaml": `apiVersion: v1
kind: Service
metadata: {name: x
  - ]]
`,
	"91-unknown-field.yaml": `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: unknown-field, namespace: demo}
spec:
  ingressClassName: higress
  bogusField: 1
  rules:
    - host: unknown.example.com
      http:
        paths:
          - {path: /, pathType: Prefix, backend: {service: {name: echo, port: {number: 80}}}}
`,
	"92-bad-port.yaml": `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: bad-port, namespace: demo}
spec:
  ingressClassName: higress
  rules:
    - host: bad-port.example.com
      http:
        paths:
          - {path: /, pathType: Prefix, backend: {service: {name: echo, port: {name: no-such-port}}}}
`,
	"93-duplicate.yaml": `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: echo, namespace: demo}
spec:
  ingressClassName: higress
  rules:
    - host: duplicate.example.com
      http:
        paths:
          - {path: /, pathType: Prefix, backend: {service: {name: echo, port: {number: 80}}}}
`,
}

// wantProblems are the findings /debug/status must show for brokenFiles.
var wantProblems = []struct{ kind, name, file, reason string }{
	{"Service", "", "90-garbage.yaml", "parse-error"},
	{"Ingress", "unknown-field", "91-unknown-field.yaml", "unknown-field"},
	{"Ingress", "bad-port", "92-bad-port.yaml", "port-name-resolve-error"},
	// The duplicate is reported on its own file, not on the served original.
	{"Ingress", "echo", "93-duplicate.yaml", "duplicate-object"},
}

// TestBrokenInputKeepsServing adds broken files next to the quickstart:
// everything served before stays served, /debug/status names each problem,
// and removing the files restores a clean status. Removing a valid file
// removes its routes.
func TestBrokenInputKeepsServing(t *testing.T) {
	protocols(t, func(t *testing.T, delta bool) {
		h := startHxds(t, copyQuickstart(t))
		cl := connect(t, h.xds, adsclient.Options{NodeID: "envoy-1", Cluster: defaultGroup, Delta: delta})
		cl.wait("the quickstart", holdsQuickstart)
		before := cl.synced(h)
		if st := h.status(t, true); len(st.Status) != 0 {
			t.Fatalf("the quickstart has problems: %+v", st.Status)
		}

		for name, content := range brokenFiles {
			writeFile(t, h.dir, name, content)
		}
		waitUntil(t, "every problem on /debug/status", func() (bool, string) {
			st := h.status(t, true)
			for _, w := range wantProblems {
				if !hasProblem(st, w.kind, w.name, w.file, w.reason) {
					return false, fmt.Sprintf("missing %+v in %+v", w, st.Status)
				}
			}
			return true, ""
		})
		// The original of the duplicated Ingress is still accepted, and the
		// rejected count matches the metric.
		st := h.status(t, false)
		for _, o := range st.Status {
			if o.Object.Kind == "Ingress" && o.Object.Name == "echo" && o.Object.File == "30-ingresses.yaml" && !o.Accepted {
				t.Errorf("the served original of a duplicate is marked rejected: %+v", o)
			}
		}
		if got := h.metric(t, "hxds_rejected_objects"); got != float64(st.Rejected) || st.Rejected == 0 {
			t.Errorf("hxds_rejected_objects = %v, /debug/status rejected = %d", got, st.Rejected)
		}
		s := cl.synced(h)

		// Nothing previously served was withdrawn or changed.
		for typ, res := range before.Types {
			for name, r := range res.Resources {
				if !proto.Equal(s.Message(typ, name), r.Message) {
					t.Errorf("%s %s changed or disappeared after broken input", short(typ), name)
				}
			}
		}
		for _, d := range []string{"unknown.example.com", "bad-port.example.com", "duplicate.example.com"} {
			if slices.Contains(domains(s.Route(httpRoutes)), d) {
				t.Errorf("rejected host %s is served", d)
			}
		}
		if err := envoy.Check(s.ByType()); err != nil {
			t.Errorf("Check with broken input: %v", err)
		}

		for name := range brokenFiles {
			removeFile(t, h.dir, name)
		}
		waitUntil(t, "a clean /debug/status", func() (bool, string) {
			st := h.status(t, true)
			return len(st.Status) == 0 && st.Rejected == 0, fmt.Sprintf("%+v", st.Status)
		})
		s = cl.synced(h)
		if !holdsQuickstart(s) {
			t.Errorf("after removing the broken files:%s", describe(s))
		}

		// A valid file's routes come with it and go with it.
		writeFile(t, h.dir, "40-extra.yaml", `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: extra, namespace: demo}
spec:
  ingressClassName: higress
  rules:
    - host: extra.example.com
      http:
        paths:
          - {path: /, pathType: Prefix, backend: {service: {name: legacy, port: {number: 80}}}}
`)
		cl.wait("the extra host", func(s adsclient.Snapshot) bool {
			return routeCluster(s.Route(httpRoutes), "extra.example.com", "/") == legacyCluster
		})
		removeFile(t, h.dir, "40-extra.yaml")
		s = cl.wait("the extra host gone", func(s adsclient.Snapshot) bool {
			return !slices.Contains(domains(s.Route(httpRoutes)), "extra.example.com")
		})
		if !proto.Equal(s.Route(httpRoutes), before.Route(httpRoutes)) {
			t.Error("routes differ from the quickstart's after removing the extra file")
		}
		for _, ev := range cl.since(0) {
			if ev.NACK {
				t.Errorf("NACK: %s: %s", short(ev.TypeURL), ev.Error)
			}
		}
	})
}

func hasProblem(st statusReport, kind, name, file, reason string) bool {
	for _, s := range st.Status {
		if s.Object.Kind != kind || s.Object.Name != name || (file != "" && s.Object.File != file) {
			continue
		}
		for _, f := range s.Findings {
			if f.Reason == reason && f.Message != "" {
				return true
			}
		}
	}
	return false
}

// TestGroups: Envoys of one group share versions; a node of an unknown group
// gets an empty configuration and shows in /debug/connections with its group.
func TestGroups(t *testing.T) {
	protocols(t, func(t *testing.T, delta bool) {
		h := startHxds(t, copyQuickstart(t))
		a := connect(t, h.xds, adsclient.Options{NodeID: "envoy-a", Cluster: defaultGroup, Delta: delta})
		b := connect(t, h.xds, adsclient.Options{NodeID: "envoy-b", Cluster: defaultGroup, Delta: delta})
		o := connect(t, h.xds, adsclient.Options{NodeID: "envoy-other", Cluster: "other-group", Delta: delta})

		sa := a.synced(h)
		sb := b.synced(h)
		for _, typ := range allTypes {
			if sa.Version(typ) == "" || sa.Version(typ) != sb.Version(typ) {
				t.Errorf("%s: versions %q and %q differ in one group", short(typ), sa.Version(typ), sb.Version(typ))
			}
		}

		so := o.wait("empty LDS and CDS", func(s adsclient.Snapshot) bool {
			return s.Type(lds).ACKs == 1 && s.Type(cds).ACKs == 1
		})
		for _, typ := range allTypes {
			if n := so.Names(typ); len(n) != 0 {
				t.Errorf("other-group holds %s %q", short(typ), n)
			}
		}
		for _, typ := range []string{rds, eds, sds} {
			if _, ok := so.Types[typ]; ok {
				t.Errorf("other-group subscribed to %s", short(typ))
			}
		}
		if so.Version(lds) == sa.Version(lds) || so.Version(cds) == sa.Version(cds) {
			t.Error("other-group has the default group's versions")
		}
		waitUntil(t, "all three in /debug/connections", func() (bool, string) {
			conns := h.connections(t)
			groups := map[string]string{}
			for _, c := range conns {
				groups[c.NodeID] = c.Group
			}
			ok := groups["envoy-a"] == defaultGroup && groups["envoy-b"] == defaultGroup && groups["envoy-other"] == "other-group"
			return ok, fmt.Sprint(groups)
		})
		protocol := "sotw"
		if delta {
			protocol = "delta"
		}
		if got := h.metric(t, `hxds_xds_connected_proxies{group="other-group",protocol="`+protocol+`"}`); got != 1 {
			t.Errorf("hxds_xds_connected_proxies of other-group = %v, want 1", got)
		}

		// A change reaches both members with the same versions again.
		addEchoPath(t, h.dir, "/both")
		for _, c := range []*client{a, b} {
			c.wait("the new route", func(s adsclient.Snapshot) bool {
				return routeCluster(s.Route(httpRoutes), "echo.example.com", "/both") == apiCluster
			})
		}
		sa, sb = a.synced(h), b.synced(h)
		if sa.Version(rds) != sb.Version(rds) {
			t.Errorf("RDS versions differ after a change: %s %s", sa.Version(rds), sb.Version(rds))
		}
		if got := o.State().Type(lds).Responses; got != 1 {
			t.Errorf("other-group got %d LDS responses, want 1", got)
		}
	})
}

// TestReady checks the readiness and health endpoints once serving.
func TestReady(t *testing.T) {
	t.Parallel()
	h := startHxds(t, copyQuickstart(t))
	for _, p := range []string{"/ready", "/healthz"} {
		if code, body := h.get(t, p); code != 200 {
			t.Errorf("%s: %d %s", p, code, body)
		}
	}
}

// TestConnectionsAcrossProtocols connects one state-of-the-world and one
// delta Envoy: both must show in /debug/connections, and the two protocols
// serve the same versions.
func TestConnectionsAcrossProtocols(t *testing.T) {
	t.Parallel()
	h := startHxds(t, copyQuickstart(t))
	a := connect(t, h.xds, adsclient.Options{NodeID: "envoy-sotw", Cluster: defaultGroup})
	b := connect(t, h.xds, adsclient.Options{NodeID: "envoy-delta", Cluster: defaultGroup, Delta: true})
	sa, sb := a.synced(h), b.synced(h)
	for _, typ := range allTypes {
		if sa.Version(typ) != sb.Version(typ) {
			t.Errorf("%s: state-of-the-world version %q, delta %q", short(typ), sa.Version(typ), sb.Version(typ))
		}
	}

	waitUntil(t, "both in /debug/connections", func() (bool, string) {
		protos := map[string]string{}
		for _, c := range h.connections(t) {
			protos[c.NodeID] = c.Protocol
		}
		return protos["envoy-sotw"] == "sotw" && protos["envoy-delta"] == "delta", fmt.Sprint(protos)
	})
}
