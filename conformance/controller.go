package conformance

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1a2 "sigs.k8s.io/gateway-api/apis/v1alpha2"
	gwv1a3 "sigs.k8s.io/gateway-api/apis/v1alpha3"
	gwv1b1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	"github.com/hxds/hxds/routecheck"
	"github.com/hxds/hxds/translate"
	"github.com/hxds/hxds/translate/envoy"
	"github.com/hxds/hxds/translate/gatewayapi"
	"github.com/hxds/hxds/translate/input"
)

// GatewayAddress is the address the controller reports on every Gateway; the
// data plane simulation never dials it, so loopback keeps it harmless.
const GatewayAddress = "127.0.0.1"

// controller is hxds as a Kubernetes controller would run it: read every
// input from the API, translate, write the Gateway API status back, and
// serve the Envoy resources (here to the simulated data plane instead of
// over ADS). Envoy ACKs are taken as immediate, so Programmed follows
// translation.
type controller struct {
	store *apiStore
	work  *workloads
	opts  input.Options
	logf  func(string, ...any)

	mu        sync.RWMutex
	resources routecheck.Resources
	errs      int
}

func newController(store *apiStore, work *workloads, logf func(string, ...any)) *controller {
	return &controller{store: store, work: work, opts: input.DefaultOptions(), logf: logf}
}

// run reconciles after every write to the API until ctx ends.
func (c *controller) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.store.dirty:
		case <-time.After(time.Second):
			// A safety net: reconciling an unchanged cluster is a no-op.
		}
		if err := c.reconcile(ctx); err != nil && ctx.Err() == nil {
			c.mu.Lock()
			c.errs++
			c.mu.Unlock()
			c.logf("conformance controller: %v", err)
		}
	}
}

// current is what the data plane serves now.
func (c *controller) current() routecheck.Resources {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.resources
}

func (c *controller) reconcile(ctx context.Context) error {
	// Pods and slices first: they are inputs of the translation.
	for range 3 {
		changed, err := c.work.sync(ctx, c.store.raw)
		if err != nil {
			return err
		}
		if !changed {
			break
		}
	}
	snap, err := c.snapshot(ctx)
	if err != nil {
		return err
	}
	res := translate.Translate(snap, c.opts)
	group := res.Groups[c.opts.Group]
	all := group.AllByType(envoy.IndexSlices(snap.EndpointSlices))
	if problems := envoy.Check(all); problems != nil {
		// Served anyway, as hxds would not: make the failure visible.
		c.mu.Lock()
		c.errs++
		c.mu.Unlock()
		c.logf("conformance controller: generated resources fail envoy.Check: %v", problems)
	}
	c.mu.Lock()
	c.resources = all
	c.mu.Unlock()
	return c.writeStatus(ctx, res.GatewayAPI)
}

// snapshot reads every input kind from the API.
func (c *controller) snapshot(ctx context.Context) (*input.Snapshot, error) {
	snap := input.NewSnapshot()
	lists := []struct {
		kind input.Kind
		list client.ObjectList
	}{
		{input.KindNamespace, &corev1.NamespaceList{}},
		{input.KindService, &corev1.ServiceList{}},
		{input.KindEndpointSlice, &discoveryv1.EndpointSliceList{}},
		{input.KindSecret, &corev1.SecretList{}},
		{input.KindConfigMap, &corev1.ConfigMapList{}},
		{input.KindGatewayClass, &gwv1.GatewayClassList{}},
		{input.KindGateway, &gwv1.GatewayList{}},
		{input.KindHTTPRoute, &gwv1.HTTPRouteList{}},
		{input.KindGRPCRoute, &gwv1.GRPCRouteList{}},
		{input.KindReferenceGrant, &gwv1b1.ReferenceGrantList{}},
		{input.KindReferenceGrant, &gwv1.ReferenceGrantList{}},
		{input.KindTCPRoute, &gwv1.TCPRouteList{}},
		{input.KindTCPRoute, &gwv1a2.TCPRouteList{}},
		{input.KindTLSRoute, &gwv1.TLSRouteList{}},
		{input.KindTLSRoute, &gwv1a2.TLSRouteList{}},
		{input.KindTLSRoute, &gwv1a3.TLSRouteList{}},
		{input.KindBackendTLSPolicy, &gwv1.BackendTLSPolicyList{}},
	}
	for _, l := range lists {
		if err := c.store.raw.List(ctx, l.list); err != nil {
			return nil, fmt.Errorf("list %s: %w", l.kind, err)
		}
		items, err := meta.ExtractList(l.list)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", l.kind, err)
		}
		for _, item := range items {
			obj, ok := item.(client.Object)
			if !ok {
				continue
			}
			snap.Add(input.Key{Kind: l.kind, Namespace: obj.GetNamespace(), Name: obj.GetName()}, obj)
		}
	}
	return snap, nil
}

// writeStatus writes the translated status of every object this controller
// owns, keeping lastTransitionTime of conditions whose status is unchanged
// and the route parent entries of other controllers.
func (c *controller) writeStatus(ctx context.Context, st *gatewayapi.Status) error {
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	w := c.store.raw
	for _, gc := range st.GatewayClasses {
		obj := &gwv1.GatewayClass{}
		if err := w.Get(ctx, client.ObjectKey{Name: gc.Name}, obj); err != nil {
			continue
		}
		next := *gc.Status.DeepCopy()
		next.Conditions = stamp(obj.Status.Conditions, next.Conditions, now)
		if err := update(ctx, w, obj, &obj.Status, next); err != nil {
			return err
		}
	}
	for _, g := range st.Gateways {
		obj := &gwv1.Gateway{}
		if err := w.Get(ctx, client.ObjectKey{Namespace: g.Namespace, Name: g.Name}, obj); err != nil {
			continue
		}
		next := *g.Status.DeepCopy()
		next.Conditions = stamp(obj.Status.Conditions, next.Conditions, now)
		ip := gwv1.IPAddressType
		next.Addresses = []gwv1.GatewayStatusAddress{{Type: &ip, Value: GatewayAddress}}
		for i := range next.Listeners {
			for _, old := range obj.Status.Listeners {
				if old.Name == next.Listeners[i].Name {
					next.Listeners[i].Conditions = stamp(old.Conditions, next.Listeners[i].Conditions, now)
				}
			}
			next.Listeners[i].Conditions = stamp(nil, next.Listeners[i].Conditions, now)
		}
		if err := update(ctx, w, obj, &obj.Status, next); err != nil {
			return err
		}
	}
	ours := map[string][]gwv1.RouteParentStatus{}
	for _, r := range st.HTTPRoutes {
		ours["HTTPRoute/"+r.Namespace+"/"+r.Name] = r.Status.Parents
	}
	for _, r := range st.GRPCRoutes {
		ours["GRPCRoute/"+r.Namespace+"/"+r.Name] = r.Status.Parents
	}
	for _, r := range st.TCPRoutes {
		ours["TCPRoute/"+r.Namespace+"/"+r.Name] = r.Status.Parents
	}
	for _, r := range st.TLSRoutes {
		ours["TLSRoute/"+r.Namespace+"/"+r.Name] = r.Status.Parents
	}
	// Every served version of every route kind: the API keeps each object
	// in the version it was written in.
	routeLists := []struct {
		kind string
		list client.ObjectList
	}{
		{"HTTPRoute", &gwv1.HTTPRouteList{}}, {"GRPCRoute", &gwv1.GRPCRouteList{}},
		{"TCPRoute", &gwv1.TCPRouteList{}}, {"TCPRoute", &gwv1a2.TCPRouteList{}},
		{"TLSRoute", &gwv1.TLSRouteList{}}, {"TLSRoute", &gwv1a2.TLSRouteList{}}, {"TLSRoute", &gwv1a3.TLSRouteList{}},
	}
	for _, rl := range routeLists {
		if err := w.List(ctx, rl.list); err != nil {
			return fmt.Errorf("list %s: %w", rl.kind, err)
		}
		items, err := meta.ExtractList(rl.list)
		if err != nil {
			return fmt.Errorf("list %s: %w", rl.kind, err)
		}
		for _, item := range items {
			obj, ok := item.(client.Object)
			if !ok {
				continue
			}
			rs := routeStatusOf(obj)
			if rs == nil {
				continue
			}
			next := *rs
			next.Parents = mergeParents(rs.Parents, ours[rl.kind+"/"+obj.GetNamespace()+"/"+obj.GetName()], now)
			if err := update(ctx, w, obj, rs, next); err != nil {
				return err
			}
		}
	}
	for _, p := range st.BackendTLSPolicies {
		obj := &gwv1.BackendTLSPolicy{}
		if err := w.Get(ctx, client.ObjectKey{Namespace: p.Namespace, Name: p.Name}, obj); err != nil {
			continue
		}
		next := *p.Status.DeepCopy()
		for i := range next.Ancestors {
			for _, old := range obj.Status.Ancestors {
				if reflect.DeepEqual(old.AncestorRef, next.Ancestors[i].AncestorRef) {
					next.Ancestors[i].Conditions = stamp(old.Conditions, next.Ancestors[i].Conditions, now)
				}
			}
			next.Ancestors[i].Conditions = stamp(nil, next.Ancestors[i].Conditions, now)
		}
		if err := update(ctx, w, obj, &obj.Status, next); err != nil {
			return err
		}
	}
	return nil
}

// routeStatusOf is the RouteStatus inside any route object.
func routeStatusOf(obj client.Object) *gwv1.RouteStatus {
	switch r := obj.(type) {
	case *gwv1.HTTPRoute:
		return &r.Status.RouteStatus
	case *gwv1.GRPCRoute:
		return &r.Status.RouteStatus
	case *gwv1.TCPRoute:
		return &r.Status.RouteStatus
	case *gwv1a2.TCPRoute:
		return &r.Status.RouteStatus
	case *gwv1.TLSRoute:
		return &r.Status.RouteStatus
	case *gwv1a2.TLSRoute:
		return &r.Status.RouteStatus
	case *gwv1a3.TLSRoute:
		return &r.Status.RouteStatus
	}
	return nil
}

// update writes next into *field of obj when it differs.
func update[T any](ctx context.Context, w client.Client, obj client.Object, field *T, next T) error {
	if reflect.DeepEqual(*field, next) {
		return nil
	}
	*field = next
	if err := w.Status().Update(ctx, obj); err != nil {
		return fmt.Errorf("status of %s/%s: %w", obj.GetNamespace(), obj.GetName(), err)
	}
	return nil
}

// mergeParents keeps other controllers' parent entries and replaces ours.
func mergeParents(old, ours []gwv1.RouteParentStatus, now metav1.Time) []gwv1.RouteParentStatus {
	var out []gwv1.RouteParentStatus
	for _, p := range old {
		if p.ControllerName != gatewayapi.ControllerName {
			out = append(out, p)
		}
	}
	for _, p := range ours {
		p = *p.DeepCopy()
		for _, o := range old {
			if reflect.DeepEqual(o.ParentRef, p.ParentRef) && o.ControllerName == p.ControllerName {
				p.Conditions = stamp(o.Conditions, p.Conditions, now)
			}
		}
		p.Conditions = stamp(nil, p.Conditions, now)
		out = append(out, p)
	}
	if out == nil && old != nil {
		out = []gwv1.RouteParentStatus{}
	}
	return out
}

// stamp sets lastTransitionTime: kept from old when the condition's status
// did not change, now otherwise.
func stamp(old, next []metav1.Condition, now metav1.Time) []metav1.Condition {
	for i := range next {
		if !next[i].LastTransitionTime.IsZero() {
			continue
		}
		next[i].LastTransitionTime = now
		for _, o := range old {
			if o.Type == next[i].Type && o.Status == next[i].Status && !o.LastTransitionTime.IsZero() {
				next[i].LastTransitionTime = o.LastTransitionTime
			}
		}
	}
	return next
}
