package gatewayapi_test

import (
	"testing"

	"github.com/hxds/hxds/internal/testutil/behaviour"
)

// TestBehaviour runs testdata/<case>.routes.yaml against the full pipeline's
// output for testdata/<case>.in.yaml. Expectations come from
// the Gateway API specification and docs/gateway-api.md, not from the golden outputs.
func TestBehaviour(t *testing.T) { behaviour.Run(t, "testdata") }
