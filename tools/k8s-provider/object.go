package main

import (
	"fmt"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Identity of Kubernetes objects as Pulumi sees them.

const (
	annotationSkipAwait      = "pulumi.com/skipAwait"
	annotationTimeoutSeconds = "pulumi.com/timeoutSeconds"
	annotationAutonamed      = "pulumi.com/autonamed"
	// fieldManager is the server-side apply field manager of every object
	// this provider writes. Fixed (not random) so that a re-run after a
	// crash applies as the same manager.
	fieldManager = "pulumi-kubernetes"
)

// gvkFromToken maps a resource type token to its GroupVersionKind:
// kubernetes:core/v1:ConfigMap → v1 ConfigMap (core is the "" group),
// kubernetes:zfs.openebs.io/v1:ZFSVolume → zfs.openebs.io/v1 ZFSVolume.
func gvkFromToken(token string) (schema.GroupVersionKind, error) {
	parts := strings.Split(token, ":")
	if len(parts) != 3 || parts[0] != "kubernetes" {
		return schema.GroupVersionKind{}, fmt.Errorf("%q is not a kubernetes:<group>/<version>:<Kind> type token", token)
	}
	gv := parts[1]
	group, ver, ok := strings.Cut(gv, "/")
	if !ok || ver == "" || parts[2] == "" {
		return schema.GroupVersionKind{}, fmt.Errorf("%q is not a kubernetes:<group>/<version>:<Kind> type token", token)
	}
	if group == "core" {
		group = ""
	}
	return schema.GroupVersionKind{Group: group, Version: ver, Kind: parts[2]}, nil
}

// gvkFromObject reads apiVersion and kind of a plain object.
func gvkFromObject(obj map[string]any) (schema.GroupVersionKind, error) {
	apiVersion := nestedString(obj, "apiVersion")
	kind := nestedString(obj, "kind")
	if apiVersion == "" || kind == "" {
		return schema.GroupVersionKind{}, fmt.Errorf("the object has no apiVersion or kind")
	}
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return schema.GroupVersionKind{}, fmt.Errorf("apiVersion %q: %w", apiVersion, err)
	}
	return gv.WithKind(kind), nil
}

// gvkFromProps reads apiVersion/kind of a property map (inputs or outputs).
func gvkFromProps(m resource.PropertyMap) (schema.GroupVersionKind, bool) {
	apiVersion := propString(m, "apiVersion")
	kind := propString(m, "kind")
	if apiVersion == "" || kind == "" {
		return schema.GroupVersionKind{}, false
	}
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return schema.GroupVersionKind{}, false
	}
	return gv.WithKind(kind), true
}

// metadataString reads metadata.<key> of a property map ("" when absent or unknown).
func metadataString(m resource.PropertyMap, key string) string {
	md := unsecret(m["metadata"])
	if !md.IsObject() {
		return ""
	}
	return propString(md.ObjectValue(), key)
}

// objectID is the Pulumi ID of an object: "<namespace>/<name>", or "<name>"
// for cluster-scoped objects (the upstream provider's format).
func objectID(namespace, name string) string {
	if namespace == "" {
		return name
	}
	return namespace + "/" + name
}

// parseID splits an ID made by objectID.
func parseID(id string) (namespace, name string) {
	if ns, n, ok := strings.Cut(id, "/"); ok {
		return ns, n
	}
	return "", id
}

// describe names an object in messages: "ConfigMap arc-runners/hooks".
func describe(kind, namespace, name string) string {
	return kind + " " + objectID(namespace, name)
}

// gvkString is "apps/v1/Deployment" or "v1/ConfigMap".
func gvkString(gvk schema.GroupVersionKind) string {
	return gvk.GroupVersion().String() + "/" + gvk.Kind
}
