package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3" // typed_extension_protocol_options
	"google.golang.org/protobuf/encoding/protojson"
	"sigs.k8s.io/yaml"
)

// TestRealEnvoy runs a stock Envoy (ENVOY_BIN) with the bundled bootstraps
// against the hxds binary and sends HTTP and HTTPS requests through it to a
// local backend. hxds serves the gateway on free high ports
// (--gateway-http-port/--gateway-https-port) so nothing needs privileges.
func TestRealEnvoy(t *testing.T) {
	envoyBin := os.Getenv("ENVOY_BIN")
	if envoyBin == "" {
		t.Skip("ENVOY_BIN is not set: set it to a stock Envoy binary to send traffic through a real Envoy (none is installed here)")
	}
	for _, tc := range []struct{ name, bootstrap string }{
		{"sotw", "bootstrap.yaml"},
		{"delta", "bootstrap-delta.yaml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			testRealEnvoy(t, envoyBin, tc.bootstrap)
		})
	}
}

func testRealEnvoy(t *testing.T, envoyBin, bootstrapFile string) {
	// The backend of Service demo/echo: its port goes into the EndpointSlice.
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "echo backend: %s %s", r.Host, r.URL.Path)
	}))
	t.Cleanup(backend.Close)
	backendPort := backend.Listener.Addr().(*net.TCPAddr).Port

	dir := copyQuickstart(t)
	editFile(t, dir, "10-services.yaml", "ports: [{name: http, port: 8080}]", fmt.Sprintf("ports: [{name: http, port: %d}]", backendPort))
	httpPort, httpsPort := freePort(t), freePort(t)
	h, _ := startHxdsBinary(t, dir, "--gateway-http-port", strconv.Itoa(int(httpPort)), "--gateway-https-port", strconv.Itoa(int(httpsPort)))

	_, xdsPort, err := net.SplitHostPort(h.xds)
	if err != nil {
		t.Fatal(err)
	}
	adminPort := freePort(t)
	bootstrap := envoyBootstrap(t, bootstrapFile, xdsPort, adminPort)
	envoy := startProc(t, "envoy", envoyBin, "-c", bootstrap, "--disable-hot-restart", "--concurrency", "1", "--log-level", "info")

	// Envoy's own view: both listeners active.
	httpListener, httpsListener := fmt.Sprintf("0.0.0.0_%d", httpPort), fmt.Sprintf("0.0.0.0_%d", httpsPort)
	waitUntil(t, "Envoy's /config_dump shows the listeners", func() (bool, string) {
		if envoy.exited() {
			t.Fatalf("envoy exited: %v\n%s", envoy.err, envoy.out.String())
		}
		active, err := envoyActiveListeners(fmt.Sprintf("http://127.0.0.1:%d/config_dump", adminPort))
		if err != nil {
			return false, err.Error()
		}
		return active[httpListener] && active[httpsListener], fmt.Sprint(active)
	})

	// HTTP through Envoy to the backend.
	var body string
	waitUntil(t, "HTTP through Envoy", func() (bool, string) {
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/hello", httpPort), nil)
		req.Host = "echo.example.com"
		code, b, err := do(httpClient, req)
		body = b
		return err == nil && code == http.StatusOK, fmt.Sprintf("%d %q %v", code, b, err)
	})
	if want := "echo backend: echo.example.com /hello"; body != want {
		t.Errorf("body %q, want %q", body, want)
	}

	// HTTPS: SNI secure.example.com, the quickstart's certificate over SDS.
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(quickstartCertificate(t)) {
		t.Fatal("cannot parse the quickstart certificate")
	}
	tlsClient := &http.Client{Timeout: httpTimeout, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{ServerName: "secure.example.com", RootCAs: roots},
	}}
	waitUntil(t, "HTTPS through Envoy", func() (bool, string) {
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("https://127.0.0.1:%d/secure", httpsPort), nil)
		req.Host = "secure.example.com"
		code, b, err := do(tlsClient, req)
		body = b
		return err == nil && code == http.StatusOK, fmt.Sprintf("%d %q %v", code, b, err)
	})
	if want := "echo backend: secure.example.com /secure"; body != want {
		t.Errorf("HTTPS body %q, want %q", body, want)
	}

	// Envoy ACKed everything it was sent.
	waitUntil(t, "Envoy's ACKs in /debug/connections", func() (bool, string) {
		c := h.connection(t, "envoy-1")
		if c == nil {
			return false, "envoy-1 not connected"
		}
		for _, typ := range allTypes {
			ts := typeStatus(c, typ)
			if ts.LastNack != nil {
				t.Fatalf("Envoy NACKed %s: %s", short(typ), ts.LastNack.Error)
			}
			if ts.SentVersion == "" || ts.AckedVersion != ts.SentVersion {
				return false, fmt.Sprintf("%s: %+v", short(typ), ts)
			}
		}
		return true, ""
	})
}

// envoyBootstrap writes the bundled bootstrap, pointed at an hxds ADS port
// and with another admin port, into a temporary file and returns its path.
func envoyBootstrap(t testing.TB, file, xdsPort string, adminPort uint32) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "deploy", "envoy", file))
	if err != nil {
		t.Fatal(err)
	}
	bs := replaceOnce(t, string(raw), "port_value: 15010", "port_value: "+xdsPort)
	bs = replaceOnce(t, bs, "port_value: 9901", fmt.Sprintf("port_value: %d", adminPort))
	path := filepath.Join(t.TempDir(), file)
	if err := os.WriteFile(path, []byte(bs), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestEnvoyBootstrapAdapted checks, without Envoy, what TestRealEnvoy gives
// Envoy: the adapted bootstraps parse strictly, pass Envoy's proto
// validation and point at the given ports.
func TestEnvoyBootstrapAdapted(t *testing.T) {
	t.Parallel()
	for _, file := range []string{"bootstrap.yaml", "bootstrap-delta.yaml"} {
		path := envoyBootstrap(t, file, "12345", 23456)
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		js, err := yaml.YAMLToJSON(raw)
		if err != nil {
			t.Fatal(err)
		}
		bs := &bootstrapv3.Bootstrap{}
		if err := protojson.Unmarshal(js, bs); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if err := bs.ValidateAll(); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		xds := bs.GetStaticResources().GetClusters()[0].GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress()
		admin := bs.GetAdmin().GetAddress().GetSocketAddress()
		if xds.GetAddress() != "127.0.0.1" || xds.GetPortValue() != 12345 || admin.GetPortValue() != 23456 {
			t.Errorf("%s: ADS at %s:%d, admin port %d", file, xds.GetAddress(), xds.GetPortValue(), admin.GetPortValue())
		}
		if bs.GetNode().GetCluster() != defaultGroup || !bs.GetDynamicResources().GetAdsConfig().GetSetNodeOnFirstMessageOnly() {
			t.Errorf("%s: node %v", file, bs.GetNode())
		}
	}
}

func replaceOnce(t testing.TB, s, old, new string) string {
	t.Helper()
	if n := strings.Count(s, old); n != 1 {
		t.Fatalf("bootstrap has %d occurrences of %q, want 1", n, old)
	}
	return strings.Replace(s, old, new, 1)
}

func do(c *http.Client, req *http.Request) (int, string, error) {
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// envoyActiveListeners reads Envoy's admin /config_dump and returns the
// dynamic listeners that have an active state.
func envoyActiveListeners(url string) (map[string]bool, error) {
	resp, err := httpClient.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var dump struct {
		Configs []struct {
			Type             string `json:"@type"`
			DynamicListeners []struct {
				Name        string          `json:"name"`
				ActiveState json.RawMessage `json:"active_state"`
			} `json:"dynamic_listeners"`
		} `json:"configs"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&dump); err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, c := range dump.Configs {
		if !strings.HasSuffix(c.Type, "ListenersConfigDump") {
			continue
		}
		for _, l := range c.DynamicListeners {
			out[l.Name] = len(l.ActiveState) > 0
		}
	}
	return out, nil
}

// quickstartCertificate returns the PEM certificate of the quickstart's TLS Secret.
func quickstartCertificate(t testing.TB) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(quickstartPath, "20-tls-secret.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`tls\.crt:\s*(\S+)`).FindSubmatch(raw)
	if m == nil {
		t.Fatal("no tls.crt in the quickstart Secret")
	}
	pem, err := base64.StdEncoding.DecodeString(string(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	return pem
}
