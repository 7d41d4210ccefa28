package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestFlags(t *testing.T) {
	cmd := newRootCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"--help"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"--listen", "--upstream", "--admin-address", "--cache-dir", "--insecure-registries", "--fetch-timeout", "--http-request-timeout"} {
		if !strings.Contains(out.String(), f) {
			t.Errorf("help lacks %s", f)
		}
	}
	cmd = newRootCommand()
	cmd.SetArgs([]string{"--log-format", "xml", "--cache-dir", t.TempDir()})
	if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), "--log-format") {
		t.Errorf("bad log format: %v", err)
	}
}
