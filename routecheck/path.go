package routecheck

import (
	"strings"
)

// pathOnly strips the query string and fragment, as Envoy's
// PathUtil::removeQueryAndFragment does.
func pathOnly(p string) string {
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		return p[:i]
	}
	return p
}

// splitQuery returns the path and the rest ("?..." or "#..."), the rest kept verbatim.
func splitQuery(p string) (string, string) {
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		return p[:i], p[i:]
	}
	return p, ""
}

// queryParams parses the query string as Envoy's QueryParamsMulti::parseQueryString
// does for route matching: split on '&', key and value at the first '=', no
// percent-decoding; a key without '=' has an empty value. Only the first
// value of a key is used by matchers.
func queryParams(p string) map[string]string {
	out := map[string]string{}
	i := strings.IndexByte(p, '?')
	if i < 0 {
		return out
	}
	q := p[i+1:]
	if j := strings.IndexByte(q, '#'); j >= 0 {
		q = q[:j]
	}
	for _, kv := range strings.Split(q, "&") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		if _, seen := out[k]; !seen {
			out[k] = v
		}
	}
	return out
}

// normalizePath approximates Envoy's normalize_path (RFC 3986 section 6
// normalization through Chromium's URL canonicalizer): backslashes become
// slashes and dot segments ("." and "..", also percent-encoded) are removed.
func normalizePath(p string) string {
	path, rest := splitQuery(p)
	path = strings.ReplaceAll(path, `\`, "/")
	segs := strings.Split(path, "/")
	var out []string
	for i, s := range segs {
		if i == 0 {
			continue // before the leading slash
		}
		last := i == len(segs)-1
		switch dotSegment(s) {
		case 1:
			if last {
				out = append(out, "")
			}
		case 2:
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			if last {
				out = append(out, "")
			}
		default:
			out = append(out, s)
		}
	}
	return "/" + strings.Join(out, "/") + rest
}

func dotSegment(s string) int {
	s = strings.ReplaceAll(strings.ToLower(s), "%2e", ".")
	switch s {
	case ".":
		return 1
	case "..":
		return 2
	}
	return 0
}

// mergeSlashes collapses repeated slashes in the path (not the query).
func mergeSlashes(p string) string {
	path, rest := splitQuery(p)
	for strings.Contains(path, "//") {
		path = strings.ReplaceAll(path, "//", "/")
	}
	return path + rest
}

// unescapeSlashes decodes %2F and %5C in the path; it reports whether it changed anything.
func unescapeSlashes(p string) (string, bool) {
	path, rest := splitQuery(p)
	r := strings.NewReplacer("%2F", "/", "%2f", "/", "%5C", `\`, "%5c", `\`)
	np := r.Replace(path)
	return np + rest, np != path
}
