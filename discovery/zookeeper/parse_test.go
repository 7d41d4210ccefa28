package zookeeper

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

func TestParseDubboProvider(t *testing.T) {
	const iface = "com.example.Demo"
	enc := url.QueryEscape
	for _, tc := range []struct {
		name, node string
		host, addr string
		port       uint32
		weight     uint32
		md         map[string]string
		err        string // "" ok; "skip" errSkip; else substring
	}{
		{name: "encoded", node: enc("dubbo://10.0.0.1:20880/com.example.Demo?version=1.0.0&group=g&side=provider"),
			host: "providers:com.example.Demo:1.0.0:g.zookeeper", addr: "10.0.0.1", port: 20880, weight: 100,
			md: map[string]string{"version": "1.0.0", "group": "g", "side": "provider", "protocol": "dubbo"}},
		{name: "raw, defaults", node: "dubbo://10.0.0.1:20880/com.example.Demo",
			host: "providers:com.example.Demo:0.0.0:.zookeeper", addr: "10.0.0.1", port: 20880, weight: 100, md: map[string]string{"protocol": "dubbo"}},
		{name: "empty version", node: enc("dubbo://h:1/x?version="), host: "providers:com.example.Demo:0.0.0:.zookeeper", addr: "h", port: 1, weight: 100},
		{name: "multi-valued dropped", node: enc("dubbo://10.0.0.1:1/x?a=1&a=2&b=3&protocol=tri"),
			host: "providers:com.example.Demo:0.0.0:.zookeeper", addr: "10.0.0.1", port: 1, weight: 100, md: map[string]string{"b": "3", "protocol": "dubbo"}},
		{name: "ipv6", node: enc("dubbo://[fe80::1]:20880/x"), host: "providers:com.example.Demo:0.0.0:.zookeeper", addr: "fe80::1", port: 20880, weight: 100},
		{name: "weight", node: enc("dubbo://h:1/x?weight=7"), host: "providers:com.example.Demo:0.0.0:.zookeeper", addr: "h", port: 1, weight: 7},
		{name: "weight zero", node: enc("dubbo://h:1/x?weight=0"), host: "providers:com.example.Demo:0.0.0:.zookeeper", addr: "h", port: 1, weight: 1},
		{name: "weight huge", node: enc("dubbo://h:1/x?weight=99999999999999999999"), host: "providers:com.example.Demo:0.0.0:.zookeeper", addr: "h", port: 1, weight: 100},
		{name: "weight big", node: enc("dubbo://h:1/x?weight=1000000"), host: "providers:com.example.Demo:0.0.0:.zookeeper", addr: "h", port: 1, weight: maxWeight},
		{name: "stray percent keeps the rest", node: enc("dubbo://h:1/x?a=50%&version=2"), host: "providers:com.example.Demo:2:.zookeeper", addr: "h", port: 1, weight: 100},
		{name: "bad escape used raw", node: "dubbo://h:1/x?v=%zz&version=3", host: "providers:com.example.Demo:3:.zookeeper", addr: "h", port: 1, weight: 100},
		{name: "tri", node: enc("tri://10.0.0.1:50051/x"), err: "skip"},
		{name: "rest", node: enc("rest://10.0.0.1:8080/x"), err: "skip"},
		{name: "disabled", node: enc("dubbo://10.0.0.1:1/x?enabled=false"), err: "skip"},
		{name: "no port", node: enc("dubbo://10.0.0.1/x"), err: "port"},
		{name: "port zero", node: enc("dubbo://10.0.0.1:0/x"), err: "port"},
		{name: "port big", node: enc("dubbo://10.0.0.1:65536/x"), err: "port"},
		{name: "no host", node: enc("dubbo://:20880/x"), err: "no address"},
		{name: "empty", node: "", err: "skip"},
		{name: "garbage", node: "%%%", err: "provider URL"},
		{name: "control chars", node: "dubbo://h:1/x?version=\x00", err: "provider URL"},
		{name: "pipe in group", node: enc("dubbo://h:1/x?group=a|b"), err: "contains"},
		{name: "space in version", node: enc("dubbo://h:1/x?version=1 0"), err: "contains"},
		{name: "bad url", node: "dubbo://[::1/x", err: "provider URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host, in, err := parseDubboProvider(iface, tc.node)
			switch {
			case tc.err == "skip":
				if !errors.Is(err, errSkip) {
					t.Fatalf("err = %v, want skip", err)
				}
				return
			case tc.err != "":
				if err == nil || errors.Is(err, errSkip) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			if host != tc.host || in.Address != tc.addr || in.Port != tc.port || in.Weight != tc.weight {
				t.Fatalf("got %s %+v", host, in)
			}
			for k, v := range tc.md {
				if in.Metadata[k] != v {
					t.Fatalf("metadata %v, want %s=%s", in.Metadata, k, v)
				}
			}
			if tc.md != nil && len(in.Metadata) != len(tc.md) {
				t.Fatalf("metadata %v, want %v", in.Metadata, tc.md)
			}
		})
	}
}

func TestParseSpringInstance(t *testing.T) {
	for _, tc := range []struct {
		name, json string
		addr       string
		port       uint32
		md         map[string]string
		err        string
	}{
		{name: "curator", json: `{"name":"svc","id":"1","address":"10.0.0.1","port":8080,"sslPort":null,"payload":{"@class":"org.springframework.cloud.zookeeper.discovery.ZookeeperInstance","id":"a","name":"svc","metadata":{"instance_status":"UP","protocol":"grpc"}},"registrationTimeUTC":1,"serviceType":"DYNAMIC","uriSpec":{"parts":[]}}`,
			addr: "10.0.0.1", port: 8080, md: map[string]string{"instance_status": "UP", "protocol": "grpc"}},
		{name: "no payload", json: `{"address":"h.example","port":1}`, addr: "h.example", port: 1},
		{name: "loose metadata", json: `{"address":"h","port":1,"payload":{"metadata":{"n":5,"b":true,"o":{"x":1},"a":[1],"z":null,"s":"x"}}}`,
			addr: "h", port: 1, md: map[string]string{"n": "5", "b": "true", "s": "x"}},
		{name: "status lower up", json: `{"address":"h","port":1,"payload":{"metadata":{"instance_status":"up"}}}`, addr: "h", port: 1, md: map[string]string{"instance_status": "up"}},
		{name: "out of service", json: `{"address":"h","port":1,"payload":{"metadata":{"instance_status":"OUT_OF_SERVICE"}}}`, err: "skip"},
		{name: "down", json: `{"address":"h","port":1,"payload":{"metadata":{"instance_status":"DOWN"}}}`, err: "skip"},
		{name: "disabled", json: `{"address":"h","port":1,"enabled":false}`, err: "skip"},
		{name: "enabled", json: `{"address":"h","port":1,"enabled":true}`, addr: "h", port: 1},
		{name: "no address", json: `{"port":1}`, err: "no address"},
		{name: "blank address", json: `{"address":"  ","port":1}`, err: "no address"},
		{name: "address with space", json: `{"address":"a b","port":1}`, err: "not a host"},
		{name: "no port", json: `{"address":"h"}`, err: "no port"},
		{name: "null port", json: `{"address":"h","port":null}`, err: "no port"},
		{name: "string port", json: `{"address":"h","port":"80"}`, err: "port"},
		{name: "negative port", json: `{"address":"h","port":-1}`, err: "port"},
		{name: "float port", json: `{"address":"h","port":80.5}`, err: "port"},
		{name: "huge port", json: `{"address":"h","port":1e99}`, err: "port"},
		{name: "zero port", json: `{"address":"h","port":0}`, err: "port"},
		{name: "not json", json: `{not json`, err: "JSON"},
		{name: "array", json: `[1,2]`, err: "JSON"},
		{name: "empty", json: ``, err: "JSON"},
		{name: "null", json: `null`, err: "no address"},
		{name: "wrong types", json: `{"address":5,"port":1}`, err: "JSON"},
		{name: "metadata not object", json: `{"address":"h","port":1,"payload":{"metadata":"x"}}`, err: "JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, err := parseSpringInstance([]byte(tc.json))
			switch {
			case tc.err == "skip":
				if !errors.Is(err, errSkip) {
					t.Fatalf("err = %v, want skip", err)
				}
				return
			case tc.err != "":
				if err == nil || errors.Is(err, errSkip) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			if in.Address != tc.addr || in.Port != tc.port || in.Weight != 1 || len(in.Metadata) != len(tc.md) {
				t.Fatalf("got %+v", in)
			}
			for k, v := range tc.md {
				if in.Metadata[k] != v {
					t.Fatalf("metadata %v, want %s=%s", in.Metadata, k, v)
				}
			}
		})
	}
}

func TestHosts(t *testing.T) {
	for root, want := range map[string]string{"/services": "s.services.zookeeper", "/": "s.zookeeper", "/a/b": "s.a-b.zookeeper"} {
		if got := springHost("s", rootSuffix(root)); got != want {
			t.Errorf("root %s: %s, want %s", root, got, want)
		}
	}
}

// FuzzParsers feeds arbitrary node names and node data to both parsers:
// they must not panic, and what they accept must be publishable.
func FuzzParsers(f *testing.F) {
	f.Add("dubbo%3A%2F%2F10.0.0.1%3A20880%2Fx%3Fversion%3D1%26weight%3D5", []byte(`{"address":"10.0.0.1","port":8080,"payload":{"metadata":{"protocol":"grpc"}}}`))
	f.Add("dubbo://[::1]:1/x?a=%zz", []byte(`{"address":"h","port":1e3,"enabled":false}`))
	f.Add("tri://h:1", []byte(`{"payload":{"metadata":{"instance_status":"DOWN"}}}`))
	f.Fuzz(func(t *testing.T, node string, data []byte) {
		host, in, err := parseDubboProvider("com.example.Demo", node)
		if err == nil {
			if checkHost(host) != nil || in.Address == "" || in.Port == 0 || in.Weight < 1 || in.Weight > maxWeight || in.Metadata["protocol"] != "dubbo" {
				t.Fatalf("accepted bad provider %q: %s %+v", node, host, in)
			}
		}
		in, err = parseSpringInstance(data)
		if err == nil {
			if in.Address == "" || in.Port == 0 || in.Port > 65535 || in.Weight != 1 {
				t.Fatalf("accepted bad instance %q: %+v", data, in)
			}
		}
	})
}
