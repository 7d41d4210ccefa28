package conformance

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	confgrpc "sigs.k8s.io/gateway-api/conformance/utils/grpc"
	"sigs.k8s.io/gateway-api/conformance/utils/roundtripper"

	"github.com/hxds/hxds/translate/gatewayapi"
)

// GatewayClassName is the class the suite runs against: Higress's built-in
// class, which hxds owns.
const GatewayClassName = "higress"

// Harness is a cluster without a cluster: an in-memory API the suite writes
// its manifests to, hxds translating them and writing status back, and a
// data plane that answers the suite's requests from the served Envoy
// resources.
type Harness struct {
	// Client and Clientset are the suite's Kubernetes clients.
	Client    client.Client
	Clientset clientset
	// RoundTripper and GRPCClient are the suite's HTTP and gRPC clients.
	RoundTripper roundtripper.RoundTripper
	GRPCClient   confgrpc.Client

	ctl    *controller
	cancel context.CancelFunc
	done   chan struct{}
}

// Start runs the harness until Stop; logf receives controller problems.
func Start(logf func(string, ...any)) (*Harness, error) {
	store, err := newAPIStore()
	if err != nil {
		return nil, err
	}
	work := newWorkloads()
	logs := newPodLogs()
	ctl := newController(store, work, logf)
	dp := newDataPlane(ctl, work, logs)
	ctx, cancel := context.WithCancel(context.Background())
	h := &Harness{
		Client:       store.Client,
		Clientset:    clientset{Clientset: fake.NewClientset(), logs: logs},
		RoundTripper: dp,
		GRPCClient:   grpcClient{d: dp},
		ctl:          ctl,
		cancel:       cancel,
		done:         make(chan struct{}),
	}
	go func() {
		defer close(h.done)
		ctl.run(ctx)
	}()
	// Higress creates its GatewayClass itself (semantics §8.2).
	gc := &gwv1.GatewayClass{
		ObjectMeta: metav1.ObjectMeta{Name: GatewayClassName},
		Spec: gwv1.GatewayClassSpec{
			ControllerName: gwv1.GatewayController(gatewayapi.ControllerName),
			Description:    new("The default Higress GatewayClass"),
		},
	}
	if err := store.Client.Create(ctx, gc); err != nil {
		h.Stop()
		return nil, fmt.Errorf("create GatewayClass: %w", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := store.raw.Get(ctx, client.ObjectKeyFromObject(gc), gc); err == nil && len(gc.Status.SupportedFeatures) > 0 {
			return h, nil
		}
		if time.Now().After(deadline) {
			h.Stop()
			return nil, fmt.Errorf("GatewayClass %s got no status with supportedFeatures", GatewayClassName)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ControllerErrors counts reconciles that failed or served resources that
// fail envoy.Check.
func (h *Harness) ControllerErrors() int {
	h.ctl.mu.RLock()
	defer h.ctl.mu.RUnlock()
	return h.ctl.errs
}

// Stop ends the controller.
func (h *Harness) Stop() {
	h.cancel()
	<-h.done
}
