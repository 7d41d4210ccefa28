package wasmfetch

import (
	"os"
	"path/filepath"
	"testing"
)

// module builds a wasm binary with the given custom sections (after one
// empty type section, so non-custom sections are skipped too).
func module(custom ...string) []byte {
	b := []byte("\x00asm\x01\x00\x00\x00")
	b = append(b, 1, 1, 0) // type section: 0 types
	for _, name := range custom {
		payload := append([]byte{byte(len(name))}, name...)
		payload = append(payload, 0xde, 0xad)
		b = append(b, 0, byte(len(payload)))
		b = append(b, payload...)
	}
	return b
}

func TestIsWAMRAOT(t *testing.T) {
	for _, c := range []struct {
		name   string
		module []byte
		want   bool
		err    bool
	}{
		{"plain module", module(), false, false},
		{"other custom section", module("name"), false, false},
		{"wamr-aot", module("name", "wamr-aot"), true, false},
		{"old versioned", module("wamr-aot-1.3.2"), true, false},
		{"2.0.x", module("wamr-aot-2.0.9"), true, false},
		{"2.1.0 and later are not switched", module("wamr-aot-2.1.0"), false, false},
		{"bad version", module("wamr-aot-x.y"), false, false},
		{"truncated", module("wamr-aot")[:14], false, true},
		{"not wasm", []byte("hello, world"), false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "m.wasm")
			if err := os.WriteFile(p, c.module, 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := IsWAMRAOT(p)
			if got != c.want || (err != nil) != c.err {
				t.Errorf("IsWAMRAOT = %v, %v; want %v, error %v", got, err, c.want, c.err)
			}
		})
	}
}

func FuzzIsWAMRAOT(f *testing.F) {
	f.Add(module("wamr-aot"))
	f.Add(module("name"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(t.TempDir(), "m.wasm")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		_, _ = IsWAMRAOT(p) // must not panic or hang
	})
}
