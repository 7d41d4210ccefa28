package app

import (
	"fmt"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/hxds/hxds/translate/gatewayapi"
)

// ackCounter tells how many Envoys of a group ACKed a listener version.
type ackCounter interface {
	Acked(group, typeURL, version string) (acked, total int)
}

// withProgrammed returns a copy of the translated Gateway API status where
// Programmed reflects the data plane, as the issue and the spec intend:
// translation can only say a Gateway is valid; it is programmed once the
// Envoys of its group have ACKed the listeners it is served in. A Gateway
// translation already found invalid keeps its Programmed=False.
func withProgrammed(st *gatewayapi.Status, acks ackCounter, group, listenerVersion string) *gatewayapi.Status {
	out := *st
	out.Gateways = make([]gatewayapi.GatewayStatus, len(st.Gateways))
	acked, total := acks.Acked(group, resourcev3.ListenerType, listenerVersion)
	programmed := total > 0 && acked == total
	reason, msg := string(gwv1.GatewayReasonProgrammed),
		fmt.Sprintf("all %d Envoys of gateway group %s ACKed listener version %s", total, group, listenerVersion)
	switch {
	case total == 0:
		reason, msg = string(gwv1.GatewayReasonPending), fmt.Sprintf("no Envoy of gateway group %s is connected", group)
	case !programmed:
		reason, msg = string(gwv1.GatewayReasonPending),
			fmt.Sprintf("%d of %d Envoys of gateway group %s ACKed listener version %s", acked, total, group, listenerVersion)
	}
	for i, g := range st.Gateways {
		g.Status = *g.Status.DeepCopy()
		overlay := func(conds *[]metav1.Condition, gen int64) {
			c := meta.FindStatusCondition(*conds, string(gwv1.GatewayConditionProgrammed))
			if c == nil || c.Status != metav1.ConditionTrue {
				return // invalid in translation: stays as translation said
			}
			status := metav1.ConditionTrue
			if !programmed {
				status = metav1.ConditionFalse
			}
			c.Status, c.Reason, c.Message, c.ObservedGeneration = status, reason, msg, gen
		}
		overlay(&g.Status.Conditions, observedGeneration(g.Status.Conditions))
		for j := range g.Status.Listeners {
			overlay(&g.Status.Listeners[j].Conditions, observedGeneration(g.Status.Listeners[j].Conditions))
		}
		out.Gateways[i] = g
	}
	return &out
}

func observedGeneration(conds []metav1.Condition) int64 {
	if len(conds) > 0 {
		return conds[0].ObservedGeneration
	}
	return 0
}
