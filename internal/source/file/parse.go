package file

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1b1 "sigs.k8s.io/gateway-api/apis/v1beta1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/hxds/hxds/internal/api"
	"github.com/hxds/hxds/translate/diag"
	"github.com/hxds/hxds/translate/input"
)

// newObject returns an empty typed object for an input kind, or nil when the
// file source does not know the kind. Add new kinds here.
func newObject(k input.Kind) runtime.Object {
	switch k {
	case input.KindNamespace:
		return &corev1.Namespace{}
	case input.KindService:
		return &corev1.Service{}
	case input.KindEndpoints:
		return &corev1.Endpoints{}
	case input.KindSecret:
		return &corev1.Secret{}
	case input.KindConfigMap:
		return &corev1.ConfigMap{}
	case input.KindEndpointSlice:
		return &discoveryv1.EndpointSlice{}
	case input.KindIngressClass:
		return &networkingv1.IngressClass{}
	case input.KindIngress:
		return &networkingv1.Ingress{}
	case input.KindGatewayClass:
		return &gwv1.GatewayClass{}
	case input.KindGateway:
		return &gwv1.Gateway{}
	case input.KindHTTPRoute:
		return &gwv1.HTTPRoute{}
	case input.KindGRPCRoute:
		return &gwv1.GRPCRoute{}
	case input.KindTCPRoute:
		return &gwv1.TCPRoute{}
	case input.KindTLSRoute:
		return &gwv1.TLSRoute{}
	case input.KindReferenceGrant:
		return &gwv1b1.ReferenceGrant{}
	case input.KindBackendTLSPolicy:
		return &gwv1.BackendTLSPolicy{}
	case input.KindMcpBridge:
		return &api.McpBridge{}
	case input.KindWasmPlugin:
		return &api.WasmPlugin{}
	}
	return nil
}

// clusterScoped kinds have no namespace.
func clusterScoped(k input.Kind) bool {
	return k == input.KindNamespace || k == input.KindIngressClass || k == input.KindGatewayClass
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// parseFile parses every document of one file. rel is the file's path
// relative to the root; .json files hold one JSON document, every other file
// is a YAML stream.
func parseFile(rel string, data []byte) ([]item, []problem) {
	data = bytes.TrimPrefix(data, utf8BOM)
	if isJSONFile(rel) {
		return parseDocument(rel, 0, 1, data, true)
	}
	var items []item
	var problems []problem
	for i, d := range splitYAML(data) {
		it, pr := parseDocument(rel, i, d.line, d.data, false)
		items = append(items, it...)
		problems = append(problems, pr...)
	}
	return items, problems
}

// yamlDoc is one document of a YAML stream and the 1-based file line it starts on.
type yamlDoc struct {
	data []byte
	line int
}

// splitYAML splits a YAML stream at "---" lines. Text before the first
// separator that holds only comments, blank lines or directives is not a
// document, so a stream starting with "---" begins with document 0. Content
// after "---" on the separator line (--- {a: 1}) stays in its document.
func splitYAML(data []byte) []yamlDoc {
	var docs []yamlDoc
	start, startLine, inline := 0, 1, false
	emit := func(end int) {
		d := data[start:end]
		if inline { // blank out the "---", keeping the columns of the rest
			c := append([]byte(nil), d...)
			copy(c, "   ")
			d = c
		}
		if len(docs) > 0 || inline || !blankYAML(d) {
			docs = append(docs, yamlDoc{data: d, line: startLine})
		}
	}
	line := 1
	for off := 0; off < len(data); line++ {
		next := len(data)
		if i := bytes.IndexByte(data[off:], '\n'); i >= 0 {
			next = off + i + 1
		}
		if l := data[off:next]; isSeparator(l) {
			emit(off)
			rest := bytes.TrimSpace(l[3:])
			if len(rest) > 0 && rest[0] != '#' {
				start, startLine, inline = off, line, true
			} else {
				start, startLine, inline = next, line+1, false
			}
		}
		off = next
	}
	emit(len(data))
	return docs
}

func isSeparator(l []byte) bool {
	if !bytes.HasPrefix(l, []byte("---")) {
		return false
	}
	return len(l) == 3 || l[3] == ' ' || l[3] == '\t' || l[3] == '\r' || l[3] == '\n'
}

// blankYAML reports whether a YAML text has only blank lines, comments and
// directives.
func blankYAML(b []byte) bool {
	for _, l := range bytes.Split(b, []byte("\n")) {
		l = bytes.TrimSpace(l)
		if len(l) > 0 && l[0] != '#' && l[0] != '%' {
			return false
		}
	}
	return true
}

// header is what is read from a document before it is decoded into its type.
type header struct {
	apiVersion, kind, name, namespace string
}

// docParser parses one document.
type docParser struct {
	file     string
	doc      int
	line     int    // file line the document starts on (1-based)
	src      []byte // the document as written (YAML or JSON)
	problems []problem
}

// parseDocument parses one document: file is the relative path, doc its index
// in the file, line the 1-based file line it starts on. It never panics; any
// document that is not loaded is reported in the problems, except empty ones.
func parseDocument(file string, doc, line int, src []byte, isJSON bool) ([]item, []problem) {
	p := &docParser{file: file, doc: doc, line: line, src: src}
	var js []byte
	if isJSON {
		js = bytes.TrimSpace(src)
		if len(js) == 0 {
			return nil, nil
		}
		var v any
		if err := json.Unmarshal(js, &v); err != nil {
			msg := err.Error()
			if ok, off := kjson.SyntaxErrorOffset(err); ok {
				msg = fmt.Sprintf("json: line %d: %s", p.line+bytes.Count(js[:min(int(off), len(js))], []byte("\n")), msg)
			}
			p.reject(p.guessObject(), "parse-error", "", "%s", msg)
			return nil, p.problems
		}
	} else {
		if blankYAML(src) {
			return nil, nil
		}
		var err error
		js, err = yaml.YAMLToJSONStrict(src)
		if err != nil {
			p.reject(p.guessObject(), "parse-error", "", "%s", p.yamlError(err))
			return nil, p.problems
		}
	}
	js = bytes.TrimSpace(js)
	if bytes.Equal(js, []byte("null")) {
		return nil, nil // empty document
	}
	if len(js) == 0 || js[0] != '{' {
		p.reject(p.guessObject(), "parse-error", "", "document is %s, not an object", jsonKind(js))
		return nil, p.problems
	}
	fields, h, ok := p.header(js, "")
	if !ok {
		return nil, p.problems
	}
	if h.kind == "List" && h.apiVersion == "v1" {
		return p.list(fields, h), p.problems
	}
	it := p.object(js, h, "")
	if it == nil {
		return nil, p.problems
	}
	return []item{*it}, p.problems
}

func jsonKind(js []byte) string {
	if len(js) == 0 {
		return "empty"
	}
	switch js[0] {
	case '[':
		return "a list"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	}
	return "a number"
}

func (p *docParser) origin() Origin { return Origin{File: p.file, Doc: p.doc} }

func (p *docParser) diagObject(h header) diag.Object {
	return diag.Object{Kind: h.kind, Namespace: h.namespace, Name: h.name, File: p.file, Doc: p.doc}
}

func (p *docParser) reject(o diag.Object, reason, field, format string, args ...any) {
	p.problems = append(p.problems, problem{obj: o, severity: diag.Error, reason: reason, field: field, msg: fmt.Sprintf(format, args...)})
}

func (p *docParser) warn(o diag.Object, reason, field, format string, args ...any) {
	p.problems = append(p.problems, problem{obj: o, severity: diag.Warning, reason: reason, field: field, msg: fmt.Sprintf(format, args...)})
}

// header reads apiVersion, kind and metadata name/namespace leniently so that
// problems found later can name the object.
func (p *docParser) header(js []byte, field string) (map[string]json.RawMessage, header, bool) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(js, &fields); err != nil {
		p.reject(diag.Object{File: p.file, Doc: p.doc}, "parse-error", field, "%s", err)
		return nil, header{}, false
	}
	var h header
	str := func(raw json.RawMessage) string {
		var s string
		_ = json.Unmarshal(raw, &s)
		return s
	}
	h.apiVersion = str(fields["apiVersion"])
	h.kind = str(fields["kind"])
	var meta map[string]json.RawMessage
	if json.Unmarshal(fields["metadata"], &meta) == nil {
		h.name = str(meta["name"])
		h.namespace = str(meta["namespace"])
	}
	for _, f := range []string{"apiVersion", "kind"} {
		if raw, ok := fields[f]; ok {
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				p.reject(p.diagObject(h), "parse-error", join(field, f), "%s must be a string", f)
				return nil, h, false
			}
		}
	}
	return fields, h, true
}

// list loads the items of a v1 List; each item is handled alone.
func (p *docParser) list(fields map[string]json.RawMessage, h header) []item {
	var raw []json.RawMessage
	if v, ok := fields["items"]; ok {
		if err := json.Unmarshal(v, &raw); err != nil {
			p.reject(p.diagObject(h), "parse-error", "items", "items must be a list of objects")
			return nil
		}
	}
	var items []item
	for i, js := range raw {
		field := fmt.Sprintf("items[%d]", i)
		js = bytes.TrimSpace(js)
		if bytes.Equal(js, []byte("null")) {
			continue
		}
		if len(js) == 0 || js[0] != '{' {
			p.reject(diag.Object{File: p.file, Doc: p.doc}, "parse-error", field, "%s is %s, not an object", field, jsonKind(js))
			continue
		}
		_, ih, ok := p.header(js, field)
		if !ok {
			continue
		}
		if ih.kind == "List" && ih.apiVersion == "v1" {
			p.reject(p.diagObject(ih), "parse-error", field, "a List inside a List is not supported")
			continue
		}
		if it := p.object(js, ih, field); it != nil {
			items = append(items, *it)
		}
	}
	return items
}

// object decodes one object strictly into its type. field is the path of the
// object inside the document ("" or items[i]).
func (p *docParser) object(js []byte, h header, field string) *item {
	if h.kind == "" {
		p.warn(p.diagObject(h), "missing-kind", join(field, "kind"), "document has no kind, so it is not a Kubernetes object; ignored")
		return nil
	}
	if h.apiVersion == "" {
		if newObject(input.Kind(h.kind)) != nil {
			p.reject(p.diagObject(h), "missing-apiversion", join(field, "apiVersion"), "kind %s has no apiVersion", h.kind)
		} else {
			p.warn(p.diagObject(h), "unsupported-kind", field, "unsupported kind %s (no apiVersion); ignored", h.kind)
		}
		return nil
	}
	gv, err := schema.ParseGroupVersion(h.apiVersion)
	if err != nil {
		p.reject(p.diagObject(h), "parse-error", join(field, "apiVersion"), "invalid apiVersion %q: %v", h.apiVersion, err)
		return nil
	}
	kind, ok := input.GroupVersionKinds[gv.WithKind(h.kind)]
	var obj runtime.Object
	if ok {
		obj = newObject(kind)
	}
	if obj == nil {
		p.warn(p.diagObject(h), "unsupported-kind", field, "unsupported kind %s (apiVersion %s); ignored", h.kind, h.apiVersion)
		return nil
	}
	if !clusterScoped(kind) && h.namespace == "" {
		h.namespace = metav1.NamespaceDefault
	}
	d := p.diagObject(h)
	strictErrs, err := kjson.UnmarshalStrict(js, obj)
	if err != nil {
		f, msg := p.decodeError(err, field)
		p.reject(d, "parse-error", f, "%s", msg)
		return nil
	}
	if len(strictErrs) > 0 {
		for _, se := range strictErrs {
			reason, path := "unknown-field", ""
			if fe, ok := se.(kjson.FieldError); ok {
				path = fe.FieldPath()
			}
			if strings.HasPrefix(se.Error(), "duplicate field") {
				reason = "duplicate-field"
			}
			msg := se.Error()
			if field != "" {
				msg = strings.Replace(msg, strconv.Quote(path), strconv.Quote(join(field, path)), 1)
			}
			p.reject(d, reason, join(field, path), "%s%s", msg, p.lineSuffix(field, path))
		}
		return nil
	}
	meta, ok := obj.(metav1.Object)
	if !ok { // every input kind has ObjectMeta
		p.reject(d, "parse-error", field, "kind %s has no metadata", h.kind)
		return nil
	}
	if meta.GetName() == "" {
		msg := "metadata.name is required"
		if meta.GetGenerateName() != "" {
			msg += " (generateName is not supported)"
		}
		p.reject(d, "missing-name", join(field, "metadata.name"), "%s", msg)
		return nil
	}
	if clusterScoped(kind) {
		if ns := meta.GetNamespace(); ns != "" {
			p.warn(d, "ignored-field", join(field, "metadata.namespace"), "%s is cluster-scoped; metadata.namespace %q is ignored", h.kind, ns)
			meta.SetNamespace("")
		}
	} else {
		if meta.GetNamespace() == "" {
			meta.SetNamespace(metav1.NamespaceDefault)
		}
		if errs := validation.IsDNS1123Label(meta.GetNamespace()); len(errs) > 0 {
			p.reject(d, "invalid-namespace", join(field, "metadata.namespace"), "invalid namespace %q: %s", meta.GetNamespace(), strings.Join(errs, "; "))
			return nil
		}
	}
	if errs := validateName(kind, meta.GetName()); len(errs) > 0 {
		p.reject(d, "invalid-name", join(field, "metadata.name"), "invalid name %q: %s", meta.GetName(), strings.Join(errs, "; "))
		return nil
	}
	it := &item{
		Object: Object{
			Key:    input.Key{Kind: kind, Namespace: meta.GetNamespace(), Name: meta.GetName()},
			Obj:    obj,
			Origin: p.origin(),
		},
		field: field,
	}
	switch o := obj.(type) {
	case *corev1.Secret:
		// The API server folds stringData into data on write; do the same.
		if len(o.StringData) > 0 {
			if o.Data == nil {
				o.Data = make(map[string][]byte, len(o.StringData))
			}
			for k, v := range o.StringData {
				o.Data[k] = []byte(v)
			}
			o.StringData = nil
		}
	case *corev1.Endpoints:
		it.mirrored = input.EndpointSlicesFromEndpoints(o)
	}
	return it
}

// validateName applies the Kubernetes name rules of each kind, so names are
// safe to build Envoy resource names from.
func validateName(k input.Kind, name string) []string {
	switch k {
	case input.KindNamespace:
		return validation.IsDNS1123Label(name)
	case input.KindService:
		return validation.IsDNS1035Label(name)
	}
	return validation.IsDNS1123Subdomain(name)
}

func join(prefix, path string) string {
	switch {
	case prefix == "":
		return path
	case path == "":
		return prefix
	}
	return prefix + "." + path
}

var (
	yamlLineRE    = regexp.MustCompile(`line (\d+)`)
	structFieldRE = regexp.MustCompile(`Go struct field [A-Za-z0-9_]+\.(\S+) of type`)
)

// yamlError rewrites the document-relative line numbers of a YAML error to
// file lines and strips the conversion prefix.
func (p *docParser) yamlError(err error) string {
	msg := strings.TrimPrefix(err.Error(), "error converting YAML to JSON: ")
	msg = yamlLineRE.ReplaceAllStringFunc(msg, func(s string) string {
		n, err := strconv.Atoi(s[len("line "):])
		if err != nil {
			return s
		}
		return "line " + strconv.Itoa(n+p.line-1)
	})
	msg = strings.ReplaceAll(msg, ":\n", ": ")
	return strings.Join(strings.Fields(strings.ReplaceAll(msg, "\n", "; ")), " ")
}

// decodeError turns a typed-decode failure into a field path and message.
func (p *docParser) decodeError(err error, field string) (string, string) {
	msg := err.Error()
	m := structFieldRE.FindStringSubmatch(msg)
	if m == nil {
		return field, msg
	}
	return join(field, m[1]), msg + p.lineSuffix(field, m[1])
}

// lineSuffix returns " (line N)" for a field path of the document when its
// line can be found. Paths inside a List item are not located.
func (p *docParser) lineSuffix(field, path string) string {
	if field != "" || path == "" {
		return ""
	}
	if n := findLine(p.src, path); n > 0 {
		return fmt.Sprintf(" (line %d)", n+p.line-1)
	}
	return ""
}

// findLine finds the 1-based line of a field path (spec.rules[0].http) in a
// YAML or JSON document by looking for each key after the previous one. It is
// a best effort for messages: list indexes are not followed, so for repeated
// keys it finds the first occurrence. It returns 0 when not found.
func findLine(src []byte, path string) int {
	pos, found := 0, -1
	for _, seg := range strings.Split(path, ".") {
		if i := strings.IndexByte(seg, '['); i >= 0 {
			seg = seg[:i]
		}
		if seg == "" {
			continue
		}
		i := findKey(src, pos, seg)
		if i < 0 {
			return 0
		}
		found, pos = i, i+len(seg)
	}
	if found < 0 {
		return 0
	}
	return 1 + bytes.Count(src[:found], []byte("\n"))
}

// findKey returns the offset of the first mapping key named key at or after from.
func findKey(src []byte, from int, key string) int {
	for from <= len(src) {
		j := bytes.Index(src[from:], []byte(key))
		if j < 0 {
			return -1
		}
		j += from
		if isKeyAt(src, j, len(key)) {
			return j
		}
		from = j + 1
	}
	return -1
}

func isKeyAt(src []byte, at, n int) bool {
	before, after := at-1, at+n
	var quote byte
	if before >= 0 && (src[before] == '"' || src[before] == '\'') {
		quote = src[before]
		before--
	}
	if before >= 0 {
		switch src[before] {
		case ' ', '\t', '\n', '\r', '{', ',':
		default:
			return false
		}
	}
	if quote != 0 {
		if after >= len(src) || src[after] != quote {
			return false
		}
		after++
	}
	for after < len(src) && (src[after] == ' ' || src[after] == '\t') {
		after++
	}
	return after < len(src) && src[after] == ':'
}

var (
	jsonKindRE = regexp.MustCompile(`"kind"\s*:\s*"([A-Za-z0-9]+)"`)
	jsonNameRE = regexp.MustCompile(`"metadata"\s*:\s*\{[^{}]*?"name"\s*:\s*"([A-Za-z0-9.\-_]+)"`)
	kindLineRE = regexp.MustCompile(`(?m)^kind:[ \t]*["']?([A-Za-z0-9]+)`)
	nameLineRE = regexp.MustCompile(`(?m)^metadata:[ \t]*\r?\n(?:[ \t]+.*\r?\n|[ \t]*#.*\r?\n|[ \t]*\r?\n)*?[ \t]+name:[ \t]*["']?([A-Za-z0-9.\-_]+)`)
)

// guessObject names a document that does not parse from its top-level kind
// and metadata.name lines, when they can be seen.
func (p *docParser) guessObject() diag.Object {
	o := diag.Object{File: p.file, Doc: p.doc}
	kindRE, nameRE := kindLineRE, nameLineRE
	if t := bytes.TrimSpace(p.src); len(t) > 0 && t[0] == '{' {
		kindRE, nameRE = jsonKindRE, jsonNameRE
	}
	if m := kindRE.FindSubmatch(p.src); m != nil {
		o.Kind = string(m[1])
	}
	if m := nameRE.FindSubmatch(p.src); m != nil {
		o.Name = string(m[1])
	}
	return o
}
