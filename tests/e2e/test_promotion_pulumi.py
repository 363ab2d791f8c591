"""Promotion through the real Pulumi CLI and engine: preview says what will happen and mutates
nothing; ``up`` promotes and collects after the grace period.

The program is a focused one holding only a CachePromotion (tests/e2e/promotion_program.py: no
Kubernetes provider plugin involved). The whole program with the ``local`` stack settings is
promoted in tests/e2e/test_node_stack.py, on a cluster with the local node (the stack's
controller Deployment is awaited, so it needs a kubelet).

Grace periods are at least 5 minutes by config; instead of waiting, the harness moves the
``superseded-at`` stamp into the past (what waiting would have done).
"""

from __future__ import annotations

import re

import pytest

from components import constants as c
from localcluster.harness import LocalCluster
from tests.e2e.promotion_env import CacheSetup
from tests.e2e.promotion_program import PromotionProgram

pytestmark = pytest.mark.e2e

HOUR = 3600.0


# --- the focused program ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def cache(local_cluster: LocalCluster) -> CacheSetup:
    return CacheSetup.create(local_cluster)


@pytest.fixture(scope="module")
def program(
    local_cluster: LocalCluster, cache: CacheSetup, tmp_path_factory: pytest.TempPathFactory
) -> PromotionProgram:
    return PromotionProgram.create(
        tmp_path_factory.mktemp("promotion-program"), local_cluster.kubeconfig, cache.namespace
    )


def test_up_starts_the_lineage_and_a_second_run_is_a_no_op(program: PromotionProgram) -> None:
    program.up()
    assert program.outputs()["parent_claim"] == "gcc12-gen-1"
    program.preview("--expect-no-changes")


def test_preview_of_a_new_token_says_what_will_happen_and_mutates_nothing(
    local_cluster: LocalCluster, program: PromotionProgram, cache: CacheSetup
) -> None:
    program.configure(promote="c0ffee1")
    mark = local_cluster.audit.mark()
    result = program.preview()
    assert "promote gcc12: gen 1 → gen 2 from gcc12-work-1" in result.output
    # The preview knows the claim the hook ConfigMaps will name once the update succeeds.
    assert re.search(r'parent_claim\s*: "gcc12-gen-1" => "gcc12-gen-2"', result.output)
    assert [e.describe() for e in local_cluster.mutating_requests(mark)] == []
    assert cache.pointer().generation == 1 and cache.snapshots() == set()


def test_up_promotes_and_gen_n_is_collected_only_after_its_grace_period(
    local_cluster: LocalCluster, program: PromotionProgram, cache: CacheSetup
) -> None:
    result = program.up()
    assert "promoted gcc12 to gen 2 (gcc12-gen-2) from gcc12-work-1" in result.output
    outputs = program.outputs()
    assert (outputs["parent_claim"], outputs["generation"]) == ("gcc12-gen-2", 2)
    program.configure(promote="c0ffee2")
    program.up()
    report = "\n".join(program.outputs()["report"])
    assert "keep PersistentVolumeClaim gcc12-gen-2: superseded" in report
    program.preview("--expect-no-changes")  # within the grace period nothing is due
    cache.backdate("gcc12-gen-2", c.ANNOTATION_SUPERSEDED_AT, 2 * HOUR)
    mark = local_cluster.audit.mark()
    result = program.preview()
    assert "collect PersistentVolumeClaim gcc12-gen-2" in result.output
    # Collection moves no pointer: the claims stay (no hook ConfigMap would change).
    assert re.search(r'parent_claim\s*: "gcc12-gen-3"\n', result.output)
    assert local_cluster.mutating_requests(mark) == []
    program.up()
    assert cache.generations() == {"gcc12-gen-1", "gcc12-gen-3"}
    assert cache.snapshots() == {"gcc12-gen-3-src"}
    program.preview("--expect-no-changes")


def test_destroy_leaves_the_lineage_and_says_so(
    program: PromotionProgram, cache: CacheSetup
) -> None:
    result = program.destroy()
    assert "left in place (promotion never destroys cache data)" in result.output
    assert cache.generations() == {"gcc12-gen-1", "gcc12-gen-3"}
    assert cache.pointer().generation == 3
