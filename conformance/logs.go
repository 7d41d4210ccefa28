package conformance

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	restclient "k8s.io/client-go/rest"
)

// podLogs holds what the simulated echo servers print, per pod, so the
// suite's mirror checks read them through the usual pod log API.
type podLogs struct {
	mu    sync.Mutex
	lines map[string][]logLine // namespace/pod
}

type logLine struct {
	at   time.Time
	text string
}

func newPodLogs() *podLogs { return &podLogs{lines: map[string][]logLine{}} }

func (l *podLogs) add(ns, pod, text string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines[ns+"/"+pod] = append(l.lines[ns+"/"+pod], logLine{at: time.Now(), text: text})
}

func (l *podLogs) since(ns, pod string, since time.Time) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, ln := range l.lines[ns+"/"+pod] {
		// SinceTime has second granularity, as in the kubelet.
		if !ln.at.Before(since.Truncate(time.Second)) {
			b.WriteString(ln.text)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// clientset is client-go's fake clientset whose pod log requests are
// answered from podLogs (the fake's own answer is a fixed "fake logs").
type clientset struct {
	*fake.Clientset
	logs *podLogs
}

var _ kubernetes.Interface = clientset{}

func (c clientset) CoreV1() typedcorev1.CoreV1Interface {
	return coreV1{CoreV1Interface: c.Clientset.CoreV1(), logs: c.logs}
}

type coreV1 struct {
	typedcorev1.CoreV1Interface
	logs *podLogs
}

func (c coreV1) Pods(ns string) typedcorev1.PodInterface {
	return pods{PodInterface: c.CoreV1Interface.Pods(ns), ns: ns, logs: c.logs}
}

type pods struct {
	typedcorev1.PodInterface
	ns   string
	logs *podLogs
}

func (p pods) GetLogs(name string, opts *corev1.PodLogOptions) *restclient.Request {
	var since time.Time
	if opts != nil && opts.SinceTime != nil {
		since = opts.SinceTime.Time
	}
	body := p.logs.since(p.ns, name, since)
	transport := roundTripFunc(func(*http.Request) (*http.Response, error) {
		return &http.Response{
			StatusCode: http.StatusOK,
			Header:     http.Header{"Content-Type": []string{"text/plain"}},
			Body:       io.NopCloser(bytes.NewBufferString(body)),
		}, nil
	})
	base := &url.URL{Scheme: "http", Host: "logs.invalid"}
	return restclient.NewRequestWithClient(base, "", restclient.ClientContentConfig{}, &http.Client{Transport: transport}).
		Verb("GET").Namespace(p.ns).Resource("pods").Name(name).SubResource("log")
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
