package wasmfetch

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"path"
	"strings"
)

// source is a parsed module URL.
type source struct {
	scheme     string // oci, http, https, file
	host       string // host[:port] (oci, http(s))
	repository string // oci: repository path
	tag        string // oci: tag ("latest" when neither tag nor digest given)
	digest     string // oci: hex sha256 digest from "@sha256:..."
	filePath   string // file: local path
	moduleName string // cache module name (oci: URL without tag/digest; else the URL)
}

func parseSource(raw string) (*source, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, errors.New("wasmfetch: empty URL")
	}
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		scheme, rest = "oci", raw
	}
	scheme = strings.ToLower(scheme)
	switch scheme {
	case "file":
		u, err := url.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("wasmfetch: bad URL %q: %w", raw, err)
		}
		p := u.Path
		if u.Host != "" && u.Host != "localhost" { // file://relative/path is treated as host+path
			p = u.Host + u.Path
		}
		if p == "" {
			return nil, fmt.Errorf("wasmfetch: bad URL %q: empty path", raw)
		}
		return &source{scheme: scheme, filePath: p, moduleName: raw}, nil
	case "http", "https":
		u, err := url.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("wasmfetch: bad URL %q: %w", raw, err)
		}
		if u.Host == "" {
			return nil, fmt.Errorf("wasmfetch: bad URL %q: no host", raw)
		}
		return &source{scheme: scheme, host: u.Host, moduleName: raw}, nil
	case "oci":
		return parseOCI(rest)
	default:
		return nil, fmt.Errorf("wasmfetch: unsupported URL scheme %q in %q", scheme, raw)
	}
}

func parseOCI(ref string) (*source, error) {
	s := &source{scheme: "oci"}
	name := ref
	if i := strings.Index(name, "@"); i >= 0 {
		d := name[i+1:]
		name = name[:i]
		alg, hexd, ok := strings.Cut(d, ":")
		if !ok || alg != "sha256" || len(hexd) != 64 || strings.Trim(strings.ToLower(hexd), "0123456789abcdef") != "" {
			return nil, fmt.Errorf("wasmfetch: bad OCI digest %q in %q", d, ref)
		}
		s.digest = strings.ToLower(hexd)
	}
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		s.tag = name[i+1:]
		name = name[:i]
	}
	if s.tag == "" && s.digest == "" {
		s.tag = "latest"
	}
	host, repo, ok := strings.Cut(name, "/")
	if !ok || host == "" || repo == "" {
		return nil, fmt.Errorf("wasmfetch: bad OCI reference %q: want host/repository[:tag][@sha256:digest]", ref)
	}
	s.host, s.repository = host, repo
	s.moduleName = "oci://" + name
	return s, nil
}

// reference returns the tag or digest to resolve (the digest wins).
func (s *source) reference() string {
	if s.digest != "" {
		return "sha256:" + s.digest
	}
	return s.tag
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.Trim(hostport, "[]")
}

func isLoopbackHost(hostport string) bool {
	h := hostOnly(hostport)
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func newInsecureTLS() *tls.Config {
	return &tls.Config{InsecureSkipVerify: true} //nolint:gosec // only for hosts listed in InsecureRegistries
}

var wasmMagic = []byte{0x00, 'a', 's', 'm'}

func validateWasm(b []byte) error {
	if len(b) < 8 || !bytes.Equal(b[:4], wasmMagic) {
		return errors.New("module is not a Wasm binary (missing \\0asm magic or shorter than 8 bytes)")
	}
	return nil
}

// unpack gunzips gzip data and takes the first regular file of a tar archive; anything else is
// returned unchanged. max caps the unpacked size.
func unpack(b []byte, max int64) ([]byte, error) {
	if len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("gunzip: %w", err)
		}
		out, err := readCapped(zr, max)
		if err != nil {
			return nil, fmt.Errorf("gunzip: %w", err)
		}
		b = out
	}
	if isTar(b) {
		tr := tar.NewReader(bytes.NewReader(b))
		for {
			hdr, err := tr.Next()
			if err == io.EOF {
				return nil, errors.New("tar archive holds no regular file")
			}
			if err != nil {
				return nil, fmt.Errorf("untar: %w", err)
			}
			if hdr.Typeflag == tar.TypeReg {
				return readCapped(tr, max)
			}
		}
	}
	return b, nil
}

func isTar(b []byte) bool {
	return len(b) >= 262 && string(b[257:262]) == "ustar"
}

// extractPluginWasm returns the file plugin.wasm from a tar.gz layer.
func extractPluginWasm(layer []byte, max int64) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(layer))
	if err != nil {
		return nil, fmt.Errorf("layer is not gzip: %w", err)
	}
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil, errors.New("plugin.wasm not found in the image layer")
		}
		if err != nil {
			return nil, fmt.Errorf("untar layer: %w", err)
		}
		if hdr.Typeflag == tar.TypeReg && path.Clean(strings.TrimPrefix(hdr.Name, "/")) == "plugin.wasm" {
			return readCapped(tr, max)
		}
	}
}

var errTooLarge = errors.New("module exceeds the size limit")

func readCapped(r io.Reader, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%w of %d bytes", errTooLarge, max)
	}
	return b, nil
}
