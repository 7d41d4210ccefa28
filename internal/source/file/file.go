// Package file loads hxds input objects from a directory of Kubernetes YAML
// and JSON manifests and watches it for changes.
//
// Every document is handled alone: a document that cannot be used is skipped
// and reported in Result.Problems with its file and document index, and
// everything else keeps loading (DESIGN.md principle 6). Same files give an
// identical Result.
//
// Objects in a Result may be shared with later Results (the Watcher caches
// parsed documents per file), so callers must treat them as read-only.
package file

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/hxds/hxds/translate/diag"
	"github.com/hxds/hxds/translate/input"
)

// MaxFileSize is the largest file that is read; bigger files are reported and skipped.
const MaxFileSize = 32 << 20

// Origin locates the document an object was loaded from.
type Origin struct {
	// File is the path relative to the root directory, with forward slashes.
	File string
	// Doc is the 0-based index of the document in the file.
	Doc int
}

func (o Origin) String() string { return fmt.Sprintf("%s#%d", o.File, o.Doc) }

// Object is one loaded input object.
type Object struct {
	Key input.Key
	// Obj is a typed pointer: *corev1.Service, *networkingv1.Ingress, ...
	// EndpointSlices mirrored from legacy Endpoints keep the Origin of the
	// Endpoints document.
	Obj    runtime.Object
	Origin Origin
}

// Result is the content of a directory at one moment.
type Result struct {
	// Objects sorted by Key (kind, namespace, name); keys are unique.
	Objects []Object
	// Problems holds every document that was skipped (rejected) or loaded
	// with a warning, with its file and document (-1 for a whole file).
	Problems *diag.Set
}

// Snapshot builds the translation input from the loaded objects.
func (r *Result) Snapshot() *input.Snapshot {
	s := input.NewSnapshot()
	for _, o := range r.Objects {
		s.Add(o.Key, o.Obj)
	}
	return s
}

// Load reads every manifest under root once. The error is non-nil only when
// root itself cannot be read; every other problem is in Result.Problems.
func Load(root string) (*Result, error) {
	sr, err := scan(root)
	if err != nil {
		return nil, err
	}
	var l loader
	res, _, _ := l.build(root, sr)
	return res, nil
}

// problem is one finding before it goes into a diag.Set.
type problem struct {
	obj      diag.Object
	severity diag.Severity
	reason   string
	field    string
	msg      string
}

// item is one object parsed from a document.
type item struct {
	Object
	field string // "items[3]" for a member of a List, else ""
	// mirrored holds the EndpointSlices converted from an Endpoints item.
	mirrored []*discoveryv1.EndpointSlice
}

func (it *item) diagObject() diag.Object {
	return diag.Object{Kind: string(it.Key.Kind), Namespace: it.Key.Namespace, Name: it.Key.Name, File: it.Origin.File, Doc: it.Origin.Doc}
}

// parsedFile is the cached parse of one file's content.
type parsedFile struct {
	hash     [sha256.Size]byte
	items    []item
	problems []problem
}

// scanResult lists what is under root.
type scanResult struct {
	files    []string // relative slash paths of manifests, sorted
	dirs     []string // absolute paths of the directories walked (root first)
	problems []problem
}

// skipName reports whether a directory entry is never loaded: hidden files and
// directories (.git, .#emacs-locks, ConfigMap-mount ..data / ..2024_* dirs)
// and editor backup/swap files.
func skipName(name string) bool {
	return strings.HasPrefix(name, ".") || strings.HasSuffix(name, "~") ||
		strings.HasSuffix(name, ".swp") || strings.HasSuffix(name, ".swx") || strings.HasPrefix(name, "#")
}

func isManifest(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

func isJSONFile(name string) bool { return strings.EqualFold(filepath.Ext(name), ".json") }

// scan walks root. Symlinked files are followed; symlinked directories are
// not (no loops, no walking out of the tree).
func scan(root string) (*scanResult, error) {
	sr := &scanResult{}
	if err := sr.walk(root, ""); err != nil {
		return nil, err
	}
	sort.Strings(sr.files)
	return sr, nil
}

func (sr *scanResult) walk(abs, rel string) error {
	entries, err := os.ReadDir(abs)
	if err != nil {
		if rel == "" {
			return err
		}
		sr.problems = append(sr.problems, fileProblem(rel, "unreadable-directory", "cannot read directory: %v", pathErr(err)))
		return nil
	}
	sr.dirs = append(sr.dirs, abs)
	for _, e := range entries {
		name := e.Name()
		if skipName(name) {
			continue
		}
		childAbs := filepath.Join(abs, name)
		childRel := name
		if rel != "" {
			childRel = rel + "/" + name
		}
		mode := e.Type()
		if mode&fs.ModeSymlink != 0 {
			if !isManifest(name) {
				continue // symlinked directories and other files are not followed
			}
			fi, err := os.Stat(childAbs)
			if err != nil {
				sr.problems = append(sr.problems, fileProblem(childRel, "unreadable-file", "cannot read file: %v", pathErr(err)))
				continue
			}
			mode = fi.Mode().Type()
		}
		switch {
		case mode.IsDir():
			if err := sr.walk(childAbs, childRel); err != nil {
				return err
			}
		case !isManifest(name):
		case mode.IsRegular():
			sr.files = append(sr.files, childRel)
		default:
			sr.problems = append(sr.problems, fileProblem(childRel, "unreadable-file", "not a regular file (%s); skipped", mode))
		}
	}
	return nil
}

func fileProblem(rel, reason, format string, args ...any) problem {
	return problem{
		obj:      diag.Object{File: rel, Doc: -1},
		severity: diag.Error,
		reason:   reason,
		msg:      fmt.Sprintf(format, args...),
	}
}

// pathErr drops the absolute path from an os error (the finding names the file).
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("file is larger than %d bytes", MaxFileSize)
	}
	return data, nil
}

// loader turns a scan into a Result, re-parsing only files whose content
// changed when it has a cache.
type loader struct {
	cache map[string]*parsedFile // nil: no caching
	// lastGood holds, per file, the last parse without a rejected document.
	// While a file is broken (a save with a YAML typo, a half-written file)
	// its last good objects keep being served: a broken file never
	// withdraws configuration that was valid. Deleting the file does.
	// Only a watching loader (cache != nil) remembers.
	lastGood map[string]*parsedFile
}

// broken reports whether a parse rejected any document.
func (pf *parsedFile) broken() bool {
	for _, p := range pf.problems {
		if p.severity == diag.Error {
			return true
		}
	}
	return false
}

type buildStats struct{ files, parsed int }

// build reads and parses every file of sr and assembles the Result. The
// fingerprint covers everything the Result depends on (paths, contents, read
// errors), so an equal fingerprint means an identical Result.
func (l *loader) build(root string, sr *scanResult) (*Result, [sha256.Size]byte, buildStats) {
	var (
		items    []item
		problems = append([]problem(nil), sr.problems...)
		fp       = sha256.New()
		next     map[string]*parsedFile
		st       = buildStats{files: len(sr.files)}
	)
	if l.cache != nil {
		next = make(map[string]*parsedFile, len(sr.files))
	}
	for _, p := range sr.problems {
		fmt.Fprintf(fp, "problem\x00%s\x00%s\x00", p.obj.File, p.msg)
	}
	for _, rel := range sr.files {
		data, err := readFile(filepath.Join(root, filepath.FromSlash(rel)))
		if err != nil {
			p := fileProblem(rel, "unreadable-file", "cannot read file: %v", pathErr(err))
			problems = append(problems, p)
			fmt.Fprintf(fp, "error\x00%s\x00%s\x00", rel, p.msg)
			continue
		}
		h := sha256.Sum256(data)
		fmt.Fprintf(fp, "file\x00%s\x00%x\x00", rel, h)
		pf := l.cache[rel]
		if pf == nil || pf.hash != h {
			pf = &parsedFile{hash: h}
			pf.items, pf.problems = parseFile(rel, data)
			st.parsed++
		}
		if next != nil {
			next[rel] = pf
		}
		served := pf.items
		problems = append(problems, pf.problems...)
		if l.cache != nil {
			switch good := l.lastGood[rel]; {
			case !pf.broken():
				l.lastGood[rel] = pf
			case good != nil:
				served = good.items
				problems = append(problems, problem{
					obj: diag.Object{File: rel, Doc: -1}, severity: diag.Warning, reason: "serving-last-valid",
					msg: fmt.Sprintf("the file has rejected documents; its last valid content (%d objects) is served until it is fixed or removed", len(good.items)),
				})
			}
		}
		items = append(items, served...)
	}
	if l.cache != nil {
		l.cache = next
		for rel := range l.lastGood {
			if _, ok := next[rel]; !ok {
				delete(l.lastGood, rel) // removed (or unreadable) files serve nothing
			}
		}
	}
	objects, more := assemble(items)
	problems = append(problems, more...)
	var sum [sha256.Size]byte
	copy(sum[:], fp.Sum(nil))
	return &Result{Objects: objects, Problems: toSet(problems)}, sum, st
}

// assemble applies the cross-document rules to items in path/document order:
// the first of duplicate keys wins, legacy Endpoints give way to real
// EndpointSlices of the same service, and the rest is mirrored.
func assemble(items []item) ([]Object, []problem) {
	var problems []problem
	dedupe := func(in []item) []item {
		seen := make(map[input.Key]*item, len(in))
		out := in[:0:0]
		for i := range in {
			it := &in[i]
			if first, ok := seen[it.Key]; ok {
				problems = append(problems, problem{
					obj: it.diagObject(), severity: diag.Error, reason: "duplicate-object", field: it.field,
					msg: fmt.Sprintf("%s is already defined in %s; this copy is ignored", it.Key, first.Origin),
				})
				continue
			}
			seen[it.Key] = it
			out = append(out, *it)
		}
		return out
	}
	items = dedupe(items)

	realSlices := map[input.NamespacedName]string{} // service → first real slice name
	for _, it := range items {
		if s, ok := it.Obj.(*discoveryv1.EndpointSlice); ok {
			if svc := s.Labels[input.LabelServiceName]; svc != "" {
				nn := input.NamespacedName{Namespace: s.Namespace, Name: svc}
				if _, ok := realSlices[nn]; !ok {
					realSlices[nn] = s.Name
				}
			}
		}
	}
	expanded := make([]item, 0, len(items))
	mirrored := false
	for _, it := range items {
		if it.Key.Kind != input.KindEndpoints {
			expanded = append(expanded, it)
			continue
		}
		nn := input.NamespacedName{Namespace: it.Key.Namespace, Name: it.Key.Name}
		if slice, ok := realSlices[nn]; ok {
			problems = append(problems, problem{
				obj: it.diagObject(), severity: diag.Warning, reason: "endpoints-superseded", field: it.field,
				msg: fmt.Sprintf("EndpointSlice %s/%s exists for service %q; these legacy Endpoints are not mirrored", nn.Namespace, slice, nn.Name),
			})
			continue
		}
		for _, s := range it.mirrored {
			mirrored = true
			expanded = append(expanded, item{
				Object: Object{
					Key:    input.Key{Kind: input.KindEndpointSlice, Namespace: s.Namespace, Name: s.Name},
					Obj:    s,
					Origin: it.Origin,
				},
				field: it.field,
			})
		}
	}
	if mirrored { // a mirrored name may collide with a real slice
		expanded = dedupe(expanded)
	}
	objects := make([]Object, len(expanded))
	for i := range expanded {
		objects[i] = expanded[i].Object
	}
	sort.Slice(objects, func(i, j int) bool { return keyLess(objects[i].Key, objects[j].Key) })
	return objects, problems
}

func keyLess(a, b input.Key) bool {
	if a.Kind != b.Kind {
		return a.Kind < b.Kind
	}
	if a.Namespace != b.Namespace {
		return a.Namespace < b.Namespace
	}
	return a.Name < b.Name
}

// toSet records problems in a diag.Set. diag.Set merges findings of the same
// kind/namespace/name/file; when that would merge different documents, each
// message says which document it is about.
func toSet(problems []problem) *diag.Set {
	type k struct{ kind, ns, name, file string }
	docs := map[k]int{}
	shared := map[k]bool{}
	for _, p := range problems {
		key := k{p.obj.Kind, p.obj.Namespace, p.obj.Name, p.obj.File}
		if d, ok := docs[key]; ok && d != p.obj.Doc {
			shared[key] = true
		}
		docs[key] = p.obj.Doc
	}
	set := diag.NewSet()
	for _, p := range problems {
		msg := p.msg
		if shared[k{p.obj.Kind, p.obj.Namespace, p.obj.Name, p.obj.File}] {
			msg = fmt.Sprintf("document %d: %s", p.obj.Doc, msg)
		}
		if p.severity == diag.Error {
			set.Reject(p.obj, p.reason, p.field, "%s", msg)
		} else {
			set.Warn(p.obj, p.reason, p.field, "%s", msg)
		}
	}
	return set
}
