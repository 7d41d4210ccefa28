package routecheck

import (
	"encoding/json"
	"fmt"
	"strings"

	"sigs.k8s.io/yaml"
)

// TestFile is a route-check test file:
//
//	tests:
//	- name: api exact
//	  request: {host: echo.example.com, path: /api/v1/status, port: 80}
//	  expect: {cluster: "outbound|8080||api.demo.svc.cluster.local", service: demo/api:8080}
//
// Unknown fields are errors. Only the fields present under expect are compared.
// request.upstreamStatus is the status the upstream answers (what the
// custom_response filter matches); expect.customResponse compares what that
// filter did (ExpectCustomResponse), the other expect fields always describe
// the original request.
type TestFile struct {
	Tests []Test `json:"tests"`
}

// Test is one request and what must happen to it.
type Test struct {
	Name    string      `json:"name"`
	Request TestRequest `json:"request"`
	Expect  Expect      `json:"expect"`
}

// TestRequest is Request in the test-file format.
type TestRequest struct {
	Host   string `json:"host,omitempty"`
	Path   string `json:"path,omitempty"`
	Method string `json:"method,omitempty"`
	// Port defaults to 443 with tls, else 80.
	Port uint32 `json:"port,omitempty"`
	TLS  bool   `json:"tls,omitempty"`
	// SNI defaults to the host without its port when tls is set (as curl
	// does); an explicit "" sends no SNI.
	SNI           *string           `json:"sni,omitempty"`
	ALPN          []string          `json:"alpn,omitempty"`
	Scheme        string            `json:"scheme,omitempty"`
	Headers       map[string]string `json:"headers,omitempty"`
	SourceIP      string            `json:"sourceIP,omitempty"`
	DestinationIP string            `json:"destinationIP,omitempty"`
	ClientCert    bool              `json:"clientCert,omitempty"`
	// Random is the random value that picks among weighted clusters.
	Random          uint64            `json:"random,omitempty"`
	ResponseHeaders map[string]string `json:"responseHeaders,omitempty"`
	// UpstreamStatus is the status the upstream answers a forwarded request
	// with (what the custom_response filter matches); 0: not simulated.
	UpstreamStatus int `json:"upstreamStatus,omitempty"`
}

// Expect lists the expected outcome; nil fields are not compared.
type Expect struct {
	Listener    *string `json:"listener,omitempty"`
	FilterChain *string `json:"filterChain,omitempty"`
	// Certificate must be one of the chosen filter chain's SDS secrets.
	Certificate *string `json:"certificate,omitempty"`
	RouteConfig *string `json:"routeConfig,omitempty"`
	VirtualHost *string `json:"virtualHost,omitempty"`
	Route       *string `json:"route,omitempty"`

	Cluster      *string          `json:"cluster,omitempty"`
	Service      *string          `json:"service,omitempty"`
	Weighted     *[]ClusterWeight `json:"weighted,omitempty"`
	UpstreamPath *string          `json:"upstreamPath,omitempty"`
	UpstreamHost *string          `json:"upstreamHost,omitempty"`
	Endpoints    *[]string        `json:"endpoints,omitempty"`
	Mirrors      *[]string        `json:"mirrors,omitempty"`
	Timeout      *string          `json:"timeout,omitempty"`

	// Status is the status Envoy answers with itself; Forwarded that the
	// request goes upstream.
	Status            *int  `json:"status,omitempty"`
	Forwarded         *bool `json:"forwarded,omitempty"`
	NoListener        *bool `json:"noListener,omitempty"`
	NoFilterChain     *bool `json:"noFilterChain,omitempty"`
	ConnectionFailed  *bool `json:"connectionFailed,omitempty"`
	NoRoute           *bool `json:"noRoute,omitempty"`
	TCPProxy          *bool `json:"tcpProxy,omitempty"`
	ClusterMissing    *bool `json:"clusterMissing,omitempty"`
	NoHealthyUpstream *bool `json:"noHealthyUpstream,omitempty"`

	Redirect       *ExpectRedirect `json:"redirect,omitempty"`
	DirectResponse *ExpectDirect   `json:"directResponse,omitempty"`

	RequestHeaders  *ExpectHeaders `json:"requestHeaders,omitempty"`
	ResponseHeaders *ExpectHeaders `json:"responseHeaders,omitempty"`

	Denied         *bool              `json:"denied,omitempty"`
	DeniedBy       *string            `json:"deniedBy,omitempty"`
	LocalRateLimit *ExpectTokenBucket `json:"localRateLimit,omitempty"`

	// CustomResponse compares what the custom_response filter did with the
	// response (see ExpectCustomResponse); the fields above keep describing
	// the original request.
	CustomResponse *ExpectCustomResponse `json:"customResponse,omitempty"`
}

// ExpectCustomResponse compares Outcome.CustomResponse:
//
//	request: {host: errors.example.com, path: /api, upstreamStatus: 404}
//	expect:
//	  route: default/custom-errors
//	  customResponse:
//	    status: 404                          # what the client gets
//	    route: default/custom-errors-fallback   # of the redirected request
//	    cluster: "outbound|8080||fallback.default.svc.cluster.local"
//
// applied says whether a policy matched the response (applied: false: the
// response goes through unchanged); redirected whether a redirect policy
// recreated the request (false: it matched but the original response went
// through, e.g. no route matches the redirected request). route, cluster,
// service, upstreamPath, upstreamHost and requestHeaders are those of the
// redirected request; status, body and responseHeaders those of the response
// the client gets.
type ExpectCustomResponse struct {
	Applied         *bool          `json:"applied,omitempty"`
	Policy          *string        `json:"policy,omitempty"`
	Status          *int           `json:"status,omitempty"`
	Body            *string        `json:"body,omitempty"`
	Redirected      *bool          `json:"redirected,omitempty"`
	Route           *string        `json:"route,omitempty"`
	Cluster         *string        `json:"cluster,omitempty"`
	Service         *string        `json:"service,omitempty"`
	UpstreamPath    *string        `json:"upstreamPath,omitempty"`
	UpstreamHost    *string        `json:"upstreamHost,omitempty"`
	RequestHeaders  *ExpectHeaders `json:"requestHeaders,omitempty"`
	ResponseHeaders *ExpectHeaders `json:"responseHeaders,omitempty"`
}

// ExpectRedirect compares a redirect.
type ExpectRedirect struct {
	Status   *int    `json:"status,omitempty"`
	Location *string `json:"location,omitempty"`
}

// ExpectDirect compares a direct response.
type ExpectDirect struct {
	Status   *int    `json:"status,omitempty"`
	Body     *string `json:"body,omitempty"`
	Location *string `json:"location,omitempty"`
}

// ExpectHeaders: add maps a header to its final value (upstream request, or
// response); remove lists headers a mutation removes and that are absent
// afterwards.
type ExpectHeaders struct {
	Add    map[string]string `json:"add,omitempty"`
	Remove []string          `json:"remove,omitempty"`
}

// ExpectTokenBucket compares a reported local rate limit.
type ExpectTokenBucket struct {
	MaxTokens     *uint32 `json:"maxTokens,omitempty"`
	TokensPerFill *uint32 `json:"tokensPerFill,omitempty"`
	FillInterval  *string `json:"fillInterval,omitempty"`
}

// ParseTests decodes a test file strictly: unknown or duplicate fields, an
// empty file, unnamed or duplicate tests and empty expectations are errors.
func ParseTests(data []byte) (*TestFile, error) {
	tf := &TestFile{}
	if err := yaml.UnmarshalStrict(data, tf); err != nil {
		return nil, err
	}
	if len(tf.Tests) == 0 {
		return nil, fmt.Errorf("no tests")
	}
	seen := map[string]bool{}
	for i, t := range tf.Tests {
		switch {
		case t.Name == "":
			return nil, fmt.Errorf("tests[%d]: name is required", i)
		case seen[t.Name]:
			return nil, fmt.Errorf("tests[%d]: duplicate name %q", i, t.Name)
		case t.Expect == (Expect{}):
			return nil, fmt.Errorf("test %q: expect is empty", t.Name)
		}
		seen[t.Name] = true
	}
	return tf, nil
}

// Request converts the test-file request, applying its defaults.
func (r TestRequest) Request() Request {
	req := Request{
		Port: r.Port, DestinationIP: r.DestinationIP, TLS: r.TLS, ALPN: r.ALPN, ClientCert: r.ClientCert,
		Host: r.Host, Path: r.Path, Method: r.Method, Scheme: r.Scheme, SourceIP: r.SourceIP,
		RandomValue: r.Random, Headers: headerList(r.Headers), ResponseHeaders: headerList(r.ResponseHeaders),
		UpstreamStatus: r.UpstreamStatus,
	}
	if r.SNI != nil {
		req.SNI = *r.SNI
	} else if r.TLS {
		req.SNI = hostWithoutPort(r.Host)
		if strings.HasPrefix(req.SNI, "[") || isIP(req.SNI) {
			req.SNI = "" // clients send no SNI for IP addresses
		}
	}
	return req
}

func isIP(s string) bool {
	return s != "" && strings.Trim(s, "0123456789.") == ""
}

func headerList(m map[string]string) []Header {
	var out []Header
	for _, k := range sortedKeys(m) {
		out = append(out, Header{Name: k, Value: m[k]})
	}
	return out
}

// Mismatch is one expected field that differs.
type Mismatch struct {
	Field string `json:"field"`
	Want  string `json:"want"`
	Got   string `json:"got"`
}

// Compare lists the fields of want that o does not satisfy.
func Compare(want Expect, o Outcome) []Mismatch {
	var ms []Mismatch
	str := func(field string, w *string, got string) {
		if w != nil && *w != got {
			ms = append(ms, Mismatch{field, quote(*w), quote(got)})
		}
	}
	boolean := func(field string, w *bool, got bool) {
		if w != nil && *w != got {
			ms = append(ms, Mismatch{field, fmt.Sprint(*w), fmt.Sprint(got)})
		}
	}
	integer := func(field string, w *int, got int) {
		if w != nil && *w != got {
			ms = append(ms, Mismatch{field, fmt.Sprint(*w), fmt.Sprint(got)})
		}
	}
	list := func(field string, w, got any) {
		wj, gj := jsonString(w), jsonString(got)
		if wj != gj {
			ms = append(ms, Mismatch{field, wj, gj})
		}
	}

	str("listener", want.Listener, o.Listener)
	str("filterChain", want.FilterChain, o.FilterChain)
	if want.Certificate != nil && !contains(o.Certificates, *want.Certificate) {
		ms = append(ms, Mismatch{"certificate", quote(*want.Certificate), jsonString(o.Certificates)})
	}
	str("routeConfig", want.RouteConfig, o.RouteConfig)
	str("virtualHost", want.VirtualHost, o.VirtualHost)
	str("route", want.Route, o.Route)
	str("cluster", want.Cluster, o.Cluster)
	str("service", want.Service, o.Service)
	if want.Weighted != nil {
		list("weighted", nonNil(*want.Weighted), nonNil(o.Weighted))
	}
	str("upstreamPath", want.UpstreamPath, o.UpstreamPath)
	str("upstreamHost", want.UpstreamHost, o.UpstreamHost)
	if want.Endpoints != nil {
		list("endpoints", nonNil(*want.Endpoints), nonNil(o.Endpoints))
	}
	if want.Mirrors != nil {
		list("mirrors", nonNil(*want.Mirrors), nonNil(o.Mirrors))
	}
	str("timeout", want.Timeout, o.Timeout)
	integer("status", want.Status, o.Status)
	boolean("forwarded", want.Forwarded, o.Forwarded)
	boolean("noListener", want.NoListener, o.NoListener)
	boolean("noFilterChain", want.NoFilterChain, o.NoFilterChain)
	boolean("connectionFailed", want.ConnectionFailed, o.ConnectionError != "")
	boolean("noRoute", want.NoRoute, o.NoRoute)
	boolean("tcpProxy", want.TCPProxy, o.TCPProxy)
	boolean("clusterMissing", want.ClusterMissing, o.ClusterMissing)
	boolean("noHealthyUpstream", want.NoHealthyUpstream, o.NoHealthyUpstream)

	if r := want.Redirect; r != nil {
		if o.Redirect == nil {
			ms = append(ms, Mismatch{"redirect", jsonString(r), "no redirect"})
		} else {
			integer("redirect.status", r.Status, o.Redirect.Status)
			str("redirect.location", r.Location, o.Redirect.Location)
		}
	}
	if d := want.DirectResponse; d != nil {
		if o.DirectResponse == nil {
			ms = append(ms, Mismatch{"directResponse", jsonString(d), "no direct response"})
		} else {
			integer("directResponse.status", d.Status, o.DirectResponse.Status)
			str("directResponse.body", d.Body, o.DirectResponse.Body)
			str("directResponse.location", d.Location, o.DirectResponse.Location)
		}
	}
	headers := func(field string, w *ExpectHeaders, final map[string]string, removed []string) {
		if w == nil {
			return
		}
		for _, k := range sortedKeys(w.Add) {
			got, ok := final[strings.ToLower(k)]
			if !ok {
				ms = append(ms, Mismatch{field + ".add[" + k + "]", quote(w.Add[k]), "absent"})
			} else if got != w.Add[k] {
				ms = append(ms, Mismatch{field + ".add[" + k + "]", quote(w.Add[k]), quote(got)})
			}
		}
		for _, k := range w.Remove {
			k = strings.ToLower(k)
			if !contains(removed, k) {
				ms = append(ms, Mismatch{field + ".remove[" + k + "]", "removed", "not removed by any mutation"})
			} else if v, ok := final[k]; ok {
				ms = append(ms, Mismatch{field + ".remove[" + k + "]", "removed", "present again: " + quote(v)})
			}
		}
	}
	headers("requestHeaders", want.RequestHeaders, o.RequestHeaders, o.RequestHeadersRemoved)
	headers("responseHeaders", want.ResponseHeaders, o.ResponseHeaders, o.ResponseHeadersRemoved)

	boolean("denied", want.Denied, o.Denied != nil)
	if want.DeniedBy != nil {
		got := ""
		if o.Denied != nil {
			got = o.Denied.Filter
		}
		str("deniedBy", want.DeniedBy, got)
	}
	if w := want.CustomResponse; w != nil {
		cr := o.CustomResponse
		boolean("customResponse.applied", w.Applied, cr != nil)
		rest := *w
		rest.Applied = nil
		switch {
		case cr == nil && rest != (ExpectCustomResponse{}):
			ms = append(ms, Mismatch{"customResponse", jsonString(rest), "no custom response"})
		case cr != nil:
			str("customResponse.policy", w.Policy, cr.Policy)
			integer("customResponse.status", w.Status, cr.Status)
			str("customResponse.body", w.Body, cr.Body)
			boolean("customResponse.redirected", w.Redirected, cr.Redirected != nil)
			r := cr.Redirected
			if r == nil {
				r = &Outcome{}
			}
			str("customResponse.route", w.Route, r.Route)
			str("customResponse.cluster", w.Cluster, r.Cluster)
			str("customResponse.service", w.Service, r.Service)
			str("customResponse.upstreamPath", w.UpstreamPath, r.UpstreamPath)
			str("customResponse.upstreamHost", w.UpstreamHost, r.UpstreamHost)
			headers("customResponse.requestHeaders", w.RequestHeaders, r.RequestHeaders, r.RequestHeadersRemoved)
			headers("customResponse.responseHeaders", w.ResponseHeaders, cr.ResponseHeaders, nil)
		}
	}
	if w := want.LocalRateLimit; w != nil {
		if o.LocalRateLimit == nil {
			ms = append(ms, Mismatch{"localRateLimit", jsonString(w), "none"})
		} else {
			u32 := func(field string, w *uint32, got uint32) {
				if w != nil && *w != got {
					ms = append(ms, Mismatch{field, fmt.Sprint(*w), fmt.Sprint(got)})
				}
			}
			u32("localRateLimit.maxTokens", w.MaxTokens, o.LocalRateLimit.MaxTokens)
			u32("localRateLimit.tokensPerFill", w.TokensPerFill, o.LocalRateLimit.TokensPerFill)
			str("localRateLimit.fillInterval", w.FillInterval, o.LocalRateLimit.FillInterval)
		}
	}
	return ms
}

func quote(s string) string { return fmt.Sprintf("%q", s) }

func jsonString(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Result of one test.
type Result struct {
	Name string `json:"name"`
	// Result is pass, fail or error (the request could not be evaluated).
	Result     string     `json:"result"`
	Mismatches []Mismatch `json:"mismatches,omitempty"`
	Error      string     `json:"error,omitempty"`
	Outcome    *Outcome   `json:"outcome,omitempty"`
}

// Result values.
const (
	Pass  = "pass"
	Fail  = "fail"
	Error = "error"
)

// RunTests evaluates every test of tf against res.
func RunTests(res Resources, tf *TestFile) []Result {
	out := make([]Result, 0, len(tf.Tests))
	for _, t := range tf.Tests {
		o, err := Evaluate(res, t.Request.Request())
		r := Result{Name: t.Name, Outcome: &o}
		switch {
		case err != nil:
			r.Result, r.Error = Error, err.Error()
		default:
			r.Mismatches = Compare(t.Expect, o)
			r.Result = Pass
			if len(r.Mismatches) > 0 {
				r.Result = Fail
			}
		}
		out = append(out, r)
	}
	return out
}

// Summary counts results.
type Summary struct {
	Passed int `json:"passed"`
	Failed int `json:"failed"`
	Errors int `json:"errors"`
}

// Summarize counts the results by kind.
func Summarize(results []Result) Summary {
	var s Summary
	for _, r := range results {
		switch r.Result {
		case Pass:
			s.Passed++
		case Fail:
			s.Failed++
		default:
			s.Errors++
		}
	}
	return s
}

// Report is the machine-readable (-o json) report.
type Report struct {
	Summary
	Tests []Result `json:"tests"`
}

// TextReport renders results one line per test, a diff of expected and
// actual values under each failure, and with details the full outcome.
func TextReport(results []Result, details bool) string {
	var b strings.Builder
	for _, r := range results {
		fmt.Fprintf(&b, "%-5s %s\n", strings.ToUpper(r.Result), r.Name)
		if r.Error != "" {
			fmt.Fprintf(&b, "      error: %s\n", r.Error)
		}
		for _, m := range r.Mismatches {
			fmt.Fprintf(&b, "      %s: want %s, got %s\n", m.Field, m.Want, m.Got)
		}
		switch {
		case details && r.Outcome != nil:
			if y, err := yaml.Marshal(r.Outcome); err == nil {
				for _, line := range strings.Split(strings.TrimRight(string(y), "\n"), "\n") {
					fmt.Fprintf(&b, "      | %s\n", line)
				}
			}
		case r.Result == Fail && r.Outcome != nil:
			if why := r.Outcome.NoRouteReason + r.Outcome.ConnectionError; why != "" {
				fmt.Fprintf(&b, "      (%s)\n", why)
			}
		}
	}
	s := Summarize(results)
	fmt.Fprintf(&b, "%d tests: %d passed, %d failed, %d errors\n", len(results), s.Passed, s.Failed, s.Errors)
	return b.String()
}
