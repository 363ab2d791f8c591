package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
)

// How long Create waits for a kind to become discoverable (a custom resource
// whose CRD is created in the same deployment).
const crdDiscoveryTimeout = 2 * time.Minute

// Check validates and normalises the inputs of a Kubernetes object.
func (p *kubeProvider) Check(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	urn := resource.URN(req.GetUrn())
	label := fmt.Sprintf("%s (%s)", urn.Name(), urn.Type())
	news, err := unmarshal(req.GetNews(), label)
	if err != nil {
		return nil, err
	}
	olds, err := unmarshal(req.GetOlds(), label)
	if err != nil {
		return nil, err
	}
	var failures []*pulumirpc.CheckFailure
	for _, key := range []string{"apiVersion", "kind"} {
		v := unsecret(news[resource.PropertyKey(key)])
		if v.ContainsUnknowns() {
			continue
		}
		if !v.IsString() || v.StringValue() == "" {
			failures = append(failures, &pulumirpc.CheckFailure{
				Property: key,
				Reason: fmt.Sprintf("%s: Kubernetes objects require `apiVersion` and `kind`; %q is missing",
					label, key),
			})
		}
	}
	if len(failures) > 0 {
		return &pulumirpc.CheckResponse{Failures: failures}, nil
	}
	if gvk, ok := gvkFromProps(news); ok {
		if tok, err := gvkFromToken(string(urn.Type())); err == nil && tok.Kind != gvk.Kind {
			return &pulumirpc.CheckResponse{Failures: []*pulumirpc.CheckFailure{{
				Property: "kind",
				Reason:   fmt.Sprintf("%s: kind %q does not match the resource type %s", label, gvk.Kind, urn.Type()),
			}}}, nil
		}
	}
	autoname(news, olds, urn.Name(), req.GetRandomSeed(), req.GetAutonaming())

	// Secret data is always secret, whatever the program marked (upstream
	// does the same, so that a Secret never lands in the state in clear).
	if gvk, ok := gvkFromProps(news); ok && gvkString(gvk) == "v1/Secret" {
		for _, k := range []resource.PropertyKey{"data", "stringData"} {
			if v, has := news[k]; has {
				news[k] = markSecret(v)
			}
		}
	}
	inputs, err := marshal(news, label)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CheckResponse{Inputs: inputs}, nil
}

// autoname gives an object without metadata.name the name `<resource
// name>-<8 random characters>` like upstream, kept across updates, and marks
// it with the pulumi.com/autonamed annotation.
func autoname(news, olds resource.PropertyMap, name string, seed []byte,
	opts *pulumirpc.CheckRequest_AutonamingOptions,
) {
	md := news["metadata"]
	if md.ContainsUnknowns() && !md.IsObject() {
		return
	}
	var meta resource.PropertyMap
	if md.IsObject() {
		meta = md.ObjectValue().Copy()
	} else if md.IsNull() {
		meta = resource.PropertyMap{}
	} else {
		return
	}
	if n, has := meta["name"]; has && !n.IsNull() {
		return
	}
	var generated string
	switch {
	case metadataString(olds, "name") != "" && oldAutonamed(olds):
		generated = metadataString(olds, "name")
	case opts != nil && opts.GetProposedName() != "":
		generated = opts.GetProposedName()
	default:
		generated = name + "-" + randomSuffix(seed, 8)
	}
	meta["name"] = resource.NewProperty(generated)
	ann := resource.PropertyMap{}
	if a := meta["annotations"]; a.IsObject() {
		ann = a.ObjectValue().Copy()
	}
	ann[annotationAutonamed] = resource.NewProperty("true")
	meta["annotations"] = resource.NewProperty(ann)
	news["metadata"] = resource.NewProperty(meta)
}

func oldAutonamed(olds resource.PropertyMap) bool {
	md := unsecret(olds["metadata"])
	if !md.IsObject() {
		return false
	}
	ann := md.ObjectValue()["annotations"]
	if !ann.IsObject() {
		return false
	}
	v := ann.ObjectValue()[annotationAutonamed]
	return v.IsString() && v.StringValue() == "true"
}

// randomSuffix derives lowercase hex characters from the engine's random
// seed, so a re-run of the same program proposes the same name.
func randomSuffix(seed []byte, n int) string {
	var s int64
	for _, b := range seed {
		s = s*31 + int64(b)
	}
	if len(seed) == 0 {
		s = time.Now().UnixNano()
	}
	r := rand.New(rand.NewSource(s)) //nolint:gosec // names, not secrets
	const alphabet = "0123456789abcdef"
	out := make([]byte, n)
	for i := range out {
		out[i] = alphabet[r.Intn(len(alphabet))]
	}
	return string(out)
}

// Diff compares old and new inputs (see diff.go).
func (p *kubeProvider) Diff(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	urn := resource.URN(req.GetUrn())
	label := fmt.Sprintf("%s (%s)", urn.Name(), urn.Type())
	olds, err := unmarshal(oldInputsOf(req.GetOldInputs(), req.GetOlds()), label)
	if err != nil {
		return nil, err
	}
	news, err := unmarshal(req.GetNews(), label)
	if err != nil {
		return nil, err
	}
	gvk, ok := gvkFromProps(news)
	if !ok {
		if gvk, err = gvkFromToken(string(urn.Type())); err != nil {
			return nil, err
		}
	}
	_, cfg, _ := p.kube()
	d := diffInputs(gvk, cfg, olds, news)
	resp := &pulumirpc.DiffResponse{
		Changes:         pulumirpc.DiffResponse_DIFF_NONE,
		HasDetailedDiff: true,
		DetailedDiff:    d.detailed,
	}
	if len(d.changed) == 0 {
		return resp, nil
	}
	resp.Changes = pulumirpc.DiffResponse_DIFF_SOME
	resp.Diffs = d.changed
	resp.Replaces = d.replaces
	if len(d.replaces) > 0 {
		// The new object takes the old one's name: it cannot be created
		// before the old one is gone.
		oldName, newName := metadataString(olds, "name"), metadataString(news, "name")
		oldNS, newNS := metadataString(olds, "namespace"), metadataString(news, "namespace")
		resp.DeleteBeforeReplace = newName != "" && oldName == newName && oldNS == newNS
	}
	return resp, nil
}

// target is an object resolved against the cluster.
type target struct {
	gvk       schema.GroupVersionKind
	mapping   *meta.RESTMapping
	namespace string
	name      string
	client    dynamic.ResourceInterface
	what      string // "ConfigMap ns/name", for messages
}

// resolve maps an object's kind and places it in its namespace.
func (p *kubeProvider) resolve(ctx context.Context, kube *kubeClients, gvk schema.GroupVersionKind,
	namespace, name string, wait time.Duration,
) (*target, error) {
	what := describe(gvk.Kind, namespace, name)
	var m *meta.RESTMapping
	var err error
	if wait > 0 {
		m, err = kube.mappingWait(ctx, gvk, wait)
	} else {
		m, err = kube.mapping(gvk)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, apiMessage(err))
	}
	if isNamespaced(m) {
		if namespace == "" {
			namespace = kube.defaultNamespace
		}
	} else {
		namespace = ""
	}
	return &target{
		gvk: gvk, mapping: m, namespace: namespace, name: name,
		client: kube.resourceClient(m, namespace),
		what:   describe(gvk.Kind, namespace, name),
	}, nil
}

// Create applies a new object (server-side apply) after checking that it does
// not exist yet, then waits for it to be ready.
func (p *kubeProvider) Create(ctx context.Context, req *pulumirpc.CreateRequest) (*pulumirpc.CreateResponse, error) {
	urn := resource.URN(req.GetUrn())
	label := fmt.Sprintf("%s (%s)", urn.Name(), urn.Type())
	inputs, err := unmarshal(req.GetProperties(), label)
	if err != nil {
		return nil, err
	}
	if req.GetPreview() {
		// Preview never writes to the cluster: the planned outputs are the
		// inputs (with the default namespace when it can be told by GETs).
		outs, err := p.plannedOutputs(inputs)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", label, err)
		}
		return &pulumirpc.CreateResponse{Properties: outs}, nil
	}
	kube, _, err := p.kube()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", label, err)
	}
	obj, err := toPlain(inputs)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", label, err)
	}
	gvk, err := gvkFromObject(obj)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", label, err)
	}
	name := nestedString(obj, "metadata", "name")
	if name == "" {
		return nil, fmt.Errorf("%s: metadata.name is required", label)
	}
	t, err := p.resolve(ctx, kube, gvk, nestedString(obj, "metadata", "namespace"), name, crdDiscoveryTimeout)
	if err != nil {
		return nil, err
	}
	if t.namespace != "" {
		nestedMap(obj, true, "metadata")["namespace"] = t.namespace
	}

	// Upstream refuses to adopt an object it did not create (unless told to
	// upsert): a name clash with something already there is an error.
	if _, err := t.client.Get(ctx, name, metav1.GetOptions{}); err == nil {
		return nil, fmt.Errorf("creating %s: resource %q already exists; "+
			"import it (pulumi import) or delete it before creating it with Pulumi", t.what, objectID(t.namespace, name))
	} else if !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("creating %s: %w", t.what, apiMessage(err))
	}
	live, err := p.apply(ctx, t, obj)
	if err != nil {
		return nil, fmt.Errorf("creating %s: %w", t.what, err)
	}
	id := objectID(t.namespace, name)
	live, awaitErr := p.awaitReady(ctx, kube, t, live, req.GetTimeout())
	outs, err := p.outputs(inputs, live)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.what, err)
	}
	if awaitErr != nil {
		// The object exists: report it with the failure so the engine keeps
		// it in the state (a re-run then updates instead of clashing).
		return nil, initFailed(id, outs, req.GetProperties(), awaitErr)
	}
	return &pulumirpc.CreateResponse{Id: id, Properties: outs}, nil
}

// apply server-side applies obj as our field manager, taking over fields
// another manager holds (force), as upstream does.
func (p *kubeProvider) apply(ctx context.Context, t *target, obj map[string]any) (*unstructured.Unstructured, error) {
	body, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	force := true
	live, err := t.client.Patch(ctx, t.name, types.ApplyPatchType, body, metav1.PatchOptions{
		FieldManager: fieldManager,
		Force:        &force,
	})
	if err != nil {
		return nil, apiMessage(err)
	}
	return live, nil
}

// awaitReady waits for the kind's readiness condition, if any.
func (p *kubeProvider) awaitReady(ctx context.Context, kube *kubeClients, t *target,
	live *unstructured.Unstructured, engineTimeout float64,
) (*unstructured.Unstructured, error) {
	if skipAwait(live) {
		return live, nil
	}
	ready, def := p.readinessFor(kube, t.gvk)
	if ready == nil {
		return live, nil
	}
	return p.await(ctx, t.client, live, ready, awaitTimeout(live, engineTimeout, def), t.what)
}

func initFailed(id string, outs, inputs *structpb.Struct, cause error) error {
	st := status.New(codes.Unknown, cause.Error())
	withDetails, err := st.WithDetails(&pulumirpc.ErrorResourceInitFailed{
		Id:         id,
		Properties: outs,
		Inputs:     inputs,
		Reasons:    []string{cause.Error()},
	})
	if err != nil {
		return st.Err()
	}
	return withDetails.Err()
}

// plannedOutputs are the outputs shown by a preview: the inputs, with the
// namespace a namespaced object will be created in.
func (p *kubeProvider) plannedOutputs(inputs resource.PropertyMap) (*structpb.Struct, error) {
	outs := inputs.Copy()
	kube, _, err := p.kube()
	if err == nil {
		if gvk, ok := gvkFromProps(inputs); ok {
			// A kind not served yet (its CRD comes in the same deployment)
			// is no error in a preview.
			if m, err := kube.mapping(gvk); err == nil && isNamespaced(m) {
				md := outs["metadata"]
				if md.IsObject() {
					mdm := md.ObjectValue().Copy()
					if ns, has := mdm["namespace"]; !has || ns.IsNull() {
						mdm["namespace"] = resource.NewProperty(kube.defaultNamespace)
					}
					outs["metadata"] = resource.NewProperty(mdm)
				}
			}
		}
	} else if !errors.Is(err, errConfigUnknown) {
		return nil, err
	}
	return marshal(outs, "preview outputs")
}

// outputs are the live object (without the managedFields bookkeeping), with
// the secretness of the inputs: a top-level field given with a secret in it
// is secret in the outputs, and a Secret's data always is.
func (p *kubeProvider) outputs(inputs resource.PropertyMap, live *unstructured.Unstructured) (*structpb.Struct, error) {
	obj := live.DeepCopy().Object
	if md := nestedMap(obj, false, "metadata"); md != nil {
		delete(md, "managedFields")
	}
	outs := fromPlain(obj)
	isSecret := nestedString(obj, "apiVersion") == "v1" && nestedString(obj, "kind") == "Secret"
	if isSecret {
		// The API server turns stringData into data; keep the given
		// stringData in the outputs (as upstream) so it reads back.
		if sd, has := inputs["stringData"]; has {
			outs["stringData"] = sd
		}
		for _, k := range []resource.PropertyKey{"data", "stringData"} {
			if v, has := outs[k]; has {
				outs[k] = markSecret(v)
			}
		}
	}
	for k, v := range inputs {
		if v.ContainsSecrets() {
			if ov, has := outs[k]; has {
				outs[k] = markSecret(ov)
			}
		}
	}
	return marshal(outs, "outputs")
}

// Read refreshes (or imports) an object from the cluster.
func (p *kubeProvider) Read(ctx context.Context, req *pulumirpc.ReadRequest) (*pulumirpc.ReadResponse, error) {
	urn := resource.URN(req.GetUrn())
	label := fmt.Sprintf("%s (%s)", urn.Name(), urn.Type())
	state, err := unmarshal(req.GetProperties(), label)
	if err != nil {
		return nil, err
	}
	inputs, err := unmarshal(req.GetInputs(), label)
	if err != nil {
		return nil, err
	}
	gvk, ok := gvkFromProps(state)
	if !ok {
		if gvk, ok = gvkFromProps(inputs); !ok {
			if gvk, err = gvkFromToken(string(urn.Type())); err != nil {
				return nil, fmt.Errorf("%s: %w", label, err)
			}
		}
	}
	kube, _, err := p.kube()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", label, err)
	}
	namespace, name := parseID(req.GetId())
	t, err := p.resolve(ctx, kube, gvk, namespace, name, 0)
	if err != nil {
		if isNoMatch(err) {
			// The kind is gone (CRD deleted): so is the object.
			return &pulumirpc.ReadResponse{}, nil
		}
		return nil, err
	}
	live, err := t.client.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return &pulumirpc.ReadResponse{}, nil // deleted outside Pulumi
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", t.what, apiMessage(err))
	}
	if len(inputs) == 0 {
		// Import: the inputs are what a program would have to declare.
		inputs = fromPlain(importInputs(live))
	}
	outs, err := p.outputs(inputs, live)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.what, err)
	}
	ins, err := marshal(inputs, label)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.ReadResponse{Id: objectID(t.namespace, name), Properties: outs, Inputs: ins}, nil
}

func isNoMatch(err error) bool {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if meta.IsNoMatchError(e) {
			return true
		}
	}
	return false
}

// importInputs strips what the server sets from a live object.
func importInputs(live *unstructured.Unstructured) map[string]any {
	obj := live.DeepCopy().Object
	delete(obj, "status")
	if md := nestedMap(obj, false, "metadata"); md != nil {
		for _, k := range []string{"managedFields", "resourceVersion", "uid", "generation",
			"creationTimestamp", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds"} {
			delete(md, k)
		}
		if ann := nestedMap(md, false, "annotations"); ann != nil {
			delete(ann, "kubectl.kubernetes.io/last-applied-configuration")
			if len(ann) == 0 {
				delete(md, "annotations")
			}
		}
	}
	return obj
}

// Update server-side applies the new inputs: fields the program no longer
// sets are released by our field manager and so removed.
func (p *kubeProvider) Update(ctx context.Context, req *pulumirpc.UpdateRequest) (*pulumirpc.UpdateResponse, error) {
	urn := resource.URN(req.GetUrn())
	label := fmt.Sprintf("%s (%s)", urn.Name(), urn.Type())
	news, err := unmarshal(req.GetNews(), label)
	if err != nil {
		return nil, err
	}
	if req.GetPreview() {
		outs, err := p.plannedOutputs(news)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", label, err)
		}
		return &pulumirpc.UpdateResponse{Properties: outs}, nil
	}
	kube, _, err := p.kube()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", label, err)
	}
	obj, err := toPlain(news)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", label, err)
	}
	gvk, err := gvkFromObject(obj)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", label, err)
	}
	namespace, name := parseID(req.GetId())
	if n := nestedString(obj, "metadata", "name"); n != "" {
		name = n
	}
	if ns := nestedString(obj, "metadata", "namespace"); ns != "" {
		namespace = ns
	}
	t, err := p.resolve(ctx, kube, gvk, namespace, name, crdDiscoveryTimeout)
	if err != nil {
		return nil, err
	}
	if t.namespace != "" {
		nestedMap(obj, true, "metadata")["namespace"] = t.namespace
	}
	live, err := p.apply(ctx, t, obj)
	if err != nil {
		return nil, fmt.Errorf("updating %s: %w", t.what, err)
	}
	live, awaitErr := p.awaitReady(ctx, kube, t, live, req.GetTimeout())
	outs, err := p.outputs(news, live)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.what, err)
	}
	if awaitErr != nil {
		return nil, initFailed(objectID(t.namespace, name), outs, req.GetNews(), awaitErr)
	}
	return &pulumirpc.UpdateResponse{Properties: outs}, nil
}

// Delete deletes with foreground propagation (dependents first, as
// upstream) and waits until the object is gone.
func (p *kubeProvider) Delete(ctx context.Context, req *pulumirpc.DeleteRequest) (*emptypb.Empty, error) {
	urn := resource.URN(req.GetUrn())
	label := fmt.Sprintf("%s (%s)", urn.Name(), urn.Type())
	state, err := unmarshal(req.GetProperties(), label)
	if err != nil {
		return nil, err
	}
	gvk, ok := gvkFromProps(state)
	if !ok {
		if gvk, err = gvkFromToken(string(urn.Type())); err != nil {
			return nil, fmt.Errorf("%s: %w", label, err)
		}
	}
	kube, _, err := p.kube()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", label, err)
	}
	namespace, name := parseID(req.GetId())
	t, err := p.resolve(ctx, kube, gvk, namespace, name, 0)
	if err != nil {
		if isNoMatch(err) {
			return &emptypb.Empty{}, nil // the kind is gone, and the object with it
		}
		return nil, err
	}
	uid := ""
	if md := unsecret(state["metadata"]); md.IsObject() {
		uid = propString(md.ObjectValue(), "uid")
	}
	policy := metav1.DeletePropagationForeground
	opts := metav1.DeleteOptions{PropagationPolicy: &policy}
	if uid != "" {
		// Never delete a namesake created outside this state.
		opts.Preconditions = &metav1.Preconditions{UID: (*types.UID)(&uid)}
	}
	err = t.client.Delete(ctx, name, opts)
	switch {
	case apierrors.IsNotFound(err):
		return &emptypb.Empty{}, nil
	case apierrors.IsConflict(err) && uid != "":
		return &emptypb.Empty{}, nil // another object of that name: ours is gone
	case err != nil:
		return nil, fmt.Errorf("deleting %s: %w", t.what, apiMessage(err))
	}
	timeout := defaultDeleteTimeout
	if req.GetTimeout() > 0 {
		timeout = time.Duration(req.GetTimeout() * float64(time.Second))
	}
	if err := p.awaitDeleted(ctx, t.client, name, uid, timeout, "deleting "+t.what); err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}
