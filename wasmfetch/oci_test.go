package wasmfetch

import (
	"context"
	"encoding/base64"
	"fmt"
	"github.com/hxds/hxds/wasmfetch/wasmtest"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
)

func TestOCILayouts(t *testing.T) {
	host, _ := newRegistry(t)
	c := newTestCache(t, Options{})
	for _, layout := range []ociLayout{layoutDocker, layoutOCICompat, layoutOCIArtifact} {
		t.Run(layout.String(), func(t *testing.T) {
			repo := "plugins/" + layout.String()
			dig := pushImage(t, host, repo, "v1", layout, testModule)
			path, sum, err := c.Get(context.Background(), Request{URL: "oci://" + host + "/" + repo + ":v1"})
			if err != nil {
				t.Fatal(err)
			}
			if sum != dig {
				t.Errorf("checksum %s, want manifest digest %s", sum, dig)
			}
			b, err := os.ReadFile(path)
			if err != nil || string(b) != string(testModule) {
				t.Fatalf("cached module differs (err %v)", err)
			}
			if !strings.HasSuffix(path, "/"+dig+".wasm") || !strings.HasPrefix(path, c.Dir()+"/"+digestHex([]byte("oci://"+host+"/"+repo))+"/") {
				t.Errorf("path %s not <dir>/<sha256(moduleName)>/<digest>.wasm", path)
			}
			wasmtest.AssertProxyWasm(t, path)
		})
	}
	// no scheme = oci
	if _, _, err := c.Get(context.Background(), Request{URL: host + "/plugins/docker:v1"}); err != nil {
		t.Fatalf("scheme-less URL: %v", err)
	}
}

func TestOCIDigestAndChecksum(t *testing.T) {
	host, _ := newRegistry(t)
	dig := pushImage(t, host, "p/a", "v1", layoutOCIArtifact, testModule)
	c := newTestCache(t, Options{})
	ctx := context.Background()
	// @sha256: in the URL is the checksum
	if _, sum, err := c.Get(ctx, Request{URL: "oci://" + host + "/p/a@sha256:" + dig}); err != nil || sum != dig {
		t.Fatalf("digest URL: sum %s err %v", sum, err)
	}
	// user sha256 equal to the manifest digest
	if _, _, err := c.Get(ctx, Request{URL: "oci://" + host + "/p/a:v1", SHA256: dig}); err != nil {
		t.Fatal(err)
	}
	// user sha256 different from the manifest digest
	c2 := newTestCache(t, Options{})
	_, _, err := c2.Get(ctx, Request{URL: "oci://" + host + "/p/a:v1", SHA256: digestHex(testModule)})
	if err == nil || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Fatalf("err = %v, want checksum mismatch", err)
	}
	// unknown digest
	_, _, err = c2.Get(ctx, Request{URL: "oci://" + host + "/p/a@sha256:" + strings.Repeat("0", 64)})
	if err == nil {
		t.Fatal("unknown digest: want error")
	}
}

// countingHandler counts manifest requests.
type countingHandler struct {
	h         http.Handler
	mu        sync.Mutex
	manifests int
}

func (c *countingHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.Contains(r.URL.Path, "/manifests/") && r.Method == http.MethodGet {
		c.mu.Lock()
		c.manifests++
		c.mu.Unlock()
	}
	c.h.ServeHTTP(w, r)
}

func (c *countingHandler) n() int { c.mu.Lock(); defer c.mu.Unlock(); return c.manifests }

func TestOCILatestAndPullPolicies(t *testing.T) {
	host, h := newRegistry(t)
	ch := &countingHandler{h: h}
	srv := httptest.NewServer(ch)
	t.Cleanup(srv.Close)
	pullHost := strings.TrimPrefix(srv.URL, "http://")
	ctx := context.Background()
	c := newTestCache(t, Options{})

	d1 := pushImage(t, host, "p/l", "latest", layoutOCICompat, testModule)
	pushImage(t, host, "p/l", "v1", layoutOCICompat, testModule)
	get := func(tag, rv string, pol PullPolicy) string {
		t.Helper()
		_, sum, err := c.Get(ctx, Request{URL: "oci://" + pullHost + "/p/l:" + tag, ResourceVersion: rv, PullPolicy: pol})
		if err != nil {
			t.Fatal(err)
		}
		return sum
	}
	if s := get("latest", "1", PullUnspecified); s != d1 {
		t.Fatalf("latest: %s want %s", s, d1)
	}
	if s := get("v1", "1", PullUnspecified); s != d1 || ch.n() != 2 {
		t.Fatalf("v1: %s, manifests %d", s, ch.n())
	}
	d2 := pushImage(t, host, "p/l", "latest", layoutOCICompat, otherModule)
	pushImage(t, host, "p/l", "v1", layoutOCICompat, otherModule)
	// same resourceVersion: :latest (Always) reuses; v1 (IfNotPresent) reuses
	if s := get("latest", "1", PullUnspecified); s != d1 || ch.n() != 2 {
		t.Fatalf("latest, same rv: %s manifests %d", s, ch.n())
	}
	// changed resourceVersion: :latest re-pulls and sees the new image; v1 keeps the old one
	if s := get("latest", "2", PullUnspecified); s != d2 || ch.n() != 3 {
		t.Fatalf("latest, new rv: %s (want %s) manifests %d", s, d2, ch.n())
	}
	if s := get("v1", "2", PullUnspecified); s != d1 || ch.n() != 3 {
		t.Fatalf("v1, new rv: %s manifests %d", s, ch.n())
	}
	// explicit IfNotPresent on :latest reuses
	if s := get("latest", "3", PullIfNotPresent); s != d2 || ch.n() != 3 {
		t.Fatalf("latest IfNotPresent: %s manifests %d", s, ch.n())
	}
	// explicit Always on v1 with a new rv re-pulls
	if s := get("v1", "4", PullAlways); s != d2 || ch.n() != 4 {
		t.Fatalf("v1 Always: %s manifests %d", s, ch.n())
	}
}

func dockerConfig(host, user, pass string) []byte {
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	return []byte(fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, host, auth))
}

func TestOCIPullSecret(t *testing.T) {
	host, h := newRegistry(t)
	dig := pushImage(t, host, "secret/p", "v1", layoutDocker, testModule)
	authSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "alice" || p != "s3cret" {
			w.Header().Set("WWW-Authenticate", `Basic realm="hxds-test"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(authSrv.Close)
	authHost := strings.TrimPrefix(authSrv.URL, "http://")
	url := "oci://" + authHost + "/secret/p:v1"
	ctx := context.Background()

	for name, secret := range map[string][]byte{
		"missing":    nil,
		"wrong":      dockerConfig(authHost, "alice", "nope"),
		"other host": dockerConfig("registry.example.com", "alice", "s3cret"),
	} {
		c := newTestCache(t, Options{})
		if _, _, err := c.Get(ctx, Request{URL: url, PullSecret: secret}); err == nil {
			t.Errorf("%s secret: want error", name)
		}
	}
	c := newTestCache(t, Options{})
	if _, _, err := c.Get(ctx, Request{URL: url, PullSecret: []byte("not json")}); err == nil || !strings.Contains(err.Error(), "docker config") {
		t.Errorf("bad json: err = %v", err)
	}
	for name, secret := range map[string][]byte{
		"auths auth":     dockerConfig(authHost, "alice", "s3cret"),
		"auths user/pwd": []byte(fmt.Sprintf(`{"auths":{"http://%s/v2/":{"username":"alice","password":"s3cret"}}}`, authHost)),
		"dockercfg":      []byte(fmt.Sprintf(`{%q:{"auth":%q}}`, authHost, base64.StdEncoding.EncodeToString([]byte("alice:s3cret")))),
	} {
		c := newTestCache(t, Options{})
		if _, sum, err := c.Get(ctx, Request{URL: url, PullSecret: secret}); err != nil || sum != dig {
			t.Errorf("%s: sum %s err %v", name, sum, err)
		}
	}
}

func TestOCIRegistryDown(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	host := strings.TrimPrefix(srv.URL, "http://")
	srv.Close()
	c := newTestCache(t, Options{})
	_, _, err := c.Get(context.Background(), Request{URL: "oci://" + host + "/p/x:v1"})
	if err == nil {
		t.Fatal("want error")
	}
	errs := c.Errors()
	if len(errs) != 1 || errs[0].URL != "oci://"+host+"/p/x:v1" {
		t.Errorf("Errors() = %+v", errs)
	}
	// a missing repository is an error as well
	host2, _ := newRegistry(t)
	if _, _, err := c.Get(context.Background(), Request{URL: "oci://" + host2 + "/p/none:v1"}); err == nil {
		t.Error("missing repo: want error")
	}
}

func TestOCIUnsupportedImage(t *testing.T) {
	host, _ := newRegistry(t)
	// OCI compat layout whose layer has no plugin.wasm
	pushImage(t, host, "p/bad", "v1", layoutOCICompat, nil)
	c := newTestCache(t, Options{})
	if _, _, err := c.Get(context.Background(), Request{URL: "oci://" + host + "/p/bad:v1"}); err == nil || !strings.Contains(err.Error(), "unsupported OCI image") {
		t.Errorf("err = %v", err)
	}
}
