// Package eureka watches a Netflix/Spring Cloud Eureka server (McpBridge
// registry type "eureka", higress-semantics §4.5).
//
// It polls the server's REST API in JSON mode — GET <base>/apps, then
// <base>/apps/delta — where <base> is http://<domain>:<port>/eureka, or
// http://<domain>:<port><path> when the domain carries a path (e.g.
// "registry.example/eureka/v2" for Netflix's WAR). A domain may also start
// with http:// or https://. The registry has no refresh-interval field in
// the McpBridge (Higress polls every 30 s, fixed), so the interval is
// DefaultRefreshInterval, 30 s; failures are retried with a backoff from 1 s doubling up
// to that interval. Deltas are applied as Eureka's own client does and
// checked against the server's apps hashcode; a mismatch, an error, a
// server without deltas, or every 20th poll (10 min) falls back to a full
// fetch, so a missed delta is never kept for long.
//
// Each Eureka application becomes the host "<APP-NAME>.eureka" (§4.3).
// Unlike Higress, only UP instances are published; an application whose
// instances are all down is published with no instances, and one that
// leaves the listing is dropped from the next Replace at once. Instances
// are ipAddr (hostName when absent) on the non-secure port when it is
// enabled, else on the secure port with a TLS protocol. Metadata is the
// instance's string metadata; "protocol" picks the protocol (an
// unsupported one skips the application with a warning) and "weight"
// (Spring Cloud LoadBalancer's key) the endpoint weight.
package eureka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/hxds/hxds/discovery"
)

// DefaultRefreshInterval is how often a watcher polls its server: Higress's
// fixed 30 s, as the McpBridge has no refresh field for eureka. It is a
// variable only so that tests and programs embedding hxds can change it
// (say, to poll a local fake server every 200 ms); New reads it, so set it
// before any watcher is created, and leave it alone in production.
var DefaultRefreshInterval = 30 * time.Second

const (
	// fullEvery forces a full fetch every so many polls.
	fullEvery = 20
	// minBackoff is the first retry delay after a failure.
	minBackoff = time.Second
	// requestTimeout bounds one HTTP exchange.
	requestTimeout = 10 * time.Second
	// maxBody bounds a response (10,000 instances are about 15 MB).
	maxBody = 256 << 20
)

// Watcher watches one Eureka server.
type Watcher struct {
	discovery.Tracker

	cfg  discovery.Config
	pub  discovery.Publisher
	log  *zap.Logger
	base string // e.g. http://host:8761/eureka, no trailing slash
	hc   *http.Client

	// interval is the refresh interval (tests shorten it).
	interval time.Duration

	// Poll state, owned by Run's goroutine.
	model      model
	needFull   bool // the next poll must be a full fetch
	noDelta    bool // the server refused /apps/delta: stop asking
	sinceFull  int
	published  []discovery.Service
	byHost     map[string]discovery.Service
	warned     map[string]string // host → last warning, so a steady bad app logs once
	skipLogged string            // last "skipped instances" message
}

var _ discovery.Watcher = (*Watcher)(nil)

// New validates the registry config and returns its watcher (a
// discovery.Factory). It does not contact the server.
func New(cfg discovery.Config, pub discovery.Publisher, log *zap.Logger) (discovery.Watcher, error) {
	if pub == nil {
		return nil, errors.New("eureka: no publisher")
	}
	if log == nil {
		log = zap.NewNop()
	}
	base, err := baseURL(cfg.Registry.Domain, cfg.Registry.Port)
	if err != nil {
		return nil, fmt.Errorf("eureka registry %q: %w", cfg.Registry.Name, err)
	}
	return &Watcher{
		cfg:      cfg,
		pub:      pub,
		log:      log,
		base:     base,
		hc:       &http.Client{Timeout: requestTimeout},
		interval: DefaultRefreshInterval,
		needFull: true,
		warned:   map[string]string{},
	}, nil
}

// baseURL builds the Eureka REST base from the McpBridge domain and port.
func baseURL(domain string, port uint32) (string, error) {
	domain = strings.TrimSpace(domain)
	if domain == "" {
		return "", errors.New("domain is required")
	}
	if port == 0 || port > 65535 {
		return "", fmt.Errorf("port %d is not a valid TCP port", port)
	}
	scheme := "http"
	for _, s := range []string{"http://", "https://"} {
		if len(domain) >= len(s) && strings.EqualFold(domain[:len(s)], s) {
			scheme, domain = strings.TrimSuffix(strings.ToLower(s), "://"), domain[len(s):]
		}
	}
	host, path, _ := strings.Cut(domain, "/")
	if host == "" {
		return "", fmt.Errorf("domain %q has no host", domain)
	}
	// An IPv6 server may be given bare or in brackets.
	if ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")); err == nil && ip.Zone() == "" {
		host = ip.String()
	} else if strings.ContainsAny(host, ":[]@?#% \t") {
		return "", fmt.Errorf("domain %q: give the host without a port (the port field sets it)", domain)
	}
	path = strings.Trim(path, "/")
	if path == "" {
		path = "eureka"
	}
	u := &url.URL{Scheme: scheme, Host: net.JoinHostPort(host, strconv.Itoa(int(port))), Path: "/" + path}
	if _, err := url.Parse(u.String()); err != nil {
		return "", fmt.Errorf("domain %q: %w", domain, err)
	}
	return u.String(), nil
}

// Run polls the server until ctx is done.
func (w *Watcher) Run(ctx context.Context) error {
	w.log.Info("watching eureka", zap.String("url", w.base+"/apps"), zap.Duration("interval", w.interval))
	backoff := minBackoff
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		wait := w.interval
		if err := w.poll(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			w.Failed(err)
			w.needFull = true
			w.log.Warn("eureka poll failed", zap.Error(err), zap.Duration("retryIn", backoff))
			wait = backoff
			backoff = min(2*backoff, w.interval)
		} else {
			backoff = minBackoff
		}
		timer.Reset(wait)
	}
}

// poll brings the model up to date (a delta when it can, else a full
// fetch) and publishes the listing if it changed.
func (w *Watcher) poll(ctx context.Context) error {
	if !w.needFull && !w.noDelta && w.sinceFull < fullEvery {
		ok, err := w.pollDelta(ctx)
		if err != nil {
			return err
		}
		if ok {
			w.sinceFull++
			w.Synced(true)
			w.publish()
			return nil
		}
	}
	l, err := w.fetch(ctx, "/apps")
	if err != nil {
		return err
	}
	w.model = fullModel(l)
	// When our own count of the full listing disagrees with the server's
	// hashcode (instances we could not decode), deltas can never check
	// out: keep to full fetches until they agree.
	w.needFull = w.model.hashcode() != l.hashcode
	w.sinceFull = 0
	w.logSkipped(l)
	w.Synced(true)
	w.publish()
	return nil
}

// pollDelta applies /apps/delta to the model; false means a full fetch is
// needed (delta refused, or the result fails the hashcode check).
func (w *Watcher) pollDelta(ctx context.Context) (bool, error) {
	l, err := w.fetch(ctx, "/apps/delta")
	var se *statusError
	if errors.As(err, &se) && (se.code == http.StatusForbidden || se.code == http.StatusNotFound || se.code == http.StatusNotImplemented) {
		// Servers with disableDelta answer 403.
		w.log.Info("eureka server does not serve deltas; using full fetches", zap.Int("status", se.code))
		w.noDelta = true
		return false, nil
	}
	if err != nil {
		return false, err
	}
	next := w.model.clone()
	next.applyDelta(l)
	if got := next.hashcode(); got != l.hashcode {
		w.log.Debug("eureka delta hashcode mismatch; full fetch", zap.String("server", l.hashcode), zap.String("local", got))
		return false, nil
	}
	w.model = next
	w.logSkipped(l)
	return true, nil
}

type statusError struct {
	url  string
	code int
	body string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("GET %s: HTTP %d: %s", e.url, e.code, e.body)
}

// fetch GETs one listing document and decodes it.
func (w *Watcher) fetch(ctx context.Context, path string) (*listing, error) {
	u := w.base + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("eureka request %s: %w", u, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := w.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("eureka GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("eureka GET %s: reading body: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &statusError{url: u, code: resp.StatusCode, body: snippet(body)}
	}
	if len(body) > maxBody {
		return nil, fmt.Errorf("eureka GET %s: response larger than %d bytes", u, maxBody)
	}
	l, err := parseListing(body, path != "/apps")
	if err != nil {
		return nil, fmt.Errorf("eureka GET %s: %w", u, err)
	}
	return l, nil
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

func (w *Watcher) logSkipped(l *listing) {
	if l.skipped == 0 {
		w.skipLogged = ""
		return
	}
	msg := fmt.Sprintf("%d %v", l.skipped, l.firstErr)
	if msg != w.skipLogged {
		w.log.Warn("eureka entries skipped", zap.Int("count", l.skipped), zap.NamedError("first", l.firstErr))
		w.skipLogged = msg
	}
}

// publish replaces the registry's listing when it differs from the last
// one published.
func (w *Watcher) publish() {
	svcs, skipped := w.model.services(w.vport, w.byHost)
	seen := make(map[string]bool, len(skipped))
	for _, s := range skipped {
		seen[s.host] = true
		if w.warned[s.host] != s.err.Error() {
			w.log.Warn("eureka application skipped", zap.String("host", s.host), zap.Error(s.err))
			w.warned[s.host] = s.err.Error()
		}
	}
	for h := range w.warned {
		if !seen[h] {
			delete(w.warned, h)
		}
	}
	if w.byHost != nil && reflect.DeepEqual(svcs, w.published) {
		return
	}
	w.published = svcs
	w.byHost = make(map[string]discovery.Service, len(svcs))
	for _, s := range svcs {
		w.byHost[s.Host] = s
	}
	w.pub.Replace(svcs)
}

func (w *Watcher) vport(host string, first uint32) uint32 {
	return discovery.Vport(w.cfg.Registry.Vport, host, first)
}

// clone copies the model's maps (instances are immutable once decoded).
func (m model) clone() model {
	out := make(model, len(m))
	for app, ins := range m {
		c := make(map[string]*instance, len(ins))
		for id, in := range ins {
			c[id] = in
		}
		out[app] = c
	}
	return out
}
