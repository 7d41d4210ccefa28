package agent

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

type metrics struct {
	reg         *prometheus.Registry
	streams     *prometheus.GaugeVec
	conversions *prometheus.CounterVec
	nacks       prometheus.Counter
}

func newMetrics(a *Agent) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		streams: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hxds_agent_streams", Help: "Proxied ADS streams open, by protocol.",
		}, []string{"protocol"}),
		conversions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hxds_agent_wasm_conversions_total",
			Help: "Remote Wasm modules in ECDS resources, by result: converted (local file), failed (response NACKed), fail_open (replaced by allow-all RBAC).",
		}, []string{"result"}),
		nacks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hxds_agent_nacks_total", Help: "ECDS responses NACKed upstream because a module could not be loaded.",
		}),
	}
	stat := func(name, help string, f func() uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(f()) })
	}
	m.reg.MustRegister(m.streams, m.conversions, m.nacks,
		stat("hxds_agent_wasm_fetches_total", "Modules downloaded, verified and stored.", func() uint64 { return a.cache.Stats().Downloads }),
		stat("hxds_agent_wasm_fetch_failures_total", "Module lookups that failed.", func() uint64 { return a.cache.Stats().Failures }),
		stat("hxds_agent_wasm_cache_hits_total", "Module lookups answered from the cache.", func() uint64 { return a.cache.Stats().Hits }),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	for _, r := range []string{"converted", "failed", "fail_open"} {
		m.conversions.WithLabelValues(r)
	}
	return m
}

func (m *metrics) observe(oc outcome, err error) {
	switch {
	case oc == failedOpen:
		m.conversions.WithLabelValues("fail_open").Inc()
	case err != nil:
		m.conversions.WithLabelValues("failed").Inc()
	case oc == converted:
		m.conversions.WithLabelValues("converted").Inc()
	}
}
