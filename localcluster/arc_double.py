"""ARC controller TEST DOUBLE: listener and runner pods as the ARC controller builds them.

The real controller (``ghcr.io/actions/gha-runner-scale-set-controller``) cannot be had here
(no registry, and it talks to GitHub). This double does, against the real API server, the part
of its work that decides which pods exist and what they look like, following
``actions/actions-runner-controller`` at tag ``gha-runner-scale-set-0.14.2``:

* ``controllers/actions.github.com/resourcebuilder.go``: ``newAutoScalingListener``,
  ``newScaleSetListenerServiceAccount``/``Role``/``RoleBinding``,
  ``newScaleSetListenerConfig``,
  ``newScaleSetListenerPod`` merged with ``spec.listenerTemplate`` exactly as
  ``mergeListenerPodWithTemplate``/``mergeListenerContainer`` do, ``newEphemeralRunnerSet``,
  ``newEphemeralRunner``, ``newEphemeralRunnerJitSecret``, ``newEphemeralRunnerPod``,
  ``scaleSetListenerName``/``hashSuffix`` (FNV-32a + ``rand.SafeEncodeString``), the label and
  annotation keys of ``constants.go``;
* ``autoscalingrunnerset_controller.go`` (its finalizer on the AutoscalingRunnerSet, scale set
  id annotation, one EphemeralRunnerSet, one AutoscalingListener in the CONTROLLER's
  namespace; on deletion ``cleanUpResources``: listener, then EphemeralRunnerSets, then the
  scale set id, then ``removeFinalizersFromDependentResources`` takes the
  ``actions.github.com/cleanup-protection`` finalizer off the objects the chart names in the
  ``actions.github.com/cleanup-*`` annotations, in upstream's order, and last its own
  finalizer), ``autoscalinglistener_controller.go``
  (service account, role, binding, config secret, then the pod),
  ``ephemeralrunnerset_controller.go`` (``spec.replicas`` EphemeralRunners) and
  ``ephemeralrunner_controller.go`` (JIT secret, pod, ``status.phase`` from the pod, finalizers
  removed on deletion).

The controller's namespace and image are those of the controller chart's Deployment (label
``app.kubernetes.io/name=gha-rs-controller`` on its pod template, container ``manager``), as
upstream reads them from its own pod (``CONTROLLER_MANAGER_POD_NAMESPACE``,
``CONTROLLER_MANAGER_CONTAINER_IMAGE``).
The controller chart's pod itself runs a stand-in image (:mod:`localcluster.images`).

A test asks for a runner the way the listener does: by patching the EphemeralRunnerSet's
``spec.replicas`` (:func:`request_runners`). Pods are created by the API server like any
others, so a pod that Pod Security rejects is rejected here too (the double records the
API server's message as a ``FailedCreatePod`` Event on the AutoscalingListener or
EphemeralRunner and retries, as upstream logs and requeues), and a pod the scheduler cannot
place stays Pending.

Where it differs from upstream (nothing here changes a pod's spec):

* no GitHub: the scale set id is a stable number derived from the name, the JIT config a
  placeholder, and no runner registers or takes a job;
* the listener has no finalizer of its own: the double deletes the listener's Role and
  RoleBinding (in the scale set's namespace) with it, and the garbage collector its pod,
  service account and config secret (upstream's listener controller deletes each and waits);
* an AutoscalingRunnerSet deleted while no double ran (so without the double's finalizer)
  leaves the chart's cleanup-protected objects Terminating until removed by hand, as on a
  real cluster without the controller;
* ``actions.github.com/runner-spec-hash``, ``pod-template-hash`` and
  ``role-policy-rules-hash`` values are SHA-256 based, not upstream's hash of the Go structs;
* level-triggered polling (every ``interval`` seconds) instead of watches; one pass handles
  everything, so a restarted double converges from the API alone.

Run it in a thread (``ArcControllerDouble(kubeconfig).start()``/``stop()``) or as a process:
``python -m localcluster.arc_double --kubeconfig FILE``.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import logging
import signal
import sys
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlparse

import httpx2
from lightkube import ApiError, Client
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Event, Pod, Secret, ServiceAccount
from lightkube.resources.rbac_authorization_v1 import Role, RoleBinding
from lightkube.types import PatchType

from components.constants import (
    CLEANUP_PROTECTION_FINALIZER,
    ENV_INPUT_JITCONFIG,
    ENV_RETURN_VERSION_DEPRECATED_EXIT_CODE,
    LABEL_PART_OF,
)
from localcluster.kube import make_client

__all__ = [
    "CLEANUP_ANNOTATIONS",
    "SCALE_SET_FINALIZER",
    "ArcControllerDouble",
    "cleanup_protected",
    "listener_name",
    "merge_listener_pod_with_template",
    "new_ephemeral_runner_pod",
    "new_scale_set_listener_pod",
    "request_runners",
    "scale_sets",
]

log = logging.getLogger("localcluster.arc_double")

GROUP: Final = "actions.github.com"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
#: build.Version of the controller the double stands in for.
CONTROLLER_VERSION: Final = "0.14.2"
LISTENER_CONTAINER: Final = "listener"
RUNNER_CONTAINER: Final = "runner"
LISTENER_ENTRYPOINT: Final = "/ghalistener"
CONTROLLER_LABEL: Final = ("app.kubernetes.io/name", "gha-rs-controller")

LABEL_COMPONENT: Final = "app.kubernetes.io/component"
LABEL_VERSION: Final = "app.kubernetes.io/version"
LABEL_OS: Final = "kubernetes.io/os"
LABEL_SCALE_SET_NAME: Final = "actions.github.com/scale-set-name"
LABEL_SCALE_SET_NAMESPACE: Final = "actions.github.com/scale-set-namespace"
LABEL_ENTERPRISE: Final = "actions.github.com/enterprise"
LABEL_ORGANIZATION: Final = "actions.github.com/organization"
LABEL_REPOSITORY: Final = "actions.github.com/repository"
LABEL_POD_TEMPLATE_HASH: Final = "pod-template-hash"
PART_OF_VALUE: Final = "gha-runner-scale-set"
ANNOTATION_SCALE_SET_ID: Final = "runner-scale-set-id"
ANNOTATION_RUNNER_SPEC_HASH: Final = "actions.github.com/runner-spec-hash"
ANNOTATION_VALUES_HASH: Final = "actions.github.com/values-hash"
ANNOTATION_RUNNER_GROUP: Final = "actions.github.com/runner-group-name"
ANNOTATION_SCALE_SET_NAME: Final = "actions.github.com/runner-scale-set-name"
ANNOTATION_PATCH_ID: Final = "actions.github.com/patch-id"
#: autoscalingrunnerset_controller.go ``autoscalingRunnerSetFinalizerName``.
SCALE_SET_FINALIZER: Final = "autoscalingrunnerset.actions.github.com/finalizer"
#: ``removeFinalizersFromDependentResources``, in its order: the annotation naming each object
#: (constants.go ``AnnotationKey*``) and its kind, all in the AutoscalingRunnerSet's namespace.
CLEANUP_ANNOTATIONS: Final = (
    ("actions.github.com/cleanup-kubernetes-mode-role-binding-name", "RoleBinding"),
    ("actions.github.com/cleanup-kubernetes-mode-role-name", "Role"),
    ("actions.github.com/cleanup-kubernetes-mode-service-account-name", "ServiceAccount"),
    ("actions.github.com/cleanup-no-permission-service-account-name", "ServiceAccount"),
    ("actions.github.com/cleanup-github-secret-name", "Secret"),
    ("actions.github.com/cleanup-manager-role-binding", "RoleBinding"),
    ("actions.github.com/cleanup-manager-role-name", "Role"),
)
RUNNER_FINALIZERS: Final = (
    "ephemeralrunner.actions.github.com/finalizer",
    "ephemeralrunner.actions.github.com/runner-registration-finalizer",
)

AutoscalingRunnerSet = create_namespaced_resource(
    GROUP, VERSION, "AutoscalingRunnerSet", "autoscalingrunnersets"
)
AutoscalingListener = create_namespaced_resource(
    GROUP, VERSION, "AutoscalingListener", "autoscalinglisteners"
)
EphemeralRunnerSet = create_namespaced_resource(
    GROUP, VERSION, "EphemeralRunnerSet", "ephemeralrunnersets"
)
EphemeralRunner = create_namespaced_resource(GROUP, VERSION, "EphemeralRunner", "ephemeralrunners")

JsonDict = dict[str, Any]

#: The kinds :data:`CLEANUP_ANNOTATIONS` name.
_CLEANUP_KINDS: Final[Mapping[str, Any]] = {
    "RoleBinding": RoleBinding,
    "Role": Role,
    "ServiceAccount": ServiceAccount,
    "Secret": Secret,
}

# --- pure builders (resourcebuilder.go) --------------------------------------------------------

_ALPHANUMS: Final = "bcdfghjklmnpqrstvwxz2456789"


def _safe_encode(text: str) -> str:
    """``k8s.io/apimachinery/pkg/util/rand.SafeEncodeString``."""
    return "".join(_ALPHANUMS[ord(ch) % len(_ALPHANUMS)] for ch in text)


def _fnv_hash_string(text: str) -> str:
    """``hash.FNVHashString``: FNV-32a, printed in decimal, safe-encoded."""
    value = 0x811C9DC5
    for byte in text.encode():
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return _safe_encode(str(value))


def _sha(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def listener_name(ars: Mapping[str, Any]) -> str:
    """``scaleSetListenerName``: ``<ars>-<hashSuffix(namespace, runnerGroup, url)>-listener``."""
    m, spec = ars["metadata"], ars.get("spec") or {}
    suffix = _fnv_hash_string(
        f"{m['namespace']}@{spec.get('runnerGroup') or ''}@{spec.get('githubConfigUrl') or ''}"
    )[:8]
    return f"{m['name']}-{suffix}-listener"


def _trim_label_value(value: str) -> str:
    if len(value) > 63:
        return value[: 63 - len("-trim")] + "-trim"
    return value.strip("-_.")


def _github_url_labels(url: str, labels: dict[str, str]) -> None:
    """``applyGitHubURLLabels`` (``actions.ParseGitHubConfigFromURL``)."""
    path = [p for p in urlparse(url).path.split("/") if p]
    if len(path) >= 2 and path[0] == "enterprises":
        labels[LABEL_ENTERPRISE] = _trim_label_value(path[1])
        return
    if path:
        labels[LABEL_ORGANIZATION] = _trim_label_value(path[0])
    if len(path) >= 2:
        labels[LABEL_REPOSITORY] = _trim_label_value(path[1])


def _owner(obj: Mapping[str, Any], kind: str, api_version: str = API_VERSION) -> JsonDict:
    m = obj["metadata"]
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": m["name"],
        "uid": m["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def new_autoscaling_listener(
    ars: Mapping[str, Any], ers: Mapping[str, Any], namespace: str, image: str
) -> JsonDict:
    """``newAutoScalingListener``: the listener object in the controller's namespace."""
    m, spec = ars["metadata"], ars.get("spec") or {}
    ars_labels = dict(m.get("labels") or {})
    labels = {
        **ars_labels,
        LABEL_SCALE_SET_NAMESPACE: m["namespace"],
        LABEL_SCALE_SET_NAME: m["name"],
        LABEL_PART_OF: PART_OF_VALUE,
        LABEL_COMPONENT: "runner-scale-set-listener",
        LABEL_VERSION: ars_labels.get(LABEL_VERSION, ""),
    }
    _github_url_labels(spec.get("githubConfigUrl") or "", labels)
    annotations = {
        ANNOTATION_RUNNER_SPEC_HASH: _sha({k: v for k, v in spec.items() if k != "template"}),
        ANNOTATION_VALUES_HASH: (m.get("annotations") or {}).get(ANNOTATION_VALUES_HASH, ""),
    }
    metadata = spec.get("autoscalingListenerMetadata") or {}
    labels = {**(metadata.get("labels") or {}), **labels}
    annotations = {**(metadata.get("annotations") or {}), **annotations}
    listener_spec: JsonDict = {
        "githubConfigUrl": spec.get("githubConfigUrl"),
        "githubConfigSecret": spec.get("githubConfigSecret"),
        "runnerScaleSetId": int((m.get("annotations") or {})[ANNOTATION_SCALE_SET_ID]),
        "autoscalingRunnerSetNamespace": m["namespace"],
        "autoscalingRunnerSetName": m["name"],
        "ephemeralRunnerSetName": ers["metadata"]["name"],
        "minRunners": spec.get("minRunners") or 0,
        "maxRunners": spec.get("maxRunners") if spec.get("maxRunners") is not None else 2**31 - 1,
        "image": image,
    }
    for key in ("proxy", "githubServerTLS", "listenerMetrics"):
        if spec.get(key) is not None:
            listener_spec["metrics" if key == "listenerMetrics" else key] = spec[key]
    if spec.get("listenerTemplate") is not None:
        listener_spec["template"] = copy.deepcopy(spec["listenerTemplate"])
    return {
        "apiVersion": API_VERSION,
        "kind": "AutoscalingListener",
        "metadata": {
            "name": listener_name(ars),
            "namespace": namespace,
            "labels": labels,
            "annotations": annotations,
        },
        "spec": listener_spec,
    }


def merge_listener_container(base: JsonDict, template: Mapping[str, Any]) -> None:
    """``mergeListenerContainer`` (in place): what the template's ``listener`` entry changes."""
    if template.get("image"):
        base["image"] = template["image"]
    if template.get("command"):
        base["command"] = list(template["command"])
    for key in ("env", "args", "ports", "envFrom", "volumeMounts", "volumeDevices"):
        merged = list(base.get(key) or []) + copy.deepcopy(list(template.get(key) or []))
        if merged:
            base[key] = merged
        else:
            base.pop(key, None)
    for key in (
        "imagePullPolicy", "workingDir", "resources", "livenessProbe", "readinessProbe",
        "startupProbe", "lifecycle", "terminationMessagePath", "terminationMessagePolicy",
        "securityContext", "resizePolicy", "restartPolicy", "stdin", "stdinOnce", "tty",
    ):  # fmt: skip
        if template.get(key) is None:
            base.pop(key, None)  # the Go code assigns the (zero) value unconditionally
        else:
            base[key] = copy.deepcopy(template[key])


#: Pod spec fields ``mergeListenerPodWithTemplate`` assigns from the template unconditionally.
_LISTENER_REPLACED: Final = (
    "initContainers", "ephemeralContainers", "terminationGracePeriodSeconds",
    "activeDeadlineSeconds", "dnsPolicy", "nodeName", "hostNetwork", "hostPID", "hostIPC",
    "shareProcessNamespace", "securityContext", "hostname", "subdomain", "affinity",
    "schedulerName", "tolerations", "hostAliases", "priorityClassName", "priority", "dnsConfig",
    "readinessGates", "runtimeClassName", "enableServiceLinks", "preemptionPolicy", "overhead",
    "topologySpreadConstraints", "setHostnameAsFQDN", "os", "hostUsers", "schedulingGates",
    "resourceClaims",
)  # fmt: skip


def merge_listener_pod_with_template(pod: JsonDict, template: Mapping[str, Any]) -> None:
    """``mergeListenerPodWithTemplate`` (in place).

    Template labels/annotations only fill keys the pod lacks; the ``listener`` container is
    merged, other containers appended; restartPolicy, imagePullSecrets, nodeSelector replace
    the pod's when set; volumes are appended; every field of :data:`_LISTENER_REPLACED` is
    taken from the template even when the template leaves it unset (so a template without
    ``terminationGracePeriodSeconds`` drops the base's 60).
    """
    meta = pod["metadata"]
    tmeta = template.get("metadata") or {}
    annotations = meta.setdefault("annotations", {})
    for key, value in (tmeta.get("annotations") or {}).items():
        annotations.setdefault(key, value)
    labels = meta.setdefault("labels", {})
    for key, value in (tmeta.get("labels") or {}).items():
        labels.setdefault(key, value)
    spec, tspec = pod["spec"], template.get("spec") or {}
    for container in tspec.get("containers") or []:
        if container.get("name") == LISTENER_CONTAINER:
            merge_listener_container(spec["containers"][0], container)
        else:
            spec["containers"].append(copy.deepcopy(container))
    if tspec.get("restartPolicy"):
        spec["restartPolicy"] = tspec["restartPolicy"]
    for key in ("imagePullSecrets", "nodeSelector"):
        if tspec.get(key) is not None:
            spec[key] = copy.deepcopy(tspec[key])
    spec["volumes"] = list(spec.get("volumes") or []) + copy.deepcopy(tspec.get("volumes") or [])
    for key in _LISTENER_REPLACED:
        if tspec.get(key) is None:
            spec.pop(key, None)
        else:
            spec[key] = copy.deepcopy(tspec[key])


def new_scale_set_listener_pod(
    listener: Mapping[str, Any], config_secret: str, service_account: str
) -> JsonDict:
    """``newScaleSetListenerPod`` (no proxy, no metrics port: the chart's defaults)."""
    m, spec = listener["metadata"], listener["spec"]
    pod: JsonDict = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": m["name"],
            "namespace": m["namespace"],
            "labels": dict(m.get("labels") or {}),
            "ownerReferences": [_owner(listener, "AutoscalingListener")],
        },
        "spec": {
            "serviceAccountName": service_account,
            "nodeSelector": {LABEL_OS: "linux"},
            "containers": [
                {
                    "name": LISTENER_CONTAINER,
                    "image": spec["image"],
                    "env": [
                        {"name": "LISTENER_CONFIG_PATH", "value": "/etc/gha-listener/config.json"}
                    ],
                    "command": [LISTENER_ENTRYPOINT],
                    "volumeMounts": [
                        {
                            "name": "listener-config",
                            "mountPath": "/etc/gha-listener",
                            "readOnly": True,
                        }
                    ],
                }
            ],
            "volumes": [{"name": "listener-config", "secret": {"secretName": config_secret}}],
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 60,
        },
    }
    if spec.get("imagePullSecrets"):
        pod["spec"]["imagePullSecrets"] = copy.deepcopy(spec["imagePullSecrets"])
    if spec.get("template") is not None:
        merge_listener_pod_with_template(pod, spec["template"])
    return pod


def new_ephemeral_runner_set(ars: Mapping[str, Any]) -> JsonDict:
    """``newEphemeralRunnerSet``: replicas 0, the ARS's pod template."""
    m, spec = ars["metadata"], ars.get("spec") or {}
    ars_labels = dict(m.get("labels") or {})
    annotations_in = m.get("annotations") or {}
    labels = {
        **ars_labels,
        LABEL_PART_OF: PART_OF_VALUE,
        LABEL_COMPONENT: "runner-set",
        LABEL_VERSION: ars_labels.get(LABEL_VERSION, ""),
        LABEL_SCALE_SET_NAME: m["name"],
        LABEL_SCALE_SET_NAMESPACE: m["namespace"],
    }
    _github_url_labels(spec.get("githubConfigUrl") or "", labels)
    runner_spec: JsonDict = {
        "runnerScaleSetId": int(annotations_in[ANNOTATION_SCALE_SET_ID]),
        "githubConfigUrl": spec.get("githubConfigUrl"),
        "githubConfigSecret": spec.get("githubConfigSecret"),
        **copy.deepcopy(spec.get("template") or {}),
    }
    for key in ("proxy", "githubServerTLS"):
        if spec.get(key) is not None:
            runner_spec[key] = spec[key]
    return {
        "apiVersion": API_VERSION,
        "kind": "EphemeralRunnerSet",
        "metadata": {
            "generateName": f"{m['name']}-",
            "namespace": m["namespace"],
            "labels": labels,
            "annotations": {
                ANNOTATION_RUNNER_GROUP: annotations_in.get(ANNOTATION_RUNNER_GROUP, ""),
                ANNOTATION_SCALE_SET_NAME: annotations_in.get(ANNOTATION_SCALE_SET_NAME, ""),
                ANNOTATION_RUNNER_SPEC_HASH: _sha(spec.get("template") or {}),
            },
            "ownerReferences": [_owner(ars, "AutoscalingRunnerSet")],
        },
        # Go's JSON of EphemeralRunnerSetSpec{Replicas: 0, ...}: replicas is omitempty, patchID
        # is not (and the CRD requires it).
        "spec": {"patchID": 0, "ephemeralRunnerSpec": runner_spec},
    }


def new_ephemeral_runner(ers: Mapping[str, Any]) -> JsonDict:
    """``newEphemeralRunner``."""
    m = ers["metadata"]
    labels = {**(m.get("labels") or {}), LABEL_COMPONENT: "runner"}
    annotations = {
        **(m.get("annotations") or {}),
        ANNOTATION_PATCH_ID: str((ers.get("spec") or {}).get("patchID") or 0),
    }
    return {
        "apiVersion": API_VERSION,
        "kind": "EphemeralRunner",
        "metadata": {
            "generateName": f"{m['name']}-runner-",
            "namespace": m["namespace"],
            "labels": labels,
            "annotations": annotations,
            "finalizers": list(RUNNER_FINALIZERS),
            "ownerReferences": [_owner(ers, "EphemeralRunnerSet")],
        },
        "spec": copy.deepcopy((ers.get("spec") or {}).get("ephemeralRunnerSpec") or {}),
    }


def new_ephemeral_runner_jit_secret(runner: Mapping[str, Any]) -> JsonDict:
    """``newEphemeralRunnerJitSecret`` with a placeholder JIT config (no GitHub here)."""
    m, spec = runner["metadata"], runner.get("spec") or {}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": m["name"],
            "namespace": m["namespace"],
            "ownerReferences": [_owner(runner, "EphemeralRunner")],
        },
        "stringData": {
            "jitToken": "local-test-double-no-github",
            "runnerName": m["name"],
            "runnerId": "0",
            "scaleSetId": str(spec.get("runnerScaleSetId") or 0),
        },
    }


def new_ephemeral_runner_pod(runner: Mapping[str, Any], secret_name: str) -> JsonDict:
    """``newEphemeralRunnerPod``: the template's pod spec, JIT env on the ``runner`` container."""
    m, spec = runner["metadata"], runner.get("spec") or {}
    tmeta = spec.get("metadata") or {}
    annotations = {**(m.get("annotations") or {}), **(tmeta.get("annotations") or {})}
    labels = {**(m.get("labels") or {}), **(tmeta.get("labels") or {})}
    labels["actions-ephemeral-runner"] = "True"
    labels[LABEL_POD_TEMPLATE_HASH] = _sha([labels, annotations, spec])
    pod_spec = copy.deepcopy(spec.get("spec") or {})
    for container in pod_spec.get("containers") or []:
        if container.get("name") == RUNNER_CONTAINER:
            container["env"] = [
                *(container.get("env") or []),
                {
                    "name": ENV_INPUT_JITCONFIG,
                    "valueFrom": {"secretKeyRef": {"name": secret_name, "key": "jitToken"}},
                },
                {
                    "name": "GITHUB_ACTIONS_RUNNER_EXTRA_USER_AGENT",
                    "value": f"actions-runner-controller/{CONTROLLER_VERSION}",
                },
                {"name": ENV_RETURN_VERSION_DEPRECATED_EXIT_CODE, "value": "1"},
            ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": m["name"],
            "namespace": m["namespace"],
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [_owner(runner, "EphemeralRunner")],
        },
        "spec": pod_spec,
    }


def cleanup_protected(ars: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``removeFinalizersFromDependentResources``: (kind, name) of each object whose
    cleanup-protection finalizer the scale set's deletion removes, in upstream's order
    (an annotation that is absent is skipped, as upstream logs and skips it)."""
    annotations = ars["metadata"].get("annotations") or {}
    return [(kind, annotations[key]) for key, kind in CLEANUP_ANNOTATIONS if annotations.get(key)]


def _finalizers_without(obj: Mapping[str, Any], finalizer: str) -> list[str] | None:
    """The object's finalizers without ``finalizer``, or None if it does not carry it."""
    finalizers = list(obj["metadata"].get("finalizers") or [])
    if finalizer not in finalizers:
        return None
    return [f for f in finalizers if f != finalizer]


# --- the controller loop ---------------------------------------------------------------------


def _delete_present(client: Client, kinds: tuple[Any, ...], name: str, namespace: str) -> None:
    """Delete the object ``name`` of each kind; one already gone is no error."""
    for kind in kinds:
        try:
            client.delete(kind, name, namespace=namespace)
        except ApiError as exc:
            if exc.status.code != 404:
                raise


def _d(obj: Any) -> JsonDict:
    data: JsonDict = obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)
    return data


def _listed(client: Client, kind: Any) -> list[JsonDict] | None:
    """Every object of an ARC kind, or None while its CRD is not installed (the API server
    answers a group or resource it does not serve with a plain-text 404, not a Status)."""
    try:
        return [_d(o) for o in client.list(kind, namespace="*")]
    except httpx2.HTTPStatusError as exc:
        if exc.response.status_code == 404:
            return None
        raise


def scale_sets(client: Client) -> list[JsonDict] | None:
    """Every AutoscalingRunnerSet, or None while the ARC CRDs are not installed."""
    return _listed(client, AutoscalingRunnerSet)


def request_runners(client: Client, namespace: str, scale_set: str, replicas: int) -> str:
    """Ask for ``replicas`` runners of a scale set, as the listener does; return the ERS name."""
    for ers in client.list(EphemeralRunnerSet, namespace=namespace):
        data = _d(ers)
        if (data["metadata"].get("labels") or {}).get(LABEL_SCALE_SET_NAME) == scale_set:
            name: str = data["metadata"]["name"]
            client.patch(EphemeralRunnerSet, name, {"spec": {"replicas": replicas}},
                         namespace=namespace, patch_type=PatchType.MERGE)  # fmt: skip
            return name
    raise LookupError(f"no EphemeralRunnerSet for scale set {namespace}/{scale_set} (yet)")


class ArcControllerDouble:
    """The reconcile loop (see the module docstring)."""

    def __init__(self, kubeconfig: Path, *, interval: float = 1.0) -> None:
        self.kubeconfig = kubeconfig
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._reported: set[tuple[str, str, str]] = set()
        self.passes = 0

    def start(self) -> ArcControllerDouble:
        """Run the loop in a daemon thread."""
        self._thread = threading.Thread(target=self.run, name="arc-double", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the loop and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
            self._thread = None

    def run(self) -> None:
        """Reconcile until stopped."""
        client = make_client(self.kubeconfig)
        try:
            while not self._stop.is_set():
                try:
                    self.reconcile(client)
                except Exception:  # keep running, like a controller
                    log.exception("reconcile pass failed")
                self.passes += 1
                self._stop.wait(self.interval)
        finally:
            client.close()

    # -- one pass -------------------------------------------------------------------------

    def _controller(self, client: Client) -> tuple[str, str] | None:
        key, value = CONTROLLER_LABEL
        for dep in client.list(Deployment, namespace="*"):
            data = _d(dep)
            pod_labels = data["spec"]["template"].get("metadata", {}).get("labels") or {}
            if pod_labels.get(key) != value:
                continue
            for container in data["spec"]["template"]["spec"]["containers"]:
                if container["name"] == "manager":
                    return data["metadata"]["namespace"], container["image"]
        return None

    def _event(self, client: Client, obj: Mapping[str, Any], kind: str, message: str) -> None:
        m = obj["metadata"]
        key = (m["namespace"], m["name"], message)
        if key in self._reported:
            return
        self._reported.add(key)
        log.warning("%s %s/%s: %s", kind, m["namespace"], m["name"], message)
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{m['name']}.", "namespace": m["namespace"]},
            "involvedObject": {
                "apiVersion": API_VERSION,
                "kind": kind,
                "name": m["name"],
                "namespace": m["namespace"],
                "uid": m["uid"],
            },
            "reason": "FailedCreatePod",
            "message": message,
            "type": "Warning",
            "source": {"component": "arc-controller-double"},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            client.create(Event.from_dict(event))  # type: ignore[call-overload]
        except ApiError:
            log.exception("could not record event")

    @staticmethod
    def _create(client: Client, resource: Any, body: JsonDict) -> JsonDict | None:
        obj = resource.from_dict(body) if hasattr(resource, "from_dict") else resource(body)
        try:
            return _d(client.create(obj))
        except ApiError as exc:
            if exc.status.code == 409:
                return None
            raise

    def reconcile(self, client: Client) -> None:
        """One level-triggered pass over every scale set, listener and runner."""
        sets = scale_sets(client)
        if sets is None:
            return  # no ARC CRDs (yet): nothing of ARC's to reconcile
        controller = self._controller(client)
        for data in sets:
            if data["metadata"].get("deletionTimestamp"):
                self._clean_up(client, data)
                continue
            ars = self._scale_set_id(client, self._with_finalizer(client, data))
            ers = self._runner_set(client, ars)
            if controller is not None:
                self._listener(client, ars, ers, *controller)
        # The CRDs go one by one when a stack is destroyed: a kind already gone has nothing.
        for ers in _listed(client, EphemeralRunnerSet) or []:
            self._scale_runners(client, ers)
        for runner in _listed(client, EphemeralRunner) or []:
            self._runner(client, runner)

    @staticmethod
    def _set_finalizers(client: Client, kind: Any, obj: JsonDict, finalizers: list[str]) -> None:
        """Merge-patch ``metadata.finalizers`` (upstream's ``patch`` helper: a merge patch
        from the object as read)."""
        m = obj["metadata"]
        try:
            client.patch(kind, m["name"], {"metadata": {"finalizers": finalizers or None}},
                         namespace=m["namespace"], patch_type=PatchType.MERGE)  # fmt: skip
        except ApiError as exc:
            if exc.status.code != 404:
                raise

    def _with_finalizer(self, client: Client, ars: JsonDict) -> JsonDict:
        """``controllerutil.AddFinalizer`` before anything else, as the Reconcile does."""
        finalizers = list(ars["metadata"].get("finalizers") or [])
        if SCALE_SET_FINALIZER in finalizers:
            return ars
        self._set_finalizers(client, AutoscalingRunnerSet, ars, [*finalizers, SCALE_SET_FINALIZER])
        m = ars["metadata"]
        return _d(client.get(AutoscalingRunnerSet, m["name"], namespace=m["namespace"]))

    def _clean_up(self, client: Client, ars: JsonDict) -> None:
        """The deletion branch of ``Reconcile``: ``cleanUpResources`` (listener, then runner
        sets, then the scale set id), each step waiting for the last on a later pass; then
        ``removeFinalizersFromDependentResources`` and the scale set's own finalizer."""
        if SCALE_SET_FINALIZER not in (ars["metadata"].get("finalizers") or []):
            return
        if not self._cleanup_listener(client, ars) or not self._cleanup_runner_sets(client, ars):
            return
        m = ars["metadata"]
        if ANNOTATION_SCALE_SET_ID in (m.get("annotations") or {}):
            # deleteRunnerScaleSet: no Actions service here, only the annotation goes.
            client.patch(AutoscalingRunnerSet, m["name"],
                         {"metadata": {"annotations": {ANNOTATION_SCALE_SET_ID: None}}},
                         namespace=m["namespace"], patch_type=PatchType.MERGE)  # fmt: skip
        for kind_name, name in cleanup_protected(ars):
            kind = _CLEANUP_KINDS[kind_name]
            try:
                obj = _d(client.get(kind, name, namespace=m["namespace"]))
            except ApiError as exc:
                if exc.status.code != 404:
                    raise
                continue  # "has already been deleted"
            remaining = _finalizers_without(obj, CLEANUP_PROTECTION_FINALIZER)
            if remaining is not None:
                self._set_finalizers(client, kind, obj, remaining)
        remaining = _finalizers_without(ars, SCALE_SET_FINALIZER)
        self._set_finalizers(client, AutoscalingRunnerSet, ars, remaining or [])

    def _cleanup_listener(self, client: Client, ars: JsonDict) -> bool:
        """``cleanupListener``: delete the scale set's listener; done once it is gone."""
        m = ars["metadata"]
        done = True
        for listener in _listed(client, AutoscalingListener) or []:
            spec = listener.get("spec") or {}
            if (
                spec.get("autoscalingRunnerSetNamespace"),
                spec.get("autoscalingRunnerSetName"),
            ) != (
                m["namespace"],
                m["name"],
            ):
                continue
            done = False
            lm = listener["metadata"]
            if lm.get("deletionTimestamp"):
                continue
            client.delete(AutoscalingListener, lm["name"], namespace=lm["namespace"])
            _delete_present(client, (RoleBinding, Role), lm["name"], m["namespace"])
        return done

    def _cleanup_runner_sets(self, client: Client, ars: JsonDict) -> bool:
        """``cleanupEphemeralRunnerSets``: delete every runner set; done once none is left."""
        m = ars["metadata"]
        owned = [
            _d(e)
            for e in client.list(EphemeralRunnerSet, namespace=m["namespace"])
            if any(o.get("uid") == m["uid"] for o in _d(e)["metadata"].get("ownerReferences") or [])
        ]
        for ers in owned:
            if not ers["metadata"].get("deletionTimestamp"):
                client.delete(EphemeralRunnerSet, ers["metadata"]["name"], namespace=m["namespace"])
        return not owned

    def _scale_set_id(self, client: Client, ars: JsonDict) -> JsonDict:
        annotations = ars["metadata"].get("annotations") or {}
        if ANNOTATION_SCALE_SET_ID in annotations:
            return ars
        m, spec = ars["metadata"], ars.get("spec") or {}
        scale_set_id = int(_sha([m["namespace"], m["name"]]), 16) % 100_000 + 1
        patch = {
            "metadata": {
                "annotations": {
                    ANNOTATION_SCALE_SET_ID: str(scale_set_id),
                    ANNOTATION_SCALE_SET_NAME: spec.get("runnerScaleSetName") or m["name"],
                    ANNOTATION_RUNNER_GROUP: spec.get("runnerGroup") or "Default",
                }
            }
        }
        return _d(
            client.patch(
                AutoscalingRunnerSet,
                m["name"],
                patch,
                namespace=m["namespace"],
                patch_type=PatchType.MERGE,
            )
        )

    def _runner_set(self, client: Client, ars: JsonDict) -> JsonDict:
        m = ars["metadata"]
        for ers in client.list(EphemeralRunnerSet, namespace=m["namespace"]):
            data = _d(ers)
            owners = data["metadata"].get("ownerReferences") or []
            if any(o.get("uid") == m["uid"] for o in owners):
                return data
        created = self._create(client, EphemeralRunnerSet, new_ephemeral_runner_set(ars))
        assert created is not None  # generateName never conflicts
        return created

    def _listener(
        self, client: Client, ars: JsonDict, ers: JsonDict, namespace: str, image: str
    ) -> None:
        desired = new_autoscaling_listener(ars, ers, namespace, image)
        name = desired["metadata"]["name"]
        try:
            listener = _d(client.get(AutoscalingListener, name, namespace=namespace))
        except ApiError as exc:
            if exc.status.code != 404:
                raise
            listener = self._create(client, AutoscalingListener, desired) or _d(
                client.get(AutoscalingListener, name, namespace=namespace)
            )
        if listener["metadata"].get("deletionTimestamp"):
            return
        if listener.get("spec") != desired["spec"]:
            # Upstream deletes and recreates the listener when its spec hash changes.
            client.delete(AutoscalingListener, name, namespace=namespace)
            return
        owner = [_owner(listener, "AutoscalingListener")]
        m = ars["metadata"]
        sa = {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": {
                    **(listener["metadata"].get("labels") or {}),
                    LABEL_SCALE_SET_NAMESPACE: m["namespace"],
                    LABEL_SCALE_SET_NAME: m["name"],
                },
                "ownerReferences": owner,
            },
        }
        self._create(client, ServiceAccount, sa)
        rules = [
            {
                "apiGroups": [GROUP],
                "resources": ["ephemeralrunnersets"],
                "resourceNames": [ers["metadata"]["name"]],
                "verbs": ["patch"],
            },
            {
                "apiGroups": [GROUP],
                "resources": ["ephemeralrunners", "ephemeralrunners/status"],
                "verbs": ["patch"],
            },
        ]
        role_labels = {
            **(listener["metadata"].get("labels") or {}),
            LABEL_SCALE_SET_NAMESPACE: m["namespace"],
            LABEL_SCALE_SET_NAME: m["name"],
            "auto-scaling-listener-namespace": namespace,
            "auto-scaling-listener-name": name,
        }
        self._create(
            client,
            Role,
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {
                    "name": name,
                    "namespace": m["namespace"],
                    "labels": {**role_labels, "role-policy-rules-hash": _sha(rules)},
                },
                "rules": rules,
            },
        )
        self._create(
            client,
            RoleBinding,
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": name, "namespace": m["namespace"], "labels": role_labels},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                "subjects": [{"kind": "ServiceAccount", "namespace": namespace, "name": name}],
            },
        )
        spec = listener["spec"]
        config = {
            "configure_url": spec.get("githubConfigUrl"),
            "ephemeral_runner_set_namespace": spec.get("autoscalingRunnerSetNamespace"),
            "ephemeral_runner_set_name": spec.get("ephemeralRunnerSetName"),
            "max_runners": spec.get("maxRunners"),
            "min_runners": spec.get("minRunners"),
            "runner_scale_set_id": spec.get("runnerScaleSetId"),
            "runner_scale_set_name": spec.get("autoscalingRunnerSetName"),
            "log_level": "debug",
            "log_format": "text",
        }
        secret_name = f"{name}-config"
        self._create(
            client,
            Secret,
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": secret_name, "namespace": namespace, "ownerReferences": owner},
                "stringData": {"config.json": json.dumps(config) + "\n"},
            },
        )
        try:
            client.get(Pod, name, namespace=namespace)
            return
        except ApiError as exc:
            if exc.status.code != 404:
                raise
        try:
            self._create(client, Pod, new_scale_set_listener_pod(listener, secret_name, name))
        except ApiError as exc:
            self._event(client, listener, "AutoscalingListener", exc.status.message or str(exc))

    def _scale_runners(self, client: Client, ers: JsonDict) -> None:
        if ers["metadata"].get("deletionTimestamp"):
            return
        m = ers["metadata"]
        runners = [
            _d(r)
            for r in client.list(EphemeralRunner, namespace=m["namespace"])
            if any(o.get("uid") == m["uid"] for o in _d(r)["metadata"].get("ownerReferences") or [])
        ]
        active = [r for r in runners if not r["metadata"].get("deletionTimestamp")]
        want = int((ers.get("spec") or {}).get("replicas") or 0)
        for _ in range(want - len(active)):
            self._create(client, EphemeralRunner, new_ephemeral_runner(ers))
        for runner in sorted(active, key=lambda r: r["metadata"]["creationTimestamp"])[want:]:
            client.delete(EphemeralRunner, runner["metadata"]["name"], namespace=m["namespace"])

    def _runner(self, client: Client, runner: JsonDict) -> None:
        m = runner["metadata"]
        if m.get("deletionTimestamp"):
            _delete_present(client, (Pod, Secret), m["name"], m["namespace"])
            try:
                client.get(Pod, m["name"], namespace=m["namespace"])
            except ApiError as exc:
                if exc.status.code == 404 and m.get("finalizers"):
                    client.patch(EphemeralRunner, m["name"], {"metadata": {"finalizers": None}},
                                 namespace=m["namespace"], patch_type=PatchType.MERGE)  # fmt: skip
            return
        self._create(client, Secret, new_ephemeral_runner_jit_secret(runner))
        try:
            pod = _d(client.get(Pod, m["name"], namespace=m["namespace"]))
        except ApiError as exc:
            if exc.status.code != 404:
                raise
            try:
                self._create(client, Pod, new_ephemeral_runner_pod(runner, m["name"]))
            except ApiError as create_error:
                message = create_error.status.message or str(create_error)
                self._event(client, runner, "EphemeralRunner", message)
            return
        phase = (pod.get("status") or {}).get("phase") or "Pending"
        status = runner.get("status") or {}
        if status.get("phase") != phase:
            client.patch(
                EphemeralRunner.Status,
                m["name"],
                {"status": {"phase": phase, "ready": phase == "Running", "runnerName": m["name"]}},
                namespace=m["namespace"],
                patch_type=PatchType.MERGE,
            )


def main(argv: list[str] | None = None) -> int:
    """``python -m localcluster.arc_double --kubeconfig FILE``."""
    parser = argparse.ArgumentParser(prog="python -m localcluster.arc_double", description=__doc__)
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--interval", type=float, default=1.0)
    # Lets `python -m localcluster down` find this process by its state dir (pid + marker).
    parser.add_argument("--state-dir-marker", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    log.setLevel(logging.INFO)
    for noisy in ("httpx", "httpx2", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    double = ArcControllerDouble(args.kubeconfig, interval=args.interval)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    double.start()
    print("arc controller double running", flush=True)
    while not done.wait(0.5):
        pass
    double.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
