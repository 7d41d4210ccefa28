package adsclient_test

import (
	"context"
	"fmt"
	"log"
	"time"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/hxds/hxds/xds/adsclient"
)

// A simulated Envoy of the default gateway group: connect, wait for the
// listeners, then watch what arrives.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := adsclient.Dial(ctx, adsclient.Options{
		Address: "127.0.0.1:15010", NodeID: "envoy-1", Cluster: "higress-gateway", Delta: true,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	go func() {
		if err := c.Run(ctx); err != nil {
			log.Print(err)
		}
	}()

	s, err := c.WaitFor(ctx, func(s adsclient.Snapshot) bool {
		return s.Has(resourcev3.ListenerType, "0.0.0.0_80") && s.Route("http.80") != nil
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("listeners:", s.Names(resourcev3.ListenerType), "version:", s.Version(resourcev3.ListenerType))

	for ev := range c.Events() {
		fmt.Println(ev.TypeURL, ev.Version, ev.Resources, ev.Removed, ev.NACK, ev.Error)
	}
}
