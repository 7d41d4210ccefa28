package app

import (
	"fmt"
	"runtime/debug"
	"sort"
	"time"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/hxds/hxds/internal/source/file"
	"github.com/hxds/hxds/translate"
	"github.com/hxds/hxds/translate/diag"
	"github.com/hxds/hxds/translate/envoy"
	"github.com/hxds/hxds/translate/input"
	"github.com/hxds/hxds/xds/cache"
	"github.com/hxds/hxds/xds/eds"
)

// pushOrder is make-before-break: clusters and their endpoints, then secrets
// and extension configs (ECDS), before the listeners and routes that use them.
var pushOrder = []string{
	resourcev3.ClusterType,
	resourcev3.SecretType,
	resourcev3.ExtensionConfigType,
	resourcev3.ListenerType,
	resourcev3.RouteType,
}

// Pipeline runs translation and publishes its output: the part of the server
// that `hxds translate` shares, so both produce the same configuration.
type Pipeline struct {
	Cache   *cache.Cache
	EDS     *eds.Updater
	Options input.Options
	Log     *zap.Logger

	groups map[string]bool

	duration prometheus.Histogram
	rebuilds *prometheus.CounterVec
}

// NewPipeline registers the translation metrics on reg.
// slices supplies the current EndpointSlices to the endpoint path.
func NewPipeline(opts input.Options, slices func() envoy.ServiceSlices, reg prometheus.Registerer, log *zap.Logger) *Pipeline {
	c := cache.New(cache.Options{DefaultGroup: opts.Group, Logger: log.Named("cache")})
	p := &Pipeline{
		Cache: c, EDS: eds.New(c, slices, reg), Options: opts, Log: log, groups: map[string]bool{},
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hxds_translation_duration_seconds",
			Help:    "Time to translate all inputs into Envoy resources.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		rebuilds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hxds_translations_total", Help: "Full translations run, by result.",
		}, []string{"result"}),
	}
	reg.MustRegister(p.duration, p.rebuilds)
	return p
}

// Rebuild translates snap and publishes the result. A panic inside
// translation (a bug: no input may cause one) is caught, logged with its
// stack, and leaves the previous configuration served.
func (p *Pipeline) Rebuild(snap *input.Snapshot) (res *translate.Result, err error) {
	start := time.Now()
	defer func() {
		if r := recover(); r != nil {
			p.rebuilds.WithLabelValues("panic").Inc()
			p.Log.Error("translation panicked; keeping the previous configuration",
				zap.Any("panic", r), zap.ByteString("stack", debug.Stack()))
			res, err = nil, fmt.Errorf("translation panicked: %v", r)
		}
	}()
	res = translate.Translate(snap, p.Options)
	took := time.Since(start)
	p.duration.Observe(took.Seconds())
	if err := p.Publish(res); err != nil {
		p.rebuilds.WithLabelValues("error").Inc()
		return nil, err
	}
	p.rebuilds.WithLabelValues("ok").Inc()
	p.Log.Info("configuration translated",
		zap.Duration("took", took), zap.Int("ingresses", len(snap.Ingresses)),
		zap.Int("rejected", res.Diagnostics.Rejected()))
	return res, nil
}

// Publish writes a translation result into the cache, group by group. Types
// whose content did not change are not pushed; a group that disappeared is
// emptied.
func (p *Pipeline) Publish(res *translate.Result) error {
	groups := make([]string, 0, len(res.Groups))
	for g := range res.Groups {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	for _, g := range groups {
		r := res.Groups[g]
		byType := r.ByType()
		if _, err := p.Cache.SetResources(g, resourcev3.ClusterType, byType[resourcev3.ClusterType]); err != nil {
			return fmt.Errorf("publish clusters of %s: %w", g, err)
		}
		if err := p.EDS.SetTargets(g, r.EndpointTargets); err != nil {
			return err
		}
		for _, t := range pushOrder[1:] {
			if _, err := p.Cache.SetResources(g, t, byType[t]); err != nil {
				return fmt.Errorf("publish %s of %s: %w", t, g, err)
			}
		}
	}
	for g := range p.groups {
		if _, ok := res.Groups[g]; ok {
			continue
		}
		for _, t := range append(pushOrder, resourcev3.EndpointType) {
			if _, err := p.Cache.SetResources(g, t, nil); err != nil {
				return fmt.Errorf("clear %s of removed group %s: %w", t, g, err)
			}
		}
		p.EDS.RemoveGroup(g)
	}
	p.groups = map[string]bool{}
	for _, g := range groups {
		p.groups[g] = true
	}
	return nil
}

// Status merges what the source said about each document with what
// translation said about each object, and lists every loaded object. A
// translation finding is attached to the file and document of the object that
// was served, so /debug/status names the file for every finding.
func Status(source *diag.Set, loaded []diag.Object, res *translate.Result) []diag.Status {
	type name struct{ kind, namespace, name string }
	all := diag.NewSet()
	origin := make(map[name]diag.Object, len(loaded))
	for _, o := range loaded {
		all.Accept(o)
		origin[name{o.Kind, o.Namespace, o.Name}] = o
	}
	all.Merge(source)
	if res != nil {
		for _, st := range res.Diagnostics.List() {
			if o, ok := origin[name{st.Object.Kind, st.Object.Namespace, st.Object.Name}]; ok {
				st.Object.File, st.Object.Doc = o.File, o.Doc
			}
			all.Add(st)
		}
	}
	return all.List()
}

// Loaded lists the objects a source delivered, with their origins.
func Loaded(res *file.Result) []diag.Object {
	out := make([]diag.Object, 0, len(res.Objects))
	for _, o := range res.Objects {
		out = append(out, diag.Object{
			Kind: string(o.Key.Kind), Namespace: o.Key.Namespace, Name: o.Key.Name, File: o.Origin.File, Doc: o.Origin.Doc,
		})
	}
	return out
}
