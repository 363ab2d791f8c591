// helm_render renders a chart directory the way `helm template --include-crds` does,
// with helm's own Go library (helm.sh/helm/v3, the version the Pulumi Kubernetes
// provider 4.25.0 links for its helm.sh/v4 Chart).
//
// Input on stdin, one JSON object:
//
//	{"chart": DIR, "release": NAME, "namespace": NS, "kubeVersion": "v1.34.2", "values": {...}}
//
// Output on stdout: the rendered manifest (CRDs first, then templates, then hooks),
// YAML documents separated by "---". A chart that fails (a template's `fail`, a
// schema error) makes the program exit 1 with helm's message on stderr.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
)

type request struct {
	Chart       string         `json:"chart"`
	Release     string         `json:"release"`
	Namespace   string         `json:"namespace"`
	KubeVersion string         `json:"kubeVersion"`
	Values      map[string]any `json:"values"`
}

func run() error {
	var r request
	if err := json.NewDecoder(os.Stdin).Decode(&r); err != nil {
		return fmt.Errorf("reading the request: %w", err)
	}
	ch, err := loader.Load(r.Chart)
	if err != nil {
		return err
	}
	inst := action.NewInstall(&action.Configuration{})
	inst.DryRun = true
	inst.ClientOnly = true
	inst.Replace = true
	inst.IncludeCRDs = true
	inst.DisableHooks = false
	inst.ReleaseName = r.Release
	inst.Namespace = r.Namespace
	if r.KubeVersion != "" {
		kv, err := chartutil.ParseKubeVersion(r.KubeVersion)
		if err != nil {
			return err
		}
		inst.KubeVersion = kv
	}
	values := r.Values
	if values == nil {
		values = map[string]any{}
	}
	rel, err := inst.Run(ch, values)
	if err != nil {
		return err
	}
	fmt.Print(rel.Manifest)
	for _, h := range rel.Hooks {
		fmt.Printf("\n---\n# Source: %s\n%s\n", h.Path, h.Manifest)
	}
	return nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "helm_render:", err)
		os.Exit(1)
	}
}
