"""Pure rendering of the runner-container-hooks pod template and the runner scale set values.

No Pulumi imports: these functions take plain values (claim names already resolved) and return
plain dicts, so the unit tier can validate them against the Kubernetes schemas and the policy
pack's model of the hook's merge.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from components import constants as c

__all__ = [
    "BuilderMount",
    "CloneMount",
    "hook_template",
    "hook_template_yaml",
    "mirror_image",
    "pod_security_labels",
    "runner_pod_security_context",
    "scale_set_values",
]


@dataclass(frozen=True, slots=True)
class CloneMount:
    """A cache mounted into the job pod as a fresh copy-on-write clone of its current parent."""

    cache: str
    parent_claim: str
    size: str
    mount_path: str
    storage_class: str
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BuilderMount:
    """A cache's builder volume mounted read-write into its builder scale set's job pod."""

    cache: str
    claim: str
    mount_path: str
    env: Mapping[str, str] = field(default_factory=dict)


def _job_security_context() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
        "runAsUser": c.JOB_UID,
        "runAsGroup": c.JOB_GID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def runner_pod_security_context() -> dict[str, Any]:
    """Pod-level securityContext shared by runner and job pods (uid 1001, gid/fsGroup 123)."""
    return {
        "runAsNonRoot": True,
        "runAsUser": c.RUNNER_UID,
        "runAsGroup": c.RUNNER_GID,
        "fsGroup": c.RUNNER_GID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def hook_template(
    scale_set: str,
    clones: Sequence[CloneMount],
    builder: BuilderMount | None = None,
    resources: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, Any]:
    """The pod template the hook merges into every job pod of a scale set.

    Each clone is a generic ephemeral volume whose claim clones the cache's current parent at
    exactly the parent's size (OpenEBS ZFS refuses any other size). The template's
    ``spec.securityContext`` replaces the hook's, and the job pod gets no API token.
    """
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    env: dict[str, str] = {}
    for clone in clones:
        volume = f"{c.CACHE_CLONE_VOLUME_PREFIX}{clone.cache}"
        volumes.append(
            {
                "name": volume,
                "ephemeral": {
                    "volumeClaimTemplate": {
                        "metadata": {"labels": {c.LABEL_CACHE: clone.cache}},
                        "spec": {
                            "accessModes": ["ReadWriteOnce"],
                            "storageClassName": clone.storage_class,
                            "dataSource": {
                                "apiGroup": "",
                                "kind": "PersistentVolumeClaim",
                                "name": clone.parent_claim,
                            },
                            "resources": {"requests": {"storage": clone.size}},
                        },
                    }
                },
            }
        )
        mounts.append({"name": volume, "mountPath": clone.mount_path})
        env.update(clone.env)
    if builder is not None:
        volume = f"{c.CACHE_CLONE_VOLUME_PREFIX}{builder.cache}"
        volumes.append({"name": volume, "persistentVolumeClaim": {"claimName": builder.claim}})
        mounts.append({"name": volume, "mountPath": builder.mount_path})
        env.update(builder.env)
    job: dict[str, Any] = {
        "name": c.JOB_CONTAINER_NAME,
        "securityContext": _job_security_context(),
        "env": [{"name": k, "value": v} for k, v in sorted(env.items())],
        "volumeMounts": mounts,
    }
    if resources:
        job["resources"] = {k: dict(v) for k, v in resources.items() if v}
    return {
        "metadata": {
            "labels": {c.LABEL_SCALE_SET: scale_set, c.LABEL_PART_OF: c.PART_OF},
        },
        "spec": {
            "automountServiceAccountToken": False,
            "securityContext": runner_pod_security_context(),
            "containers": [job],
            "volumes": volumes,
        },
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


def scale_set_values(
    *,
    name: str,
    github_config_url: str,
    runner_group: str,
    min_runners: int,
    max_runners: int,
    runner_image: str,
    node: str,
    controller_namespace: str,
    controller_service_account: str,
    work_volume_size: str,
    work_volume_storage_class: str | None,
    image_pull_secrets: Sequence[str] = (),
    github_ca_config_map: str | None = None,
) -> dict[str, Any]:
    """Values for the gha-runner-scale-set chart in kubernetes container mode.

    The stable chart has no hook-template value, so the hook env var, the template ConfigMap
    (mounted as a directory so updates reach running runners) and its mount are added here.
    Credentials are referenced by Secret name only.
    """
    work_claim: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": work_volume_size}},
    }
    if work_volume_storage_class:
        work_claim["storageClassName"] = work_volume_storage_class
    runner = {
        "name": c.RUNNER_CONTAINER_NAME,
        "image": runner_image,
        "command": ["/home/runner/run.sh"],
        "env": [
            {"name": "ACTIONS_RUNNER_CONTAINER_HOOKS", "value": c.HOOK_ENTRYPOINT},
            {"name": "ACTIONS_RUNNER_CONTAINER_HOOK_TEMPLATE", "value": c.HOOK_TEMPLATE_FILE},
            {"name": "ACTIONS_RUNNER_REQUIRE_JOB_CONTAINER", "value": "true"},
        ],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": True,
            "runAsUser": c.RUNNER_UID,
            "runAsGroup": c.RUNNER_GID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [
            {"name": c.HOOK_TEMPLATE_VOLUME, "mountPath": c.HOOK_TEMPLATE_DIR, "readOnly": True}
        ],
    }
    spec: dict[str, Any] = {
        "nodeSelector": {"kubernetes.io/hostname": node},
        "securityContext": runner_pod_security_context(),
        "containers": [runner],
        "volumes": [
            {"name": c.HOOK_TEMPLATE_VOLUME, "configMap": {"name": c.hook_template_name(name)}}
        ],
    }
    if image_pull_secrets:
        spec["imagePullSecrets"] = [{"name": s} for s in image_pull_secrets]
    values: dict[str, Any] = {
        "githubConfigUrl": github_config_url,
        "githubConfigSecret": c.GITHUB_SECRET_NAME,
        "runnerScaleSetName": name,
        "runnerGroup": runner_group,
        "minRunners": min_runners,
        "maxRunners": max_runners,
        "controllerServiceAccount": {
            "namespace": controller_namespace,
            "name": controller_service_account,
        },
        "containerMode": {
            "type": "kubernetes",
            "kubernetesModeWorkVolumeClaim": work_claim,
        },
        "template": {
            "metadata": {"labels": {c.LABEL_SCALE_SET: name, c.LABEL_PART_OF: c.PART_OF}},
            "spec": spec,
        },
    }
    if github_ca_config_map:
        values["githubServerTLS"] = {
            "certificateFrom": {
                "configMapKeyRef": {"name": github_ca_config_map, "key": c.GITHUB_CA_KEY}
            },
            "runnerMountPath": "/usr/local/share/ca-certificates/",
        }
    return values
