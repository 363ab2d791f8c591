"""The pods runner-container-hooks 0.7 and 0.8 create, and how they merge a hook template.

A pure model of ``packages/k8s`` in actions/runner-container-hooks, both versions the runner
image ships: **0.7.0** at ``/home/runner/k8s`` (container mode ``kubernetes``) and **0.8.1** at
``/home/runner/k8s-novolume`` (``kubernetes-novolume``). Each hook builds a *base* pod and then
merges the hook template (``ACTIONS_RUNNER_CONTAINER_HOOK_TEMPLATE``) into it. The merge is the
same in both versions (``src/k8s/utils.ts``, identical at v0.7.0 and v0.8.1):

* ``metadata``: only ``labels`` and ``annotations`` are taken, key by key (``mergeObjectMeta``);
* ``spec.containers``: an entry named ``$<name>`` is merged into the hook's container ``<name>``
  (``$job`` into ``job``, ``$redis`` into the service container ``redis``): its ``env``,
  ``volumeMounts`` and ``ports`` are appended, ``name`` and ``image`` are ignored, every other
  field replaces the hook's (``mergeContainerWithOptions``); entries without the ``$`` prefix are
  appended as extra containers (sidecars); ``$`` entries that match no container are dropped;
* ``spec.volumes`` is appended to the hook's volumes (``mergeLists``: not by name, so a template
  volume named like one of the hook's makes the API server reject the pod);
* every other ``spec`` field *replaces* the hook's (``mergePodSpecWithOptions``): a template
  ``spec.securityContext``, ``initContainers`` or ``nodeName`` wins outright.

What differs is the base pods (:class:`HookVersion`):

* **0.7** (``src/k8s/index.ts`` ``createPod``, ``createJob``): the job pod pins itself to the
  runner's node (``nodeName``, or a required node affinity with
  ``ACTIONS_RUNNER_USE_KUBE_SCHEDULER=true``), mounts the runner's ``work`` claim and sets no
  ``securityContext``; a container step runs in a batch Job whose pod template takes the
  template too (``createJob``; the template's metadata goes on the Job and on its pod).
* **0.8** (``createJobPod``, ``createContainerStepPod``): no claim and no node pin; emptyDir
  ``externals``, ``github`` and ``work`` volumes; the job pod gets ``securityContext: {fsGroup:
  1001}`` and an ``fs-init`` init container (the runner image, ``runAsUser``/``runAsGroup``
  1001 and nothing else) that copies the externals; a container step runs in a bare pod (no
  init container, no securityContext). Every container of one 0.8 job pod shares one
  ``volumeMounts`` list (``CONTAINER_VOLUMES`` is one array the merge appends to), so each
  ``$<name>`` entry's mounts show up in every hook container.

Neither hook sets ``serviceAccountName``, ``automountServiceAccountToken`` or any container
``securityContext``: everything of that kind comes from the template.

Dicts in, dicts out; no Pulumi imports: the program's unit tests and the hook double
(``localcluster/hook_double.py``) use these functions, so the pods the double creates are the
ones the policy pack checks.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from ._constants import (
    CONTAINER_MODE_KUBERNETES,
    CONTAINER_MODE_NOVOLUME,
    ENV_CLAIM_NAME,
    ENV_IMAGE,
    ENV_USE_KUBE_SCHEDULER,
    HOOK_ENTRYPOINT,
    NOVOLUME_HOOK_ENTRYPOINT,
    NOVOLUME_HOOK_FS_GROUP,
    RUNNER_WORK_DIR,
)

__all__ = [
    "DEFAULT_ENTRY_POINT",
    "DEFAULT_ENTRY_POINT_ARGS",
    "DEFAULT_WORKSPACE",
    "EXTENSION_PREFIX",
    "FS_INIT_CONTAINER",
    "HOOK_0_7",
    "HOOK_0_8",
    "HOOK_JOB_CONTAINER",
    "HOOK_MODES",
    "HOOK_VERSIONS",
    "RUNNER_POD_LABEL",
    "WORK_VOLUME",
    "HookVersion",
    "RunnerContext",
    "WorkflowContainer",
    "base_job_pod",
    "container_ports",
    "effective_job_pod",
    "hook_version",
    "job_pod_name",
    "merge_container",
    "merge_job_pod",
    "novolume_job_pod",
    "novolume_step_pod",
    "service_container_name",
    "step_job",
    "step_pod",
    "step_pod_name",
    "template_service_names",
    "work_claim_name",
]

#: Name of the job container the hook creates (``JOB_CONTAINER_NAME`` in hooks/constants.ts).
HOOK_JOB_CONTAINER: Final = "job"
#: Prefix of template containers merged into a hook container (``CONTAINER_EXTENSION_PREFIX``).
EXTENSION_PREFIX: Final = "$"
#: Name of the work volume in the hook's pods (``POD_VOLUME_NAME``, 0.8 ``WORK_VOLUME``).
WORK_VOLUME: Final = "work"
#: Label the hook puts on every pod it creates; its value is the runner pod's name.
RUNNER_POD_LABEL: Final = "runner-pod"
#: Command of a job container whose workflow gives no entry point.
DEFAULT_ENTRY_POINT: Final = "tail"
#: Arguments of :data:`DEFAULT_ENTRY_POINT`.
DEFAULT_ENTRY_POINT_ARGS: Final = ("-f", "/dev/null")
#: ``GITHUB_WORKSPACE`` of a runner in the chart's image (``<work>/<repo>/<repo>``).
DEFAULT_WORKSPACE: Final = f"{RUNNER_WORK_DIR}/repo/repo"
#: Hook 0.8's init container that fills the emptyDir volumes (``createJobPod``).
FS_INIT_CONTAINER: Final = "fs-init"

_MAX_POD_NAME_LENGTH: Final = 63
_JOB_POD_SUFFIX: Final = "-workflow"
_STEP_SUFFIX_LENGTH: Final = 8
_WORK_MOUNT: Final = "/__w"
#: 0.8's other emptyDir volumes (``EXTERNALS_VOLUME_NAME``, ``GITHUB_VOLUME_NAME``).
_EXTERNALS_VOLUME: Final = "externals"
_GITHUB_VOLUME: Final = "github"
#: Image of ``fs-init`` when the runner has no ``ACTIONS_RUNNER_IMAGE``.
_FS_INIT_DEFAULT_IMAGE: Final = "ghcr.io/actions/actions-runner:latest"


@dataclass(frozen=True)
class WorkflowContainer:
    """A container the runner asks the hook for: the job container, a service or a step.

    The runner's ``JobContainerInfo``/``ServiceContainerInfo``/``RunContainerStepArgs``
    (``hooklib``): image, environment, working directory, entry point and port mappings.
    """

    image: str = "ubuntu:24.04"
    env: Mapping[str, str] = field(default_factory=dict)
    working_dir: str | None = None
    entry_point: str | None = None
    entry_point_args: Sequence[str] = ()
    port_mappings: Sequence[str] = ()

    @classmethod
    def of(cls, service: str | Mapping[str, Any]) -> WorkflowContainer:
        """A service from an image (``"redis:7"``) or a mapping with ``image`` and optional
        ``env``, ``entryPoint``, ``entryPointArgs``, ``portMappings``."""
        if isinstance(service, str):
            return cls(image=service)
        return cls(
            image=str(service["image"]),
            env=service.get("env") or {},
            entry_point=service.get("entryPoint"),
            entry_point_args=service.get("entryPointArgs") or (),
            port_mappings=service.get("portMappings") or (),
        )


@dataclass(frozen=True)
class RunnerContext:
    """What the hook reads from its runner pod: its name, node and environment."""

    #: ``ACTIONS_RUNNER_POD_NAME``.
    pod_name: str = "runner-pod"
    #: The runner pod's node (0.7 pins its pods there).
    node_name: str = "runner-node"
    #: ``ACTIONS_RUNNER_CLAIM_NAME`` (0.7; default ``<runner-pod>-work``).
    claim_name: str | None = None
    #: ``ACTIONS_RUNNER_USE_KUBE_SCHEDULER=true`` (0.7: node affinity instead of ``nodeName``).
    use_kube_scheduler: bool = False
    #: ``ACTIONS_RUNNER_IMAGE`` (0.8: the image of ``fs-init``; the chart sets it).
    runner_image: str | None = None
    #: ``GITHUB_WORKSPACE`` of the job.
    workspace: str = DEFAULT_WORKSPACE
    #: Pull secret the hook creates for a workflow's private job image.
    registry_secret: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str], **identity: Any) -> RunnerContext:
        """The context of a runner pod from its runner container's literal env; ``identity``
        gives the other fields (``pod_name``, ``node_name``...)."""
        return cls(
            **identity,
            claim_name=env.get(ENV_CLAIM_NAME) or None,
            use_kube_scheduler=env.get(ENV_USE_KUBE_SCHEDULER, "") == "true",
            runner_image=env.get(ENV_IMAGE) or None,
        )


def job_pod_name(runner_pod_name: str) -> str:
    """Name of the job pod of a runner pod: ``<runner-pod>-workflow``, at most 63 characters."""
    return runner_pod_name[: _MAX_POD_NAME_LENGTH - len(_JOB_POD_SUFFIX)] + _JOB_POD_SUFFIX


def step_pod_name(runner_pod_name: str, suffix: str) -> str:
    """``getStepPodName``: ``<runner-pod>-step-<suffix>`` (the hook's suffix is 8 uuid digits)."""
    keep = _MAX_POD_NAME_LENGTH - (len("-step-") + _STEP_SUFFIX_LENGTH)
    return f"{runner_pod_name[:keep]}-step-{suffix[:_STEP_SUFFIX_LENGTH]}"


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


# --- the containers prepare-job builds (createContainerSpec) -------------------------------


def _mounts_0_7(job: bool) -> list[dict[str, Any]]:
    """0.7 ``containerVolumes``: the work claim, and for the job container its subPaths."""
    mounts: list[dict[str, Any]] = [{"name": WORK_VOLUME, "mountPath": _WORK_MOUNT}]
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
    return mounts


def _mounts_0_8() -> list[dict[str, Any]]:
    """0.8 ``CONTAINER_VOLUMES``: the three emptyDir volumes, for every container alike."""
    return [
        {"name": _EXTERNALS_VOLUME, "mountPath": "/__e"},
        {"name": WORK_VOLUME, "mountPath": _WORK_MOUNT},
        {"name": _GITHUB_VOLUME, "mountPath": "/github"},
    ]


def _container(
    name: str, spec: WorkflowContainer, *, job: bool, mounts: list[dict[str, Any]]
) -> dict[str, Any]:
    """The container ``prepare-job``'s ``createContainerSpec`` builds (before the template)."""
    entry_point, entry_point_args = spec.entry_point, spec.entry_point_args
    if job and not entry_point:
        entry_point, entry_point_args = DEFAULT_ENTRY_POINT, DEFAULT_ENTRY_POINT_ARGS
    container: dict[str, Any] = {
        "name": name,
        "image": spec.image,
        "ports": container_ports(spec.port_mappings),
    }
    if spec.working_dir:
        container["workingDir"] = spec.working_dir
    if entry_point:
        container["command"] = [entry_point]
    if entry_point_args:
        container["args"] = list(entry_point_args)
    variables = dict(spec.env)
    container["env"] = [
        {"name": key, "value": value} for key, value in variables.items() if value and key != "HOME"
    ]
    container["env"].append({"name": "GITHUB_ACTIONS", "value": "true"})
    if "CI" not in variables:
        container["env"].append({"name": "CI", "value": "true"})
    container["volumeMounts"] = mounts
    return container


def _pod(name: str, labels: Mapping[str, str], spec: dict[str, Any]) -> dict[str, Any]:
    """A pod as the hook starts it: a name, its labels, no annotations yet."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": dict(labels), "annotations": {}},
        "spec": spec,
    }


def _node_pin(runner: RunnerContext) -> dict[str, Any]:
    """0.7: ``nodeName`` of the runner's node, or the required affinity ``getPodAffinity``."""
    if not runner.use_kube_scheduler:
        return {"nodeName": runner.node_name}
    term = {
        "matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": [runner.node_name]}
        ]
    }
    return {
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}
            }
        }
    }


def _work_claim(runner: RunnerContext) -> list[dict[str, Any]]:
    """0.7's one volume: the runner's work claim."""
    claim = work_claim_name(runner.pod_name, runner.claim_name)
    return [{"name": WORK_VOLUME, "persistentVolumeClaim": {"claimName": claim}}]


def _empty_dirs() -> list[dict[str, Any]]:
    """0.8's volumes: ``externals``, ``github`` and ``work``, all emptyDir."""
    return [
        {"name": name, "emptyDir": {}} for name in (_EXTERNALS_VOLUME, _GITHUB_VOLUME, WORK_VOLUME)
    ]


def _hook_containers(
    job: WorkflowContainer,
    services: Sequence[WorkflowContainer],
    mounts: Callable[[bool], list[dict[str, Any]]],
) -> list[dict[str, Any]]:
    """The job container, then one container per service."""
    containers = [_container(HOOK_JOB_CONTAINER, job, job=True, mounts=mounts(True))]
    containers += [
        _container(service_container_name(s.image), s, job=False, mounts=mounts(False))
        for s in services
    ]
    return containers


def _job_pod_0_7(
    job: WorkflowContainer, services: Sequence[WorkflowContainer], runner: RunnerContext
) -> dict[str, Any]:
    """0.7 ``createPod`` before the template."""
    spec: dict[str, Any] = {
        "containers": _hook_containers(job, services, _mounts_0_7),
        "restartPolicy": "Never",
        **_node_pin(runner),
        "volumes": _work_claim(runner),
    }
    if runner.registry_secret:
        spec["imagePullSecrets"] = [{"name": runner.registry_secret}]
    return _pod(job_pod_name(runner.pod_name), {RUNNER_POD_LABEL: runner.pod_name}, spec)


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

    ``services`` are workflow services (see :meth:`WorkflowContainer.of`).
    ``use_kube_scheduler`` models ``ACTIONS_RUNNER_USE_KUBE_SCHEDULER=true`` (node affinity
    instead of ``nodeName``); ``registry_secret`` the pull secret the hook creates for a
    workflow's private job image.
    """
    job = WorkflowContainer(
        image=job_image,
        env=job_env or {},
        working_dir=working_dir,
        entry_point=entry_point,
        entry_point_args=entry_point_args or (),
        port_mappings=port_mappings,
    )
    runner = RunnerContext(
        pod_name=runner_pod_name,
        node_name=node_name,
        claim_name=claim_name,
        use_kube_scheduler=use_kube_scheduler,
        registry_secret=registry_secret,
    )
    return _job_pod_0_7(job, [WorkflowContainer.of(s) for s in services], runner)


def _fs_init(runner: RunnerContext) -> dict[str, Any]:
    """0.8's ``fs-init``: moves the runner image's externals into the emptyDir volumes."""
    commands = [
        "mkdir -p /mnt/externals",
        "mkdir -p /mnt/work",
        "mkdir -p /mnt/github",
        "mv /home/runner/externals/* /mnt/externals/",
    ]
    working = "/".join(runner.workspace.split("/")[-2:]) if runner.workspace else ""
    if working:
        commands.append(f"mkdir -p /mnt/work/{working}")
    return {
        "name": FS_INIT_CONTAINER,
        "image": runner.runner_image or _FS_INIT_DEFAULT_IMAGE,
        "command": ["sh", "-c", " && ".join(commands)],
        "securityContext": {
            "runAsGroup": NOVOLUME_HOOK_FS_GROUP,
            "runAsUser": NOVOLUME_HOOK_FS_GROUP,
        },
        "volumeMounts": [
            {"name": _EXTERNALS_VOLUME, "mountPath": "/mnt/externals"},
            {"name": WORK_VOLUME, "mountPath": "/mnt/work"},
            {"name": _GITHUB_VOLUME, "mountPath": "/mnt/github"},
        ],
    }


def _job_pod_0_8(
    job: WorkflowContainer, services: Sequence[WorkflowContainer], runner: RunnerContext
) -> dict[str, Any]:
    """0.8 ``createJobPod`` before the template."""
    spec: dict[str, Any] = {
        "containers": _hook_containers(job, services, lambda _job: _mounts_0_8()),
        "securityContext": {"fsGroup": NOVOLUME_HOOK_FS_GROUP},
        "initContainers": [_fs_init(runner)],
        "restartPolicy": "Never",
        "volumes": _empty_dirs(),
    }
    if runner.registry_secret:
        spec["imagePullSecrets"] = [{"name": runner.registry_secret}]
    return _pod(job_pod_name(runner.pod_name), {RUNNER_POD_LABEL: runner.pod_name}, spec)


# --- the merge (utils.ts, the same in 0.7.0 and 0.8.1) --------------------------------------


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


def _merge_extensions(
    containers: list[dict[str, Any]], extensions: list[Mapping[str, Any]], *, shared_mounts: bool
) -> None:
    """createContainerSpec: each hook container takes the first ``$<its name>`` entry.

    ``shared_mounts`` models 0.8, where every container starts from the one
    ``CONTAINER_VOLUMES`` array and each merge appends to it in place: every container whose
    entry does not null its ``volumeMounts`` ends with the base mounts plus all entries' mounts.
    """
    shared: list[dict[str, Any]] = (
        list(containers[0].get("volumeMounts") or []) if containers else []
    )
    aliased: list[int] = []
    for index, container in enumerate(containers):
        wanted = EXTENSION_PREFIX + str(container.get("name"))
        match = next((entry for entry in extensions if entry.get("name") == wanted), None)
        if match is not None:
            containers[index] = merge_container(container, match)
            if "volumeMounts" in match and match["volumeMounts"] is None:
                continue
            if isinstance(match.get("volumeMounts"), list):
                shared.extend(copy.deepcopy(match["volumeMounts"]))
        aliased.append(index)
    if shared_mounts:
        for index in aliased:
            containers[index]["volumeMounts"] = copy.deepcopy(shared)


def _merge_object_meta(target: dict[str, Any], meta: Any) -> None:
    """``mergeObjectMeta``: labels and annotations, key by key; nothing else from metadata."""
    if not isinstance(meta, Mapping):
        return
    for name in ("labels", "annotations"):
        values = meta.get(name)
        if isinstance(values, Mapping):
            merged = target.get(name)
            merged = dict(merged) if isinstance(merged, Mapping) else {}
            merged.update(copy.deepcopy(dict(values)))
            target[name] = merged


def _merge_pod_spec(spec: dict[str, Any], template_spec: Mapping[str, Any]) -> None:
    """``mergePodSpecWithOptions``: containers and volumes appended, everything else replaced."""
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


def merge_job_pod(
    base: Mapping[str, Any], template: Mapping[str, Any] | None, *, shared_mounts: bool = False
) -> dict[str, Any]:
    """The pod the hook sends to the API server: ``base`` with ``template`` merged in.

    ``base`` is a hook pod before the template (:func:`base_job_pod`, a step pod); ``template``
    the parsed hook template (a PodTemplateSpec: ``metadata`` and ``spec``), or ``None`` when
    the runner has none. ``shared_mounts`` is hook 0.8's shared ``volumeMounts`` list (see
    :func:`novolume_job_pod`). Neither argument is modified.
    """
    pod = copy.deepcopy(dict(base))
    if not isinstance(template, Mapping):
        return pod
    spec: dict[str, Any] = pod.setdefault("spec", {})
    _merge_extensions(
        spec.get("containers") or [], _template_containers(template), shared_mounts=shared_mounts
    )
    _merge_object_meta(pod.setdefault("metadata", {}), template.get("metadata"))
    template_spec = template.get("spec")
    if isinstance(template_spec, Mapping):
        _merge_pod_spec(spec, template_spec)
    return pod


def _services_of(
    template: Mapping[str, Any] | None, services: Sequence[WorkflowContainer] | None
) -> Sequence[WorkflowContainer]:
    """The given services, else one per ``$<service>`` entry of the template."""
    if services is not None:
        return services
    return [WorkflowContainer(image=name) for name in template_service_names(template)]


def effective_job_pod(template: Mapping[str, Any] | None, **base_options: Any) -> dict[str, Any]:
    """:func:`merge_job_pod` of :func:`base_job_pod` (hook 0.7) and ``template``.

    Unless ``services`` is given in ``base_options``, one workflow service is modelled for every
    ``$<service>`` entry of the template, so that those entries are merged and checked too.
    """
    base_options.setdefault("services", template_service_names(template))
    return merge_job_pod(base_job_pod(**base_options), template)


def _job_pod_0_7_merged(
    template: Mapping[str, Any] | None,
    job: WorkflowContainer,
    services: Sequence[WorkflowContainer] | None,
    runner: RunnerContext,
) -> dict[str, Any]:
    """Hook 0.7's job pod for ``template``."""
    return merge_job_pod(_job_pod_0_7(job, _services_of(template, services), runner), template)


def novolume_job_pod(
    template: Mapping[str, Any] | None,
    job: WorkflowContainer = WorkflowContainer(),
    services: Sequence[WorkflowContainer] | None = None,
    runner: RunnerContext = RunnerContext(),
) -> dict[str, Any]:
    """The job pod hook 0.8 (``kubernetes-novolume``) creates: ``createJobPod`` + ``template``.

    ``services`` default to one per ``$<service>`` entry of the template. The pod has
    ``fs-init`` and ``fsGroup: 1001`` unless the template's ``initContainers`` or
    ``securityContext`` replace them.
    """
    base = _job_pod_0_8(job, _services_of(template, services), runner)
    return merge_job_pod(base, template, shared_mounts=True)


# --- container steps (run-container-step) ---------------------------------------------------


def _step_container_0_7(
    step: WorkflowContainer, runner: RunnerContext, secret: str | None
) -> dict[str, Any]:
    """0.7 ``run-container-step``'s ``createContainerSpec``: the container-action mounts."""
    relative = runner.workspace[runner.workspace.rfind("_work/") + len("_work/") :]
    container: dict[str, Any] = {"name": HOOK_JOB_CONTAINER, "image": step.image}
    if step.working_dir:
        container["workingDir"] = step.working_dir
    if step.entry_point:
        container["command"] = [step.entry_point]
    if step.entry_point_args:
        container["args"] = list(step.entry_point_args)
    if secret:
        container["envFrom"] = [{"secretRef": {"name": secret, "optional": False}}]
    container["volumeMounts"] = [
        {"name": WORK_VOLUME, "mountPath": _WORK_MOUNT},
        {"name": WORK_VOLUME, "mountPath": "/github/workspace", "subPath": relative},
        {
            "name": WORK_VOLUME,
            "mountPath": "/github/file_commands",
            "subPath": "_temp/_runner_file_commands",
        },
        {"name": WORK_VOLUME, "mountPath": "/github/home", "subPath": "_temp/_github_home"},
        {"name": WORK_VOLUME, "mountPath": "/github/workflow", "subPath": "_temp/_github_workflow"},
    ]
    return container


def step_job(
    template: Mapping[str, Any] | None,
    step: WorkflowContainer = WorkflowContainer(working_dir="/github/workspace"),
    runner: RunnerContext = RunnerContext(),
    *,
    suffix: str = "0" * _STEP_SUFFIX_LENGTH,
    secret: str | None = None,
) -> dict[str, Any]:
    """The batch Job hook 0.7 creates for a container step (``createJob``), template merged.

    ``secret`` is the Secret holding the step's environment (``createSecretForEnvs``). The
    template's metadata goes on the Job and on its pod template; its spec into the pod's.
    """
    pod_spec: dict[str, Any] = {
        "containers": [_step_container_0_7(step, runner, secret)],
        "restartPolicy": "Never",
        **_node_pin(runner),
        "volumes": _work_claim(runner),
    }
    pod = merge_job_pod({"metadata": {"labels": {}, "annotations": {}}, "spec": pod_spec}, template)
    job_meta: dict[str, Any] = {"labels": {RUNNER_POD_LABEL: runner.pod_name}, "annotations": {}}
    if isinstance(template, Mapping):
        _merge_object_meta(job_meta, template.get("metadata"))
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": step_pod_name(runner.pod_name, suffix), **job_meta},
        "spec": {
            "ttlSecondsAfterFinished": 300,
            "backoffLimit": 0,
            "template": {"metadata": pod["metadata"], "spec": pod["spec"]},
        },
    }


def step_pod(
    template: Mapping[str, Any] | None,
    step: WorkflowContainer = WorkflowContainer(working_dir="/github/workspace"),
    runner: RunnerContext = RunnerContext(),
) -> dict[str, Any]:
    """The pod of hook 0.7's container-step Job (:func:`step_job`), as the Job controller
    creates it from the pod template."""
    template_part = step_job(template, step, runner)["spec"]["template"]
    return {"apiVersion": "v1", "kind": "Pod", **copy.deepcopy(template_part)}


def novolume_step_pod(
    template: Mapping[str, Any] | None,
    step: WorkflowContainer = WorkflowContainer(),
    runner: RunnerContext = RunnerContext(),
    *,
    suffix: str = "0" * _STEP_SUFFIX_LENGTH,
) -> dict[str, Any]:
    """The pod hook 0.8 creates for a container step (``createContainerStepPod``).

    Its one container is ``job``: the step's image, ``tail -f /dev/null`` in ``/__w`` (the
    hook copies the workspace in and execs the step), ``$job`` merged in; emptyDir volumes; no
    init container and no securityContext of its own.
    """
    container: dict[str, Any] = {
        "name": HOOK_JOB_CONTAINER,
        "image": step.image,
        "workingDir": _WORK_MOUNT,
        "command": [DEFAULT_ENTRY_POINT],
        "args": list(DEFAULT_ENTRY_POINT_ARGS),
        "volumeMounts": _mounts_0_8(),
    }
    spec = {"containers": [container], "restartPolicy": "Never", "volumes": _empty_dirs()}
    base = _pod(step_pod_name(runner.pod_name, suffix), {RUNNER_POD_LABEL: runner.pod_name}, spec)
    return merge_job_pod(base, template, shared_mounts=True)


# --- the versions ---------------------------------------------------------------------------

#: ``(template, job container, services, runner) -> job pod``; services ``None``: one per
#: ``$<service>`` entry of the template.
JobPodBuilder = Callable[
    [
        Mapping[str, Any] | None,
        WorkflowContainer,
        Sequence[WorkflowContainer] | None,
        RunnerContext,
    ],
    dict[str, Any],
]
#: ``(template, step container, runner) -> step pod``.
StepPodBuilder = Callable[
    [Mapping[str, Any] | None, WorkflowContainer, RunnerContext], dict[str, Any]
]


@dataclass(frozen=True)
class HookVersion:
    """One runner-container-hooks release the runner image ships, and the pods it creates."""

    #: Release tag without the ``v``, e.g. ``0.7.0``.
    version: str
    #: ``ACTIONS_RUNNER_CONTAINER_HOOKS`` that selects it.
    entry_point: str
    #: gha-runner-scale-set ``containerMode.type`` that sets that entry point.
    container_mode: str
    #: The job pod (``prepare-job``).
    job_pod: JobPodBuilder
    #: The pod of a container step (``run-container-step``).
    step_pod: StepPodBuilder

    def __str__(self) -> str:
        """``runner-container-hooks 0.7.0``."""
        return f"runner-container-hooks {self.version}"


#: Hook 0.7.0 at ``/home/runner/k8s`` (``kubernetes`` mode).
HOOK_0_7: Final = HookVersion(
    "0.7.0",
    HOOK_ENTRYPOINT,
    CONTAINER_MODE_KUBERNETES,
    _job_pod_0_7_merged,
    step_pod,
)
#: Hook 0.8.1 at ``/home/runner/k8s-novolume`` (``kubernetes-novolume`` mode).
HOOK_0_8: Final = HookVersion(
    "0.8.1",
    NOVOLUME_HOOK_ENTRYPOINT,
    CONTAINER_MODE_NOVOLUME,
    novolume_job_pod,
    novolume_step_pod,
)
#: Both hooks of the runner image.
HOOK_VERSIONS: Final = (HOOK_0_7, HOOK_0_8)
#: The container modes that run a hook (``kubernetes``, ``kubernetes-novolume``).
HOOK_MODES: Final = tuple(hook.container_mode for hook in HOOK_VERSIONS)


def hook_version(entry_point: str | None) -> HookVersion | None:
    """The hook an ``ACTIONS_RUNNER_CONTAINER_HOOKS`` value selects (``None``: not one of them)."""
    return next((hook for hook in HOOK_VERSIONS if hook.entry_point == entry_point), None)
