"""The shipped ``local`` stack (Pulumi.local.yaml) on the local node, with the ARC controller double.

What a user meets after ``make up``: the controller's pod runs, and the listener pod of every
scale set runs in the controller's namespace (``restricted``), built as the real controller
builds it from the AutoscalingRunnerSet's ``listenerTemplate``; a requested runner of every
scale set runs (its work volume a ZFS dataset) and its job pod gets the caches' clones (or,
for the builder scale set, the builder volume) mounted by the ZFS driver double.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
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
def stack(cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
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
        namespace = spec["namespace"]
        wait_for(
            f"{scale_set}'s runner set",
            lambda ns=namespace, s=scale_set: _try(lambda: request_runners(client, ns, s, 1)),
        )
        runner = wait_for(
            f"an EphemeralRunner of {scale_set}",
            lambda ns=namespace, s=scale_set: next(
                (
                    r.metadata.name
                    for r in client.list(EphemeralRunner, namespace=ns)
                    if r.metadata and r.metadata.name.startswith(f"{s}-")
                ),
                None,
            ),
        )
        wait_for(
            f"runner pod {runner} Running",
            lambda ns=namespace, r=runner: phase(client, ns, r) == "Running",
            timeout=180.0,
        )
        view = node_env.hook_view(cluster.control_plane, cluster.node, namespace, runner)
        paths = _mount_paths(config, scale_set)
        clones = spec.get("caches") or []
        script = ["set -e", *(f"test -f {p}/parent-marker" for p in paths[: len(clones)]),
                  *(f"echo {scale_set} > {p}/written-by-{scale_set}" for p in paths),
                  "echo done"]  # fmt: skip
        job = hook_double.prepare_job(
            view, image=JOB_IMAGE, entry_point="/bin/sh", entry_point_args=["-c", "; ".join(script)]
        )
        name = meta(job)["name"]
        wait_for(
            f"job pod {name} done",
            lambda ns=namespace, n=name: phase(client, ns, n) in ("Succeeded", "Failed"),
            timeout=180.0,
        )
        assert phase(client, namespace, name) == "Succeeded", f"{scale_set}: job pod {name}"
        client.delete(Pod, name, namespace=namespace, grace_period=1)
        wait_for(f"{name} gone", lambda ns=namespace, n=name: not phase(client, ns, n))
        request_runners(client, namespace, scale_set, 0)
        wait_for(
            f"{scale_set}'s runner gone",
            lambda ns=namespace, r=runner: not phase(client, ns, r),
        )


def _try(run: Callable[[], T]) -> T | None:
    try:
        return run()
    except (LookupError, ApiError):
        return None
