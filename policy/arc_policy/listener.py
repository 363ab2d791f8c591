"""The listener pod the ARC controller (0.14.2) starts for every scale set.

A pure model of ``controllers/actions.github.com/resourcebuilder.go`` at tag
``gha-runner-scale-set-0.14.2``: ``newScaleSetListenerPod`` builds a pod with one ``listener``
container (the controller's own image), a Secret volume with its config, no securityContext,
``restartPolicy: Never`` and ``terminationGracePeriodSeconds: 60``, **in the controller's
namespace**. When the AutoscalingRunnerSet has a ``listenerTemplate``,
``mergeListenerPodWithTemplate`` merges it in:

* labels and annotations the pod lacks are added (existing keys win);
* the template's ``listener`` container is merged into the pod's (``env``, ``args``, ``ports``,
  ``envFrom``, ``volumeMounts``, ``volumeDevices`` appended; ``image`` and ``command`` only
  when set; every other field, ``securityContext`` included, replaced even by nothing); other
  template containers are appended;
* ``restartPolicy``, ``imagePullSecrets`` and ``nodeSelector`` are replaced only when set,
  ``volumes`` appended, and every other pod field (``securityContext``,
  ``terminationGracePeriodSeconds``, ``hostNetwork``, ``initContainers``...) replaced by the
  template's, set or not.

Dicts in, dicts out; no Pulumi imports.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Final

__all__ = ["LISTENER_CONTAINER", "base_listener_pod", "listener_pod", "merge_listener_pod"]

#: Name of the listener container (``autoscalingListenerContainerName``).
LISTENER_CONTAINER: Final = "listener"
_DEFAULT_GRACE_SECONDS: Final = 60
#: Container fields appended rather than replaced (``mergeListenerContainer``).
_APPENDED: Final = ("env", "args", "ports", "envFrom", "volumeMounts", "volumeDevices")
#: Container fields taken only when the template sets them.
_IF_SET: Final = ("image", "command")
#: Pod fields taken only when the template sets them.
_POD_IF_SET: Final = ("restartPolicy", "imagePullSecrets", "nodeSelector")
#: The pod fields ``mergeListenerPodWithTemplate`` replaces with the template's, set or not.
_POD_REPLACED: Final = (
    "initContainers",
    "ephemeralContainers",
    "terminationGracePeriodSeconds",
    "activeDeadlineSeconds",
    "dnsPolicy",
    "nodeName",
    "hostNetwork",
    "hostPID",
    "hostIPC",
    "shareProcessNamespace",
    "securityContext",
    "hostname",
    "subdomain",
    "affinity",
    "schedulerName",
    "tolerations",
    "hostAliases",
    "priorityClassName",
    "priority",
    "dnsConfig",
    "readinessGates",
    "runtimeClassName",
    "enableServiceLinks",
    "preemptionPolicy",
    "overhead",
    "topologySpreadConstraints",
    "setHostnameAsFQDN",
    "os",
    "hostUsers",
    "schedulingGates",
    "resourceClaims",
)
#: The container fields replaced by the template's, set or not.
_CONTAINER_REPLACED: Final = (
    "imagePullPolicy",
    "workingDir",
    "resources",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "lifecycle",
    "terminationMessagePath",
    "terminationMessagePolicy",
    "securityContext",
    "resizePolicy",
    "restartPolicy",
    "stdin",
    "stdinOnce",
    "tty",
)


def base_listener_pod(
    name: str = "listener",
    namespace: str = "arc-systems",
    image: str = "ghcr.io/actions/gha-runner-scale-set-controller:0.14.2",
) -> dict[str, Any]:
    """The listener pod ``newScaleSetListenerPod`` builds, before any template."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {}},
        "spec": {
            "serviceAccountName": name,
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "containers": [
                {
                    "name": LISTENER_CONTAINER,
                    "image": image,
                    "env": [
                        {"name": "LISTENER_CONFIG_PATH", "value": "/etc/gha-listener/config.json"}
                    ],
                    "command": ["/ghalistener"],
                    "volumeMounts": [
                        {
                            "name": "listener-config",
                            "mountPath": "/etc/gha-listener",
                            "readOnly": True,
                        }
                    ],
                }
            ],
            "volumes": [{"name": "listener-config", "secret": {"secretName": f"{name}-config"}}],
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": _DEFAULT_GRACE_SECONDS,
        },
    }


def _set(target: dict[str, Any], key: str, value: Any) -> None:
    """Go's assignment of a possibly unset value: an unset field disappears."""
    if value is None or value in ([], {}, ""):
        target.pop(key, None)
    else:
        target[key] = copy.deepcopy(value)


def _mapping(value: Any) -> Mapping[str, Any]:
    """``value`` if it is a mapping, else an empty one (an absent template part)."""
    return value if isinstance(value, Mapping) else {}


def _merge_container(base: dict[str, Any], extension: Mapping[str, Any]) -> None:
    """``mergeListenerContainer``."""
    for key in _IF_SET:
        if extension.get(key):
            base[key] = copy.deepcopy(extension[key])
    for key in _APPENDED:
        merged = list(base.get(key) or []) + copy.deepcopy(list(extension.get(key) or []))
        _set(base, key, merged)
    for key in _CONTAINER_REPLACED:
        _set(base, key, extension.get(key))


def merge_listener_pod(pod: Mapping[str, Any], template: Mapping[str, Any]) -> dict[str, Any]:
    """``mergeListenerPodWithTemplate``: ``pod`` with the listener ``template`` merged in."""
    merged = copy.deepcopy(dict(pod))
    meta = merged.setdefault("metadata", {})
    template_meta = _mapping(template.get("metadata"))
    for field in ("annotations", "labels"):
        values = dict(meta.get(field) or {})
        for key, value in (template_meta.get(field) or {}).items():
            values.setdefault(key, value)
        meta[field] = values
    spec = merged.setdefault("spec", {})
    template_spec = _mapping(template.get("spec"))
    containers = spec["containers"]
    for entry in template_spec.get("containers") or []:
        if isinstance(entry, Mapping) and entry.get("name") == LISTENER_CONTAINER:
            _merge_container(containers[0], entry)
        else:
            containers.append(copy.deepcopy(entry))
    for key in _POD_IF_SET:
        if template_spec.get(key):
            spec[key] = copy.deepcopy(template_spec[key])
    spec["volumes"] = list(spec.get("volumes") or []) + copy.deepcopy(
        list(template_spec.get("volumes") or [])
    )
    for key in _POD_REPLACED:
        _set(spec, key, template_spec.get(key))
    return merged


def listener_pod(template: Mapping[str, Any] | None, **base: Any) -> dict[str, Any]:
    """The listener pod the controller creates for a scale set with ``template`` (or none)."""
    pod = base_listener_pod(**base)
    return merge_listener_pod(pod, template) if isinstance(template, Mapping) else pod
