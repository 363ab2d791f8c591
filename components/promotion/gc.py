"""Garbage-collection rules of cache promotion (pure: decisions from an inventory).

A superseded generation is deleted only when it is not current, is not the stack's root
generation, was superseded longer ago than the grace period, and nothing refers to it or
depends on it: no ConfigMap names it, no PVC is cloned from it, no pod mounts it, no
VolumeSnapshot is taken of it, and (ZFS level) no ZFSVolume is a clone of its dataset and no
ZFSSnapshot belongs to it. Its source snapshot goes once no claim is restored from it and no
dataset is a clone of its ZFS snapshot. A retired builder volume goes after the retention
period under the same dependency rules. Every object that is kept is reported with why.

OpenEBS has no ``zfs promote``: a generation restored from a snapshot of a builder volume
that was itself cloned from an older generation keeps that whole chain alive. These rules
do not fight that; they collect what ZFS can destroy and say what holds the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from components import constants as c
from components.promotion.model import (
    Claim,
    Inventory,
    Pointer,
    PromotionInputs,
    Snapshot,
    builder_index_of,
    format_time,
    generation_of,
    parse_time,
)

__all__ = ["Action", "Decision", "GcSettings", "human_duration", "pending", "plan_gc"]


class Action(StrEnum):
    """What garbage collection does with one object."""

    KEEP = "keep"
    DELETE = "delete"
    #: A superseded generation without ``superseded-at`` (a crash right after the pointer swap):
    #: stamp it now, so its grace period starts now (the conservative choice).
    STAMP_SUPERSEDED = "stamp-superseded"
    #: A replaced builder volume without ``retired-at``: stamp it now, retention starts now.
    STAMP_RETIRED = "stamp-retired"


@dataclass(frozen=True, slots=True)
class GcSettings:
    """The rules' parameters for one cache."""

    cache: str
    #: Generation 1's claim: created by the stack, never collected here.
    root_claim: str
    #: Builder volume 1: created by the stack, never collected here.
    stack_builder: str
    grace: timedelta
    retention: timedelta
    now: datetime

    @classmethod
    def of(cls, inputs: PromotionInputs, now: datetime) -> GcSettings:
        """The rules' parameters from the resource's inputs, at ``now``."""
        return cls(
            cache=inputs.cache,
            root_claim=inputs.root_claim,
            stack_builder=inputs.builder_volume,
            grace=timedelta(seconds=inputs.grace_seconds),
            retention=timedelta(seconds=inputs.retention_seconds),
            now=now,
        )


@dataclass(frozen=True, slots=True)
class Decision:
    """One object and what happens to it, with every reason."""

    kind: str
    name: str
    action: Action
    reasons: tuple[str, ...]

    def describe(self) -> str:
        """One line for preview and the update report."""
        why = "; ".join(self.reasons)
        if self.action is Action.DELETE:
            return f"collect {self.kind} {self.name}: {why}"
        if self.action is Action.KEEP:
            return f"keep {self.kind} {self.name}: {why}"
        return f"stamp {self.kind} {self.name}: {why}"


def human_duration(span: timedelta) -> str:
    """``3m12s``, ``2h``, ``7d`` (whole seconds; negative spans read as 0s)."""
    seconds = max(0, int(span.total_seconds()))
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"


def pending(decisions: list[Decision]) -> list[Decision]:
    """The decisions that change something (deletes and stamps)."""
    return [d for d in decisions if d.action is not Action.KEEP]


def plan_gc(inventory: Inventory, pointer: Pointer, settings: GcSettings) -> list[Decision]:
    """Decide, for every generation, source snapshot and builder volume of the cache."""
    decisions: list[Decision] = []
    for claim in sorted(
        inventory.cache_claims(settings.cache, c.ROLE_PARENT), key=lambda x: x.name
    ):
        decisions.append(_parent(inventory, pointer, settings, claim))
    for snap in sorted(inventory.cache_snapshots(settings.cache), key=lambda x: x.name):
        decisions.append(_source_snapshot(inventory, snap))
    for claim in sorted(
        inventory.cache_claims(settings.cache, c.ROLE_BUILDER_VOLUME), key=lambda x: x.name
    ):
        decisions.append(_builder(inventory, pointer, settings, claim))
    return decisions


_PVC = "PersistentVolumeClaim"
_SNAPSHOT = "VolumeSnapshot"


@dataclass(frozen=True, slots=True)
class _Ageing:
    """How a replaced claim ages out: a superseded generation, or a retired builder volume."""

    #: The stamp that starts its period.
    annotation: str
    #: The action that sets a missing stamp.
    stamp: Action
    #: What a claim without the stamp is, and what the stamp says it is.
    unstamped: str
    stamped: str
    #: The period in words while it runs (``{}``: its length), and once it is over.
    running: str
    over: str


_SUPERSEDED = _Ageing(
    c.ANNOTATION_SUPERSEDED_AT,
    Action.STAMP_SUPERSEDED,
    unstamped="superseded",
    stamped="superseded",
    running="grace period {}",
    over="grace period",
)
_RETIRED = _Ageing(
    c.ANNOTATION_RETIRED_AT,
    Action.STAMP_RETIRED,
    unstamped="replaced",
    stamped="retired",
    running="kept {} for troubleshooting",
    over="retention",
)


def _parent(inv: Inventory, pointer: Pointer, s: GcSettings, claim: Claim) -> Decision:
    def keep(*reasons: str) -> Decision:
        return Decision(_PVC, claim.name, Action.KEEP, reasons)

    generation = generation_of(claim.name, claim.labels)
    if claim.name == pointer.parent_claim:
        return keep(f"current parent (generation {pointer.generation})")
    if claim.name == s.root_claim:
        return keep(
            "root generation, owned by the stack: never collected by promotion",
            *inv.claim_dependents(claim),
        )
    if claim.deleting:
        return keep("deletion in progress")
    if generation is None:
        return keep(f"no {c.LABEL_GENERATION} label and no generation in its name: not touched")
    leftover = (
        f"left by an unfinished promotion (generation {generation} > current {pointer.generation})"
        if generation > pointer.generation
        else None
    )
    return _replaced(
        claim,
        dependents=inv.claim_dependents(claim),
        leftover=leftover,
        ageing=_SUPERSEDED,
        period=s.grace,
        now=s.now,
    )


def _source_snapshot(inv: Inventory, snap: Snapshot) -> Decision:
    if snap.deleting:
        return Decision(_SNAPSHOT, snap.name, Action.KEEP, ("deletion in progress",))
    dependents = inv.snapshot_dependents(snap)
    if dependents:
        return Decision(_SNAPSHOT, snap.name, Action.KEEP, tuple(dependents))
    return Decision(
        _SNAPSHOT,
        snap.name,
        Action.DELETE,
        ("no claim is restored from it and no dataset is a clone of it",),
    )


def _builder(inv: Inventory, pointer: Pointer, s: GcSettings, claim: Claim) -> Decision:
    def keep(*reasons: str) -> Decision:
        return Decision(_PVC, claim.name, Action.KEEP, reasons)

    if claim.name == pointer.builder_claim:
        return keep("current builder volume")
    dependents = inv.claim_dependents(claim)
    if claim.name == s.stack_builder:
        return keep("first builder volume, owned by the stack: never collected", *dependents)
    if claim.deleting:
        return keep("deletion in progress")
    index = builder_index_of(claim.name)
    leftover = (
        f"left by an unfinished builder reset (index {index} > current {pointer.builder_index})"
        if index is not None and index > pointer.builder_index
        else None
    )
    return _replaced(
        claim,
        dependents=dependents,
        leftover=leftover,
        ageing=_RETIRED,
        period=s.retention,
        now=s.now,
    )


def _replaced(
    claim: Claim,
    *,
    dependents: list[str],
    leftover: str | None,
    ageing: _Ageing,
    period: timedelta,
    now: datetime,
) -> Decision:
    """A claim the pointer no longer names: what an unfinished run left (``leftover`` says
    why it is one) goes once nothing needs it; anything else also waits out ``period`` from
    its stamp (stamped now if missing)."""

    def keep(*reasons: str) -> Decision:
        return Decision(_PVC, claim.name, Action.KEEP, reasons)

    if leftover is not None:
        if dependents:
            return keep(leftover, *dependents)
        return Decision(_PVC, claim.name, Action.DELETE, (leftover,))
    stamp = parse_time(claim.annotations.get(ageing.annotation))
    if stamp is None:
        missing = f"{ageing.unstamped} but {ageing.annotation} is missing: stamped now"
        return Decision(_PVC, claim.name, ageing.stamp, (missing,))
    age = now - stamp
    reasons: list[str] = []
    if age <= period:
        reasons.append(
            f"{ageing.stamped} {human_duration(age)} ago, "
            f"{ageing.running.format(human_duration(period))} "
            f"(collectable after {format_time(stamp + period)})"
        )
    reasons.extend(dependents)
    if reasons:
        return keep(*reasons)
    return Decision(
        _PVC,
        claim.name,
        Action.DELETE,
        (
            f"{ageing.stamped} {human_duration(age)} ago ({ageing.over} "
            f"{human_duration(period)}); nothing refers to it or depends on it",
        ),
    )
