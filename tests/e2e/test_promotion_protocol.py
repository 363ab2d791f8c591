"""The CachePromotion provider against the real API server and real storage (zfs-fuse pool).

Provider methods are called directly (in this process, or via the driver in a fresh one); the
``pulumi up`` path is in test_promotion_pulumi.py.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from components import constants as c
from components.promotion import steps
from components.promotion.provider import CachePromotionProvider
from components.promotion.steps import (
    BuilderInUseError,
    CloneNotBoundError,
    SnapshotNotReadyError,
)
from localcluster.harness import LocalCluster
from localcluster.kube import meta
from tests.e2e.promotion_env import CacheSetup, run_driver, wait_for

pytestmark = pytest.mark.e2e

HOUR = 3600.0


@pytest.fixture
def setup(local_cluster: LocalCluster) -> CacheSetup:
    return CacheSetup.create(local_cluster)


def promote(
    provider: CachePromotionProvider, setup: CacheSetup, olds: dict[str, Any], token: str
) -> dict[str, Any]:
    news = setup.props(promote=token, reset_builder=olds.get("reset_builder"))
    outs = provider.update(olds["namespace"] + "/" + olds["cache"], olds, news).outs
    assert outs is not None
    return outs


def test_create_then_promote_makes_the_next_generation_and_clones_work(
    setup: CacheSetup, capfd: pytest.CaptureFixture[str]
) -> None:
    provider = CachePromotionProvider()
    created = provider.create(setup.props(promote="c1"))
    assert created.id == f"{setup.namespace}/gcc12"
    outs = created.outs or {}
    assert (outs["generation"], outs["parent_claim"], outs["builder_claim"], outs["token"]) == (
        1,
        "gcc12-gen-1",
        "gcc12-work-1",
        "c1",
    )
    assert setup.pointer().generation == 1
    # The same token again is no change; a new one is a promotion, said in words.
    assert not provider.diff(created.id, outs, setup.props(promote="c1")).changes
    capfd.readouterr()
    assert provider.diff(created.id, outs, setup.props(promote="c2")).changes
    assert "promote gcc12: gen 1 → gen 2 from gcc12-work-1" in capfd.readouterr().err
    outs = promote(provider, setup, outs, "c2")
    assert (outs["generation"], outs["parent_claim"], outs["token"]) == (2, "gcc12-gen-2", "c2")
    pointer = setup.pointer()
    assert (pointer.generation, pointer.parent_claim, pointer.promote_token) == (
        2,
        "gcc12-gen-2",
        "c2",
    )
    gen2 = setup.bound("gcc12-gen-2")
    assert gen2["spec"]["dataSource"]["name"] == "gcc12-gen-2-src"
    assert gen2["spec"]["resources"]["requests"]["storage"] == "1Gi"
    snap = setup.kube.get("VolumeSnapshot", "gcc12-gen-2-src", setup.namespace)
    assert snap is not None
    assert snap["spec"]["source"]["persistentVolumeClaimName"] == "gcc12-work-1"
    gen1 = setup.kube.get("PersistentVolumeClaim", "gcc12-gen-1", setup.namespace)
    assert gen1 is not None and c.ANNOTATION_SUPERSEDED_AT in meta(gen1)["annotations"]
    # In the pool, gen 2 is a real dataset cloned from the builder volume's snapshot.
    gen2_dataset = setup.dataset(setup.volume_of("gcc12-gen-2"))
    source = setup.snapshot_dataset("gcc12-gen-2-src")
    assert source.startswith(setup.dataset(setup.volume_of("gcc12-work-1")) + "@")
    assert setup.datasets()[gen2_dataset].origin == source
    # A job's clone of the new parent works: a ZFS clone of it, with (almost) nothing its own.
    setup.job_clone("job-1-cache", "gcc12-gen-2")
    job = setup.volume_of("job-1-cache")
    clone = setup.datasets()[setup.dataset(job)]
    assert clone.origin == f"{gen2_dataset}@{job}"
    assert clone.used < 2**20
    assert not provider.diff(created.id, outs, setup.props(promote="c2")).changes


def test_collection_waits_for_grace_references_and_dependents(setup: CacheSetup) -> None:
    provider = CachePromotionProvider()
    outs = provider.create(setup.props()).outs or {}
    outs = promote(provider, setup, outs, "a")
    setup.hook_config_map("gcc12-gen-2")
    setup.job_clone("job-old", "gcc12-gen-2")
    gen2, job_old = setup.volume_of("gcc12-gen-2"), setup.volume_of("job-old")
    # A live clone depends on gen 2's dataset: ZFS itself would refuse to destroy it.
    assert setup.datasets()[setup.dataset(job_old)].origin == f"{setup.dataset(gen2)}@{job_old}"
    since, mark = setup.driver_log_size(), setup.cluster.audit.mark()
    outs = promote(provider, setup, outs, "b")
    assert outs["parent_claim"] == "gcc12-gen-3"
    report = "\n".join(outs["report"])
    assert re.search(
        r"keep PersistentVolumeClaim gcc12-gen-2: superseded \d+s ago, grace period 1h", report
    )
    assert "ConfigMap sim-jobs-hook-template refers to it" in report
    assert "PersistentVolumeClaim job-old is cloned from it" in report
    assert "keep PersistentVolumeClaim gcc12-gen-1: root generation, owned by the stack" in report
    # Past the grace period, still named by the hook ConfigMap and cloned by a running job.
    setup.backdate("gcc12-gen-2", c.ANNOTATION_SUPERSEDED_AT, 2 * HOUR)
    assert not provider.diff("id", outs, setup.props(promote="b")).changes
    setup.hook_config_map("gcc12-gen-3")
    assert not provider.diff("id", outs, setup.props(promote="b")).changes
    # The program never asked: no delete of gen 2 or its snapshot, its ZFSVolume untouched.
    deletes = [e for e in setup.cluster.mutating_requests(mark) if e.verb == "delete"]
    assert not [e.describe() for e in deletes if (e.name or "").startswith("gcc12-gen-2")]
    zv = setup.kube.get("ZFSVolume", gen2, c.OPENEBS_NAMESPACE)
    assert zv is not None and not meta(zv).get("deletionTimestamp")
    setup.kube.delete("PersistentVolumeClaim", "job-old", setup.namespace)
    # Once the job's clone and its dataset are gone, collection is due (preview says so).
    wait_for(
        "gen 2 collectable",
        lambda: provider.diff("id", outs, setup.props(promote="b")).changes,
    )
    outs = provider.update("id", outs, setup.props(promote="b")).outs or {}
    report = "\n".join(outs["report"])
    assert "collect PersistentVolumeClaim gcc12-gen-2" in report
    assert "collect VolumeSnapshot gcc12-gen-2-src" in report
    assert setup.generations() == {"gcc12-gen-1", "gcc12-gen-3"}
    assert setup.snapshots() == {"gcc12-gen-3-src"}
    assert not provider.diff("id", outs, setup.props(promote="b")).changes
    # Collected only once nothing depended on it: ZFS destroyed it at the first request.
    wait_for("gen 2's dataset destroyed", lambda: setup.dataset(gen2) not in setup.datasets())
    assert setup.refused_destroys({gen2}, since) == []


def test_reset_builder_then_promote_from_the_new_builder(setup: CacheSetup) -> None:
    provider = CachePromotionProvider()
    outs = provider.create(setup.props()).outs or {}
    outs = promote(provider, setup, outs, "p1")
    outs = provider.update("id", outs, setup.props(promote="p1", reset_builder="r1")).outs or {}
    assert outs["builder_claim"] == "gcc12-work-2" and outs["reset_token"] == "r1"
    work2 = setup.bound("gcc12-work-2")
    assert work2["spec"]["dataSource"]["name"] == "gcc12-gen-2"
    work1 = setup.kube.get("PersistentVolumeClaim", "gcc12-work-1", setup.namespace)
    assert work1 is not None and c.ANNOTATION_RETIRED_AT in meta(work1)["annotations"]
    outs = provider.update("id", outs, setup.props(promote="p2", reset_builder="r1")).outs or {}
    snap = setup.kube.get("VolumeSnapshot", "gcc12-gen-3-src", setup.namespace)
    assert snap is not None
    assert snap["spec"]["source"]["persistentVolumeClaimName"] == "gcc12-work-2"
    # Reset again; the retired work-2 outlives its retention while gen 3 depends on it.
    outs = provider.update("id", outs, setup.props(promote="p2", reset_builder="r2")).outs or {}
    assert outs["builder_claim"] == "gcc12-work-3"
    setup.backdate("gcc12-work-2", c.ANNOTATION_RETIRED_AT, 30 * 24 * HOUR)
    outs = provider.update("id", outs, setup.props(promote="p2", reset_builder="r2")).outs or {}
    report = "\n".join(outs["report"])
    assert "keep PersistentVolumeClaim gcc12-work-2: VolumeSnapshot gcc12-gen-3-src" in report
    assert "keep PersistentVolumeClaim gcc12-work-1: first builder volume, owned by the stack" in (
        report
    )
    assert setup.builders() == {"gcc12-work-1", "gcc12-work-2", "gcc12-work-3"}


def test_builder_volume_in_use_is_never_snapshotted(
    local_cluster: LocalCluster, setup: CacheSetup
) -> None:
    provider = CachePromotionProvider()
    outs = provider.create(setup.props()).outs or {}
    setup.pod_mounting("builder-job-7", "gcc12-work-1")
    mark = local_cluster.audit.mark()
    with pytest.raises(BuilderInUseError) as refused:
        provider.update("id", outs, setup.props(promote="x"))
    assert refused.value.pods == ["builder-job-7"]
    assert "mounted by pod(s) builder-job-7" in str(refused.value)
    snapshots = [
        e.describe()
        for e in local_cluster.mutating_requests(mark)
        if e.resource == "volumesnapshots"
    ]
    assert snapshots == []
    assert setup.snapshots() == set() and setup.pointer().generation == 1
    assert setup.lease_holder() is None
    setup.kube.delete("Pod", "builder-job-7", setup.namespace)
    wait_for(
        "builder pod gone", lambda: setup.kube.get("Pod", "builder-job-7", setup.namespace) is None
    )
    outs = provider.update("id", outs, setup.props(promote="x")).outs or {}
    assert outs["generation"] == 2


def test_delete_leaves_data_and_pointer_and_a_new_resource_adopts_them(
    setup: CacheSetup, tmp_path: Any
) -> None:
    provider = CachePromotionProvider()
    outs = provider.create(setup.props()).outs or {}
    outs = promote(provider, setup, outs, "d1")
    done = run_driver(tmp_path, "delete", id="id", props=outs)
    assert done.returncode == 0, done
    assert "left in place (promotion never destroys cache data)" in done.stderr
    assert "PersistentVolumeClaim gcc12-gen-2" in done.stderr
    assert setup.generations() == {"gcc12-gen-1", "gcc12-gen-2"}
    created = run_driver(tmp_path, "create", props=setup.props(promote="d1"))
    assert created.answer["outs"]["parent_claim"] == "gcc12-gen-2", created
    assert created.answer["outs"]["token"] == "d1"
    read = run_driver(tmp_path, "read", id="id", props=created.answer["outs"])
    assert read.answer["outs"]["generation"] == 2


def test_delete_of_a_fresh_lineage_leaves_nothing(setup: CacheSetup) -> None:
    provider = CachePromotionProvider()
    outs = provider.create(setup.props()).outs or {}
    provider.delete("id", outs)
    assert setup.kube.get("ConfigMap", c.promotion_pointer_name("gcc12"), setup.namespace) is None
    assert setup.lease_holder() is None
    assert provider.read("id", outs).id == ""


def test_a_snapshot_taken_while_a_builder_pod_appeared_is_discarded(
    setup: CacheSetup, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = CachePromotionProvider()
    outs = provider.create(setup.props()).outs or {}

    def builder_starts(step: str) -> None:
        # A builder job starts in the window between the last check and the snapshot.
        if step == "snapshot-created":
            setup.pod_mounting("late-builder", "gcc12-work-1")

    monkeypatch.setattr(steps, "after_step", builder_starts)
    with pytest.raises(BuilderInUseError) as refused:
        provider.update("id", outs, setup.props(promote="y"))
    assert "The snapshot gcc12-gen-2-src taken meanwhile was discarded" in str(refused.value)
    wait_for("discarded snapshot gone", lambda: setup.snapshots() == set())
    assert setup.generations() == {"gcc12-gen-1"} and setup.pointer().generation == 1


def test_check_predicts_the_claims_an_update_produces(setup: CacheSetup) -> None:
    provider = CachePromotionProvider()
    outs = provider.create(setup.props(promote="a")).outs or {}
    # Nothing pending: the current claims. A promotion and a reset: the next ones.
    same = provider.check(outs, setup.props(promote="a")).inputs
    assert (same["parent_claim"], same["builder_claim"], same["generation"]) == (
        "gcc12-gen-1",
        "gcc12-work-1",
        1,
    )
    moving = provider.check(outs, setup.props(promote="b", reset_builder="r")).inputs
    assert (moving["parent_claim"], moving["builder_claim"], moving["generation"]) == (
        "gcc12-gen-2",
        "gcc12-work-2",
        2,
    )
    outs = provider.update("id", outs, moving).outs or {}
    assert (outs["parent_claim"], outs["builder_claim"], outs["generation"]) == (
        "gcc12-gen-2",
        "gcc12-work-2",
        2,
    )


def test_snapshot_not_ready_in_time_is_a_clear_error_and_a_fixed_rerun_retakes_it(
    setup: CacheSetup,
) -> None:
    provider = CachePromotionProvider()
    outs = provider.create(setup.props()).outs or {}
    broken = setup.props(promote="s1", snapshot_class="no-such-class", ready_timeout_seconds=2)
    with pytest.raises(SnapshotNotReadyError) as late:
        provider.update("id", outs, broken)
    message = str(late.value)
    assert f"snapshot {setup.namespace}/gcc12-gen-2-src of builder volume gcc12-work-1" in message
    assert "was not ready within 2s" in message and '"no-such-class" not found' in message
    assert "VolumeSnapshotClass no-such-class" in message
    assert setup.pointer().generation == 1
    outs = provider.update("id", outs, setup.props(promote="s1")).outs or {}
    assert outs["generation"] == 2


def test_clone_not_bound_in_time_is_a_clear_error_and_a_fixed_rerun_converges(
    setup: CacheSetup,
) -> None:
    provider = CachePromotionProvider()
    outs = provider.create(setup.props()).outs or {}
    # Long enough for the real snapshot to become ready; the clone never binds.
    broken = setup.props(
        promote="b1", parent_storage_class="no-such-class", ready_timeout_seconds=10
    )
    with pytest.raises(CloneNotBoundError) as late:
        provider.update("id", outs, broken)
    message = str(late.value)
    assert f"generation 2 claim {setup.namespace}/gcc12-gen-2 was not Bound within 10s" in message
    assert "phase Pending" in message and "StorageClass no-such-class" in message
    assert setup.pointer().generation == 1 and setup.lease_holder() is None
    outs = provider.update("id", outs, setup.props(promote="b1")).outs or {}
    assert outs["generation"] == 2
    gen2 = setup.bound("gcc12-gen-2")
    assert gen2["spec"]["storageClassName"] == setup.props()["parent_storage_class"]
