"""Every policy of the pack, in report order, and the pack's metadata."""

from __future__ import annotations

from typing import Final

from pulumi_policy import Policy

from .rules import (
    container_security,
    credentials,
    exemptions_report,
    images,
    listener,
    namespaces,
    pod_security,
    runner_mode,
)

__all__ = ["PACK_DESCRIPTION", "PACK_NAME", "all_policies"]

#: Policy pack name (also in PulumiPolicy.yaml).
PACK_NAME: Final = "arc-zfs-cache"
#: One-line description of the pack.
PACK_DESCRIPTION: Final = (
    "Non-privileged GitHub Actions job and runner pods on Kubernetes (ARC, kubernetes mode)."
)


def all_policies() -> list[Policy]:
    """The policies of the pack; ``policy-exemptions`` last, after the policies it reports on."""
    return [
        *container_security.POLICIES,
        *pod_security.POLICIES,
        *runner_mode.POLICIES,
        *images.POLICIES,
        *credentials.POLICIES,
        *namespaces.POLICIES,
        *listener.POLICIES,
        *exemptions_report.POLICIES,
    ]
