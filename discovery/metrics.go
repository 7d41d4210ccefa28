package discovery

import "github.com/prometheus/client_golang/prometheus"

// Metrics per registry, read from the reconciler at scrape time so they
// are as live as /registry/watcherStatus.
var (
	metricServices  = prometheus.NewDesc("hxds_registry_services", "Services a registry contributes to the catalog.", []string{"registry", "type"}, nil)
	metricInstances = prometheus.NewDesc("hxds_registry_instances", "Instances served for a registry's services.", []string{"registry", "type"}, nil)
	metricHeld      = prometheus.NewDesc("hxds_registry_held_services", "Services served from last known instances during an outage grace period.", []string{"registry", "type"}, nil)
	metricHealthy   = prometheus.NewDesc("hxds_registry_healthy", "1 when the last exchange with the registry succeeded.", []string{"registry", "type"}, nil)
	metricReady     = prometheus.NewDesc("hxds_registry_ready", "1 once a complete listing was received.", []string{"registry", "type"}, nil)
	metricLastSync  = prometheus.NewDesc("hxds_registry_last_sync_timestamp_seconds", "When the registry last answered successfully (Unix time).", []string{"registry", "type"}, nil)
	metricErrors    = prometheus.NewDesc("hxds_registry_errors_total", "Failed exchanges with the registry.", []string{"registry", "type"}, nil)
)

// Describe implements prometheus.Collector.
func (r *Reconciler) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{metricServices, metricInstances, metricHeld, metricHealthy, metricReady, metricLastSync, metricErrors} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (r *Reconciler) Collect(ch chan<- prometheus.Metric) {
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	for _, s := range r.Statuses() {
		l := []string{s.Name, s.Type}
		ch <- prometheus.MustNewConstMetric(metricServices, prometheus.GaugeValue, float64(s.Services), l...)
		ch <- prometheus.MustNewConstMetric(metricInstances, prometheus.GaugeValue, float64(s.Instances), l...)
		ch <- prometheus.MustNewConstMetric(metricHeld, prometheus.GaugeValue, float64(len(s.Held)), l...)
		ch <- prometheus.MustNewConstMetric(metricHealthy, prometheus.GaugeValue, b(s.Healthy), l...)
		ch <- prometheus.MustNewConstMetric(metricReady, prometheus.GaugeValue, b(s.Ready), l...)
		ch <- prometheus.MustNewConstMetric(metricErrors, prometheus.CounterValue, float64(s.Errors), l...)
		if s.LastSync != nil {
			ch <- prometheus.MustNewConstMetric(metricLastSync, prometheus.GaugeValue, float64(s.LastSync.UnixNano())/1e9, l...)
		}
	}
}
