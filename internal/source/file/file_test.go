package file

import (
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/hxds/hxds/translate/diag"
	"github.com/hxds/hxds/translate/input"
)

func writeFile(t *testing.T, root, rel, content string) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func load(t *testing.T, root string) *Result {
	t.Helper()
	res, err := Load(root)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func keyOf(kind input.Kind, ns, name string) input.Key {
	return input.Key{Kind: kind, Namespace: ns, Name: name}
}

func keys(res *Result) []string {
	var out []string
	for _, o := range res.Objects {
		out = append(out, o.Key.String())
	}
	return out
}

func find(t *testing.T, res *Result, k input.Key) Object {
	t.Helper()
	for _, o := range res.Objects {
		if o.Key == k {
			return o
		}
	}
	t.Fatalf("object %s not loaded; have %v; problems: %s", k, keys(res), dump(res))
	return Object{}
}

func dump(res *Result) string {
	var b strings.Builder
	for _, st := range res.Problems.List() {
		b.WriteString("\n  " + st.Object.String())
		for _, f := range st.Findings {
			b.WriteString("\n    " + string(f.Severity) + " " + f.Reason + " [" + f.Field + "] " + f.Message)
		}
	}
	return b.String()
}

// findings returns every finding with the object it is about.
type found struct {
	obj diag.Object
	diag.Finding
	accepted bool
}

func findings(res *Result) []found {
	var out []found
	for _, st := range res.Problems.List() {
		for _, f := range st.Findings {
			out = append(out, found{st.Object, f, st.Accepted})
		}
	}
	return out
}

func onlyFinding(t *testing.T, res *Result) found {
	t.Helper()
	f := findings(res)
	if len(f) != 1 {
		t.Fatalf("want exactly one finding, got %d:%s", len(f), dump(res))
	}
	return f[0]
}

const svcYAML = `apiVersion: v1
kind: Service
metadata:
  name: %s
  namespace: shop
spec:
  ports:
  - port: 80
`

func svc(name string) string { return strings.ReplaceAll(svcYAML, "%s", name) }

func TestLoadMultiDocument(t *testing.T) {
	root := t.TempDir()
	writeFile(t, root, "all.yaml", `# leading comment
---
`+svc("web")+`---
# an empty document is skipped
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  namespace: shop
spec:
  rules:
  - host: example.com
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg, namespace: shop}
data: {a: "1"}
...
`)
	res := load(t, root)
	if got := findings(res); len(got) != 0 {
		t.Fatalf("unexpected problems:%s", dump(res))
	}
	want := []string{"ConfigMap/shop/cfg", "Ingress/shop/web", "Service/shop/web"}
	if got := keys(res); !reflect.DeepEqual(got, want) {
		t.Fatalf("keys = %v, want %v", got, want)
	}
	if o := find(t, res, keyOf(input.KindService, "shop", "web")); o.Origin != (Origin{"all.yaml", 0}) {
		t.Errorf("service origin = %v", o.Origin)
	}
	ing := find(t, res, keyOf(input.KindIngress, "shop", "web"))
	if ing.Origin != (Origin{"all.yaml", 2}) {
		t.Errorf("ingress origin = %v", ing.Origin)
	}
	if host := ing.Obj.(*networkingv1.Ingress).Spec.Rules[0].Host; host != "example.com" {
		t.Errorf("host = %q", host)
	}
	if o := find(t, res, keyOf(input.KindConfigMap, "shop", "cfg")); o.Origin.Doc != 3 || o.Obj.(*corev1.ConfigMap).Data["a"] != "1" {
		t.Errorf("configmap = %+v", o)
	}
}

func TestLoadJSONAndList(t *testing.T) {
	root := t.TempDir()
	writeFile(t, root, "svc.json", `{
  "apiVersion": "v1",
  "kind": "Service",
  "metadata": {"name": "api", "namespace": "shop"},
  "spec": {"ports": [{"port": 8080}]}
}`)
	writeFile(t, root, "list.yml", `apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Secret
  metadata: {name: tls, namespace: shop}
  stringData: {tls.crt: CERT}
- apiVersion: apps/v1
  kind: Deployment
  metadata: {name: web, namespace: shop}
- apiVersion: networking.k8s.io/v1
  kind: IngressClass
  metadata: {name: higress}
  spec: {controller: higress.io/higress-controller}
`)
	res := load(t, root)
	s := find(t, res, keyOf(input.KindService, "shop", "api"))
	if s.Origin != (Origin{"svc.json", 0}) || s.Obj.(*corev1.Service).Spec.Ports[0].Port != 8080 {
		t.Errorf("json service = %+v", s)
	}
	sec := find(t, res, keyOf(input.KindSecret, "shop", "tls")).Obj.(*corev1.Secret)
	if string(sec.Data["tls.crt"]) != "CERT" || sec.StringData != nil {
		t.Errorf("stringData not folded into data: %+v", sec)
	}
	ic := find(t, res, keyOf(input.KindIngressClass, "", "higress"))
	if ic.Origin != (Origin{"list.yml", 0}) {
		t.Errorf("list item origin = %v", ic.Origin)
	}
	f := onlyFinding(t, res)
	if f.Severity != diag.Warning || f.Reason != "unsupported-kind" || f.Field != "items[1]" ||
		f.Message != "unsupported kind Deployment (apiVersion apps/v1); ignored" || !f.accepted ||
		f.obj != (diag.Object{Kind: "Deployment", Namespace: "shop", Name: "web", File: "list.yml", Doc: 0}) {
		t.Errorf("finding = %+v", f)
	}
}

func TestUnknownKindIsWarning(t *testing.T) {
	root := t.TempDir()
	writeFile(t, root, "deploy.yaml", `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
`)
	writeFile(t, root, "old-ingress.yaml", `apiVersion: networking.k8s.io/v1beta1
kind: Ingress
metadata:
  name: web
`)
	writeFile(t, root, "values.yaml", "replicas: 3\nimage: foo\n")
	res := load(t, root)
	if len(res.Objects) != 0 {
		t.Fatalf("objects = %v", keys(res))
	}
	if res.Problems.Rejected() != 0 {
		t.Fatalf("unknown kinds must not be rejections:%s", dump(res))
	}
	var msgs []string
	for _, f := range findings(res) {
		if f.Severity != diag.Warning {
			t.Errorf("severity = %s", f.Severity)
		}
		msgs = append(msgs, f.obj.File+": "+f.Reason+": "+f.Message)
	}
	sort.Strings(msgs)
	want := []string{
		"deploy.yaml: unsupported-kind: unsupported kind Deployment (apiVersion apps/v1); ignored",
		"old-ingress.yaml: unsupported-kind: unsupported kind Ingress (apiVersion networking.k8s.io/v1beta1); ignored",
		"values.yaml: missing-kind: document has no kind, so it is not a Kubernetes object; ignored",
	}
	if !reflect.DeepEqual(msgs, want) {
		t.Fatalf("findings:\n%s\nwant:\n%s", strings.Join(msgs, "\n"), strings.Join(want, "\n"))
	}
}

func TestStrictUnknownFieldNamesTheField(t *testing.T) {
	root := t.TempDir()
	writeFile(t, root, "ing.yaml", svc("ok")+`---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  namespace: shop
spec:
  rules:
  - host: a.example.com
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service: {name: web, port: {number: 80}}
  - host: b.example.com
    htp:
      paths: []
`)
	res := load(t, root)
	find(t, res, keyOf(input.KindService, "shop", "ok"))
	if len(res.Objects) != 1 {
		t.Fatalf("the bad ingress must not load: %v", keys(res))
	}
	f := onlyFinding(t, res)
	if f.accepted || f.Severity != diag.Error || f.Reason != "unknown-field" || f.Field != "spec.rules[1].htp" {
		t.Fatalf("finding = %+v", f)
	}
	// The Ingress document starts on file line 10; "htp:" is its 16th line → file line 25.
	if want := `unknown field "spec.rules[1].htp" (line 25)`; f.Message != want {
		t.Fatalf("message = %q, want %q", f.Message, want)
	}
	if f.obj != (diag.Object{Kind: "Ingress", Namespace: "shop", Name: "web", File: "ing.yaml", Doc: 1}) {
		t.Fatalf("object = %+v", f.obj)
	}
}

func TestDecodeErrors(t *testing.T) {
	root := t.TempDir()
	writeFile(t, root, "bad.yaml", `apiVersion: v1
kind: Service
metadata:
  name: typed
spec:
  ports:
  - port: "eighty"
---
apiVersion: v1
kind: Service
metadata:
  name: broken
spec:
  ports: [
---
apiVersion: v1
kind: Service
metadata:
  name: dup
  name: dup2
---
- just
- a list
`)
	res := load(t, root)
	if len(res.Objects) != 0 {
		t.Fatalf("objects = %v", keys(res))
	}
	got := map[string]found{}
	for _, f := range findings(res) {
		if f.accepted || f.Severity != diag.Error {
			t.Errorf("not a rejection: %+v", f)
		}
		got[f.obj.Name] = f
	}
	if f := got["typed"]; f.Reason != "parse-error" || f.Field != "spec.ports.port" ||
		!strings.Contains(f.Message, "cannot unmarshal string") || !strings.HasSuffix(f.Message, "(line 7)") {
		t.Errorf("type error = %+v", f)
	}
	// Syntax error: the object is still named from its kind/name lines; file line numbers.
	if f := got["broken"]; f.Reason != "parse-error" || f.obj.Kind != "Service" || f.obj.Doc != 1 || !strings.Contains(f.Message, "line 1") {
		t.Errorf("syntax error = %+v", f)
	}
	if f := got["broken"]; !strings.Contains(f.Message, "yaml: line 14") && !strings.Contains(f.Message, "yaml: line 15") {
		t.Errorf("syntax error line not a file line: %q", f.Message)
	}
	if f := got["dup"]; f.Reason != "parse-error" || f.obj.Doc != 2 || !strings.Contains(f.Message, `line 20: key "name" already set`) {
		t.Errorf("duplicate key = %+v", f)
	}
	if f := got[""]; f.Reason != "parse-error" || f.obj.Doc != 3 || f.Message != "document is a list, not an object" {
		t.Errorf("list document = %+v", f)
	}
}

func TestMissingAndInvalidNames(t *testing.T) {
	root := t.TempDir()
	writeFile(t, root, "a.yaml", `apiVersion: v1
kind: ConfigMap
metadata:
  namespace: shop
---
apiVersion: v1
kind: Service
metadata:
  name: Not_Valid
---
apiVersion: v1
kind: Service
metadata:
  name: ok
  namespace: Bad.NS
---
kind: Service
metadata:
  name: noversion
`)
	res := load(t, root)
	if len(res.Objects) != 0 {
		t.Fatalf("objects = %v", keys(res))
	}
	byReason := map[string]found{}
	for _, f := range findings(res) {
		byReason[f.Reason] = f
	}
	if f := byReason["missing-name"]; f.Field != "metadata.name" || f.obj.Kind != "ConfigMap" || f.obj.Namespace != "shop" || f.obj.Doc != 0 {
		t.Errorf("missing-name = %+v", f)
	}
	if f := byReason["invalid-name"]; f.Field != "metadata.name" || f.obj.Name != "Not_Valid" || f.obj.Namespace != "default" {
		t.Errorf("invalid-name = %+v", f)
	}
	if f := byReason["invalid-namespace"]; f.Field != "metadata.namespace" || f.obj.Doc != 2 {
		t.Errorf("invalid-namespace = %+v", f)
	}
	if f := byReason["missing-apiversion"]; f.Field != "apiVersion" || f.obj.Name != "noversion" {
		t.Errorf("missing-apiversion = %+v", f)
	}
	if len(byReason) != 4 {
		t.Errorf("findings:%s", dump(res))
	}
}

func TestNamespaceDefaulting(t *testing.T) {
	root := t.TempDir()
	writeFile(t, root, "a.yaml", `apiVersion: v1
kind: Service
metadata: {name: web}
---
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: higress, namespace: shop}
`)
	res := load(t, root)
	if s := find(t, res, keyOf(input.KindService, "default", "web")).Obj.(*corev1.Service); s.Namespace != "default" {
		t.Errorf("namespace not defaulted on the object: %q", s.Namespace)
	}
	find(t, res, keyOf(input.KindNamespace, "", "shop"))
	if ic := find(t, res, keyOf(input.KindIngressClass, "", "higress")).Obj.(*networkingv1.IngressClass); ic.Namespace != "" {
		t.Errorf("cluster-scoped namespace kept: %q", ic.Namespace)
	}
	f := onlyFinding(t, res)
	if f.Severity != diag.Warning || f.Reason != "ignored-field" || f.Field != "metadata.namespace" || !f.accepted {
		t.Errorf("finding = %+v", f)
	}
	snap := res.Snapshot()
	if snap.Services[input.NamespacedName{Namespace: "default", Name: "web"}] == nil ||
		snap.Namespaces["shop"] == nil || snap.IngressClasses["higress"] == nil {
		t.Errorf("snapshot = %+v", snap)
	}
}

func TestDuplicateObjectFirstWins(t *testing.T) {
	root := t.TempDir()
	writeFile(t, root, "a.yaml", svc("web"))
	writeFile(t, root, "b/x.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\n"+strings.Replace(svc("web"), "port: 80", "port: 81", 1))
	res := load(t, root)
	s := find(t, res, keyOf(input.KindService, "shop", "web"))
	if s.Origin != (Origin{"a.yaml", 0}) || s.Obj.(*corev1.Service).Spec.Ports[0].Port != 80 {
		t.Errorf("winner = %+v", s)
	}
	f := onlyFinding(t, res)
	if f.accepted || f.Reason != "duplicate-object" || f.obj != (diag.Object{Kind: "Service", Namespace: "shop", Name: "web", File: "b/x.yaml", Doc: 1}) ||
		f.Message != "Service/shop/web is already defined in a.yaml#0; this copy is ignored" {
		t.Errorf("finding = %+v", f)
	}
}

const endpointsYAML = `apiVersion: v1
kind: Endpoints
metadata:
  name: %s
  namespace: shop
subsets:
- addresses:
  - ip: 10.0.0.1
    nodeName: n1
  - ip: fd00::1
  notReadyAddresses:
  - ip: 10.0.0.2
  ports:
  - name: http
    port: 8080
`

func TestEndpointsMirroring(t *testing.T) {
	root := t.TempDir()
	writeFile(t, root, "ep.yaml", svc("legacy")+"---\n"+strings.ReplaceAll(endpointsYAML, "%s", "legacy"))
	// "modern" has both legacy Endpoints and a real EndpointSlice: the slice wins.
	writeFile(t, root, "modern.yaml", strings.ReplaceAll(endpointsYAML, "%s", "modern")+`---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: modern-abcde
  namespace: shop
  labels:
    kubernetes.io/service-name: modern
addressType: IPv4
endpoints:
- addresses: [10.1.0.1]
ports:
- name: http
  port: 8080
`)
	res := load(t, root)
	want := []string{
		"EndpointSlice/shop/legacy-mirror-0",
		"EndpointSlice/shop/legacy-mirror-1",
		"EndpointSlice/shop/modern-abcde",
		"Service/shop/legacy",
	}
	if got := keys(res); !reflect.DeepEqual(got, want) {
		t.Fatalf("keys = %v, want %v%s", got, want, dump(res))
	}
	v4 := find(t, res, keyOf(input.KindEndpointSlice, "shop", "legacy-mirror-0"))
	if v4.Origin != (Origin{"ep.yaml", 1}) {
		t.Errorf("mirrored origin = %v", v4.Origin)
	}
	s := v4.Obj.(*discoveryv1.EndpointSlice)
	if s.AddressType != discoveryv1.AddressTypeIPv4 || len(s.Endpoints) != 2 || !*s.Endpoints[0].Conditions.Ready ||
		*s.Endpoints[1].Conditions.Ready || *s.Endpoints[0].NodeName != "n1" || *s.Ports[0].Port != 8080 ||
		s.Labels[input.LabelServiceName] != "legacy" {
		t.Errorf("mirrored slice = %+v", s)
	}
	if s6 := find(t, res, keyOf(input.KindEndpointSlice, "shop", "legacy-mirror-1")).Obj.(*discoveryv1.EndpointSlice); s6.AddressType != discoveryv1.AddressTypeIPv6 {
		t.Errorf("second slice = %+v", s6)
	}
	f := onlyFinding(t, res)
	if f.Severity != diag.Warning || f.Reason != "endpoints-superseded" ||
		f.obj != (diag.Object{Kind: "Endpoints", Namespace: "shop", Name: "modern", File: "modern.yaml", Doc: 0}) {
		t.Errorf("finding = %+v", f)
	}
	if snap := res.Snapshot(); len(snap.EndpointSlices) != 3 {
		t.Errorf("snapshot slices = %v", snap.EndpointSlices)
	}
}

func TestUnreadableFileDoesNotStopOthers(t *testing.T) {
	root := t.TempDir()
	writeFile(t, root, "a.yaml", svc("a"))
	writeFile(t, root, "c.yaml", svc("c"))
	if err := os.Symlink("does-not-exist.yaml", filepath.Join(root, "b.yaml")); err != nil {
		t.Fatal(err)
	}
	wantProblems := 1
	if os.Geteuid() != 0 { // root reads anything
		writeFile(t, root, "d.yaml", svc("d"))
		if err := os.Chmod(filepath.Join(root, "d.yaml"), 0); err != nil {
			t.Fatal(err)
		}
		wantProblems++
	}
	res := load(t, root)
	if got := keys(res); !reflect.DeepEqual(got, []string{"Service/shop/a", "Service/shop/c"}) {
		t.Fatalf("keys = %v", got)
	}
	fs := findings(res)
	if len(fs) != wantProblems {
		t.Fatalf("findings:%s", dump(res))
	}
	for _, f := range fs {
		if f.Reason != "unreadable-file" || f.obj.Doc != -1 || f.accepted || !strings.HasPrefix(f.Message, "cannot read file: ") ||
			strings.Contains(f.Message, root) {
			t.Errorf("finding = %+v", f)
		}
	}
	if fs[0].obj.File != "b.yaml" {
		t.Errorf("file = %q", fs[0].obj.File)
	}
}

func TestRootUnreadable(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "nope")); err == nil {
		t.Fatal("want error for missing root")
	}
	if _, err := NewWatcher(filepath.Join(t.TempDir(), "nope"), nil); err == nil {
		t.Fatal("want error for missing root")
	}
}

func TestHiddenAndTempFilesSkipped(t *testing.T) {
	root := t.TempDir()
	writeFile(t, root, "real.yaml", svc("real"))
	for _, rel := range []string{
		".hidden.yaml", ".git/config.yaml", "sub/.cache/x.yaml", "real.yaml~", ".#real.yaml",
		".real.yaml.swp", "real.yaml.swp", "#real.yaml#", "notes.txt", "README.md",
	} {
		writeFile(t, root, rel, svc("ghost"))
	}
	res := load(t, root)
	if got := keys(res); !reflect.DeepEqual(got, []string{"Service/shop/real"}) {
		t.Fatalf("keys = %v", got)
	}
	if f := findings(res); len(f) != 0 {
		t.Fatalf("problems:%s", dump(res))
	}
}

// TestConfigMapMountLayout mirrors a kubelet ConfigMap volume:
// ..2024_xx/{files}, ..data -> ..2024_xx, file -> ..data/file.
func TestConfigMapMountLayout(t *testing.T) {
	root := t.TempDir()
	writeFile(t, root, "..2024_01_01_00_00_00.123/svc.yaml", svc("web"))
	writeFile(t, root, "..2024_01_01_00_00_00.123/ing.json", `{"apiVersion":"networking.k8s.io/v1","kind":"Ingress","metadata":{"name":"web","namespace":"shop"}}`)
	for _, l := range [][2]string{
		{"..2024_01_01_00_00_00.123", "..data"},
		{"..data/svc.yaml", "svc.yaml"},
		{"..data/ing.json", "ing.json"},
	} {
		if err := os.Symlink(l[0], filepath.Join(root, l[1])); err != nil {
			t.Fatal(err)
		}
	}
	res := load(t, root)
	if got := keys(res); !reflect.DeepEqual(got, []string{"Ingress/shop/web", "Service/shop/web"}) {
		t.Fatalf("keys = %v%s", got, dump(res))
	}
	if o := find(t, res, keyOf(input.KindService, "shop", "web")); o.Origin.File != "svc.yaml" {
		t.Errorf("origin = %v", o.Origin)
	}
	if f := findings(res); len(f) != 0 {
		t.Fatalf("problems:%s", dump(res))
	}
}

func TestSymlinkedDirectoryNotFollowed(t *testing.T) {
	root := t.TempDir()
	writeFile(t, root, "a/svc.yaml", svc("web"))
	if err := os.Symlink("a", filepath.Join(root, "loop")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(".", filepath.Join(root, "a/self")); err != nil {
		t.Fatal(err)
	}
	res := load(t, root)
	if got := keys(res); !reflect.DeepEqual(got, []string{"Service/shop/web"}) || len(findings(res)) != 0 {
		t.Fatalf("keys = %v%s", got, dump(res))
	}
}

func TestLoadIsDeterministic(t *testing.T) {
	root := t.TempDir()
	writeFile(t, root, "z.yaml", svc("web")+"---\nkind: Foo\napiVersion: x/v1\nmetadata: {name: f}\n---\n[oops\n---\n{bad: [\n")
	writeFile(t, root, "a/b.yaml", svc("web")+"---\n"+strings.ReplaceAll(endpointsYAML, "%s", "web"))
	writeFile(t, root, "a-b.yaml", svc("other"))
	writeFile(t, root, "m.json", `{"kind": 3}`)
	first := load(t, root)
	for range 5 {
		again := load(t, root)
		if !reflect.DeepEqual(first.Objects, again.Objects) || !reflect.DeepEqual(first.Problems.List(), again.Problems.List()) {
			t.Fatalf("not deterministic:\n%v%s\n%v%s", keys(first), dump(first), keys(again), dump(again))
		}
	}
	// Path order: "a-b.yaml" < "a/b.yaml" < "z.yaml"; the first Service/shop/web is a/b.yaml#0.
	if o := find(t, first, keyOf(input.KindService, "shop", "web")); o.Origin != (Origin{"a/b.yaml", 0}) {
		t.Errorf("origin = %v", o.Origin)
	}
	// Two parse errors in z.yaml share a diag entry: each message names its document.
	var zMsgs []string
	for _, f := range findings(first) {
		if f.obj.File == "z.yaml" && f.Reason == "parse-error" {
			zMsgs = append(zMsgs, f.Message)
		}
	}
	if len(zMsgs) != 2 || !strings.HasPrefix(zMsgs[0], "document 2: ") || !strings.HasPrefix(zMsgs[1], "document 3: ") {
		t.Errorf("z.yaml parse errors = %q", zMsgs)
	}
}

func TestSplitYAML(t *testing.T) {
	type doc struct {
		data string
		line int
	}
	tests := []struct {
		in   string
		want []doc
	}{
		{"", nil},
		{"# only a comment\n", nil},
		{"a: 1\n", []doc{{"a: 1\n", 1}}},
		{"---\na: 1\n", []doc{{"a: 1\n", 2}}},
		{"# c\n%YAML 1.1\n---\na: 1\n---\nb: 2", []doc{{"a: 1\n", 4}, {"b: 2", 6}}},
		{"a: 1\n---\n---\nb: 2\n", []doc{{"a: 1\n", 1}, {"", 3}, {"b: 2\n", 4}}},
		{"a: 1\r\n--- \r\nb: 2\r\n", []doc{{"a: 1\r\n", 1}, {"b: 2\r\n", 3}}},
		{"a: |\n  ---\n  x\n----\nb: 1\n", []doc{{"a: |\n  ---\n  x\n----\nb: 1\n", 1}}},
		{"--- # comment\na: 1\n--- {b: 2}\n", []doc{{"a: 1\n", 2}, {"    {b: 2}\n", 3}}},
	}
	for _, tc := range tests {
		var got []doc
		for _, d := range splitYAML([]byte(tc.in)) {
			got = append(got, doc{string(d.data), d.line})
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("splitYAML(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestFindLine(t *testing.T) {
	src := []byte("metadata:\n  name: x\nspec:\n  rules:\n  - host: a\n    http: {}\n  - host: b\n    \"htp\": {}\n")
	for path, want := range map[string]int{
		"spec":               3,
		"spec.rules[1].htp":  8,
		"spec.rules[0].http": 6,
		"metadata.name":      2,
		"spec.nothere":       0,
	} {
		if got := findLine(src, path); got != want {
			t.Errorf("findLine(%q) = %d, want %d", path, got, want)
		}
	}
	js := []byte("{\n \"spec\": {\"rules\": [\n  {\"htp\": 1}]}}")
	if got := findLine(js, "spec.rules[0].htp"); got != 3 {
		t.Errorf("json findLine = %d", got)
	}
}
