package ingress

import (
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/hxds/hxds/translate/input"
)

const classAnnotation = "kubernetes.io/ingress.class"

// selected applies Higress's class rules (higress-semantics §2.1): the legacy
// annotation first, then spec.ingressClassName when that IngressClass exists,
// then the class name alone. An empty flag accepts everything; the flag value
// "nginx" also accepts Ingresses without a class, as ingress-nginx does.
func selected(ing *networkingv1.Ingress, snap *input.Snapshot, flag string) bool {
	if v, ok := ing.Annotations[classAnnotation]; ok {
		switch flag {
		case "":
			return true
		case "nginx":
			return v == "" || v == "nginx"
		default:
			return v == flag
		}
	}
	className := ""
	if ing.Spec.IngressClassName != nil {
		className = *ing.Spec.IngressClassName
		if _, exists := snap.IngressClasses[className]; exists {
			return flag == "" || className == flag
		}
	}
	switch flag {
	case "":
		return true
	case "nginx":
		return className == "" || className == "nginx"
	default:
		return className == flag
	}
}
