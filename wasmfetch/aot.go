package wasmfetch

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// WAMRRuntime is Envoy's WAMR Wasm runtime, which runs modules compiled
// ahead of time by WAMR.
const WAMRRuntime = "envoy.wasm.runtime.wamr"

// IsWAMRAOT reports whether the module at path was compiled ahead of time
// for WAMR: it has a custom section "wamr-aot", or "wamr-aot-<version>"
// with a version below 2.1.0 (higress-semantics §7.5 step 7, what
// Higress's agent checks before switching the runtime to WAMR with
// allow_precompiled). Only the section headers are read.
func IsWAMRAOT(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	return wamrAOT(bufio.NewReader(f))
}

func wamrAOT(r *bufio.Reader) (bool, error) {
	var header [8]byte
	if _, err := io.ReadFull(r, header[:]); err != nil {
		return false, fmt.Errorf("read wasm header: %w", err)
	}
	if string(header[:4]) != "\x00asm" {
		return false, errors.New("not a wasm module")
	}
	for {
		id, err := r.ReadByte()
		if errors.Is(err, io.EOF) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		size, err := uleb128(r)
		if err != nil {
			return false, fmt.Errorf("section size: %w", err)
		}
		if id != 0 {
			if _, err := r.Discard(int(size)); err != nil {
				return false, fmt.Errorf("skip section: %w", err)
			}
			continue
		}
		nameLen, n, err := uleb128n(r)
		if err != nil || nameLen > size || nameLen > 1<<16 {
			return false, fmt.Errorf("custom section name: %v", err)
		}
		name := make([]byte, nameLen)
		if _, err := io.ReadFull(r, name); err != nil {
			return false, fmt.Errorf("custom section name: %w", err)
		}
		if aotSectionName(string(name)) {
			return true, nil
		}
		if _, err := r.Discard(int(size - nameLen - uint64(n))); err != nil {
			return false, fmt.Errorf("skip custom section: %w", err)
		}
	}
}

// aotSectionName: "wamr-aot", or "wamr-aot-<major>.<minor>.<patch>" below 2.1.0.
func aotSectionName(name string) bool {
	if name == "wamr-aot" {
		return true
	}
	v, ok := strings.CutPrefix(name, "wamr-aot-")
	if !ok {
		return false
	}
	parts := strings.SplitN(v, ".", 3)
	nums := [3]int{}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil {
			return false
		}
		nums[i] = n
	}
	return nums[0] < 2 || (nums[0] == 2 && nums[1] < 1)
}

func uleb128(r io.ByteReader) (uint64, error) {
	v, _, err := uleb128n(r)
	return v, err
}

// uleb128n reads an unsigned LEB128 value and how many bytes it took.
func uleb128n(r io.ByteReader) (uint64, int, error) {
	var v uint64
	for i := 0; i < 10; i++ {
		b, err := r.ReadByte()
		if err != nil {
			return 0, i, err
		}
		v |= uint64(b&0x7f) << (7 * i)
		if b&0x80 == 0 {
			return v, i + 1, nil
		}
	}
	return 0, 10, errors.New("LEB128 value too long")
}
