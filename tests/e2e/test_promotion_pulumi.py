"""Promotion through the real Pulumi CLI and engine: preview says what will happen and mutates
nothing; ``up`` promotes, repoints every hook ConfigMap, and collects after the grace period.

Two programs: a focused one holding only a CachePromotion (tests/e2e/promotion_program.py:
no Kubernetes provider plugin involved), and this repository's whole program with the
``local`` stack settings (its Kubernetes provider plugin is the toolchain's: the upstream
pulumi-resource-kubernetes at the pinned version).

Grace periods are at least 5 minutes by config; instead of waiting, the harness moves the
``superseded-at`` stamp into the past (what waiting would have done).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import constants as c
from localcluster.harness import LocalCluster
from tests.e2e.promotion_env import CacheSetup, wait_for
from tests.e2e.promotion_program import PromotionProgram
from tests.e2e.pulumi_cli import ROOT, PulumiProject

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


# --- the whole program, local stack settings --------------------------------------------------

TOKEN = "ghp_e2ePromotionTokenValue0123456"


def local_config(local_cluster: LocalCluster, **gcc12: Any) -> dict[str, Any]:
    """The local stack's config on the session's pool, with ``gcc12`` settings changed."""
    document = yaml.safe_load((ROOT / "Pulumi.local.yaml").read_text())
    config = {k.partition(":")[2]: v for k, v in document["config"].items()}
    del config["github"]["credentials"]["token"]
    config = copy.deepcopy(config)
    config["storage"]["poolName"] = local_cluster.storage.pool.name
    config["caches"]["gcc12"].update(gcc12)
    return config


def hook_claims(local_cluster: LocalCluster, scale_set: str) -> dict[str, str]:
    """Volume name -> claim the scale set's hook template clones or mounts."""
    cm = local_cluster.kube().get("ConfigMap", c.hook_template_name(scale_set), "arc-runners")
    assert cm is not None
    template = yaml.safe_load(cm["data"][c.HOOK_TEMPLATE_KEY])
    found = {}
    for volume in template["spec"]["volumes"]:
        if "ephemeral" in volume:
            spec = volume["ephemeral"]["volumeClaimTemplate"]["spec"]
            found[volume["name"]] = spec["dataSource"]["name"]
        elif "persistentVolumeClaim" in volume:
            found[volume["name"]] = volume["persistentVolumeClaim"]["claimName"]
    return found


@pytest.fixture(scope="module")
def stack(
    local_cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PulumiProject]:
    project = PulumiProject.create(
        tmp_path_factory.mktemp("promotion-stack"), Path(local_cluster.kubeconfig)
    )
    yield project
    project.destroy(check=False)


def test_pulumi_up_promotes_and_repoints_every_scale_set(
    local_cluster: LocalCluster, stack: PulumiProject
) -> None:
    stack.set_config(local_config(local_cluster), {"github.credentials.token": TOKEN})
    stack.up()
    assert hook_claims(local_cluster, "local-linux")["cache-gcc12"] == "gcc12-gen-1"
    stack.set_config(
        local_config(local_cluster, promote="feedf00d"), {"github.credentials.token": TOKEN}
    )
    mark = local_cluster.audit.mark()
    preview = stack.preview()
    assert "promote gcc12: gen 1 → gen 2 from gcc12-work-1" in preview.output
    assert [e.describe() for e in local_cluster.mutating_requests(mark)] == []
    stack.up()
    for scale_set in ("local-linux", "local-gcc12"):
        assert hook_claims(local_cluster, scale_set)["cache-gcc12"] == "gcc12-gen-2", scale_set
    assert hook_claims(local_cluster, "local-linux")["cache-clang17"] == "clang17-gen-1"
    assert stack.outputs()["generations"] == {"gcc12": 2, "clang17": 1}
    # In the pool, gen 2 is a real dataset cloned from the builder volume's snapshot.
    cache = CacheSetup(local_cluster, "arc-runners", "gcc12", local_cluster.kube())
    source = cache.snapshot_dataset("gcc12-gen-2-src")
    assert source.startswith(cache.dataset(cache.volume_of("gcc12-work-1")) + "@")
    assert cache.datasets()[cache.dataset(cache.volume_of("gcc12-gen-2"))].origin == source
    # A job's clone of the new parent, made from the rendered template, binds.
    cm = local_cluster.kube().get("ConfigMap", c.hook_template_name("local-gcc12"), "arc-runners")
    assert cm is not None
    template = yaml.safe_load(cm["data"][c.HOOK_TEMPLATE_KEY])
    (volume,) = [v for v in template["spec"]["volumes"] if v["name"] == "cache-gcc12"]
    spec = volume["ephemeral"]["volumeClaimTemplate"]["spec"]
    kube = local_cluster.kube()
    kube.create(
        "PersistentVolumeClaim",
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "e2e-job-cache-gcc12", "namespace": "arc-runners"},
            "spec": spec,
        },
    )
    wait_for(
        "job clone Bound",
        lambda: (
            (kube.get("PersistentVolumeClaim", "e2e-job-cache-gcc12", "arc-runners") or {})
            .get("status", {})
            .get("phase")
            == "Bound"
        ),
    )
    kube.delete("PersistentVolumeClaim", "e2e-job-cache-gcc12", "arc-runners")
    # A later deploy without the token keeps the generation (tokens are not committed).
    stack.set_config(local_config(local_cluster), {"github.credentials.token": TOKEN})
    stack.preview("--expect-no-changes")
    assert stack.outputs()["parent_claims"]["gcc12"] == "gcc12-gen-2"


def test_collection_due_updates_only_the_promotion_and_keeps_every_configmap(
    local_cluster: LocalCluster, stack: PulumiProject
) -> None:
    stack.set_config(
        local_config(local_cluster, promote="feedf00e"), {"github.credentials.token": TOKEN}
    )
    stack.up()
    assert hook_claims(local_cluster, "local-linux")["cache-gcc12"] == "gcc12-gen-3"
    setup = CacheSetup(local_cluster, "arc-runners", "gcc12", local_cluster.kube())
    setup.backdate("gcc12-gen-2", c.ANNOTATION_SUPERSEDED_AT, 2 * HOUR)
    mark = local_cluster.audit.mark()
    steps = stack.preview_steps()
    changed = sorted(s["urn"].rsplit("::", 1)[-1] for s in steps if s["op"] != "same")
    # The claims are known in the preview (check predicts them): no hook ConfigMap changes.
    assert changed == [f"{stack.stack}-cache-gcc12-promotion"], changed
    assert local_cluster.mutating_requests(mark) == []
    stack.up()
    assert "gcc12-gen-2" not in setup.generations()
    assert hook_claims(local_cluster, "local-gcc12")["cache-gcc12"] == "gcc12-gen-3"
