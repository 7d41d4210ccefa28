package conformance

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/sets"
	gwconformance "sigs.k8s.io/gateway-api/conformance"
	"sigs.k8s.io/gateway-api/conformance/tests"
	"sigs.k8s.io/gateway-api/conformance/utils/config"
	"sigs.k8s.io/gateway-api/conformance/utils/suite"
	"sigs.k8s.io/gateway-api/pkg/consts"
	"sigs.k8s.io/gateway-api/pkg/features"

	"io/fs"

	"github.com/hxds/hxds/internal/testutil"
	"github.com/hxds/hxds/translate/gatewayapi"
)

var (
	allFeatures = flag.Bool("conformance.all", false,
		"run the tests of every feature, not only those the GatewayClass claims (to see what would pass)")
	runOnly  = flag.String("conformance.run", "", "run only the conformance test with this ShortName")
	reportTo = flag.String("conformance.report", "", "also write the report to this file")
)

// timeouts are the suite's, shortened: the harness converges in
// milliseconds, so a wait that lasts seconds is a failure, not slowness.
func timeouts() config.TimeoutConfig {
	tc := config.DefaultTimeoutConfig()
	for _, d := range []*time.Duration{
		&tc.CreateTimeout, &tc.GatewayMustHaveAddress, &tc.GatewayMustHaveCondition,
		&tc.GatewayStatusMustHaveListeners, &tc.GatewayListenersMustHaveConditions,
		&tc.ListenerSetMustHaveCondition, &tc.ListenerSetListenersMustHaveConditions,
		&tc.GWCMustBeAccepted, &tc.HTTPRouteMustNotHaveParents, &tc.HTTPRouteMustHaveCondition,
		&tc.TLSRouteMustHaveCondition, &tc.TCPRouteMustHaveCondition, &tc.UDPRouteMustHaveCondition,
		&tc.RouteMustHaveParents, &tc.MaxTimeToConsistency, &tc.NamespacesMustBeReady,
		&tc.LatestObservedGenerationSet, &tc.DefaultTestTimeout,
	} {
		*d = 10 * time.Second
	}
	tc.DefaultPollInterval = 20 * time.Millisecond
	return tc
}

// TestConformance replays the Gateway API conformance suite against hxds
// through the harness and checks every test of every claimed feature passes.
func TestConformance(t *testing.T) {
	var logMu sync.Mutex
	var controllerLog []string
	h, err := Start(func(format string, args ...any) {
		logMu.Lock()
		defer logMu.Unlock()
		controllerLog = append(controllerLog, strings.TrimSpace(fmt.Sprintf(format, args...)))
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Stop)

	opts := suite.ConformanceOptions{
		ConfigurableOptions: suite.ConfigurableOptions{
			GatewayClassName:     GatewayClassName,
			CleanupBaseResources: true,
			CleanupTestResources: true,
			Mode:                 "default",
			// Tests share the gateway's listeners (Higress merges every
			// Gateway of a group into them), so they run one at a time.
			DisableParallelTests: true,
			// No RunTest: the suite infers the claimed features only without
			// it; -conformance.run filters below instead.
			TimeoutConfig: timeouts(),
		},
		Client:       h.Client,
		Clientset:    h.Clientset,
		RoundTripper: h.RoundTripper,
		GRPCClient:   h.GRPCClient,
		ManifestFS:   []fs.FS{&gwconformance.Manifests},
	}
	if *allFeatures {
		// Every feature but those of another kind of implementation (mesh)
		// or that Higress rejects outright (UDP listeners).
		opts.EnableAllSupportedFeatures = true
		opts.ExemptFeatures = features.SetsToNamesSet(features.MeshCoreFeatures, features.MeshExtendedFeatures, features.UDPRouteFeatures).UnsortedList()
	}
	cs, err := suite.NewConformanceTestSuite(opts)
	if err != nil {
		t.Fatalf("conformance suite: %v", err)
	}
	// The suite's Setup needs no per-test REST clientset; its Run does, so
	// the tests are run here, the way Run runs them.
	cs.Setup(t, tests.ConformanceTests)
	var outcomes []Outcome
	for _, test := range tests.ConformanceTests {
		o := Outcome{Test: test}
		if missing := missingFeatures(cs.SupportedFeatures, test.Features); len(missing) > 0 {
			o.Result, o.Reason = NotSupported, "needs "+strings.Join(missing, ", ")
			outcomes = append(outcomes, o)
			continue
		}
		if *runOnly != "" && test.ShortName != *runOnly {
			continue
		}
		if reason, ok := knownDeviations[test.ShortName]; ok {
			o.Result, o.Reason = Skipped, "known deviation: "+reason
			outcomes = append(outcomes, o)
			continue
		}
		var skipped bool
		passed := t.Run(test.ShortName, func(st *testing.T) {
			st.Cleanup(func() { skipped = st.Skipped() })
			test.Run(st, cs)
		})
		switch {
		case skipped:
			o.Result, o.Reason = Skipped, "skipped by the test itself"
		case passed:
			o.Result = Passed
		default:
			o.Result = Failed
		}
		outcomes = append(outcomes, o)
	}

	claimed := sets.New[features.FeatureName]()
	for _, f := range gatewayapi.SupportedFeatures() {
		claimed.Insert(features.FeatureName(f.Name))
	}
	if *runOnly != "" {
		ran := false
		for _, o := range outcomes {
			if o.Test.ShortName == *runOnly {
				ran = o.Result == Passed || o.Result == Failed
				if !ran {
					t.Errorf("%s did not run: %s", *runOnly, o.Reason)
				}
			}
		}
		if !ran && !t.Failed() {
			t.Errorf("no conformance test is named %s", *runOnly)
		}
	} else {
		// A claim must be backed by a test that ran and passed.
		for _, f := range sets.List(claimed) {
			if !passedWith(outcomes, f) {
				t.Errorf("GatewayClass claims %s, but no conformance test exercising it passed", f)
			}
		}
	}
	report := Report(consts.BundleVersion, claimed, outcomes)
	if *reportTo != "" {
		if err := os.WriteFile(*reportTo, []byte(report), 0o644); err != nil {
			t.Error(err)
		}
	}
	if !*allFeatures && *runOnly == "" {
		testutil.Golden(t, "../docs/conformance.md", []byte(report))
	}
	logMu.Lock()
	defer logMu.Unlock()
	if h.ControllerErrors() > 0 {
		t.Errorf("the controller failed %d times:\n%s", h.ControllerErrors(), strings.Join(controllerLog, "\n"))
	}
}

// knownDeviations are conformance tests hxds does not pass by design.
var knownDeviations = map[string]string{
	"HTTPRouteMultipleGateways": "every Gateway of a gateway group shares the group's per-port listeners " +
		"(Higress's model: Gateways bind to the one higress-gateway Service), so two Gateways' catch-all " +
		"routes on the same port and host compete in one route table instead of being isolated per Gateway address",
}

func passedWith(outcomes []Outcome, f features.FeatureName) bool {
	for _, o := range outcomes {
		if o.Result == Passed && slices.Contains(o.Test.Features, f) {
			return true
		}
	}
	return false
}

func missingFeatures(have suite.FeaturesSet, need []features.FeatureName) []string {
	var out []string
	for _, f := range need {
		if !have.Has(f) {
			out = append(out, string(f))
		}
	}
	return out
}
