"""The steps of the promotion protocol (docs/promotion.md), written against the cluster port.

:func:`start` begins or adopts a lineage, :func:`update` promotes, resets the builder volume
and collects garbage under the cache's lease, :func:`retire` is what deleting the resource
does. Each step is idempotent and names are deterministic, so a re-run after a crash at any
point (see :data:`STEPS`) adopts what the crashed run made, or removes what would be wrong to
adopt. Pure apart from the port, the lease and the clock they are given.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from components import constants as c
from components.promotion import manifests
from components.promotion.gc import Action, Decision, GcSettings, pending, plan_gc
from components.promotion.model import (
    Claim,
    Inventory,
    Pointer,
    PromotionInputs,
    Snapshot,
    builder_users,
    format_time,
)
from components.promotion.plan import (
    Plan,
    Tokens,
    describe_adoption,
    plan,
    pointer_from_state,
    recorded_tokens,
)
from components.promotion.port import (
    SYSTEM_CLOCK,
    Clock,
    ClusterPort,
    LeasePort,
    PointerConflictError,
    WaitTimeoutError,
    wait_for,
)

__all__ = [
    "STEPS",
    "BuilderInUseError",
    "CloneNotBoundError",
    "Outcome",
    "PromotionError",
    "Run",
    "SnapshotNotReadyError",
    "after_step",
    "retire",
    "start",
    "update",
]

#: Protocol steps, in order, as passed to :func:`after_step`.
STEPS: Final = (
    "lease-acquired",
    "builder-checked",
    "snapshot-created",
    "snapshot-ready",
    "generation-created",
    "generation-bound",
    "pointer-swapped",
    "superseded-stamped",
    "builder-created",
    "builder-bound",
    "builder-swapped",
    "builder-retired",
    "gc-applied",
    "lease-released",
)
T = TypeVar("T")

#: Rounds of garbage collection per run: deleting a generation frees its snapshot, which may
#: free a retired builder volume; each round waits for the previous round's deletions.
_GC_ROUNDS: Final = 4


def after_step(step: str) -> None:
    """Called after each protocol step (see :data:`STEPS`). Does nothing in production.

    The crash tests replace it (tests/e2e/promotion_driver.py kills its process right after a
    step; the unit tests raise) and then check that a re-run converges.
    """


def _step(step: str) -> None:
    # Looked up at call time so a test's replacement of after_step takes effect.
    after_step(step)


class PromotionError(RuntimeError):
    """A promotion, reset or deletion cannot proceed; the message says why and what to do."""


class BuilderInUseError(PromotionError):
    """The builder volume is mounted by live pods (named in the message and ``pods``)."""

    def __init__(self, message: str, pods: list[str]) -> None:
        super().__init__(message)
        self.pods = pods


class SnapshotNotReadyError(PromotionError):
    """The builder volume's snapshot did not become readyToUse in time."""


class CloneNotBoundError(PromotionError):
    """A new generation or builder volume did not become Bound in time."""


@dataclass(frozen=True, slots=True)
class Run:
    """What every step works with: the cluster, the resource's inputs and the clock."""

    cluster: ClusterPort
    inputs: PromotionInputs
    clock: Clock = SYSTEM_CLOCK

    @property
    def timeout(self) -> float:
        """How long each wait may take (``readyTimeout``)."""
        return float(self.inputs.ready_timeout_seconds)

    def wait(self, probe: Callable[[], T | None], on_timeout: Callable[[], str]) -> T:
        """:func:`wait_for` with this run's timeout and clock."""
        return wait_for(probe, self.timeout, on_timeout, self.clock)


@dataclass(frozen=True, slots=True)
class Outcome:
    """Where a run left the pointer, the tokens the stack records, and what it did."""

    pointer: Pointer
    tokens: Tokens
    report: list[str] = field(default_factory=list)


# --- create ----------------------------------------------------------------------------------


def start(run: Run) -> Outcome:
    """Start the lineage at generation 1 (the stack's root claim) and builder volume 1,
    recording the tokens present at creation (there is no build to promote yet), or adopt
    the lineage an earlier resource left (its pointer)."""
    inputs, cluster = run.inputs, run.cluster
    report: list[str] = []
    found = cluster.read_pointer(inputs.cache)
    if found is None:
        _wait_bound(run, inputs.root_claim, "root generation")
        fresh = Pointer(
            generation=1,
            parent_claim=inputs.root_claim,
            builder_index=1,
            builder_claim=inputs.builder_volume,
            promote_token=inputs.promote,
            reset_token=inputs.reset_builder,
            promoted_at=format_time(run.clock.now()),
            promote_history=(inputs.promote,) if inputs.promote else (),
            reset_history=(inputs.reset_builder,) if inputs.reset_builder else (),
        )
        if cluster.create_pointer(inputs.cache, fresh):
            report.append(
                f"started at generation 1 ({inputs.root_claim}) with builder volume "
                f"{inputs.builder_volume}"
            )
            pointer = fresh
        else:  # created concurrently by another run: adopt it
            again = cluster.read_pointer(inputs.cache)
            if again is None:
                raise PromotionError(
                    f"promotion pointer of {inputs.where} appeared and vanished while "
                    "this run created it; run `pulumi up` again"
                )
            pointer = again[0]
            report.append(f"adopted the pointer another run created: gen {pointer.generation}")
    else:
        pointer = found[0]
        _check_adoptable(run, pointer)
        report.append(
            f"adopted the existing lineage: gen {pointer.generation} "
            f"({pointer.parent_claim}), builder volume {pointer.builder_claim}"
        )
    tokens = recorded_tokens(Tokens.requested(inputs), pointer, Tokens.of(pointer))
    return Outcome(pointer, tokens, report)


def _check_adoptable(run: Run, pointer: Pointer) -> None:
    inputs = run.inputs
    for what, name in (
        ("parent", pointer.parent_claim),
        ("builder volume", pointer.builder_claim),
    ):
        claim = run.cluster.claim(name)
        if claim is None or not claim.bound:
            state = "missing" if claim is None else f"{claim.phase}, deleting={claim.deleting}"
            pointer_name = c.promotion_pointer_name(inputs.cache)
            raise PromotionError(
                f"the promotion pointer {inputs.namespace}/{pointer_name} left by an earlier "
                f"deployment names {what} {name}, which is {state}: it cannot be adopted. "
                "Restore that claim, or delete the pointer ConfigMap to start again at "
                f"generation 1 (kubectl -n {inputs.namespace} delete configmap {pointer_name})"
            )


# --- update ----------------------------------------------------------------------------------


def update(run: Run, lease: LeasePort, state: Tokens, olds: Mapping[str, Any]) -> Outcome:
    """Promote (new promote token), reset the builder volume (new reset token), then collect
    garbage, all under the cache's lease. ``state`` are the tokens the stack recorded and
    ``olds`` its last outputs (to rebuild a pointer deleted by hand)."""
    inputs = run.inputs
    report: list[str] = []
    try:
        lease.acquire(inputs.lease_wait_seconds)
        _step("lease-acquired")
        pointer, version = _pointer_for_update(run, olds, report)
        decided = plan(inputs.cache, pointer, Tokens.requested(inputs), state, run.clock.now())
        pointer, version = _act(run, lease, decided, version, report)
        report.extend(_collect(run, lease, pointer))
    finally:
        lease.release()
        _step("lease-released")
    return Outcome(pointer, recorded_tokens(Tokens.requested(inputs), pointer, state), report)


def _act(
    run: Run, lease: LeasePort, decided: Plan, version: str, report: list[str]
) -> tuple[Pointer, str]:
    cache, pointer = run.inputs.cache, decided.before
    requested = decided.requested
    if decided.promote:
        pointer, version = _promote(run, lease, pointer, version)
        report.append(
            f"promoted {cache} to gen {pointer.generation} ({pointer.parent_claim}) from "
            f"{pointer.builder_claim}"
        )
    elif decided.adopt_promote and requested.promote is not None:
        report.append(describe_adoption(cache, "promote", requested.promote, pointer))
    if decided.reset:
        old_builder = pointer.builder_claim
        pointer, version = _reset(run, lease, pointer, version)
        report.append(
            f"reset {cache} builder: {old_builder} → {pointer.builder_claim} from "
            f"{pointer.parent_claim}"
        )
    elif decided.adopt_reset and requested.reset is not None:
        report.append(describe_adoption(cache, "reset", requested.reset, pointer))
    return pointer, version


def _pointer_for_update(
    run: Run, olds: Mapping[str, Any], report: list[str]
) -> tuple[Pointer, str]:
    inputs, cluster = run.inputs, run.cluster
    found = cluster.read_pointer(inputs.cache)
    if found is not None:
        return found
    # Deleted by hand: the stack's state still knows the lineage; rebuild the pointer from
    # it if what it names is there (creating cannot race: we hold the lease).
    rebuilt = pointer_from_state(inputs, olds)
    _check_adoptable(run, rebuilt)
    cluster.create_pointer(inputs.cache, rebuilt)
    report.append(
        f"the promotion pointer was missing: rebuilt from the stack's state "
        f"(gen {rebuilt.generation}, builder volume {rebuilt.builder_claim})"
    )
    again = cluster.read_pointer(inputs.cache)
    if again is None:
        raise PromotionError(f"could not rebuild the promotion pointer of {inputs.where}")
    return again


# --- promotion -------------------------------------------------------------------------------


def _promote(run: Run, lease: LeasePort, pointer: Pointer, version: str) -> tuple[Pointer, str]:
    inputs, cluster = run.inputs, run.cluster
    cache = inputs.cache
    target = pointer.generation + 1
    gen_name = c.generation_name(cache, target)
    snap_name = c.source_snapshot_name(cache, target)
    builder = cluster.claim(pointer.builder_claim)
    if builder is None or not builder.bound:
        state = "missing" if builder is None else f"{builder.phase}"
        raise PromotionError(
            f"cannot promote {cache}: builder volume {inputs.namespace}/"
            f"{pointer.builder_claim} is {state}, so there is nothing to snapshot. Reset the "
            f"builder volume (caches.{cache}.resetBuilder) or restore the claim"
        )
    _refuse_if_in_use(run, builder.name, "")
    _step("builder-checked")
    _clear_leftovers(run, lease, gen_name=gen_name, snap_name=snap_name, builder=builder.name)
    if cluster.snapshot(snap_name) is None:
        lease.ensure_held()
        # The last look before the snapshot: the window between this check and the
        # snapshot's creation is one API round trip.
        _refuse_if_in_use(run, builder.name, "")
        cluster.create_snapshot(manifests.source_snapshot(inputs, snap_name, builder.name, target))
        _step("snapshot-created")
    snapshot = _wait_snapshot(run, snap_name, builder.name)
    # A pod that mounted the builder volume while the snapshot was taken may have written
    # to it mid-snapshot: discard the snapshot rather than promote a torn cache.
    _refuse_if_in_use(run, builder.name, snap_name)
    _step("snapshot-ready")
    if cluster.claim(gen_name) is None:
        lease.ensure_held()
        cluster.create_claim(manifests.generation(inputs, gen_name, snap_name, snapshot, target))
        _step("generation-created")
    _wait_bound(run, gen_name, f"generation {target}")
    _step("generation-bound")
    new = pointer.promoted(cache, inputs.promote, run.clock.now())
    lease.ensure_held()
    version = _swap(run, new, version)
    _step("pointer-swapped")
    old = cluster.claim(pointer.parent_claim)
    if old is not None and c.ANNOTATION_SUPERSEDED_AT not in old.annotations:
        cluster.annotate_claim(old.name, {c.ANNOTATION_SUPERSEDED_AT: new.promoted_at})
    _step("superseded-stamped")
    return new, version


def _refuse_if_in_use(run: Run, claim: str, snapshot: str) -> None:
    users = builder_users(run.cluster.pods(), claim)
    if not users:
        return
    discarded = ""
    if snapshot:
        run.cluster.delete_snapshot(snapshot)
        discarded = f" The snapshot {snapshot} taken meanwhile was discarded."
    raise BuilderInUseError(
        f"refusing to promote {run.inputs.cache}: builder volume {run.inputs.namespace}/{claim} "
        f"is mounted by pod(s) {', '.join(users)}; a snapshot now could capture a half-written "
        f"cache.{discarded} Let the builder job finish (or delete the pod), then run "
        "`pulumi up` again.",
        users,
    )


def _clear_leftovers(
    run: Run, lease: LeasePort, *, gen_name: str, snap_name: str, builder: str
) -> None:
    """Adopt what an earlier attempt of THIS promotion left (same token, same builder);
    remove what an attempt with another token left (it would promote stale content)."""
    inputs, cluster = run.inputs, run.cluster
    snapshot = cluster.snapshot(snap_name)
    claim = cluster.claim(gen_name)
    stale_snapshot = snapshot is not None and (
        snapshot.annotations.get(c.ANNOTATION_PROMOTE_TOKEN) != inputs.promote
        or snapshot.source_claim != builder
        or snapshot.deleting
        # A snapshot that failed (e.g. the class was missing) is retaken once fixed.
        or (snapshot.error is not None and not snapshot.ready)
    )
    stale_claim = claim is not None and (
        stale_snapshot
        or claim.annotations.get(c.ANNOTATION_PROMOTE_TOKEN) != inputs.promote
        or claim.data_source != ("VolumeSnapshot", snap_name)
        or claim.deleting
        # Never bound in a class the config no longer names: made again in the right one.
        or (not claim.bound and claim.storage_class != inputs.parent_storage_class)
    )
    if not stale_snapshot and not stale_claim:
        return
    lease.ensure_held()
    if stale_claim and claim is not None:
        blockers = cluster.inventory().claim_dependents(claim)
        if blockers:
            raise PromotionError(
                f"{inputs.namespace}/{gen_name} was left by an unfinished promotion with "
                f"another token and cannot be removed: {'; '.join(blockers)}. Remove those, "
                "then run `pulumi up` again"
            )
        cluster.delete_claim(gen_name)
    if stale_snapshot and snapshot is not None:
        cluster.delete_snapshot(snap_name)

    def gone() -> bool | None:
        if stale_claim and cluster.claim(gen_name) is not None:
            return None
        if stale_snapshot and cluster.snapshot(snap_name) is not None:
            return None
        return True

    run.wait(
        gone,
        lambda: (
            f"leftovers {gen_name}/{snap_name} of an earlier promotion attempt were not "
            f"deleted within {run.timeout:.0f}s; check their finalizers, then run `pulumi up` "
            "again"
        ),
    )


def _wait_snapshot(run: Run, name: str, builder: str) -> Snapshot:
    inputs = run.inputs

    def explain(snap: Snapshot | None) -> str:
        state = (
            "missing" if snap is None else f"readyToUse={snap.ready}, error: {snap.error or 'none'}"
        )
        return (
            f"snapshot {inputs.namespace}/{name} of builder volume {builder} was not ready "
            f"within {run.timeout:.0f}s ({state}). Check the snapshot controller and "
            f"VolumeSnapshotClass {inputs.snapshot_class} (readyTimeout is "
            f"caches.{inputs.cache}.readyTimeout). Run `pulumi up` again to resume: the "
            "snapshot is adopted, not retaken"
        )

    return _wait_until(
        run,
        lambda: run.cluster.snapshot(name),
        lambda snap: snap.ready and bool(snap.restore_size),
        explain,
        SnapshotNotReadyError,
    )


def _wait_bound(run: Run, name: str, what: str) -> Claim:
    inputs = run.inputs

    def explain(claim: Claim | None) -> str:
        events = "; ".join(run.cluster.events_about(name)[-3:]) or "no warning events"
        state = "missing" if claim is None else f"phase {claim.phase}"
        return (
            f"{what} claim {inputs.namespace}/{name} was not Bound within {run.timeout:.0f}s "
            f"({state}; {events}). Check the ZFS provisioner for StorageClass "
            f"{claim.storage_class if claim else inputs.parent_storage_class} on node "
            f"{inputs.node} (readyTimeout is caches.{inputs.cache}.readyTimeout). Run "
            "`pulumi up` again to resume: the claim is adopted, not recreated"
        )

    return _wait_until(
        run, lambda: run.cluster.claim(name), lambda claim: claim.bound, explain, CloneNotBoundError
    )


def _wait_until(
    run: Run,
    read: Callable[[], T | None],
    ready: Callable[[T], bool],
    explain: Callable[[T | None], str],
    error: type[PromotionError],
) -> T:
    """Read until ``ready``; on timeout raise ``error`` explaining the last read."""
    last: list[T | None] = [None]

    def probe() -> T | None:
        last[0] = found = read()
        return found if found is not None and ready(found) else None

    try:
        return run.wait(probe, lambda: explain(last[0]))
    except WaitTimeoutError as exc:
        raise error(str(exc)) from None


def _swap(run: Run, new: Pointer, version: str) -> str:
    try:
        return run.cluster.swap_pointer(run.inputs.cache, new, version)
    except PointerConflictError as exc:
        # Under the lease nobody else writes the pointer; a conflict means the lease was
        # broken (we stalled past expiry) or someone edited the pointer by hand.
        raise PromotionError(
            f"{exc}. Nothing was swapped; generation {new.generation} stays unused until a "
            "re-run adopts or removes it. Run `pulumi up` again"
        ) from None


# --- builder reset ---------------------------------------------------------------------------


def _reset(run: Run, lease: LeasePort, pointer: Pointer, version: str) -> tuple[Pointer, str]:
    inputs, cluster = run.inputs, run.cluster
    cache = inputs.cache
    name = c.builder_volume_name(cache, pointer.builder_index + 1)
    parent = cluster.claim(pointer.parent_claim)
    if parent is None or not parent.bound:
        raise PromotionError(
            f"cannot reset the builder of {cache}: its current parent "
            f"{inputs.namespace}/{pointer.parent_claim} is not Bound"
        )
    existing = cluster.claim(name)
    if existing is not None and (
        existing.annotations.get(c.ANNOTATION_RESET_TOKEN) != inputs.reset_builder
        or existing.data_source != ("PersistentVolumeClaim", parent.name)
        or existing.deleting
    ):
        lease.ensure_held()
        blockers = cluster.inventory().claim_dependents(existing)
        if blockers:
            raise PromotionError(
                f"{inputs.namespace}/{name} was left by an unfinished builder reset with "
                f"another token and cannot be removed: {'; '.join(blockers)}"
            )
        cluster.delete_claim(name)
        run.wait(
            lambda: True if cluster.claim(name) is None else None,
            lambda: f"leftover builder volume {name} was not deleted within {run.timeout:.0f}s",
        )
        existing = None
    if existing is None:
        lease.ensure_held()
        cluster.create_claim(manifests.builder_volume(inputs, name, parent))
        _step("builder-created")
    _wait_bound(run, name, "builder volume")
    _step("builder-bound")
    new = pointer.reset(cache, inputs.reset_builder)
    lease.ensure_held()
    version = _swap(run, new, version)
    _step("builder-swapped")
    old = cluster.claim(pointer.builder_claim)
    if old is not None and c.ANNOTATION_RETIRED_AT not in old.annotations:
        cluster.annotate_claim(old.name, {c.ANNOTATION_RETIRED_AT: format_time(run.clock.now())})
    _step("builder-retired")
    return new, version


# --- garbage collection ----------------------------------------------------------------------


def _collect(run: Run, lease: LeasePort, pointer: Pointer) -> list[str]:
    cluster = run.cluster
    done: list[str] = []
    decisions: list[Decision] = []
    for _ in range(_GC_ROUNDS):
        inventory = cluster.inventory()
        decisions = plan_gc(inventory, pointer, GcSettings.of(run.inputs, run.clock.now()))
        todo = pending(decisions)
        if not todo:
            break
        lease.ensure_held()
        deleted: list[Decision] = []
        for decision in todo:
            done.append(decision.describe())
            if decision.action is Action.STAMP_SUPERSEDED:
                stamp = {c.ANNOTATION_SUPERSEDED_AT: format_time(run.clock.now())}
                cluster.annotate_claim(decision.name, stamp)
            elif decision.action is Action.STAMP_RETIRED:
                stamp = {c.ANNOTATION_RETIRED_AT: format_time(run.clock.now())}
                cluster.annotate_claim(decision.name, stamp)
            elif decision.kind == "VolumeSnapshot":
                cluster.delete_snapshot(decision.name)
                deleted.append(decision)
            else:
                cluster.delete_claim(decision.name)
                deleted.append(decision)
        _step("gc-applied")
        if deleted and not _wait_gone(run, inventory, deleted):
            done.append("some deletions are still in progress; the next run looks again")
            break
    kept = [d.describe() for d in decisions if d.action is Action.KEEP]
    return done + kept


def _wait_gone(run: Run, inventory: Inventory, deleted: list[Decision]) -> bool:
    """Wait until deleted objects (and the datasets of deleted claims) are gone, so the next
    round sees what they freed; False on timeout (not an error: ZFS may be slow)."""
    cluster = run.cluster
    volumes = [
        claim.volume_name
        for d in deleted
        if d.kind == "PersistentVolumeClaim"
        and (claim := inventory.claim(d.name)) is not None
        and claim.volume_name
    ]

    def gone() -> bool | None:
        for d in deleted:
            present = (
                cluster.snapshot(d.name) if d.kind == "VolumeSnapshot" else cluster.claim(d.name)
            )
            if present is not None:
                return None
        if any(cluster.zfs_volume_exists(v) for v in volumes):
            return None
        return True

    try:
        run.wait(gone, lambda: "")
    except WaitTimeoutError:
        return False
    return True


# --- delete ----------------------------------------------------------------------------------


def retire(run: Run, lease: LeasePort) -> list[str]:
    """Never destroys data. With nothing but the stack's own generation 1 and builder volume
    1, remove the pointer and the lease (nothing is left behind). Otherwise leave every
    generation, snapshot and builder volume AND the pointer (so a new CachePromotion for this
    cache adopts the lineage); return what was left and how to remove it."""
    inputs, cluster = run.inputs, run.cluster
    left: list[str] = []
    try:
        lease.acquire(inputs.lease_wait_seconds)
        inventory = cluster.inventory()
        stack_owned = {inputs.root_claim, inputs.builder_volume}
        left = sorted(
            [
                f"PersistentVolumeClaim {x.name}"
                for role in (c.ROLE_PARENT, c.ROLE_BUILDER_VOLUME)
                for x in inventory.cache_claims(inputs.cache, role)
                if x.name not in stack_owned
            ]
            + [f"VolumeSnapshot {x.name}" for x in inventory.cache_snapshots(inputs.cache)]
        )
        if not left:
            lease.ensure_held()
            cluster.delete_pointer(inputs.cache)
    finally:
        lease.release()
    if left:
        return [
            f"left in place (promotion never destroys cache data): {', '.join(left)}, "
            f"and the pointer ConfigMap {c.promotion_pointer_name(inputs.cache)}; a new "
            "CachePromotion of this cache adopts them. To remove them: kubectl -n "
            f"{inputs.namespace} delete pvc,volumesnapshot,configmap,lease -l "
            f"{c.LABEL_CACHE}={inputs.cache} (after the jobs using them are gone)",
        ]
    cluster.delete_lease(inputs.cache)
    return []
