package file

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	corev1 "k8s.io/api/core/v1"

	"github.com/hxds/hxds/translate/input"
)

type harness struct {
	t    *testing.T
	root string
	ch   chan *Result
	done chan error
}

// startWatcher runs a Watcher on root; tweak adjusts its timing first.
func startWatcher(t *testing.T, root string, tweak func(*Watcher)) *harness {
	t.Helper()
	w, err := NewWatcher(root, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if tweak != nil {
		tweak(w)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{t: t, root: root, ch: make(chan *Result, 100), done: make(chan error, 1)}
	go func() { h.done <- w.Run(ctx, func(r *Result) { h.ch <- r }) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-h.done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return h
}

// next waits for the next callback.
func (h *harness) next() *Result {
	h.t.Helper()
	select {
	case r := <-h.ch:
		return r
	case <-time.After(10 * time.Second):
		h.t.Fatal("no callback")
	case err := <-h.done:
		h.t.Fatalf("Run returned: %v", err)
	}
	return nil
}

// until waits for a callback whose result satisfies ok.
func (h *harness) until(what string, ok func(*Result) bool) *Result {
	h.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case r := <-h.ch:
			if ok(r) {
				return r
			}
		case <-deadline:
			h.t.Fatalf("timed out waiting for %s", what)
			return nil
		}
	}
}

// quiet asserts that no callback arrives for d.
func (h *harness) quiet(d time.Duration) {
	h.t.Helper()
	select {
	case r := <-h.ch:
		h.t.Fatalf("unexpected callback: %v%s", keys(r), dump(r))
	case <-time.After(d):
	}
}

func port(t *testing.T, r *Result, name string) int32 {
	t.Helper()
	for _, o := range r.Objects {
		if o.Key == keyOf(input.KindService, "shop", name) {
			return o.Obj.(*corev1.Service).Spec.Ports[0].Port
		}
	}
	return 0
}

func svcPort(name, p string) string { return strings.Replace(svc(name), "port: 80", "port: "+p, 1) }

func TestWatcherLifecycle(t *testing.T) {
	root := t.TempDir()
	writeFile(t, root, "a.yaml", svc("a"))
	writeFile(t, root, "b.yaml", svc("b"))
	h := startWatcher(t, root, nil)

	// Initial load.
	r := h.next()
	if got := keys(r); !reflect.DeepEqual(got, []string{"Service/shop/a", "Service/shop/b"}) {
		t.Fatalf("initial = %v", got)
	}

	// Edit in place.
	writeFile(t, root, "a.yaml", svcPort("a", "81"))
	r = h.until("edited port", func(r *Result) bool { return port(t, r, "a") == 81 })
	if port(t, r, "b") != 80 {
		t.Fatal("b lost")
	}

	// Editor-style save: write a temp file, rename over the original.
	tmp := filepath.Join(root, ".a.yaml.tmp")
	if err := os.WriteFile(tmp, []byte(svcPort("a", "82")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(root, "a.yaml")); err != nil {
		t.Fatal(err)
	}
	h.until("renamed-over port", func(r *Result) bool { return port(t, r, "a") == 82 })

	// Delete a file: its objects go.
	if err := os.Remove(filepath.Join(root, "b.yaml")); err != nil {
		t.Fatal(err)
	}
	r = h.until("b removed", func(r *Result) bool { return port(t, r, "b") == 0 })
	if got := keys(r); !reflect.DeepEqual(got, []string{"Service/shop/a"}) {
		t.Fatalf("after delete = %v", got)
	}

	// A new subdirectory and a file in it, created back to back.
	writeFile(t, root, "sub/deeper/c.yaml", svc("c"))
	h.until("file in new subdirectory", func(r *Result) bool { return port(t, r, "c") == 80 })
	// ... and a later change inside it (the new directory is watched).
	writeFile(t, root, "sub/deeper/c.yaml", svcPort("c", "90"))
	h.until("edit in new subdirectory", func(r *Result) bool { return port(t, r, "c") == 90 })

	// Removing the subdirectory removes its objects.
	if err := os.RemoveAll(filepath.Join(root, "sub")); err != nil {
		t.Fatal(err)
	}
	h.until("subdirectory removed", func(r *Result) bool { return port(t, r, "c") == 0 })

	// A directory removed and re-created under the same name is watched again.
	writeFile(t, root, "sub/d.yaml", svc("d"))
	h.until("d", func(r *Result) bool { return port(t, r, "d") == 80 })
	if err := os.RemoveAll(filepath.Join(root, "sub")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	h.until("d gone", func(r *Result) bool { return port(t, r, "d") == 0 })
	time.Sleep(50 * time.Millisecond)
	writeFile(t, root, "sub/d.yaml", svcPort("d", "91"))
	h.until("d in re-created dir", func(r *Result) bool { return port(t, r, "d") == 91 })

	// Rewriting identical bytes, or touching a skipped file, is not a change.
	writeFile(t, root, "a.yaml", svcPort("a", "82"))
	writeFile(t, root, ".swapfile.swp", "x")
	h.quiet(300 * time.Millisecond)
}

func TestWatcherCoalescesBursts(t *testing.T) {
	root := t.TempDir()
	writeFile(t, root, "a.yaml", svc("a"))
	h := startWatcher(t, root, func(w *Watcher) { w.quiet = 150 * time.Millisecond })
	h.next()
	for i := range 20 {
		writeFile(t, root, "a.yaml", svcPort("a", "8"+string(rune('0'+i%10))))
		writeFile(t, root, "b.yaml", svcPort("b", "8"+string(rune('0'+i%10))))
	}
	writeFile(t, root, "a.yaml", svcPort("a", "1000"))
	r := h.next()
	if port(t, r, "a") != 1000 || port(t, r, "b") != 89 {
		t.Fatalf("burst result: a=%d b=%d", port(t, r, "a"), port(t, r, "b"))
	}
	h.quiet(400 * time.Millisecond)
}

func TestWatcherRootRemovedAndRecreated(t *testing.T) {
	parent := t.TempDir()
	root := filepath.Join(parent, "conf")
	writeFile(t, root, "a.yaml", svc("a"))
	h := startWatcher(t, root, func(w *Watcher) { w.pollInterval = 100 * time.Millisecond })
	h.next()

	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	// The last configuration stays: no empty result is delivered.
	h.quiet(400 * time.Millisecond)

	writeFile(t, root, "a.yaml", svcPort("a", "81"))
	h.until("recreated root", func(r *Result) bool { return port(t, r, "a") == 81 })
	// Watching resumed (not only polling): a change is seen quickly.
	writeFile(t, root, "b.yaml", svc("b"))
	h.until("b after recovery", func(r *Result) bool { return port(t, r, "b") == 80 })

	// Moving the directory away and another one in its place.
	if err := os.Rename(root, filepath.Join(parent, "old")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(parent, "new"), "c.yaml", svc("c"))
	if err := os.Rename(filepath.Join(parent, "new"), root); err != nil {
		t.Fatal(err)
	}
	r := h.until("replaced root", func(r *Result) bool { return port(t, r, "c") == 80 })
	if got := keys(r); !reflect.DeepEqual(got, []string{"Service/shop/c"}) {
		t.Fatalf("replaced root = %v", got)
	}
	// Changes in the old (moved) directory are not ours any more.
	writeFile(t, filepath.Join(parent, "old"), "x.yaml", svc("x"))
	writeFile(t, root, "d.yaml", svc("d"))
	r = h.until("d", func(r *Result) bool { return port(t, r, "d") == 80 })
	if port(t, r, "x") != 0 {
		t.Fatal("loaded a file from the moved-away directory")
	}
}

// TestWatcherConfigMapUpdate swaps the ..data symlink the way kubelet
// updates a mounted ConfigMap.
func TestWatcherConfigMapUpdate(t *testing.T) {
	root := t.TempDir()
	writeFile(t, root, "..v1/svc.yaml", svc("web"))
	mustSymlink(t, "..v1", filepath.Join(root, "..data"))
	mustSymlink(t, "..data/svc.yaml", filepath.Join(root, "svc.yaml"))
	h := startWatcher(t, root, nil)
	if r := h.next(); port(t, r, "web") != 80 {
		t.Fatalf("initial = %v", keys(r))
	}

	writeFile(t, root, "..v2/svc.yaml", svcPort("web", "8080"))
	mustSymlink(t, "..v2", filepath.Join(root, "..data_tmp"))
	if err := os.Rename(filepath.Join(root, "..data_tmp"), filepath.Join(root, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(root, "..v1")); err != nil {
		t.Fatal(err)
	}
	r := h.until("new ConfigMap content", func(r *Result) bool { return port(t, r, "web") == 8080 })
	if len(r.Objects) != 1 || len(findings(r)) != 0 {
		t.Fatalf("result = %v%s", keys(r), dump(r))
	}
}

func mustSymlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func TestWatcherReparsesOnlyChangedFiles(t *testing.T) {
	root := t.TempDir()
	writeFile(t, root, "a.yaml", svc("a"))
	writeFile(t, root, "b.yaml", svc("b"))
	w, err := NewWatcher(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	first, err := w.reload()
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, root, "b.yaml", svcPort("b", "81"))
	second, err := w.reload()
	if err != nil {
		t.Fatal(err)
	}
	// a.yaml came from the cache: the very same object; b.yaml was re-parsed.
	if first.result.Objects[0].Obj != second.result.Objects[0].Obj {
		t.Error("a.yaml was re-parsed")
	}
	if port(t, second.result, "b") != 81 || first.fingerprint == second.fingerprint {
		t.Error("b.yaml change missed")
	}
	// A cached Result equals a fresh Load.
	fresh := load(t, root)
	if !reflect.DeepEqual(fresh.Objects, second.result.Objects) || !reflect.DeepEqual(fresh.Problems.List(), second.result.Problems.List()) {
		t.Error("cached result differs from Load")
	}
}

// TestWatcherServesLastValidContentOfBrokenFile: saving a file with a syntax
// error or a misspelled field keeps its previous objects served (and says
// so); fixing the file applies the new content; deleting it withdraws it.
func TestWatcherServesLastValidContentOfBrokenFile(t *testing.T) {
	root := t.TempDir()
	path := filepath.Join(root, "svc.yaml")
	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(svcPort("a", "81") + "---\n" + svc("b"))
	h := startWatcher(t, root, nil)
	if r := h.next(); port(t, r, "a") != 81 || port(t, r, "b") != 80 {
		t.Fatalf("initial load: %v", keys(r))
	}
	hasWarning := func(r *Result) bool {
		for _, s := range r.Problems.List() {
			for _, f := range s.Findings {
				if f.Reason == "serving-last-valid" {
					return true
				}
			}
		}
		return false
	}

	// A syntax error in the second document: both objects stay as they were.
	write(svcPort("a", "82") + "---\nkind: Service\nmetadata: [broken\n")
	r := h.until("broken file reported", func(r *Result) bool { return r.Problems.Rejected() > 0 })
	if port(t, r, "a") != 81 || port(t, r, "b") != 80 || !hasWarning(r) {
		t.Fatalf("broken file: a=%d b=%d warning=%v%s", port(t, r, "a"), port(t, r, "b"), hasWarning(r), dump(r))
	}

	// Fixed: the new content applies.
	write(svcPort("a", "83"))
	r = h.until("fixed file", func(r *Result) bool { return r.Problems.Rejected() == 0 })
	if port(t, r, "a") != 83 || port(t, r, "b") != 0 || hasWarning(r) {
		t.Fatalf("fixed file: a=%d b=%d%s", port(t, r, "a"), port(t, r, "b"), dump(r))
	}

	// Broken again, then deleted: deletion withdraws the last valid content.
	write(strings.Replace(svcPort("a", "84"), "spec:", "spek:", 1))
	r = h.until("unknown field reported", func(r *Result) bool { return r.Problems.Rejected() > 0 })
	if port(t, r, "a") != 83 {
		t.Fatalf("misspelled field: a=%d, want the last valid 83", port(t, r, "a"))
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	r = h.until("file removed", func(r *Result) bool { return len(r.Objects) == 0 })
	if r.Problems.Rejected() != 0 {
		t.Fatalf("removed file still reported%s", dump(r))
	}
}
