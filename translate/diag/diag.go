// Package diag records what happened to each input object: accepted, accepted
// with warnings, or rejected, and why. Sources report parse problems here and
// translators report semantic ones; /debug/status and `hxds translate` print it.
package diag

import (
	"fmt"
	"sort"
	"sync"
)

// Severity of one finding.
type Severity string

const (
	// Warning: the object is served, but part of it has no effect.
	Warning Severity = "Warning"
	// Error: the object (or the named part of it) is not served.
	Error Severity = "Error"
)

// Object identifies the input a finding is about. File and Doc are set when the
// object came from a config directory (Doc is the 0-based document index).
type Object struct {
	Kind      string `json:"kind,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name,omitempty"`
	File      string `json:"file,omitempty"`
	Doc       int    `json:"doc,omitempty"`
}

func (o Object) String() string {
	s := o.Kind
	if o.Namespace != "" {
		s += "/" + o.Namespace
	}
	if o.Name != "" {
		s += "/" + o.Name
	}
	if o.File != "" {
		s = fmt.Sprintf("%s (%s#%d)", s, o.File, o.Doc)
	}
	return s
}

// Finding is one reason attached to an object.
type Finding struct {
	Severity Severity `json:"severity"`
	// Reason is a short machine-friendly category (duplicated-route, missing-secret, ...).
	Reason string `json:"reason"`
	// Field points into the object (spec.rules[0].http.paths[1].backend) when known.
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// Status is the verdict for one object.
type Status struct {
	Object   Object `json:"object"`
	Accepted bool   `json:"accepted"`
	// Ignored objects are valid but not for this controller (another ingress class).
	Ignored  bool      `json:"ignored,omitempty"`
	Findings []Finding `json:"findings,omitempty"`
}

// Set collects findings. The zero value is not usable; call NewSet. It is safe
// for concurrent use so a parallel front-end may share one.
type Set struct {
	mu      sync.Mutex
	objects map[objectKey]*Status
}

type objectKey struct {
	kind, namespace, name, file string
	doc                         int
}

// keyOf identifies an object by kind/namespace/name and, when it came from a
// file, by file and document too: a duplicate definition in another file is
// its own entry, not a finding on the object that is served. Translation does
// not know files; the process attaches origins before merging (see
// internal/app.Status).
func keyOf(o Object) objectKey {
	return objectKey{kind: o.Kind, namespace: o.Namespace, name: o.Name, file: o.File, doc: o.Doc}
}

// NewSet returns an empty set.
func NewSet() *Set { return &Set{objects: map[objectKey]*Status{}} }

func (s *Set) entry(o Object) *Status {
	k := keyOf(o)
	st, ok := s.objects[k]
	if !ok {
		st = &Status{Object: o, Accepted: true}
		s.objects[k] = st
	}
	return st
}

// Accept records that an object was seen and served (findings may still add warnings).
func (s *Set) Accept(o Object) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entry(o)
}

// Ignore records an object that is not ours to serve (for example an Ingress
// of another class). It is not counted as rejected.
func (s *Set) Ignore(o Object, reason, format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.entry(o)
	st.Accepted = false
	st.Ignored = true
	st.Findings = append(st.Findings, Finding{Severity: Warning, Reason: reason, Message: fmt.Sprintf(format, args...)})
}

// Reject marks the whole object as not served.
func (s *Set) Reject(o Object, reason, field, format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.entry(o)
	st.Accepted = false
	st.Findings = append(st.Findings, Finding{Severity: Error, Reason: reason, Field: field, Message: fmt.Sprintf(format, args...)})
}

// Error records that part of an object is not served; the rest still is.
func (s *Set) Error(o Object, reason, field, format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.entry(o)
	st.Findings = append(st.Findings, Finding{Severity: Error, Reason: reason, Field: field, Message: fmt.Sprintf(format, args...)})
}

// Warn records a finding that does not stop the object from being served.
func (s *Set) Warn(o Object, reason, field, format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.entry(o)
	st.Findings = append(st.Findings, Finding{Severity: Warning, Reason: reason, Field: field, Message: fmt.Sprintf(format, args...)})
}

// Merge adds every status of other into s.
func (s *Set) Merge(other *Set) {
	if other == nil {
		return
	}
	for _, st := range other.List() {
		s.Add(st)
	}
}

// Add merges one status into s: the object stays accepted only if both say
// so, and findings accumulate.
func (s *Set) Add(st Status) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entry(st.Object)
	e.Accepted = e.Accepted && st.Accepted
	e.Ignored = e.Ignored || st.Ignored
	e.Findings = append(e.Findings, st.Findings...)
}

// List returns every status sorted by kind, namespace, name, file.
func (s *Set) List() []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Status, 0, len(s.objects))
	for _, st := range s.objects {
		c := *st
		c.Findings = append([]Finding(nil), st.Findings...)
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].Object, out[j].Object
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		if a.File != b.File {
			return a.File < b.File
		}
		return a.Doc < b.Doc
	})
	return out
}

// Rejected counts objects that are not served at all.
func (s *Set) Rejected() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, st := range s.objects {
		if !st.Accepted && !st.Ignored {
			n++
		}
	}
	return n
}
