package nacos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/hxds/hxds/discovery"
)

// maxBody bounds one OpenAPI response (a 1.x instance list of 10,000
// instances is about 5 MiB).
const maxBody = 64 << 20

// v1Fetchers is how many instance lists a Nacos 1.x sweep fetches at once.
const v1Fetchers = 8

// V1Watcher polls a Nacos 1.x server's HTTP OpenAPI.
type V1Watcher struct {
	discovery.Tracker
	s      settings
	log    *zap.Logger
	out    *published
	client *http.Client
	base   string
	// refresh is the sweep interval (tests shorten it).
	refresh time.Duration
	// skipped remembers why a host is not published, to warn once.
	skipped map[string]string
}

// NewV1 is the discovery.Factory of type nacos (Nacos 1.x, HTTP OpenAPI).
func NewV1(cfg discovery.Config, pub discovery.Publisher, log *zap.Logger) (discovery.Watcher, error) {
	s, err := parseSettings(cfg, TypeV1)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	r := cfg.Registry
	if r.NacosAddressServer != "" || r.NacosAccessKey != "" || r.NacosSecretKey != "" || cfg.Auth.NacosUsername != "" {
		// As Higress: the 1.x watcher talks to one server without auth.
		log.Warn("nacosAddressServer, AK/SK and authSecretName are not used by type nacos (1.x); use nacos2 for them")
	}
	if len(s.groups) == 0 {
		log.Warn("nacosGroups is empty: no services will be discovered (as Higress; list the groups to watch)")
	}
	return &V1Watcher{
		s: s, log: log, out: newPublished(pub),
		client:  &http.Client{Timeout: requestTimeout},
		base:    "http://" + net.JoinHostPort(s.domain, strconv.Itoa(int(s.port))) + "/nacos/v1/ns",
		refresh: s.refresh,
		skipped: map[string]string{},
	}, nil
}

// Run implements discovery.Watcher.
func (w *V1Watcher) Run(ctx context.Context) error {
	w.log.Info("watching nacos 1.x", zap.String("server", w.base), zap.String("namespaceId", w.s.namespaceID),
		zap.Strings("groups", w.s.groups), zap.Duration("refresh", w.refresh))
	retry := time.Second
	for {
		wait := w.refresh
		if err := w.sweep(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			w.log.Warn("nacos sweep failed", zap.Error(err), zap.Duration("retryIn", retry))
			// Retry a failing server sooner than the refresh interval, with
			// backoff so a down server is not hammered.
			wait = min(retry, w.refresh)
			retry = min(retry*2, w.refresh)
		} else {
			retry = time.Second
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

type v1Result struct {
	host string
	raws []rawInstance
	err  error
}

// sweep lists every group and fetches every listed service's instances.
// It returns the first error; services it could not fetch keep what was
// published for them.
func (w *V1Watcher) sweep(ctx context.Context) error {
	type svcKey struct{ group, name string }
	listed := map[string]svcKey{}
	var errs []error
	listOK := true
	for _, g := range w.s.groups {
		names, err := w.listServices(ctx, g)
		if err != nil {
			listOK = false
			errs = append(errs, fmt.Errorf("list services of group %q: %w", g, err))
			continue
		}
		for _, n := range names {
			if skipService(n) {
				continue
			}
			listed[Host(n, g, w.s.namespace)] = svcKey{g, n}
		}
	}

	jobs := make(chan string)
	results := make(chan v1Result)
	var wg sync.WaitGroup
	for range min(v1Fetchers, max(len(listed), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for h := range jobs {
				k := listed[h]
				raws, err := w.listInstances(ctx, k.group, k.name)
				results <- v1Result{host: h, raws: raws, err: err}
			}
		}()
	}
	go func() {
		for h := range listed {
			jobs <- h
		}
		close(jobs)
		wg.Wait()
		close(results)
	}()
	for r := range results {
		if r.err != nil {
			errs = append(errs, fmt.Errorf("instances of %s: %w", r.host, r.err))
			continue
		}
		w.apply(r.host, r.raws)
	}
	if listOK {
		for _, h := range w.out.hosts() {
			if _, ok := listed[h]; !ok {
				w.log.Info("service deregistered", zap.String("host", h))
				w.out.remove(h)
			}
		}
		w.out.complete()
		w.Synced(true)
	}
	if err := errors.Join(errs...); err != nil {
		w.Failed(err)
		return err
	}
	return nil
}

// apply publishes one service's fresh instance list.
func (w *V1Watcher) apply(host string, raws []rawInstance) {
	applyInstances(w.out, w.skipped, w.log, w.s.cfg.Registry.Vport, host, raws)
}

func (w *V1Watcher) get(ctx context.Context, path string, q url.Values) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.base+path+"?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		if len(b) > 200 {
			b = b[:200]
		}
		return nil, fmt.Errorf("GET %s: HTTP %d: %s", path, resp.StatusCode, b)
	}
	return b, nil
}

// listServices pages through one group's service names.
func (w *V1Watcher) listServices(ctx context.Context, group string) ([]string, error) {
	var all []string
	for page := 1; page <= maxPages; page++ {
		q := url.Values{"pageNo": {strconv.Itoa(page)}, "pageSize": {strconv.Itoa(pageSize)},
			"groupName": {group}, "namespaceId": {w.s.namespaceID}}
		b, err := w.get(ctx, "/service/list", q)
		if err != nil {
			return nil, err
		}
		count, names, err := parseServiceList(b)
		if err != nil {
			return nil, err
		}
		all = append(all, names...)
		if len(all) >= count {
			break
		}
		if len(names) == 0 {
			return nil, errShortListing(group, count, len(all))
		}
	}
	return all, nil
}

func (w *V1Watcher) listInstances(ctx context.Context, group, name string) ([]rawInstance, error) {
	q := url.Values{"serviceName": {name}, "groupName": {group}, "namespaceId": {w.s.namespaceID},
		"healthyOnly": {"false"}}
	b, err := w.get(ctx, "/instance/list", q)
	if err != nil {
		return nil, err
	}
	return parseInstanceList(b)
}

// parseServiceList reads /nacos/v1/ns/service/list: {"count":N,"doms":[...]}.
func parseServiceList(b []byte) (int, []string, error) {
	var v struct {
		Count json.RawMessage   `json:"count"`
		Doms  []json.RawMessage `json:"doms"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return 0, nil, fmt.Errorf("service list: %w", err)
	}
	count := 0
	var f float64
	if json.Unmarshal(v.Count, &f) == nil && f > 0 && f < 1e9 {
		count = int(f)
	}
	names := make([]string, 0, len(v.Doms))
	for _, d := range v.Doms {
		var s string
		if json.Unmarshal(d, &s) == nil {
			names = append(names, s)
		}
	}
	return count, names, nil
}

// parseInstanceList reads /nacos/v1/ns/instance/list:
// {"name":"G@@svc","hosts":[{"ip","port","weight","healthy","enabled","metadata"}...],...}.
// One malformed host is skipped, not the whole list; metadata values that
// are not strings are kept as their JSON text.
func parseInstanceList(b []byte) ([]rawInstance, error) {
	var v struct {
		Hosts []json.RawMessage `json:"hosts"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("instance list: %w", err)
	}
	out := make([]rawInstance, 0, len(v.Hosts))
	for _, h := range v.Hosts {
		var in struct {
			IP       string                     `json:"ip"`
			Port     float64                    `json:"port"`
			Weight   *float64                   `json:"weight"`
			Healthy  *bool                      `json:"healthy"`
			Enabled  *bool                      `json:"enabled"`
			Metadata map[string]json.RawMessage `json:"metadata"`
		}
		if json.Unmarshal(h, &in) != nil {
			continue
		}
		r := rawInstance{IP: in.IP, Port: in.Port, Weight: 1, Healthy: in.Healthy != nil && *in.Healthy,
			// Nacos always sends enabled; absent means not disabled.
			Enabled: in.Enabled == nil || *in.Enabled}
		if in.Weight != nil {
			r.Weight = *in.Weight
		}
		if len(in.Metadata) > 0 {
			r.Metadata = make(map[string]string, len(in.Metadata))
			for k, raw := range in.Metadata {
				var s string
				if json.Unmarshal(raw, &s) == nil {
					r.Metadata[k] = s
				} else {
					r.Metadata[k] = string(raw)
				}
			}
		}
		out = append(out, r)
	}
	return out, nil
}
