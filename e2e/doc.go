// Package e2e holds end-to-end tests: hxds serving a config directory (in
// process through app.Run, or as the built binary), ADS clients that behave
// like Envoy (xds/adsclient), the admin endpoint, and optionally a real Envoy
// (set ENVOY_BIN). Everything listens on 127.0.0.1 with free ports and works
// in temporary directories. The package has no non-test code.
package e2e
