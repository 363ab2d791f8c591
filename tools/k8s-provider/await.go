package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// Readiness waits, following the upstream provider's awaiters
// (provider/pkg/await/awaiters.go): Namespace (Active), PersistentVolume
// (Available or Bound), PersistentVolumeClaim (Bound, or Pending when its
// StorageClass binds WaitForFirstConsumer), Deployment (rolled out and
// available). Every other kind is ready once the API server accepted it.
// The annotation pulumi.com/skipAwait: "true" skips all of them.

const (
	defaultAwaitTimeout  = 10 * time.Minute
	defaultVolumeTimeout = 5 * time.Minute
	defaultDeleteTimeout = 10 * time.Minute
)

// readiness is a predicate on the live object; status explains a false.
type readiness func(ctx context.Context, live *unstructured.Unstructured) (ready bool, status string, err error)

// awaitTimeout picks the timeout: the pulumi.com/timeoutSeconds annotation,
// else customTimeouts (seconds from the engine), else the kind's default.
func awaitTimeout(obj *unstructured.Unstructured, engineSeconds float64, def time.Duration) time.Duration {
	if s, ok := obj.GetAnnotations()[annotationTimeoutSeconds]; ok {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			return time.Duration(n) * time.Second
		}
	}
	if engineSeconds > 0 {
		return time.Duration(engineSeconds * float64(time.Second))
	}
	return def
}

func skipAwait(obj *unstructured.Unstructured) bool {
	v, ok := obj.GetAnnotations()[annotationSkipAwait]
	if !ok {
		return false
	}
	b, err := strconv.ParseBool(v)
	return err == nil && b
}

// readinessFor returns the predicate and default timeout of a kind, or nil.
func (p *kubeProvider) readinessFor(kube *kubeClients, gvk schema.GroupVersionKind) (readiness, time.Duration) {
	switch gvkString(gvk) {
	case "v1/Namespace":
		return func(_ context.Context, live *unstructured.Unstructured) (bool, string, error) {
			phase, _, _ := unstructured.NestedString(live.Object, "status", "phase")
			return phase == "Active", "phase " + orNone(phase), nil
		}, defaultVolumeTimeout
	case "v1/PersistentVolume":
		return func(_ context.Context, live *unstructured.Unstructured) (bool, string, error) {
			phase, _, _ := unstructured.NestedString(live.Object, "status", "phase")
			return phase == "Available" || phase == "Bound", "phase " + orNone(phase), nil
		}, defaultVolumeTimeout
	case "v1/PersistentVolumeClaim":
		bindMode := ""
		return func(ctx context.Context, live *unstructured.Unstructured) (bool, string, error) {
			if bindMode == "" {
				bindMode = pvcBindMode(ctx, kube, live)
			}
			phase, _, _ := unstructured.NestedString(live.Object, "status", "phase")
			if bindMode == "WaitForFirstConsumer" {
				return phase == "Pending" || phase == "Bound", "phase " + orNone(phase), nil
			}
			return phase == "Bound", "phase " + orNone(phase) + " (waiting for Bound)", nil
		}, defaultVolumeTimeout
	case "apps/v1/Deployment":
		return deploymentReady, defaultAwaitTimeout
	}
	return nil, 0
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

// pvcBindMode reads the volumeBindingMode of a claim's StorageClass ("" if
// it cannot be told: then the claim must be Bound, as upstream).
func pvcBindMode(ctx context.Context, kube *kubeClients, pvc *unstructured.Unstructured) string {
	name, _, _ := unstructured.NestedString(pvc.Object, "spec", "storageClassName")
	if name == "" {
		return ""
	}
	sc, err := kube.dynamic.Resource(schema.GroupVersionResource{Group: "storage.k8s.io", Version: "v1", Resource: "storageclasses"}).
		Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return ""
	}
	mode, _, _ := unstructured.NestedString(sc.Object, "volumeBindingMode")
	return mode
}

// deploymentReady: the controller has seen the latest spec, every replica
// runs the latest template and is available (upstream waits for the same,
// plus the ReplicaSet's pods).
func deploymentReady(_ context.Context, live *unstructured.Unstructured) (bool, string, error) {
	gen := live.GetGeneration()
	observed, _, _ := unstructured.NestedInt64(live.Object, "status", "observedGeneration")
	replicas, found, _ := unstructured.NestedInt64(live.Object, "spec", "replicas")
	if !found {
		replicas = 1
	}
	updated, _, _ := unstructured.NestedInt64(live.Object, "status", "updatedReplicas")
	available, _, _ := unstructured.NestedInt64(live.Object, "status", "availableReplicas")
	status := fmt.Sprintf("observedGeneration %d/%d, %d/%d replicas updated, %d available",
		observed, gen, updated, replicas, available)
	if conds, ok, _ := unstructured.NestedSlice(live.Object, "status", "conditions"); ok {
		for _, c := range conds {
			cm, _ := c.(map[string]any)
			if cm["type"] == "Progressing" && cm["status"] == "False" {
				return false, status, fmt.Errorf("rollout failed: %v", cm["message"])
			}
		}
	}
	return observed >= gen && updated == replicas && available == replicas, status, nil
}

// await polls the object until ready says so or the timeout passes. It
// returns the last live object seen (for the outputs, even on timeout).
func (p *kubeProvider) await(ctx context.Context, rc dynamic.ResourceInterface, live *unstructured.Unstructured,
	ready readiness, timeout time.Duration, what string,
) (*unstructured.Unstructured, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	delay := 250 * time.Millisecond
	last := live
	for {
		ok, status, err := ready(ctx, last)
		if err != nil {
			return last, fmt.Errorf("%s: %w", what, err)
		}
		if ok {
			return last, nil
		}
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("%s: not ready after %s: %s", what, timeout, status)
		case <-p.cancelCtx.Done():
			return last, fmt.Errorf("%s: cancelled while waiting: %s", what, status)
		case <-time.After(delay):
		}
		if delay < 2*time.Second {
			delay *= 2
		}
		cur, err := rc.Get(ctx, last.GetName(), metav1.GetOptions{})
		if err != nil {
			if ctx.Err() != nil {
				continue // reported by the select above
			}
			return last, fmt.Errorf("%s: %w", what, apiMessage(err))
		}
		last = cur
	}
}

// awaitDeleted polls until the object (this incarnation, by UID) is gone.
func (p *kubeProvider) awaitDeleted(ctx context.Context, rc dynamic.ResourceInterface, name string, uid string,
	timeout time.Duration, what string,
) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	delay := 250 * time.Millisecond
	for {
		cur, err := rc.Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return nil
		case err == nil && uid != "" && string(cur.GetUID()) != uid:
			return nil // deleted, and something else made a new one
		case err != nil && ctx.Err() == nil:
			return fmt.Errorf("%s: %w", what, apiMessage(err))
		}
		state := "still exists"
		if err == nil {
			if ts := cur.GetDeletionTimestamp(); ts != nil {
				state = fmt.Sprintf("still terminating (finalizers %v)", cur.GetFinalizers())
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: not deleted after %s: %s", what, timeout, state)
		case <-p.cancelCtx.Done():
			return fmt.Errorf("%s: cancelled while waiting for deletion: %s", what, state)
		case <-time.After(delay):
		}
		if delay < 2*time.Second {
			delay *= 2
		}
	}
}

// apiMessage keeps the API server's own message (it names the field and the
// reason) and drops client-go's wrapping.
func apiMessage(err error) error {
	if status, ok := err.(apierrors.APIStatus); ok {
		s := status.Status()
		if s.Message != "" {
			return fmt.Errorf("%s (%s, HTTP %d)", s.Message, s.Reason, s.Code)
		}
	}
	if meta.IsNoMatchError(err) {
		return fmt.Errorf("%w: is its CustomResourceDefinition installed?", err)
	}
	return err
}
