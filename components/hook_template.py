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
    "listener_template",
    "mirror_image",
    "pod_security_labels",
    "restricted_security_context",
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
    clones: Sequence[CloneMount],
    builder: BuilderMount | None = None,
    resources: Mapping[str, Mapping[str, str]] | None = None,
    services: Sequence[str] = (),
) -> dict[str, Any]:
    """The pod template the hook merges into every job pod of a scale set.

    Each clone is a generic ephemeral volume whose claim clones the cache's current parent at
    exactly the parent's size (OpenEBS ZFS refuses any other size). The template's
    ``spec.securityContext`` replaces the hook's, and the job pod gets no API token. Each of
    ``services`` becomes a ``$<service>`` entry: the hook gives a workflow service container
    only what such an entry says, so without it a restricted namespace rejects the pod.
    The hook applies the same template to container-action step pods: each step gets clones
    of its own, and the builder volume is mounted by the job pod and the step pod at once.
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
    use_kube_scheduler: bool = False,
    container_mode: str = c.CONTAINER_MODE_KUBERNETES,
) -> dict[str, Any]:
    """Values for the gha-runner-scale-set chart in a kubernetes container mode.

    The stable chart has no hook-template value, so the hook env var, the template ConfigMap
    (mounted as a directory so updates reach running runners) and its mount are added here.
    Credentials are referenced by Secret name only. ``listenerTemplate`` makes the listener
    pod, which the controller starts in its own namespace, admissible there.

    ``kubernetes`` (hook 0.7): the runner shares its ``work`` claim with the job pod, which
    the hook pins to the runner's node, so the runner is pinned to ``node``, the caches'.
    ``kubernetes-novolume`` (hook 0.8): no work volume; the hook sets no node on the job pod,
    whose clones' node affinity makes the scheduler place it on ``node``: the runner itself
    may run anywhere, and the work volume settings are unused.
    """
    novolume = container_mode == c.CONTAINER_MODE_NOVOLUME
    if novolume and use_kube_scheduler:
        raise ValueError("use_kube_scheduler is a hook 0.7 setting (kubernetes mode only)")
    container_mode_values: dict[str, Any] = {"type": container_mode}
    if not novolume:
        work_claim: dict[str, Any] = {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": work_volume_size}},
        }
        if work_volume_storage_class:
            work_claim["storageClassName"] = work_volume_storage_class
        container_mode_values["kubernetesModeWorkVolumeClaim"] = work_claim
    env = [
        {
            "name": "ACTIONS_RUNNER_CONTAINER_HOOKS",
            "value": c.NOVOLUME_HOOK_ENTRYPOINT if novolume else c.HOOK_ENTRYPOINT,
        },
        {"name": "ACTIONS_RUNNER_CONTAINER_HOOK_TEMPLATE", "value": c.HOOK_TEMPLATE_FILE},
        {"name": "ACTIONS_RUNNER_REQUIRE_JOB_CONTAINER", "value": "true"},
    ]
    if use_kube_scheduler:
        env.append({"name": "ACTIONS_RUNNER_USE_KUBE_SCHEDULER", "value": "true"})
    if github_ca_config_map:
        env += [
            # run.sh runs `sudo update-ca-certificates` when this is non-empty, which fails
            # under allowPrivilegeEscalation: false; the chart adds "1" unless it is set.
            {"name": "RUNNER_UPDATE_CA_CERTS", "value": ""},
            # The runner (.NET, OpenSSL) reads every directory listed here instead.
            {"name": "SSL_CERT_DIR", "value": f"{c.SYSTEM_CA_DIR}:{c.GITHUB_CA_DIR}"},
        ]
    runner = {
        "name": c.RUNNER_CONTAINER_NAME,
        "image": runner_image,
        "command": ["/home/runner/run.sh"],
        "env": env,
        "securityContext": {
            **restricted_security_context(),
            "runAsUser": c.RUNNER_UID,
            "runAsGroup": c.RUNNER_GID,
        },
        "volumeMounts": [
            {"name": c.HOOK_TEMPLATE_VOLUME, "mountPath": c.HOOK_TEMPLATE_DIR, "readOnly": True}
        ],
    }
    spec: dict[str, Any] = {
        "securityContext": runner_pod_security_context(),
        "containers": [runner],
        "volumes": [
            {"name": c.HOOK_TEMPLATE_VOLUME, "configMap": {"name": c.hook_template_name(name)}}
        ],
    }
    if not novolume:
        spec = {"nodeSelector": {"kubernetes.io/hostname": node}, **spec}
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
        "containerMode": container_mode_values,
        "template": {
            "metadata": {"labels": {c.LABEL_SCALE_SET: name, c.LABEL_PART_OF: c.PART_OF}},
            "spec": spec,
        },
        "listenerTemplate": listener_template(),
    }
    if github_ca_config_map:
        values["githubServerTLS"] = {
            "certificateFrom": {
                "configMapKeyRef": {"name": github_ca_config_map, "key": c.GITHUB_CA_KEY}
            },
            "runnerMountPath": c.GITHUB_CA_DIR,
        }
    return values
