package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	wasmfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/hxds/hxds/wasmfetch"
)

// Type URLs the agent looks at.
const (
	ExtensionConfigType = "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig"
	wasmTypeURL         = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
)

// Environment variables hxds (and Istio) put in remote modules' VM configs for the fetcher.
const (
	envPrefix          = "ISTIO_META_"
	envPullSecret      = "ISTIO_META_WASM_IMAGE_PULL_SECRET"
	envPullPolicy      = "ISTIO_META_WASM_IMAGE_PULL_POLICY"
	envResourceVersion = "ISTIO_META_WASM_PLUGIN_RESOURCE_VERSION"
	noSHA256           = "nil"
)

// fetcher is what conversion needs of the module cache.
type fetcher interface {
	Get(ctx context.Context, req wasmfetch.Request) (path, checksum string, err error)
}

// outcome of converting one resource.
type outcome int

const (
	passed     outcome = iota // not a remote Wasm module: unchanged
	converted                 // remote code replaced by a local file
	failedOpen                // fetch failed, fail_open: replaced by allow-all RBAC
)

// convertResource converts one ECDS resource. It returns the resource to
// forward, or an error when the module cannot be loaded and the filter is
// not fail_open.
func convertResource(ctx context.Context, f fetcher, res *anypb.Any) (*anypb.Any, outcome, error) {
	if res.GetTypeUrl() != ExtensionConfigType {
		return res, passed, nil
	}
	tec := &corev3.TypedExtensionConfig{}
	if err := res.UnmarshalTo(tec); err != nil {
		return nil, passed, fmt.Errorf("decode extension config: %w", err)
	}
	if tec.GetTypedConfig().GetTypeUrl() != wasmTypeURL {
		return res, passed, nil
	}
	w := &wasmfilterv3.Wasm{}
	if err := tec.GetTypedConfig().UnmarshalTo(w); err != nil {
		return nil, passed, fmt.Errorf("%s: decode wasm filter: %w", tec.GetName(), err)
	}
	vm := w.GetConfig().GetVmConfig()
	if vm == nil || vm.GetCode().GetLocal() != nil {
		return res, passed, nil
	}
	failOpen := w.GetConfig().GetFailOpen() //nolint:staticcheck // what Istio and hxds set
	remote := vm.GetCode().GetRemote()
	if remote == nil {
		return nil, passed, fmt.Errorf("%s: wasm vm_config has neither local nor remote code", tec.GetName())
	}

	req := wasmfetch.Request{URL: remote.GetHttpUri().GetUri(), SHA256: remote.GetSha256()}
	if req.SHA256 == noSHA256 {
		req.SHA256 = ""
	}
	if d := remote.GetHttpUri().GetTimeout(); d != nil {
		req.Timeout = d.AsDuration()
	}
	if env := vm.GetEnvironmentVariables(); env != nil {
		kept := map[string]string{}
		for k, v := range env.GetKeyValues() {
			switch {
			case k == envPullSecret:
				req.PullSecret = append(make([]byte, 0, len(v)), v...) // non-nil even when empty
			case k == envPullPolicy:
				switch v {
				case "Always":
					req.PullPolicy = wasmfetch.PullAlways
				case "IfNotPresent":
					req.PullPolicy = wasmfetch.PullIfNotPresent
				}
			case k == envResourceVersion:
				req.ResourceVersion = v
			case strings.HasPrefix(k, envPrefix):
			default:
				kept[k] = v
			}
		}
		if len(kept) == 0 {
			kept = nil
		}
		env.KeyValues = kept
		if len(env.KeyValues) == 0 && len(env.GetHostEnvKeys()) == 0 {
			vm.EnvironmentVariables = nil
		}
	}

	path, _, err := f.Get(ctx, req)
	if err != nil {
		err = fmt.Errorf("%s: %w", tec.GetName(), err)
		if !failOpen {
			return nil, passed, err
		}
		out, merr := anypb.New(allowAll(tec.GetName()))
		if merr != nil {
			return nil, passed, merr
		}
		return out, failedOpen, err
	}
	vm.Code = &corev3.AsyncDataSource{Specifier: &corev3.AsyncDataSource_Local{Local: &corev3.DataSource{
		Specifier: &corev3.DataSource_Filename{Filename: path},
	}}}
	// A module compiled ahead of time for WAMR runs on WAMR (§7.5 step 7;
	// the Envoy build must include that runtime).
	if aot, err := wasmfetch.IsWAMRAOT(path); err == nil && aot {
		vm.Runtime, vm.AllowPrecompiled = wasmfetch.WAMRRuntime, true
	}
	tc, err := anypb.New(w)
	if err != nil {
		return nil, passed, err
	}
	tec.TypedConfig = tc
	out, err := anypb.New(tec)
	if err != nil {
		return nil, passed, err
	}
	return out, converted, nil
}

// allowAll is the filter that replaces a FAIL_OPEN plugin whose module
// cannot be loaded: an RBAC filter without rules lets everything through.
func allowAll(name string) *corev3.TypedExtensionConfig {
	return &corev3.TypedExtensionConfig{Name: name, TypedConfig: mustAny(&rbacv3.RBAC{})}
}

func mustAny(m proto.Message) *anypb.Any {
	a, err := anypb.New(m)
	if err != nil {
		panic(err)
	}
	return a
}

// convertAll converts resources in parallel, in place. The returned error
// joins the errors of resources that must be NACKed; fail-open errors are
// reported through onOutcome only.
func convertAll(ctx context.Context, f fetcher, resources []*anypb.Any, onOutcome func(outcome, error)) error {
	errs := make([]error, len(resources))
	var wg sync.WaitGroup
	for i, r := range resources {
		if r.GetTypeUrl() != ExtensionConfigType {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, oc, err := convertResource(ctx, f, r)
			onOutcome(oc, err)
			if out == nil {
				errs[i] = err
				return
			}
			resources[i] = out
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
