package routecheck

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/anypb"
)

// headerMap is an ordered HTTP header map with lower-case names, pseudo-headers included.
type headerMap struct{ h []Header }

func newHeaderMap(hs []Header) *headerMap {
	m := &headerMap{}
	for _, h := range hs {
		m.add(h.Name, h.Value)
	}
	return m
}

func (m *headerMap) clone() *headerMap {
	return &headerMap{h: append([]Header(nil), m.h...)}
}

func (m *headerMap) values(name string) []string {
	name = strings.ToLower(name)
	var out []string
	for _, h := range m.h {
		if h.Name == name {
			out = append(out, h.Value)
		}
	}
	return out
}

// get returns every value of name joined with ",", as Envoy's header
// matchers see a repeated header.
func (m *headerMap) get(name string) (string, bool) {
	v := m.values(name)
	if len(v) == 0 {
		return "", false
	}
	return strings.Join(v, ","), true
}

func (m *headerMap) first(name string) string {
	if v := m.values(name); len(v) > 0 {
		return v[0]
	}
	return ""
}

func (m *headerMap) add(name, value string) {
	m.h = append(m.h, Header{Name: strings.ToLower(name), Value: value})
}

func (m *headerMap) set(name, value string) {
	name = strings.ToLower(name)
	for i, h := range m.h {
		if h.Name == name {
			m.h[i].Value = value
			m.removeFrom(name, i+1)
			return
		}
	}
	m.add(name, value)
}

func (m *headerMap) remove(name string) bool {
	return m.removeFrom(strings.ToLower(name), 0)
}

func (m *headerMap) removeFrom(name string, from int) bool {
	out, removed := m.h[:from], false
	for _, h := range m.h[from:] {
		if h.Name == name {
			removed = true
			continue
		}
		out = append(out, h)
	}
	m.h = out
	return removed
}

// regular returns the non-pseudo headers, repeated names joined with ",".
func (m *headerMap) regular() map[string]string {
	out := map[string]string{}
	for _, h := range m.h {
		if strings.HasPrefix(h.Name, ":") {
			continue
		}
		if prev, ok := out[h.Name]; ok {
			out[h.Name] = prev + "," + h.Value
		} else {
			out[h.Name] = h.Value
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// headerParser is one level's header mutations (Envoy's HeaderParser).
type headerParser struct {
	level  string
	add    []*corev3.HeaderValueOption
	remove []string
}

func (p headerParser) empty() bool { return len(p.add) == 0 && len(p.remove) == 0 }

// apply evaluates one parser as Envoy's HeaderParser::evaluateHeaders does:
// removals first; then every addition's value is formatted and its action
// decided against the headers as they are before any addition of this level;
// then overwrites are applied, then appends.
func (e *evaluator) applyHeaderParser(h *headerMap, p headerParser, req, resp *headerMap, ops *[]HeaderOp, removed *[]string) {
	for _, name := range p.remove {
		name = strings.ToLower(name)
		op := HeaderOp{Level: p.level, Action: "remove", Name: name}
		if !mutable(name) {
			op.Skipped = "pseudo-headers and host cannot be removed"
		} else {
			h.remove(name)
			*removed = appendUnique(*removed, name)
		}
		*ops = append(*ops, op)
	}
	type kv struct{ name, value string }
	var appends, overwrites []kv
	for _, hv := range p.add {
		name := strings.ToLower(hv.GetHeader().GetKey())
		raw := hv.GetHeader().GetValue()
		if len(hv.GetHeader().GetRawValue()) > 0 {
			raw = string(hv.GetHeader().GetRawValue())
		}
		value := e.format(raw, req, resp)
		action := hv.GetAppendAction()
		if hv.GetAppend() != nil {
			if hv.GetAppend().GetValue() {
				action = corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD
			} else {
				action = corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
			}
		}
		op := HeaderOp{Level: p.level, Action: appendActionName(action), Name: name, Value: value}
		_, exists := h.get(name)
		switch {
		case !mutable(name):
			op.Skipped = "pseudo-headers and host cannot be set by header mutations"
		case value == "" && !hv.GetKeepEmptyValue():
			op.Skipped = "empty value (keep_empty_value is false)"
		case action == corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD:
			appends = append(appends, kv{name, value})
		case action == corev3.HeaderValueOption_ADD_IF_ABSENT:
			if exists {
				op.Skipped = "header already present"
			} else {
				appends = append(appends, kv{name, value})
			}
		case action == corev3.HeaderValueOption_OVERWRITE_IF_EXISTS:
			if !exists {
				op.Skipped = "header absent"
			} else {
				overwrites = append(overwrites, kv{name, value})
			}
		default: // OVERWRITE_IF_EXISTS_OR_ADD
			overwrites = append(overwrites, kv{name, value})
		}
		*ops = append(*ops, op)
	}
	for _, o := range overwrites {
		h.set(o.name, o.value)
	}
	for _, a := range appends {
		h.add(a.name, a.value)
	}
}

func mutable(name string) bool {
	return !strings.HasPrefix(name, ":") && name != "host"
}

func appendActionName(a corev3.HeaderValueOption_HeaderAppendAction) string {
	switch a {
	case corev3.HeaderValueOption_ADD_IF_ABSENT:
		return "add-if-absent"
	case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD:
		return "overwrite"
	case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS:
		return "overwrite-if-exists"
	default:
		return "append"
	}
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// format renders Envoy's substitution format for header values and format
// rewrites. Supported: %%, %REQ(h)%, %REQ(h?alt)%, %RESP(h)%, with an
// optional :N length limit, and the downstream address, SNI and protocol
// commands; any other command is left as is and listed as not simulated.
func (e *evaluator) format(s string, req, resp *headerMap) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] != '%' {
			b.WriteByte(s[i])
			i++
			continue
		}
		if i+1 < len(s) && s[i+1] == '%' {
			b.WriteByte('%')
			i += 2
			continue
		}
		end := strings.IndexByte(s[i+1:], '%')
		if end < 0 {
			b.WriteString(s[i:])
			break
		}
		cmd := s[i+1 : i+1+end]
		// A header name may not contain '%', so the first '%' ends the command.
		b.WriteString(e.command(cmd, req, resp))
		i += end + 2
	}
	return b.String()
}

func (e *evaluator) command(cmd string, req, resp *headerMap) string {
	name, arg, limit := cmd, "", -1
	if open := strings.IndexByte(cmd, '('); open >= 0 {
		closeAt := strings.LastIndexByte(cmd, ')')
		if closeAt > open {
			name, arg = cmd[:open], cmd[open+1:closeAt]
			if rest := cmd[closeAt+1:]; strings.HasPrefix(rest, ":") {
				if n, err := strconv.Atoi(rest[1:]); err == nil {
					limit = n
				}
			}
		}
	}
	var out string
	switch name {
	case "REQ", "RESP":
		m := req
		if name == "RESP" {
			m = resp
		}
		main, alt, _ := strings.Cut(arg, "?")
		if m != nil {
			if v, ok := m.get(main); ok {
				out = v
			} else if alt != "" {
				out, _ = m.get(alt)
			}
		}
	case "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT", "DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT":
		out = e.req.SourceIP
	case "DOWNSTREAM_REMOTE_ADDRESS", "DOWNSTREAM_DIRECT_REMOTE_ADDRESS":
		out = e.req.SourceIP
		e.note("%%%s%% rendered without the client port (unknown)", name)
	case "DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT":
		out = e.req.DestinationIP
	case "DOWNSTREAM_LOCAL_PORT":
		out = strconv.Itoa(int(e.req.Port))
	case "REQUESTED_SERVER_NAME":
		out = e.req.SNI
	case "PROTOCOL":
		out = "HTTP/1.1"
	default:
		e.notSimulated("substitution format command %%%s%%", cmd)
		return "%" + cmd + "%"
	}
	if limit >= 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}

// typedConfig is a decoded typed config. FilterConfig wrappers are opened:
// their is_optional and disabled flags are kept; msg is nil for a wrapper
// without config and for a type this binary does not know (typeURL says which).
type typedConfig struct {
	msg      proto.Message // nil when absent (e.g. FilterConfig without config)
	typeURL  string
	optional bool
	disabled bool
	err      error
}

const filterConfigTypeURL = "type.googleapis.com/envoy.config.route.v3.FilterConfig"

// decodeTyped decodes a typed config, opening a FilterConfig wrapper.
func decodeTyped(a *anypb.Any) typedConfig {
	if a == nil {
		return typedConfig{}
	}
	tc := typedConfig{typeURL: a.GetTypeUrl()}
	if a.GetTypeUrl() == filterConfigTypeURL {
		fc := &routeFilterConfig{}
		if err := a.UnmarshalTo(fc); err != nil {
			tc.err = err
			return tc
		}
		tc.optional, tc.disabled = fc.GetIsOptional(), fc.GetDisabled()
		if fc.GetConfig() == nil {
			tc.typeURL = ""
			return tc
		}
		a = fc.GetConfig()
		tc.typeURL = a.GetTypeUrl()
	}
	m, err := a.UnmarshalNew()
	if errors.Is(err, protoregistry.NotFound) {
		return tc // a type this binary does not know: reported by type URL
	}
	if err != nil {
		tc.err = fmt.Errorf("typed config %s: %w", a.GetTypeUrl(), err)
		return tc
	}
	tc.msg = m
	if orig := originalType(m); orig != "" {
		tc.typeURL = orig
	}
	return tc
}

func anyTo(a *anypb.Any, m proto.Message) error {
	if a == nil {
		return fmt.Errorf("missing typed config for %s", m.ProtoReflect().Descriptor().FullName())
	}
	if err := a.UnmarshalTo(m); err != nil {
		return fmt.Errorf("typed config %s: %w", a.GetTypeUrl(), err)
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
