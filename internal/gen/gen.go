// Package gen generates synthetic, realistic and fully deterministic hxds
// inputs (Namespaces, Services with named ports, EndpointSlices, TLS Secrets,
// an IngressClass and Ingresses with many hosts and Prefix/Exact paths) for
// benchmarks and the hxds-load tool. The same Spec always gives the same
// objects, in memory (Inputs, Objects) or as YAML files (WriteDir) that
// `hxds serve --config-dir` reads.
package gen

import (
	_ "embed"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/hxds/hxds/translate/input"
)

// TLSCert and TLSKey are a throwaway self-signed EC P-256 certificate for
// *.bench.hxds.test (valid until 2126), used by every generated TLS Secret.
// The key is public: it only exists for benchmarks.
var (
	//go:embed certs/tls.crt
	TLSCert []byte
	//go:embed certs/tls.key
	TLSKey []byte
)

// Domain is the DNS suffix of every generated host.
const Domain = "bench.hxds.test"

// Spec sizes a generated configuration. Zero fields take the defaults of
// Normalize.
type Spec struct {
	// Namespaces the objects are spread over (round robin). Default 10,
	// at most Services.
	Namespaces int
	// Ingresses to generate.
	Ingresses int
	// RulesPerIngress is the number of rules (each with its own host) per
	// Ingress. Default 1.
	RulesPerIngress int
	// PathsPerRule is the number of paths per rule. Path 0 is Prefix "/",
	// odd paths are Prefix "/api/v<p>", even ones Exact "/status/<p>".
	// Default 1.
	PathsPerRule int
	// Services to generate (each with ports http:80→8080 and grpc:9090).
	// Default Ingresses (at least 1 when there are Ingresses). Backends are
	// spread over the Services of the Ingress's namespace.
	Services int
	// EndpointsPerService is the number of endpoints of each Service's one
	// EndpointSlice. Default 3.
	EndpointsPerService int
	// TLSHosts is how many hosts (the first rules, in Ingress order) are
	// also served over HTTPS with a Secret of their Ingress.
	TLSHosts int
	// IngressClass set as spec.ingressClassName (an IngressClass object of
	// that name is generated). Default "higress".
	IngressClass string
	// ObjectsPerFile is how many Ingresses, or Service+EndpointSlice pairs,
	// WriteDir puts into one file. Default 100.
	ObjectsPerFile int
}

// Normalize returns s with defaults filled in.
func (s Spec) Normalize() Spec {
	if s.RulesPerIngress <= 0 {
		s.RulesPerIngress = 1
	}
	if s.PathsPerRule <= 0 {
		s.PathsPerRule = 1
	}
	if s.Services <= 0 {
		s.Services = max(s.Ingresses, 1)
	}
	if s.Namespaces <= 0 {
		s.Namespaces = 10
	}
	s.Namespaces = min(s.Namespaces, s.Services)
	if s.EndpointsPerService <= 0 {
		s.EndpointsPerService = 3
	}
	s.TLSHosts = min(max(s.TLSHosts, 0), s.Ingresses*s.RulesPerIngress)
	if s.IngressClass == "" {
		s.IngressClass = "higress"
	}
	if s.ObjectsPerFile <= 0 {
		s.ObjectsPerFile = 100
	}
	return s
}

// Hosts is the number of Ingress hosts (rules) of the spec.
func (s Spec) Hosts() int { s = s.Normalize(); return s.Ingresses * s.RulesPerIngress }

// Routes is the number of Ingress paths of the spec: one IR route each
// (Prefix paths other than "/" become two Envoy routes).
func (s Spec) Routes() int {
	s = s.Normalize()
	return s.Ingresses * s.RulesPerIngress * s.PathsPerRule
}

// ForRoutes is the standard shape used by the benchmarks: Ingresses with two
// hosts of two paths each (Prefix "/" and Prefix "/api/v1"), one Service per
// two routes, 10 endpoints per Service, 10% of the hosts on TLS. routes is
// rounded up to a multiple of 4.
func ForRoutes(routes int) Spec {
	ing := (routes + 3) / 4
	return Spec{
		Ingresses:           ing,
		RulesPerIngress:     2,
		PathsPerRule:        2,
		Services:            max(ing*2, 1),
		EndpointsPerService: 10,
		TLSHosts:            ing * 2 / 10,
	}
}

// Object is one generated object with the key the store indexes it by and
// the file WriteDir puts it in (relative, slash-separated).
type Object struct {
	Key  input.Key
	Obj  runtime.Object
	File string
}

var epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// NamespaceName is the namespace of the i-th object of a kind.
func (s Spec) NamespaceName(i int) string {
	s = s.Normalize()
	return fmt.Sprintf("bench-%02d", i%s.Namespaces)
}

// ServiceName is the name of Service i.
func ServiceName(i int) string { return fmt.Sprintf("svc-%05d", i) }

// IngressName is the name of Ingress i.
func IngressName(i int) string { return fmt.Sprintf("ing-%05d", i) }

// Host is the host of rule r of Ingress i.
func Host(i, r int) string { return fmt.Sprintf("i%05d-r%d.%s", i, r, Domain) }

// ClusterName is the EDS cluster of Service i's http port, as translation names it.
func (s Spec) ClusterName(i int) string {
	return fmt.Sprintf("outbound|80||%s.%s.svc.cluster.local", ServiceName(i), s.NamespaceName(i))
}

// Objects returns every object of the spec in a fixed order.
func Objects(s Spec) []Object {
	s = s.Normalize()
	var out []Object
	add := func(kind input.Kind, ns, name, file string, obj runtime.Object) {
		out = append(out, Object{Key: input.Key{Kind: kind, Namespace: ns, Name: name}, Obj: obj, File: file})
	}
	for n := range s.Namespaces {
		ns := s.NamespaceName(n)
		add(input.KindNamespace, "", ns, "00-namespaces.yaml", &corev1.Namespace{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
			ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{"hxds.test/bench": "true"}},
		})
	}
	add(input.KindIngressClass, "", s.IngressClass, "00-namespaces.yaml", &networkingv1.IngressClass{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "IngressClass"},
		ObjectMeta: metav1.ObjectMeta{Name: s.IngressClass},
		Spec:       networkingv1.IngressClassSpec{Controller: "higress.io/higress-controller"},
	})
	for i := range s.Services {
		file := fmt.Sprintf("10-services-%04d.yaml", i/s.ObjectsPerFile)
		svc := Service(s, i)
		add(input.KindService, svc.Namespace, svc.Name, file, svc)
		es := EndpointSlice(s, i, 0)
		add(input.KindEndpointSlice, es.Namespace, es.Name, file, es)
	}
	for i := range s.Ingresses {
		file := fmt.Sprintf("30-ingresses-%04d.yaml", i/s.ObjectsPerFile)
		if sec := Secret(s, i); sec != nil {
			add(input.KindSecret, sec.Namespace, sec.Name, fmt.Sprintf("20-secrets-%04d.yaml", i/s.ObjectsPerFile), sec)
		}
		ing := Ingress(s, i, 0)
		add(input.KindIngress, ing.Namespace, ing.Name, file, ing)
	}
	return out
}

// Inputs returns the spec as a translation snapshot.
func Inputs(s Spec) *input.Snapshot {
	snap := input.NewSnapshot()
	for _, o := range Objects(s) {
		snap.Add(o.Key, o.Obj)
	}
	return snap
}

// Map returns the spec in the shape store.Store.Replace takes.
func Map(s Spec) map[input.Key]runtime.Object {
	objs := Objects(s)
	out := make(map[input.Key]runtime.Object, len(objs))
	for _, o := range objs {
		out[o.Key] = o.Obj
	}
	return out
}

// Service returns Service i: ports http 80→8080 and grpc 9090→9090.
func Service(s Spec, i int) *corev1.Service {
	return &corev1.Service{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{
			Name: ServiceName(i), Namespace: s.NamespaceName(i),
			Labels:            map[string]string{"app": ServiceName(i)},
			CreationTimestamp: metav1.NewTime(epoch.Add(time.Duration(i) * time.Second)),
		},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: map[string]string{"app": ServiceName(i)},
			Ports: []corev1.ServicePort{
				{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080)},
				{Name: "grpc", Protocol: corev1.ProtocolTCP, Port: 9090, TargetPort: intstr.FromInt32(9090)},
			},
		},
	}
}

// EndpointSlice returns the EndpointSlice of Service i. rev 0 is the
// generated one; another rev changes the address of its last endpoint to
// EndpointAddress(rev), and nothing else.
func EndpointSlice(s Spec, i, rev int) *discoveryv1.EndpointSlice {
	s = s.Normalize()
	eps := make([]discoveryv1.Endpoint, s.EndpointsPerService)
	for e := range eps {
		idx := i*s.EndpointsPerService + e + 1
		addr := fmt.Sprintf("127.%d.%d.%d", (idx>>16)&0x7f, (idx>>8)&0xff, idx&0xff)
		if rev != 0 && e == len(eps)-1 {
			addr = EndpointAddress(rev)
		}
		ready := true
		zone := fmt.Sprintf("zone-%c", 'a'+e%3)
		node := fmt.Sprintf("node-%03d", idx%97)
		eps[e] = discoveryv1.Endpoint{
			Addresses:  []string{addr},
			Conditions: discoveryv1.EndpointConditions{Ready: &ready},
			Zone:       &zone,
			NodeName:   &node,
			TargetRef: &corev1.ObjectReference{
				Kind: "Pod", Namespace: s.NamespaceName(i), Name: fmt.Sprintf("%s-%d", ServiceName(i), e),
			},
		}
	}
	httpName, grpcName := "http", "grpc"
	httpPort, grpcPort := int32(8080), int32(9090)
	tcp := corev1.ProtocolTCP
	return &discoveryv1.EndpointSlice{
		TypeMeta: metav1.TypeMeta{APIVersion: "discovery.k8s.io/v1", Kind: "EndpointSlice"},
		ObjectMeta: metav1.ObjectMeta{
			Name: ServiceName(i) + "-x1", Namespace: s.NamespaceName(i),
			Labels: map[string]string{
				discoveryv1.LabelServiceName: ServiceName(i),
				discoveryv1.LabelManagedBy:   "endpointslice-controller.k8s.io",
			},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports: []discoveryv1.EndpointPort{
			{Name: &httpName, Port: &httpPort, Protocol: &tcp},
			{Name: &grpcName, Port: &grpcPort, Protocol: &tcp},
		},
		Endpoints: eps,
	}
}

// EndpointAddress is the address a changed endpoint gets at rev (1..2^16).
func EndpointAddress(rev int) string {
	return fmt.Sprintf("127.254.%d.%d", (rev>>8)&0xff, rev&0xff)
}

// Secret returns the TLS Secret of Ingress i, or nil when none of its hosts is on TLS.
func Secret(s Spec, i int) *corev1.Secret {
	s = s.Normalize()
	if i*s.RulesPerIngress >= s.TLSHosts {
		return nil
	}
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: "tls-" + IngressName(i), Namespace: s.NamespaceName(i)},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{corev1.TLSCertKey: TLSCert, corev1.TLSPrivateKeyKey: TLSKey},
	}
}

// servicesIn returns how many Services namespace n (0-based) holds.
func (s Spec) servicesIn(n int) int { return (s.Services - n + s.Namespaces - 1) / s.Namespaces }

// Ingress returns Ingress i. rev 0 is the generated one; another rev changes
// exactly one path (the last path of rule 0 becomes Exact "/rev/<rev>"), so
// only the route tables change: no cluster, listener or secret.
func Ingress(s Spec, i, rev int) *networkingv1.Ingress {
	s = s.Normalize()
	ns := i % s.Namespaces
	inNS := s.servicesIn(ns)
	prefix, exact := networkingv1.PathTypePrefix, networkingv1.PathTypeExact
	class := s.IngressClass
	ing := &networkingv1.Ingress{
		TypeMeta: metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "Ingress"},
		ObjectMeta: metav1.ObjectMeta{
			Name: IngressName(i), Namespace: s.NamespaceName(i),
			Labels:            map[string]string{"app": IngressName(i)},
			CreationTimestamp: metav1.NewTime(epoch.Add(time.Duration(i) * time.Second)),
		},
		Spec: networkingv1.IngressSpec{IngressClassName: &class},
	}
	var tlsHosts []string
	for r := range s.RulesPerIngress {
		host := Host(i, r)
		rule := networkingv1.IngressRule{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{}}}
		for p := range s.PathsPerRule {
			// Routes of a namespace use its Services in turn.
			m := ((i/s.Namespaces)*s.RulesPerIngress+r)*s.PathsPerRule + p
			svc := ns + s.Namespaces*(m%inNS)
			port := networkingv1.ServiceBackendPort{Number: 80}
			if m%2 == 0 {
				port = networkingv1.ServiceBackendPort{Name: "http"}
			}
			path := networkingv1.HTTPIngressPath{
				Path: "/", PathType: &prefix,
				Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: ServiceName(svc), Port: port}},
			}
			switch {
			case p == 0:
			case p%2 == 1:
				path.Path = fmt.Sprintf("/api/v%d", (p+1)/2)
			default:
				path.Path, path.PathType = fmt.Sprintf("/status/%d", p/2), &exact
			}
			if rev != 0 && r == 0 && p == s.PathsPerRule-1 {
				path.Path, path.PathType = RevPath(rev), &exact
			}
			rule.HTTP.Paths = append(rule.HTTP.Paths, path)
		}
		ing.Spec.Rules = append(ing.Spec.Rules, rule)
		if i*s.RulesPerIngress+r < s.TLSHosts {
			tlsHosts = append(tlsHosts, host)
		}
	}
	if len(tlsHosts) > 0 {
		ing.Spec.TLS = []networkingv1.IngressTLS{{Hosts: tlsHosts, SecretName: "tls-" + IngressName(i)}}
	}
	return ing
}

// RevPath is the Exact path a changed Ingress or the probe carries at rev.
func RevPath(rev int) string { return fmt.Sprintf("/rev/%d", rev) }

// WithIngress returns a copy of snap (maps copied, objects shared) in which
// Ingress i is replaced by its revision rev.
func WithIngress(snap *input.Snapshot, s Spec, i, rev int) *input.Snapshot {
	out := clone(snap)
	ing := Ingress(s, i, rev)
	out.Ingresses[input.NamespacedName{Namespace: ing.Namespace, Name: ing.Name}] = ing
	return out
}

// WithEndpointSlice returns a copy of snap in which Service i's EndpointSlice
// is replaced by its revision rev.
func WithEndpointSlice(snap *input.Snapshot, s Spec, i, rev int) *input.Snapshot {
	out := clone(snap)
	es := EndpointSlice(s, i, rev)
	out.EndpointSlices[input.NamespacedName{Namespace: es.Namespace, Name: es.Name}] = es
	return out
}

func clone(snap *input.Snapshot) *input.Snapshot {
	out := input.NewSnapshot()
	copyMap(out.Namespaces, snap.Namespaces)
	copyMap(out.Services, snap.Services)
	copyMap(out.EndpointSlices, snap.EndpointSlices)
	copyMap(out.Secrets, snap.Secrets)
	copyMap(out.ConfigMaps, snap.ConfigMaps)
	copyMap(out.IngressClasses, snap.IngressClasses)
	copyMap(out.Ingresses, snap.Ingresses)
	return out
}

func copyMap[K comparable, V any](dst, src map[K]V) {
	for k, v := range src {
		dst[k] = v
	}
}
