"""Every pod the hook creates for a scale set is admitted in the namespace it lands in.

A runner in a kubernetes container mode never runs a job itself: its hook creates pods, in the
runner's namespace (or ``ACTIONS_RUNNER_KUBERNETES_NAMESPACE``), and Pod Security admission
there decides whether any job starts. For each scale set this stack policy derives, from what
is deployed, the pods its hook will create and holds each to the level that namespace enforces:

* which hook: ``ACTIONS_RUNNER_CONTAINER_HOOKS`` of the runner pod as the chart renders it
  (``kubernetes`` → runner-container-hooks 0.7.0, ``kubernetes-novolume`` → 0.8.1,
  :data:`~..hook_merge.HOOK_VERSIONS`);
* which template: the declared ConfigMap the runner mounts at
  ``ACTIONS_RUNNER_CONTAINER_HOOK_TEMPLATE`` (none: the hook's bare pods);
* which pods: the **job pod** (the job container and one service container per ``$<name>``
  entry of the template) and the pod of a **container step** (0.7: the pod of its batch Job;
  0.8: a bare pod), each the hook's base pod with the template merged (:mod:`..hook_merge`).

Each field is reported once, by the rule that owns it. A field the *template* declares is the
same in every one of these pods (the merge is the same; the step pod has a subset of the job
pod's containers), and the job pod rules already report it on the template's ConfigMap, at
their own level, with their exemptions and remediation (the oracle test checks that every pod
agrees with the API server). So this policy reports what no template field explains:

* the containers the hook itself adds and the template does not replace: hook 0.8's own
  ``fs-init`` sets only ``runAsUser`` and ``runAsGroup``, so under ``restricted`` every
  novolume scale set is rejected unless its template replaces ``initContainers``;
* the bare pods of a runner without a hook template, where no job pod rule looks (hook 0.7's
  bare job pod is ``pod_targets``'; hook 0.8's are reported here).

A field several pods get wrong is one violation naming every pod it breaks. Templates a runner
mounts but the stack does not declare, or that do not parse, are ``mounted-hook-templates``'
findings; an undeclared namespace is ``runner-namespace-pod-security``'s.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from .._constants import (
    CONTAINER_MODE_KUBERNETES,
    ENV_CONTAINER_HOOK_TEMPLATE,
    ENV_CONTAINER_HOOKS,
    ENV_KUBERNETES_NAMESPACE,
    RUNNER_CONTAINER_NAME,
)
from ..config import Settings
from ..discovery import (
    CONFIG_MAP_TYPE,
    Resource,
    RunnerPod,
    find_container,
    parse_template,
    resolve_hook_template,
    runner_pods,
)
from ..hook_merge import (
    EXTENSION_PREFIX,
    FS_INIT_CONTAINER,
    HOOK_JOB_CONTAINER,
    HookVersion,
    RunnerContext,
    WorkflowContainer,
    hook_version,
    template_service_names,
)
from ..model import Finding, PodKind, PodTarget
from ..policy_kit import Rule, StackRule
from ..values import as_list, as_mapping, as_str
from .levels import enforced_level, level_findings, rejection
from .namespaces import declared_namespaces

__all__ = [
    "HOOK_POD_SECURITY",
    "POLICY_NAME",
    "RULES",
    "HookPods",
    "check_hook_pods",
    "hook_pods",
]

#: Name of the hook pod policy.
POLICY_NAME: Final = "hook-pod-security"
_FS_INIT_FIX: Final = (
    "replace fs-init through the hook template's spec.initContainers with a copy that keeps "
    "its name, image, command and volumeMounts and adds securityContext "
    "allowPrivilegeEscalation: false, capabilities.drop [ALL], runAsNonRoot: true and "
    "seccompProfile RuntimeDefault (a template initContainers replaces the hook's), or use "
    "containerMode kubernetes (hook 0.7 adds no init container)"
)


@dataclass(frozen=True)
class HookPods:
    """The pods one scale set's hook creates, and the namespace they land in."""

    hook: HookVersion
    namespace: str
    #: The job pod and the step pod.
    pods: tuple[PodTarget, ...]
    #: True when no job pod rule checks these pods' fields (no template, not the bare pod of
    #: a kubernetes-mode runner): every finding is this policy's, not only the hook's own
    #: containers'.
    unchecked: bool


def _runner_env(runner: RunnerPod) -> dict[str, str]:
    """The runner container's env vars with a known literal value."""
    container = find_container(runner.target.pod, RUNNER_CONTAINER_NAME) or {}
    return {
        item["name"]: item["value"]
        for item in as_list(container.get("env"))
        if isinstance(item, dict)
        and isinstance(item.get("name"), str)
        and as_str(item.get("value")) is not None
    }


def _template(
    runner: RunnerPod, config_maps: Mapping[tuple[str, str], Resource]
) -> tuple[bool, Any, str]:
    """``(known, template, where)``: the template the runner's hook reads, ``None`` for none.

    ``known`` is False when the pack cannot see it (unknown in a preview, undeclared,
    missing or unparsable: other policies report those).
    """
    mount, config_map = resolve_hook_template(runner, config_maps)
    if mount is None:
        return True, None, "the hook's bare pod (no hook template): "
    if config_map is None or mount.key is None:
        return False, None, ""
    data = as_mapping(config_map.props.get("data")) or {}
    template = parse_template(data.get(mount.key))
    if not isinstance(template, dict):
        return False, None, ""
    return True, template, f"{config_map.ref} data.{mount.key}: "


def hook_pods(
    runner: RunnerPod, config_maps: Mapping[tuple[str, str], Resource]
) -> HookPods | None:
    """The job and step pods the hook of ``runner`` creates (``None``: no hook the pack models,
    or a template it cannot see)."""
    env = _runner_env(runner)
    hook = hook_version(env.get(ENV_CONTAINER_HOOKS))
    if hook is None:
        return None
    known, template, prefix = _template(runner, config_maps)
    if not known:
        return None
    context = RunnerContext.from_env(env, pod_name=runner.target.resource.name)
    job_pod = hook.job_pod(template, WorkflowContainer(), None, context)
    step_pod = hook.step_pod(template, WorkflowContainer(), context)
    declared = {HOOK_JOB_CONTAINER: EXTENSION_PREFIX + HOOK_JOB_CONTAINER}
    declared.update({name: EXTENSION_PREFIX + name for name in template_service_names(template)})
    replaces_init = isinstance(template, dict) and "initContainers" in (template.get("spec") or {})
    origin = {} if replaces_init else {FS_INIT_CONTAINER: _fs_init_path(hook)}
    fix_hint = (
        f"in the hook template ({prefix.rstrip(': ')})"
        if template is not None
        else f"mount a hook template ConfigMap and point {ENV_CONTAINER_HOOK_TEMPLATE} at its file"
    )
    pods = tuple(
        PodTarget(
            kind=kind,
            resource=runner.target.resource,
            pod=pod,
            prefix=prefix,
            declared=declared,
            origin=origin,
            fix_hint=fix_hint,
        )
        for kind, pod in ((PodKind.JOB, job_pod), (PodKind.STEP, step_pod))
    )
    namespace = env.get(ENV_KUBERNETES_NAMESPACE) or runner.namespace
    unchecked = template is None and runner.mode != CONTAINER_MODE_KUBERNETES
    return HookPods(hook, namespace, pods, unchecked)


def _fs_init_path(hook: HookVersion) -> str:
    """Where hook 0.8's own fs-init is declared: nowhere but in the hook."""
    return f"{hook} job pod: spec.initContainers[{FS_INIT_CONTAINER}]"


def _findings(found: HookPods, level: str, settings: Settings) -> Iterator[Finding]:
    """The level's findings on each pod, one per field with every pod it breaks."""
    merged: dict[tuple[str, str, str], tuple[list[str], Finding]] = {}
    for target in found.pods:
        for finding in level_findings(target, level, settings):
            if not (found.unchecked or finding.path.startswith(_fs_init_path(found.hook))):
                continue  # a template field: the job pod rules report it
            key = (finding.container, finding.path, finding.problem)
            merged.setdefault(key, ([], finding))[0].append(target.kind.value)
    for pods, finding in merged.values():
        subject = f"{' and '.join(pods)} of {found.hook}"
        fix = _FS_INIT_FIX if finding.path.startswith(_fs_init_path(found.hook)) else finding.fix
        told = rejection(finding, found.namespace, level, f"the {subject} of this scale set")
        yield dataclasses.replace(told, subject=subject, fix=fix)


def check_hook_pods(resources: list[Resource], settings: Settings) -> Iterator[Finding]:
    """Every job and step pod the hook creates for a scale set passes the Pod Security level
    of the namespace it is created in."""
    levels = declared_namespaces(resources)
    config_maps = {(r.namespace, r.object_name): r for r in resources if r.type == CONFIG_MAP_TYPE}
    for resource in resources:
        for runner in runner_pods(resource):
            found = hook_pods(runner, config_maps)
            if found is None:
                continue
            level = enforced_level(levels.get(found.namespace, (None, None))[0])
            if level is not None:
                yield from _findings(found, level, settings)


HOOK_POD_SECURITY: Final = StackRule(
    name=POLICY_NAME,
    description=(
        "The job and container-step pods the runner's hook (0.7 or 0.8) creates for each scale "
        "set pass the Pod Security level of the namespace they are created in."
    ),
    check=check_hook_pods,
)

#: The hook pod policies.
RULES: Final[tuple[Rule, ...]] = (HOOK_POD_SECURITY,)
