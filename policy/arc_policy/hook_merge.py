"""The job pod that runner-container-hooks 0.7 creates, and how it merges a hook template.

A pure model of ``packages/k8s`` in actions/runner-container-hooks 0.7 (shipped in the runner
image at ``/home/runner/k8s``): ``prepare-job`` builds the ``job`` container (and one container
per workflow service) with ``createContainerSpec``, then ``createPod`` builds the pod around them
and merges the hook template (``ACTIONS_RUNNER_CONTAINER_HOOK_TEMPLATE``) into it:

* ``metadata``: only ``labels`` and ``annotations`` are taken, key by key (``mergeObjectMeta``);
* ``spec.containers``: an entry named ``$<name>`` is merged into the hook's container ``<name>``
  (``$job`` into ``job``, ``$redis`` into the service container ``redis``): its ``env``,
  ``volumeMounts`` and ``ports`` are appended, ``name`` and ``image`` are ignored, every other
  field replaces the hook's (``mergeContainerWithOptions``); entries without the ``$`` prefix are
  appended as extra containers (sidecars); ``$`` entries that match no container are dropped;
* ``spec.volumes`` is appended to the hook's ``work`` volume;
* every other ``spec`` field *replaces* the hook's (``mergePodSpecWithOptions``): a template
  ``spec.securityContext``, ``initContainers`` or ``nodeName`` wins outright.

The hook pins the pod to the runner's node with ``spec.nodeName`` (or, with
``ACTIONS_RUNNER_USE_KUBE_SCHEDULER=true``, a required node affinity), sets
``restartPolicy: Never``, mounts the runner's ``work`` claim and sets no ``securityContext``,
no ``serviceAccountName`` and no ``automountServiceAccountToken``.

Dicts in, dicts out; no Pulumi imports: the program's own unit tests use these functions to
validate the job pods their hook templates produce.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any, Final

__all__ = [
    "DEFAULT_ENTRY_POINT",
    "DEFAULT_ENTRY_POINT_ARGS",
    "EXTENSION_PREFIX",
    "HOOK_JOB_CONTAINER",
    "RUNNER_POD_LABEL",
    "WORK_VOLUME",
    "base_job_pod",
    "container_ports",
    "effective_job_pod",
    "job_pod_name",
    "merge_container",
    "merge_job_pod",
    "service_container_name",
    "template_service_names",
    "work_claim_name",
]

#: Name of the job container the hook creates (``JOB_CONTAINER_NAME`` in hooks/constants.ts).
HOOK_JOB_CONTAINER: Final = "job"
#: Prefix of template containers merged into a hook container (``CONTAINER_EXTENSION_PREFIX``).
EXTENSION_PREFIX: Final = "$"
#: Name of the runner work volume in the job pod (``POD_VOLUME_NAME``).
WORK_VOLUME: Final = "work"
#: Label the hook puts on every pod it creates; its value is the runner pod's name.
RUNNER_POD_LABEL: Final = "runner-pod"
#: Command of a job container whose workflow gives no entry point.
DEFAULT_ENTRY_POINT: Final = "tail"
#: Arguments of :data:`DEFAULT_ENTRY_POINT`.
DEFAULT_ENTRY_POINT_ARGS: Final = ("-f", "/dev/null")

_MAX_POD_NAME_LENGTH: Final = 63
_JOB_POD_SUFFIX: Final = "-workflow"


def job_pod_name(runner_pod_name: str) -> str:
    """Name of the job pod of a runner pod: ``<runner-pod>-workflow``, at most 63 characters."""
    return runner_pod_name[: _MAX_POD_NAME_LENGTH - len(_JOB_POD_SUFFIX)] + _JOB_POD_SUFFIX


def work_claim_name(runner_pod_name: str, claim_name: str | None = None) -> str:
    """Claim of the runner's work volume: ``ACTIONS_RUNNER_CLAIM_NAME`` or ``<runner-pod>-work``."""
    return claim_name or f"{runner_pod_name}-work"


def service_container_name(image: str) -> str:
    """Container name the hook gives a workflow service: the image's last path part, untagged.

    ``generateContainerName``: ``ghcr.io/acme/redis:7`` → ``redis``.
    """
    name = image.rsplit("/", maxsplit=1)[-1].split(":", maxsplit=1)[0]
    if not name:
        raise ValueError(f"image definition {image!r} is invalid")
    return name


def container_ports(port_mappings: Sequence[str]) -> list[dict[str, Any]]:
    """Container ports from workflow port mappings (``containerPorts``).

    ``"80"`` → container port 80; ``"8080:80"`` → host port 8080 to container port 80;
    ``"53/udp"`` sets the protocol. A host port comes from the *workflow*, not the template.
    """
    ports: list[dict[str, Any]] = []
    for definition in port_mappings:
        port_proto = definition.split("/")
        if len(port_proto) > 2:
            raise ValueError(f"unexpected port format: {definition!r}")
        protocol = port_proto[1].upper() if len(port_proto) == 2 else "TCP"
        port: dict[str, Any] = {"protocol": protocol}
        parts = port_proto[0].split(":")
        if len(parts) > 2:
            raise ValueError(f"ports should have at most one ':' separator: {definition!r}")
        numbers = [int(part) for part in parts]
        if any(not 1 <= number <= 65535 for number in numbers):
            raise ValueError(f"port out of range: {definition!r}")
        if len(numbers) == 2:
            port["hostPort"] = numbers[0]
        port["containerPort"] = numbers[-1]
        ports.append(port)
    return ports


def _container(
    name: str,
    image: str,
    *,
    job: bool,
    env: Mapping[str, str] | None,
    working_dir: str | None,
    entry_point: str | None,
    entry_point_args: Sequence[str] | None,
    port_mappings: Sequence[str],
) -> dict[str, Any]:
    """The container ``createContainerSpec`` builds before the template is merged in."""
    if job and not entry_point:
        entry_point, entry_point_args = DEFAULT_ENTRY_POINT, DEFAULT_ENTRY_POINT_ARGS
    container: dict[str, Any] = {
        "name": name,
        "image": image,
        "ports": container_ports(port_mappings),
    }
    if working_dir:
        container["workingDir"] = working_dir
    if entry_point:
        container["command"] = [entry_point]
    if entry_point_args:
        container["args"] = list(entry_point_args)
    variables = dict(env or {})
    container["env"] = [
        {"name": key, "value": value} for key, value in variables.items() if value and key != "HOME"
    ]
    container["env"].append({"name": "GITHUB_ACTIONS", "value": "true"})
    if "CI" not in variables:
        container["env"].append({"name": "CI", "value": "true"})
    mounts: list[dict[str, Any]] = [{"name": WORK_VOLUME, "mountPath": "/__w"}]
    if job:
        mounts += [
            {"name": WORK_VOLUME, "mountPath": "/__e", "subPath": "externals"},
            {"name": WORK_VOLUME, "mountPath": "/github/home", "subPath": "_temp/_github_home"},
            {
                "name": WORK_VOLUME,
                "mountPath": "/github/workflow",
                "subPath": "_temp/_github_workflow",
            },
        ]
    container["volumeMounts"] = mounts
    return container


def base_job_pod(
    runner_pod_name: str = "runner-pod",
    *,
    node_name: str = "runner-node",
    job_image: str = "ubuntu:24.04",
    job_env: Mapping[str, str] | None = None,
    working_dir: str | None = None,
    entry_point: str | None = None,
    entry_point_args: Sequence[str] | None = None,
    port_mappings: Sequence[str] = (),
    services: Sequence[str | Mapping[str, Any]] = (),
    claim_name: str | None = None,
    use_kube_scheduler: bool = False,
    registry_secret: str | None = None,
) -> dict[str, Any]:
    """The job pod ``prepare-job`` of hook 0.7 creates, before any template is merged.

    ``services`` are workflow services, each an image (``"redis:7"``) or a mapping with
    ``image`` and optional ``env``, ``entryPoint``, ``entryPointArgs``, ``portMappings``.
    ``use_kube_scheduler`` models ``ACTIONS_RUNNER_USE_KUBE_SCHEDULER=true`` (node affinity
    instead of ``nodeName``); ``registry_secret`` the pull secret the hook creates for a
    workflow's private job image.
    """
    containers = [
        _container(
            HOOK_JOB_CONTAINER,
            job_image,
            job=True,
            env=job_env,
            working_dir=working_dir,
            entry_point=entry_point,
            entry_point_args=entry_point_args,
            port_mappings=port_mappings,
        )
    ]
    for service in services:
        spec: Mapping[str, Any] = {"image": service} if isinstance(service, str) else service
        image = str(spec["image"])
        containers.append(
            _container(
                service_container_name(image),
                image,
                job=False,
                env=spec.get("env"),
                working_dir=None,
                entry_point=spec.get("entryPoint"),
                entry_point_args=spec.get("entryPointArgs"),
                port_mappings=spec.get("portMappings", ()),
            )
        )
    pod_spec: dict[str, Any] = {"containers": containers, "restartPolicy": "Never"}
    if use_kube_scheduler:
        pod_spec["affinity"] = {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {
                                    "key": "kubernetes.io/hostname",
                                    "operator": "In",
                                    "values": [node_name],
                                }
                            ]
                        }
                    ]
                }
            }
        }
    else:
        pod_spec["nodeName"] = node_name
    pod_spec["volumes"] = [
        {
            "name": WORK_VOLUME,
            "persistentVolumeClaim": {"claimName": work_claim_name(runner_pod_name, claim_name)},
        }
    ]
    if registry_secret:
        pod_spec["imagePullSecrets"] = [{"name": registry_secret}]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": job_pod_name(runner_pod_name),
            "labels": {RUNNER_POD_LABEL: runner_pod_name},
            "annotations": {},
        },
        "spec": pod_spec,
    }


def _append(base: Any, extra: Any) -> Any:
    """``mergeLists``: ``base`` (or a new list) with the items of ``extra`` appended."""
    merged = list(base) if isinstance(base, list) else []
    if isinstance(extra, list):
        merged.extend(copy.deepcopy(extra))
    return merged


def merge_container(base: Mapping[str, Any], extension: Mapping[str, Any]) -> dict[str, Any]:
    """Merge one ``$<name>`` template container into the hook's container of that name.

    ``mergeContainerWithOptions``: ``name`` and ``image`` are never overridden; ``env`` is
    appended; ``volumeMounts`` and ``ports`` are appended when set (an explicit null clears
    them, as in the hook); every other field replaces the hook's.
    """
    merged = copy.deepcopy(dict(base))
    for key, value in extension.items():
        if key in ("name", "image"):
            continue
        if key == "env":
            merged["env"] = _append(merged.get("env"), value)
        elif key in ("volumeMounts", "ports") and value is not None:
            merged[key] = _append(merged.get(key), value)
        elif value is None:
            merged.pop(key, None)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def template_service_names(template: Mapping[str, Any] | None) -> list[str]:
    """Names of the workflow services a template extends (its ``$<name>`` entries but ``$job``)."""
    names: list[str] = []
    for entry in _template_containers(template):
        name = entry.get("name")
        if (
            isinstance(name, str)
            and name.startswith(EXTENSION_PREFIX)
            and name != EXTENSION_PREFIX + HOOK_JOB_CONTAINER
        ):
            names.append(name[len(EXTENSION_PREFIX) :])
    return names


def _template_containers(template: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    """The container entries of a template's ``spec.containers`` that are mappings."""
    spec = template.get("spec") if isinstance(template, Mapping) else None
    containers = spec.get("containers") if isinstance(spec, Mapping) else None
    if not isinstance(containers, list):
        return []
    return [entry for entry in containers if isinstance(entry, Mapping)]


def merge_job_pod(base: Mapping[str, Any], template: Mapping[str, Any] | None) -> dict[str, Any]:
    """The job pod hook 0.7 sends to the API server: ``base`` with ``template`` merged in.

    ``base`` is a pod from :func:`base_job_pod`; ``template`` the parsed hook template (a
    PodTemplateSpec: ``metadata`` and ``spec``), or ``None`` when the runner has none.
    Neither argument is modified.
    """
    pod = copy.deepcopy(dict(base))
    if not isinstance(template, Mapping):
        return pod
    spec: dict[str, Any] = pod.setdefault("spec", {})
    extensions = _template_containers(template)

    # createContainerSpec: each hook container takes the first `$<its name>` entry.
    containers = spec.get("containers") or []
    for index, container in enumerate(containers):
        wanted = EXTENSION_PREFIX + str(container.get("name"))
        match = next((entry for entry in extensions if entry.get("name") == wanted), None)
        if match is not None:
            containers[index] = merge_container(container, match)

    # mergeObjectMeta: labels and annotations, key by key; nothing else from metadata.
    meta = template.get("metadata")
    if isinstance(meta, Mapping):
        pod_meta: dict[str, Any] = pod.setdefault("metadata", {})
        for field in ("labels", "annotations"):
            values = meta.get(field)
            if isinstance(values, Mapping):
                target = pod_meta.get(field)
                target = dict(target) if isinstance(target, Mapping) else {}
                target.update(copy.deepcopy(dict(values)))
                pod_meta[field] = target

    # mergePodSpecWithOptions: containers and volumes appended, everything else replaced.
    template_spec = template.get("spec")
    if not isinstance(template_spec, Mapping):
        return pod
    for key, value in template_spec.items():
        if key == "containers":
            if isinstance(value, list):
                spec["containers"] = list(spec.get("containers") or []) + [
                    copy.deepcopy(entry)
                    for entry in value
                    if not (
                        isinstance(entry, Mapping)
                        and str(entry.get("name", "")).startswith(EXTENSION_PREFIX)
                    )
                ]
        elif key == "volumes" and value is not None:
            spec["volumes"] = _append(spec.get("volumes"), value)
        elif value is None:
            spec.pop(key, None)
        else:
            spec[key] = copy.deepcopy(value)
    return pod


def effective_job_pod(template: Mapping[str, Any] | None, **base_options: Any) -> dict[str, Any]:
    """:func:`merge_job_pod` of :func:`base_job_pod` and ``template``.

    Unless ``services`` is given in ``base_options``, one workflow service is modelled for every
    ``$<service>`` entry of the template, so that those entries are merged and checked too.
    """
    base_options.setdefault("services", template_service_names(template))
    return merge_job_pod(base_job_pod(**base_options), template)
