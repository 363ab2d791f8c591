package main

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/structpb"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Diff compares the old inputs with the new ones (not the live object): a
// second `pulumi up` of an unchanged program is then a no-op whatever the
// API server defaulted. Replacement follows the upstream provider's table of
// fields that Kubernetes does not let an update change.

// forceNewRule: a change of the value at path (ignoring the sub-paths in
// except) makes the provider replace the object.
type forceNewRule struct {
	path   []string
	except [][]string
}

func rule(path string, except ...string) forceNewRule {
	r := forceNewRule{path: strings.Split(path, ".")}
	for _, e := range except {
		r.except = append(r.except, strings.Split(e, "."))
	}
	return r
}

// forceNewRules lists, per kind, what cannot be updated in place. Based on
// the upstream provider's forceNew table (provider/pkg/provider/diff.go),
// with the StorageClass and PersistentVolume fields that the API server
// rejects updates of.
func forceNewRules(gvk schema.GroupVersionKind, cfg clusterConfig, oldImmutable bool) []forceNewRule {
	rules := []forceNewRule{rule("metadata.name"), rule("metadata.namespace"), rule("kind")}
	switch gvkString(gvk) {
	case "v1/ConfigMap":
		// Upstream replaces ConfigMaps on any data change unless the
		// provider sets enableConfigMapMutable; an `immutable` one always.
		if !cfg.configMapMutable || oldImmutable {
			rules = append(rules, rule("data"), rule("binaryData"))
		}
		if oldImmutable {
			rules = append(rules, rule("immutable"))
		}
	case "v1/Secret":
		rules = append(rules, rule("type"))
		if !cfg.secretMutable || oldImmutable {
			rules = append(rules, rule("data"), rule("stringData"))
		}
		if oldImmutable {
			rules = append(rules, rule("immutable"))
		}
	case "v1/PersistentVolumeClaim":
		// Only the requested size may change (volume expansion).
		rules = append(rules, rule("spec", "spec.resources.requests"))
	case "v1/PersistentVolume":
		// The volume source, node affinity, access and volume modes are
		// immutable; capacity, reclaim policy, mount options, class and
		// claimRef may change.
		rules = append(rules, rule("spec",
			"spec.capacity", "spec.persistentVolumeReclaimPolicy", "spec.mountOptions",
			"spec.storageClassName", "spec.claimRef"))
	case "v1/Service":
		rules = append(rules, rule("spec.clusterIP"))
	case "storage.k8s.io/v1/StorageClass":
		rules = append(rules, rule("provisioner"), rule("parameters"), rule("reclaimPolicy"),
			rule("volumeBindingMode"), rule("allowedTopologies"))
	case "rbac.authorization.k8s.io/v1/RoleBinding", "rbac.authorization.k8s.io/v1/ClusterRoleBinding":
		rules = append(rules, rule("roleRef"))
	case "apps/v1/Deployment", "apps/v1/ReplicaSet", "apps/v1/DaemonSet":
		rules = append(rules, rule("spec.selector"))
	case "apps/v1/StatefulSet":
		rules = append(rules, rule("spec.selector"), rule("spec.serviceName"),
			rule("spec.volumeClaimTemplates"), rule("spec.podManagementPolicy"))
	case "batch/v1/Job":
		rules = append(rules, rule("spec.selector"), rule("spec.template"))
	case "snapshot.storage.k8s.io/v1/VolumeSnapshotClass":
		rules = append(rules, rule("driver"), rule("parameters"))
	}
	return rules
}

// diffResult is the outcome of comparing old and new inputs.
type diffResult struct {
	changed  []string // top-level keys
	replaces []string // property paths that force a replacement
	detailed map[string]*pulumirpc.PropertyDiff
}

// diffInputs compares inputs (secrets compare by value).
func diffInputs(gvk schema.GroupVersionKind, cfg clusterConfig, olds, news resource.PropertyMap) diffResult {
	o := unsecret(resource.NewProperty(olds)).ObjectValue()
	n := unsecret(resource.NewProperty(news)).ObjectValue()
	res := diffResult{detailed: map[string]*pulumirpc.PropertyDiff{}}

	oldImmutable := false
	if v, ok := o["immutable"]; ok && v.IsBool() {
		oldImmutable = v.BoolValue()
	}
	for _, r := range forceNewRules(gvk, cfg, oldImmutable) {
		ov := stripPaths(getPath(o, r.path), r.path, r.except)
		nv := stripPaths(getPath(n, r.path), r.path, r.except)
		if !valuesEqual(ov, nv) {
			res.replaces = append(res.replaces, strings.Join(r.path, "."))
		}
	}
	// apiVersion: a new version of the same group is the same object; a
	// new group is another kind of object.
	if og, ng := groupOf(o), groupOf(n); og != ng {
		res.replaces = append(res.replaces, "apiVersion")
	}

	for _, k := range unionKeys(o, n) {
		ov, nv := o[resource.PropertyKey(k)], n[resource.PropertyKey(k)]
		if valuesEqual(ov, nv) {
			continue
		}
		res.changed = append(res.changed, k)
		diffValues(formatKey("", k), []string{k}, ov, nv, res.replaces, res.detailed)
	}
	return res
}

func groupOf(m resource.PropertyMap) string {
	v := m["apiVersion"]
	if !v.IsString() {
		return ""
	}
	gv, err := schema.ParseGroupVersion(v.StringValue())
	if err != nil {
		return v.StringValue()
	}
	return gv.Group
}

// valuesEqual compares two (unsecreted) values; an unknown never equals
// anything, null equals absent.
func valuesEqual(a, b resource.PropertyValue) bool {
	if a.ContainsUnknowns() || b.ContainsUnknowns() {
		return false
	}
	if a.IsNull() || b.IsNull() {
		return a.IsNull() && b.IsNull()
	}
	return a.DeepEquals(b)
}

func getPath(m resource.PropertyMap, path []string) resource.PropertyValue {
	cur := resource.NewProperty(m)
	for _, p := range path {
		if cur.IsComputed() || cur.IsOutput() {
			return cur
		}
		if !cur.IsObject() {
			return resource.NewNullProperty()
		}
		cur = cur.ObjectValue()[resource.PropertyKey(p)]
	}
	return cur
}

// stripPaths returns v (found at base) without the values at the except
// paths, which must be below base.
func stripPaths(v resource.PropertyValue, base []string, except [][]string) resource.PropertyValue {
	for _, e := range except {
		if len(e) <= len(base) {
			continue
		}
		v = deletePath(v, e[len(base):])
	}
	return v
}

func deletePath(v resource.PropertyValue, rel []string) resource.PropertyValue {
	if !v.IsObject() || len(rel) == 0 {
		return v
	}
	obj := v.ObjectValue()
	out := make(resource.PropertyMap, len(obj))
	for k, e := range obj {
		out[k] = e
	}
	key := resource.PropertyKey(rel[0])
	if len(rel) == 1 {
		delete(out, key)
	} else if e, ok := out[key]; ok {
		out[key] = deletePath(e, rel[1:])
	}
	return resource.NewProperty(out)
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// formatKey appends a key in the engine's property path syntax.
func formatKey(prefix, key string) string {
	if identRE.MatchString(key) {
		if prefix == "" {
			return key
		}
		return prefix + "." + key
	}
	return fmt.Sprintf("%s[%q]", prefix, key)
}

// underReplace reports whether the property at segs is (inside) one whose
// change forces a replacement.
func underReplace(segs []string, replaces []string) bool {
	joined := strings.Join(segs, ".")
	for _, r := range replaces {
		if joined == r || strings.HasPrefix(joined, r+".") || strings.HasPrefix(r, joined+".") {
			return true
		}
	}
	return false
}

// diffValues records the detailed diff of one property.
func diffValues(path string, segs []string, o, n resource.PropertyValue, replaces []string,
	out map[string]*pulumirpc.PropertyDiff,
) {
	replace := underReplace(segs, replaces)
	kind := func(add, del, upd pulumirpc.PropertyDiff_Kind, addR, delR, updR pulumirpc.PropertyDiff_Kind) pulumirpc.PropertyDiff_Kind {
		switch {
		case o.IsNull() && replace:
			return addR
		case o.IsNull():
			return add
		case n.IsNull() && replace:
			return delR
		case n.IsNull():
			return del
		case replace:
			return updR
		default:
			return upd
		}
	}
	if o.IsObject() && n.IsObject() {
		om, nm := o.ObjectValue(), n.ObjectValue()
		for _, k := range unionKeys(om, nm) {
			ov, nv := om[resource.PropertyKey(k)], nm[resource.PropertyKey(k)]
			if !valuesEqual(ov, nv) {
				diffValues(formatKey(path, k), append(append([]string{}, segs...), k), ov, nv, replaces, out)
			}
		}
		return
	}
	if o.IsArray() && n.IsArray() && len(o.ArrayValue()) == len(n.ArrayValue()) {
		for i := range o.ArrayValue() {
			ov, nv := o.ArrayValue()[i], n.ArrayValue()[i]
			if !valuesEqual(ov, nv) {
				diffValues(fmt.Sprintf("%s[%d]", path, i), segs, ov, nv, replaces, out)
			}
		}
		return
	}
	out[path] = &pulumirpc.PropertyDiff{
		Kind: kind(pulumirpc.PropertyDiff_ADD, pulumirpc.PropertyDiff_DELETE, pulumirpc.PropertyDiff_UPDATE,
			pulumirpc.PropertyDiff_ADD_REPLACE, pulumirpc.PropertyDiff_DELETE_REPLACE, pulumirpc.PropertyDiff_UPDATE_REPLACE),
		InputDiff: true,
	}
}

// oldInputsOf picks the old inputs: the engine sends them (old_inputs) since
// v3.7x; older state is compared through the outputs' "__inputs" if present.
func oldInputsOf(oldInputs, olds *structpb.Struct) *structpb.Struct {
	if oldInputs != nil && len(oldInputs.GetFields()) > 0 {
		return oldInputs
	}
	if olds != nil {
		if v, ok := olds.GetFields()["__inputs"]; ok && v.GetStructValue() != nil {
			return v.GetStructValue()
		}
	}
	return olds
}
