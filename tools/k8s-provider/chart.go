package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/internals"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/provider"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/structpb"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/cli"
	helmkube "helm.sh/helm/v3/pkg/kube"
	"helm.sh/helm/v3/pkg/registry"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/yaml"
	sigyaml "sigs.k8s.io/yaml"
)

// The kubernetes:helm.sh/v4:Chart component, as upstream implements it
// (provider/pkg/provider/helm/v4/chart.go): the chart is rendered like
// `helm template` (client-only, no hooks, the cluster's version and API
// versions as capabilities), and every rendered object becomes a child
// custom resource named "<prefix>:<namespace>/<name>" where the prefix is
// the Chart's resource name unless resourcePrefix says otherwise.

const chartToken = "kubernetes:helm.sh/v4:Chart"

// dependsOnKey carries the Chart's own dependencies into the construct
// inputs as resource references, so that its children can wait for them too:
// a chart deployed "after" a namespace or a CRD must not race them.
const dependsOnKey = "__chartDependsOn"

// Construct builds a component resource. Only the v4 Chart is supported.
func (p *kubeProvider) Construct(ctx context.Context, req *pulumirpc.ConstructRequest) (*pulumirpc.ConstructResponse, error) {
	if req.GetType() != chartToken {
		return nil, fmt.Errorf("component %s (%s) is not implemented by this test double of pulumi-kubernetes "+
			"(only %s is)", req.GetName(), req.GetType(), chartToken)
	}
	injectDependencies(req)
	return provider.Construct(ctx, req, p.host.EngineConn(), p.constructChart)
}

// injectDependencies adds the component's dependencies to its inputs as an
// array of resource references (see dependsOnKey).
func injectDependencies(req *pulumirpc.ConstructRequest) {
	if len(req.GetDependencies()) == 0 {
		return
	}
	refs := make([]*structpb.Value, 0, len(req.GetDependencies()))
	for _, urn := range req.GetDependencies() {
		refs = append(refs, structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{
			// The resource reference signature of the property wire format.
			"4dabf18193072939515e22adb298388d": structpb.NewStringValue("5cf8f73096256a8f31e491e813e4eb8e"),
			"urn":                              structpb.NewStringValue(urn),
		}}))
	}
	if req.Inputs == nil {
		req.Inputs = &structpb.Struct{Fields: map[string]*structpb.Value{}}
	}
	req.Inputs.Fields[dependsOnKey] = structpb.NewListValue(&structpb.ListValue{Values: refs})
}

// chartDependencies turns the injected resource references back into
// resources (the SDK hands them over as an output of an array).
func chartDependencies(ctx *pulumi.Context, v pulumi.Input) ([]pulumi.Resource, error) {
	if v == nil {
		return nil, nil
	}
	out, ok := v.(pulumi.Output)
	if !ok {
		out = pulumi.ToOutput(v)
	}
	res, err := internals.UnsafeAwaitOutput(ctx.Context(), out)
	if err != nil {
		return nil, fmt.Errorf("resolving the chart's dependencies: %w", err)
	}
	items, _ := res.Value.([]any)
	deps := make([]pulumi.Resource, 0, len(items))
	for _, item := range items {
		r, ok := item.(pulumi.Resource)
		if !ok {
			return nil, fmt.Errorf("resolving the chart's dependencies: %T is not a resource", item)
		}
		deps = append(deps, r)
	}
	return deps, nil
}

// chartState is the component's registered state; `resources` is its output.
type chartState struct {
	pulumi.ResourceState
	Resources pulumi.ArrayOutput `pulumi:"resources"`
}

// childResource is a rendered object registered as a custom resource.
type childResource struct {
	pulumi.CustomResourceState
}

// chartArgs are the resolved inputs of a Chart.
type chartArgs struct {
	chart, version, name, namespace string
	repo, username, password        string
	values                          map[string]any
	valueFiles                      []string
	skipCrds, skipAwait, devel      bool
	dependencyUpdate, verify        bool
	resourcePrefix                  *string
	postRenderer                    bool
}

func (p *kubeProvider) constructChart(ctx *pulumi.Context, typ, name string, inputs provider.ConstructInputs,
	options pulumi.ResourceOption,
) (*provider.ConstructResult, error) {
	comp := &chartState{}
	if err := ctx.RegisterComponentResource(typ, name, comp, options); err != nil {
		return nil, err
	}
	in, err := inputs.Map()
	if err != nil {
		return nil, fmt.Errorf("chart %s: reading inputs: %w", name, err)
	}
	deps, err := chartDependencies(ctx, in[dependsOnKey])
	if err != nil {
		return nil, fmt.Errorf("chart %s: %w", name, err)
	}
	delete(in, dependsOnKey)

	result, err := internals.UnsafeAwaitOutput(ctx.Context(), in.ToMapOutput())
	if err != nil {
		return nil, fmt.Errorf("chart %s: resolving inputs: %w", name, err)
	}
	if !result.Known {
		// As upstream: nothing can be rendered from unknown inputs.
		_ = ctx.Log.Warn("Input properties have unknown values. Preview is incomplete.", &pulumi.LogArgs{Resource: comp})
		comp.Resources = pulumi.Array{}.ToArrayOutput()
		return provider.NewConstructResult(comp)
	}
	args, err := parseChartArgs(result.Value.(map[string]any))
	if err != nil {
		return nil, fmt.Errorf("chart %s: %w", name, err)
	}
	if args.name == "" {
		args.name = name
	}
	prefix := name
	if args.resourcePrefix != nil {
		prefix = *args.resourcePrefix
	}
	kube, _, kerr := p.kube()
	if kerr != nil && !errors.Is(kerr, errConfigUnknown) {
		return nil, fmt.Errorf("chart %s: %w", name, kerr)
	}
	namespace := args.namespace
	if namespace == "" && kube != nil {
		namespace = kube.defaultNamespace
	}
	if namespace == "" {
		namespace = "default"
	}
	args.namespace = namespace

	manifest, err := renderChart(ctx.Context(), kube, args)
	if err != nil {
		return nil, fmt.Errorf("chart %s: %w", name, err)
	}
	objs, err := parseManifest(manifest)
	if err != nil {
		return nil, fmt.Errorf("chart %s: rendered manifest: %w", name, err)
	}
	if err := normalizeNamespaces(kube, objs, namespace); err != nil {
		return nil, fmt.Errorf("chart %s: %w", name, err)
	}

	childOpts := []pulumi.ResourceOption{pulumi.Parent(comp)}
	if len(deps) > 0 {
		childOpts = append(childOpts, pulumi.DependsOn(deps))
	}
	// Namespaces and CRDs first: the rest of the chart depends on them.
	var first, rest []*unstructured.Unstructured
	for _, o := range objs {
		if isPrerequisite(o) {
			first = append(first, o)
		} else {
			rest = append(rest, o)
		}
	}
	var resources pulumi.Array
	var prereqs []pulumi.Resource
	for _, group := range [][]*unstructured.Unstructured{first, rest} {
		opts := childOpts
		if len(prereqs) > 0 && len(group) > 0 && !isPrerequisite(group[0]) {
			opts = append(append([]pulumi.ResourceOption{}, childOpts...), pulumi.DependsOn(prereqs))
		}
		for _, o := range group {
			res, err := registerObject(ctx, o, prefix, args.skipAwait, opts)
			if err != nil {
				return nil, fmt.Errorf("chart %s: %w", name, err)
			}
			if isPrerequisite(o) {
				prereqs = append(prereqs, res)
			}
			resources = append(resources, pulumi.NewResourceOutput(res))
		}
	}
	if resources == nil {
		resources = pulumi.Array{}
	}
	comp.Resources = resources.ToArrayOutput()
	return provider.NewConstructResult(comp)
}

func isPrerequisite(o *unstructured.Unstructured) bool {
	gvk := o.GroupVersionKind()
	return (gvk.Group == "" && gvk.Kind == "Namespace") ||
		(gvk.Group == "apiextensions.k8s.io" && gvk.Kind == "CustomResourceDefinition")
}

// registerObject registers one rendered object as a child resource.
func registerObject(ctx *pulumi.Context, o *unstructured.Unstructured, prefix string, skipAwaitAll bool,
	opts []pulumi.ResourceOption,
) (pulumi.CustomResource, error) {
	if o.GetName() == "" {
		return nil, fmt.Errorf("rendered %s has no metadata.name", o.GetKind())
	}
	resourceName := objectID(o.GetNamespace(), o.GetName())
	if prefix != "" {
		resourceName = prefix + ":" + resourceName
	}
	if skipAwaitAll {
		ann := o.GetAnnotations()
		if ann == nil {
			ann = map[string]string{}
		}
		ann[annotationSkipAwait] = "true"
		o.SetAnnotations(ann)
	}
	gvk := o.GroupVersionKind()
	tokenGV := gvk.GroupVersion().String()
	if gvk.Group == "" {
		tokenGV = "core/" + gvk.Version
	}
	token := "kubernetes:" + tokenGV + ":" + gvk.Kind

	props := pulumi.Map{}
	for k, v := range o.Object {
		props[k] = pulumi.ToOutput(v)
	}
	if gvk.Group == "" && gvk.Kind == "Secret" {
		// A chart's Secret is as secret as one declared in the program.
		for _, k := range []string{"data", "stringData"} {
			if v, ok := o.Object[k]; ok {
				props[k] = pulumi.ToSecret(v)
			}
		}
	}
	if o.GetAnnotations()[helmkube.ResourcePolicyAnno] == helmkube.KeepPolicy {
		opts = append(append([]pulumi.ResourceOption{}, opts...), pulumi.RetainOnDelete(true))
	}
	res := &childResource{}
	if err := ctx.RegisterResource(token, resourceName, props, res, opts...); err != nil {
		return nil, fmt.Errorf("registering %s %s: %w", gvk.Kind, resourceName, err)
	}
	return res, nil
}

func parseChartArgs(m map[string]any) (chartArgs, error) {
	var a chartArgs
	str := func(k string) string { s, _ := m[k].(string); return s }
	boolean := func(k string) bool { b, _ := m[k].(bool); return b }
	a.chart = str("chart")
	if a.chart == "" {
		return a, errors.New("`chart` is required")
	}
	a.version = str("version")
	a.name = str("name")
	a.namespace = str("namespace")
	a.skipCrds = boolean("skipCrds")
	a.skipAwait = boolean("skipAwait")
	a.devel = boolean("devel")
	a.dependencyUpdate = boolean("dependencyUpdate")
	a.verify = boolean("verify")
	if s, ok := m["resourcePrefix"].(string); ok {
		a.resourcePrefix = &s
	}
	if v, ok := m["values"].(map[string]any); ok {
		a.values = v
	}
	if ro, ok := m["repositoryOpts"].(map[string]any); ok {
		a.repo, _ = ro["repo"].(string)
		a.username, _ = ro["username"].(string)
		a.password, _ = ro["password"].(string)
	}
	if files, ok := m["valueYamlFiles"].([]any); ok {
		for _, f := range files {
			path, err := assetPath(f)
			if err != nil {
				return a, fmt.Errorf("valueYamlFiles: %w", err)
			}
			a.valueFiles = append(a.valueFiles, path)
		}
	}
	if _, ok := m["postRenderer"]; ok {
		a.postRenderer = true
	}
	return a, nil
}

// assetPath accepts the file assets valueYamlFiles is made of.
func assetPath(v any) (string, error) {
	switch a := v.(type) {
	case pulumi.Asset:
		if a.Path() != "" {
			return a.Path(), nil
		}
		if a.Text() != "" {
			f, err := os.CreateTemp("", "values-*.yaml")
			if err != nil {
				return "", err
			}
			defer f.Close()
			if _, err := f.WriteString(a.Text()); err != nil {
				return "", err
			}
			return f.Name(), nil
		}
	}
	return "", fmt.Errorf("only file and string assets are supported, got %T", v)
}

// renderChart renders the chart like `helm template --no-hooks` with the
// cluster's capabilities (discovery GETs only; no lookups).
func renderChart(ctx context.Context, kube *kubeClients, a chartArgs) (string, error) {
	if a.postRenderer {
		return "", errors.New("postRenderer is not supported by this test double")
	}
	if a.dependencyUpdate {
		return "", errors.New("dependencyUpdate is not supported by this test double (it needs the network): vendor the dependencies into charts/")
	}
	cfg := &action.Configuration{Log: func(string, ...any) {}}
	inst := action.NewInstall(cfg)
	inst.ClientOnly = true
	inst.DryRun = true
	inst.DryRunOption = "client"
	inst.Replace = true // no release storage to check the name against
	inst.DisableHooks = true
	inst.DisableOpenAPIValidation = true
	inst.IncludeCRDs = !a.skipCrds
	inst.ReleaseName = a.name
	inst.Namespace = a.namespace
	inst.Version = a.version
	inst.Devel = a.devel
	inst.Verify = a.verify
	inst.RepoURL = a.repo
	inst.Username = a.username
	inst.Password = a.password

	if kube != nil {
		sv, err := kube.discovery.ServerVersion()
		if err != nil {
			return "", fmt.Errorf("could not get the server version from Kubernetes: %w", apiMessage(err))
		}
		inst.KubeVersion = &chartutil.KubeVersion{Version: sv.GitVersion, Major: sv.Major, Minor: sv.Minor}
		versions, err := action.GetVersionSet(kube.discovery)
		if err != nil {
			return "", fmt.Errorf("could not get the API versions from Kubernetes: %w", apiMessage(err))
		}
		inst.APIVersions = versions
	}

	chrt, err := locateChart(inst, a)
	if err != nil {
		return "", err
	}
	if err := action.CheckDependencies(chrt, chrt.Metadata.Dependencies); err != nil {
		return "", fmt.Errorf("chart %q: %w (vendor its dependencies into charts/)", a.chart, err)
	}
	vals, err := mergeValues(a)
	if err != nil {
		return "", err
	}
	rel, err := inst.RunWithContext(ctx, chrt, vals)
	if err != nil {
		return "", fmt.Errorf("rendering chart %q: %w", a.chart, err)
	}
	return rel.Manifest, nil
}

// locateChart loads a local chart, or pulls one from an OCI registry or a
// repository. Pulls need the network; their failure names the chart.
func locateChart(inst *action.Install, a chartArgs) (*chart.Chart, error) {
	if _, err := os.Stat(a.chart); err == nil {
		c, err := loader.Load(a.chart)
		if err != nil {
			return nil, fmt.Errorf("loading local chart %q: %w", a.chart, err)
		}
		return c, nil
	}
	remote := a.chart
	if a.repo != "" {
		remote = a.repo + " " + a.chart
	}
	if !registry.IsOCI(a.chart) && a.repo == "" && (strings.HasPrefix(a.chart, ".") || strings.HasPrefix(a.chart, "/")) {
		return nil, fmt.Errorf("local chart %q not found (relative to %s)", a.chart, cwd())
	}
	rc, err := registry.NewClient(registry.ClientOptWriter(io.Discard))
	if err != nil {
		return nil, fmt.Errorf("chart %s: registry client: %w", remote, err)
	}
	inst.SetRegistryClient(rc)
	settings := cli.New()
	path, err := inst.LocateChart(a.chart, settings)
	if err != nil {
		return nil, fmt.Errorf("cannot fetch chart %s version %q: %w", remote, a.version, err)
	}
	c, err := loader.Load(path)
	if err != nil {
		return nil, fmt.Errorf("loading chart %s: %w", remote, err)
	}
	return c, nil
}

func cwd() string {
	d, err := os.Getwd()
	if err != nil {
		return "?"
	}
	return d
}

// mergeValues: value files in order, then `values` on top (deep merge).
func mergeValues(a chartArgs) (map[string]any, error) {
	out := map[string]any{}
	for _, f := range a.valueFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("valueYamlFiles: %w", err)
		}
		var m map[string]any
		if err := sigyaml.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("valueYamlFiles %s: %w", f, err)
		}
		out = mergeMaps(out, m)
	}
	return mergeMaps(out, a.values), nil
}

func mergeMaps(a, b map[string]any) map[string]any {
	out := make(map[string]any, len(a))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		if bm, ok := v.(map[string]any); ok {
			if am, ok := out[k].(map[string]any); ok {
				out[k] = mergeMaps(am, bm)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// parseManifest splits a multi-document manifest into objects; lists are
// flattened, empty documents skipped.
func parseManifest(manifest string) ([]*unstructured.Unstructured, error) {
	dec := yaml.NewYAMLOrJSONDecoder(strings.NewReader(manifest), 4096)
	var out []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, err
		}
		if len(m) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		if u.GetAPIVersion() == "" || u.GetKind() == "" {
			return nil, fmt.Errorf("object without apiVersion or kind: %v", m["metadata"])
		}
		if u.IsList() {
			err := u.EachListItem(func(o runtime.Object) error {
				out = append(out, o.(*unstructured.Unstructured))
				return nil
			})
			if err != nil {
				return nil, err
			}
			continue
		}
		out = append(out, u)
	}
}

// normalizeNamespaces puts namespaced objects without a namespace into the
// release namespace and strips the namespace of cluster-scoped ones. The
// scope comes from discovery, or from a CRD in the same chart; a kind known
// to neither is taken as namespaced (as most custom resources are).
func normalizeNamespaces(kube *kubeClients, objs []*unstructured.Unstructured, namespace string) error {
	crdScopes := map[string]bool{} // "group/Kind" → namespaced
	for _, o := range objs {
		if o.GetKind() != "CustomResourceDefinition" {
			continue
		}
		group, _, _ := unstructured.NestedString(o.Object, "spec", "group")
		kind, _, _ := unstructured.NestedString(o.Object, "spec", "names", "kind")
		scope, _, _ := unstructured.NestedString(o.Object, "spec", "scope")
		crdScopes[group+"/"+kind] = scope != "Cluster"
	}
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		namespaced, known := crdScopes[gvk.Group+"/"+gvk.Kind]
		if !known && kube != nil {
			m, err := kube.mapping(gvk)
			switch {
			case err == nil:
				namespaced, known = isNamespaced(m), true
			case !meta.IsNoMatchError(err):
				return fmt.Errorf("%s %s: %w", gvk.Kind, o.GetName(), apiMessage(err))
			}
		}
		if !known {
			namespaced = true
		}
		switch {
		case namespaced && o.GetNamespace() == "":
			o.SetNamespace(namespace)
		case !namespaced:
			o.SetNamespace("")
		}
	}
	return nil
}
