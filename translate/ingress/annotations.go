package ingress

import (
	"strconv"
	"strings"
)

// Annotation prefixes (higress-semantics §3.1). Where a key exists under both,
// the nginx one wins; Higress-only keys are ignored under the nginx prefix.
const (
	nginxPrefix   = "nginx.ingress.kubernetes.io/"
	higressPrefix = "higress.io/"
)

// annotations reads Ingress annotations with Higress's parsing rules.
type annotations map[string]string

// value returns the trimmed value of key under either prefix (nginx first),
// or under the higress prefix only when higressOnly is set. Each line is
// trimmed and lines are re-joined; an empty result counts as absent.
func (a annotations) value(key string, higressOnly bool) (string, bool) {
	if !higressOnly {
		if v, ok := clean(a[nginxPrefix+key]); ok {
			return v, true
		}
	}
	return clean(a[higressPrefix+key])
}

func clean(raw string) (string, bool) {
	if raw == "" {
		return "", false
	}
	lines := strings.Split(raw, "\n")
	kept := lines[:0]
	for _, l := range lines {
		if l = strings.TrimSpace(l); l != "" {
			kept = append(kept, l)
		}
	}
	v := strings.Join(kept, "\n")
	return v, v != ""
}

// flag reads a boolean with strconv.ParseBool; an unparsable value is reported
// through bad and counts as false.
func (a annotations) flag(key string, higressOnly bool, bad func(key, value string, err error)) bool {
	v, ok := a.value(key, higressOnly)
	if !ok {
		return false
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		bad(key, v, err)
		return false
	}
	return b
}

// regexChars are the characters that make a path a regular expression when
// rewrite-target is set (Higress NeedRegexMatch).
const regexChars = `\.+*?()|[]{}^$`

// regexMode is the Ingress-wide input of Higress's regex decision (§2.3),
// parsed once per Ingress so a bad value is reported once.
type regexMode struct {
	useRegex, fullPathRegex bool
	// rewrite is set when rewrite-target is; captures when it references groups.
	rewrite, captures bool
}

func parseRegexMode(a annotations, bad func(string, string, error)) regexMode {
	m := regexMode{
		useRegex:      a.flag("use-regex", false, bad),
		fullPathRegex: a.flag("full-path-regex", true, bad),
	}
	if t, ok := a.value("rewrite-target", false); ok {
		m.rewrite = true
		m.captures = strings.ContainsAny(t, `$\`)
	}
	return m
}

// forIngress is the decision that does not depend on a path (used by the
// pathType-nil defaulting).
func (m regexMode) forIngress() bool { return m.useRegex || m.fullPathRegex || m.captures }

// forPath adds the per-path part: rewrite-target set and the path itself
// contains regex characters.
func (m regexMode) forPath(path string) bool {
	return m.forIngress() || (m.rewrite && strings.ContainsAny(path, regexChars))
}
