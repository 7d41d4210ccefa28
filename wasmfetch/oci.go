package wasmfetch

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
)

// Media types understood by the OCI fetcher.
const (
	MediaTypeDockerManifest  = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	MediaTypeOCILayerGzip    = "application/vnd.oci.image.layer.v1.tar+gzip"
	MediaTypeWasmContent     = "application/vnd.module.wasm.content.layer.v1+wasm"
	mediaTypeDockerList      = "application/vnd.docker.distribution.manifest.list.v2+json"
	maxManifestBytes         = 4 << 20
)

// fetchOCI pulls the module of src and returns it with the hex manifest digest.
func (c *Cache) fetchOCI(ctx context.Context, src *source, secret []byte) ([]byte, string, error) {
	repo, err := remote.NewRepository(src.host + "/" + src.repository)
	if err != nil {
		return nil, "", fmt.Errorf("bad OCI reference: %w", err)
	}
	repo.PlainHTTP = isLoopbackHost(src.host) || c.insecureHost(src.host)
	client := &auth.Client{Client: c.clientFor(src.host), Cache: auth.NewCache()}
	if secret != nil {
		cred, err := credentialsFromDockerConfig(secret)
		if err != nil {
			return nil, "", err
		}
		client.Credential = cred
	}
	repo.Client = client

	desc, rc, err := repo.FetchReference(ctx, src.reference())
	if err != nil {
		return nil, "", fmt.Errorf("fetch manifest: %w", err)
	}
	if desc.Size > maxManifestBytes {
		rc.Close()
		return nil, "", fmt.Errorf("manifest of %d bytes is too large", desc.Size)
	}
	mb, err := content.ReadAll(rc, desc)
	rc.Close()
	if err != nil {
		return nil, "", fmt.Errorf("read manifest: %w", err)
	}
	if desc.Digest.Algorithm() != digest.SHA256 {
		return nil, "", fmt.Errorf("unsupported manifest digest algorithm %s", desc.Digest.Algorithm())
	}
	sum := desc.Digest.Encoded()
	if src.digest != "" && src.digest != sum {
		return nil, "", fmt.Errorf("checksum mismatch: manifest digest %s, URL digest %s", sum, src.digest)
	}

	var m ocispec.Manifest
	if err := json.Unmarshal(mb, &m); err != nil {
		return nil, "", fmt.Errorf("parse manifest: %w", err)
	}
	mt := desc.MediaType
	if m.MediaType != "" {
		mt = m.MediaType
	}
	switch mt {
	case ocispec.MediaTypeImageIndex, mediaTypeDockerList:
		return nil, "", fmt.Errorf("manifest %s is an image index; a single-image manifest is required", mt)
	}
	if len(m.Layers) == 0 {
		return nil, "", errors.New("image has no layers")
	}
	fetchLayer := func(l ocispec.Descriptor) ([]byte, error) {
		if l.Size > c.opts.MaxModuleSize {
			return nil, fmt.Errorf("layer %s: %w of %d bytes", l.Digest, errTooLarge, c.opts.MaxModuleSize)
		}
		b, err := content.FetchAll(ctx, repo, l)
		if err != nil {
			return nil, fmt.Errorf("fetch layer %s: %w", l.Digest, err)
		}
		return b, nil
	}

	last := m.Layers[len(m.Layers)-1]
	if mt == MediaTypeDockerManifest {
		// Docker compat image.
		if last.MediaType != MediaTypeDockerLayerGzip {
			return nil, "", fmt.Errorf("docker image: last layer has media type %q, want %q", last.MediaType, MediaTypeDockerLayerGzip)
		}
		b, err := fetchLayer(last)
		if err != nil {
			return nil, "", err
		}
		w, err := extractPluginWasm(b, c.opts.MaxModuleSize)
		if err != nil {
			return nil, "", fmt.Errorf("docker image: %w", err)
		}
		return w, sum, nil
	}
	// OCI compat image first, then the OCI artifact layout.
	var compatErr error
	if last.MediaType == MediaTypeOCILayerGzip {
		b, err := fetchLayer(last)
		if err != nil {
			return nil, "", err
		}
		w, err := extractPluginWasm(b, c.opts.MaxModuleSize)
		if err == nil {
			return w, sum, nil
		}
		compatErr = err
	} else {
		compatErr = fmt.Errorf("last layer has media type %q, want %q", last.MediaType, MediaTypeOCILayerGzip)
	}
	if len(m.Layers) != 2 {
		return nil, "", fmt.Errorf("unsupported OCI image: compat layout: %v; artifact layout: number of layers must be 2 but got %d", compatErr, len(m.Layers))
	}
	for _, l := range m.Layers {
		if l.MediaType == MediaTypeWasmContent {
			b, err := fetchLayer(l)
			if err != nil {
				return nil, "", err
			}
			return b, sum, nil
		}
	}
	return nil, "", fmt.Errorf("unsupported OCI image: compat layout: %v; artifact layout: no layer of media type %q", compatErr, MediaTypeWasmContent)
}

type dockerAuthEntry struct {
	Auth          string `json:"auth"`
	Username      string `json:"username"`
	Password      string `json:"password"`
	IdentityToken string `json:"identitytoken"`
	RegistryToken string `json:"registrytoken"`
}

// credentialsFromDockerConfig parses a docker config JSON ({"auths": {host: {...}}}) or a legacy
// .dockercfg map ({host: {...}}) into an oras credential function.
func credentialsFromDockerConfig(b []byte) (auth.CredentialFunc, error) {
	var cfg struct {
		Auths map[string]dockerAuthEntry `json:"auths"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, fmt.Errorf("pull secret is not docker config JSON: %w", err)
	}
	entries := cfg.Auths
	if entries == nil {
		if err := json.Unmarshal(b, &entries); err != nil {
			return nil, errors.New("pull secret is not docker config JSON: no \"auths\"")
		}
	}
	creds := map[string]auth.Credential{}
	for key, e := range entries {
		cred := auth.Credential{Username: e.Username, Password: e.Password, RefreshToken: e.IdentityToken, AccessToken: e.RegistryToken}
		if e.Auth != "" {
			dec, err := base64.StdEncoding.DecodeString(e.Auth)
			if err != nil {
				return nil, fmt.Errorf("pull secret: bad auth for %q: %w", key, err)
			}
			u, p, ok := strings.Cut(string(dec), ":")
			if !ok {
				return nil, fmt.Errorf("pull secret: auth for %q is not user:password", key)
			}
			cred.Username, cred.Password = u, p
		}
		creds[normalizeRegistryKey(key)] = cred
	}
	return func(_ context.Context, hostport string) (auth.Credential, error) {
		if c, ok := creds[hostport]; ok {
			return c, nil
		}
		if hostport == "registry-1.docker.io" {
			for _, k := range []string{"index.docker.io", "docker.io"} {
				if c, ok := creds[k]; ok {
					return c, nil
				}
			}
		}
		return auth.EmptyCredential, nil
	}, nil
}

func normalizeRegistryKey(k string) string {
	if strings.Contains(k, "://") {
		if u, err := url.Parse(k); err == nil && u.Host != "" {
			return u.Host
		}
	}
	host, _, _ := strings.Cut(k, "/")
	return host
}

// digestHex returns the hex sha256 of b (helper shared with tests).
func digestHex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
