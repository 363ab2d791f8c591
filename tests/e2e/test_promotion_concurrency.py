"""Promotions racing each other, and job clones racing promotions and garbage collection."""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from lightkube.models.coordination_v1 import LeaseSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.coordination_v1 import Lease

from components import constants as c
from components.promotion.lease import LeaseHeldError
from components.promotion.provider import CachePromotionProvider
from localcluster.harness import LocalCluster
from localcluster.kube import meta
from tests.e2e.promotion_env import (
    CacheSetup,
    finish_driver,
    pool_names,
    run_driver,
    start_driver,
    wait_for,
)

pytestmark = pytest.mark.e2e


class PointerWatcher:
    """Samples the pointer's generation in a thread; the pointer must only move forward."""

    def __init__(self, setup: CacheSetup) -> None:
        self.setup = setup
        self.seen: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        kube = self.setup.cluster.kube()
        while not self._stop.wait(0.02):
            cm = kube.get("ConfigMap", c.promotion_pointer_name("gcc12"), self.setup.namespace)
            if cm is not None:
                self.seen.append(int(cm["data"]["generation"]))

    def __enter__(self) -> PointerWatcher:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def start(setup: CacheSetup, tmp_path: Path, outs: dict[str, Any], token: str) -> Any:
    return start_driver(tmp_path, "update", id="id", olds=outs, news=setup.props(promote=token))


def test_two_promotions_at_once_make_one_generation_each_in_order(
    local_cluster: LocalCluster, tmp_path: Path
) -> None:
    setup = CacheSetup.create(local_cluster)
    outs = CachePromotionProvider().create(setup.props()).outs or {}
    with PointerWatcher(setup) as watcher:
        procs = [start(setup, tmp_path, outs, token) for token in ("left", "right")]
        results = [finish_driver(p) for p in procs]
    for result in results:
        assert result.returncode == 0, result
    assert sorted(r.answer["outs"]["generation"] for r in results) == [2, 3]
    assert setup.generations() == {"gcc12-gen-1", "gcc12-gen-2", "gcc12-gen-3"}
    tokens = {
        meta(setup.kube.get("PersistentVolumeClaim", f"gcc12-gen-{n}", setup.namespace) or {})[
            "annotations"
        ][c.ANNOTATION_PROMOTE_TOKEN]
        for n in (2, 3)
    }
    assert tokens == {"left", "right"}
    assert watcher.seen == sorted(watcher.seen), "the pointer moved backwards"
    assert set(watcher.seen) <= {1, 2, 3}
    assert setup.pointer().generation == 3 and setup.lease_holder() is None


def test_two_promotions_with_the_same_token_make_one_generation(
    local_cluster: LocalCluster, tmp_path: Path
) -> None:
    setup = CacheSetup.create(local_cluster)
    outs = CachePromotionProvider().create(setup.props()).outs or {}
    procs = [start(setup, tmp_path, outs, "same") for _ in range(2)]
    results = [finish_driver(p) for p in procs]
    for result in results:
        assert result.returncode == 0, result
        assert result.answer["outs"]["generation"] == 2
    assert any("was already applied on the cluster" in r.stderr for r in results)
    assert setup.generations() == {"gcc12-gen-1", "gcc12-gen-2"}


def test_a_lease_held_too_long_fails_naming_holder_and_expiry(
    local_cluster: LocalCluster,
) -> None:
    setup = CacheSetup.create(local_cluster)
    provider = CachePromotionProvider()
    outs = provider.create(setup.props()).outs or {}
    now = datetime.now(UTC).replace(microsecond=1)
    client = local_cluster.client()
    client.create(
        Lease(
            metadata=ObjectMeta(name=c.promotion_lease_name("gcc12"), namespace=setup.namespace),
            spec=LeaseSpec(
                holderIdentity="ci-runner-7/pid-4242/deadbeef",
                leaseDurationSeconds=600,
                acquireTime=now,
                renewTime=now,
            ),
        )
    )
    client.close()
    began = time.monotonic()
    with pytest.raises(LeaseHeldError) as held:
        provider.update(
            "id", outs, setup.props(promote="x", lease_seconds=1, ready_timeout_seconds=1)
        )
    assert 2.5 < time.monotonic() - began < 10
    expiry = (now + timedelta(seconds=600)).strftime("%Y-%m-%dT%H:%M:%S")
    assert "held by ci-runner-7/pid-4242/deadbeef until " + expiry in str(held.value)
    assert setup.generations() == {"gcc12-gen-1"}


def test_job_clones_during_promotions_and_collection_never_miss_their_parent(
    local_cluster: LocalCluster,
) -> None:
    """Jobs clone whatever the hook ConfigMap names while promotions move it and collection
    deletes superseded generations (grace 2 s): every clone binds, collection never asks ZFS
    to destroy a generation a live clone depends on, and the pool ends with no orphan."""
    before = pool_names(local_cluster)
    setup = CacheSetup.create(local_cluster, grace_seconds=2)
    since = setup.driver_log_size()
    provider = CachePromotionProvider()
    outs = provider.create(setup.props()).outs or {}
    setup.hook_config_map(outs["parent_claim"])
    stop = threading.Event()
    clones: list[tuple[str, str]] = []
    failures: list[str] = []
    lock = threading.Lock()

    def job_loop(worker: int) -> None:
        kube = local_cluster.kube()
        rng = random.Random(worker)
        n = 0
        while not stop.is_set():
            n += 1
            name = f"job-{worker}-{n}-cache"
            parent = setup.hook_parent()
            setup.job_clone(name, parent)
            with lock:
                clones.append((name, parent))
            try:
                setup.bound(name, timeout=60)
            except AssertionError:
                events = [
                    e["message"]
                    for e in kube.list("Event", setup.namespace)
                    if e["involvedObject"].get("name") == name
                ]
                with lock:
                    failures.append(f"{name} from {parent}: {events}")
            time.sleep(rng.uniform(0.0, 0.3))  # the job runs for a moment
            kube.delete("PersistentVolumeClaim", name, setup.namespace)

    workers = [threading.Thread(target=job_loop, args=(w,), daemon=True) for w in range(3)]
    for worker in workers:
        worker.start()
    collected: list[str] = []
    generations = {setup.volume_of(outs["parent_claim"])}
    try:
        for k in range(6):
            outs = provider.update("id", outs, setup.props(promote=f"k{k}")).outs or {}
            generations.add(setup.volume_of(outs["parent_claim"]))
            # What the program does in the same `pulumi up`: re-render the hook ConfigMap.
            setup.hook_config_map(outs["parent_claim"])
            collected += [line for line in outs["report"] if line.startswith("collect ")]
            time.sleep(1.0)  # let jobs use this generation for a while
        # Once the last superseded generation is past its grace period, collection runs again.
        time.sleep(2.5)
        outs = provider.update("id", outs, setup.props(promote="k5")).outs or {}
        collected += [line for line in outs["report"] if line.startswith("collect ")]
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=30)
    assert failures == []
    assert len(clones) >= 20, len(clones)
    assert {parent for _, parent in clones} >= {"gcc12-gen-2", "gcc12-gen-7"}
    assert any("collect PersistentVolumeClaim gcc12-gen-" in line for line in collected), collected
    wait_for(
        "job clones gone",
        lambda: (
            not [
                pvc
                for pvc in setup.kube.list("PersistentVolumeClaim", setup.namespace)
                if meta(pvc)["name"].startswith("job-")
            ]
        ),
        timeout=60,
    )
    # Had collection deleted a generation with a live clone, ZFS would have refused to
    # destroy its dataset (and the driver said so): it never asked.
    assert setup.refused_destroys(generations, since) == []
    setup.wait_pool_accounted(before)


def test_one_provider_process_serves_several_caches_at_once(
    local_cluster: LocalCluster, tmp_path: Path
) -> None:
    """The engine calls a dynamic provider from several threads: a fresh process creating,
    promoting and deleting three caches' lineages at once must neither crash nor mix them up
    (lightkube's first-time decoding crashed such a process before API calls were serialised)."""
    for _ in range(3):
        setups = [CacheSetup.create(local_cluster) for _ in range(3)]
        created = run_driver(
            tmp_path,
            "parallel",
            calls=[{"method": "create", "props": s.props()} for s in setups],
        )
        assert created.returncode == 0, created
        outs = [r["outs"] for r in created.answer["results"]]
        promoted = run_driver(
            tmp_path,
            "parallel",
            calls=[
                {"method": "update", "id": "id", "olds": o, "news": s.props(promote="p")}
                for s, o in zip(setups, outs, strict=True)
            ],
        )
        assert promoted.returncode == 0, promoted
        outs = [r["outs"] for r in promoted.answer["results"]]
        assert [o["parent_claim"] for o in outs] == ["gcc12-gen-2"] * 3
        deleted = run_driver(
            tmp_path,
            "parallel",
            calls=[{"method": "delete", "id": "id", "props": o} for o in outs],
        )
        assert deleted.returncode == 0, deleted
        for setup in setups:
            assert setup.pointer().generation == 2 and setup.lease_holder() is None
