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

from collections.abc import Iterator
from typing import Any, Final

from .._constants import LABEL_PART_OF
from ..config import Settings
from ..discovery import Resource, RunnerPod, chart_name, runner_pods
from ..listener import listener_pod
from ..model import Finding, PodKind, PodTarget
from ..policy_kit import Rule, StackRule
from ..values import as_mapping, as_str, get_in, is_unknown
from .levels import enforced_level, rejections
from .namespaces import declared_namespaces

__all__ = [
    "LISTENER_POD_SECURITY",
    "POLICY_NAME",
    "RULES",
    "check_listener_pods",
    "controller_namespaces",
    "listener_targets",
]

#: Name of the listener policy.
POLICY_NAME: Final = "listener-pod-security"
_CONTROLLER_CHART: Final = "gha-runner-scale-set-controller"
#: Label the controller chart puts on its Deployment (scale-set charts look it up by it).
_CONTROLLER_PART_OF: Final = "gha-rs-controller"


def controller_namespaces(resources: list[Resource]) -> set[str]:
    """Namespaces of the ARC controllers the stack declares (release, chart or Deployment)."""
    found: set[str] = set()
    for resource in resources:
        is_chart = resource.is_helm and chart_name(resource) == _CONTROLLER_CHART
        is_deployment = resource.kind == "Deployment" and (
            resource.labels.get(LABEL_PART_OF) == _CONTROLLER_PART_OF
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
    for resource in resources:
        for namespace, target in listener_targets(resource, controllers):
            # Undeclared, labels unknown in a preview, or privileged: nothing to hold it to.
            level = enforced_level(levels.get(namespace, (None, None))[0])
            if level is not None:
                yield from rejections(
                    target,
                    namespace,
                    level,
                    settings,
                    "the listener pod the controller starts there",
                )


LISTENER_POD_SECURITY: Final = StackRule(
    name=POLICY_NAME,
    description=(
        "The listener pod ARC starts for each scale set in the controller's namespace passes that "
        "namespace's Pod Security level (set it in the scale set's listenerTemplate)."
    ),
    check=check_listener_pods,
)

#: The listener policies.
RULES: Final[tuple[Rule, ...]] = (LISTENER_POD_SECURITY,)
