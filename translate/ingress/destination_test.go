package ingress

import "testing"

func TestSplitDestination(t *testing.T) {
	for _, c := range []struct {
		in, host, port string
		hasPort        bool
	}{
		{"svc.DEFAULT-GROUP.public.nacos", "svc.DEFAULT-GROUP.public.nacos", "", false},
		{"svc.dc1.consul:8080", "svc.dc1.consul", "8080", true},
		{"svc.dc1.consul:http", "svc.dc1.consul", "http", true}, // reported as a bad port
		{"providers:a.B:1.0.0:.zookeeper", "providers:a.B:1.0.0:.zookeeper", "", false},
		{"providers:a.B:1.0.0:grp.zookeeper:20880", "providers:a.B:1.0.0:grp.zookeeper", "20880", true},
		{"host:", "host:", "", false},
	} {
		host, port, has := splitDestination(c.in)
		if host != c.host || port != c.port || has != c.hasPort {
			t.Errorf("splitDestination(%q) = %q, %q, %v; want %q, %q, %v", c.in, host, port, has, c.host, c.port, c.hasPort)
		}
	}
}
