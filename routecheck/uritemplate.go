package routecheck

import (
	"fmt"
	"regexp"
	"strings"
)

// uriTemplate is Envoy's envoy.path.match.uri_template matcher: "*" is one
// path segment, "**" any number of segments (last operator only), {name} /
// {name=*} / {name=**} / {name=a/*} capture, and literal text may surround a
// variable inside a segment ("v{version}", "{id}.json", "/**.mpd").
type uriTemplate struct {
	re    *regexp.Regexp
	names []string
}

// Characters of a path segment (Envoy's kLiteral: unreserved, pct-encoded,
// sub-delims except '*', ':' '@' '=').
const uriLiteral = `a-zA-Z0-9\-._~%!$&'()+,;:@=`

var uriVarName = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_]*$`)

func parseURITemplate(t string) (*uriTemplate, error) {
	if !strings.HasPrefix(t, "/") {
		return nil, fmt.Errorf("uri template %q must start with /", t)
	}
	var b strings.Builder
	var names []string
	seen := map[string]bool{}
	glob := func(op string) (string, error) {
		switch op {
		case "*":
			return "[" + uriLiteral + "]+", nil
		case "**":
			return "[" + uriLiteral + "/]*", nil
		}
		return "", fmt.Errorf("uri template %q: bad operator %q", t, op)
	}
	for i := 0; i < len(t); {
		switch c := t[i]; {
		case c == '{':
			end := strings.IndexByte(t[i:], '}')
			if end < 0 {
				return nil, fmt.Errorf("uri template %q: unclosed {", t)
			}
			body := t[i+1 : i+end]
			name, pattern, hasPattern := strings.Cut(body, "=")
			if !uriVarName.MatchString(name) || seen[name] {
				return nil, fmt.Errorf("uri template %q: bad or repeated variable %q", t, name)
			}
			seen[name] = true
			names = append(names, name)
			if !hasPattern {
				pattern = "*"
			}
			var parts []string
			for _, seg := range strings.Split(pattern, "/") {
				if seg == "*" || seg == "**" {
					g, err := glob(seg)
					if err != nil {
						return nil, err
					}
					parts = append(parts, g)
				} else {
					parts = append(parts, regexp.QuoteMeta(seg))
				}
			}
			b.WriteString("(?P<" + name + ">" + strings.Join(parts, "/") + ")")
			i += end + 1
		case c == '*':
			op := "*"
			if i+1 < len(t) && t[i+1] == '*' {
				op = "**"
			}
			g, _ := glob(op)
			b.WriteString(g)
			i += len(op)
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
			i++
		}
	}
	re, err := regexp.Compile("^" + b.String() + "$")
	if err != nil {
		return nil, fmt.Errorf("uri template %q: %w", t, err)
	}
	return &uriTemplate{re: re, names: names}, nil
}

// match returns the captured variables when path (without query) matches.
func (u *uriTemplate) match(path string) (map[string]string, bool) {
	m := u.re.FindStringSubmatch(path)
	if m == nil {
		return nil, false
	}
	vars := map[string]string{}
	for i, n := range u.re.SubexpNames() {
		if n != "" {
			vars[n] = m[i]
		}
	}
	return vars, true
}

// rewriteURITemplate is envoy.path.rewrite.uri_template: the rewrite template
// is literal text and {variables} captured by the match template.
func rewriteURITemplate(matchTemplate, rewrite, path string) (string, error) {
	u, err := parseURITemplate(matchTemplate)
	if err != nil {
		return "", err
	}
	vars, ok := u.match(path)
	if !ok {
		return "", fmt.Errorf("path %q does not match %q", path, matchTemplate)
	}
	var b strings.Builder
	for i := 0; i < len(rewrite); {
		if rewrite[i] != '{' {
			b.WriteByte(rewrite[i])
			i++
			continue
		}
		end := strings.IndexByte(rewrite[i:], '}')
		if end < 0 {
			return "", fmt.Errorf("rewrite template %q: unclosed {", rewrite)
		}
		name := rewrite[i+1 : i+end]
		v, ok := vars[name]
		if !ok {
			return "", fmt.Errorf("rewrite template %q: variable %q is not captured by %q", rewrite, name, matchTemplate)
		}
		b.WriteString(v)
		i += end + 1
	}
	return b.String(), nil
}
