"""Helpers of the promotion e2e tests: one cache's objects in a fresh namespace of the local
cluster, the provider's property bag, job clones as the hook would make them, and reads of the
protocol's objects.

The objects mirror what the program makes: one Immediate StorageClass for the cache's node
(allowedTopologies on that node, ``poolname`` the session's real zfs-fuse pool) holding
generation 1, builder volume 1 and every clone. Reads of the pool itself (``datasets``,
``origin_of``) go through ``zfs`` on that pool.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, TypeVar

from lightkube import ApiError
from lightkube.resources.coordination_v1 import Lease
from pulumi.dynamic.dynamic import serialize_provider

from components import constants as c
from components.promotion.model import Pointer, format_time
from components.promotion.provider import CachePromotionProvider
from localcluster.harness import LocalCluster
from localcluster.kube import Kube, meta
from localcluster.storage import DEFAULT_NODE
from localcluster.zfs_pool import Dataset
from tests.e2e import node_env

T = TypeVar("T")
Obj = dict[str, Any]

NODE: Final = DEFAULT_NODE
SIZE: Final = "1Gi"
NODE_CLASS: Final = c.cache_storage_class("promo", NODE)
SNAPSHOT_CLASS: Final = "promo-snapshots"


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 30.0) -> T:
    """Poll ``probe`` every 0.1 s until it returns something truthy."""
    return node_env.wait_for(what, probe, timeout, interval=0.1)


def ensure_classes(kube: Kube, pool: str) -> None:
    """The node's ZFS StorageClass on ``pool`` and the VolumeSnapshotClass (shared, idempotent)."""
    kube.ensure(
        "StorageClass",
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": NODE_CLASS},
            "provisioner": c.OPENEBS_ZFS_CSI_DRIVER,
            "parameters": {"poolname": pool, "fstype": "zfs"},
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "Immediate",
            "allowedTopologies": [
                {"matchLabelExpressions": [{"key": c.OPENEBS_NODE_TOPOLOGY_KEY, "values": [NODE]}]}
            ],
        },
    )
    kube.ensure(
        "VolumeSnapshotClass",
        {
            "apiVersion": f"{c.SNAPSHOT_API_GROUP}/{c.SNAPSHOT_API_VERSION}",
            "kind": "VolumeSnapshotClass",
            "metadata": {"name": SNAPSHOT_CLASS},
            "driver": c.OPENEBS_ZFS_CSI_DRIVER,
            "deletionPolicy": "Delete",
        },
    )


def claim_body(
    namespace: str,
    name: str,
    *,
    source: Obj | None = None,
    labels: dict[str, str] | None = None,
    storage_class: str = NODE_CLASS,
    size: str = SIZE,
) -> Obj:
    """A PVC of ``size`` (default ``SIZE``) in the node's class."""
    spec: Obj = {
        "accessModes": ["ReadWriteOnce"],
        "storageClassName": storage_class,
        "resources": {"requests": {"storage": size}},
    }
    if source is not None:
        spec["dataSource"] = source
    metadata: Obj = {"name": name, "namespace": namespace, "labels": labels or {}}
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": metadata, "spec": spec}


def pool_names(cluster: LocalCluster) -> set[str]:
    """Every dataset and snapshot in the cluster's pool now (``zfs list -t all``)."""
    return {d.name for d in cluster.storage.pool.datasets()}


@dataclass
class CacheSetup:
    """One cache (its stack-owned generation 1 and builder volume 1) in its own namespace."""

    cluster: LocalCluster
    namespace: str
    cache: str
    kube: Kube
    settings: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(cls, cluster: LocalCluster, **settings: Any) -> CacheSetup:
        """Namespace, gen 1 (as BuildCache makes it) and work-1 (a clone of it), Bound."""
        kube = cluster.kube()
        ensure_classes(kube, cluster.storage.pool.name)
        namespace = f"promo-{uuid.uuid4().hex[:6]}"
        kube.create(
            "Namespace", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
        )
        setup = cls(cluster, namespace, "gcc12", kube, settings)
        root = c.generation_name(setup.cache, 1)
        kube.create(
            "PersistentVolumeClaim",
            claim_body(
                namespace,
                root,
                labels={
                    c.LABEL_CACHE: setup.cache,
                    c.LABEL_ROLE: c.ROLE_PARENT,
                    c.LABEL_GENERATION: "1",
                },
            ),
        )
        setup.bound(root)
        kube.create(
            "PersistentVolumeClaim",
            claim_body(
                namespace,
                c.builder_volume_name(setup.cache, 1),
                source={"apiGroup": "", "kind": "PersistentVolumeClaim", "name": root},
                labels={c.LABEL_CACHE: setup.cache, c.LABEL_ROLE: c.ROLE_BUILDER_VOLUME},
            ),
        )
        setup.bound(c.builder_volume_name(setup.cache, 1))
        return setup

    def props(self, **overrides: Any) -> dict[str, Any]:
        """The provider's property bag, as the engine passes it (None values left out)."""
        props: dict[str, Any] = {
            "namespace": self.namespace,
            "cache": self.cache,
            "root_claim": c.generation_name(self.cache, 1),
            "builder_volume": c.builder_volume_name(self.cache, 1),
            "size": SIZE,
            "node": NODE,
            "parent_storage_class": NODE_CLASS,
            "snapshot_class": SNAPSHOT_CLASS,
            "lease_seconds": 3,
            "grace_seconds": 3600,
            "retention_seconds": 3600,
            "ready_timeout_seconds": 30,
            "kubeconfig": str(self.cluster.kubeconfig),
        }
        props.update(self.settings)
        props.update(overrides)
        return {k: v for k, v in props.items() if v is not None}

    # --- reads ---------------------------------------------------------------------------

    def bound(self, name: str, timeout: float = 30.0) -> Obj:
        """Wait until PVC ``name`` is Bound; return it."""

        def probe() -> Obj | None:
            pvc = self.kube.get("PersistentVolumeClaim", name, self.namespace)
            return pvc if pvc and (pvc.get("status") or {}).get("phase") == "Bound" else None

        return wait_for(f"PVC {self.namespace}/{name} Bound", probe, timeout)

    def pointer(self) -> Pointer:
        """The pointer as stored on the cluster."""
        cm = self.kube.get("ConfigMap", c.promotion_pointer_name(self.cache), self.namespace)
        assert cm is not None, "no promotion pointer"
        return Pointer.from_data("pointer", cm.get("data"))

    def names(self, kind: str, role: str | None = None) -> set[str]:
        """Names of the cache's objects of ``kind`` (optionally one role)."""
        found = set()
        for obj in self.kube.list(kind, self.namespace):
            labels = meta(obj).get("labels") or {}
            if labels.get(c.LABEL_CACHE) != self.cache:
                continue
            if role is None or labels.get(c.LABEL_ROLE) == role:
                found.add(meta(obj)["name"])
        return found

    def generations(self) -> set[str]:
        """Names of the cache's parent claims."""
        return self.names("PersistentVolumeClaim", c.ROLE_PARENT)

    def snapshots(self) -> set[str]:
        """Names of the cache's source snapshots."""
        return self.names("VolumeSnapshot", c.ROLE_SOURCE_SNAPSHOT)

    def builders(self) -> set[str]:
        """Names of the cache's builder volumes."""
        return self.names("PersistentVolumeClaim", c.ROLE_BUILDER_VOLUME)

    def volume_of(self, claim: str) -> str:
        """The PV (= ZFSVolume = dataset) name of a Bound claim."""
        return str(self.bound(claim)["spec"]["volumeName"])

    def datasets(self) -> dict[str, Dataset]:
        """Every dataset and snapshot of the pool (``zfs list -t all``), by name."""
        return {d.name: d for d in self.cluster.storage.pool.datasets()}

    def dataset(self, volume: str) -> str:
        """The dataset name of PV ``volume``."""
        return f"{self.cluster.storage.pool.name}/{volume}"

    def snapshot_dataset(self, snapshot: str) -> str:
        """The ZFS snapshot behind VolumeSnapshot ``snapshot`` (its content's handle)."""
        snap = self.kube.get("VolumeSnapshot", snapshot, self.namespace) or {}
        content = (snap.get("status") or {}).get("boundVolumeSnapshotContentName")
        body = self.kube.get("VolumeSnapshotContent", content) if content else None
        handle = ((body or {}).get("status") or {}).get("snapshotHandle")
        assert handle, f"VolumeSnapshot {snapshot} has no snapshot handle yet"
        return self.dataset(str(handle))

    def accounted_datasets(self) -> set[str]:
        """What the namespace's objects account for in the pool: one dataset per claim's PV,
        the internal ``<srcPV>@<clonePV>`` snapshot of each PVC-to-PVC clone (upstream
        CreateClone) and the snapshot behind each ready VolumeSnapshot."""
        claims = self.kube.list("PersistentVolumeClaim", self.namespace)
        volume = {meta(pvc)["name"]: (pvc.get("spec") or {}).get("volumeName") for pvc in claims}
        names = {self.dataset(v) for v in volume.values() if v}
        for pvc in claims:
            source = (pvc.get("spec") or {}).get("dataSource") or {}
            clone, parent = volume[meta(pvc)["name"]], volume.get(source.get("name", ""))
            if source.get("kind") == "PersistentVolumeClaim" and clone and parent:
                names.add(f"{self.dataset(parent)}@{clone}")
        for snap in self.kube.list("VolumeSnapshot", self.namespace):
            if (snap.get("status") or {}).get("readyToUse"):
                names.add(self.snapshot_dataset(meta(snap)["name"]))
        return names

    def provisioner_duplicates(self, datasets: set[str]) -> set[str]:
        """Datasets of a volume the real csi-provisioner made a second time for a claim that
        was bound, used and deleted meanwhile, and their ``<srcPV>@<clonePV>`` snapshots.

        Under load its informer can still hold a claim unbound after it is bound: it then
        provisions the same volume name again after the test deleted the claim and its first
        volume, and its new PV is refused (the first PV, terminating, still holds the name)
        or has no claim, so nothing ever deletes that second ZFSVolume (seen in the driver's
        and provisioner's logs, 2026-12-01). Upstream behaviour, not the program's: such a
        ZFSVolume is live (not being deleted) and has no PersistentVolume of its name. A
        volume the program's deletes leave behind is being deleted, so it still counts."""
        volumes = {
            meta(v)["name"]
            for v in self.kube.list("ZFSVolume", c.OPENEBS_NAMESPACE)
            if meta(v).get("deletionTimestamp") is None
            and self.kube.get("PersistentVolume", meta(v)["name"]) is None
        }
        return {d for d in datasets if d.rpartition("/")[2].rpartition("@")[2] in volumes}

    def wait_pool_accounted(self, before: set[str], timeout: float = 30.0) -> None:
        """Wait until every dataset the pool gained since ``before`` (``zfs list -t all``) is
        accounted for by the namespace's objects and all of those exist: nothing orphaned,
        nothing missing. Deletions are asynchronous (the driver destroys datasets after the
        objects go), hence the wait."""
        last: list[tuple[set[str], set[str]]] = []

        def probe() -> bool:
            actual, wanted = set(self.datasets()), self.accounted_datasets()
            orphans = actual - before - wanted - self.provisioner_duplicates(actual)
            last[:] = [(orphans, wanted - actual)]
            return not any(last[0])

        try:
            wait_for("the pool to hold exactly what the objects account for", probe, timeout)
        except AssertionError as exc:
            orphans, missing = last[0]
            raise AssertionError(
                f"{exc}: orphans {sorted(orphans)}, missing {sorted(missing)}"
            ) from None

    def refused_destroys(self, volumes: set[str], since: int) -> list[str]:
        """Lines of the driver's log after byte ``since`` where ZFS refused to destroy one of
        ``volumes`` because clones depend on it: each is a delete the program should not have
        asked for. (zfs-fuse's transient "dataset is busy", retried by the driver, is not.)"""
        log = self.cluster.storage.state_dir / "logs" / "zfs-csi-driver.log"
        text = log.read_bytes()[since:].decode(errors="replace")
        return [
            line
            for line in text.splitlines()
            if "dependent clones" in line and any(v in line for v in volumes)
        ]

    def driver_log_size(self) -> int:
        """Current size of the driver's log (an offset for :meth:`refused_destroys`)."""
        return (self.cluster.storage.state_dir / "logs" / "zfs-csi-driver.log").stat().st_size

    def lease_holder(self) -> str | None:
        """Current holder of the cache's promotion Lease (None if free or absent)."""
        client = self.cluster.client()
        try:
            lease = client.get(Lease, c.promotion_lease_name(self.cache), namespace=self.namespace)
        except ApiError:
            return None
        finally:
            client.close()
        return lease.spec.holderIdentity if lease.spec else None

    # --- writes as the rest of the system would make them ---------------------------------

    def hook_config_map(self, parent: str) -> None:
        """The hook-template ConfigMap as the program renders it, naming ``parent``."""
        name = c.hook_template_name("sim-jobs")
        content = (
            "spec:\n  volumes:\n  - name: cache-gcc12\n    ephemeral:\n      volumeClaimTemplate:\n"
            f"        spec:\n          dataSource:\n            kind: PersistentVolumeClaim\n"
            f"            name: {parent}\n"
        )
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": self.namespace},
            "data": {c.HOOK_TEMPLATE_KEY: content},
        }
        if self.kube.get("ConfigMap", name, self.namespace) is None:
            self.kube.create("ConfigMap", body)
        else:
            self.kube.patch("ConfigMap", name, {"data": body["data"]}, self.namespace)

    def hook_parent(self) -> str:
        """The parent the hook ConfigMap names now."""
        cm = self.kube.get("ConfigMap", c.hook_template_name("sim-jobs"), self.namespace)
        assert cm is not None
        text = cm["data"][c.HOOK_TEMPLATE_KEY]
        return text.split("name: ")[-1].strip()

    def job_clone(self, name: str, parent: str) -> Obj:
        """A job's clone of ``parent`` (what the hook's ephemeral volume makes)."""
        return self.kube.create(
            "PersistentVolumeClaim",
            claim_body(
                self.namespace,
                name,
                source={"apiGroup": "", "kind": "PersistentVolumeClaim", "name": parent},
            ),
        )

    def pod_mounting(self, name: str, claim: str) -> None:
        """A pod (scheduled on the cache's node) whose volume is ``claim``."""
        wait_for(
            "default service account",
            lambda: self.kube.get("ServiceAccount", "default", self.namespace),
        )
        self.kube.create(
            "Pod",
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": name, "namespace": self.namespace},
                "spec": {
                    "containers": [
                        {
                            "name": "build",
                            "image": "registry.invalid/builder:1",
                            "volumeMounts": [{"name": "cache", "mountPath": "/cache"}],
                        }
                    ],
                    "volumes": [{"name": "cache", "persistentVolumeClaim": {"claimName": claim}}],
                },
            },
        )
        self.cluster.schedule_pod(self.namespace, name, NODE)

    def backdate(self, claim: str, annotation: str, seconds: float) -> None:
        """Move a superseded-at/retired-at stamp ``seconds`` into the past (the harness's
        stand-in for waiting out a grace period or retention)."""
        when = format_time(datetime.now(UTC) - timedelta(seconds=seconds))
        self.kube.patch(
            "PersistentVolumeClaim",
            claim,
            {"metadata": {"annotations": {annotation: when}}},
            self.namespace,
        )


# --- the provider in a fresh process (tests/e2e/promotion_driver.py) ---------------------------


@dataclass(frozen=True)
class DriverResult:
    """What one driver process did: exit code, its JSON answer, and its stderr."""

    returncode: int
    answer: dict[str, Any]
    stderr: str

    @property
    def killed(self) -> bool:
        """True if the process died by SIGKILL (a simulated crash)."""
        return self.returncode == -9


def serialized_provider() -> str:
    """The provider exactly as the Pulumi SDK serialises it into the resource's state."""
    return str(serialize_provider(CachePromotionProvider()))


def start_driver(
    workdir: Any, method: str, *, crash_after: str | None = None, **arguments: Any
) -> Any:
    """Start the driver for ``method`` with ``arguments``; return the Popen."""
    root = Path(__file__).resolve().parents[2]
    request = Path(workdir) / f"request-{uuid.uuid4().hex[:8]}.json"
    request.write_text(
        json.dumps({"provider": serialized_provider(), "method": method, **arguments})
    )
    argv = [sys.executable, "-m", "tests.e2e.promotion_driver", str(request)]
    if crash_after:
        argv += ["--crash-after", crash_after]
    return subprocess.Popen(
        argv,
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish_driver(proc: Any, timeout: float = 120.0) -> DriverResult:
    """Wait for a driver process and read its answer."""
    stdout, stderr = proc.communicate(timeout=timeout)
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    answer = json.loads(lines[-1]) if lines else {}
    return DriverResult(proc.returncode, answer, stderr)


def run_driver(
    workdir: Any, method: str, *, crash_after: str | None = None, **arguments: Any
) -> DriverResult:
    """Run the driver for ``method`` to completion."""
    return finish_driver(start_driver(workdir, method, crash_after=crash_after, **arguments))
