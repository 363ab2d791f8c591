"""Pod Security levels as the pack's rules, and "would this namespace admit this pod".

The pack's rules follow the Kubernetes Pod Security Standards check by check (the oracle test
compares them with a real API server), so a level is a set of rules:
:data:`RESTRICTED_RULES` are what ``restricted`` checks, :data:`BASELINE_RULES` what
``baseline`` checks. The rules that predict admission in a namespace (``listener-pod-security``,
``hook-pod-security``) hold a pod to the level the namespace enforces, with Pod Security's own
allowances (any non-root uid, ``NET_BIND_SERVICE`` added back) rather than the pack's stricter
job pod settings.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Final

from ..config import Settings
from ..model import Finding, PodTarget
from ..policy_kit import PodRule
from ..values import as_str
from . import container_security as cs
from . import pod_security as ps

__all__ = [
    "BASELINE_RULES",
    "ENFORCE_LABEL",
    "JOB_POD_RULES",
    "LEVEL_RULES",
    "RESTRICTED_RULES",
    "enforced_level",
    "level_findings",
    "rejection",
    "rejections",
]

#: Pod Security admission label that rejects non-conforming pods.
ENFORCE_LABEL: Final = "pod-security.kubernetes.io/enforce"
#: What Pod Security ``restricted`` checks.
RESTRICTED_RULES: Final[tuple[PodRule, ...]] = (
    cs.NO_PRIVILEGED_CONTAINERS,
    cs.NO_PRIVILEGE_ESCALATION,
    cs.DROP_ALL_CAPABILITIES,
    cs.RUN_AS_NON_ROOT,
    cs.SECCOMP_PROFILE,
    cs.NO_UNSAFE_POD_OPTIONS,
    ps.NO_HOST_ACCESS,
    ps.RESTRICTED_VOLUME_TYPES,
)
#: What Pod Security ``baseline`` checks.
BASELINE_RULES: Final[tuple[PodRule, ...]] = (ps.NO_PRIVILEGED_WORKLOADS, cs.NO_UNSAFE_POD_OPTIONS)
#: The rules of each level a namespace can enforce (``privileged`` checks nothing).
LEVEL_RULES: Final[Mapping[str, tuple[PodRule, ...]]] = {
    "restricted": RESTRICTED_RULES,
    "baseline": BASELINE_RULES,
}
#: The job pod rules: ``restricted`` and the pack's own no-service-account-token.
JOB_POD_RULES: Final[tuple[PodRule, ...]] = (*RESTRICTED_RULES, ps.NO_SERVICE_ACCOUNT_TOKEN)


def enforced_level(labels: object) -> str | None:
    """The level a namespace's labels enforce, if one the pack checks (else ``None``)."""
    level = as_str(labels.get(ENFORCE_LABEL)) if isinstance(labels, dict) else None
    return level if level in LEVEL_RULES else None


def level_findings(target: PodTarget, level: str, settings: Settings) -> Iterator[Finding]:
    """What ``level`` finds wrong with ``target``, with Pod Security's own allowances."""
    pss = dataclasses.replace(
        settings, allowed_uids=frozenset(), allowed_capabilities=frozenset({"NET_BIND_SERVICE"})
    )
    for rule in LEVEL_RULES[level]:
        yield from rule.check(target, pss)


def rejection(finding: Finding, namespace: str, level: str, pod: str) -> Finding:
    """``finding`` told as the reason namespace ``namespace`` enforcing ``level`` rejects
    ``pod`` (e.g. ``the listener pod the controller starts there``)."""
    return dataclasses.replace(
        finding,
        problem=f"namespace {namespace!r} enforces Pod Security {level} and would reject "
        f"{pod}: {finding.problem}",
    )


def rejections(
    target: PodTarget, namespace: str, level: str, settings: Settings, pod: str
) -> Iterator[Finding]:
    """Why namespace ``namespace`` enforcing ``level`` would reject ``target`` (``pod``)."""
    for finding in level_findings(target, level, settings):
        yield rejection(finding, namespace, level, pod)
