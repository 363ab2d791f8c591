"""CachePromotion: the current parent claim of a cache, moved forward by safe promotion.

The dynamic provider that takes the Lease, snapshots the builder volume and swaps the pointer
lives in :mod:`components.promotion.provider` (protocol and rules: docs/promotion.md); this
module declares the resource and its typed inputs and outputs, which the rest of the program
consumes. Creating the resource starts the lineage at generation 1 (``root_claim``) and
builder volume 1 (``builder_volume``), both owned by the stack; later generations and builder
volumes belong to the provider.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pulumi
from pulumi.dynamic import Resource

from components import constants as c
from components.promotion.provider import OUTPUTS, CachePromotionProvider

__all__ = ["CachePromotion", "CachePromotionArgs"]


@dataclass(frozen=True, slots=True)
class CachePromotionArgs:
    """Inputs of :class:`CachePromotion` (plain values except the claims created before it)."""

    namespace: str
    cache: str
    root_claim: pulumi.Input[str]
    builder_volume: pulumi.Input[str]
    size: str
    node: str
    parent_storage_class: pulumi.Input[str]
    snapshot_class: pulumi.Input[str]
    lease_duration: timedelta
    grace_period: timedelta
    retention: timedelta
    ready_timeout: timedelta
    promote: str | None
    reset_builder: str | None
    kubeconfig: pulumi.Input[str] | None
    context: str | None
    #: Where OpenEBS keeps its ZFSVolumes and ZFSSnapshots (``storage.namespace``): garbage
    #: collection reads the datasets' dependents there.
    zfs_namespace: str = c.OPENEBS_NAMESPACE

    def props(self) -> dict[str, Any]:
        """The dynamic resource's input properties (durations in seconds)."""
        return {
            "namespace": self.namespace,
            "cache": self.cache,
            "root_claim": self.root_claim,
            "builder_volume": self.builder_volume,
            "size": self.size,
            "node": self.node,
            "parent_storage_class": self.parent_storage_class,
            "snapshot_class": self.snapshot_class,
            "lease_seconds": int(self.lease_duration.total_seconds()),
            "grace_seconds": int(self.grace_period.total_seconds()),
            "retention_seconds": int(self.retention.total_seconds()),
            "ready_timeout_seconds": int(self.ready_timeout.total_seconds()),
            "promote": self.promote,
            "reset_builder": self.reset_builder,
            "kubeconfig": self.kubeconfig,
            "context": self.context,
            "zfs_namespace": self.zfs_namespace,
        }


class CachePromotion(Resource, module="promotion", name="CachePromotion"):
    """One cache's lineage of parent generations and its builder volume.

    Outputs: ``parent_claim`` (the claim every job clones), ``generation``,
    ``builder_claim`` (the builder scale set's volume), ``promoted_at``, ``token`` and
    ``reset_token`` (the tokens applied), ``report`` (what the last run did and what garbage
    collection kept, and why).
    """

    parent_claim: pulumi.Output[str]
    generation: pulumi.Output[int]
    builder_claim: pulumi.Output[str]
    promoted_at: pulumi.Output[str]
    token: pulumi.Output[str]
    reset_token: pulumi.Output[str]
    report: pulumi.Output[list[str]]

    def __init__(
        self, name: str, args: CachePromotionArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        props = args.props()
        # Declared as None so the engine treats them as outputs (unknown during preview).
        props.update(dict.fromkeys(OUTPUTS))
        super().__init__(CachePromotionProvider(), name, props, opts)
