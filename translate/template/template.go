// Package template expands Higress's ${secret.<name>.<key>} references
// (higress-semantics §2.10) in user-supplied configuration values, so
// credentials can live in Secrets instead of annotations or plugin configs.
package template

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/hxds/hxds/translate/input"
)

// reference is ${secret.<name>.<key>} with <name> optionally
// <namespace>/<name>. Names cannot contain dots here (keys can), as in Higress.
var reference = regexp.MustCompile(`\$\{secret\.([^./}]+(?:/[^./}]+)?)\.([^}]+)\}`)

// Contains reports whether s has any reference, so callers skip the work.
func Contains(s string) bool { return strings.Contains(s, "${secret.") }

// Expand replaces every reference in s with the Secret value. A Secret in
// the system namespace may be named without a namespace. The first
// reference that cannot be resolved is returned as an error and s is
// returned unexpanded: a half-substituted credential is worse than none.
// refs lists the Secrets s depends on.
func Expand(s string, snap *input.Snapshot, systemNamespace string) (out string, refs []input.NamespacedName, err error) {
	if !Contains(s) {
		return s, nil, nil
	}
	out = reference.ReplaceAllStringFunc(s, func(m string) string {
		if err != nil {
			return m
		}
		sub := reference.FindStringSubmatch(m)
		ref := input.NamespacedName{Namespace: systemNamespace, Name: sub[1]}
		if ns, name, ok := strings.Cut(sub[1], "/"); ok {
			ref = input.NamespacedName{Namespace: ns, Name: name}
		}
		refs = append(refs, ref)
		secret := snap.Secrets[ref]
		if secret == nil {
			err = fmt.Errorf("%s: Secret %s not found", m, ref)
			return m
		}
		v, ok := secret.Data[sub[2]]
		if !ok {
			if sv, ok2 := secret.StringData[sub[2]]; ok2 {
				return sv
			}
			err = fmt.Errorf("%s: Secret %s has no key %q", m, ref, sub[2])
			return m
		}
		return string(v)
	})
	if err != nil {
		return s, refs, err
	}
	return out, refs, nil
}
