"""The runner pod the gha-runner-scale-set chart 0.14.2 renders from its values.

A pure model of ``charts/gha-runner-scale-set/templates/autoscalingrunnerset.yaml`` and
``_helpers.tpl`` at tag ``gha-runner-scale-set-0.14.2`` (Kubernetes ≥ 1.29: the dind daemon is
a native sidecar init container), for a ``kubernetes:helm.sh/v3:Release`` (or a Chart whose
inputs are visible) whose rendered AutoscalingRunnerSet a preview does not show. It is the one
model of that chart in the pack; ``tests/test_policy_chart_model.py`` compares its pods with
what the real chart renders for every container mode (recorded with helm's Go library in
tests/data/upstream-charts-0.14.2/ by scripts/record_chart_cases.py).

* ``template.spec`` is copied but for ``containers``, ``volumes``, ``initContainers`` and
  ``serviceAccountName``; ``restartPolicy`` defaults to ``Never``; the service account is
  ``<scale set>-gha-rs-kube-mode`` in the kubernetes modes, ``...-no-permission`` otherwise,
  unless the values name one;
* the ``runner`` container gets, unless it sets them: ``kubernetes``: the hook 0.7 entry
  point, ``ACTIONS_RUNNER_POD_NAME``, ``ACTIONS_RUNNER_REQUIRE_JOB_CONTAINER=true`` and the
  ``work`` mount (an ephemeral volume from ``kubernetesModeWorkVolumeClaim`` unless the values
  give a ``work`` volume); ``kubernetes-novolume``: hook 0.8's entry point, the same two and
  ``ACTIONS_RUNNER_IMAGE`` (its own image), no work volume (``volumes: []`` when the values
  give none); ``dind``: ``DOCKER_HOST``,
  ``RUNNER_WAIT_FOR_DOCKER_IN_SECONDS``, the ``work`` and ``dind-sock`` mounts, the privileged
  ``dind`` daemon and the ``init-dind-externals`` copy;
* with ``githubServerTLS.runnerMountPath``, in every mode: ``NODE_EXTRA_CA_CERTS``,
  ``RUNNER_UPDATE_CA_CERTS=1``, the certificate's ``subPath`` mount and its ConfigMap volume.

Dicts in, dicts out; unknown values (preview) stay :data:`~.values.UNKNOWN`.
"""

from __future__ import annotations

import copy
import posixpath
from collections.abc import Mapping
from typing import Any, Final

from ._constants import (
    CONTAINER_MODE_KUBERNETES,
    CONTAINER_MODE_NOVOLUME,
    ENV_CONTAINER_HOOKS,
    ENV_IMAGE,
    ENV_POD_NAME,
    ENV_REQUIRE_JOB_CONTAINER,
    RUNNER_CONTAINER_NAME,
    RUNNER_WORK_DIR,
)
from .hook_merge import HOOK_MODES, HOOK_VERSIONS
from .values import UNKNOWN, as_list, as_mapping, as_str, get_in, is_unknown

__all__ = [
    "DIND_CONTAINER",
    "DIND_INIT_CONTAINER",
    "DIND_SOCK_VOLUME",
    "ENV_DOCKER_HOST",
    "render_scale_set_values",
]

#: Runner env of dind mode: the daemon's socket.
ENV_DOCKER_HOST: Final = "DOCKER_HOST"
#: Volume of the dind daemon's socket, mounted at ``/var/run``.
DIND_SOCK_VOLUME: Final = "dind-sock"
#: The dind daemon the chart adds (a native sidecar init container).
DIND_CONTAINER: Final = "dind"
#: The init container that copies the runner's externals for dind.
DIND_INIT_CONTAINER: Final = "init-dind-externals"

_DEFAULT_RUNNER_IMAGE: Final = "ghcr.io/actions/actions-runner:latest"
_BASE_NAME: Final = "gha-rs"
_WORK: Final = "work"
_WORK_MOUNT: Final = {"name": _WORK, "mountPath": RUNNER_WORK_DIR}
_TLS_VOLUME: Final = "github-server-tls-cert"
_DIND_EXTERNALS: Final = "dind-externals"
_DOCKER_SOCKET: Final = "unix:///var/run/docker.sock"


def _helm_merge(base: Any, override: Any) -> Any:
    """Helm's values merge: mappings merge key by key, anything else replaces."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = _helm_merge(base.get(key), value)
        return merged
    return copy.deepcopy(override)


def _ensure(container: dict[str, Any], field: str, item: dict[str, Any]) -> None:
    """Append ``item`` to ``env``/``volumeMounts`` unless one of that name is there already."""
    items = container.get(field)
    if is_unknown(items):
        return
    items = list(as_list(items))
    if not any(isinstance(i, dict) and i.get("name") == item["name"] for i in items):
        items.append(item)
    container[field] = items


def _service_account(values: Mapping[str, Any], release: str, mode: Any) -> Any:
    """``serviceAccountName``: the values' one, else the chart's for the mode."""
    named = get_in(values, "template", "spec", "serviceAccountName")
    if named:
        return named
    scale_set = as_str(values.get("runnerScaleSetName")) or release
    fullname = f"{scale_set}-{_BASE_NAME}"[:63].rstrip("-").replace("_", "-")
    return f"{fullname}-kube-mode" if mode in HOOK_MODES else f"{fullname}-no-permission"


def _tls(values: Mapping[str, Any]) -> tuple[str, str, str] | None:
    """``(file path, ConfigMap, key)`` of a certificate mounted into the runner, if any."""
    config = as_mapping(values.get("githubServerTLS")) or {}
    mount_path = as_str(config.get("runnerMountPath"))
    if not mount_path:
        return None
    ref = as_mapping(get_in(config, "certificateFrom", "configMapKeyRef")) or {}
    key, name = str(ref.get("key", "")), str(ref.get("name", ""))
    return posixpath.normpath(f"{mount_path}/{key}"), name, key


def _add_tls(runner: dict[str, Any], tls: tuple[str, str, str]) -> None:
    """The certificate's env and mount on the runner container."""
    path, _, key = tls
    _ensure(runner, "env", {"name": "NODE_EXTRA_CA_CERTS", "value": path})
    _ensure(runner, "env", {"name": "RUNNER_UPDATE_CA_CERTS", "value": "1"})
    _ensure(runner, "volumeMounts", {"name": _TLS_VOLUME, "mountPath": path, "subPath": key})


def _dind(runner: dict[str, Any]) -> list[dict[str, Any]]:
    """``dind-init-container`` and ``dind-container`` (native sidecar)."""
    return [
        {
            "name": DIND_INIT_CONTAINER,
            "image": runner.get("image"),
            "command": ["cp"],
            "args": ["-r", "/home/runner/externals/.", "/home/runner/tmpDir/"],
            "volumeMounts": [{"name": _DIND_EXTERNALS, "mountPath": "/home/runner/tmpDir"}],
        },
        {
            "name": DIND_CONTAINER,
            "image": "docker:dind",
            "args": [
                "dockerd",
                "--host=unix:///var/run/docker.sock",
                "--group=$(DOCKER_GROUP_GID)",
            ],
            "env": [{"name": "DOCKER_GROUP_GID", "value": "123"}],
            "securityContext": {"privileged": True},
            "restartPolicy": "Always",
            "startupProbe": {
                "exec": {"command": ["docker", "info"]},
                "initialDelaySeconds": 0,
                "failureThreshold": 24,
                "periodSeconds": 5,
            },
            "volumeMounts": [
                _WORK_MOUNT,
                {"name": DIND_SOCK_VOLUME, "mountPath": "/var/run"},
                {"name": _DIND_EXTERNALS, "mountPath": "/home/runner/externals"},
            ],
        },
    ]


def _runner_env(runner: dict[str, Any], mode: Any) -> None:
    """What each mode adds to the runner container (before the TLS env)."""
    if mode == "dind":
        _ensure(runner, "env", {"name": ENV_DOCKER_HOST, "value": _DOCKER_SOCKET})
        _ensure(runner, "env", {"name": "RUNNER_WAIT_FOR_DOCKER_IN_SECONDS", "value": "120"})
        _ensure(runner, "volumeMounts", dict(_WORK_MOUNT))
        _ensure(runner, "volumeMounts", {"name": DIND_SOCK_VOLUME, "mountPath": "/var/run"})
        return
    if mode not in HOOK_MODES:
        return
    hooks = next(hook.entry_point for hook in HOOK_VERSIONS if hook.container_mode == mode)
    _ensure(runner, "env", {"name": ENV_CONTAINER_HOOKS, "value": hooks})
    pod_name = {"fieldRef": {"fieldPath": "metadata.name"}}
    _ensure(runner, "env", {"name": ENV_POD_NAME, "valueFrom": pod_name})
    _ensure(runner, "env", {"name": ENV_REQUIRE_JOB_CONTAINER, "value": "true"})
    if mode == CONTAINER_MODE_NOVOLUME:
        image = runner.get("image")
        value = image if isinstance(image, str) or is_unknown(image) else ""
        _ensure(runner, "env", {"name": ENV_IMAGE, "value": value})
    else:
        _ensure(runner, "volumeMounts", dict(_WORK_MOUNT))


def _volumes(
    merged: Mapping[str, Any], mode: Any, tls: tuple[str, str, str] | None
) -> list[dict[str, Any]]:
    """The pod's volumes: the certificate's, the mode's, the values' (``work`` first)."""
    given = [copy.deepcopy(v) for v in as_list(get_in(merged, "template", "spec", "volumes"))]
    work = [v for v in given if isinstance(v, dict) and v.get("name") == _WORK]
    others = [v for v in given if not (isinstance(v, dict) and v.get("name") == _WORK)]
    volumes: list[dict[str, Any]] = []
    if tls is not None:
        _, name, key = tls
        items = [{"key": key, "path": key}]
        volumes.append({"name": _TLS_VOLUME, "configMap": {"name": name, "items": items}})
    if mode == "dind":
        volumes += [
            {"name": DIND_SOCK_VOLUME, "emptyDir": {}},
            {"name": _DIND_EXTERNALS, "emptyDir": {}},
        ]
        volumes += work or [{"name": _WORK, "emptyDir": {}}]
        return volumes + others
    if mode == CONTAINER_MODE_KUBERNETES:
        claim = as_mapping(get_in(merged, "containerMode", "kubernetesModeWorkVolumeClaim"))
        spec = {"spec": claim or {}}
        return (
            volumes
            + (work or [{"name": _WORK, "ephemeral": {"volumeClaimTemplate": spec}}])
            + others
        )
    return volumes + given


def render_scale_set_values(
    values: Mapping[str, Any], release: str = "gha-runner-scale-set"
) -> tuple[dict[str, Any], Any, set[str]]:
    """The runner pod the chart renders from ``values`` for release ``release``.

    Returns ``(pod, mode, chart_added)``: the pod (``metadata``, ``spec``), the container mode
    (``""`` for none, UNKNOWN in a preview), and the names of the containers the chart adds
    for that mode (the user never declares them).
    """
    defaults = {
        "template": {
            "spec": {
                "containers": [
                    {
                        "name": RUNNER_CONTAINER_NAME,
                        "image": _DEFAULT_RUNNER_IMAGE,
                        "command": ["/home/runner/run.sh"],
                    }
                ]
            }
        }
    }
    merged = _helm_merge(defaults, dict(values))
    mode = get_in(merged, "containerMode", "type")
    mode = UNKNOWN if is_unknown(mode) else (mode or "")
    template = as_mapping(merged.get("template")) or {}
    tspec = as_mapping(template.get("spec")) or {}
    skip = ("containers", "volumes", "initContainers", "serviceAccountName")
    spec: dict[str, Any] = {k: copy.deepcopy(v) for k, v in tspec.items() if k not in skip}
    spec.setdefault("restartPolicy", "Never")
    spec["serviceAccountName"] = _service_account(merged, release, mode)
    containers = [copy.deepcopy(c) for c in as_list(tspec.get("containers")) if isinstance(c, dict)]
    runner = next((c for c in containers if c.get("name") == RUNNER_CONTAINER_NAME), None)
    init = [copy.deepcopy(c) for c in as_list(tspec.get("initContainers"))]
    tls = _tls(merged)
    added: set[str] = set()
    if runner is not None:
        _runner_env(runner, mode)
        if tls is not None:
            _add_tls(runner, tls)
        if mode in (*HOOK_MODES, "dind"):
            # The chart renders the runner first, then the others (dind: but a "dind" one).
            others = [c for c in containers if c is not runner]
            if mode == "dind":
                others = [c for c in others if c.get("name") != DIND_CONTAINER]
            containers = [runner, *others]
    if mode == "dind" and runner is not None:
        init = [*_dind(runner), *init]
        added = {DIND_INIT_CONTAINER, DIND_CONTAINER}
    spec["containers"] = containers
    if init:
        spec["initContainers"] = init
    volumes = _volumes(merged, mode, tls)
    if volumes or mode == CONTAINER_MODE_NOVOLUME:
        spec["volumes"] = volumes
    pod = {"metadata": copy.deepcopy(as_mapping(template.get("metadata")) or {}), "spec": spec}
    return pod, mode, added
