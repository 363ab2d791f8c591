"""Pure rendering of the runner-container-hooks pod template, and the pod security it shares.

No Pulumi imports: these functions take plain values (claim names already resolved) and return
plain dicts, so the unit tier can validate them against the Kubernetes schemas and the policy
pack's model of the hook's merge.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import yaml

from components import constants as c

__all__ = [
    "CacheMount",
    "Name",
    "hook_template",
    "hook_template_yaml",
    "listener_template",
    "mirror_image",
    "pod_security_labels",
    "restricted_security_context",
    "runner_pod_security_context",
]


#: The claim and storage class of a mount: a name, or a Pulumi input resolving to one.
Name = TypeVar("Name")


@dataclass(frozen=True, slots=True)
class CacheMount(Generic[Name]):
    """A cache mounted into a scale set's job pods.

    A clone mount is a fresh copy-on-write clone of ``claim``, the cache's current parent, at
    exactly ``size`` in ``storage_class`` (OpenEBS ZFS refuses any other size or class). The
    builder mount (``builder=True``) is ``claim`` itself, the cache's builder volume (of that
    size and class), mounted read-write by the cache's builder scale set.
    """

    cache: str
    claim: Name
    size: str
    storage_class: Name
    mount_path: str
    env: Mapping[str, str] = field(default_factory=dict)
    builder: bool = False


def restricted_security_context() -> dict[str, Any]:
    """What Pod Security ``restricted`` asks of every container, whatever its user."""
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _job_security_context() -> dict[str, Any]:
    return {
        **restricted_security_context(),
        "runAsUser": c.JOB_UID,
        "runAsGroup": c.JOB_GID,
    }


def runner_pod_security_context() -> dict[str, Any]:
    """Pod-level securityContext shared by runner and job pods (uid 1001, gid/fsGroup 123).

    ``OnRootMismatch``: with the default policy the kubelet changes the group of every file of
    a volume at each mount, and a cache clone holds hundreds of thousands of files; the clone's
    root already has the right owner, so the kubelet skips the walk.
    """
    return {
        "runAsNonRoot": True,
        "runAsUser": c.RUNNER_UID,
        "runAsGroup": c.RUNNER_GID,
        "fsGroup": c.RUNNER_GID,
        "fsGroupChangePolicy": "OnRootMismatch",
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def listener_template() -> dict[str, Any]:
    """The AutoscalingRunnerSet ``listenerTemplate``: a listener a restricted namespace admits.

    The controller builds each listener pod with no securityContext and, given a template,
    takes the template's pod securityContext and the ``listener`` container's one
    (``mergeListenerPodWithTemplate``). The template also replaces the pod's
    terminationGracePeriodSeconds, so it repeats the controller's default. No uid is set: the
    listener runs the controller image, whose user is non-root.
    """
    return {
        "spec": {
            "securityContext": {
                "runAsNonRoot": True,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "terminationGracePeriodSeconds": c.LISTENER_TERMINATION_GRACE_SECONDS,
            "containers": [
                {
                    "name": c.LISTENER_CONTAINER_NAME,
                    "securityContext": restricted_security_context(),
                }
            ],
        }
    }


def hook_template(
    scale_set: str,
    mounts: Sequence[CacheMount[str]],
    resources: Mapping[str, Mapping[str, str]] | None = None,
    services: Sequence[str] = (),
) -> dict[str, Any]:
    """The pod template the hook merges into every job pod of a scale set.

    Each clone mount is a generic ephemeral volume whose claim clones the cache's current
    parent at exactly the parent's size (OpenEBS ZFS refuses any other size); the builder
    mount names the builder volume's claim. The template's ``spec.securityContext`` replaces
    the hook's, and the job pod gets no API token. Each of ``services`` becomes a
    ``$<service>`` entry: the hook gives a workflow service container only what such an
    entry says, so without it a restricted namespace rejects the pod. The hook applies the
    same template to container-action step pods: each step gets clones of its own, and the
    builder volume is mounted by the job pod and the step pod at once.
    """
    volumes: list[dict[str, Any]] = []
    job_mounts: list[dict[str, Any]] = []
    env: dict[str, str] = {}
    for mount in sorted(mounts, key=lambda m: m.builder):
        volume = f"{c.CACHE_CLONE_VOLUME_PREFIX}{mount.cache}"
        if mount.builder:
            volumes.append({"name": volume, "persistentVolumeClaim": {"claimName": mount.claim}})
        else:
            volumes.append({"name": volume, "ephemeral": _clone_claim_template(mount)})
        job_mounts.append({"name": volume, "mountPath": mount.mount_path})
        env.update(mount.env)
    job: dict[str, Any] = {
        "name": c.JOB_CONTAINER_NAME,
        "securityContext": _job_security_context(),
        "env": [{"name": k, "value": v} for k, v in sorted(env.items())],
        "volumeMounts": job_mounts,
    }
    if resources:
        job["resources"] = {k: dict(v) for k, v in resources.items() if v}
    service_entries = [
        {"name": f"${service}", "securityContext": _job_security_context()} for service in services
    ]
    return {
        "metadata": {
            "labels": {c.LABEL_SCALE_SET: scale_set, c.LABEL_PART_OF: c.PART_OF},
        },
        "spec": {
            "automountServiceAccountToken": False,
            "securityContext": runner_pod_security_context(),
            "containers": [job, *service_entries],
            "volumes": volumes,
        },
    }


def _clone_claim_template(mount: CacheMount[str]) -> dict[str, Any]:
    return {
        "volumeClaimTemplate": {
            "metadata": {"labels": {c.LABEL_CACHE: mount.cache}},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": mount.storage_class,
                "dataSource": {
                    "apiGroup": "",
                    "kind": "PersistentVolumeClaim",
                    "name": mount.claim,
                },
                "resources": {"requests": {"storage": mount.size}},
            },
        }
    }


def hook_template_yaml(template: Mapping[str, Any]) -> str:
    """Serialise a hook template the way it is stored under the ConfigMap's ``content`` key."""
    return yaml.safe_dump(dict(template), sort_keys=False, default_flow_style=False)


def mirror_image(image: str, registry: str | None) -> str:
    """Rewrite an image reference to a mirror registry: ``ghcr.io/a/b:1`` → ``<mirror>/a/b:1``."""
    if not registry:
        return image
    first, _, rest = image.partition("/")
    has_registry = bool(rest) and ("." in first or ":" in first or first == "localhost")
    path = rest if has_registry else image
    return f"{registry.rstrip('/')}/{path}"


def pod_security_labels(level: str) -> dict[str, str]:
    """Pod Security admission labels: enforce the level, warn and audit at restricted."""
    return {
        "pod-security.kubernetes.io/enforce": level,
        "pod-security.kubernetes.io/enforce-version": "latest",
        "pod-security.kubernetes.io/warn": "restricted",
        "pod-security.kubernetes.io/audit": "restricted",
    }
