"""A crash at any step of a promotion, reset or collection, then a re-run: it converges.

Each attempt runs the provider in a fresh process (tests/e2e/promotion_driver.py) that kills
itself with SIGKILL right after the named step: no ``finally`` runs, the Lease stays held by
a dead process until it expires (2 s here), and Pulumi would not have recorded anything, so
the re-run gets the same olds and news. After every re-run: the pointer names the expected
generation, every generation and snapshot there is accounted for (nothing leaked), all of them
are Bound/ready, the Lease is free, and the pool (``zfs list -t all`` before and after) holds
exactly the datasets and snapshots those objects account for: no orphan.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from components import constants as c
from components.promotion.steps import STEPS
from localcluster.harness import LocalCluster
from localcluster.kube import meta
from tests.e2e.promotion_env import CacheSetup, pool_names, run_driver

pytestmark = pytest.mark.e2e

PROMOTION_STEPS = [
    "lease-acquired",
    "builder-checked",
    "snapshot-created",
    "snapshot-ready",
    "generation-created",
    "generation-bound",
    "pointer-swapped",
    "superseded-stamped",
    "lease-released",
]
RESET_STEPS = ["builder-created", "builder-bound", "builder-swapped", "builder-retired"]


def assert_consistent(
    setup: CacheSetup, outs: dict[str, Any], generation: int, before: set[str]
) -> None:
    pointer = setup.pointer()
    assert pointer.generation == generation == outs["generation"]
    assert pointer.parent_claim == outs["parent_claim"] == c.generation_name("gcc12", generation)
    assert pointer.builder_claim == outs["builder_claim"]
    wanted = {c.generation_name("gcc12", n) for n in range(1, generation + 1)}
    assert setup.generations() == wanted
    assert setup.snapshots() == {
        c.source_snapshot_name("gcc12", n) for n in range(2, generation + 1)
    }
    for name in wanted:
        setup.bound(name, timeout=5)
    for name in setup.snapshots():
        snap = setup.kube.get("VolumeSnapshot", name, setup.namespace) or {}
        assert (snap.get("status") or {}).get("readyToUse") is True, name
    # Every superseded generation carries its stamp (a crash before stamping is repaired).
    for n in range(1, generation):
        claim = setup.kube.get(
            "PersistentVolumeClaim", c.generation_name("gcc12", n), setup.namespace
        )
        assert claim is not None and c.ANNOTATION_SUPERSEDED_AT in meta(claim)["annotations"]
    assert setup.lease_holder() is None
    setup.wait_pool_accounted(before)


def test_the_step_list_matches_the_provider() -> None:
    assert set(PROMOTION_STEPS + RESET_STEPS + ["gc-applied"]) == set(STEPS)


def test_crash_after_each_promotion_and_reset_step_then_rerun_converges(
    local_cluster: LocalCluster, tmp_path: Path
) -> None:
    before = pool_names(local_cluster)
    setup = CacheSetup.create(local_cluster, lease_seconds=2)
    created = run_driver(tmp_path, "create", props=setup.props())
    assert created.returncode == 0, created
    outs = created.answer["outs"]
    rid = created.answer["id"]
    generation = 1
    for i, step in enumerate(PROMOTION_STEPS):
        news = setup.props(promote=f"t{i}")
        crashed = run_driver(tmp_path, "update", crash_after=step, id=rid, olds=outs, news=news)
        assert crashed.killed, (step, crashed)
        rerun = run_driver(tmp_path, "update", id=rid, olds=outs, news=news)
        assert rerun.returncode == 0, (step, rerun)
        outs = rerun.answer["outs"]
        generation += 1
        assert outs["token"] == f"t{i}"
        assert_consistent(setup, outs, generation, before)
    builders = {"gcc12-work-1"}
    for i, step in enumerate(RESET_STEPS):
        news = setup.props(promote=outs["token"], reset_builder=f"r{i}")
        crashed = run_driver(tmp_path, "update", crash_after=step, id=rid, olds=outs, news=news)
        assert crashed.killed, (step, crashed)
        rerun = run_driver(tmp_path, "update", id=rid, olds=outs, news=news)
        assert rerun.returncode == 0, (step, rerun)
        outs = rerun.answer["outs"]
        builders.add(c.builder_volume_name("gcc12", i + 2))
        assert outs["builder_claim"] == c.builder_volume_name("gcc12", i + 2)
        assert setup.pointer().builder_claim == outs["builder_claim"]
        assert setup.builders() == builders
        setup.bound(outs["builder_claim"], timeout=5)
        assert_consistent(setup, outs, generation, before)


def test_rerun_with_another_token_removes_what_the_crashed_attempt_left(
    local_cluster: LocalCluster, tmp_path: Path
) -> None:
    before = pool_names(local_cluster)
    setup = CacheSetup.create(local_cluster, lease_seconds=2)
    created = run_driver(tmp_path, "create", props=setup.props())
    outs, rid = created.answer["outs"], created.answer["id"]
    crashed = run_driver(
        tmp_path,
        "update",
        crash_after="generation-created",
        id=rid,
        olds=outs,
        news=setup.props(promote="stale"),
    )
    assert crashed.killed
    stale = setup.kube.get("VolumeSnapshot", "gcc12-gen-2-src", setup.namespace)
    assert stale is not None
    # The builder ran again after the crash; the new token must not promote the old snapshot.
    rerun = run_driver(tmp_path, "update", id=rid, olds=outs, news=setup.props(promote="fresh"))
    assert rerun.returncode == 0, rerun
    snap = setup.kube.get("VolumeSnapshot", "gcc12-gen-2-src", setup.namespace)
    assert snap is not None and meta(snap)["uid"] != meta(stale)["uid"]
    assert meta(snap)["annotations"][c.ANNOTATION_PROMOTE_TOKEN] == "fresh"
    gen2 = setup.kube.get("PersistentVolumeClaim", "gcc12-gen-2", setup.namespace)
    assert gen2 is not None and meta(gen2)["annotations"][c.ANNOTATION_PROMOTE_TOKEN] == "fresh"
    assert_consistent(setup, rerun.answer["outs"], 2, before)


def test_crash_during_collection_then_rerun_collects_the_rest(
    local_cluster: LocalCluster, tmp_path: Path
) -> None:
    before = pool_names(local_cluster)
    setup = CacheSetup.create(local_cluster, lease_seconds=2)
    created = run_driver(tmp_path, "create", props=setup.props())
    outs, rid = created.answer["outs"], created.answer["id"]
    for token in ("a", "b"):
        done = run_driver(tmp_path, "update", id=rid, olds=outs, news=setup.props(promote=token))
        assert done.returncode == 0, done
        outs = done.answer["outs"]
    setup.backdate("gcc12-gen-2", c.ANNOTATION_SUPERSEDED_AT, 7200)
    news = setup.props(promote="b")
    crashed = run_driver(tmp_path, "update", crash_after="gc-applied", id=rid, olds=outs, news=news)
    assert crashed.killed
    rerun = run_driver(tmp_path, "update", id=rid, olds=outs, news=news)
    assert rerun.returncode == 0, rerun
    assert setup.generations() == {"gcc12-gen-1", "gcc12-gen-3"}
    assert setup.snapshots() == {"gcc12-gen-3-src"}
    assert setup.pointer().generation == 3
    assert setup.lease_holder() is None
    setup.wait_pool_accounted(before)
