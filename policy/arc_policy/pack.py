"""Every rule of the pack, in report order, the policies of one run, and the pack's metadata."""

from __future__ import annotations

from typing import Final

from pulumi_policy import Policy

from .exemptions import ExemptionLedger
from .policy_kit import Rule
from .rules import (
    container_security,
    credentials,
    exemptions_report,
    hook_pods,
    images,
    listener,
    namespaces,
    pod_security,
    runner_mode,
)

__all__ = ["PACK_DESCRIPTION", "PACK_NAME", "RULES", "all_policies"]

#: Policy pack name (also in PulumiPolicy.yaml).
PACK_NAME: Final = "arc-zfs-cache"
#: One-line description of the pack.
PACK_DESCRIPTION: Final = (
    "Non-privileged GitHub Actions job and runner pods on Kubernetes (ARC, kubernetes mode)."
)
#: The rules of the pack; ``policy-exemptions`` last, after the rules it reports on.
RULES: Final[tuple[Rule, ...]] = (
    *container_security.RULES,
    *pod_security.RULES,
    *runner_mode.RULES,
    *images.RULES,
    *credentials.RULES,
    *namespaces.RULES,
    *listener.RULES,
    *hook_pods.RULES,
    *exemptions_report.RULES,
)


def all_policies(ledger: ExemptionLedger | None = None) -> list[Policy]:
    """The policies of one run of the pack, all recording exemptions in ``ledger`` (a new one
    by default), which ``policy-exemptions`` reports at the end of the run."""
    run_ledger = ExemptionLedger() if ledger is None else ledger
    return [rule.policy(run_ledger) for rule in RULES]
