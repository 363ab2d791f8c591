"""Unit tier: every step of promotion, reset, collection and deletion, every crash point and
the garbage-collection decisions in place, through the in-memory cluster port (seconds).

tests/e2e/test_promotion_*.py prove the same against the real API server.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from components import constants as c
from components.promotion import steps
from components.promotion.model import PromotionInputs
from components.promotion.plan import Tokens
from components.promotion.steps import (
    BuilderInUseError,
    CloneNotBoundError,
    Outcome,
    PromotionError,
    Run,
    SnapshotNotReadyError,
)
from tests.promotion_memory import Crash, FakeClock, MemoryCluster, MemoryLease

HOUR = 3600.0
PROPS: dict[str, Any] = {
    "namespace": "arc-runners",
    "cache": "gcc12",
    "size": "10Gi",
    "node": "zfs-1",
    "parent_storage_class": "node-class",
    "snapshot_class": "snapshots",
    "lease_seconds": 300,
    "grace_seconds": 3600,
    "retention_seconds": 3600,
    "ready_timeout_seconds": 30,
}
PROMOTION_STEPS = [s for s in steps.STEPS if not s.startswith("builder-") and s != "gc-applied"]
RESET_STEPS = [s for s in steps.STEPS if s.startswith("builder-") and s != "builder-checked"]


class Cache:
    """One cache on the in-memory cluster, and the stack's record of its outputs."""

    def __init__(self) -> None:
        self.cluster = MemoryCluster()
        self.cluster.stack_lineage()
        self.clock = FakeClock()
        self.lease = MemoryLease()
        self.outs: dict[str, Any] = {}

    def run(self, **props: Any) -> Run:
        return Run(self.cluster, PromotionInputs.from_props({**PROPS, **props}), self.clock)

    def start(self, **props: Any) -> Outcome:
        outcome = steps.start(self.run(**props))
        self._record(outcome)
        return outcome

    def update(self, **props: Any) -> Outcome:
        outcome = steps.update(self.run(**props), self.lease, Tokens.recorded(self.outs), self.outs)
        self._record(outcome)
        return outcome

    def _record(self, outcome: Outcome) -> None:
        p = outcome.pointer
        self.outs = {
            "parent_claim": p.parent_claim,
            "generation": p.generation,
            "builder_claim": p.builder_claim,
            "token": outcome.tokens.promote,
            "reset_token": outcome.tokens.reset,
        }

    def pointer_generation(self) -> int:
        found = self.cluster.read_pointer("gcc12")
        assert found is not None
        return found[0].generation

    def assert_consistent(self, generation: int) -> None:
        """What tests/e2e/test_promotion_crash.py checks after every re-run."""
        found = self.cluster.read_pointer("gcc12")
        assert found is not None
        pointer = found[0]
        assert pointer.generation == generation == self.outs["generation"]
        assert pointer.parent_claim == self.outs["parent_claim"]
        assert pointer.parent_claim == c.generation_name("gcc12", generation)
        wanted = {c.generation_name("gcc12", n) for n in range(1, generation + 1)}
        assert self.cluster.names(c.ROLE_PARENT) == wanted
        assert self.cluster.names(c.ROLE_SOURCE_SNAPSHOT) == {
            c.source_snapshot_name("gcc12", n) for n in range(2, generation + 1)
        }
        for name in wanted:
            claim = self.cluster.claim(name)
            assert claim is not None and claim.bound, name
        for name in self.cluster.names(c.ROLE_SOURCE_SNAPSHOT):
            snap = self.cluster.snapshot(name)
            assert snap is not None and snap.ready, name
        for n in range(1, generation):
            claim = self.cluster.claim(c.generation_name("gcc12", n))
            assert claim is not None and c.ANNOTATION_SUPERSEDED_AT in claim.annotations
        assert not self.lease.held


@pytest.fixture
def cache() -> Cache:
    return Cache()


@pytest.fixture
def crash_at() -> Iterator[list[str]]:
    """Put a step name in the list: the next run dies right after that step."""
    target: list[str] = []
    original = steps.after_step

    def hook(step: str) -> None:
        if target and step == target[0]:
            target.clear()
            raise Crash(step)

    steps.after_step = hook
    yield target
    steps.after_step = original


# --- start -----------------------------------------------------------------------------------


def test_start_begins_at_generation_1_recording_the_tokens_present(cache: Cache) -> None:
    outcome = cache.start(promote="c1")
    assert (outcome.pointer.generation, outcome.pointer.parent_claim) == (1, "gcc12-gen-1")
    assert outcome.pointer.builder_claim == "gcc12-work-1"
    assert outcome.tokens == Tokens("c1", None)
    assert outcome.report == [
        "started at generation 1 (gcc12-gen-1) with builder volume gcc12-work-1"
    ]


def test_start_adopts_an_existing_lineage_and_refuses_a_broken_one(cache: Cache) -> None:
    cache.start()
    cache.update(promote="a")
    adopted = cache.start(promote="a")
    assert adopted.pointer.generation == 2 and adopted.tokens.promote == "a"
    assert adopted.report[0].startswith("adopted the existing lineage: gen 2 (gcc12-gen-2)")
    cache.cluster.delete_claim("gcc12-gen-2")
    with pytest.raises(PromotionError, match="names parent gcc12-gen-2, which is missing"):
        cache.start()


# --- promotion -------------------------------------------------------------------------------


def test_promote_snapshots_the_builder_and_restores_the_next_generation(cache: Cache) -> None:
    cache.start(promote="c1")
    outcome = cache.update(promote="c2")
    assert (outcome.pointer.generation, outcome.tokens.promote) == (2, "c2")
    assert outcome.report[0] == "promoted gcc12 to gen 2 (gcc12-gen-2) from gcc12-work-1"
    gen2 = cache.cluster.claims["gcc12-gen-2"]
    assert gen2["spec"]["dataSource"]["name"] == "gcc12-gen-2-src"
    assert gen2["spec"]["resources"]["requests"]["storage"] == "10Gi"  # the restore size
    snap = cache.cluster.snapshots["gcc12-gen-2-src"]
    assert snap["spec"]["source"]["persistentVolumeClaimName"] == "gcc12-work-1"
    cache.assert_consistent(2)
    # The same token again makes nothing new.
    writes = len(cache.cluster.writes)
    assert cache.update(promote="c2").pointer.generation == 2
    assert cache.cluster.writes[writes:] == []


def test_a_token_applied_but_not_recorded_is_adopted_not_reapplied(cache: Cache) -> None:
    cache.start()
    cache.update(promote="a")
    cache.outs["token"] = None  # the run crashed before Pulumi saved its outputs
    outcome = cache.update(promote="a")
    assert outcome.pointer.generation == 2 and outcome.tokens.promote == "a"
    assert "promote gcc12: token 'a' was already applied on the cluster" in outcome.report[0]


def test_builder_volume_in_use_is_never_snapshotted(cache: Cache) -> None:
    cache.start()
    cache.cluster.pod("builder-job-7", "gcc12-work-1")
    with pytest.raises(BuilderInUseError) as refused:
        cache.update(promote="x")
    assert refused.value.pods == ["builder-job-7"]
    assert "mounted by pod(s) builder-job-7" in str(refused.value)
    assert not any("VolumeSnapshot" in w for w in cache.cluster.writes)
    assert cache.pointer_generation() == 1 and not cache.lease.held
    cache.cluster.pod("builder-job-7", "gcc12-work-1", phase="Succeeded")
    assert cache.update(promote="x").pointer.generation == 2


def test_a_snapshot_taken_while_a_builder_pod_appeared_is_discarded(
    cache: Cache, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache.start()

    def builder_starts(step: str) -> None:
        if step == "snapshot-created":
            cache.cluster.pod("late-builder", "gcc12-work-1")

    monkeypatch.setattr(steps, "after_step", builder_starts)
    with pytest.raises(BuilderInUseError, match="The snapshot gcc12-gen-2-src taken meanwhile"):
        cache.update(promote="y")
    assert cache.cluster.names(c.ROLE_SOURCE_SNAPSHOT) == set()
    assert cache.cluster.names(c.ROLE_PARENT) == {"gcc12-gen-1"}


def test_snapshot_not_ready_in_time_then_a_fixed_rerun_retakes_it(cache: Cache) -> None:
    cache.start()
    with pytest.raises(SnapshotNotReadyError) as late:
        cache.update(promote="s1", snapshot_class="no-such-class", ready_timeout_seconds=2)
    message = str(late.value)
    assert "snapshot arc-runners/gcc12-gen-2-src of builder volume gcc12-work-1" in message
    assert "was not ready within 2s" in message and '"no-such-class" not found' in message
    assert cache.pointer_generation() == 1
    assert cache.update(promote="s1").pointer.generation == 2
    cache.assert_consistent(2)


def test_clone_not_bound_in_time_then_a_fixed_rerun_makes_it_in_the_right_class(
    cache: Cache,
) -> None:
    cache.start()
    with pytest.raises(CloneNotBoundError) as late:
        cache.update(promote="b1", parent_storage_class="no-such-class", ready_timeout_seconds=2)
    message = str(late.value)
    assert "generation 2 claim arc-runners/gcc12-gen-2 was not Bound within 2s" in message
    assert "phase Pending" in message and "StorageClass no-such-class" in message
    assert '"no-such-class" not found' in message  # the claim's warning events
    assert cache.pointer_generation() == 1 and not cache.lease.held
    assert cache.update(promote="b1").pointer.generation == 2
    assert cache.cluster.claims["gcc12-gen-2"]["spec"]["storageClassName"] == "node-class"


def test_a_pointer_changed_under_the_lease_is_not_swapped(
    cache: Cache, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache.start()

    def edited_by_hand(step: str) -> None:
        if step == "generation-bound":
            data, version = cache.cluster.pointer_data["gcc12"]
            cache.cluster.pointer_data["gcc12"] = (data, version + 100)

    monkeypatch.setattr(steps, "after_step", edited_by_hand)
    with pytest.raises(PromotionError, match="Nothing was swapped; generation 2 stays unused"):
        cache.update(promote="p")


def test_a_pointer_deleted_by_hand_is_rebuilt_from_the_stack_state(cache: Cache) -> None:
    cache.start()
    cache.update(promote="a")
    del cache.cluster.pointer_data["gcc12"]
    outcome = cache.update(promote="b")
    assert outcome.report[0].startswith("the promotion pointer was missing: rebuilt")
    assert outcome.pointer.generation == 3


def test_a_lost_lease_stops_before_the_next_irreversible_step(
    cache: Cache, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache.start()

    def taken_over(step: str) -> None:
        if step == "snapshot-ready":
            cache.lease.lost = "taken over by another run"

    monkeypatch.setattr(steps, "after_step", taken_over)
    with pytest.raises(Exception, match="taken over by another run"):
        cache.update(promote="p")
    assert "create PersistentVolumeClaim gcc12-gen-2" not in cache.cluster.writes
    assert cache.pointer_generation() == 1


# --- builder reset ---------------------------------------------------------------------------


def test_reset_builder_then_promote_from_the_new_builder(cache: Cache) -> None:
    cache.start()
    cache.update(promote="p1")
    outcome = cache.update(promote="p1", reset_builder="r1")
    assert outcome.pointer.builder_claim == "gcc12-work-2" and outcome.tokens.reset == "r1"
    assert outcome.report[0] == "reset gcc12 builder: gcc12-work-1 → gcc12-work-2 from gcc12-gen-2"
    assert cache.cluster.claims["gcc12-work-2"]["spec"]["dataSource"]["name"] == "gcc12-gen-2"
    work1 = cache.cluster.claim("gcc12-work-1")
    assert work1 is not None and c.ANNOTATION_RETIRED_AT in work1.annotations
    cache.update(promote="p2", reset_builder="r1")
    snap = cache.cluster.snapshots["gcc12-gen-3-src"]
    assert snap["spec"]["source"]["persistentVolumeClaimName"] == "gcc12-work-2"
    # Reset again; the retired work-2 outlives its retention while gen 3 depends on it.
    cache.update(promote="p2", reset_builder="r2")
    cache.cluster.backdate(
        "gcc12-work-2", c.ANNOTATION_RETIRED_AT, 30 * 24 * HOUR, cache.clock.now()
    )
    report = "\n".join(cache.update(promote="p2", reset_builder="r2").report)
    assert "keep PersistentVolumeClaim gcc12-work-2: VolumeSnapshot gcc12-gen-3-src" in report
    assert (
        "keep PersistentVolumeClaim gcc12-work-1: first builder volume, owned by the stack"
        in report
    )
    assert cache.cluster.names(c.ROLE_BUILDER_VOLUME) == {
        "gcc12-work-1",
        "gcc12-work-2",
        "gcc12-work-3",
    }


# --- crash at every step, then a re-run ------------------------------------------------------


@pytest.mark.parametrize("step", PROMOTION_STEPS)
def test_crash_after_a_promotion_step_then_rerun_converges(
    cache: Cache, crash_at: list[str], step: str
) -> None:
    cache.start()
    cache.update(promote="t0")  # gen 1 is the root, never collected: promote from gen 2
    crash_at.append(step)
    with pytest.raises(Crash):
        cache.update(promote="t1")
    outcome = cache.update(promote="t1")  # Pulumi recorded nothing: the same olds and news
    assert outcome.tokens.promote == "t1"
    cache.assert_consistent(3)


@pytest.mark.parametrize("step", RESET_STEPS)
def test_crash_after_a_reset_step_then_rerun_converges(
    cache: Cache, crash_at: list[str], step: str
) -> None:
    cache.start()
    crash_at.append(step)
    with pytest.raises(Crash):
        cache.update(reset_builder="r1")
    outcome = cache.update(reset_builder="r1")
    assert outcome.pointer.builder_claim == "gcc12-work-2" and outcome.tokens.reset == "r1"
    assert cache.cluster.names(c.ROLE_BUILDER_VOLUME) == {"gcc12-work-1", "gcc12-work-2"}
    work2 = cache.cluster.claim("gcc12-work-2")
    assert work2 is not None and work2.bound
    cache.assert_consistent(1)


def test_rerun_with_another_token_removes_what_the_crashed_attempt_left(
    cache: Cache, crash_at: list[str]
) -> None:
    cache.start()
    crash_at.append("generation-created")
    with pytest.raises(Crash):
        cache.update(promote="stale")
    stale_uid = cache.cluster.snapshots["gcc12-gen-2-src"]["metadata"]["uid"]
    cache.update(promote="fresh")
    snap = cache.cluster.snapshots["gcc12-gen-2-src"]
    assert snap["metadata"]["uid"] != stale_uid
    assert snap["metadata"]["annotations"][c.ANNOTATION_PROMOTE_TOKEN] == "fresh"
    gen2 = cache.cluster.claims["gcc12-gen-2"]
    assert gen2["metadata"]["annotations"][c.ANNOTATION_PROMOTE_TOKEN] == "fresh"
    cache.assert_consistent(2)


def test_crash_during_collection_then_rerun_collects_the_rest(
    cache: Cache, crash_at: list[str]
) -> None:
    cache.start()
    cache.update(promote="a")
    cache.update(promote="b")
    cache.cluster.backdate("gcc12-gen-2", c.ANNOTATION_SUPERSEDED_AT, 2 * HOUR, cache.clock.now())
    crash_at.append("gc-applied")
    with pytest.raises(Crash):
        cache.update(promote="b")
    cache.update(promote="b")
    assert cache.cluster.names(c.ROLE_PARENT) == {"gcc12-gen-1", "gcc12-gen-3"}
    assert cache.cluster.names(c.ROLE_SOURCE_SNAPSHOT) == {"gcc12-gen-3-src"}
    assert cache.pointer_generation() == 3 and not cache.lease.held


def test_a_crash_before_stamping_is_repaired_by_collection(
    cache: Cache, crash_at: list[str]
) -> None:
    cache.start()
    cache.update(promote="a")
    crash_at.append("pointer-swapped")
    with pytest.raises(Crash):
        cache.update(promote="b")
    assert (
        c.ANNOTATION_SUPERSEDED_AT
        not in cache.cluster.claims["gcc12-gen-2"]["metadata"]["annotations"]
    )
    # The re-run adopts the token and collection stamps gen 2 superseded now.
    report = cache.update(promote="b").report
    assert report[0].startswith("promote gcc12: token 'b' was already applied on the cluster")
    assert report[1].startswith("stamp PersistentVolumeClaim gcc12-gen-2: superseded but")
    cache.assert_consistent(3)


# --- garbage collection ----------------------------------------------------------------------


def test_collection_waits_for_grace_references_and_dependents(cache: Cache) -> None:
    cache.start()
    cache.update(promote="a")
    cache.cluster.hook_config_map("sim-jobs-hook-template", "gcc12-gen-2")
    cache.cluster.job_clone("job-old", "gcc12-gen-2")
    report = "\n".join(cache.update(promote="b").report)
    assert "keep PersistentVolumeClaim gcc12-gen-2: superseded 0s ago, grace period 1h" in report
    assert "ConfigMap sim-jobs-hook-template refers to it" in report
    assert "PersistentVolumeClaim job-old is cloned from it" in report
    assert "keep PersistentVolumeClaim gcc12-gen-1: root generation, owned by the stack" in report
    cache.cluster.backdate("gcc12-gen-2", c.ANNOTATION_SUPERSEDED_AT, 2 * HOUR, cache.clock.now())
    assert cache.cluster.names(c.ROLE_PARENT) >= {"gcc12-gen-2"}
    cache.cluster.hook_config_map("sim-jobs-hook-template", "gcc12-gen-3")
    report = "\n".join(cache.update(promote="b").report)
    assert "keep PersistentVolumeClaim gcc12-gen-2" in report
    assert "ZFSVolume" in report  # the job's clone holds the dataset too
    cache.cluster.delete_claim("job-old")
    report = "\n".join(cache.update(promote="b").report)
    assert "collect PersistentVolumeClaim gcc12-gen-2" in report
    assert "collect VolumeSnapshot gcc12-gen-2-src" in report
    assert cache.cluster.names(c.ROLE_PARENT) == {"gcc12-gen-1", "gcc12-gen-3"}
    assert cache.cluster.names(c.ROLE_SOURCE_SNAPSHOT) == {"gcc12-gen-3-src"}


def test_collection_never_touches_a_generation_a_live_pod_mounts(cache: Cache) -> None:
    cache.start()
    cache.update(promote="a")
    cache.update(promote="b")
    cache.cluster.pod("debug", "gcc12-gen-2")
    cache.cluster.backdate("gcc12-gen-2", c.ANNOTATION_SUPERSEDED_AT, 2 * HOUR, cache.clock.now())
    report = "\n".join(cache.update(promote="b").report)
    assert "keep PersistentVolumeClaim gcc12-gen-2: pod debug mounts it" in report
    assert "gcc12-gen-2" in cache.cluster.names(c.ROLE_PARENT)


# --- delete ----------------------------------------------------------------------------------


def test_retire_of_a_fresh_lineage_leaves_nothing(cache: Cache) -> None:
    cache.start()
    assert steps.retire(cache.run(), cache.lease) == []
    assert cache.cluster.read_pointer("gcc12") is None and not cache.lease.held
    assert "delete Lease gcc12-promotion" in cache.cluster.writes


def test_retire_leaves_data_and_pointer_for_a_new_resource_to_adopt(cache: Cache) -> None:
    cache.start()
    cache.update(promote="d1")
    (said,) = steps.retire(cache.run(), cache.lease)
    assert said.startswith("left in place (promotion never destroys cache data)")
    assert "PersistentVolumeClaim gcc12-gen-2" in said
    assert cache.cluster.names(c.ROLE_PARENT) == {"gcc12-gen-1", "gcc12-gen-2"}
    adopted = cache.start(promote="d1")
    assert adopted.pointer.parent_claim == "gcc12-gen-2" and adopted.tokens.promote == "d1"
