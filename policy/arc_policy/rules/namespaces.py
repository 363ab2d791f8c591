"""Runner namespaces carry Pod Security labels: ``enforce: restricted`` (or a stated baseline).

Job pods are created in the runner's namespace (or ``ACTIONS_RUNNER_KUBERNETES_NAMESPACE``),
so Pod Security admission there is the last line behind this pack: it also catches what no
deploy-time check can see, such as a ``hostPort`` a workflow's ``services.ports`` asks for.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

from .._constants import ENV_KUBERNETES_NAMESPACE, RUNNER_CONTAINER_NAME
from ..config import BASELINE_NAMESPACES, Exemption, Settings
from ..discovery import (
    NAMESPACE_TYPES,
    Resource,
    RunnerPod,
    env_value,
    find_container,
    runner_pods,
)
from ..model import Finding, ResourceRef
from ..policy_kit import Rule, StackRule
from ..values import UNKNOWN, as_mapping, as_str, get_in, is_unknown
from .levels import ENFORCE_LABEL

__all__ = [
    "POLICY_NAME",
    "RULES",
    "RUNNER_NAMESPACE_POD_SECURITY",
    "check_runner_namespaces",
    "declared_namespaces",
]

#: Name of the namespace policy.
POLICY_NAME: Final = "runner-namespace-pod-security"
_NAMESPACE_TYPE: Final = "kubernetes:core/v1:Namespace"


def declared_namespaces(resources: list[Resource]) -> dict[str, tuple[Any, Resource]]:
    """Labels of every namespace the stack declares (``Namespace`` beats ``NamespacePatch``)."""
    found: dict[str, tuple[Any, Resource]] = {}
    for resource in sorted(resources, key=lambda r: r.type != _NAMESPACE_TYPE):
        if resource.type not in NAMESPACE_TYPES:
            continue
        name = as_str(get_in(resource.props, "metadata", "name")) or resource.name
        labels = get_in(resource.props, "metadata", "labels")
        if name not in found:
            found[name] = (UNKNOWN if is_unknown(labels) else (as_mapping(labels) or {}), resource)
    return found


def _job_namespaces(runner: RunnerPod) -> set[str]:
    """Namespaces a runner's pods and job pods live in."""
    namespaces = {runner.namespace}
    runner_container = find_container(runner.target.pod, RUNNER_CONTAINER_NAME)
    job_namespace = env_value(runner_container, ENV_KUBERNETES_NAMESPACE)
    if isinstance(job_namespace, str) and job_namespace and not is_unknown(job_namespace):
        namespaces.add(job_namespace)
    return namespaces


def check_runner_namespaces(resources: list[Resource], settings: Settings) -> Iterator[Finding]:
    """Every namespace runner and job pods run in enforces ``restricted`` (or a stated
    ``baseline``); namespaces this stack does not declare must be exempted by name."""
    users: dict[str, list[str]] = {}
    for resource in resources:
        for runner in runner_pods(resource):
            for namespace in _job_namespaces(runner):
                users.setdefault(namespace, []).append(str(runner.target.resource))
    declared = declared_namespaces(resources)
    for namespace in sorted(users):
        runners = ", ".join(sorted(set(users[namespace])))
        if namespace not in declared:
            yield Finding(
                resource=ResourceRef(_NAMESPACE_TYPE, "Namespace", "", namespace),
                path=f"metadata.labels[{ENFORCE_LABEL}]",
                problem=f"runner namespace {namespace!r} (used by {runners}) is not declared in "
                "this stack: its Pod Security labels cannot be checked",
                fix=f"declare the Namespace with {ENFORCE_LABEL}: restricted, or exempt "
                f"Namespace//{namespace} from {POLICY_NAME} saying who labels it",
            )
            continue
        labels, resource = declared[namespace]
        if labels is UNKNOWN:
            continue
        level = labels.get(ENFORCE_LABEL)
        if is_unknown(level) or level == "restricted":
            continue
        exemption = None
        if level == "baseline" and namespace in settings.baseline_namespaces:
            exemption = Exemption(
                f"Namespace//{namespace}",
                "enforces baseline, not restricted: " + settings.baseline_namespaces[namespace],
            )
        if level == "baseline":
            problem = (
                f"enforce: baseline (no reason configured) lets job pods in namespace "
                f"{namespace!r} ({runners}) run with capabilities, as root and without seccomp"
            )
            fix = (
                f"set {ENFORCE_LABEL}: restricted, or list the namespace with its reason in "
                f"{POLICY_NAME}'s {BASELINE_NAMESPACES}"
            )
        else:
            state = "is missing" if level is None else f"is {level!r}"
            problem = (
                f"{ENFORCE_LABEL} {state}: Pod Security admission does not hold job pods in "
                f"namespace {namespace!r} ({runners}) to restricted"
            )
            fix = f"label the namespace {ENFORCE_LABEL}: restricted"
        yield Finding(
            resource=resource.ref,
            path=f"metadata.labels[{ENFORCE_LABEL}]",
            problem=problem,
            fix=fix,
            exemption=exemption,
        )


RUNNER_NAMESPACE_POD_SECURITY: Final = StackRule(
    name=POLICY_NAME,
    description=(
        "Namespaces of runner and job pods enforce Pod Security restricted (baseline only with a "
        "reason in config)."
    ),
    check=check_runner_namespaces,
    config_keys=(BASELINE_NAMESPACES,),
)

#: The namespace policies.
RULES: Final[tuple[Rule, ...]] = (RUNNER_NAMESPACE_POD_SECURITY,)
