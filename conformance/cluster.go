package conformance

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1a2 "sigs.k8s.io/gateway-api/apis/v1alpha2"
	gwv1a3 "sigs.k8s.io/gateway-api/apis/v1alpha3"
	gwv1b1 "sigs.k8s.io/gateway-api/apis/v1beta1"
	gwxv1a1 "sigs.k8s.io/gateway-api/apisx/v1alpha1"
	"sigs.k8s.io/gateway-api/pkg/consts"
)

// apiStore is the in-memory API server the suite talks to: controller-runtime's
// fake client (object storage, status subresources, label selectors) plus
// what a real API server adds and the suite relies on — metadata.generation
// bumped on spec changes — and a wake-up for the controller on every write.
type apiStore struct {
	// raw is the storage itself; the controller reads and writes through it
	// so its own writes (status, pods, slices) do not wake it up again.
	raw client.WithWatch
	// Client is what the suite uses.
	Client client.WithWatch
	dirty  chan struct{}
}

// newScheme registers every kind the suite applies or reads.
func newScheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		clientgoscheme.AddToScheme, apiextensionsv1.AddToScheme,
		gwv1.Install, gwv1b1.Install, gwv1a2.Install, gwv1a3.Install, gwxv1a1.Install,
	} {
		if err := add(s); err != nil {
			return nil, fmt.Errorf("register API types: %w", err)
		}
	}
	return s, nil
}

// statusKinds have a status subresource: Update ignores their status and
// Status().Update only writes it, as on a real API server.
func statusKinds() []client.Object {
	return []client.Object{
		&gwv1.GatewayClass{}, &gwv1.Gateway{}, &gwv1.HTTPRoute{}, &gwv1.GRPCRoute{},
		&gwv1.BackendTLSPolicy{}, &gwv1.TCPRoute{}, &gwv1a2.TCPRoute{}, &gwv1a2.UDPRoute{},
		&gwv1.TLSRoute{}, &gwv1a2.TLSRoute{}, &gwv1a3.TLSRoute{},
		&gwv1.ListenerSet{},
		&corev1.Pod{}, &appsv1.Deployment{}, &corev1.Service{},
	}
}

func newAPIStore() (*apiStore, error) {
	scheme, err := newScheme()
	if err != nil {
		return nil, err
	}
	raw := fake.NewClientBuilder().WithScheme(scheme).WithStatusSubresource(statusKinds()...).
		WithObjects(crds()...).Build()
	def, err := newDefaulter(scheme)
	if err != nil {
		return nil, err
	}
	s := &apiStore{raw: raw, dirty: make(chan struct{}, 1)}
	s.Client = interceptor.NewClient(raw, interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			obj.SetGeneration(1)
			if err := def.apply(obj); err != nil {
				return err
			}
			defer s.wake()
			return c.Create(ctx, obj, opts...)
		},
		Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			defer s.wake()
			if err := def.apply(obj); err != nil {
				return err
			}
			return s.bumpGeneration(ctx, c, obj, func() error { return c.Update(ctx, obj, opts...) })
		},
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			defer s.wake()
			return s.bumpGeneration(ctx, c, obj, func() error {
				if err := c.Patch(ctx, obj, patch, opts...); err != nil {
					return err
				}
				// Defaults apply to the patched object, as on the API server.
				before := obj.DeepCopyObject()
				if err := def.apply(obj); err != nil {
					return err
				}
				if reflect.DeepEqual(before, obj) {
					return nil
				}
				return updateOverConflicts(ctx, c, obj)
			})
		},
		Delete: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
			defer s.wake()
			return c.Delete(ctx, obj, opts...)
		},
		DeleteAllOf: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteAllOfOption) error {
			defer s.wake()
			return c.DeleteAllOf(ctx, obj, opts...)
		},
	})
	return s, nil
}

func (s *apiStore) wake() {
	select {
	case s.dirty <- struct{}{}:
	default:
	}
}

// bumpGeneration runs write and, when it changed anything but metadata and
// status, increments metadata.generation as the API server does.
func (s *apiStore) bumpGeneration(ctx context.Context, c client.WithWatch, obj client.Object, write func() error) error {
	before, ok := obj.DeepCopyObject().(client.Object)
	if !ok {
		return write()
	}
	if err := c.Get(ctx, client.ObjectKeyFromObject(obj), before); err != nil {
		return write()
	}
	if err := write(); err != nil {
		return err
	}
	if reflect.DeepEqual(specOf(before), specOf(obj)) {
		return nil
	}
	obj.SetGeneration(before.GetGeneration() + 1)
	return updateOverConflicts(ctx, c, obj)
}

// updateOverConflicts writes obj as the second half of one API write
// (defaults, generation). The controller may write status in between, which
// a real API server, doing both halves at once, would never conflict with:
// retry on the latest resourceVersion, keeping obj's content.
func updateOverConflicts(ctx context.Context, c client.Client, obj client.Object) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		err := c.Update(ctx, obj)
		if apierrors.IsConflict(err) {
			latest, ok := obj.DeepCopyObject().(client.Object)
			if !ok {
				return err
			}
			if gerr := c.Get(ctx, client.ObjectKeyFromObject(obj), latest); gerr != nil {
				return fmt.Errorf("refresh %s/%s after a conflict: %w", obj.GetNamespace(), obj.GetName(), gerr)
			}
			obj.SetResourceVersion(latest.GetResourceVersion())
		}
		return err
	})
}

// specOf is an object without metadata and status: what generation tracks.
func specOf(obj client.Object) map[string]any {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil
	}
	for _, k := range []string{"metadata", "status", "kind", "apiVersion"} {
		delete(m, k)
	}
	return m
}

// crds stands in for the installed Gateway API CRDs: the suite only reads
// their bundle-version and channel annotations to check it matches them.
func crds() []client.Object {
	names := []string{
		"gatewayclasses", "gateways", "httproutes", "grpcroutes", "referencegrants",
		"backendtlspolicies", "tcproutes", "tlsroutes", "udproutes", "listenersets",
	}
	out := make([]client.Object, 0, len(names))
	for _, n := range names {
		out = append(out, &apiextensionsv1.CustomResourceDefinition{
			ObjectMeta: metav1.ObjectMeta{
				Name: n + ".gateway.networking.k8s.io",
				Annotations: map[string]string{
					consts.BundleVersionAnnotation: consts.BundleVersion,
					consts.ChannelAnnotation:       "experimental",
				},
			},
		})
	}
	return out
}

// workloads plays kubelet and the EndpointSlice controller: every Deployment
// gets Ready pods with stable addresses, every Service with a selector one
// EndpointSlice of its ready pods. Pod addresses identify the simulated
// backend the data plane delivers a request to.
type workloads struct {
	mu     sync.Mutex
	nextIP int
	ips    map[string]string // namespace/pod → IP
	byIP   map[string]*corev1.Pod
}

func newWorkloads() *workloads {
	return &workloads{nextIP: 10, ips: map[string]string{}, byIP: map[string]*corev1.Pod{}}
}

// pod returns the simulated pod serving ip, if any.
func (w *workloads) pod(ip string) *corev1.Pod {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.byIP[ip]
}

func (w *workloads) ipFor(ns, name string) string {
	key := ns + "/" + name
	if ip, ok := w.ips[key]; ok {
		return ip
	}
	w.nextIP++
	ip := fmt.Sprintf("10.244.%d.%d", w.nextIP/250, w.nextIP%250+1)
	w.ips[key] = ip
	return ip
}

// sync makes pods and slices follow Deployments and Services; it reports
// whether it changed anything.
func (w *workloads) sync(ctx context.Context, c client.Client) (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	changed := false
	deployments := &appsv1.DeploymentList{}
	if err := c.List(ctx, deployments); err != nil {
		return false, fmt.Errorf("list deployments: %w", err)
	}
	pods := &corev1.PodList{}
	if err := c.List(ctx, pods); err != nil {
		return false, fmt.Errorf("list pods: %w", err)
	}
	have := map[string]*corev1.Pod{}
	for i := range pods.Items {
		p := &pods.Items[i]
		have[p.Namespace+"/"+p.Name] = p
	}
	want := map[string]bool{}
	for i := range deployments.Items {
		d := &deployments.Items[i]
		replicas := int32(1)
		if d.Spec.Replicas != nil {
			replicas = *d.Spec.Replicas
		}
		for r := int32(0); r < replicas; r++ {
			name := fmt.Sprintf("%s-7d4b9c-%05d", d.Name, r)
			key := d.Namespace + "/" + name
			want[key] = true
			if _, ok := have[key]; ok {
				continue
			}
			p := podFor(d, name, w.ipFor(d.Namespace, name))
			if err := c.Create(ctx, p); err != nil {
				return false, fmt.Errorf("create pod %s: %w", key, err)
			}
			if err := c.Status().Update(ctx, p); err != nil {
				return false, fmt.Errorf("pod %s status: %w", key, err)
			}
			have[key] = p
			changed = true
		}
	}
	w.byIP = map[string]*corev1.Pod{}
	for key, p := range have {
		if !want[key] {
			if err := c.Delete(ctx, p); err != nil {
				return false, fmt.Errorf("delete pod %s: %w", key, err)
			}
			changed = true
			continue
		}
		w.byIP[p.Status.PodIP] = p
	}
	slicesChanged, err := w.syncSlices(ctx, c, have, want)
	return changed || slicesChanged, err
}

func podFor(d *appsv1.Deployment, name, ip string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: d.Namespace, Labels: d.Spec.Template.Labels,
		},
		Spec: *d.Spec.Template.Spec.DeepCopy(),
	}
	p.Status = corev1.PodStatus{
		Phase:  corev1.PodRunning,
		PodIP:  ip,
		PodIPs: []corev1.PodIP{{IP: ip}},
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodReady, Status: corev1.ConditionTrue},
		},
	}
	return p
}

const simulatedSliceSuffix = "-simulated"

func (w *workloads) syncSlices(ctx context.Context, c client.Client, pods map[string]*corev1.Pod, live map[string]bool) (bool, error) {
	services := &corev1.ServiceList{}
	if err := c.List(ctx, services); err != nil {
		return false, fmt.Errorf("list services: %w", err)
	}
	slices := &discoveryv1.EndpointSliceList{}
	if err := c.List(ctx, slices); err != nil {
		return false, fmt.Errorf("list endpointslices: %w", err)
	}
	have := map[string]*discoveryv1.EndpointSlice{}
	for i := range slices.Items {
		s := &slices.Items[i]
		if len(s.Name) > len(simulatedSliceSuffix) && s.Name[len(s.Name)-len(simulatedSliceSuffix):] == simulatedSliceSuffix {
			have[s.Namespace+"/"+s.Name] = s
		}
	}
	changed := false
	want := map[string]bool{}
	for i := range services.Items {
		svc := &services.Items[i]
		if len(svc.Spec.Selector) == 0 {
			continue
		}
		desired := sliceFor(svc, pods, live)
		key := svc.Namespace + "/" + desired.Name
		want[key] = true
		cur, ok := have[key]
		switch {
		case !ok:
			if err := c.Create(ctx, desired); err != nil {
				return false, fmt.Errorf("create endpointslice %s: %w", key, err)
			}
			changed = true
		case !reflect.DeepEqual(cur.Endpoints, desired.Endpoints) || !reflect.DeepEqual(cur.Ports, desired.Ports):
			cur.Endpoints, cur.Ports = desired.Endpoints, desired.Ports
			if err := c.Update(ctx, cur); err != nil {
				return false, fmt.Errorf("update endpointslice %s: %w", key, err)
			}
			changed = true
		}
	}
	for key, s := range have {
		if !want[key] {
			if err := c.Delete(ctx, s); err != nil {
				return false, fmt.Errorf("delete endpointslice %s: %w", key, err)
			}
			changed = true
		}
	}
	return changed, nil
}

// sliceFor is the EndpointSlice the endpoints controller would write for svc.
func sliceFor(svc *corev1.Service, pods map[string]*corev1.Pod, live map[string]bool) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name: svc.Name + simulatedSliceSuffix, Namespace: svc.Namespace,
			Labels: map[string]string{discoveryv1.LabelServiceName: svc.Name},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{},
		Ports:       []discoveryv1.EndpointPort{},
	}
	var selected []*corev1.Pod
	for key, p := range pods {
		if !live[key] || p.Namespace != svc.Namespace || !selects(svc.Spec.Selector, p.Labels) {
			continue
		}
		selected = append(selected, p)
	}
	sortPods(selected)
	ready := true
	for _, p := range selected {
		name := p.Name
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{p.Status.PodIP},
			Conditions: discoveryv1.EndpointConditions{Ready: &ready},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: p.Namespace, Name: name},
		})
	}
	for _, sp := range svc.Spec.Ports {
		port := targetPort(sp, selected)
		name, proto := sp.Name, sp.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		s.Ports = append(s.Ports, discoveryv1.EndpointPort{
			Name: &name, Port: &port, Protocol: &proto, AppProtocol: sp.AppProtocol,
		})
	}
	return s
}

func sortPods(pods []*corev1.Pod) {
	sort.Slice(pods, func(i, j int) bool { return pods[i].Name < pods[j].Name })
}

func selects(selector, labels map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// targetPort resolves a Service port's targetPort (a number, a container
// port name, or empty meaning the port itself).
func targetPort(sp corev1.ServicePort, pods []*corev1.Pod) int32 {
	tp := sp.TargetPort
	switch {
	case tp.IntValue() > 0:
		return int32(tp.IntValue())
	case tp.StrVal != "":
		for _, p := range pods {
			for _, c := range p.Spec.Containers {
				for _, cp := range c.Ports {
					if cp.Name == tp.StrVal {
						return cp.ContainerPort
					}
				}
			}
		}
	}
	return sp.Port
}
