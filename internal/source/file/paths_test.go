package file

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/hxds/hxds/translate/input"
)

func TestLoadPathsFilesAndDirectories(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "conf")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	svc := "apiVersion: v1\nkind: Service\nmetadata: {name: a, namespace: ns}\nspec: {ports: [{port: 80}]}\n"
	dup := "apiVersion: v1\nkind: Service\nmetadata: {name: a, namespace: ns}\nspec: {ports: [{port: 81}]}\n"
	bad := "apiVersion: v1\nkind: Service\nmetadata: {name: b}\nspec: {portz: []}\n"
	// A file named on the command line is read whatever its extension.
	single := filepath.Join(dir, "extra.txt")
	for path, body := range map[string]string{
		filepath.Join(sub, "svc.yaml"): svc,
		filepath.Join(sub, "bad.yaml"): bad,
		single:                         dup,
	} {
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	res, err := LoadPaths(sub, single)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Objects) != 1 || res.Objects[0].Key != (input.Key{Kind: input.KindService, Namespace: "ns", Name: "a"}) {
		t.Fatalf("objects = %+v, want only Service ns/a", res.Objects)
	}
	if got, want := res.Objects[0].Origin.File, filepath.ToSlash(filepath.Join(sub, "svc.yaml")); got != want {
		t.Errorf("origin = %q, want %q (the directory's file wins over the later duplicate)", got, want)
	}
	reasons := map[string]bool{}
	for _, s := range res.Problems.List() {
		for _, f := range s.Findings {
			reasons[f.Reason] = true
		}
	}
	if !reasons["unknown-field"] || !reasons["duplicate-object"] {
		t.Errorf("problems = %+v, want unknown-field and duplicate-object", res.Problems.List())
	}
	if _, err := LoadPaths(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing path must be an error")
	}
}
