"""Helpers the rules share: walking a pod's containers and writing findings about them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

from ..model import Finding, PodTarget
from ..values import UNKNOWN, as_list, as_mapping, is_unknown

__all__ = [
    "CONTAINER_GROUPS",
    "ContainerRef",
    "containers",
    "pod_finding",
    "pod_security_context",
]

#: Where a pod spec lists containers (all three are checked by Pod Security admission).
CONTAINER_GROUPS: Final = ("initContainers", "containers", "ephemeralContainers")


@dataclass(frozen=True)
class ContainerRef:
    """One container of a pod target."""

    target: PodTarget
    group: str
    name: str
    container: dict[str, Any]

    @property
    def security_context(self) -> Any:
        """The container's ``securityContext``: a dict, ``None`` when unset, or UNKNOWN."""
        context = self.container.get("securityContext")
        if is_unknown(context):
            return UNKNOWN
        return as_mapping(context)

    def field(self, name: str) -> Any:
        """A field of the container's securityContext (UNKNOWN if the context is unknown)."""
        context = self.security_context
        if context is UNKNOWN:
            return UNKNOWN
        value = (context or {}).get(name)
        return UNKNOWN if is_unknown(value) else value

    def path(self, suffix: str = "") -> str:
        """Path of a field of this container as the user declares it."""
        return self.target.container_path(self.group, self.name, suffix)

    def finding(self, suffix: str, problem: str, fix: str) -> Finding:
        """A finding about this container's field ``suffix``."""
        hint = f" ({self.target.fix_hint})" if self.target.fix_hint else ""
        return Finding(
            resource=self.target.resource,
            path=self.path(suffix),
            problem=problem,
            fix=fix + hint,
            subject=self.target.kind.value,
            container=self.target.display_name(self.name),
        )


def containers(target: PodTarget) -> Iterator[ContainerRef]:
    """Every known container of the pod, init and ephemeral containers included."""
    for group in CONTAINER_GROUPS:
        for index, container in enumerate(as_list(target.spec.get(group))):
            if not isinstance(container, dict):
                continue
            name = container.get("name")
            yield ContainerRef(
                target, group, name if isinstance(name, str) else f"#{index}", container
            )


def pod_security_context(target: PodTarget) -> Any:
    """The pod-level ``securityContext``: a dict, ``None`` when unset, or UNKNOWN."""
    context = target.spec.get("securityContext")
    if is_unknown(context):
        return UNKNOWN
    return as_mapping(context)


def pod_finding(target: PodTarget, suffix: str, problem: str, fix: str) -> Finding:
    """A finding about the pod-level field ``suffix`` (e.g. ``securityContext.runAsUser``)."""
    hint = f" ({target.fix_hint})" if target.fix_hint else ""
    return Finding(
        resource=target.resource,
        path=target.pod_path(suffix),
        problem=problem,
        fix=fix + hint,
        subject=target.kind.value,
    )
