"""Runner rules: kubernetes container mode, job containers required, hook templates in place."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Final

from pulumi_policy import EnforcementLevel, Severity

from .._constants import (
    ENV_CONTAINER_HOOK_TEMPLATE,
    ENV_REQUIRE_JOB_CONTAINER,
    LABEL_HOOK_TEMPLATE,
    RUNNER_CONTAINER_NAME,
)
from ..config import ALLOWED_CAPABILITIES, ALLOWED_CONTAINER_MODES, ALLOWED_UIDS, Settings
from ..discovery import (
    CONFIG_MAP_TYPE,
    HookTemplate,
    Resource,
    RunnerPod,
    env_value,
    find_container,
    hook_template_mount,
    hook_templates,
    job_target,
    parse_template,
    resolve_hook_template,
    runner_pods,
)
from ..hook_merge import HOOK_MODES
from ..model import Finding
from ..policy_kit import ResourceCheckRule, Rule, StackRule
from ..values import as_mapping, is_unknown
from .levels import JOB_POD_RULES

__all__ = [
    "HOOK_TEMPLATE_DIRECTORY_MOUNT",
    "MOUNTED_HOOK_TEMPLATES",
    "RULES",
    "RUNNER_CONTAINER_MODE",
    "RUNNER_REQUIRES_JOB_CONTAINER",
    "check_container_mode",
    "check_mounted_hook_templates",
    "check_requires_job_container",
    "check_template_mount",
]

_MODE_PROBLEMS: Final = {
    "dind": "dind mode runs a privileged Docker daemon beside every runner",
    "": "no container mode: workflow steps run inside the runner pod and container jobs fail",
}


def _runner_finding(runner: RunnerPod, path: str, problem: str, fix: str) -> Finding:
    """A finding about a runner pod."""
    return Finding(
        resource=runner.target.resource,
        path=path,
        problem=problem,
        fix=fix,
        subject=runner.target.kind.value,
    )


def check_container_mode(resource: Resource, settings: Settings) -> Iterator[Finding]:
    """The scale set runs in an allowed container mode (kubernetes by default)."""
    for runner in runner_pods(resource):
        mode = runner.mode
        if is_unknown(mode) or mode in settings.allowed_container_modes:
            continue
        shown = mode or "(none)"
        yield _runner_finding(
            runner,
            runner.mode_path,
            f"container mode {shown}: "
            + _MODE_PROBLEMS.get(mode, f"{mode!r} is not an allowed container mode"),
            f"use containerMode.type {' or '.join(HOOK_MODES)} (runner-container-hooks; "
            f"allowed here: {sorted(settings.allowed_container_modes)})",
        )


def check_requires_job_container(resource: Resource, settings: Settings) -> Iterator[Finding]:
    """The runner refuses jobs that have no job container (``ENV_REQUIRE_JOB_CONTAINER``)."""
    del settings
    for runner in runner_pods(resource):
        container = find_container(runner.target.pod, RUNNER_CONTAINER_NAME)
        path = runner.target.container_path(
            "containers", RUNNER_CONTAINER_NAME, f"env[{ENV_REQUIRE_JOB_CONTAINER}]"
        )
        if container is None:
            yield _runner_finding(
                runner,
                runner.target.container_path("containers", RUNNER_CONTAINER_NAME),
                f"no container named {RUNNER_CONTAINER_NAME!r} in the runner pod template",
                f"name the runner container {RUNNER_CONTAINER_NAME!r}",
            )
            continue
        value = env_value(container, ENV_REQUIRE_JOB_CONTAINER)
        if is_unknown(value) or (isinstance(value, str) and value.lower() in ("true", "1")):
            continue
        state = "is not set" if value is None else f"is {value!r}"
        yield _runner_finding(
            runner,
            path,
            f"{ENV_REQUIRE_JOB_CONTAINER} {state}: jobs without a container run inside the "
            "runner pod, outside the job pod rules",
            f'set env {ENV_REQUIRE_JOB_CONTAINER}: "true" on the runner container',
        )


def check_template_mount(resource: Resource, settings: Settings) -> Iterator[Finding]:
    """The hook template is a ConfigMap mounted as a directory (a subPath mount never updates)."""
    del settings
    for runner in runner_pods(resource):
        if runner.mode not in HOOK_MODES:
            continue
        mount = hook_template_mount(runner.target.pod)
        if mount is None or is_unknown(mount.path):
            continue
        env_path = runner.target.container_path(
            "containers", RUNNER_CONTAINER_NAME, f"env[{ENV_CONTAINER_HOOK_TEMPLATE}]"
        )
        if mount.mount_path is None:
            yield _runner_finding(
                runner,
                env_path,
                f"{mount.path} is not inside any volume mount of the runner container: the "
                "template comes from the image, and the pack cannot check it",
                "mount the hook template ConfigMap as a directory and point the variable at "
                "its file",
            )
        elif mount.sub_path:
            yield _runner_finding(
                runner,
                runner.target.container_path(
                    "containers", RUNNER_CONTAINER_NAME, f"volumeMounts[{mount.volume}].subPath"
                ),
                "the hook template is mounted with subPath: ConfigMap updates (a new cache "
                "generation) never reach running runner pods",
                "mount the ConfigMap as a directory (no subPath) and set "
                f"{ENV_CONTAINER_HOOK_TEMPLATE} to <mountPath>/<key>",
            )
        elif mount.config_map is None:
            yield _runner_finding(
                runner,
                env_path,
                f"{mount.path} does not come from a ConfigMap volume: the pack cannot find the "
                "template to check the job pods",
                "provide the hook template from a ConfigMap volume",
            )


def check_mounted_hook_templates(
    resources: list[Resource], settings: Settings
) -> Iterator[Finding]:
    """Every hook template a runner mounts is declared in the stack, parses, and passes the job
    pod rules (templates without the label or a ``$job`` entry are checked here)."""
    config_maps = {(r.namespace, r.object_name): r for r in resources if r.type == CONFIG_MAP_TYPE}
    for resource in config_maps.values():
        for found in hook_templates(resource):
            if found.template is None:
                yield Finding(
                    resource=found.config_map,
                    path=f"data.{found.key}",
                    problem="the labelled hook template does not parse as a YAML mapping: the "
                    "hook fails every job",
                    fix="write a pod template (metadata, spec) in YAML",
                    subject="job pod",
                )
    for resource in resources:
        for runner in runner_pods(resource):
            if runner.mode not in HOOK_MODES:
                continue
            yield from _mounted(runner, config_maps, settings)


def _mounted(
    runner: RunnerPod, config_maps: dict[tuple[str, str], Resource], settings: Settings
) -> Iterator[Finding]:
    """Findings for the hook template one runner mounts."""
    mount, config_map = resolve_hook_template(runner, config_maps)
    if mount is None or is_unknown(mount.path) or mount.config_map is None:
        return
    where = f"ConfigMap {runner.namespace}/{mount.config_map}"
    if config_map is None:
        yield _runner_finding(
            runner,
            runner.target.container_path(
                "containers", RUNNER_CONTAINER_NAME, f"env[{ENV_CONTAINER_HOOK_TEMPLATE}]"
            ),
            f"the hook template comes from {where}, which this stack does not declare: the "
            "pack cannot check the job pods",
            f'declare the ConfigMap in this stack (labelled {LABEL_HOOK_TEMPLATE}: "true"), '
            "or exempt the runner from mounted-hook-templates with a reason",
        )
        return
    data = config_map.props.get("data")
    if is_unknown(data):
        return
    data = as_mapping(data) or {}
    key = mount.key or ""
    if key not in data:
        yield Finding(
            resource=config_map.ref,
            path=f"data.{key}",
            problem=f"runner {runner.target.resource} reads key {key!r}, which the ConfigMap "
            "does not have: the hook fails every job",
            fix=f"add the hook template under data.{key}",
            subject="job pod",
        )
        return
    if any(found.key == key for found in hook_templates(config_map)):
        return  # labelled or with a $job container: the resource policies check it
    template = parse_template(data[key])
    if is_unknown(template):
        return
    if template is None:
        yield Finding(
            resource=config_map.ref,
            path=f"data.{key}",
            problem="the hook template does not parse as a YAML mapping: the hook fails every job",
            fix="write a pod template (metadata, spec) in YAML",
            subject="job pod",
        )
        return
    target = job_target(
        HookTemplate(config_map.ref, key, template, "mount"),
        runner_pod_name=runner.target.resource.name,
    )
    for rule in JOB_POD_RULES:
        for finding in rule.check(target, settings):
            yield dataclasses.replace(
                finding,
                problem=f"[{rule.name}] {finding.problem}",
                fix=f'{finding.fix}; label the ConfigMap {LABEL_HOOK_TEMPLATE}: "true" so '
                "each rule reports under its own name",
            )


RUNNER_CONTAINER_MODE: Final = ResourceCheckRule(
    name="runner-container-mode",
    description="Runner scale sets use kubernetes container mode (dind needs a privileged daemon).",
    check=check_container_mode,
    config_keys=(ALLOWED_CONTAINER_MODES,),
)
RUNNER_REQUIRES_JOB_CONTAINER: Final = ResourceCheckRule(
    name="runner-requires-job-container",
    description=(
        f"Runners set {ENV_REQUIRE_JOB_CONTAINER}=true, so every job runs in a checked job pod."
    ),
    check=check_requires_job_container,
)
HOOK_TEMPLATE_DIRECTORY_MOUNT: Final = ResourceCheckRule(
    name="hook-template-directory-mount",
    description=(
        "The hook template is a ConfigMap mounted as a directory, so updates reach running runners."
    ),
    check=check_template_mount,
    enforcement_level=EnforcementLevel.ADVISORY,
    severity=Severity.MEDIUM,
)
MOUNTED_HOOK_TEMPLATES: Final = StackRule(
    name="mounted-hook-templates",
    description=(
        "Every hook template a runner mounts is declared in the stack, parses, and passes the job "
        "pod rules."
    ),
    check=check_mounted_hook_templates,
    config_keys=(ALLOWED_UIDS, ALLOWED_CAPABILITIES),
)

#: The runner policies, in report order.
RULES: Final[tuple[Rule, ...]] = (
    RUNNER_CONTAINER_MODE,
    RUNNER_REQUIRES_JOB_CONTAINER,
    HOOK_TEMPLATE_DIRECTORY_MOUNT,
    MOUNTED_HOOK_TEMPLATES,
)
