"""What the rules look at (resources, pods found in them) and what they report (findings)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import Exemption

__all__ = ["Finding", "PodKind", "PodTarget", "ResourceRef"]


@dataclass(frozen=True)
class ResourceRef:
    """A declared Pulumi resource, named the Kubernetes way (``Kind namespace/name``)."""

    #: Pulumi type token, e.g. ``kubernetes:core/v1:ConfigMap``.
    type: str
    #: Kubernetes kind (``ConfigMap``), or the last part of the type token for other resources.
    kind: str
    #: Namespace; empty for cluster-scoped objects.
    namespace: str
    #: Kubernetes object name (``metadata.name``), or the Pulumi resource name.
    name: str
    #: Pulumi URN, empty when unknown.
    urn: str = ""

    @property
    def key(self) -> str:
        """``Kind/namespace/name``: the form exemptions are written in."""
        return f"{self.kind}/{self.namespace}/{self.name}"

    def __str__(self) -> str:
        """``Kind namespace/name`` (``Kind name`` when cluster-scoped)."""
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {where}"


class PodKind(Enum):
    """Which pods a :class:`PodTarget` stands for."""

    #: The job pod runner-container-hooks creates, template merged in.
    JOB = "job pod"
    #: The pod runner-container-hooks creates for a container step, template merged in.
    STEP = "step pod"
    #: The runner pod of a scale set.
    RUNNER = "runner pod"
    #: The listener pod the ARC controller starts for a scale set, in its own namespace.
    LISTENER = "listener pod"
    #: Any other workload's pod template.
    WORKLOAD = "pod"


@dataclass(frozen=True)
class PodTarget:
    """A pod the rules check, and where its fields are declared in the resource.

    ``pod`` is the *effective* pod (``metadata`` and ``spec``): for a job pod, the hook's base
    pod with the template merged in; for a runner declared through chart values, the pod the
    chart renders. Paths in findings are written as ``prefix + spec...``, with container names
    mapped back to what the user declares (``job`` → ``$job``) through ``declared``.
    """

    kind: PodKind
    resource: ResourceRef
    pod: dict[str, Any]
    #: Where the pod template lives in the resource, e.g. ``spec.template.`` or
    #: ``data.content: `` (a YAML document inside a ConfigMap key).
    prefix: str
    #: Effective container name → name to show in paths (``{"job": "$job"}``).
    declared: dict[str, str] = field(default_factory=dict)
    #: Effective container name → full path for containers the user does not declare directly
    #: (added by a chart, e.g. ``values.containerMode.type``).
    origin: dict[str, str] = field(default_factory=dict)
    #: What to tell the user about where to fix the pod.
    fix_hint: str = ""

    @property
    def spec(self) -> dict[str, Any]:
        """The pod spec (empty when missing or unknown)."""
        spec = self.pod.get("spec")
        return spec if isinstance(spec, dict) else {}

    def pod_path(self, suffix: str) -> str:
        """Path of a pod-level field, e.g. ``pod_path("securityContext.runAsNonRoot")``."""
        return f"{self.prefix}spec.{suffix}"

    def container_path(self, group: str, name: str, suffix: str = "") -> str:
        """Path of a container field; ``group`` is ``containers`` or ``initContainers``."""
        if name in self.origin:
            base = self.origin[name]
        else:
            base = f"{self.prefix}spec.{group}[{self.declared.get(name, name)}]"
        return f"{base}.{suffix}" if suffix else base

    def display_name(self, name: str) -> str:
        """The container name as the user declares it."""
        return self.declared.get(name, name)


@dataclass(frozen=True)
class Finding:
    """One violation: where, what is wrong, and how to fix it."""

    resource: ResourceRef
    path: str
    problem: str
    fix: str
    #: ``job pod``, ``runner pod``... (empty for non-pod findings).
    subject: str = ""
    #: Container as the user declares it (empty for pod-level or non-pod findings).
    container: str = ""
    #: The configured exemption that covers this finding, if the rule itself knows it (a
    #: namespace allowed at ``baseline``): it is recorded as applied, never reported.
    exemption: Exemption | None = None

    def message(self) -> str:
        """The violation message: resource, container, field path, problem and fix."""
        where = str(self.resource)
        if self.subject:
            where += f" ({self.subject})"
        if self.container:
            where += f", container {self.container!r}"
        return f"{where}: {self.path}: {self.problem}. Fix: {self.fix}"
