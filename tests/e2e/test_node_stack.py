"""The shipped ``local`` stack (Pulumi.local.yaml) on the local node, with the ARC controller double.

What a user meets after ``make up``: the controller's pod runs, and the listener pod of every
scale set runs in the controller's namespace (``restricted``), built as the real controller
builds it from the AutoscalingRunnerSet's ``listenerTemplate``; a requested runner of every
scale set runs (its work volume a ZFS dataset) and its job pod gets the caches' clones (or,
for the builder scale set, the builder volume) mounted by the ZFS driver double. Then promotion
through the real Pulumi CLI on that stack: preview says what will happen and mutates nothing,
``up`` promotes the builder volume and repoints every hook ConfigMap, so a later job of another
scale set finds what the builder's job wrote; a collection that is due changes only the
promotion. Grace periods are at least 5 minutes by config; instead of waiting, the test moves
the ``superseded-at`` stamp into the past (what waiting would have done).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from lightkube import ApiError, Client
from lightkube.resources.core_v1 import PersistentVolumeClaim, Pod

from components import constants as c
from localcluster import hook_double
from localcluster.arc_double import (
    AutoscalingRunnerSet,
    EphemeralRunner,
    listener_name,
    request_runners,
)
from localcluster.harness import LocalCluster
from localcluster.images import JOB_IMAGE
from localcluster.kube import meta
from localcluster.zfs_pool import zfs
from tests.e2e import node_env
from tests.e2e.promotion_env import CacheSetup
from tests.e2e.pulumi_cli import PulumiProject

pytestmark = pytest.mark.e2e

T = TypeVar("T")
TOKEN = "ghp_e2eNodeStackToken0123456789abcdef"


def wait_for(what: str, check: Callable[[], T | None], timeout: float = 120.0) -> T:
    return node_env.wait_for(what, check, timeout, interval=0.25)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with node_env.node_cluster(tmp_path_factory.mktemp("node-stack")) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def stack(
    cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PulumiProject]:
    project = PulumiProject.create(
        tmp_path_factory.mktemp("node-stack-program"), Path(cluster.kubeconfig), stack="local"
    )
    project.set_config(
        node_env.local_stack_config(cluster.storage.pool.name), {"github.credentials.token": TOKEN}
    )
    project.up()
    yield project
    project.destroy(check=False)


def phase(client: Client, namespace: str, name: str) -> str:
    try:
        pod = client.get(Pod, name, namespace=namespace)
    except ApiError:
        return ""
    return str(pod.status.phase if pod.status else "")


def test_controller_and_every_listener_pod_run(cluster: LocalCluster, stack: Any) -> None:
    client = cluster.client()
    controller = wait_for(
        "the controller's pod",
        lambda: next(
            iter(
                client.list(
                    Pod, namespace="*", labels={"app.kubernetes.io/name": "gha-rs-controller"}
                )
            ),
            None,
        ),
    )
    controller_ns = controller.metadata.namespace
    wait_for(
        "the controller Running",
        lambda: phase(client, controller_ns, controller.metadata.name) == "Running",
    )
    sets = [a.to_dict() for a in client.list(AutoscalingRunnerSet, namespace="*")]
    assert sorted(a["metadata"]["name"] for a in sets) == sorted(
        node_env.local_stack_config(cluster.storage.pool.name)["scaleSets"]
    )
    for ars in sets:
        name = listener_name(ars)
        wait_for(
            f"listener {name} Running", lambda n=name: phase(client, controller_ns, n) == "Running"
        )
        pod = client.get(Pod, name, namespace=controller_ns).to_dict()
        assert pod["spec"]["containers"][0]["command"] == ["/ghalistener"]
        assert (
            pod["metadata"]["labels"]["actions.github.com/scale-set-name"]
            == ars["metadata"]["name"]
        )


def test_runner_pod_on_request_is_admitted_and_placed_on_the_cache_node(
    cluster: LocalCluster, stack: Any
) -> None:
    client = cluster.client()
    namespace = node_env.local_stack_config(cluster.storage.pool.name)["scaleSets"]["local-gcc12"][
        "namespace"
    ]
    wait_for(
        "the runner set", lambda: _try(lambda: request_runners(client, namespace, "local-gcc12", 1))
    )
    runner = wait_for(
        "an EphemeralRunner",
        lambda: next(iter(client.list(EphemeralRunner, namespace=namespace)), None),
    )
    name = runner.metadata.name
    pod = wait_for("its pod", lambda: _try(lambda: client.get(Pod, name, namespace=namespace)))
    spec = pod.to_dict()["spec"]
    assert spec["nodeSelector"] == {"kubernetes.io/hostname": "local-zfs-node"}
    env = {e["name"] for e in spec["containers"][0]["env"]}
    assert {"ACTIONS_RUNNER_INPUT_JITCONFIG", "ACTIONS_RUNNER_CONTAINER_HOOK_TEMPLATE"} <= env
    request_runners(client, namespace, "local-gcc12", 0)
    wait_for("runner gone", lambda: not list(client.list(EphemeralRunner, namespace=namespace)))


def _mount_paths(config: dict[str, Any], scale_set: str) -> list[str]:
    """Where the scale set's job pods get its caches: clones, or the builder volume."""
    spec = config["scaleSets"][scale_set]
    caches = [*(spec.get("caches") or []), *([spec["builds"]] if spec.get("builds") else [])]
    return [config["caches"][cache]["mountPath"] for cache in caches]


def test_every_scale_sets_runner_runs_and_its_job_pod_gets_the_caches(
    cluster: LocalCluster, stack: Any
) -> None:
    """The deployed program's runners reach Running (work volume: a ZFS dataset); from each
    runner pod's view the hook double's job pod mounts the caches, writable by uid 1001."""
    assert cluster.node is not None
    client = cluster.client()
    config = node_env.local_stack_config(cluster.storage.pool.name)
    pool = cluster.storage.pool.name
    for cache, spec in config["caches"].items():
        claim = client.get(
            PersistentVolumeClaim, c.generation_name(cache, 1), namespace=spec["namespace"]
        )
        assert claim.spec is not None
        parent = zfs("get", "-H", "-o", "value", "mountpoint", f"{pool}/{claim.spec.volumeName}")
        (Path(parent.stdout.strip()) / "parent-marker").write_text(cache)
    for scale_set, spec in config["scaleSets"].items():
        paths = _mount_paths(config, scale_set)
        clones = spec.get("caches") or []
        script = ["set -e", *(f"test -f {p}/parent-marker" for p in paths[: len(clones)]),
                  *(f"echo {scale_set} > {p}/written-by-{scale_set}" for p in paths),
                  "echo done"]  # fmt: skip
        _run_job(cluster, spec["namespace"], scale_set, script)


def _run_job(cluster: LocalCluster, namespace: str, scale_set: str, script: list[str]) -> None:
    """One job on a requested runner of ``scale_set``: from the runner pod's view the hook
    double's job pod runs ``script`` and must succeed; then the job pod goes and the scale set
    goes back to no runner (so the next request makes a fresh runner from the current template)."""
    assert cluster.node is not None
    client = cluster.client()
    wait_for(
        f"{scale_set}'s runner set",
        lambda: _try(lambda: request_runners(client, namespace, scale_set, 1)),
    )
    runner = wait_for(
        f"an EphemeralRunner of {scale_set}",
        lambda: next(
            (
                r.metadata.name
                for r in client.list(EphemeralRunner, namespace=namespace)
                if r.metadata and r.metadata.name.startswith(f"{scale_set}-")
            ),
            None,
        ),
    )
    wait_for(
        f"runner pod {runner} Running",
        lambda: phase(client, namespace, runner) == "Running",
        timeout=180.0,
    )
    view = node_env.hook_view(cluster.control_plane, cluster.node, namespace, runner)
    job = hook_double.prepare_job(
        view, image=JOB_IMAGE, entry_point="/bin/sh", entry_point_args=["-c", "; ".join(script)]
    )
    name = meta(job)["name"]
    wait_for(
        f"job pod {name} done",
        lambda: phase(client, namespace, name) in ("Succeeded", "Failed"),
        timeout=180.0,
    )
    assert phase(client, namespace, name) == "Succeeded", f"{scale_set}: job pod {name}"
    client.delete(Pod, name, namespace=namespace, grace_period=1)
    wait_for(f"{name} gone", lambda: not phase(client, namespace, name))
    request_runners(client, namespace, scale_set, 0)
    wait_for(f"{scale_set}'s runner gone", lambda: not phase(client, namespace, runner))


def _try(run: Callable[[], T]) -> T | None:
    try:
        return run()
    except (LookupError, ApiError):
        return None


# --- promotion of the deployed stack ----------------------------------------------------------
# The stack the tests above used, the builder set's job having written into gcc12's builder
# volume (gcc12-work-1): promote that volume and collect the superseded generation.

HOUR = 3600.0


def local_config(pool: str, **gcc12: Any) -> dict[str, Any]:
    """The local stack's config on ``pool``, with ``gcc12`` settings changed."""
    config = node_env.local_stack_config(pool)
    config["caches"]["gcc12"].update(gcc12)
    return config


def hook_claims(cluster: LocalCluster, scale_set: str) -> dict[str, str]:
    """Volume name -> claim the scale set's hook template clones or mounts."""
    namespace = local_config(cluster.storage.pool.name)["scaleSets"][scale_set]["namespace"]
    cm = cluster.kube().get("ConfigMap", c.hook_template_name(scale_set), namespace)
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


def test_pulumi_up_promotes_and_repoints_every_scale_set(
    cluster: LocalCluster, stack: PulumiProject
) -> None:
    pool = cluster.storage.pool.name
    config = local_config(pool)
    namespace = config["caches"]["gcc12"]["namespace"]
    assert hook_claims(cluster, "local-linux")["cache-gcc12"] == "gcc12-gen-1"
    stack.set_config(local_config(pool, promote="feedf00d"), {"github.credentials.token": TOKEN})
    mark = cluster.audit.mark()
    preview = stack.preview()
    assert "promote gcc12: gen 1 → gen 2 from gcc12-work-1" in preview.output
    assert [e.describe() for e in cluster.mutating_requests(mark)] == []
    stack.up()
    for scale_set in ("local-linux", "local-gcc12"):
        assert hook_claims(cluster, scale_set)["cache-gcc12"] == "gcc12-gen-2", scale_set
    assert hook_claims(cluster, "local-linux")["cache-clang17"] == "clang17-gen-1"
    assert stack.outputs()["generations"] == {"gcc12": 2, "clang17": 1}
    # In the pool, gen 2 is a real dataset cloned from the builder volume's snapshot.
    cache = CacheSetup(cluster, namespace, "gcc12", cluster.kube())
    source = cache.snapshot_dataset("gcc12-gen-2-src")
    assert source.startswith(cache.dataset(cache.volume_of("gcc12-work-1")) + "@")
    assert cache.datasets()[cache.dataset(cache.volume_of("gcc12-gen-2"))].origin == source
    # A job's clone of the new parent, made from the rendered template, binds.
    kube = cluster.kube()
    cm = kube.get("ConfigMap", c.hook_template_name("local-gcc12"), namespace)
    assert cm is not None
    template = yaml.safe_load(cm["data"][c.HOOK_TEMPLATE_KEY])
    (volume,) = [v for v in template["spec"]["volumes"] if v["name"] == "cache-gcc12"]
    spec = volume["ephemeral"]["volumeClaimTemplate"]["spec"]
    kube.create(
        "PersistentVolumeClaim",
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "e2e-job-cache-gcc12", "namespace": namespace},
            "spec": spec,
        },
    )
    wait_for(
        "job clone Bound",
        lambda: (
            (kube.get("PersistentVolumeClaim", "e2e-job-cache-gcc12", namespace) or {})
            .get("status", {})
            .get("phase")
            == "Bound"
        ),
    )
    kube.delete("PersistentVolumeClaim", "e2e-job-cache-gcc12", namespace)
    # What promotion is for: a job of another scale set using gcc12 now finds in its clone
    # what the builder set's job wrote (test_every_scale_sets_runner_runs_...).
    (builder,) = [s for s, spec in config["scaleSets"].items() if spec.get("builds") == "gcc12"]
    mount = config["caches"]["gcc12"]["mountPath"]
    _run_job(cluster, namespace, "local-linux", ["set -e", f"test -f {mount}/written-by-{builder}"])
    # A later deploy without the token keeps the generation (tokens are not committed).
    stack.set_config(config, {"github.credentials.token": TOKEN})
    stack.preview("--expect-no-changes")
    assert stack.outputs()["parent_claims"]["gcc12"] == "gcc12-gen-2"


def test_collection_due_updates_only_the_promotion_and_keeps_every_configmap(
    cluster: LocalCluster, stack: PulumiProject
) -> None:
    pool = cluster.storage.pool.name
    stack.set_config(local_config(pool, promote="feedf00e"), {"github.credentials.token": TOKEN})
    stack.up()
    assert hook_claims(cluster, "local-linux")["cache-gcc12"] == "gcc12-gen-3"
    namespace = local_config(pool)["caches"]["gcc12"]["namespace"]
    setup = CacheSetup(cluster, namespace, "gcc12", cluster.kube())
    setup.backdate("gcc12-gen-2", c.ANNOTATION_SUPERSEDED_AT, 2 * HOUR)
    mark = cluster.audit.mark()
    steps = stack.preview_steps()
    changed = sorted(s["urn"].rsplit("::", 1)[-1] for s in steps if s["op"] != "same")
    # The claims are known in the preview (check predicts them): no hook ConfigMap changes.
    assert changed == [f"{stack.stack}-cache-gcc12-promotion"], changed
    assert cluster.mutating_requests(mark) == []
    stack.up()
    assert "gcc12-gen-2" not in setup.generations()
    assert hook_claims(cluster, "local-gcc12")["cache-gcc12"] == "gcc12-gen-3"
