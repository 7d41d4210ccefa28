package conformance

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/gateway-api/conformance/utils/roundtripper"

	"github.com/hxds/hxds/routecheck"
)

// dataPlane stands in for Envoy and the echo backends: a request is routed
// by routecheck over the resources the controller serves (as Envoy would
// route it), delivered to the simulated pod behind the chosen endpoint, and
// answered as the conformance echo server answers (echo-basic's JSON, its
// /status/ and /retry/ handlers, ?delay=), with Envoy's timeouts, retries,
// mirrors and response header mutations applied on the way back.
type dataPlane struct {
	ctl  *controller
	work *workloads
	logs *podLogs

	mu      sync.Mutex
	retries map[string]int // pod + uuid → failed attempts so far (echo-basic /retry/)
}

func newDataPlane(ctl *controller, work *workloads, logs *podLogs) *dataPlane {
	return &dataPlane{ctl: ctl, work: work, logs: logs, retries: map[string]int{}}
}

// errConnection is a failed connection: the client sees no HTTP response.
var errConnection = errors.New("connection failed")

// CaptureRoundTrip implements the suite's RoundTripper. Like the default one
// (a Go http.Client) it follows redirects unless told not to, but only to
// the gateway's own address: nothing outside the process is ever dialed.
func (d *dataPlane) CaptureRoundTrip(req roundtripper.Request) (*roundtripper.CapturedRequest, *roundtripper.CapturedResponse, error) {
	for hop := 0; ; hop++ {
		cReq, cRes, err := d.exchange(req)
		if err != nil || req.UnfollowRedirect || !roundtripper.IsRedirect(cRes.StatusCode) || hop == 10 {
			return cReq, cRes, err
		}
		loc, err := req.URL.Parse(first(cRes.Headers, "Location"))
		if err != nil {
			return nil, nil, fmt.Errorf("redirect Location: %w", err)
		}
		if loc.Hostname() != GatewayAddress {
			return nil, nil, fmt.Errorf("redirect to %s not followed: only the gateway address is reachable here", loc)
		}
		if s := cRes.StatusCode; (s == 301 || s == 302 || s == 303) && req.Method != http.MethodHead {
			req.Method, req.Body = http.MethodGet, ""
		}
		req.URL, req.Host = *loc, ""
	}
}

// exchange is one request/response on one connection.
func (d *dataPlane) exchange(req roundtripper.Request) (*roundtripper.CapturedRequest, *roundtripper.CapturedResponse, error) {
	rq, err := routecheckRequest(req)
	if err != nil {
		return nil, nil, err
	}
	res := d.ctl.current()
	if res == nil {
		return nil, nil, fmt.Errorf("%w: nothing served yet", errConnection)
	}
	out, err := routecheck.Evaluate(res, rq)
	if err != nil {
		return nil, nil, fmt.Errorf("simulate the request: %w", err)
	}
	if out.ConnectionError != "" {
		return nil, nil, fmt.Errorf("%w: %s", errConnection, out.ConnectionError)
	}
	if out.TCPProxy {
		// TLSRoute and TCPRoute tests dial the gateway themselves (raw TCP,
		// not through the RoundTripper), so no suite request gets here.
		return nil, nil, fmt.Errorf("%w: %s is a tcp_proxy chain; TCP connections are not simulated", errConnection, out.FilterChain)
	}
	if rq.TLS {
		if err := verifyServer(res, out, req); err != nil {
			return nil, nil, err
		}
	}
	method := rq.Method
	cRes := &roundtripper.CapturedResponse{Protocol: "HTTP/1.1", Headers: http.Header{}}
	if req.Protocol == roundtripper.H2Protocol || req.Protocol == roundtripper.H2CPriorKnowledgeProtocol {
		cRes.Protocol = "HTTP/2.0"
	}
	cReq := &roundtripper.CapturedRequest{Method: method}
	if !out.Forwarded {
		cRes.StatusCode = localStatus(out)
		setHeaders(cRes.Headers, out.ResponseHeaders)
		if out.Redirect != nil {
			http.Header(cRes.Headers).Set("Location", out.Redirect.Location)
		} else if out.DirectResponse != nil && out.DirectResponse.Location != "" {
			http.Header(cRes.Headers).Set("Location", out.DirectResponse.Location)
		}
		if err := redirectRequest(cRes); err != nil {
			return nil, nil, err
		}
		return cReq, cRes, nil
	}

	d.mirror(res, out, rq.Path)
	up := d.forward(res, out, method)
	if up.reset {
		// Envoy answers a reset upstream with 503 (no retry left).
		cRes.StatusCode = http.StatusServiceUnavailable
		return cReq, cRes, nil
	}
	// Run the response through Envoy's response path with the upstream's
	// own headers, for header mutations and CORS.
	rq.ResponseHeaders = up.headers
	final, err := routecheck.Evaluate(res, rq)
	if err != nil {
		return nil, nil, fmt.Errorf("simulate the response: %w", err)
	}
	cRes.StatusCode = up.status
	if up.local {
		// Envoy's own reply (timeout): no upstream headers.
		return cReq, cRes, nil
	}
	setHeaders(cRes.Headers, final.ResponseHeaders)
	if up.echo != nil {
		*cReq = *up.echo
		http.Header(cRes.Headers).Set("Content-Type", "application/json")
	}
	return cReq, cRes, nil
}

// routecheckRequest is what the suite's request looks like to Envoy: Go's
// client adds User-Agent and Accept-Encoding.
func routecheckRequest(req roundtripper.Request) (routecheck.Request, error) {
	u := req.URL
	defaultPort := "80"
	if u.Scheme == "https" {
		defaultPort = "443"
	}
	port, err := gatewayPort(u.Host, defaultPort)
	if err != nil {
		return routecheck.Request{}, err
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	rq := routecheck.Request{
		Port:        port,
		Host:        u.Host,
		Path:        u.RequestURI(),
		Method:      method,
		SourceIP:    "10.1.0.1",
		RandomValue: rand.Uint64(),
	}
	if req.Host != "" {
		rq.Host = req.Host
	}
	if u.Scheme == "https" {
		rq.TLS, rq.SNI = true, req.ServerName
		rq.ALPN = []string{"http/1.1"}
		if req.Protocol == roundtripper.H2Protocol {
			rq.ALPN = []string{"h2"}
		}
	}
	names := make([]string, 0, len(req.Headers))
	for n := range req.Headers {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if v := req.Headers[n]; len(v) > 0 {
			rq.Headers = append(rq.Headers, routecheck.Header{Name: n, Value: v[0]})
		}
	}
	if _, ok := req.Headers["User-Agent"]; !ok {
		rq.Headers = append(rq.Headers, routecheck.Header{Name: "User-Agent", Value: "Go-http-client/1.1"})
	}
	if req.Body != "" {
		rq.Headers = append(rq.Headers, routecheck.Header{Name: "Content-Length", Value: strconv.Itoa(len(req.Body))})
	}
	return rq, nil
}

// gatewayPort is the port of address (host[:port]), which must be the
// gateway's: nothing else is reachable.
func gatewayPort(address, defaultPort string) (uint32, error) {
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		host, portStr = address, defaultPort
	}
	if host != GatewayAddress {
		return 0, fmt.Errorf("%w: %s is not the gateway address", errConnection, host)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("port of %q: %w", address, err)
	}
	return uint32(port), nil
}

// localStatus is the status of a reply Envoy makes itself.
func localStatus(out routecheck.Outcome) int {
	switch {
	case out.Denied != nil:
		return out.Denied.Status
	case out.Redirect != nil:
		return out.Redirect.Status
	case out.DirectResponse != nil:
		return out.DirectResponse.Status
	case out.Status != 0:
		return out.Status
	case out.NoRoute:
		return http.StatusNotFound
	}
	return http.StatusServiceUnavailable
}

func redirectRequest(cRes *roundtripper.CapturedResponse) error {
	if !roundtripper.IsRedirect(cRes.StatusCode) {
		return nil
	}
	u, err := url.Parse(first(cRes.Headers, "Location"))
	if err != nil {
		return fmt.Errorf("redirect Location: %w", err)
	}
	cRes.RedirectRequest = &roundtripper.RedirectRequest{Scheme: u.Scheme, Host: u.Hostname(), Port: u.Port(), Path: u.Path}
	return nil
}

func setHeaders(h http.Header, m map[string]string) {
	for k, v := range m {
		h[http.CanonicalHeaderKey(k)] = []string{v}
	}
}

func first(h map[string][]string, name string) string {
	if v := http.Header(h).Values(name); len(v) > 0 {
		return v[0]
	}
	return ""
}

// upstreamResult is what came back from the upstream side of Envoy.
type upstreamResult struct {
	status  int
	headers []routecheck.Header
	echo    *roundtripper.CapturedRequest
	reset   bool // the connection was reset before a response
	local   bool // Envoy answered itself (timeout)
}

// forward runs Envoy's router: pick an endpoint of the chosen cluster, send,
// apply the per-try and route timeouts, retry as the route's policy says.
func (d *dataPlane) forward(res routecheck.Resources, out routecheck.Outcome, method string) upstreamResult {
	routeTimeout := parseDuration(out.Timeout, 15*time.Second)
	attempts, perTry := 1, time.Duration(0)
	if out.Retry != nil {
		attempts += int(out.Retry.NumRetries)
		perTry = parseDuration(out.Retry.PerTryTimeout, 0)
	}
	var spent time.Duration
	var last upstreamResult
	for a := 0; a < attempts; a++ {
		ep := pickEndpoint(out.Endpoints)
		pod := d.work.pod(hostOf(ep))
		if pod == nil {
			return upstreamResult{status: http.StatusServiceUnavailable, local: true}
		}
		r, delay := d.deliver(res, out, method, pod, portOf(ep))
		limit := routeTimeout - spent
		if perTry > 0 && (routeTimeout == 0 || perTry < limit) {
			limit = perTry
		}
		if (routeTimeout > 0 || perTry > 0) && delay >= limit {
			spent += limit
			last = upstreamResult{status: http.StatusGatewayTimeout, local: true}
			if routeTimeout > 0 && spent >= routeTimeout {
				return last
			}
			if !retriable(out.Retry, 0, false, true) {
				return last
			}
			continue
		}
		spent += delay
		last = r
		if !retriable(out.Retry, r.status, r.reset, false) {
			return r
		}
	}
	return last
}

// retriable says whether Envoy retries an attempt under retry policy rp.
func retriable(rp *routecheck.Retry, status int, reset, timeout bool) bool {
	if rp == nil {
		return false
	}
	for _, on := range strings.Split(rp.RetryOn, ",") {
		switch strings.TrimSpace(on) {
		case "5xx":
			if status >= 500 || reset || timeout {
				return true
			}
		case "gateway-error":
			if status == 502 || status == 503 || status == 504 || timeout {
				return true
			}
		case "reset", "connect-failure", "refused-stream":
			if reset {
				return true
			}
		case "retriable-status-codes":
			for _, c := range rp.RetriableStatusCodes {
				if int(c) == status {
					return true
				}
			}
		}
	}
	return false
}

func parseDuration(s string, def time.Duration) time.Duration {
	if s == "" {
		return def
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return def
	}
	return v
}

func pickEndpoint(eps []string) string {
	if len(eps) == 0 {
		return ""
	}
	return eps[rand.IntN(len(eps))]
}

func hostOf(ep string) string {
	h, _, err := net.SplitHostPort(ep)
	if err != nil {
		return ep
	}
	return h
}

func portOf(ep string) string {
	_, p, _ := net.SplitHostPort(ep)
	return p
}

// mirror delivers a copy of the request to each mirror cluster in its share
// of requests; the mirror backend logs it as echo-basic does.
func (d *dataPlane) mirror(res routecheck.Resources, out routecheck.Outcome, path string) {
	for i, c := range out.Mirrors {
		share := 100.0
		if i < len(out.MirrorShares) {
			share = out.MirrorShares[i]
		}
		if rand.Float64()*100 >= share {
			continue
		}
		cla, ok := res[resourcev3.EndpointType][c]
		if !ok {
			continue
		}
		eps := endpointsOf(cla)
		if pod := d.work.pod(hostOf(pickEndpoint(eps))); pod != nil {
			d.logs.add(pod.Namespace, pod.Name, fmt.Sprintf("Echoing back request made to %s to client (10.1.0.1:40000)", path))
		}
	}
}

// deliver is the echo server behind pod answering on port: the response and
// how long it takes.
func (d *dataPlane) deliver(res routecheck.Resources, out routecheck.Outcome, method string, pod *corev1.Pod, port string) (upstreamResult, time.Duration) {
	env := podEnv(pod)
	if env["GRPC_ECHO_SERVER"] != "" || env["TCP_ECHO_SERVER"] != "" || env["UDP_ECHO_SERVER"] != "" {
		// Not an HTTP/1 server: the exchange fails.
		return upstreamResult{reset: true}, 0
	}
	httpPort := orDefault(env["HTTP_PORT"], "3000")
	h2cPort := orDefault(env["H2C_PORT"], "3001")
	httpsPort := orDefault(env["HTTPS_PORT"], "8443")
	c, _ := res[resourcev3.ClusterType][out.Cluster].(*clusterv3.Cluster)
	upstreamTLS := c.GetTransportSocket() != nil
	proto := "HTTP/1.1"
	var tlsInfo roundtripper.TLS
	switch {
	case port == httpsPort && env["TLS_SERVER_CERT"] != "":
		if !upstreamTLS {
			return upstreamResult{status: http.StatusBadRequest}, 0
		}
		info, alpn, err := d.upstreamHandshake(res, c, pod)
		if err != nil {
			return upstreamResult{reset: true}, 0
		}
		tlsInfo = info
		if alpn == "h2" {
			proto = "HTTP/2.0"
		}
	case upstreamTLS:
		return upstreamResult{reset: true}, 0
	case port == h2cPort:
		if !speaksH2(c) {
			return upstreamResult{status: http.StatusBadRequest}, 0
		}
		proto = "HTTP/2.0"
	case port != httpPort:
		return upstreamResult{reset: true}, 0
	}

	u, err := url.ParseRequestURI(out.UpstreamPath)
	if err != nil {
		return upstreamResult{status: http.StatusBadRequest}, 0
	}
	q := u.Query()
	switch {
	case strings.HasPrefix(u.Path, "/status/"):
		code, err := strconv.Atoi(strings.TrimPrefix(u.Path, "/status/"))
		if err != nil || code < 100 || code > 999 {
			code = http.StatusBadRequest
		}
		return upstreamResult{status: code}, 0
	case strings.HasPrefix(u.Path, "/retry/"):
		if r, delay, failed := d.retryAttempt(pod, q); failed {
			return r, delay
		}
	}
	delay := parseDuration(q.Get("delay"), 0)
	d.logs.add(pod.Namespace, pod.Name, fmt.Sprintf("Echoing back request made to %s to client (10.1.0.1:40000)", out.UpstreamPath))

	headers := map[string][]string{}
	var respHeaders []routecheck.Header
	for name, v := range out.RequestHeaders {
		headers[http.CanonicalHeaderKey(name)] = []string{v}
	}
	for _, kvs := range headers["X-Echo-Set-Header"] {
		for _, kv := range strings.Split(kvs, ",") {
			name, value, _ := strings.Cut(strings.TrimSpace(kv), ":")
			respHeaders = append(respHeaders, routecheck.Header{Name: name, Value: strings.TrimSpace(value)})
		}
	}
	respHeaders = append(respHeaders,
		routecheck.Header{Name: "Content-Type", Value: "application/json"},
		routecheck.Header{Name: "X-Content-Type-Options", Value: "nosniff"})
	echo := &roundtripper.CapturedRequest{
		Path:      out.UpstreamPath,
		Host:      out.UpstreamHost,
		Method:    method,
		Protocol:  proto,
		Headers:   headers,
		HTTPPort:  httpPort,
		Namespace: pod.Namespace,
		Pod:       pod.Name,
		TLS:       tlsInfo,
	}
	return upstreamResult{status: http.StatusOK, headers: respHeaders, echo: echo}, delay
}

// retryAttempt is echo-basic's /retry/ handler: fail (reset, or the asked
// responseCode) until succeedAfter attempts were made for this uuid.
func (d *dataPlane) retryAttempt(pod *corev1.Pod, q url.Values) (upstreamResult, time.Duration, bool) {
	uuid := q.Get("uuid")
	succeedAfter, err := strconv.Atoi(q.Get("succeedAfter"))
	if uuid == "" || err != nil {
		return upstreamResult{status: http.StatusBadRequest}, 0, true
	}
	key := pod.Namespace + "/" + pod.Name + "/" + uuid
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.retries[key] >= succeedAfter {
		return upstreamResult{}, 0, false
	}
	d.retries[key]++
	delay := parseDuration(q.Get("delayRetry"), 0)
	if code, err := strconv.Atoi(q.Get("responseCode")); err == nil {
		return upstreamResult{status: code}, delay, true
	}
	return upstreamResult{reset: true}, delay, true
}

// endpointsOf lists a ClusterLoadAssignment's endpoints as address:port.
func endpointsOf(m proto.Message) []string {
	cla, ok := m.(*endpointv3.ClusterLoadAssignment)
	if !ok {
		return nil
	}
	var out []string
	for _, l := range cla.GetEndpoints() {
		for _, e := range l.GetLbEndpoints() {
			sa := e.GetEndpoint().GetAddress().GetSocketAddress()
			out = append(out, net.JoinHostPort(sa.GetAddress(), strconv.Itoa(int(sa.GetPortValue()))))
		}
	}
	return out
}

func podEnv(p *corev1.Pod) map[string]string {
	env := map[string]string{}
	for _, c := range p.Spec.Containers {
		for _, e := range c.Env {
			env[e.Name] = e.Value
		}
	}
	return env
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// speaksH2 says whether Envoy talks HTTP/2 to the cluster's endpoints.
func speaksH2(c *clusterv3.Cluster) bool {
	if c == nil {
		return false
	}
	if c.GetHttp2ProtocolOptions() != nil {
		return true
	}
	a, ok := c.GetTypedExtensionProtocolOptions()["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
	if !ok {
		return false
	}
	o := &httpv3.HttpProtocolOptions{}
	if err := a.UnmarshalTo(o); err != nil {
		return false
	}
	return o.GetExplicitHttpConfig().GetHttp2ProtocolOptions() != nil || o.GetUseDownstreamProtocolConfig() != nil
}
