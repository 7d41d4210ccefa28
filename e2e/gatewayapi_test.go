package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/hxds/hxds/xds/adsclient"
)

type gatewayStatusDoc struct {
	Gateways []struct {
		Name   string `json:"name"`
		Status struct {
			Conditions []struct {
				Type, Status, Reason, Message string
			} `json:"conditions"`
			Listeners []struct {
				Name       string `json:"name"`
				Conditions []struct {
					Type, Status, Reason string
				} `json:"conditions"`
			} `json:"listeners"`
		} `json:"status"`
	} `json:"gateways"`
}

// TestGatewayProgrammedFollowsACKs: a valid Gateway is Programmed only once
// the Envoys of its group have ACKed the listeners serving it.
func TestGatewayProgrammedFollowsACKs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src, err := os.ReadFile(filepath.Join("..", "translate", "gatewayapi", "testdata", "routing.in.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "gateway.yaml", string(src))
	h := startHxds(t, dir)

	programmed := func() (status, reason, listener string) {
		var doc gatewayStatusDoc
		h.getJSON(t, "/debug/gatewayapi", &doc)
		for _, g := range doc.Gateways {
			if g.Name != "gw" {
				continue
			}
			for _, c := range g.Status.Conditions {
				if c.Type == "Programmed" {
					status, reason = c.Status, c.Reason
				}
			}
			for _, l := range g.Status.Listeners {
				for _, c := range l.Conditions {
					if c.Type == "Programmed" {
						listener = c.Status
					}
				}
			}
		}
		return
	}
	waitUntil(t, "Programmed=False Pending with no Envoy", func() (bool, string) {
		s, r, l := programmed()
		return s == "False" && r == "Pending" && l == "False", fmt.Sprintf("gateway %s/%s listener %s", s, r, l)
	})

	cl := connect(t, h.xds, adsclient.Options{NodeID: "envoy-1", Cluster: defaultGroup})
	cl.synced(h)
	waitUntil(t, "Programmed=True once the Envoy ACKed", func() (bool, string) {
		s, r, l := programmed()
		return s == "True" && r == "Programmed" && l == "True", fmt.Sprintf("gateway %s/%s listener %s", s, r, l)
	})
}
