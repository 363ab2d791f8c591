"""The listener pod of every scale set is admitted in the controller's namespace.

ARC 0.14.2 starts each scale set's listener pod in the **controller's** namespace, with no
securityContext unless the AutoscalingRunnerSet's ``listenerTemplate`` gives one
(:mod:`..listener`). A controller namespace enforcing ``restricted`` (or ``baseline``) rejects
a listener that does not meet that level, and no job ever starts: this stack policy builds the
listener pod as the controller would and holds it to the level the namespace enforces.

The controller's namespace is the scale set's ``controllerServiceAccount.namespace`` value when
given, else the namespace of every gha-runner-scale-set-controller release, chart or
Deployment the stack declares. A namespace the stack does not declare has a level the pack
cannot see and is not checked.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any, Final

from pulumi_policy import StackValidationPolicy

from ..config import Settings
from ..discovery import Resource, RunnerPod, chart_name, runner_pods
from ..listener import listener_pod
from ..model import Finding, PodKind, PodTarget
from ..policy_kit import PodCheck, stack_policy
from ..values import as_mapping, as_str, get_in, is_unknown
from .container_security import (
    check_capabilities,
    check_no_privilege_escalation,
    check_no_privileged,
    check_run_as_non_root,
    check_seccomp,
    check_unsafe_options,
)
from .namespaces import ENFORCE_LABEL, declared_namespaces
from .pod_security import check_baseline_workload, check_host_access, check_volume_types

__all__ = [
    "LISTENER_POD_SECURITY",
    "POLICIES",
    "POLICY_NAME",
    "check_listener_pods",
    "controller_namespaces",
    "listener_targets",
]

#: Name of the listener policy.
POLICY_NAME: Final = "listener-pod-security"
_CONTROLLER_CHART: Final = "gha-runner-scale-set-controller"
#: Label the controller chart puts on its Deployment (scale-set charts look it up by it).
_CONTROLLER_PART_OF: Final = "gha-rs-controller"
_PART_OF_LABEL: Final = "app.kubernetes.io/part-of"
#: What Pod Security ``restricted`` checks, as the pack's rules; the uid allow-list is the
#: pack's own stricter rule for job pods and does not apply to the controller's image.
_RESTRICTED: Final[tuple[PodCheck, ...]] = (
    check_no_privileged,
    check_no_privilege_escalation,
    check_capabilities,
    check_run_as_non_root,
    check_seccomp,
    check_unsafe_options,
    check_host_access,
    check_volume_types,
)
_BASELINE: Final[tuple[PodCheck, ...]] = (check_baseline_workload, check_unsafe_options)
_LEVEL_CHECKS: Final = {"restricted": _RESTRICTED, "baseline": _BASELINE}


def controller_namespaces(resources: list[Resource]) -> set[str]:
    """Namespaces of the ARC controllers the stack declares (release, chart or Deployment)."""
    found: set[str] = set()
    for resource in resources:
        is_chart = resource.is_helm and chart_name(resource) == _CONTROLLER_CHART
        is_deployment = resource.kind == "Deployment" and (
            resource.labels.get(_PART_OF_LABEL) == _CONTROLLER_PART_OF
        )
        if is_chart or is_deployment:
            found.add(resource.namespace)
    return found


def _listener_template(resource: Resource, runner: RunnerPod) -> tuple[Any, str]:
    """The scale set's listenerTemplate and where it is declared."""
    if runner.values is not None:
        return runner.values.get("listenerTemplate"), "values.listenerTemplate."
    return get_in(resource.props, "spec", "listenerTemplate"), "spec.listenerTemplate."


def listener_targets(resource: Resource, controllers: set[str]) -> list[tuple[str, PodTarget]]:
    """``(controller namespace, listener pod)`` for each scale set the resource declares."""
    targets: list[tuple[str, PodTarget]] = []
    for runner in runner_pods(resource):
        template, prefix = _listener_template(resource, runner)
        if is_unknown(template):
            continue
        named = as_str(get_in(runner.values or {}, "controllerServiceAccount", "namespace"))
        for namespace in sorted({named} if named else controllers):
            pod = listener_pod(as_mapping(template), namespace=namespace)
            targets.append(
                (
                    namespace,
                    PodTarget(
                        kind=PodKind.LISTENER,
                        resource=runner.target.resource,
                        pod=pod,
                        prefix=prefix,
                        fix_hint=f"in the scale set's listenerTemplate ({prefix.rstrip('.')})",
                    ),
                )
            )
    return targets


def check_listener_pods(resources: list[Resource], settings: Settings) -> Iterator[Finding]:
    """Every listener pod passes the Pod Security level its controller namespace enforces."""
    levels = declared_namespaces(resources)
    controllers = controller_namespaces(resources)
    # Pod Security itself: any non-root uid, only NET_BIND_SERVICE added back.
    pss = dataclasses.replace(
        settings, allowed_uids=frozenset(), allowed_capabilities=frozenset({"NET_BIND_SERVICE"})
    )
    for resource in resources:
        for namespace, target in listener_targets(resource, controllers):
            labels = levels.get(namespace, (None, None))[0]
            if not isinstance(labels, dict):
                continue  # undeclared, or labels unknown in a preview
            level = labels.get(ENFORCE_LABEL)
            checks = _LEVEL_CHECKS.get(level) if isinstance(level, str) else None
            for check in checks or ():
                for finding in check(target, pss):
                    yield dataclasses.replace(
                        finding,
                        problem=f"namespace {namespace!r} enforces Pod Security {level} and "
                        f"would reject the listener pod the controller starts there: "
                        f"{finding.problem}",
                    )


LISTENER_POD_SECURITY: Final = stack_policy(
    POLICY_NAME,
    "The listener pod ARC starts for each scale set in the controller's namespace passes that "
    "namespace's Pod Security level (set it in the scale set's listenerTemplate).",
    check_listener_pods,
)

#: The listener policies.
POLICIES: Final[list[StackValidationPolicy]] = [LISTENER_POD_SECURITY]
