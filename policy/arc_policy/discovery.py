"""Find what the rules check in declared resources: hook templates, runner pods, workloads.

However a team declares its runners, the pack finds the pods that will run:

* **hook templates** (the job pod): a ConfigMap labelled ``arc-zfs-cache.io/hook-template``,
  or one with a value that parses as a pod template with a ``$job`` container, or (across
  resources, see :func:`resolve_hook_template`) the ConfigMap a runner pod mounts at the
  directory of ``ACTIONS_RUNNER_CONTAINER_HOOK_TEMPLATE``. Each becomes the *effective* job
  pod: the hook 0.7 base pod with the template merged in (:mod:`.hook_merge`).
* **runner pods**, from an ``actions.github.com/v1alpha1`` AutoscalingRunnerSet (raw, or
  rendered by a ``kubernetes:helm.sh/v4:Chart`` — the children a preview shows), or from the
  values of a gha-runner-scale-set ``kubernetes:helm.sh/v3:Release`` (or a Chart whose inputs
  are visible), rendered the way chart 0.14.2 renders its runner pod for the container mode.
* **workloads**: the pod template of any other Pod, Deployment, DaemonSet, StatefulSet,
  ReplicaSet, ReplicationController, Job, CronJob or PodTemplate.

Unknown values (preview) are kept as :data:`~.values.UNKNOWN`: the rules skip what they cannot
see instead of failing.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import yaml
from pulumi_policy import PolicyResource, ResourceValidationArgs

from ._constants import (
    CONTAINER_MODE_KUBERNETES,
    CONTAINER_MODE_NOVOLUME,
    ENV_CONTAINER_HOOK_TEMPLATE,
    ENV_CONTAINER_HOOKS,
    JOB_CONTAINER_NAME,
    LABEL_HOOK_TEMPLATE,
    NOVOLUME_HOOK_ENTRYPOINT,
    RUNNER_CONTAINER_NAME,
)
from .hook_merge import (
    EXTENSION_PREFIX,
    HOOK_JOB_CONTAINER,
    effective_job_pod,
    hook_version,
)
from .model import PodKind, PodTarget, ResourceRef
from .scale_set_chart import (
    DIND_CONTAINER,
    DIND_SOCK_VOLUME,
    ENV_DOCKER_HOST,
    render_scale_set_values,
)
from .values import UNKNOWN, as_list, as_mapping, as_str, get_in, is_unknown, to_plain

__all__ = [
    "CONFIG_MAP_TYPE",
    "NAMESPACE_TYPES",
    "HookTemplate",
    "Resource",
    "RunnerPod",
    "TemplateMount",
    "chart_name",
    "env_value",
    "find_container",
    "hook_template_mount",
    "hook_templates",
    "is_scale_set_values",
    "iter_resources",
    "job_target",
    "job_target_without_template",
    "parse_template",
    "pod_targets",
    "resolve_hook_template",
    "runner_pods",
    "workload_targets",
]

CONFIG_MAP_TYPE: Final = "kubernetes:core/v1:ConfigMap"
NAMESPACE_TYPES: Final = ("kubernetes:core/v1:Namespace", "kubernetes:core/v1:NamespacePatch")
_RELEASE_TYPES: Final = ("kubernetes:helm.sh/v3:Release",)
_CHART_TYPES: Final = ("kubernetes:helm.sh/v4:Chart", "kubernetes:helm.sh/v3:Chart")
_ARS_API_GROUP: Final = "actions.github.com/"
_ARS_KIND: Final = "AutoscalingRunnerSet"


#: Where each workload kind keeps its pod template.
_WORKLOAD_TEMPLATES: Final[dict[str, tuple[str, ...]]] = {
    "Pod": (),
    "PodTemplate": ("template",),
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}


@dataclass(frozen=True)
class Resource:
    """A declared resource as the rules see it: plain properties, unknowns marked."""

    type: str
    name: str
    urn: str
    props: dict[str, Any]
    #: Namespace of the resource's Kubernetes provider (where an object without one lands).
    provider_namespace: str | None = None

    @classmethod
    def of(cls, declared: ResourceValidationArgs | PolicyResource) -> Resource:
        """From the arguments of a resource validation (or remediation), or from one resource
        of a stack validation (both carry the same fields)."""
        provider_ns = None
        if declared.provider is not None:
            provider_ns = as_str(to_plain(declared.provider.props).get("namespace"))
        return cls(
            type=declared.resource_type,
            name=declared.name,
            urn=declared.urn,
            props=to_plain(declared.props) or {},
            provider_namespace=provider_ns,
        )

    @property
    def kind(self) -> str:
        """Kubernetes kind, from ``kind`` or the type token (``kubernetes:core/v1:Pod``)."""
        kind = as_str(self.props.get("kind"))
        return kind or self.type.rsplit(":", 1)[-1]

    @property
    def is_kubernetes(self) -> bool:
        """True for resources of the Kubernetes provider."""
        return self.type.startswith("kubernetes:")

    @property
    def is_helm(self) -> bool:
        """True for Helm releases and charts."""
        return self.type in _RELEASE_TYPES or self.type in _CHART_TYPES

    @property
    def namespace(self) -> str:
        """Namespace the object lands in (``metadata.namespace``, a release's ``namespace``)."""
        if self.is_helm:
            values = as_mapping(self.props.get("values")) or {}
            override = as_str(values.get("namespaceOverride"))
            return (
                override
                or as_str(self.props.get("namespace"))
                or self.provider_namespace
                or "default"
            )
        if self.kind == "Namespace" or self.type in NAMESPACE_TYPES:
            return ""
        namespace = as_str(get_in(self.props, "metadata", "namespace"))
        return namespace or self.provider_namespace or "default"

    @property
    def object_name(self) -> str:
        """Kubernetes name (``metadata.name``; a release's ``name``), else the Pulumi name."""
        if self.is_helm:
            return as_str(self.props.get("name")) or self.name
        return as_str(get_in(self.props, "metadata", "name")) or self.name

    @property
    def ref(self) -> ResourceRef:
        """How findings and exemptions name this resource."""
        return ResourceRef(self.type, self.kind, self.namespace, self.object_name, self.urn)

    @property
    def labels(self) -> dict[str, Any]:
        """``metadata.labels`` (empty when absent or unknown)."""
        return as_mapping(get_in(self.props, "metadata", "labels")) or {}


# --- hook templates ------------------------------------------------------------------------


@dataclass(frozen=True)
class HookTemplate:
    """A hook template found in a ConfigMap key."""

    config_map: ResourceRef
    key: str
    #: The parsed template, ``None`` if the value is not a YAML mapping, UNKNOWN in preview.
    template: Any
    #: How it was found: ``label``, ``content`` or ``mount``.
    found_by: str


def parse_template(text: object) -> Any:
    """A hook template parsed from a ConfigMap value.

    Returns the mapping, :data:`UNKNOWN` for an unknown value, ``None`` when it is not YAML
    that parses to a mapping (the hook would fail with "Failed to parse").
    """
    if is_unknown(text):
        return UNKNOWN
    if not isinstance(text, str):
        return None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    return document if isinstance(document, dict) else None


def _has_job_container(template: object) -> bool:
    """True if a parsed template has a ``$job`` container entry."""
    containers = get_in(template, "spec", "containers")
    return any(
        isinstance(entry, dict) and entry.get("name") == JOB_CONTAINER_NAME
        for entry in as_list(containers)
    )


def hook_templates(resource: Resource) -> list[HookTemplate]:
    """Hook templates a ConfigMap declares by itself: by label, or by a ``$job`` container.

    A labelled ConfigMap's every key is a template (an unparsable one is returned with
    ``template=None``); an unlabelled one contributes the keys whose value parses as a pod
    template with a ``$job`` container.
    """
    if resource.type != CONFIG_MAP_TYPE:
        return []
    data = resource.props.get("data")
    if is_unknown(data):
        return []
    data = as_mapping(data) or {}
    labelled = str(resource.labels.get(LABEL_HOOK_TEMPLATE, "")).lower() == "true"
    found = []
    for key in sorted(data):
        template = parse_template(data[key])
        if labelled:
            found.append(HookTemplate(resource.ref, key, template, "label"))
        elif _has_job_container(template):
            found.append(HookTemplate(resource.ref, key, template, "content"))
    return found


def job_target(hook_template: HookTemplate, runner_pod_name: str = "runner-pod") -> PodTarget:
    """The effective job pod of a (parsed, known) hook template."""
    template = hook_template.template if isinstance(hook_template.template, dict) else {}
    pod = effective_job_pod(template, runner_pod_name=runner_pod_name)
    declared = {
        str(container.get("name")): EXTENSION_PREFIX + str(container.get("name"))
        for container in as_list(get_in(pod, "spec", "containers"))[:1]
    }
    declared.update(_service_declared(template))
    return PodTarget(
        kind=PodKind.JOB,
        resource=hook_template.config_map,
        pod=pod,
        prefix=f"data.{hook_template.key}: ",
        declared=declared,
        fix_hint=f"in the hook template (ConfigMap key {hook_template.key!r})",
    )


def _service_declared(template: Mapping[str, Any]) -> dict[str, str]:
    """Effective → declared names of the ``$<service>`` entries of a template."""
    declared = {}
    for entry in as_list(get_in(template, "spec", "containers")):
        name = entry.get("name") if isinstance(entry, dict) else None
        if isinstance(name, str) and name.startswith(EXTENSION_PREFIX):
            declared[name[len(EXTENSION_PREFIX) :]] = name
    return declared


def job_target_without_template(runner: RunnerPod) -> PodTarget:
    """The job pod of a kubernetes-mode runner without a hook template: the hook's base pod."""
    pod = effective_job_pod(None, runner_pod_name=runner.target.resource.name)
    return PodTarget(
        kind=PodKind.JOB,
        resource=runner.target.resource,
        pod=pod,
        prefix="hook template (none): ",
        declared={HOOK_JOB_CONTAINER: JOB_CONTAINER_NAME},
        fix_hint=(
            f"this runner sets no {ENV_CONTAINER_HOOK_TEMPLATE}, so job pods get the hook's bare "
            "pod: mount a hook template ConfigMap as a directory and point the variable at its file"
        ),
    )


# --- runner pods ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RunnerPod:
    """The runner pod of one scale set."""

    target: PodTarget
    #: Container mode: ``kubernetes``, ``kubernetes-novolume``, ``dind``, ``""`` (none), or
    #: UNKNOWN.
    mode: Any
    #: Path of the declaration of the container mode, for findings.
    mode_path: str
    #: The values of a Helm release or chart (``None`` for an AutoscalingRunnerSet).
    values: dict[str, Any] | None = None

    @property
    def namespace(self) -> str:
        """Namespace of the runner pods (and, by default, of their job pods)."""
        return self.target.resource.namespace


def find_container(pod: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    """The container ``name`` of a pod (``containers`` only)."""
    for container in as_list(get_in(pod, "spec", "containers")):
        if isinstance(container, dict) and container.get("name") == name:
            return container
    return None


def env_value(container: Mapping[str, Any] | None, name: str) -> Any:
    """Literal value of env var ``name``: ``None`` if absent, UNKNOWN if unknown or valueFrom."""
    if container is None:
        return None
    env = container.get("env")
    if is_unknown(env):
        return UNKNOWN
    for item in as_list(env):
        if isinstance(item, dict) and item.get("name") == name:
            value = item.get("value")
            if is_unknown(value) or (value is None and item.get("valueFrom") is not None):
                return UNKNOWN
            return "" if value is None else str(value)
    return None


def _mode_of_rendered(pod: Mapping[str, Any]) -> Any:
    """Container mode of a rendered runner pod (as the chart renders each mode)."""
    spec = as_mapping(pod.get("spec")) or {}
    all_containers = as_list(spec.get("containers")) + as_list(spec.get("initContainers"))
    names = {c.get("name") for c in all_containers if isinstance(c, dict)}
    volumes = {v.get("name") for v in as_list(spec.get("volumes")) if isinstance(v, dict)}
    runner = find_container(pod, RUNNER_CONTAINER_NAME)
    dind = DIND_CONTAINER in names or DIND_SOCK_VOLUME in volumes
    if dind or env_value(runner, ENV_DOCKER_HOST):
        return "dind"
    hooks = env_value(runner, ENV_CONTAINER_HOOKS)
    if is_unknown(hooks):
        return UNKNOWN
    if hooks:
        hook = hook_version(hooks)
        return hook.container_mode if hook else _mode_of_hook_path(hooks)
    return ""


def _mode_of_hook_path(hooks: str) -> str:
    """The mode of a hook entry point the chart does not set: by the directory it lives in."""
    novolume_dir = posixpath.dirname(NOVOLUME_HOOK_ENTRYPOINT)
    return CONTAINER_MODE_NOVOLUME if novolume_dir in hooks else CONTAINER_MODE_KUBERNETES


def chart_name(resource: Resource) -> str:
    """Base name of a release's or chart's chart reference (OCI, repository or local path)."""
    chart = as_str(resource.props.get("chart")) or ""
    name = chart.rstrip("/").rsplit("/", 1)[-1].split(":", 1)[0]
    if name.endswith(".tgz"):  # a packaged chart: <name>-<version>.tgz
        name = name.removesuffix(".tgz").rsplit("-", 1)[0]
    return name


def is_scale_set_values(resource: Resource) -> bool:
    """True for a Helm release or chart of gha-runner-scale-set (by chart name or values)."""
    if not resource.is_helm:
        return False
    name = chart_name(resource)
    if name == "gha-runner-scale-set":
        return True
    if "controller" in name:
        return False
    values = as_mapping(resource.props.get("values")) or {}
    return any(key in values for key in ("githubConfigUrl", "githubConfigSecret", "containerMode"))


def runner_pods(resource: Resource) -> list[RunnerPod]:
    """The runner pod a resource declares (AutoscalingRunnerSet, or scale-set chart values)."""
    props = resource.props
    api_version = as_str(props.get("apiVersion")) or resource.type
    is_ars = resource.kind == _ARS_KIND and (
        resource.type.startswith("kubernetes:" + _ARS_API_GROUP)
        or api_version.startswith(_ARS_API_GROUP)
    )
    if is_ars:
        template = get_in(props, "spec", "template")
        if not isinstance(template, dict):
            return []
        pod = {"metadata": as_mapping(template.get("metadata")) or {}, "spec": template.get("spec")}
        if not isinstance(pod["spec"], dict):
            return []
        target = PodTarget(
            kind=PodKind.RUNNER,
            resource=resource.ref,
            pod=pod,
            prefix="spec.template.",
            fix_hint="in the scale set's runner pod template",
        )
        mode_path = f"spec.template.spec.containers[{RUNNER_CONTAINER_NAME}].env"
        return [RunnerPod(target, _mode_of_rendered(pod), mode_path)]
    if is_scale_set_values(resource):
        values = props.get("values")
        if is_unknown(values):
            return []
        values = as_mapping(values) or {}
        pod, mode, added = render_scale_set_values(values, resource.object_name)
        origin = dict.fromkeys(added, "values.containerMode.type")
        target = PodTarget(
            kind=PodKind.RUNNER,
            resource=resource.ref,
            pod=pod,
            prefix="values.template.",
            origin=origin,
            fix_hint="in the release values (template.spec)",
        )
        return [
            RunnerPod(target, mode, "values.containerMode.type", values),
        ]
    return []


@dataclass(frozen=True)
class TemplateMount:
    """Where a runner pod's hook template file comes from."""

    #: Value of ``ACTIONS_RUNNER_CONTAINER_HOOK_TEMPLATE`` (UNKNOWN if not a known literal).
    path: Any
    #: Name of the ConfigMap behind the file, if a ConfigMap volume provides it.
    config_map: str | None = None
    #: ConfigMap key the file shows.
    key: str | None = None
    #: The volume mount covering the path (``None`` when no mount covers it).
    mount_path: str | None = None
    #: True if the file is mounted with ``subPath`` (never updated in running pods).
    sub_path: bool = False
    #: Name of the volume providing the file.
    volume: str | None = None


def _config_map_source(volume: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """ConfigMap sources of a volume: ``configMap``, or the ``configMap`` projections."""
    direct = as_mapping(volume.get("configMap"))
    if direct is not None:
        return [direct]
    sources = as_list(get_in(volume, "projected", "sources"))
    return [
        s["configMap"]
        for s in sources
        if isinstance(s, dict) and isinstance(s.get("configMap"), dict)
    ]


def hook_template_mount(pod: Mapping[str, Any]) -> TemplateMount | None:
    """Where the runner container's hook template comes from (``None`` if it sets none)."""
    runner = find_container(pod, RUNNER_CONTAINER_NAME)
    path = env_value(runner, ENV_CONTAINER_HOOK_TEMPLATE)
    if path is None or runner is None:
        return None
    if is_unknown(path) or not path:
        return TemplateMount(path=UNKNOWN if is_unknown(path) else path)
    best: dict[str, Any] | None = None
    for mount in as_list(runner.get("volumeMounts")):
        mount_path = as_str(mount.get("mountPath")) if isinstance(mount, dict) else None
        if not mount_path:
            continue
        covers = path == mount_path or path.startswith(mount_path.rstrip("/") + "/")
        if covers and (best is None or len(mount_path) > len(str(best.get("mountPath")))):
            best = mount
    if best is None:
        return TemplateMount(path=path)
    mount_path = str(best.get("mountPath"))
    volume_name = as_str(best.get("name"))
    sub_path = as_str(best.get("subPath"))
    volume = next(
        (
            v
            for v in as_list(get_in(pod, "spec", "volumes"))
            if isinstance(v, dict) and v.get("name") == volume_name
        ),
        None,
    )
    result = TemplateMount(
        path=path, mount_path=mount_path, sub_path=bool(sub_path), volume=volume_name
    )
    if volume is None:
        return result
    relative = sub_path if sub_path and path == mount_path else posixpath.relpath(path, mount_path)
    if sub_path and path != mount_path:
        relative = posixpath.join(sub_path, posixpath.relpath(path, mount_path))
    for source in _config_map_source(volume):
        name = as_str(source.get("name"))
        items = source.get("items")
        if isinstance(items, list) and items:
            key = next(
                (
                    as_str(item.get("key"))
                    for item in items
                    if isinstance(item, dict) and item.get("path") == relative
                ),
                None,
            )
        else:
            key = relative if "/" not in relative else None
        if name and key:
            return TemplateMount(
                path=path,
                config_map=name,
                key=key,
                mount_path=mount_path,
                sub_path=bool(sub_path),
                volume=volume_name,
            )
    return result


def resolve_hook_template(
    runner: RunnerPod, config_maps: Mapping[tuple[str, str], Resource]
) -> tuple[TemplateMount | None, Resource | None]:
    """The hook template a runner mounts, and the declared ConfigMap behind it (if any).

    ``config_maps`` maps ``(namespace, name)`` to the ConfigMaps of the stack.
    """
    mount = hook_template_mount(runner.target.pod)
    if mount is None or mount.config_map is None:
        return mount, None
    return mount, config_maps.get((runner.namespace, mount.config_map))


# --- other workloads -----------------------------------------------------------------------


def workload_targets(resource: Resource) -> list[PodTarget]:
    """The pod template of a workload resource (Pod, Deployment, DaemonSet, CronJob, ...)."""
    if not resource.is_kubernetes or resource.kind not in _WORKLOAD_TEMPLATES:
        return []
    keys = _WORKLOAD_TEMPLATES[resource.kind]
    if resource.type.endswith("Patch"):
        return []
    template = get_in(resource.props, *keys) if keys else resource.props
    if not isinstance(template, dict) or not isinstance(template.get("spec"), dict):
        return []
    prefix = "".join(f"{key}." for key in keys)
    return [
        PodTarget(
            kind=PodKind.WORKLOAD,
            resource=resource.ref,
            pod={"metadata": as_mapping(template.get("metadata")) or {}, "spec": template["spec"]},
            prefix=prefix,
            fix_hint="in the workload's pod template",
        )
    ]


def pod_targets(resource: Resource, kinds: Sequence[PodKind] = tuple(PodKind)) -> list[PodTarget]:
    """Every pod a single resource declares, of the given kinds.

    Job pods come from hook templates the resource declares by itself (label or content) and
    from kubernetes-mode runners without a hook template; templates a runner mounts without
    label or ``$job`` are found by the stack policy ``mounted-hook-templates``.
    """
    targets: list[PodTarget] = []
    if PodKind.JOB in kinds:
        targets.extend(
            job_target(found)
            for found in hook_templates(resource)
            if isinstance(found.template, dict)
        )
    runners = runner_pods(resource)
    if PodKind.JOB in kinds:
        targets.extend(
            job_target_without_template(runner)
            for runner in runners
            if runner.mode == CONTAINER_MODE_KUBERNETES
            and hook_template_mount(runner.target.pod) is None
        )
    if PodKind.RUNNER in kinds:
        targets.extend(runner.target for runner in runners)
    if PodKind.WORKLOAD in kinds:
        targets.extend(workload_targets(resource))
    return targets


def iter_resources(resources: Iterable[PolicyResource]) -> list[Resource]:
    """Stack resources as :class:`Resource` objects."""
    return [Resource.of(resource) for resource in resources]
