package zookeeper

import (
	"context"
	"errors"
	"maps"
	"path"
	"reflect"
	"slices"
	"strings"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/hxds/hxds/discovery"
)

// dubboIface is one /dubbo/<interface> node.
type dubboIface struct {
	name      string
	path      string   // /dubbo/<name>/providers
	providers []string // provider node names, as last listed
}

// springSvc is one Spring Cloud <root>/<service> node.
type springSvc struct {
	root, name, path, host string
	insts                  map[string]instEntry // by instance node name
}

// instEntry is one parsed Spring Cloud instance node; ok is false for a
// node that is skipped (unparsable, disabled, not UP).
type instEntry struct {
	inst discovery.Instance
	ok   bool
}

// Units are what publishes hosts: a Dubbo interface (any number of
// version/group hosts) or a Spring Cloud service (one host).
func dubboUnit(iface string) string    { return "dubbo:" + iface }
func springUnit(svcPath string) string { return "spring:" + svcPath }

func (w *Watcher) resetState() {
	w.ifaces = map[string]*dubboIface{}
	w.provPaths = map[string]string{}
	w.rootSvcs = map[string]map[string]*springSvc{}
	for _, r := range w.roots {
		w.rootSvcs[r] = map[string]*springSvc{}
	}
	w.svcPaths = map[string]*springSvc{}
	w.instPaths = map[string]*springSvc{}
	w.published = map[string]discovery.Service{}
	w.owner = map[string]string{}
	w.unitHosts = map[string]map[string]bool{}
}

func providersPath(iface string) string { return dubboRoot + "/" + iface + "/providers" }

// interfaces filters /dubbo's children down to interface names.
func interfaces(kids []string) []string {
	out := make([]string, 0, len(kids))
	for _, k := range kids {
		if !dubboSkip[k] {
			out = append(out, k)
		}
	}
	return out
}

// springServices filters a root's children down to service names: under
// the root "/", ZooKeeper's own node, /dubbo and the other roots are not
// services.
func (w *Watcher) springServices(root string, kids []string) []string {
	out := make([]string, 0, len(kids))
	for _, k := range kids {
		p := path.Join(root, k)
		if w.reserved(p) {
			continue
		}
		out = append(out, k)
	}
	return out
}

func (w *Watcher) reserved(p string) bool {
	for _, r := range append([]string{dubboRoot, "/zookeeper"}, w.roots...) {
		if r == p || strings.HasPrefix(r, p+"/") {
			return true
		}
	}
	return false
}

// fetchService lists a Spring Cloud service's instances and reads the new
// ones. An instance whose data watch is still armed has not changed since
// old was read, so its parsed entry is reused. Safe to run concurrently
// while the loop waits (it only reads w's maps).
func (w *Watcher) fetchService(root, name string, old *springSvc) (*springSvc, bool, error) {
	p := path.Join(root, name)
	s := &springSvc{root: root, name: name, path: p, host: springHost(name, rootSuffix(root)), insts: map[string]instEntry{}}
	kids, exists, err := w.children(p)
	if err != nil {
		return nil, false, err
	}
	for _, k := range kids {
		ip := p + "/" + k
		if old != nil {
			if e, ok := old.insts[k]; ok && w.isArmed(ip, watchData) {
				s.insts[k] = e
				continue
			}
		}
		b, ok, err := w.data(ip)
		if err != nil {
			return nil, false, err
		}
		if ok {
			s.insts[k] = w.parseInstance(ip, b)
		}
	}
	return s, exists, nil
}

func (w *Watcher) parseInstance(p string, b []byte) instEntry {
	in, err := parseSpringInstance(b)
	if err != nil {
		if errors.Is(err, errSkip) {
			w.log.Debug("spring cloud instance not published", zap.String("node", p), zap.Error(err))
		} else {
			w.log.Warn("spring cloud instance ignored", zap.String("node", p), zap.Error(err))
		}
		return instEntry{}
	}
	return instEntry{inst: in, ok: true}
}

// fetchProviders lists one Dubbo interface's providers.
func (w *Watcher) fetchProviders(name string) (*dubboIface, error) {
	d := &dubboIface{name: name, path: providersPath(name)}
	kids, _, err := w.children(d.path)
	if err != nil {
		return nil, err
	}
	d.providers = kids
	return d, nil
}

// resync lists the whole registry, re-arming every watch that is not
// armed, and publishes the listing with Replace if it differs from what
// was published (or nothing complete was published yet).
func (w *Watcher) resync(ctx context.Context) error {
	g, _ := errgroup.WithContext(ctx)
	g.SetLimit(parallelism)

	kids, _, err := w.children(dubboRoot)
	if err != nil {
		return err
	}
	names := interfaces(kids)
	ifaces := make([]*dubboIface, len(names))
	for i, n := range names {
		g.Go(func() (err error) {
			ifaces[i], err = w.fetchProviders(n)
			return err
		})
	}
	type rootList struct {
		root string
		svcs []*springSvc
	}
	roots := make([]rootList, len(w.roots))
	for ri, r := range w.roots {
		kids, _, err := w.children(r)
		if err != nil {
			_ = g.Wait()
			return err
		}
		names := w.springServices(r, kids)
		roots[ri] = rootList{root: r, svcs: make([]*springSvc, len(names))}
		for i, n := range names {
			old := w.svcPaths[path.Join(r, n)]
			g.Go(func() (err error) {
				roots[ri].svcs[i], _, err = w.fetchService(r, n, old)
				return err
			})
		}
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}

	// Build the new state and everything it publishes.
	prevUnits := w.unitHosts
	prevPublished := w.published
	w.resetState()
	all := map[string]discovery.Service{}
	for _, d := range ifaces {
		w.ifaces[d.name] = d
		w.provPaths[d.path] = d.name
		unit := dubboUnit(d.name)
		w.claim(unit, w.dubboServices(d, prevUnits[unit]), all, prevPublished)
	}
	for _, rl := range roots {
		for _, s := range rl.svcs {
			w.addSpring(s)
			unit := springUnit(s.path)
			w.claim(unit, w.springService(s), all, prevPublished)
		}
	}
	w.published = all
	if w.ready && maps.EqualFunc(all, prevPublished, serviceEqual) {
		return nil
	}
	list := make([]discovery.Service, 0, len(all))
	for _, h := range slices.Sorted(maps.Keys(all)) {
		list = append(list, all[h])
	}
	w.pub.Replace(list)
	w.ready = true
	w.log.Info("zookeeper listing published", zap.Int("services", len(list)), zap.Int("dubboInterfaces", len(ifaces)))
	return nil
}

// claim records unit's services in all (the full listing being built),
// skipping hosts another unit already publishes.
func (w *Watcher) claim(unit string, desired map[string]discovery.Service, all map[string]discovery.Service, prev map[string]discovery.Service) {
	for _, h := range slices.Sorted(maps.Keys(desired)) {
		if o, taken := w.owner[h]; taken && o != unit {
			w.log.Warn("two registry entries give the same host; keeping the first", zap.String("host", h), zap.String("kept", o), zap.String("ignored", unit))
			continue
		}
		s, ok := fillEmpty(desired[h], prev)
		if !ok {
			continue
		}
		w.owner[h] = unit
		if w.unitHosts[unit] == nil {
			w.unitHosts[unit] = map[string]bool{}
		}
		w.unitHosts[unit][h] = true
		all[h] = s
	}
}

// fillEmpty gives a service without instances the port, protocol and
// resolution it was last published with, so an outage does not change its
// cluster. A service that never had instances is not published: it has no
// port to give a cluster.
func fillEmpty(s discovery.Service, published map[string]discovery.Service) (discovery.Service, bool) {
	if len(s.Instances) > 0 {
		return s, true
	}
	old, ok := published[s.Host]
	if !ok {
		return s, false
	}
	s.Port, s.Protocol, s.Resolution, s.Instances = old.Port, old.Protocol, old.Resolution, nil
	return s, true
}

// publishUnit publishes what one unit now gives: Update for each new or
// changed host, Remove for each host it no longer gives.
func (w *Watcher) publishUnit(unit string, desired map[string]discovery.Service) {
	for _, h := range slices.Sorted(maps.Keys(desired)) {
		if o, taken := w.owner[h]; taken && o != unit {
			w.log.Warn("two registry entries give the same host; keeping the first", zap.String("host", h), zap.String("kept", o), zap.String("ignored", unit))
			continue
		}
		s, ok := fillEmpty(desired[h], w.published)
		if !ok {
			continue
		}
		w.owner[h] = unit
		if w.unitHosts[unit] == nil {
			w.unitHosts[unit] = map[string]bool{}
		}
		w.unitHosts[unit][h] = true
		if old, ok := w.published[h]; ok && serviceEqual(old, s) {
			continue
		}
		w.published[h] = s
		w.pub.Update(s)
	}
	for _, h := range slices.Sorted(maps.Keys(w.unitHosts[unit])) {
		if _, keep := desired[h]; keep {
			continue
		}
		delete(w.unitHosts[unit], h)
		delete(w.owner, h)
		delete(w.published, h)
		w.pub.Remove(h)
	}
	if len(w.unitHosts[unit]) == 0 {
		delete(w.unitHosts, unit)
	}
}

// dubboServices is what one interface publishes: a host per
// version/group among its providers, and the hosts it published before
// with no instances (their providers vanished; the interface still
// exists).
func (w *Watcher) dubboServices(d *dubboIface, before map[string]bool) map[string]discovery.Service {
	byHost := map[string][]discovery.Instance{}
	for _, p := range d.providers {
		host, in, err := parseDubboProvider(d.name, p)
		if err != nil {
			if errors.Is(err, errSkip) {
				w.log.Debug("dubbo provider not published", zap.String("interface", d.name), zap.String("node", p), zap.Error(err))
			} else {
				w.log.Warn("dubbo provider ignored", zap.String("interface", d.name), zap.String("node", p), zap.Error(err))
			}
			continue
		}
		byHost[host] = append(byHost[host], in)
	}
	out := make(map[string]discovery.Service, len(byHost)+len(before))
	for h := range before {
		out[h] = discovery.Service{Host: h, Protocol: discovery.ProtocolDubbo}
	}
	for h, in := range byHost {
		out[h] = buildService(h, discovery.ProtocolDubbo, in)
	}
	return out
}

// springService is what one Spring Cloud service publishes: its host,
// unless its protocol is not supported.
func (w *Watcher) springService(s *springSvc) map[string]discovery.Service {
	in := make([]discovery.Instance, 0, len(s.insts))
	for _, e := range s.insts {
		if e.ok {
			in = append(in, e.inst)
		}
	}
	svc := buildService(s.host, discovery.ProtocolHTTP, in)
	if len(svc.Instances) > 0 {
		p, err := discovery.ParseProtocol(svc.Instances[0].Metadata["protocol"])
		if err != nil {
			w.log.Warn("spring cloud service skipped", zap.String("host", s.host), zap.Error(err))
			return nil
		}
		svc.Protocol = p
	}
	if err := checkHost(s.host); err != nil {
		w.log.Warn("spring cloud service skipped", zap.String("service", s.path), zap.Error(err))
		return nil
	}
	return map[string]discovery.Service{s.host: svc}
}

// buildService sorts and de-duplicates instances (same address and port:
// the first by order wins) and takes the port from the first.
func buildService(host string, proto discovery.Protocol, in []discovery.Instance) discovery.Service {
	discovery.SortInstances(in)
	in = slices.CompactFunc(in, func(a, b discovery.Instance) bool { return a.Address == b.Address && a.Port == b.Port })
	s := discovery.Service{Host: host, Protocol: proto}
	if len(in) == 0 {
		return s
	}
	s.Instances = in
	s.Port = in[0].Port
	s.Resolution = resolution(in)
	return s
}

func serviceEqual(a, b discovery.Service) bool { return reflect.DeepEqual(a, b) }

func (w *Watcher) addSpring(s *springSvc) {
	w.rootSvcs[s.root][s.name] = s
	w.svcPaths[s.path] = s
	for k := range s.insts {
		w.instPaths[s.path+"/"+k] = s
	}
}

func (w *Watcher) dropSpring(s *springSvc) {
	delete(w.rootSvcs[s.root], s.name)
	delete(w.svcPaths, s.path)
	for k := range s.insts {
		delete(w.instPaths, s.path+"/"+k)
	}
	w.publishUnit(springUnit(s.path), nil)
}

func (w *Watcher) publishSpring(s *springSvc) {
	w.publishUnit(springUnit(s.path), w.springService(s))
}

func (w *Watcher) publishDubbo(d *dubboIface) {
	unit := dubboUnit(d.name)
	w.publishUnit(unit, w.dubboServices(d, w.unitHosts[unit]))
}

// handle re-reads the paths whose watches fired and publishes what
// changed.
func (w *Watcher) handle(ctx context.Context, paths []string) error {
	slices.Sort(paths)
	for _, p := range paths {
		if err := ctx.Err(); err != nil {
			return err
		}
		var err error
		switch {
		case p == dubboRoot:
			err = w.relistDubbo(ctx)
		case w.rootSvcs[p] != nil:
			err = w.relistRoot(ctx, p)
		case w.provPaths[p] != "":
			d := w.ifaces[w.provPaths[p]]
			var nd *dubboIface
			if nd, err = w.fetchProviders(d.name); err == nil {
				d.providers = nd.providers
				w.publishDubbo(d)
			}
		case w.svcPaths[p] != nil:
			err = w.relistService(w.svcPaths[p])
		case w.instPaths[p] != nil:
			err = w.refetchInstance(w.instPaths[p], p)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (w *Watcher) relistDubbo(ctx context.Context) error {
	kids, _, err := w.children(dubboRoot)
	if err != nil {
		return err
	}
	names := interfaces(kids)
	cur := make(map[string]bool, len(names))
	var added []string
	for _, n := range names {
		cur[n] = true
		if w.ifaces[n] == nil {
			added = append(added, n)
		}
	}
	for _, n := range slices.Sorted(maps.Keys(w.ifaces)) {
		if !cur[n] {
			d := w.ifaces[n]
			delete(w.ifaces, n)
			delete(w.provPaths, d.path)
			w.publishUnit(dubboUnit(n), nil)
		}
	}
	fetched := make([]*dubboIface, len(added))
	g, _ := errgroup.WithContext(ctx)
	g.SetLimit(parallelism)
	for i, n := range added {
		g.Go(func() (err error) {
			fetched[i], err = w.fetchProviders(n)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for _, d := range fetched {
		w.ifaces[d.name] = d
		w.provPaths[d.path] = d.name
		w.publishDubbo(d)
	}
	return nil
}

func (w *Watcher) relistRoot(ctx context.Context, root string) error {
	kids, _, err := w.children(root)
	if err != nil {
		return err
	}
	names := w.springServices(root, kids)
	svcs := w.rootSvcs[root]
	cur := make(map[string]bool, len(names))
	var added []string
	for _, n := range names {
		cur[n] = true
		if svcs[n] == nil {
			added = append(added, n)
		}
	}
	for _, n := range slices.Sorted(maps.Keys(svcs)) {
		if !cur[n] {
			w.dropSpring(svcs[n])
		}
	}
	fetched := make([]*springSvc, len(added))
	g, _ := errgroup.WithContext(ctx)
	g.SetLimit(parallelism)
	for i, n := range added {
		g.Go(func() (err error) {
			fetched[i], _, err = w.fetchService(root, n, nil)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for _, s := range fetched {
		w.addSpring(s)
		w.publishSpring(s)
	}
	return nil
}

func (w *Watcher) relistService(old *springSvc) error {
	s, exists, err := w.fetchService(old.root, old.name, old)
	if err != nil || !exists {
		// A deleted service node also fires its root's child watch,
		// which removes the service.
		return err
	}
	for k := range old.insts {
		delete(w.instPaths, old.path+"/"+k)
	}
	w.addSpring(s)
	w.publishSpring(s)
	return nil
}

func (w *Watcher) refetchInstance(s *springSvc, p string) error {
	b, ok, err := w.data(p)
	if err != nil {
		return err
	}
	k := strings.TrimPrefix(p, s.path+"/")
	if !ok {
		delete(s.insts, k)
		delete(w.instPaths, p)
	} else {
		s.insts[k] = w.parseInstance(p, b)
	}
	w.publishSpring(s)
	return nil
}
