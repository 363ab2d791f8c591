"""Which exemptions were applied in this run, so that the output lists every one of them.

Pulumi reports a violation at its policy's enforcement level, so a mandatory policy cannot
itself print an advisory line for a resource it skips. Every policy of one run records in that
run's :class:`ExemptionLedger` (given to each policy when the pack is built,
``pack.all_policies``) the exemptions configured for it and the resources it skipped; the
advisory stack policy ``policy-exemptions`` runs after all resource policies (the engine calls
stack validation last, in the same policy-pack process) and reports them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass

from .config import Exemption
from .model import ResourceRef

__all__ = ["ExemptionLedger", "ExemptionUse"]


@dataclass(frozen=True)
class ExemptionUse:
    """A resource a policy skipped because of an exemption."""

    policy: str
    resource: ResourceRef
    exemption: Exemption

    def message(self) -> str:
        """Advisory line: which resource, which policy, which exemption, why."""
        return (
            f"{self.resource} is exempt from policy {self.policy!r} "
            f"(exemption {self.exemption.resource!r}): {self.exemption.reason}"
        )


class ExemptionLedger:
    """Thread-safe record of configured and applied exemptions (the analyzer is threaded)."""

    def __init__(self) -> None:
        """Start empty."""
        self._lock = threading.Lock()
        self._configured: dict[str, tuple[Exemption, ...]] = {}
        self._uses: dict[tuple[str, str, str], ExemptionUse] = {}

    def configure(self, policy: str, exemptions: Iterable[Exemption]) -> None:
        """Note the exemptions configured for ``policy``."""
        with self._lock:
            self._configured[policy] = tuple(exemptions)

    def record(self, policy: str, resource: ResourceRef, exemption: Exemption) -> None:
        """Note that ``policy`` skipped ``resource`` because of ``exemption``."""
        with self._lock:
            key = (policy, resource.key, exemption.resource)
            self._uses[key] = ExemptionUse(policy, resource, exemption)

    def drain(self) -> tuple[list[ExemptionUse], list[tuple[str, Exemption]]]:
        """Applied exemptions, and configured ones that matched nothing; then forget both."""
        with self._lock:
            uses = sorted(self._uses.values(), key=lambda u: (u.resource.key, u.policy))
            used = {(u.policy, u.exemption.resource) for u in uses}
            unused = [
                (policy, exemption)
                for policy, exemptions in sorted(self._configured.items())
                for exemption in exemptions
                if (policy, exemption.resource) not in used
            ]
            self._uses.clear()
            self._configured.clear()
            return uses, unused
