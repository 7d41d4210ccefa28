package routecheck

import (
	"encoding/json"
	"strings"
	"testing"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
	"sigs.k8s.io/yaml"
)

func TestParseTestsIsStrict(t *testing.T) {
	for name, doc := range map[string]string{
		"unknown expect field":  "tests:\n- name: a\n  request: {host: h}\n  expect: {clustr: x}\n",
		"unknown request field": "tests:\n- name: a\n  request: {hots: h}\n  expect: {cluster: x}\n",
		"unknown top field":     "test:\n- name: a\n",
		"no tests":              "tests: []\n",
		"no name":               "tests:\n- request: {host: h}\n  expect: {cluster: x}\n",
		"duplicate name":        "tests:\n- {name: a, expect: {cluster: x}}\n- {name: a, expect: {cluster: y}}\n",
		"empty expect":          "tests:\n- {name: a, request: {host: h}}\n",
		"duplicate key":         "tests:\n- name: a\n  name: b\n  expect: {cluster: x}\n",
		"bad type":              "tests:\n- {name: a, expect: {status: teapot}}\n",
	} {
		if _, err := ParseTests([]byte(doc)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	tf, err := ParseTests([]byte(`tests:
- name: tls
  request: {host: "secure.example.com:443", tls: true}
  expect: {filterChain: x}
- name: no sni
  request: {host: secure.example.com, tls: true, sni: ""}
  expect: {noFilterChain: true}
`))
	if err != nil {
		t.Fatal(err)
	}
	if r := tf.Tests[0].Request.Request(); r.SNI != "secure.example.com" || !r.TLS {
		t.Errorf("SNI defaults to the host: %+v", r)
	}
	if r := tf.Tests[1].Request.Request(); r.SNI != "" {
		t.Errorf("an explicit empty SNI sends none: %+v", r)
	}
}

func TestCompareAndReport(t *testing.T) {
	s := func(v string) *string { return &v }
	b := func(v bool) *bool { return &v }
	i := func(v int) *int { return &v }
	o := Outcome{
		Listener: "0.0.0.0_80", Cluster: "c", Service: "demo/c:80", UpstreamPath: "/x", Status: 0, Forwarded: true,
		RequestHeaders: map[string]string{"x-a": "b"}, RequestHeadersRemoved: []string{"x-c"},
		ResponseHeaders: map[string]string{"x-r": "1"}, Mirrors: []string{"m"},
	}
	if ms := Compare(Expect{
		Listener: s("0.0.0.0_80"), Cluster: s("c"), Service: s("demo/c:80"), UpstreamPath: s("/x"), Forwarded: b(true),
		NoRoute: b(false), Denied: b(false), RequestHeaders: &ExpectHeaders{Add: map[string]string{"X-A": "b"}, Remove: []string{"x-c"}},
		ResponseHeaders: &ExpectHeaders{Add: map[string]string{"x-r": "1"}}, Mirrors: &[]string{"m"},
	}, o); len(ms) != 0 {
		t.Errorf("unexpected mismatches: %+v", ms)
	}
	ms := Compare(Expect{
		Cluster: s("other"), Status: i(404), Redirect: &ExpectRedirect{Status: i(301)},
		RequestHeaders: &ExpectHeaders{Add: map[string]string{"x-a": "c", "x-missing": "v"}, Remove: []string{"x-a", "x-never"}},
		Mirrors:        &[]string{}, DeniedBy: s("rbac"),
	}, o)
	var fields []string
	for _, m := range ms {
		fields = append(fields, m.Field)
	}
	want := "cluster mirrors status redirect requestHeaders.add[x-a] requestHeaders.add[x-missing] requestHeaders.remove[x-a] requestHeaders.remove[x-never] deniedBy"
	if got := strings.Join(fields, " "); got != want {
		t.Errorf("mismatch fields:\n got %s\nwant %s", got, want)
	}

	results := []Result{
		{Name: "ok", Result: Pass, Outcome: &o},
		{Name: "bad", Result: Fail, Mismatches: ms[:1], Outcome: &Outcome{NoRouteReason: "no route"}},
		{Name: "broken", Result: Error, Error: "boom"},
	}
	text := TextReport(results, false)
	for _, want := range []string{
		"PASS  ok\n", "FAIL  bad\n      cluster: want \"other\", got \"c\"\n      (no route)\n", "ERROR broken\n      error: boom\n",
		"3 tests: 1 passed, 1 failed, 1 errors\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q:\n%s", want, text)
		}
	}
	if !strings.Contains(TextReport(results[:1], true), "      | upstreamPath: /x\n") {
		t.Errorf("details print the outcome:\n%s", TextReport(results[:1], true))
	}
}

// TestConfigDump round-trips resources through a ConfigDump JSON with a
// filter of a type this binary does not know and a field it does not know.
func TestConfigDump(t *testing.T) {
	st, _ := structpb.NewStruct(map[string]any{"marker": "unknown-filter"})
	h := hcm(t, "http.80", &hcmv3.HttpFilter{Name: "acme.filter", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(t, st)}})
	l := listener("0.0.0.0_80", 80, false, chain(t, "", h))
	table := rc("http.80", vhost("vh", []string{"*"}, toCluster("outbound|80||echo.demo.svc.cluster.local", prefix("/"))))

	pack := func(ms ...proto.Message) []*anypb.Any {
		var out []*anypb.Any
		for _, m := range ms {
			out = append(out, mustAny(t, m))
		}
		return out
	}
	lis := pack(l)
	rts := pack(table)
	cd := &adminv3.ConfigDump{Configs: pack(
		&adminv3.ListenersConfigDump{DynamicListeners: []*adminv3.ListenersConfigDump_DynamicListener{{
			Name: l.Name, ActiveState: &adminv3.ListenersConfigDump_DynamicListenerState{Listener: lis[0]},
		}}},
		&adminv3.RoutesConfigDump{DynamicRouteConfigs: []*adminv3.RoutesConfigDump_DynamicRouteConfig{{RouteConfig: rts[0]}}},
		&adminv3.ClustersConfigDump{},
	)}
	raw, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(cd)
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	compact, _ := json.Marshal(doc)
	js := strings.Replace(string(compact),
		`{"@type":"type.googleapis.com/google.protobuf.Struct","value":{"marker":"unknown-filter"}}`,
		`{"@type":"type.googleapis.com/acme.filters.v1.Magic","spell":{"@type":"type.googleapis.com/acme.Other"}}`, 1)
	js = strings.Replace(js, `"name":"http.80"`, `"name":"http.80","a_field_from_the_future":1`, 1)
	if !strings.Contains(js, "acme.filters.v1.Magic") {
		t.Fatalf("test setup: unknown filter not injected: %s", js)
	}

	res, err := ParseConfigDump([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	o := eval(t, res, Request{Host: "echo.example.com"})
	// The dump has a (empty) cluster section: the cluster is missing.
	if o.Route != "outbound|80||echo.demo.svc.cluster.local" || !o.ClusterMissing || o.Status != 503 {
		t.Errorf("outcome from the dump: %+v", o)
	}
	if !strings.Contains(strings.Join(o.NotSimulated, "\n"), "acme.filter (acme.filters.v1.Magic)") {
		t.Errorf("unknown filter type not reported: %v", o.NotSimulated)
	}
	// YAML dumps (hxds translate -o yaml) are accepted too.
	y, err := yaml.JSONToYAML([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	if res, err := ParseConfigDump(y); err != nil || eval(t, res, Request{Host: "h"}).Route == "" {
		t.Errorf("YAML dump: %v", err)
	}
	if _, err := ParseConfigDump([]byte("configs: []\n")); err == nil {
		t.Errorf("a dump without listeners must be an error")
	}
}
