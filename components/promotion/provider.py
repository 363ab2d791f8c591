"""Dynamic provider of CachePromotion: the engine's calls mapped onto the plan and the steps.

Serialized with dill (by reference: the engine's provider process imports this module), run
in the engine's provider process. API clients are built inside the methods; nothing here
captures pulumi.Config, Outputs or locks, and importing the module has no side effects.

Only ``create``, ``update`` and ``delete`` write to the cluster. ``check``, ``diff`` and
``read`` make read-only requests: ``pulumi preview`` never mutates anything. All three of
``check``, ``diff`` and ``update`` decide with :func:`components.promotion.plan.plan`.

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
from pulumi.runtime.rpc import UNKNOWN

from components import constants as c
from components.promotion import manifests, steps
from components.promotion.gc import GcSettings, pending, plan_gc
from components.promotion.kube import KubeCluster, client_for
from components.promotion.lease import PromotionLease
from components.promotion.model import Inventory, Pointer, PromotionInputs
from components.promotion.plan import Tokens, plan, pointer_from_state, recorded_tokens

__all__ = ["OUTPUTS", "CachePromotionProvider"]

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
#: Outputs check predicts into the inputs so that a preview knows them (see check).
_CARRIED: Final = ("parent_claim", "builder_claim", "generation")
_IDENTITY: Final = ("namespace", "cache")
_TOKENS: Final = ("promote", "reset_builder")
_DURATIONS: Final = ("lease_seconds", "grace_seconds", "retention_seconds", "ready_timeout_seconds")
#: A read-only look at the cluster during preview must not hang a preview for long.
_PREVIEW_TIMEOUT: Final = 10.0


def _say(cache_name: str, lines: list[str]) -> None:
    # The engine shows a dynamic provider's stderr as diagnostics of the run.
    for line in lines:
        print(f"CachePromotion {cache_name}: {line}", file=sys.stderr, flush=True)


@contextmanager
def _cluster(inputs: PromotionInputs, timeout: float = 30.0) -> Iterator[KubeCluster]:
    client = client_for(inputs.kubeconfig, inputs.context, timeout)
    cluster = KubeCluster(client, inputs.namespace, inputs.zfs_namespace)
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
        labels=manifests.common_labels(inputs.cache, c.ROLE_LEASE),
    )


def _now() -> datetime:
    return datetime.now(UTC)


def _outputs(
    props: Mapping[str, Any], pointer: Pointer, tokens: Tokens, report: list[str]
) -> dict[str, Any]:
    return {
        **{k: v for k, v in props.items() if not k.startswith("__")},
        "parent_claim": pointer.parent_claim,
        "generation": pointer.generation,
        "builder_claim": pointer.builder_claim,
        "promoted_at": pointer.promoted_at,
        "token": tokens.promote,
        "reset_token": tokens.reset,
        "report": report,
    }


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
        deterministic (the plan's), so the preview shows exactly what the ConfigMaps will
        name if the update succeeds and no other promotion of the cache runs first. Without a
        readable pointer (first deployment, cluster unreachable) they stay unknown.
        """
        failures = []
        for key in _DURATIONS:
            value = news.get(key)
            if value != UNKNOWN and (not isinstance(value, int | float) or value <= 0):
                failures.append(CheckFailure(key, f"must be a positive number of seconds: {value}"))
        inputs = {k: v for k, v in news.items() if k not in _CARRIED}
        if failures or UNKNOWN in news.values() or "cache" not in news:
            return CheckResult(inputs, failures)
        try:
            promotion = PromotionInputs.from_props(news)
            with _cluster(promotion, _PREVIEW_TIMEOUT) as cluster:
                found = cluster.read_pointer(promotion.cache)
        except Exception:
            return CheckResult(inputs, failures)  # diff says why; outputs stay unknown
        if found is not None:
            # Only the claims are predicted: which tokens were recorded does not change them.
            after = plan(
                promotion.cache, found[0], Tokens.requested(promotion), Tokens(), _now()
            ).after
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
        recorded = Tokens.recorded(olds)
        lines: list[str] = []
        due = gc_pending = False
        if UNKNOWN in (news.get(k) for k in ("kubeconfig", "context", *_TOKENS)):
            lines.append("inputs are not known yet: the plan is decided at update time")
            due = any(Tokens.requested_in(news).due(recorded))
        else:
            inputs = PromotionInputs.from_props(news)
            pointer, inventory, trouble = self._look(inputs, olds)
            if trouble:
                lines.append(trouble)
            decided = plan(cache_name, pointer, Tokens.requested(inputs), recorded, _now())
            due = decided.due
            lines.extend(decided.describe(timedelta(seconds=inputs.retention_seconds)))
            if inventory is not None:
                todo = pending(plan_gc(inventory, pointer, GcSettings.of(inputs, _now())))
                gc_pending = bool(todo)
                lines.extend(d.describe() for d in todo)
        if changed:
            lines.append(f"settings change: {', '.join(changed)}")
        changes = bool(changed or due or gc_pending)
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
                pointer_from_state(inputs, olds),
                None,
                f"could not read the cluster ({exc}); this plan uses the stack's state and "
                "leaves out garbage collection",
            )
        if found is None:
            return (
                pointer_from_state(inputs, olds),
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
        # The recorded tokens stand while the pointer remembers them.
        tokens = recorded_tokens(Tokens.recorded(props), pointer, Tokens.of(pointer))
        outs = _outputs(props, pointer, tokens, list(props.get("report") or []))
        return ReadResult(id_=id_, outs=outs)

    # --- writes --------------------------------------------------------------------------

    def create(self, props: dict[str, Any]) -> CreateResult:
        """Start the lineage at generation 1, or adopt the one an earlier resource left (see
        :func:`components.promotion.steps.start`)."""
        inputs = PromotionInputs.from_props(props)
        with _cluster(inputs) as cluster:
            outcome = steps.start(steps.Run(cluster, inputs))
        _say(inputs.cache, outcome.report)
        outs = _outputs(props, outcome.pointer, outcome.tokens, outcome.report)
        return CreateResult(id_=inputs.where, outs=outs)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        """Promote, reset the builder volume, then collect garbage, under the cache's Lease
        (see :func:`components.promotion.steps.update`)."""
        inputs = PromotionInputs.from_props(news)
        lease = _lease(inputs)
        with _cluster(inputs) as cluster:
            outcome = steps.update(steps.Run(cluster, inputs), lease, Tokens.recorded(olds), olds)
        _say(inputs.cache, outcome.report)
        outs = _outputs(news, outcome.pointer, outcome.tokens, outcome.report)
        return UpdateResult(outs=outs)

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        """Never destroys data (see :func:`components.promotion.steps.retire`)."""
        inputs = PromotionInputs.from_props(props)
        with _cluster(inputs) as cluster:
            left = steps.retire(steps.Run(cluster, inputs), _lease(inputs))
        _say(inputs.cache, left)
