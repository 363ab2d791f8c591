"""Set-up shared by the template-propagation e2e test and bench part d: a runner pod of the
deployed ``local`` stack, created by the ARC controller double, running on the local node.

The local stack names no default StorageClass, so the scale set's runner ``work`` claim (an
ephemeral volume, claim ``<pod>-work``) gets ``workVolume.storageClass: local-work`` and a
``local`` PersistentVolume bound to it ahead of time, which the kubelet mounts itself.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping
from typing import Any, Final

from lightkube import ApiError, Client
from lightkube.resources.core_v1 import Pod

from components import constants as c
from localcluster.arc_double import EphemeralRunner, request_runners
from localcluster.kube import Kube
from localcluster.node import NODE_NAME, LocalNode

__all__ = ["SCALE_SET", "WORK_CLASS", "job_memory", "running_runner", "with_runner_work_class"]

#: The scale set whose runner pod reads the template (a consumer of both caches).
SCALE_SET: Final = "local-linux"
WORK_CLASS: Final = "local-work"


def with_runner_work_class(config: Mapping[str, Any], memory: str | None = None) -> dict[str, Any]:
    """``config`` (the local stack's) with a bindable work claim for :data:`SCALE_SET` and,
    given ``memory``, that memory request on its ``$job`` container (a change of its hook
    template)."""
    changed = copy.deepcopy(dict(config))
    scale_set = changed["scaleSets"][SCALE_SET]
    scale_set["workVolume"] = {"storageClass": WORK_CLASS}
    if memory is not None:
        scale_set["jobResources"] = {"requests": {"memory": memory}}
    return changed


def job_memory(template: Mapping[str, Any] | None) -> str | None:
    """The ``$job`` container's memory request in a hook template (None when it sets none)."""
    containers = ((template or {}).get("spec") or {}).get("containers") or []
    job: Mapping[str, Any] = next(
        (x for x in containers if x.get("name") == c.JOB_CONTAINER_NAME), {}
    )
    memory = ((job.get("resources") or {}).get("requests") or {}).get("memory")
    return str(memory) if memory is not None else None


def _work_volume(kube: Kube, node: LocalNode, namespace: str, runner: str) -> None:
    path = node.dir / "local-pvs" / f"{namespace}-{runner}-work"
    path.mkdir(parents=True)
    path.chmod(0o777)
    kube.create("PersistentVolume", {
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": f"{namespace}-{runner}-work"},
        "spec": {
            "capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOnce"],
            "storageClassName": WORK_CLASS, "local": {"path": str(path)},
            # The ephemeral volume controller names the claim <pod>-<volume>.
            "claimRef": {"namespace": namespace, "name": f"{runner}-work"},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": [NODE_NAME]}]}]}},
        },
    })  # fmt: skip


def _poll(what: str, check: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except (LookupError, ApiError):
            value = None
        if value:
            return value
        time.sleep(0.5)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def running_runner(
    client: Client, kube: Kube, node: LocalNode, namespace: str, timeout: float = 180.0
) -> str:
    """Ask the ARC double for one runner of :data:`SCALE_SET`, bind its work claim, and return
    its pod's name once it runs."""
    _poll("the runner set", lambda: request_runners(client, namespace, SCALE_SET, 1), timeout)
    runner = _poll(
        "an EphemeralRunner",
        lambda: next(iter(client.list(EphemeralRunner, namespace=namespace)), None),
        timeout,
    )
    name = str(runner.metadata.name)
    _work_volume(kube, node, namespace, name)

    def running() -> bool:
        pod = client.get(Pod, name, namespace=namespace)
        return pod.status is not None and pod.status.phase == "Running"

    _poll(f"runner pod {name} Running", running, timeout)
    return name
