package main

import (
	"github.com/spf13/pflag"

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
