package file

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hxds/hxds/translate/input"
)

// FuzzLoadDocument checks that no document, however broken, panics the
// parser, and that whatever loads is a well-formed object. `go test` runs the
// seed corpus; `go test -fuzz=FuzzLoadDocument` explores further.
func FuzzLoadDocument(f *testing.F) {
	seeds := []string{
		"",
		"---",
		"null",
		"[]",
		"42",
		"\"str\"",
		"{}",
		"a: b",
		"kind: List\napiVersion: v1\nitems: [null, 1, {kind: List, apiVersion: v1}, {apiVersion: v1, kind: Service, metadata: {name: x}}]\n",
		"kind: List\napiVersion: v1\nitems: {}\n",
		"apiVersion: 3\nkind: [x]\n",
		"apiVersion: /\nkind: Service\n",
		"apiVersion: a/b/c\nkind: Service\nmetadata: {name: x}\n",
		"apiVersion: v1\nkind: Service\nmetadata: []\n",
		"apiVersion: v1\nkind: Service\nmetadata: {name: 1}\n",
		"apiVersion: v1\nkind: Service\nmetadata: {generateName: x-}\n",
		svc("web"),
		strings.ReplaceAll(endpointsYAML, "%s", "web"),
		"apiVersion: v1\nkind: Endpoints\nmetadata: {name: e}\nsubsets: [{addresses: [{ip: '::1'}, {ip: x}], ports: [{port: 1}]}]\n",
		"apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {a: '!!'}\nstringData: {b: c}\n",
		"apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: i, namespace: n}\nspec: {rules: [{host: h, htp: {}}]}\n",
		"apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: {name: c, namespace: n}\n",
		"apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: s}\naddressType: IPv4\nendpoints: [{addresses: [1.2.3.4]}]\n",
		"a: &a [*a, *a]\nb: &b [*a, *a]\n",
		"a: 1\na: 2\n",
		"? [1]\n: 2\n",
		"{\"kind\": \"Service\", \"apiVersion\": \"v1\", \"metadata\": {\"name\": \"j\"}, \"spec\": {\"ports\": [{\"port\": 1e99}]}}",
		"{\"kind\": \"Service\", \"kind\": \"Namespace\"}",
		"\xef\xbb\xbf\x00\xff",
		"--- {a: 1}\n--- [\n",
		"metadata:\n  name: x\nkind: Service\nspec: [\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, isJSON bool) {
		items, problems := parseDocument("f.yaml", 0, 1, data, isJSON)
		check(t, items, problems)
		if !isJSON {
			items, problems = parseFile("f.yaml", data)
			check(t, items, problems)
		}
	})
}

func check(t *testing.T, items []item, problems []problem) {
	t.Helper()
	for _, it := range items {
		if it.Obj == nil || it.Key.Name == "" || newObject(it.Key.Kind) == nil {
			t.Fatalf("malformed item %+v", it)
		}
		m, ok := it.Obj.(v1.Object)
		if !ok || m.GetName() != it.Key.Name || m.GetNamespace() != it.Key.Namespace {
			t.Fatalf("key %v does not match object %T", it.Key, it.Obj)
		}
		if clusterScoped(it.Key.Kind) != (it.Key.Namespace == "") {
			t.Fatalf("namespace of %v", it.Key)
		}
		if it.Key.Kind != input.KindEndpoints && it.mirrored != nil {
			t.Fatalf("mirrored slices on %v", it.Key)
		}
	}
	for _, p := range problems {
		if p.reason == "" || p.msg == "" || p.obj.File != "f.yaml" {
			t.Fatalf("malformed problem %+v", p)
		}
	}
	// The whole pipeline must hold too.
	objs, _ := assemble(items)
	for i := 1; i < len(objs); i++ {
		if !keyLess(objs[i-1].Key, objs[i].Key) {
			t.Fatalf("objects not sorted/unique: %v, %v", objs[i-1].Key, objs[i].Key)
		}
	}
	_ = toSet(problems)
}
