package direct

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/hxds/hxds/discovery"
	"github.com/hxds/hxds/discovery/discoverytest"
	"github.com/hxds/hxds/internal/api"
)

func TestParseStatic(t *testing.T) {
	for _, tc := range []struct {
		domain string
		want   string // endpoints joined by ",", or "" for an error
	}{
		{"10.0.0.1:80", "10.0.0.1:80"},
		{"10.0.0.2:80, 10.0.0.1:8080", "10.0.0.1:8080,10.0.0.2:80"},
		{"[::1]:80", "::1:80"},
		{"[2001:db8::1]:443,10.0.0.1:443", "10.0.0.1:443,2001:db8::1:443"},
		{"[::ffff:10.0.0.1]:80", "10.0.0.1:80"},
		{"10.0.0.1:80,,", "10.0.0.1:80"},
		{" , 10.0.0.1:80 , ", "10.0.0.1:80"},
		{"10.0.0.1:80,10.0.0.1:80", "10.0.0.1:80"},
		{"10.0.0.1:80,10.0.0.1:81", "10.0.0.1:80,10.0.0.1:81"},
		{"", ""},
		{" , ", ""},
		{"10.0.0.1", ""},
		{"10.0.0.1:", ""},
		{"10.0.0.1:0", ""},
		{"10.0.0.1:65536", ""},
		{"10.0.0.1:-1", ""},
		{"10.0.0.1:http", ""},
		{"10.0.0.1:80,bogus", ""},
		{"::1:80", ""},
		{"[fe80::1%eth0]:80", ""},
		{"example.com:80", ""},
		{"10.0.0.256:80", ""},
	} {
		ins, err := parseStatic(tc.domain)
		if tc.want == "" {
			if err == nil {
				t.Errorf("%q: want an error, got %v", tc.domain, ins)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.domain, err)
			continue
		}
		discovery.SortInstances(ins)
		got := strings.Join(discoverytest.Endpoints(discovery.Service{Instances: ins}), ",")
		if got != tc.want {
			t.Errorf("%q: %s, want %s", tc.domain, got, tc.want)
		}
		for _, in := range ins {
			if in.Weight != 1 {
				t.Errorf("%q: weight %d", tc.domain, in.Weight)
			}
		}
	}
}

func TestParseDNS(t *testing.T) {
	for _, tc := range []struct {
		domain string
		want   string // names joined by ",", or "" for an error
	}{
		{"example.com", "example.com"},
		{"a.example.com, b.example.com", "a.example.com,b.example.com"},
		{"example.com.", "example.com"},
		{"localhost", "localhost"},
		{"my-svc.ns.svc.cluster.local", "my-svc.ns.svc.cluster.local"},
		{"_grpc.example.com", "_grpc.example.com"},
		{"example.com,EXAMPLE.com", "example.com"},
		{"example.com,,", "example.com"},
		{"", ""},
		{",", ""},
		{"example.com:443", ""},
		{"-bad.example.com", ""},
		{"bad-.example.com", ""},
		{"a..b", ""},
		{".example.com", ""},
		{"exa mple.com", ""},
		{"http://example.com", ""},
		{"example.com/path", ""},
		{strings.Repeat("a", 64) + ".com", ""},
		{strings.Repeat("a.", 127) + "com", ""},
		{"ünïcode.com", ""},
	} {
		names, err := parseDNS(tc.domain)
		if tc.want == "" {
			if err == nil {
				t.Errorf("%q: want an error, got %v", tc.domain, names)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.domain, err)
			continue
		}
		if got := strings.Join(names, ","); got != tc.want {
			t.Errorf("%q: %s, want %s", tc.domain, got, tc.want)
		}
	}
}

func TestNewServices(t *testing.T) {
	for _, tc := range []struct {
		name    string
		factory discovery.Factory
		reg     api.RegistryConfig
		wantErr bool
		want    discovery.Service
	}{
		{
			name: "static default http", factory: NewStatic,
			reg: api.RegistryConfig{Name: "infra-backend-v1-ip", Domain: "10.0.0.2:8080,10.0.0.1:8080", Port: 80},
			want: discovery.Service{Host: "infra-backend-v1-ip.static", Port: 80, Protocol: discovery.ProtocolHTTP, Resolution: discovery.Static,
				Instances: []discovery.Instance{{Address: "10.0.0.1", Port: 8080, Weight: 1}, {Address: "10.0.0.2", Port: 8080, Weight: 1}}},
		},
		{
			name: "static https with sni", factory: NewStatic,
			reg: api.RegistryConfig{Name: "s", Domain: "[::1]:8443", Port: 443, Protocol: "HTTPS", SNI: "api.example.com"},
			want: discovery.Service{Host: "s.static", Port: 443, Protocol: discovery.ProtocolHTTPS, SNI: "api.example.com", Resolution: discovery.Static,
				Instances: []discovery.Instance{{Address: "::1", Port: 8443, Weight: 1}}},
		},
		{
			name: "static triple is grpc, sni ignored without tls", factory: NewStatic,
			reg: api.RegistryConfig{Name: "s", Domain: "10.0.0.1:50051", Port: 50051, Protocol: "triple", SNI: "x.example.com"},
			want: discovery.Service{Host: "s.static", Port: 50051, Protocol: discovery.ProtocolGRPC, Resolution: discovery.Static,
				Instances: []discovery.Instance{{Address: "10.0.0.1", Port: 50051, Weight: 1}}},
		},
		{
			name: "dns one name https: sni defaults to it", factory: NewDNS,
			reg: api.RegistryConfig{Name: "infra-backend-v1", Domain: "api.example.com", Port: 443, Protocol: "https"},
			want: discovery.Service{Host: "infra-backend-v1.dns", Port: 443, Protocol: discovery.ProtocolHTTPS, SNI: "api.example.com", Resolution: discovery.DNS,
				Instances: []discovery.Instance{{Address: "api.example.com", Port: 443, Weight: 1}}},
		},
		{
			name: "dns one name grpcs: sni defaults to it", factory: NewDNS,
			reg: api.RegistryConfig{Name: "g", Domain: "grpc.example.com", Port: 443, Protocol: "grpcs"},
			want: discovery.Service{Host: "g.dns", Port: 443, Protocol: discovery.ProtocolGRPCS, SNI: "grpc.example.com", Resolution: discovery.DNS,
				Instances: []discovery.Instance{{Address: "grpc.example.com", Port: 443, Weight: 1}}},
		},
		{
			name: "dns explicit sni wins", factory: NewDNS,
			reg: api.RegistryConfig{Name: "d", Domain: "api.example.com", Port: 443, Protocol: "https", SNI: "other.example.com"},
			want: discovery.Service{Host: "d.dns", Port: 443, Protocol: discovery.ProtocolHTTPS, SNI: "other.example.com", Resolution: discovery.DNS,
				Instances: []discovery.Instance{{Address: "api.example.com", Port: 443, Weight: 1}}},
		},
		{
			name: "dns two names https: no default sni", factory: NewDNS,
			reg: api.RegistryConfig{Name: "d", Domain: "b.example.com,a.example.com", Port: 443, Protocol: "https"},
			want: discovery.Service{Host: "d.dns", Port: 443, Protocol: discovery.ProtocolHTTPS, Resolution: discovery.DNS,
				Instances: []discovery.Instance{{Address: "a.example.com", Port: 443, Weight: 1}, {Address: "b.example.com", Port: 443, Weight: 1}}},
		},
		{
			name: "dns one name http: no sni", factory: NewDNS,
			reg: api.RegistryConfig{Name: "d", Domain: "api.example.com", Port: 80},
			want: discovery.Service{Host: "d.dns", Port: 80, Protocol: discovery.ProtocolHTTP, Resolution: discovery.DNS,
				Instances: []discovery.Instance{{Address: "api.example.com", Port: 80, Weight: 1}}},
		},
		{name: "unknown protocol", factory: NewStatic, reg: api.RegistryConfig{Name: "s", Domain: "10.0.0.1:80", Port: 80, Protocol: "smtp"}, wantErr: true},
		{name: "dns unknown protocol", factory: NewDNS, reg: api.RegistryConfig{Name: "s", Domain: "a.com", Port: 80, Protocol: "quic"}, wantErr: true},
		{name: "no name", factory: NewStatic, reg: api.RegistryConfig{Domain: "10.0.0.1:80", Port: 80}, wantErr: true},
		{name: "bad name", factory: NewDNS, reg: api.RegistryConfig{Name: "a b", Domain: "a.com", Port: 80}, wantErr: true},
		{name: "no port", factory: NewStatic, reg: api.RegistryConfig{Name: "s", Domain: "10.0.0.1:80"}, wantErr: true},
		{name: "port too big", factory: NewDNS, reg: api.RegistryConfig{Name: "s", Domain: "a.com", Port: 70000}, wantErr: true},
		{name: "static bad entry", factory: NewStatic, reg: api.RegistryConfig{Name: "s", Domain: "10.0.0.1:80,nope", Port: 80}, wantErr: true},
		{name: "dns bad entry", factory: NewDNS, reg: api.RegistryConfig{Name: "s", Domain: "a.com,b.com:80", Port: 80}, wantErr: true},
		{name: "static empty domain", factory: NewStatic, reg: api.RegistryConfig{Name: "s", Port: 80}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, err := tc.factory(discovery.Config{Registry: tc.reg}, discoverytest.NewRecorder(), zaptest.NewLogger(t))
			if tc.wantErr {
				if err == nil {
					t.Fatalf("want an error, got %+v", w.(*Watcher).Service())
				}
				t.Logf("error: %v", err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := w.(*Watcher).Service()
			if !equalService(got, tc.want) {
				t.Errorf("service\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func equalService(a, b discovery.Service) bool {
	if a.Host != b.Host || a.Port != b.Port || a.Protocol != b.Protocol || a.SNI != b.SNI || a.Resolution != b.Resolution || len(a.Instances) != len(b.Instances) {
		return false
	}
	for i := range a.Instances {
		x, y := a.Instances[i], b.Instances[i]
		if x.Address != y.Address || x.Port != y.Port || x.Weight != y.Weight || len(x.Metadata) != len(y.Metadata) {
			return false
		}
	}
	return true
}

func TestRunPublishesOnceAndReturnsOnCancel(t *testing.T) {
	for _, tc := range []struct {
		factory discovery.Factory
		reg     api.RegistryConfig
		host    string
	}{
		{NewStatic, api.RegistryConfig{Type: "static", Name: "s", Domain: "127.0.0.1:8080", Port: 80}, "s.static"},
		{NewDNS, api.RegistryConfig{Type: "dns", Name: "d", Domain: "localhost", Port: 80}, "d.dns"},
	} {
		rec := discoverytest.NewRecorder()
		w, err := tc.factory(discovery.Config{Registry: tc.reg}, rec, zaptest.NewLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		got := rec.WaitFor(t, 5*time.Second, tc.host, func(s map[string]discovery.Service) bool { _, ok := s[tc.host]; return ok })
		if len(got) != 1 || len(got[tc.host].Instances) != 1 {
			t.Errorf("published %s", discoverytest.Describe(got))
		}
		// Ready and healthy as soon as Run has published.
		deadline := time.Now().Add(5 * time.Second)
		for st := w.Status(); !st.Ready || !st.Healthy; st = w.Status() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: status %+v after publishing", tc.host, st)
			}
			time.Sleep(time.Millisecond)
		}
		time.Sleep(50 * time.Millisecond)
		if n := rec.Calls("replace") + rec.Calls("update") + rec.Calls("remove"); n != 1 {
			t.Errorf("%s: %d publications, want 1", tc.host, n)
		}
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("Run did not return after cancel")
		}
	}
}
