package main

import (
	"fmt"

	"github.com/spf13/pflag"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/hxds/hxds/translate/input"
)

// addTranslationFlags binds the flags that change translation output; serve
// and translate share them so both produce the same configuration.
func addTranslationFlags(fs *pflag.FlagSet, o *input.Options) {
	*o = input.DefaultOptions()
	fs.StringVar(&o.SystemNamespace, "system-namespace", o.SystemNamespace, "namespace of Higress-wide objects; Ingresses there get short route names")
	fs.StringVar(&o.IngressClass, "ingress-class", o.IngressClass, `Ingress class to serve; "" serves every Ingress, "nginx" also serves class-less ones`)
	fs.StringVar(&o.DomainSuffix, "domain-suffix", o.DomainSuffix, "cluster domain suffix of Service host names")
	fs.StringVar(&o.Group, "gateway-group", o.Group, "gateway group served to Envoys whose node.cluster is this name or empty")
	fs.StringVar(&o.ClusterID, "cluster-id", o.ClusterID, "cluster id in SDS secret names kubernetes-ingress://<id>/<ns>/<name>")
	fs.Uint32Var(&o.HTTPPort, "gateway-http-port", o.HTTPPort, "gateway port for Ingress HTTP")
	fs.Uint32Var(&o.HTTPSPort, "gateway-https-port", o.HTTPSPort, "gateway port for Ingress HTTPS")
}

type logFlags struct{ level, format string }

func (l *logFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&l.level, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&l.format, "log-format", "console", "log format: console or json")
}

func (l *logFlags) build() (*zap.Logger, error) {
	var level zapcore.Level
	if err := level.UnmarshalText([]byte(l.level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	var cfg zap.Config
	switch l.format {
	case "json":
		cfg = zap.NewProductionConfig()
	case "console":
		cfg = zap.NewDevelopmentConfig()
		cfg.Development = false
		cfg.DisableStacktrace = true
	default:
		return nil, fmt.Errorf("--log-format must be console or json, not %q", l.format)
	}
	cfg.Level = zap.NewAtomicLevelAt(level)
	cfg.OutputPaths = []string{"stderr"}
	cfg.ErrorOutputPaths = []string{"stderr"}
	log, err := cfg.Build()
	if err != nil {
		return nil, fmt.Errorf("build logger: %w", err)
	}
	return log, nil
}
