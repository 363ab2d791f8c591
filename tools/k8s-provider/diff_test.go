package main

import (
	"reflect"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func props(m map[string]any) resource.PropertyMap { return resource.NewPropertyMapFromMap(m) }

func obj(kind string, extra map[string]any) map[string]any {
	o := map[string]any{
		"apiVersion": "v1",
		"kind":       kind,
		"metadata":   map[string]any{"name": "x", "namespace": "ns", "labels": map[string]any{"a": "1"}},
	}
	for k, v := range extra {
		o[k] = v
	}
	return o
}

func TestDiffEqualInputsIsNoChange(t *testing.T) {
	o := obj("ConfigMap", map[string]any{"data": map[string]any{"k": "v"}})
	d := diffInputs(schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}, clusterConfig{}, props(o), props(o))
	if len(d.changed) != 0 || len(d.replaces) != 0 {
		t.Fatalf("equal inputs differ: %+v", d)
	}
}

func TestDiffSecretnessAloneIsNoChange(t *testing.T) {
	o := props(obj("Secret", map[string]any{"stringData": map[string]any{"t": "s"}}))
	n := o.Copy()
	n["stringData"] = resource.MakeSecret(n["stringData"])
	d := diffInputs(schema.GroupVersionKind{Version: "v1", Kind: "Secret"}, clusterConfig{}, o, n)
	if len(d.changed) != 0 {
		t.Fatalf("secretness alone reported as a change: %+v", d)
	}
}

func TestDiffReplacements(t *testing.T) {
	cm := schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}
	pvc := schema.GroupVersionKind{Version: "v1", Kind: "PersistentVolumeClaim"}
	sc := schema.GroupVersionKind{Group: "storage.k8s.io", Version: "v1", Kind: "StorageClass"}
	pvcSpec := func(size, class string) map[string]any {
		return map[string]any{"spec": map[string]any{
			"storageClassName": class,
			"resources":        map[string]any{"requests": map[string]any{"storage": size}},
		}}
	}
	cases := []struct {
		name     string
		gvk      schema.GroupVersionKind
		cfg      clusterConfig
		old, new map[string]any
		replaces []string
		changed  []string
	}{
		{"label change updates", cm, clusterConfig{},
			obj("ConfigMap", nil), obj("ConfigMap", map[string]any{"metadata": map[string]any{"name": "x", "namespace": "ns"}}),
			nil, []string{"metadata"}},
		{"ConfigMap data replaces (upstream default)", cm, clusterConfig{},
			obj("ConfigMap", map[string]any{"data": map[string]any{"k": "1"}}),
			obj("ConfigMap", map[string]any{"data": map[string]any{"k": "2"}}),
			[]string{"data"}, []string{"data"}},
		{"ConfigMap data updates with enableConfigMapMutable", cm, clusterConfig{configMapMutable: true},
			obj("ConfigMap", map[string]any{"data": map[string]any{"k": "1"}}),
			obj("ConfigMap", map[string]any{"data": map[string]any{"k": "2"}}),
			nil, []string{"data"}},
		{"immutable ConfigMap always replaces", cm, clusterConfig{configMapMutable: true},
			obj("ConfigMap", map[string]any{"immutable": true, "data": map[string]any{"k": "1"}}),
			obj("ConfigMap", map[string]any{"immutable": true, "data": map[string]any{"k": "2"}}),
			[]string{"data"}, []string{"data"}},
		{"rename replaces", cm, clusterConfig{},
			obj("ConfigMap", nil),
			obj("ConfigMap", map[string]any{"metadata": map[string]any{"name": "y", "namespace": "ns", "labels": map[string]any{"a": "1"}}}),
			[]string{"metadata.name"}, []string{"metadata"}},
		{"PVC size grows in place", pvc, clusterConfig{},
			obj("PersistentVolumeClaim", pvcSpec("1Gi", "zfs")), obj("PersistentVolumeClaim", pvcSpec("2Gi", "zfs")),
			nil, []string{"spec"}},
		{"PVC class change replaces", pvc, clusterConfig{},
			obj("PersistentVolumeClaim", pvcSpec("1Gi", "zfs")), obj("PersistentVolumeClaim", pvcSpec("1Gi", "other")),
			[]string{"spec"}, []string{"spec"}},
		{"StorageClass parameters replace", sc, clusterConfig{},
			map[string]any{"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "parameters": map[string]any{"p": "a"}},
			map[string]any{"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "parameters": map[string]any{"p": "b"}},
			[]string{"parameters"}, []string{"parameters"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := diffInputs(c.gvk, c.cfg, props(c.old), props(c.new))
			if !reflect.DeepEqual(d.replaces, c.replaces) {
				t.Errorf("replaces = %v, want %v", d.replaces, c.replaces)
			}
			if !reflect.DeepEqual(d.changed, c.changed) {
				t.Errorf("changed = %v, want %v", d.changed, c.changed)
			}
		})
	}
}

func TestDetailedDiffPaths(t *testing.T) {
	o := obj("ConfigMap", map[string]any{"data": map[string]any{"a.b": "1"}})
	n := obj("ConfigMap", map[string]any{"data": map[string]any{"a.b": "2", "c": "3"}})
	d := diffInputs(schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}, clusterConfig{}, props(o), props(n))
	want := map[string]pulumirpc.PropertyDiff_Kind{
		`data["a.b"]`: pulumirpc.PropertyDiff_UPDATE_REPLACE,
		`data.c`:      pulumirpc.PropertyDiff_ADD_REPLACE,
	}
	got := map[string]pulumirpc.PropertyDiff_Kind{}
	for k, v := range d.detailed {
		got[k] = v.Kind
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("detailed diff = %v, want %v", got, want)
	}
}

func TestUnknownForcesChange(t *testing.T) {
	o := props(obj("ConfigMap", nil))
	n := o.Copy()
	n["data"] = resource.MakeComputed(resource.NewProperty(""))
	d := diffInputs(schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}, clusterConfig{}, o, n)
	if len(d.changed) != 1 || d.changed[0] != "data" {
		t.Fatalf("unknown data not reported: %+v", d)
	}
}

func TestGVKFromToken(t *testing.T) {
	cases := map[string]schema.GroupVersionKind{
		"kubernetes:core/v1:ConfigMap":                                {Version: "v1", Kind: "ConfigMap"},
		"kubernetes:apps/v1:Deployment":                               {Group: "apps", Version: "v1", Kind: "Deployment"},
		"kubernetes:zfs.openebs.io/v1:ZFSVolume":                      {Group: "zfs.openebs.io", Version: "v1", Kind: "ZFSVolume"},
		"kubernetes:actions.github.com/v1alpha1:AutoscalingRunnerSet": {Group: "actions.github.com", Version: "v1alpha1", Kind: "AutoscalingRunnerSet"},
	}
	for tok, want := range cases {
		got, err := gvkFromToken(tok)
		if err != nil || got != want {
			t.Errorf("gvkFromToken(%q) = %v, %v; want %v", tok, got, err, want)
		}
	}
	for _, bad := range []string{"kubernetes:helm.sh/v4", "aws:s3/bucket:Bucket", "kubernetes:v1:ConfigMap"} {
		if _, err := gvkFromToken(bad); err == nil {
			t.Errorf("gvkFromToken(%q) accepted", bad)
		}
	}
}

func TestAutonameIsStable(t *testing.T) {
	news := props(map[string]any{"apiVersion": "v1", "kind": "ConfigMap"})
	autoname(news, nil, "cfg", []byte("seed"), nil)
	name := metadataString(news, "name")
	if len(name) != len("cfg-")+8 {
		t.Fatalf("autoname = %q", name)
	}
	again := props(map[string]any{"apiVersion": "v1", "kind": "ConfigMap"})
	autoname(again, news, "cfg", []byte("other seed"), nil)
	if got := metadataString(again, "name"); got != name {
		t.Fatalf("autoname on update = %q, want the old %q", got, name)
	}
	named := props(map[string]any{"metadata": map[string]any{"name": "fixed"}})
	autoname(named, nil, "cfg", nil, nil)
	if got := metadataString(named, "name"); got != "fixed" {
		t.Fatalf("a given name was replaced by %q", got)
	}
}

func TestParseManifestSkipsEmptyAndFlattensLists(t *testing.T) {
	m := "---\n# comment only\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n" +
		"apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Secret, metadata: {name: b}}\n"
	objs, err := parseManifest(m)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 2 || objs[0].GetName() != "a" || objs[1].GetKind() != "Secret" {
		t.Fatalf("parsed %d objects: %v", len(objs), objs)
	}
}

func TestPlainValueKeepsIntegers(t *testing.T) {
	v, err := toPlain(props(map[string]any{"spec": map[string]any{"replicas": 3, "ratio": 0.5}}))
	if err != nil {
		t.Fatal(err)
	}
	spec := v["spec"].(map[string]any)
	if _, ok := spec["replicas"].(int64); !ok {
		t.Errorf("replicas is %T, want int64", spec["replicas"])
	}
	if _, ok := spec["ratio"].(float64); !ok {
		t.Errorf("ratio is %T, want float64", spec["ratio"])
	}
}
