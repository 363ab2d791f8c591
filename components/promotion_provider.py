"""Dynamic provider of CachePromotion: the safe promotion protocol of docs/promotion.md.

Serialized with dill (by reference: the engine's provider process imports this module), run
in the engine's provider process. API clients are built inside the methods; nothing here
captures pulumi.Config, Outputs or locks, and importing the module has no side effects.

Only ``create``, ``update`` and ``delete`` write to the cluster. ``check``, ``diff`` and
``read`` make read-only requests: ``pulumi preview`` never mutates anything.

What a run will do is written to the provider's stderr, which the Pulumi engine shows as
diagnostics of the preview or update (the dynamic-provider DiffResult of this SDK has no
message field): ``diff`` prints the plan ("promote gcc12: gen 3 → gen 4 from gcc12-work-2"),
``update`` prints what it did and what garbage collection kept and why; the latter is also
the ``report`` output.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    ResourceProvider,
    UpdateResult,
)

from components import constants as c
from components.promotion_gc import Action, Decision, GcSettings, human_duration, pending, plan_gc
from components.promotion_kube import (
    Cluster,
    PointerConflictError,
    WaitTimeoutError,
    client_for,
    common_labels,
    wait_for,
)
from components.promotion_lease import PromotionLease
from components.promotion_plan import (
    Claim,
    Inventory,
    Pointer,
    Snapshot,
    builder_users,
    describe_adoption,
    describe_promotion,
    describe_reset,
    format_time,
    wants_change,
    wants_promotion,
    wants_reset,
)

__all__ = [
    "OUTPUTS",
    "STEPS",
    "BuilderInUseError",
    "CachePromotionProvider",
    "CloneNotBoundError",
    "PromotionError",
    "PromotionInputs",
    "SnapshotNotReadyError",
    "after_step",
]

#: The outputs the provider computes (everything else in its outs echoes the inputs).
OUTPUTS: Final = (
    "parent_claim",
    "generation",
    "builder_claim",
    "promoted_at",
    "token",
    "reset_token",
    "report",
)
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
#: Outputs check predicts into the inputs so that a preview knows them (see check).
_CARRIED: Final = ("parent_claim", "builder_claim", "generation")
_IDENTITY: Final = ("namespace", "cache")
_TOKENS: Final = ("promote", "reset_builder")
#: A read-only look at the cluster during preview must not hang a preview for long.
_PREVIEW_TIMEOUT: Final = 10.0
#: Rounds of garbage collection per run: deleting a generation frees its snapshot, which may
#: free a retired builder volume; each round waits for the previous round's deletions.
_GC_ROUNDS: Final = 4
_UNKNOWN: Final = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # the engine's unknown-value marker


def after_step(step: str) -> None:
    """Called after each protocol step (see :data:`STEPS`). Does nothing in production.

    The crash tests (tests/e2e/promotion_driver.py) replace it in a driver process to kill
    that process right after a step, then check that a re-run converges.
    """


def _step(step: str) -> None:
    # Looked up at call time so a test driver's replacement of after_step takes effect.
    after_step(step)


def _say(cache_name: str, lines: list[str]) -> None:
    # The engine shows a dynamic provider's stderr as diagnostics of the run.
    for line in lines:
        print(f"CachePromotion {cache_name}: {line}", file=sys.stderr, flush=True)


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
class PromotionInputs:
    """The resource's inputs, typed (see components/promotion.py for their meaning)."""

    namespace: str
    cache: str
    root_claim: str
    builder_volume: str
    size: str
    node: str
    parent_storage_class: str
    clone_storage_class: str
    snapshot_class: str
    lease_seconds: int
    grace_seconds: int
    retention_seconds: int
    ready_timeout_seconds: int
    promote: str | None
    reset_builder: str | None
    kubeconfig: str | None
    context: str | None

    @classmethod
    def from_props(cls, props: Mapping[str, Any]) -> PromotionInputs:
        """Read the property bag the engine passes (durations in seconds)."""

        def text(key: str) -> str | None:
            value = props.get(key)
            return None if value is None else str(value)

        return cls(
            namespace=str(props["namespace"]),
            cache=str(props["cache"]),
            root_claim=str(props.get("root_claim") or c.generation_name(props["cache"], 1)),
            builder_volume=str(
                props.get("builder_volume") or c.builder_volume_name(props["cache"], 1)
            ),
            size=str(props["size"]),
            node=str(props["node"]),
            parent_storage_class=str(props["parent_storage_class"]),
            clone_storage_class=str(props["clone_storage_class"]),
            snapshot_class=str(props["snapshot_class"]),
            lease_seconds=int(props["lease_seconds"]),
            grace_seconds=int(props["grace_seconds"]),
            retention_seconds=int(props["retention_seconds"]),
            ready_timeout_seconds=int(props["ready_timeout_seconds"]),
            promote=text("promote"),
            reset_builder=text("reset_builder"),
            kubeconfig=text("kubeconfig"),
            context=text("context"),
        )

    @property
    def lease_wait_seconds(self) -> int:
        """How long to wait for another holder: one whole promotion (a lease plus a snapshot
        and a clone wait), or a dead holder's lease running out."""
        return self.lease_seconds + 2 * self.ready_timeout_seconds

    def gc_settings(self, now: datetime) -> GcSettings:
        """The garbage-collection rules' parameters."""
        return GcSettings(
            cache=self.cache,
            root_claim=self.root_claim,
            stack_builder=self.builder_volume,
            grace=timedelta(seconds=self.grace_seconds),
            retention=timedelta(seconds=self.retention_seconds),
            now=now,
        )

    @property
    def where(self) -> str:
        """``namespace/cache`` for messages."""
        return f"{self.namespace}/{self.cache}"


@contextmanager
def _cluster(inputs: PromotionInputs, timeout: float = 30.0) -> Iterator[Cluster]:
    cluster = Cluster(client_for(inputs.kubeconfig, inputs.context, timeout), inputs.namespace)
    try:
        yield cluster
    finally:
        cluster.close()


def _lease(inputs: PromotionInputs) -> PromotionLease:
    return PromotionLease(
        lambda: client_for(inputs.kubeconfig, inputs.context),
        inputs.namespace,
        c.promotion_lease_name(inputs.cache),
        duration_seconds=inputs.lease_seconds,
        labels=common_labels(inputs.cache, c.ROLE_LEASE),
    )


def _now() -> datetime:
    return datetime.now(UTC)


def _recorded(requested: str | None, applied: bool, previous: Any) -> Any:
    """The token the stack records: the requested one once applied, else what it had."""
    return requested if requested is not None and applied else previous


def _outputs(
    props: Mapping[str, Any],
    pointer: Pointer,
    *,
    token: Any,
    reset_token: Any,
    report: list[str],
) -> dict[str, Any]:
    return {
        **{k: v for k, v in props.items() if not k.startswith("__")},
        "parent_claim": pointer.parent_claim,
        "generation": pointer.generation,
        "builder_claim": pointer.builder_claim,
        "promoted_at": pointer.promoted_at,
        "token": token,
        "reset_token": reset_token,
        "report": report,
    }


def _pointer_from_state(inputs: PromotionInputs, olds: Mapping[str, Any]) -> Pointer:
    """What the stack's state says the pointer is (used when the cluster cannot be read)."""
    generation = int(olds.get("generation") or 1)
    builder = str(olds.get("builder_claim") or inputs.builder_volume)
    index = int(builder.rpartition("-")[2]) if builder.rpartition("-")[2].isdigit() else 1
    return Pointer(
        generation=generation,
        parent_claim=str(olds.get("parent_claim") or inputs.root_claim),
        builder_index=index,
        builder_claim=builder,
        promote_token=olds.get("token"),
        reset_token=olds.get("reset_token"),
        promoted_at=str(olds.get("promoted_at") or ""),
    )


class CachePromotionProvider(ResourceProvider):
    """Moves a cache's current parent forward by safe promotion; resets its builder volume;
    collects superseded generations. See docs/promotion.md for the protocol and its rules."""

    # --- read-only -----------------------------------------------------------------------

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        """Reject inputs no run could act on (config validation normally catches them), and
        put the claims the run will produce into the inputs (read-only).

        A dynamic provider cannot preview an update: the engine hands back the inputs as the
        outputs, so every output missing from them would be unknown and every hook ConfigMap
        would show as changing to an unknown claim. The claims an update produces are
        deterministic (the pointer's, or the next generation / builder volume when a token asks
        for it), so the preview shows exactly what the ConfigMaps will name if the update
        succeeds and no other promotion of the cache runs first. Without a readable pointer
        (first deployment, cluster unreachable) they stay unknown.
        """
        failures = []
        for key in ("lease_seconds", "grace_seconds", "retention_seconds", "ready_timeout_seconds"):
            value = news.get(key)
            if value != _UNKNOWN and (not isinstance(value, int | float) or value <= 0):
                failures.append(CheckFailure(key, f"must be a positive number of seconds: {value}"))
        inputs = {k: v for k, v in news.items() if k not in _CARRIED}
        if failures or _UNKNOWN in news.values() or "cache" not in news:
            return CheckResult(inputs, failures)
        try:
            promotion = PromotionInputs.from_props(news)
            with _cluster(promotion, _PREVIEW_TIMEOUT) as cluster:
                found = cluster.read_pointer(promotion.cache)
        except Exception:
            return CheckResult(inputs, failures)  # diff says why; outputs stay unknown
        if found is not None:
            after = found[0]
            if wants_promotion(promotion.promote, after):
                after = after.promoted(promotion.cache, promotion.promote, _now())
            if wants_reset(promotion.reset_builder, after):
                after = after.reset(promotion.cache, promotion.reset_builder)
            inputs.update(
                parent_claim=after.parent_claim,
                builder_claim=after.builder_claim,
                generation=after.generation,
            )
        return CheckResult(inputs, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        """Say what an update would do (stderr, shown by preview); read-only."""
        keys = {k for k in (*olds, *news) if not k.startswith("__")}
        keys -= {*OUTPUTS, *_TOKENS}
        changed = sorted(k for k in keys if olds.get(k) != news.get(k))
        replaces = [k for k in changed if k in _IDENTITY]
        if replaces:
            return DiffResult(changes=True, replaces=replaces, delete_before_replace=True)
        cache_name = str(news.get("cache"))
        promote = news.get("promote")
        reset = news.get("reset_builder")
        promote_pending = wants_change(promote, olds.get("token"))
        reset_pending = wants_change(reset, olds.get("reset_token"))
        lines: list[str] = []
        gc_pending = False
        if _UNKNOWN in (news.get("kubeconfig"), news.get("context"), promote, reset):
            lines.append("inputs are not known yet: the plan is decided at update time")
            promote_pending = promote_pending or promote == _UNKNOWN
            reset_pending = reset_pending or reset == _UNKNOWN
        else:
            inputs = PromotionInputs.from_props(news)
            pointer, inventory, trouble = self._look(inputs, olds)
            if trouble:
                lines.append(trouble)
            after = pointer
            if promote_pending and isinstance(promote, str):
                if pointer.promote_applied(promote):
                    lines.append(describe_adoption(cache_name, "promote", promote, pointer))
                else:
                    lines.append(describe_promotion(cache_name, pointer))
                    after = pointer.promoted(cache_name, promote, _now())
            if reset_pending and isinstance(reset, str):
                if pointer.reset_applied(reset):
                    lines.append(describe_adoption(cache_name, "reset", reset, pointer))
                else:
                    retention = human_duration(timedelta(seconds=inputs.retention_seconds))
                    lines.append(describe_reset(cache_name, after, retention))
            if inventory is not None:
                todo = pending(plan_gc(inventory, pointer, inputs.gc_settings(_now())))
                gc_pending = bool(todo)
                lines.extend(d.describe() for d in todo)
        if changed:
            lines.append(f"settings change: {', '.join(changed)}")
        changes = bool(changed or promote_pending or reset_pending or gc_pending)
        if changes:
            _say(cache_name, lines)
        return DiffResult(changes=changes, replaces=[], delete_before_replace=True)

    def _look(
        self, inputs: PromotionInputs, olds: Mapping[str, Any]
    ) -> tuple[Pointer, Inventory | None, str | None]:
        """Pointer and inventory, read-only; falls back to the stack's state if the cluster
        cannot be read (a preview must not fail because of that)."""
        try:
            with _cluster(inputs, _PREVIEW_TIMEOUT) as cluster:
                found = cluster.read_pointer(inputs.cache)
                inventory = cluster.inventory()
        except Exception as exc:
            return (
                _pointer_from_state(inputs, olds),
                None,
                f"could not read the cluster ({exc}); this plan uses the stack's state and "
                "leaves out garbage collection",
            )
        if found is None:
            return (
                _pointer_from_state(inputs, olds),
                inventory,
                "no promotion pointer on the cluster: update rebuilds it from the stack's state",
            )
        return found[0], inventory, None

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """Refresh the outputs from the pointer; a missing pointer means the resource is gone."""
        inputs = PromotionInputs.from_props(props)
        with _cluster(inputs) as cluster:
            found = cluster.read_pointer(inputs.cache)
        if found is None:
            return ReadResult(id_="", outs={})
        pointer = found[0]
        promote, reset = props.get("token"), props.get("reset_token")
        outs = _outputs(
            props,
            pointer,
            token=promote
            if promote and pointer.promote_applied(promote)
            else pointer.promote_token,
            reset_token=reset if reset and pointer.reset_applied(reset) else pointer.reset_token,
            report=list(props.get("report") or []),
        )
        return ReadResult(id_=id_, outs=outs)

    # --- create --------------------------------------------------------------------------

    def create(self, props: dict[str, Any]) -> CreateResult:
        """Start the lineage at generation 1 (the stack's root claim) and builder volume 1,
        recording the tokens present at creation (there is no build to promote yet), or adopt
        the lineage an earlier resource left (its pointer)."""
        inputs = PromotionInputs.from_props(props)
        report: list[str] = []
        with _cluster(inputs) as cluster:
            found = cluster.read_pointer(inputs.cache)
            if found is None:
                self._wait_bound(cluster, inputs, inputs.root_claim, "root generation")
                fresh = Pointer(
                    generation=1,
                    parent_claim=inputs.root_claim,
                    builder_index=1,
                    builder_claim=inputs.builder_volume,
                    promote_token=inputs.promote,
                    reset_token=inputs.reset_builder,
                    promoted_at=format_time(_now()),
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
                    report.append(
                        f"adopted the pointer another run created: gen {pointer.generation}"
                    )
            else:
                pointer = found[0]
                self._check_adoptable(cluster, inputs, pointer)
                report.append(
                    f"adopted the existing lineage: gen {pointer.generation} "
                    f"({pointer.parent_claim}), builder volume {pointer.builder_claim}"
                )
        _say(inputs.cache, report)
        token = _recorded(
            inputs.promote,
            inputs.promote is not None and pointer.promote_applied(inputs.promote),
            pointer.promote_token,
        )
        reset_token = _recorded(
            inputs.reset_builder,
            inputs.reset_builder is not None and pointer.reset_applied(inputs.reset_builder),
            pointer.reset_token,
        )
        outs = _outputs(props, pointer, token=token, reset_token=reset_token, report=report)
        return CreateResult(id_=inputs.where, outs=outs)

    @staticmethod
    def _check_adoptable(cluster: Cluster, inputs: PromotionInputs, pointer: Pointer) -> None:
        for what, name in (
            ("parent", pointer.parent_claim),
            ("builder volume", pointer.builder_claim),
        ):
            claim = cluster.claim(name)
            if claim is None or not claim.bound:
                state = "missing" if claim is None else f"{claim.phase}, deleting={claim.deleting}"
                raise PromotionError(
                    f"the promotion pointer {inputs.namespace}/"
                    f"{c.promotion_pointer_name(inputs.cache)} left by an earlier deployment "
                    f"names {what} {name}, which is {state}: it cannot be adopted. Restore "
                    f"that claim, or delete the pointer ConfigMap to start again at generation 1 "
                    f"(kubectl -n {inputs.namespace} delete configmap "
                    f"{c.promotion_pointer_name(inputs.cache)})"
                )

    # --- update --------------------------------------------------------------------------

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        """Promote (new promote token), reset the builder volume (new reset token), then
        collect garbage, all under the cache's Lease."""
        inputs = PromotionInputs.from_props(news)
        report: list[str] = []
        lease = _lease(inputs)
        try:
            lease.acquire(inputs.lease_wait_seconds)
            _step("lease-acquired")
            with _cluster(inputs) as cluster:
                pointer, version = self._pointer_for_update(cluster, inputs, olds, report)
                if wants_promotion(inputs.promote, pointer):
                    pointer, version = self._promote(cluster, lease, inputs, pointer, version)
                    report.append(
                        f"promoted {inputs.cache} to gen {pointer.generation} "
                        f"({pointer.parent_claim}) from {pointer.builder_claim}"
                    )
                elif inputs.promote is not None and inputs.promote != olds.get("token"):
                    report.append(
                        describe_adoption(inputs.cache, "promote", inputs.promote, pointer)
                    )
                if wants_reset(inputs.reset_builder, pointer):
                    old_builder = pointer.builder_claim
                    pointer, version = self._reset(cluster, lease, inputs, pointer, version)
                    report.append(
                        f"reset {inputs.cache} builder: {old_builder} → {pointer.builder_claim} "
                        f"from {pointer.parent_claim}"
                    )
                elif inputs.reset_builder is not None and inputs.reset_builder != olds.get(
                    "reset_token"
                ):
                    report.append(
                        describe_adoption(inputs.cache, "reset", inputs.reset_builder, pointer)
                    )
                report.extend(self._collect(cluster, lease, inputs, pointer))
        finally:
            lease.release()
            _step("lease-released")
        _say(inputs.cache, report)
        token = _recorded(
            inputs.promote,
            inputs.promote is not None and pointer.promote_applied(inputs.promote),
            olds.get("token"),
        )
        reset_token = _recorded(
            inputs.reset_builder,
            inputs.reset_builder is not None and pointer.reset_applied(inputs.reset_builder),
            olds.get("reset_token"),
        )
        outs = _outputs(news, pointer, token=token, reset_token=reset_token, report=report)
        return UpdateResult(outs=outs)

    def _pointer_for_update(
        self,
        cluster: Cluster,
        inputs: PromotionInputs,
        olds: Mapping[str, Any],
        report: list[str],
    ) -> tuple[Pointer, str]:
        found = cluster.read_pointer(inputs.cache)
        if found is not None:
            return found
        # Deleted by hand: the stack's state still knows the lineage; rebuild the pointer from
        # it if what it names is there (creating cannot race: we hold the lease).
        rebuilt = _pointer_from_state(inputs, olds)
        self._check_adoptable(cluster, inputs, rebuilt)
        cluster.create_pointer(inputs.cache, rebuilt)
        report.append(
            f"the promotion pointer was missing: rebuilt from the stack's state "
            f"(gen {rebuilt.generation}, builder volume {rebuilt.builder_claim})"
        )
        again = cluster.read_pointer(inputs.cache)
        if again is None:
            raise PromotionError(f"could not rebuild the promotion pointer of {inputs.where}")
        return again

    # --- promotion steps -----------------------------------------------------------------

    def _promote(
        self,
        cluster: Cluster,
        lease: PromotionLease,
        inputs: PromotionInputs,
        pointer: Pointer,
        version: str,
    ) -> tuple[Pointer, str]:
        cache_name = inputs.cache
        target = pointer.generation + 1
        gen_name = c.generation_name(cache_name, target)
        snap_name = c.source_snapshot_name(cache_name, target)
        builder = cluster.claim(pointer.builder_claim)
        if builder is None or not builder.bound:
            state = "missing" if builder is None else f"{builder.phase}"
            raise PromotionError(
                f"cannot promote {cache_name}: builder volume {inputs.namespace}/"
                f"{pointer.builder_claim} is {state}, so there is nothing to snapshot. Reset the "
                f"builder volume (caches.{cache_name}.resetBuilder) or restore the claim"
            )
        self._refuse_if_in_use(cluster, inputs, builder.name, "")
        _step("builder-checked")
        self._clear_leftovers(
            cluster, lease, inputs, gen_name=gen_name, snap_name=snap_name, builder=builder.name
        )
        if cluster.snapshot(snap_name) is None:
            lease.ensure_held()
            # The last look before the snapshot: the window between this check and the
            # snapshot's creation is one API round trip.
            self._refuse_if_in_use(cluster, inputs, builder.name, "")
            cluster.create_snapshot(self._snapshot_body(inputs, snap_name, builder.name, target))
            _step("snapshot-created")
        snapshot = self._wait_snapshot(cluster, inputs, snap_name, builder.name)
        # A pod that mounted the builder volume while the snapshot was taken may have written
        # to it mid-snapshot: discard the snapshot rather than promote a torn cache.
        self._refuse_if_in_use(cluster, inputs, builder.name, snap_name)
        _step("snapshot-ready")
        if cluster.claim(gen_name) is None:
            lease.ensure_held()
            cluster.create_claim(
                self._generation_body(inputs, gen_name, snap_name, snapshot, target)
            )
            _step("generation-created")
        self._wait_bound(cluster, inputs, gen_name, f"generation {target}")
        _step("generation-bound")
        new = pointer.promoted(cache_name, inputs.promote, _now())
        lease.ensure_held()
        version = self._swap(cluster, inputs, new, version)
        _step("pointer-swapped")
        old = cluster.claim(pointer.parent_claim)
        if old is not None and c.ANNOTATION_SUPERSEDED_AT not in old.annotations:
            cluster.annotate_claim(old.name, {c.ANNOTATION_SUPERSEDED_AT: new.promoted_at})
        _step("superseded-stamped")
        return new, version

    def _refuse_if_in_use(
        self, cluster: Cluster, inputs: PromotionInputs, claim: str, snapshot: str
    ) -> None:
        users = builder_users(cluster.pods(), claim)
        if not users:
            return
        discarded = ""
        if snapshot:
            cluster.delete_snapshot(snapshot)
            discarded = f" The snapshot {snapshot} taken meanwhile was discarded."
        raise BuilderInUseError(
            f"refusing to promote {inputs.cache}: builder volume {inputs.namespace}/{claim} is "
            f"mounted by pod(s) {', '.join(users)}; a snapshot now could capture a half-written "
            f"cache.{discarded} Let the builder job finish (or delete the pod), then run "
            "`pulumi up` again.",
            users,
        )

    def _clear_leftovers(
        self,
        cluster: Cluster,
        lease: PromotionLease,
        inputs: PromotionInputs,
        *,
        gen_name: str,
        snap_name: str,
        builder: str,
    ) -> None:
        """Adopt what an earlier attempt of THIS promotion left (same token, same builder);
        remove what an attempt with another token left (it would promote stale content)."""
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
        inventory = cluster.inventory()
        if stale_claim and claim is not None:
            blockers = inventory.claim_dependents(claim)
            if blockers:
                raise PromotionError(
                    f"{inputs.namespace}/{gen_name} was left by an unfinished promotion with "
                    f"another token and cannot be removed: {'; '.join(blockers)}. Remove those, "
                    "then run `pulumi up` again"
                )
            cluster.delete_claim(gen_name)
        if stale_snapshot and snapshot is not None:
            cluster.delete_snapshot(snap_name)
        timeout = float(inputs.ready_timeout_seconds)

        def gone() -> bool | None:
            if stale_claim and cluster.claim(gen_name) is not None:
                return None
            if stale_snapshot and cluster.snapshot(snap_name) is not None:
                return None
            return True

        wait_for(
            gone,
            timeout,
            lambda: (
                f"leftovers {gen_name}/{snap_name} of an earlier promotion attempt were not "
                f"deleted within {timeout:.0f}s; check their finalizers, then run `pulumi up` again"
            ),
        )

    @staticmethod
    def _snapshot_body(
        inputs: PromotionInputs, name: str, builder: str, gen: int
    ) -> dict[str, Any]:
        labels = common_labels(inputs.cache, c.ROLE_SOURCE_SNAPSHOT)
        labels[c.LABEL_GENERATION] = str(gen)
        return {
            "apiVersion": f"{c.SNAPSHOT_API_GROUP}/{c.SNAPSHOT_API_VERSION}",
            "kind": "VolumeSnapshot",
            "metadata": {
                "name": name,
                "namespace": inputs.namespace,
                "labels": labels,
                "annotations": {c.ANNOTATION_PROMOTE_TOKEN: inputs.promote or ""},
            },
            "spec": {
                "volumeSnapshotClassName": inputs.snapshot_class,
                "source": {"persistentVolumeClaimName": builder},
            },
        }

    @staticmethod
    def _generation_body(
        inputs: PromotionInputs, name: str, snap_name: str, snapshot: Snapshot, gen: int
    ) -> dict[str, Any]:
        labels = common_labels(inputs.cache, c.ROLE_PARENT)
        labels[c.LABEL_GENERATION] = str(gen)
        return {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {
                "name": name,
                "namespace": inputs.namespace,
                "labels": labels,
                "annotations": {
                    c.ANNOTATION_PROMOTE_TOKEN: inputs.promote or "",
                    # The node's class places it by allowedTopologies; the annotation also gets
                    # it provisioned by a WaitForFirstConsumer class (nobody ever mounts it).
                    c.ANNOTATION_SELECTED_NODE: inputs.node,
                },
            },
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": inputs.parent_storage_class,
                "dataSource": {
                    "apiGroup": c.SNAPSHOT_API_GROUP,
                    "kind": "VolumeSnapshot",
                    "name": snap_name,
                },
                # OpenEBS ZFS restores only at exactly the snapshot's size.
                "resources": {"requests": {"storage": snapshot.restore_size or inputs.size}},
            },
        }

    def _wait_snapshot(
        self, cluster: Cluster, inputs: PromotionInputs, name: str, builder: str
    ) -> Snapshot:
        timeout = float(inputs.ready_timeout_seconds)
        last: list[Snapshot | None] = [None]

        def probe() -> Snapshot | None:
            snap = cluster.snapshot(name)
            last[0] = snap
            return snap if snap is not None and snap.ready and snap.restore_size else None

        def explain() -> str:
            snap = last[0]
            state = (
                "missing"
                if snap is None
                else f"readyToUse={snap.ready}, error: {snap.error or 'none'}"
            )
            return (
                f"snapshot {inputs.namespace}/{name} of builder volume {builder} was not ready "
                f"within {timeout:.0f}s ({state}). Check the snapshot controller and "
                f"VolumeSnapshotClass {inputs.snapshot_class} (readyTimeout is "
                f"caches.{inputs.cache}.readyTimeout). Run `pulumi up` again to resume: the "
                "snapshot is adopted, not retaken"
            )

        try:
            return wait_for(probe, timeout, explain)
        except WaitTimeoutError as exc:
            raise SnapshotNotReadyError(str(exc)) from None

    def _wait_bound(self, cluster: Cluster, inputs: PromotionInputs, name: str, what: str) -> Claim:
        timeout = float(inputs.ready_timeout_seconds)
        last: list[Claim | None] = [None]

        def probe() -> Claim | None:
            claim = cluster.claim(name)
            last[0] = claim
            return claim if claim is not None and claim.bound else None

        def explain() -> str:
            claim = last[0]
            events = "; ".join(cluster.events_about(name)[-3:]) or "no warning events"
            state = "missing" if claim is None else f"phase {claim.phase}"
            return (
                f"{what} claim {inputs.namespace}/{name} was not Bound within {timeout:.0f}s "
                f"({state}; {events}). Check the ZFS provisioner for StorageClass "
                f"{claim.storage_class if claim else inputs.parent_storage_class} on node "
                f"{inputs.node} (readyTimeout is caches.{inputs.cache}.readyTimeout). Run "
                "`pulumi up` again to resume: the claim is adopted, not recreated"
            )

        try:
            return wait_for(probe, timeout, explain)
        except WaitTimeoutError as exc:
            raise CloneNotBoundError(str(exc)) from None

    def _swap(self, cluster: Cluster, inputs: PromotionInputs, new: Pointer, version: str) -> str:
        try:
            return cluster.swap_pointer(inputs.cache, new, version)
        except PointerConflictError as exc:
            # Under the lease nobody else writes the pointer; a conflict means the lease was
            # broken (we stalled past expiry) or someone edited the pointer by hand.
            raise PromotionError(
                f"{exc}. Nothing was swapped; generation {new.generation} stays unused until a "
                "re-run adopts or removes it. Run `pulumi up` again"
            ) from None

    # --- builder reset -------------------------------------------------------------------

    def _reset(
        self,
        cluster: Cluster,
        lease: PromotionLease,
        inputs: PromotionInputs,
        pointer: Pointer,
        version: str,
    ) -> tuple[Pointer, str]:
        cache_name = inputs.cache
        name = c.builder_volume_name(cache_name, pointer.builder_index + 1)
        parent = cluster.claim(pointer.parent_claim)
        if parent is None or not parent.bound:
            raise PromotionError(
                f"cannot reset the builder of {cache_name}: its current parent "
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
            timeout = float(inputs.ready_timeout_seconds)
            wait_for(
                lambda: True if cluster.claim(name) is None else None,
                timeout,
                lambda: f"leftover builder volume {name} was not deleted within {timeout:.0f}s",
            )
            existing = None
        if existing is None:
            lease.ensure_held()
            cluster.create_claim(self._builder_body(inputs, name, parent))
            _step("builder-created")
        self._wait_bound(cluster, inputs, name, "builder volume")
        _step("builder-bound")
        new = pointer.reset(cache_name, inputs.reset_builder)
        lease.ensure_held()
        version = self._swap(cluster, inputs, new, version)
        _step("builder-swapped")
        old = cluster.claim(pointer.builder_claim)
        if old is not None and c.ANNOTATION_RETIRED_AT not in old.annotations:
            cluster.annotate_claim(old.name, {c.ANNOTATION_RETIRED_AT: format_time(_now())})
        _step("builder-retired")
        return new, version

    @staticmethod
    def _builder_body(inputs: PromotionInputs, name: str, parent: Claim) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {
                "name": name,
                "namespace": inputs.namespace,
                "labels": common_labels(inputs.cache, c.ROLE_BUILDER_VOLUME),
                "annotations": {
                    c.ANNOTATION_RESET_TOKEN: inputs.reset_builder or "",
                    c.ANNOTATION_SELECTED_NODE: inputs.node,
                },
            },
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                # A PVC clone must be in its source's StorageClass (CSI external-provisioner)
                # and request exactly its size (OpenEBS ZFS).
                "storageClassName": parent.storage_class or inputs.parent_storage_class,
                "dataSource": {
                    "apiGroup": "",
                    "kind": "PersistentVolumeClaim",
                    "name": parent.name,
                },
                "resources": {"requests": {"storage": parent.storage or inputs.size}},
            },
        }

    # --- garbage collection --------------------------------------------------------------

    def _collect(
        self, cluster: Cluster, lease: PromotionLease, inputs: PromotionInputs, pointer: Pointer
    ) -> list[str]:
        done: list[str] = []
        decisions: list[Decision] = []
        for _ in range(_GC_ROUNDS):
            inventory = cluster.inventory()
            decisions = plan_gc(inventory, pointer, inputs.gc_settings(_now()))
            todo = pending(decisions)
            if not todo:
                break
            lease.ensure_held()
            deleted: list[Decision] = []
            for decision in todo:
                done.append(decision.describe())
                if decision.action is Action.STAMP_SUPERSEDED:
                    stamp = {c.ANNOTATION_SUPERSEDED_AT: format_time(_now())}
                    cluster.annotate_claim(decision.name, stamp)
                elif decision.action is Action.STAMP_RETIRED:
                    cluster.annotate_claim(
                        decision.name, {c.ANNOTATION_RETIRED_AT: format_time(_now())}
                    )
                elif decision.kind == "VolumeSnapshot":
                    cluster.delete_snapshot(decision.name)
                    deleted.append(decision)
                else:
                    cluster.delete_claim(decision.name)
                    deleted.append(decision)
            _step("gc-applied")
            if deleted and not self._wait_gone(cluster, inputs, inventory, deleted):
                done.append("some deletions are still in progress; the next run looks again")
                break
        kept = [d.describe() for d in decisions if d.action is Action.KEEP]
        return done + kept

    @staticmethod
    def _wait_gone(
        cluster: Cluster, inputs: PromotionInputs, inventory: Inventory, deleted: list[Decision]
    ) -> bool:
        """Wait until deleted objects (and the datasets of deleted claims) are gone, so the
        next round sees what they freed; False on timeout (not an error: ZFS may be slow)."""
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
                    cluster.snapshot(d.name)
                    if d.kind == "VolumeSnapshot"
                    else cluster.claim(d.name)
                )
                if present is not None:
                    return None
            if any(cluster.zfs_volume_exists(v) for v in volumes):
                return None
            return True

        try:
            wait_for(gone, float(inputs.ready_timeout_seconds), lambda: "")
        except WaitTimeoutError:
            return False
        return True

    # --- delete --------------------------------------------------------------------------

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        """Never destroys data. With nothing but the stack's own generation 1 and builder
        volume 1, remove the pointer and the lease (nothing is left behind). Otherwise leave
        every generation, snapshot and builder volume AND the pointer (so a new CachePromotion
        for this cache adopts the lineage), and say what was left and how to remove it."""
        inputs = PromotionInputs.from_props(props)
        lease = _lease(inputs)
        left: list[str] = []
        try:
            lease.acquire(inputs.lease_wait_seconds)
            with _cluster(inputs) as cluster:
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
            _say(
                inputs.cache,
                [
                    f"left in place (promotion never destroys cache data): {', '.join(left)}, "
                    f"and the pointer ConfigMap {c.promotion_pointer_name(inputs.cache)}; a new "
                    "CachePromotion of this cache adopts them. To remove them: kubectl -n "
                    f"{inputs.namespace} delete pvc,volumesnapshot,configmap,lease -l "
                    f"{c.LABEL_CACHE}={inputs.cache} (after the jobs using them are gone)",
                ],
            )
            return
        with _cluster(inputs) as cluster:
            cluster.delete_lease(inputs.cache)
