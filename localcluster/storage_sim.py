"""Storage simulator: a TEST DOUBLE for OpenEBS ZFS LocalPV and the CSI snapshot machinery.

It plays, against a real API server, the parts of a cluster that have no process in the
local control plane:

* the CSI external-provisioner + OpenEBS ZFS controller: PVCs of StorageClasses whose
  provisioner is ``zfs.csi.openebs.io`` get a PV (``pvc-<uid>``, CSI volume handle the
  same, nodeAffinity to the owning node, claimRef) and a ZFSVolume in ``openebs``
  (capacity, ownerNodeID, poolName, volumeType, fsType, ``status.state: Ready``), and are
  bound. ``Immediate`` classes provision at once; ``WaitForFirstConsumer`` classes once
  the claim has a selected node (annotation ``volume.kubernetes.io/selected-node``) or a
  pod using it is scheduled. ``dataSource`` of kind PersistentVolumeClaim (clone) or
  VolumeSnapshot (restore) is honoured with the driver's rules: same node and pool as
  the source, same StorageClass as a source PVC, and EXACTLY the source's capacity,
  otherwise the claim stays Pending with a ``ProvisioningFailed`` event carrying the
  driver's message. A clone's ZFSVolume has ``spec.snapname: <srcPV>@<clonePV>`` and the
  label ``openebs.io/source-volume=<srcPV>``;
* the snapshot controller + csi-snapshotter: a VolumeSnapshot gets a
  VolumeSnapshotContent and a ZFSSnapshot, then ``readyToUse``, ``restoreSize`` and
  ``boundVolumeSnapshotContentName`` (after a configurable delay);
* the OpenEBS node agent: a ZFSVolume or ZFSSnapshot with dependents (snapshots, clones)
  cannot be destroyed: deleting it leaves it terminating (deletionTimestamp set, the
  ``zfs.openebs.io/finalizer`` kept) until the dependents are gone; a PV whose claim was
  deleted (reclaim policy Delete) is kept until its ZFSVolume is gone;
* a kubelet's last step of pod deletion (pods with a node are removed once deleted);
* with ``core_controllers`` (when kube-controller-manager does not run): the ephemeral
  volume controller (PVC ``<pod>-<volume>`` owned by the pod), garbage collection of
  pod-owned PVCs, default service accounts, static PV/PVC binding and namespace
  finalization (see :mod:`localcluster.core_controllers`).

Every dataset relation lives in the ZFSVolume/ZFSSnapshot objects themselves, and every
pass is a level-triggered reconcile of everything, so a restarted simulator picks up
where the last one stopped. Watches (not polling) trigger the passes.

Run it in a thread (``StorageSimulator(kubeconfig).start()`` / ``.stop()``) or as a
process: ``python -m localcluster.storage_sim --kubeconfig FILE``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import hashlib
import logging
import signal
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from lightkube import AsyncClient, KubeConfig
from lightkube.types import on_error_retry

from components.constants import (
    OPENEBS_NAMESPACE,
    OPENEBS_SOURCE_VOLUME_LABEL,
    OPENEBS_ZFS_CSI_DRIVER,
)
from localcluster.core_controllers import CoreControllers
from localcluster.kube import KINDS, ApiError, Kube, is_conflict, make_client, meta
from localcluster.zfs_model import (
    CAS_TYPE,
    CAS_TYPE_KEY,
    PERSISTENT_VOLUME_LABEL,
    POOL_NAME_KEY,
    SNAPSHOT_CONTENT_FINALIZER,
    SNAPSHOT_FINALIZER,
    TOPOLOGY_KEY,
    ZFS_FINALIZER,
    DatasetGraph,
    QuantityError,
    ZfsDataset,
    clone_size_error,
    format_quantity,
    parse_quantity,
    pv_name,
    rounded_capacity,
    snapshot_content_name,
    snapshot_handle,
    zfs_snapshot_name,
)

__all__ = [
    "DEFAULT_NODE",
    "SELECTED_NODE_ANNOTATION",
    "SimulatorConfig",
    "StorageSimulator",
    "World",
    "consumer_node",
    "main",
    "schedule_pod",
]

log = logging.getLogger("localcluster.storage_sim")

#: Node a volume lands on when nothing says otherwise (cf. SimulatorConfig.default_node).
DEFAULT_NODE: Final = "local-node-1"
#: Annotation by which kube-scheduler tells a WaitForFirstConsumer provisioner the node.
SELECTED_NODE_ANNOTATION: Final = "volume.kubernetes.io/selected-node"
_STORAGE_PROVISIONER: Final = "volume.kubernetes.io/storage-provisioner"
_STORAGE_PROVISIONER_BETA: Final = "volume.beta.kubernetes.io/storage-provisioner"
_PROVISIONED_BY: Final = "pv.kubernetes.io/provisioned-by"
_BIND_COMPLETED: Final = "pv.kubernetes.io/bind-completed"
_BOUND_BY_CONTROLLER: Final = "pv.kubernetes.io/bound-by-controller"
_DEFAULT_SNAPSHOT_CLASS: Final = "snapshot.storage.kubernetes.io/is-default-class"
_SNAPSHOT_GROUP: Final = "snapshot.storage.k8s.io"
_EVENT_SOURCE: Final = f"{OPENEBS_ZFS_CSI_DRIVER}_storage-simulator"
_WATCHED: Final = (
    "PersistentVolumeClaim",
    "PersistentVolume",
    "Pod",
    "StorageClass",
    "VolumeSnapshot",
    "VolumeSnapshotContent",
    "VolumeSnapshotClass",
    "ZFSVolume",
    "ZFSSnapshot",
    "Namespace",
)

Obj = dict[str, Any]
Key = tuple[str, str]


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    """Knobs of the simulator.

    ``default_node`` is where a volume with no other hint lands (the real driver picks a
    node with the pool). Delays (seconds) let tests exercise waiting: a claim is
    provisioned ``provision_delay`` after it is first seen, a snapshot becomes ready
    ``snapshot_ready_delay`` after it is taken.
    """

    default_node: str = DEFAULT_NODE
    provision_delay: float = 0.0
    snapshot_ready_delay: float = 0.0
    core_controllers: bool = True
    kubelet: bool = True
    resync_interval: float = 30.0


@dataclass
class World:
    """Everything the simulator looks at, listed at the start of one pass."""

    storage_classes: dict[str, Obj] = field(default_factory=dict)
    claims: dict[Key, Obj] = field(default_factory=dict)
    volumes: dict[str, Obj] = field(default_factory=dict)
    pods: dict[Key, Obj] = field(default_factory=dict)
    snapshots: dict[Key, Obj] = field(default_factory=dict)
    contents: dict[str, Obj] = field(default_factory=dict)
    snapshot_classes: dict[str, Obj] = field(default_factory=dict)
    zfs_volumes: dict[str, Obj] = field(default_factory=dict)
    zfs_snapshots: dict[str, Obj] = field(default_factory=dict)
    namespaces: dict[str, Obj] = field(default_factory=dict)
    #: Namespaces that have a ``default`` service account (listed on first use).
    service_accounts: set[str] | None = None

    @classmethod
    def load(cls, kube: Kube) -> World:
        """List every watched kind."""

        def by_key(kind: str) -> dict[Key, Obj]:
            return {(meta(o)["namespace"], meta(o)["name"]): o for o in kube.list(kind)}

        def by_name(kind: str, namespace: str | None = None) -> dict[str, Obj]:
            return {meta(o)["name"]: o for o in kube.list(kind, namespace)}

        return cls(
            storage_classes=by_name("StorageClass"),
            claims=by_key("PersistentVolumeClaim"),
            volumes=by_name("PersistentVolume"),
            pods=by_key("Pod"),
            snapshots=by_key("VolumeSnapshot"),
            contents=by_name("VolumeSnapshotContent"),
            snapshot_classes=by_name("VolumeSnapshotClass"),
            zfs_volumes=by_name("ZFSVolume", OPENEBS_NAMESPACE),
            zfs_snapshots=by_name("ZFSSnapshot", OPENEBS_NAMESPACE),
            namespaces=by_name("Namespace"),
        )

    def graph(self) -> DatasetGraph:
        """Dataset lineage as recorded in the ZFSVolume/ZFSSnapshot objects."""
        objects: Iterable[Obj] = [*self.zfs_volumes.values(), *self.zfs_snapshots.values()]
        return DatasetGraph(ZfsDataset.from_object(o) for o in objects)


def _deleting(obj: Mapping[str, Any]) -> bool:
    return meta(obj).get("deletionTimestamp") is not None


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _param(storage_class: Mapping[str, Any], name: str) -> str | None:
    # The driver reads StorageClass parameters case-insensitively.
    for key, value in (storage_class.get("parameters") or {}).items():
        if key.lower() == name:
            return str(value)
    return None


def _pod_claims(pod: Mapping[str, Any]) -> list[str]:
    """Names of the PVCs a pod uses (direct claims and generic ephemeral volumes)."""
    name = meta(pod)["name"]
    claims = []
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        if volume.get("persistentVolumeClaim"):
            claims.append(volume["persistentVolumeClaim"]["claimName"])
        elif volume.get("ephemeral"):
            claims.append(f"{name}-{volume['name']}")
    return claims


def consumer_node(world: World, namespace: str, claim: str) -> str | None:
    """Node of a scheduled, non-terminated pod that uses ``claim``, if any."""
    for (ns, _), pod in sorted(world.pods.items()):
        if ns != namespace or _deleting(pod):
            continue
        node = (pod.get("spec") or {}).get("nodeName")
        phase = (pod.get("status") or {}).get("phase")
        if node and phase not in ("Succeeded", "Failed") and claim in _pod_claims(pod):
            return str(node)
    return None


def schedule_pod(kube: Kube, namespace: str, name: str, node: str) -> None:
    """Schedule a pod onto ``node`` as kube-scheduler would (there is no scheduler here)."""
    kube.bind_pod(name, namespace, node)


@dataclass(frozen=True, slots=True)
class _Plan:
    node: str
    spec: Obj
    labels: dict[str, str]


class _RefusedError(Exception):
    """Provisioning refused; the message is what the real components would report."""


class StorageSimulator:
    """The storage test double; see the module docstring for what it simulates."""

    def __init__(self, kubeconfig: Path, config: SimulatorConfig | None = None) -> None:
        self.kubeconfig = kubeconfig
        self.config = config or SimulatorConfig()
        self._client = make_client(kubeconfig)
        self.kube = Kube(self._client)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self._watcher: threading.Thread | None = None
        self._watch_loop: asyncio.AbstractEventLoop | None = None
        self._watch_stop: asyncio.Event | None = None
        self._first_seen: dict[str, float] = {}
        self._next_deadline: float | None = None
        self._reported: set[str] = set()
        self.passes = 0
        self.errors = 0
        self._core = (
            CoreControllers(self.kube, kubeconfig) if self.config.core_controllers else None
        )

    # --- lifecycle -----------------------------------------------------------------------

    def __enter__(self) -> StorageSimulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> StorageSimulator:
        """Reconcile everything once, then keep reconciling on watch events in the background."""
        try:
            self.reconcile_once()
        except ApiError as exc:
            # e.g. 429 while the API server's caches fill: the worker tries again.
            log.warning("first pass failed (%s); retrying in the background", exc)
            self._schedule(0.5)
        self._stop.clear()
        if self._core is not None:
            self._core.start()
        self._watcher = threading.Thread(
            target=self._run_watches, name="storage-sim-watch", daemon=True
        )
        self._worker = threading.Thread(target=self._run, name="storage-sim", daemon=True)
        self._watcher.start()
        self._worker.start()
        return self

    def stop(self) -> None:
        """Stop the watches and the worker and close the clients."""
        self._stop.set()
        self._wake.set()
        if self._watch_loop is not None and self._watch_stop is not None:
            with contextlib.suppress(RuntimeError):
                self._watch_loop.call_soon_threadsafe(self._watch_stop.set)
        for thread in (self._worker, self._watcher):
            if thread is not None:
                thread.join(timeout=15)
        self._worker = self._watcher = None
        self._client.close()
        if self._core is not None:
            self._core.close()

    def wake(self) -> None:
        """Ask for a pass now (tests use it after changing something the watches miss)."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            timeout = self.config.resync_interval
            if self._next_deadline is not None:
                timeout = max(0.0, min(timeout, self._next_deadline - time.monotonic()))
            self._wake.wait(timeout)
            if self._stop.is_set():
                return
            # Let a burst of events settle into one pass.
            time.sleep(0.02)
            self._wake.clear()
            try:
                self.reconcile_once()
            except Exception:
                self.errors += 1
                log.exception("reconcile pass failed; retrying")
                self._schedule(1.0)

    def _run_watches(self) -> None:
        loop = asyncio.new_event_loop()
        self._watch_loop = loop
        try:
            loop.run_until_complete(self._watch_all())
        finally:
            loop.close()

    async def _watch_all(self) -> None:
        self._watch_stop = asyncio.Event()
        config = KubeConfig.from_file(str(self.kubeconfig)).get()
        client = AsyncClient(config=config, trust_env=False)
        kinds = [k for k in _WATCHED if k != "Namespace" or self._core is not None]
        tasks = [asyncio.create_task(self._watch(client, kind)) for kind in kinds]
        try:
            await self._watch_stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await client.close()

    async def _watch(self, client: AsyncClient, kind: str) -> None:
        k = KINDS[kind]
        kwargs: dict[str, Any] = {"on_error": on_error_retry, "server_timeout": 300}
        if k.namespaced:
            kwargs["namespace"] = "*"
        while True:
            try:
                async for _event in client.watch(k.resource, **kwargs):
                    self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the API server restarting, a network blip
                log.debug("watch %s failed: %s; restarting", kind, exc)
                self._wake.set()
                await asyncio.sleep(1.0)

    def _schedule(self, delay: float) -> None:
        deadline = time.monotonic() + delay
        if self._next_deadline is None or deadline < self._next_deadline:
            self._next_deadline = deadline

    def _elapsed(self, key: str, delay: float) -> bool:
        """True once ``delay`` seconds have passed since ``key`` was first seen."""
        if delay <= 0:
            return True
        first = self._first_seen.setdefault(key, time.monotonic())
        remaining = first + delay - time.monotonic()
        if remaining > 0:
            self._schedule(remaining)
            return False
        return True

    # --- one pass ------------------------------------------------------------------------

    def reconcile_once(self) -> None:
        """One level-triggered pass over everything (safe to call at any time, idempotent)."""
        self._next_deadline = None
        world = World.load(self.kube)
        self.passes += 1
        steps = [
            self._kubelet,
            self._core_pass,
            self._zfs_volumes,
            self._zfs_snapshots,
            self._snapshot_contents,
            self._snapshots,
            self._provision,
            self._release,
        ]
        for step in steps:
            try:
                step(world)
            except ApiError as exc:
                # Someone changed an object under us: the watch brings us back.
                if not is_conflict(exc):
                    raise
                log.debug("conflict in %s: %s", step.__name__, exc)

    def _core_pass(self, world: World) -> None:
        if self._core is not None:
            self._core.reconcile(world)

    def _kubelet(self, world: World) -> None:
        if not self.config.kubelet:
            return
        for (ns, name), pod in world.pods.items():
            if _deleting(pod) and (pod.get("spec") or {}).get("nodeName"):
                # The kubelet confirms deletion once containers are gone; there are none.
                self.kube.delete("Pod", name, ns, grace_period=0)

    # --- events --------------------------------------------------------------------------

    def _event(self, obj: Mapping[str, Any], kind: str, type_: str, reason: str, msg: str) -> None:
        m = meta(obj)
        digest = hashlib.sha256(f"{m.get('uid')}|{reason}|{msg}".encode()).hexdigest()[:10]
        name = f"{m['name']}.sim-{digest}"
        if name in self._reported:
            return
        stamp = _now()
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": m.get("namespace") or "default"},
            "involvedObject": {
                "apiVersion": obj.get("apiVersion", "v1"),
                "kind": kind,
                "name": m["name"],
                "namespace": m.get("namespace"),
                "uid": m.get("uid"),
                "resourceVersion": m.get("resourceVersion"),
            },
            "type": type_,
            "reason": reason,
            "message": msg,
            "source": {"component": _EVENT_SOURCE},
            "reportingComponent": _EVENT_SOURCE,
            "reportingInstance": "storage-simulator",
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        self.kube.ensure("Event", event)
        self._reported.add(name)
        log.info("%s %s/%s: %s: %s", type_, m.get("namespace"), m["name"], reason, msg)

    # --- OpenEBS node agent --------------------------------------------------------------

    def _zfs_volumes(self, world: World) -> None:
        graph = world.graph()
        for name, zv in world.zfs_volumes.items():
            m = meta(zv)
            finalizers = m.get("finalizers") or []
            if _deleting(zv):
                if ZFS_FINALIZER not in finalizers:
                    continue
                blockers = graph.volume_dependents(name)
                if blockers:
                    log.debug("ZFSVolume %s cannot be destroyed: %s", name, blockers)
                    continue
                self.kube.remove_finalizer("ZFSVolume", zv, ZFS_FINALIZER)
                continue
            if (zv.get("status") or {}).get("state") != "Ready":
                # What the node agent does for a new (Pending) volume: create the dataset.
                patch: Obj = {"status": {"state": "Ready"}}
                if ZFS_FINALIZER not in finalizers:
                    patch["metadata"] = {"finalizers": [*finalizers, ZFS_FINALIZER]}
                self.kube.patch("ZFSVolume", name, patch, OPENEBS_NAMESPACE)

    def _zfs_snapshots(self, world: World) -> None:
        graph = world.graph()
        for name, snap in world.zfs_snapshots.items():
            m = meta(snap)
            if _deleting(snap):
                if ZFS_FINALIZER in (m.get("finalizers") or []) and not graph.snapshot_dependents(
                    name
                ):
                    self.kube.remove_finalizer("ZFSSnapshot", snap, ZFS_FINALIZER)
                continue
            state = (snap.get("status") or {}).get("state")
            if state != "Ready" and self._elapsed(
                f"snapshot/{name}", self.config.snapshot_ready_delay
            ):
                self.kube.patch(
                    "ZFSSnapshot", name, {"status": {"state": "Ready"}}, OPENEBS_NAMESPACE
                )

    # --- snapshot controller + csi-snapshotter -------------------------------------------

    def _snapshot_contents(self, world: World) -> None:
        for name, content in world.contents.items():
            spec = content.get("spec") or {}
            if spec.get("driver") != OPENEBS_ZFS_CSI_DRIVER:
                continue
            if _deleting(content):
                if SNAPSHOT_CONTENT_FINALIZER not in (meta(content).get("finalizers") or []):
                    continue
                if spec.get("deletionPolicy") == "Delete":
                    handle = (content.get("status") or {}).get("snapshotHandle") or (
                        spec.get("source") or {}
                    ).get("snapshotHandle", "")
                    snap_name = handle.partition("@")[2]
                    snap = world.zfs_snapshots.get(snap_name)
                    if snap is not None:
                        if not _deleting(snap):
                            self.kube.delete("ZFSSnapshot", snap_name, OPENEBS_NAMESPACE)
                        continue  # wait until the ZFS snapshot is really gone
                self.kube.remove_finalizer(
                    "VolumeSnapshotContent", content, SNAPSHOT_CONTENT_FINALIZER
                )
                continue
            ref = spec.get("volumeSnapshotRef") or {}
            snapshot = world.snapshots.get((ref.get("namespace", ""), ref.get("name", "")))
            gone = snapshot is None or (
                ref.get("uid") is not None and meta(snapshot).get("uid") != ref.get("uid")
            )
            if gone and spec.get("deletionPolicy") == "Delete":
                self.kube.delete("VolumeSnapshotContent", name)

    def _snapshot_class(self, world: World, snapshot: Obj) -> Obj | None:
        wanted = (snapshot.get("spec") or {}).get("volumeSnapshotClassName")
        if wanted:
            return world.snapshot_classes.get(wanted)
        defaults = [
            c
            for c in world.snapshot_classes.values()
            if c.get("driver") == OPENEBS_ZFS_CSI_DRIVER
            and (meta(c).get("annotations") or {}).get(_DEFAULT_SNAPSHOT_CLASS) == "true"
        ]
        return defaults[0] if len(defaults) == 1 else None

    def _snapshot_error(self, snapshot: Obj, message: str) -> None:
        m = meta(snapshot)
        current = ((snapshot.get("status") or {}).get("error") or {}).get("message")
        if current != message:
            self.kube.patch(
                "VolumeSnapshot",
                m["name"],
                {"status": {"readyToUse": False, "error": {"message": message, "time": _now()}}},
                m["namespace"],
                status=True,
            )

    def _snapshots(self, world: World) -> None:
        for (ns, name), snapshot in world.snapshots.items():
            m = meta(snapshot)
            uid = m["uid"]
            spec = snapshot.get("spec") or {}
            status = snapshot.get("status") or {}
            finalizers = m.get("finalizers") or []
            if _deleting(snapshot):
                if SNAPSHOT_FINALIZER in finalizers:
                    bound = status.get("boundVolumeSnapshotContentName") or snapshot_content_name(
                        uid
                    )
                    content = world.contents.get(bound)
                    if (
                        content is not None
                        and not _deleting(content)
                        and (content.get("spec") or {}).get("deletionPolicy") == "Delete"
                    ):
                        self.kube.delete("VolumeSnapshotContent", bound)
                    self.kube.remove_finalizer("VolumeSnapshot", snapshot, SNAPSHOT_FINALIZER)
                continue
            source = spec.get("source") or {}
            if source.get("volumeSnapshotContentName"):
                self._bind_existing_content(world, snapshot, source["volumeSnapshotContentName"])
                continue
            claim = world.claims.get((ns, source.get("persistentVolumeClaimName", "")))
            volume = world.volumes.get(((claim or {}).get("spec") or {}).get("volumeName") or "")
            csi = ((volume or {}).get("spec") or {}).get("csi") or {}
            snapshot_class = self._snapshot_class(world, snapshot)
            if (
                snapshot_class is not None
                and snapshot_class.get("driver") != OPENEBS_ZFS_CSI_DRIVER
            ):
                continue  # another driver's snapshot
            if csi and csi.get("driver") != OPENEBS_ZFS_CSI_DRIVER:
                continue
            if snapshot_class is None:
                wanted = spec.get("volumeSnapshotClassName")
                self._snapshot_error(
                    snapshot,
                    "Failed to get snapshot class with error volumesnapshotclass"
                    f'.snapshot.storage.k8s.io "{wanted}" not found'
                    if wanted
                    else "Failed to set default snapshot class with error cannot find default "
                    "snapshot class",
                )
                continue
            if (
                claim is None
                or volume is None
                or (claim.get("status") or {}).get("phase") != "Bound"
            ):
                pvc_name = source.get("persistentVolumeClaimName")
                self._snapshot_error(
                    snapshot,
                    f"Failed to create snapshot: failed to get input parameters to create snapshot "
                    f'{name}: "the PVC {pvc_name} is not yet bound to a PV, will not attempt to '
                    f'take a snapshot"',
                )
                continue
            zfs_volume = world.zfs_volumes.get(csi.get("volumeHandle", ""))
            if zfs_volume is None:
                self._snapshot_error(
                    snapshot,
                    f"Failed to create snapshot: rpc error: code = NotFound desc = CreateSnapshot "
                    f"not able to get volume {csi.get('volumeHandle')}",
                )
                continue
            if SNAPSHOT_FINALIZER not in finalizers:
                self.kube.patch(
                    "VolumeSnapshot",
                    name,
                    {"metadata": {"finalizers": [*finalizers, SNAPSHOT_FINALIZER]}},
                    ns,
                )
            self._take_snapshot(world, snapshot, snapshot_class, csi["volumeHandle"], zfs_volume)

    def _take_snapshot(
        self, world: World, snapshot: Obj, snapshot_class: Obj, volume: str, zfs_volume: Obj
    ) -> None:
        m = meta(snapshot)
        uid = m["uid"]
        snap_name = zfs_snapshot_name(uid)
        content_name = snapshot_content_name(uid)
        capacity = int((zfs_volume.get("spec") or {})["capacity"])
        zfs_snapshot = world.zfs_snapshots.get(snap_name)
        if zfs_snapshot is None:
            self._ensure_openebs_namespace(world)
            ready_now = self.config.snapshot_ready_delay <= 0
            zfs_snapshot = {
                "apiVersion": "zfs.openebs.io/v1",
                "kind": "ZFSSnapshot",
                "metadata": {
                    "name": snap_name,
                    "namespace": OPENEBS_NAMESPACE,
                    "labels": {PERSISTENT_VOLUME_LABEL: volume},
                    "finalizers": [ZFS_FINALIZER],
                },
                "spec": copy.deepcopy(zfs_volume["spec"]),
                "status": {"state": "Ready" if ready_now else "Pending"},
            }
            self.kube.ensure("ZFSSnapshot", zfs_snapshot)
            self._elapsed(f"snapshot/{snap_name}", self.config.snapshot_ready_delay)
        ready = (zfs_snapshot.get("status") or {}).get("state") == "Ready"
        handle = snapshot_handle(volume, snap_name)
        content = world.contents.get(content_name)
        if content is None:
            content = self.kube.create(
                "VolumeSnapshotContent",
                {
                    "apiVersion": f"{_SNAPSHOT_GROUP}/v1",
                    "kind": "VolumeSnapshotContent",
                    "metadata": {"name": content_name, "finalizers": [SNAPSHOT_CONTENT_FINALIZER]},
                    "spec": {
                        "deletionPolicy": snapshot_class.get("deletionPolicy", "Delete"),
                        "driver": OPENEBS_ZFS_CSI_DRIVER,
                        "source": {"volumeHandle": volume},
                        "sourceVolumeMode": "Filesystem",
                        "volumeSnapshotClassName": meta(snapshot_class)["name"],
                        "volumeSnapshotRef": {
                            "apiVersion": f"{_SNAPSHOT_GROUP}/v1",
                            "kind": "VolumeSnapshot",
                            "name": m["name"],
                            "namespace": m["namespace"],
                            "uid": uid,
                        },
                    },
                },
            )
        created_ns = int(
            datetime.fromisoformat(
                meta(zfs_snapshot).get("creationTimestamp", _now()).replace("Z", "+00:00")
            ).timestamp()
            * 1e9
        )
        content_status = {
            "snapshotHandle": handle,
            "readyToUse": ready,
            "restoreSize": capacity,
            "creationTime": created_ns,
        }
        current = content.get("status") or {}
        if any(current.get(k) != v for k, v in content_status.items() if k != "creationTime"):
            self.kube.patch(
                "VolumeSnapshotContent", content_name, {"status": content_status}, status=True
            )
        snapshot_status = {
            "boundVolumeSnapshotContentName": content_name,
            "readyToUse": ready,
            "restoreSize": format_quantity(capacity),
            "creationTime": meta(zfs_snapshot).get("creationTimestamp", _now()),
        }
        current = snapshot.get("status") or {}
        if any(current.get(k) != v for k, v in snapshot_status.items() if k != "creationTime") or (
            current.get("error") is not None
        ):
            self.kube.patch(
                "VolumeSnapshot",
                m["name"],
                {"status": {**snapshot_status, "error": None}},
                m["namespace"],
                status=True,
            )

    def _bind_existing_content(self, world: World, snapshot: Obj, content_name: str) -> None:
        content = world.contents.get(content_name)
        if content is None:
            return
        status = content.get("status") or {}
        wanted = {
            "boundVolumeSnapshotContentName": content_name,
            "readyToUse": bool(status.get("readyToUse", True)),
        }
        if status.get("restoreSize") is not None:
            wanted["restoreSize"] = format_quantity(int(status["restoreSize"]))
        current = snapshot.get("status") or {}
        if any(current.get(k) != v for k, v in wanted.items()):
            m = meta(snapshot)
            self.kube.patch(
                "VolumeSnapshot", m["name"], {"status": wanted}, m["namespace"], status=True
            )

    # --- external-provisioner + ZFS controller -------------------------------------------

    def _ours(self, world: World, claim: Obj) -> Obj | None:
        class_name = (claim.get("spec") or {}).get("storageClassName")
        storage_class = world.storage_classes.get(class_name or "")
        if storage_class is None or storage_class.get("provisioner") != OPENEBS_ZFS_CSI_DRIVER:
            return None
        return storage_class

    def _provision(self, world: World) -> None:
        for (ns, name), claim in sorted(world.claims.items()):
            spec = claim.get("spec") or {}
            if _deleting(claim) or spec.get("volumeName"):
                continue
            storage_class = self._ours(world, claim)
            if storage_class is None:
                continue
            annotations = meta(claim).get("annotations") or {}
            node = annotations.get(SELECTED_NODE_ANNOTATION)
            if storage_class.get("volumeBindingMode") == "WaitForFirstConsumer" and not node:
                node = consumer_node(world, ns, name)
                if node is None:
                    continue  # waiting for the first consumer
                # What kube-scheduler does before it binds the pod.
                self.kube.patch(
                    "PersistentVolumeClaim",
                    name,
                    {"metadata": {"annotations": {SELECTED_NODE_ANNOTATION: node}}},
                    ns,
                )
            if annotations.get(_STORAGE_PROVISIONER) != OPENEBS_ZFS_CSI_DRIVER:
                # What the PV controller does for a claim with an external provisioner.
                self.kube.patch(
                    "PersistentVolumeClaim",
                    name,
                    {
                        "metadata": {
                            "annotations": {
                                _STORAGE_PROVISIONER: OPENEBS_ZFS_CSI_DRIVER,
                                _STORAGE_PROVISIONER_BETA: OPENEBS_ZFS_CSI_DRIVER,
                            }
                        }
                    },
                    ns,
                )
            uid = meta(claim)["uid"]
            if not self._elapsed(f"claim/{uid}", self.config.provision_delay):
                continue
            volume_name = pv_name(uid)
            volume = world.volumes.get(volume_name)
            if volume is None:
                volume = self._create_volume(world, claim, storage_class, node)
            if volume is not None:
                self._bind(claim, volume)

    def _ensure_openebs_namespace(self, world: World) -> None:
        # A real OpenEBS install lives there; create it only when first needed, so that a
        # program that declares the namespace itself gets to create it first.
        if OPENEBS_NAMESPACE not in world.namespaces:
            self.kube.ensure(
                "Namespace",
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": OPENEBS_NAMESPACE}},
            )
            world.namespaces[OPENEBS_NAMESPACE] = {"metadata": {"name": OPENEBS_NAMESPACE}}

    def _create_volume(
        self, world: World, claim: Obj, storage_class: Obj, node: str | None
    ) -> Obj | None:
        m = meta(claim)
        class_name = meta(storage_class)["name"]
        volume_name = pv_name(m["uid"])
        self._event(
            claim,
            "PersistentVolumeClaim",
            "Normal",
            "Provisioning",
            f'External provisioner is provisioning volume for claim "{m["namespace"]}/{m["name"]}"',
        )
        try:
            plan = self._plan(world, claim, storage_class, node, volume_name)
        except _RefusedError as refused:
            self._event(
                claim,
                "PersistentVolumeClaim",
                "Warning",
                "ProvisioningFailed",
                f'failed to provision volume with StorageClass "{class_name}": {refused}',
            )
            return None
        if volume_name not in world.zfs_volumes:
            self._ensure_openebs_namespace(world)
            self.kube.ensure(
                "ZFSVolume",
                {
                    "apiVersion": "zfs.openebs.io/v1",
                    "kind": "ZFSVolume",
                    "metadata": {
                        "name": volume_name,
                        "namespace": OPENEBS_NAMESPACE,
                        "labels": plan.labels,
                        "finalizers": [ZFS_FINALIZER],
                    },
                    "spec": plan.spec,
                    "status": {"state": "Ready"},
                },
            )
        spec = claim.get("spec") or {}
        capacity = int(plan.spec["capacity"])
        fs_type = plan.spec.get("fsType", "ext4")
        volume: Obj = {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {
                "name": volume_name,
                "annotations": {_PROVISIONED_BY: OPENEBS_ZFS_CSI_DRIVER},
            },
            "spec": {
                "capacity": {"storage": format_quantity(capacity)},
                "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": storage_class.get("reclaimPolicy") or "Delete",
                "storageClassName": class_name,
                "volumeMode": spec.get("volumeMode") or "Filesystem",
                "mountOptions": storage_class.get("mountOptions") or None,
                "claimRef": {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "namespace": m["namespace"],
                    "name": m["name"],
                    "uid": m["uid"],
                    "resourceVersion": m.get("resourceVersion"),
                },
                "csi": {
                    "driver": OPENEBS_ZFS_CSI_DRIVER,
                    "volumeHandle": volume_name,
                    "fsType": fs_type,
                    "volumeAttributes": {
                        POOL_NAME_KEY: plan.spec["poolName"],
                        CAS_TYPE_KEY: CAS_TYPE,
                        "storage.kubernetes.io/csiProvisionerIdentity": _EVENT_SOURCE,
                    },
                },
                "nodeAffinity": {
                    "required": {
                        "nodeSelectorTerms": [
                            {
                                "matchExpressions": [
                                    {"key": TOPOLOGY_KEY, "operator": "In", "values": [plan.node]}
                                ]
                            }
                        ]
                    }
                },
            },
        }
        if volume["spec"]["mountOptions"] is None:
            del volume["spec"]["mountOptions"]
        try:
            created = self.kube.create("PersistentVolume", volume)
        except ApiError as exc:
            if not is_conflict(exc):
                raise
            return None
        self._event(
            claim,
            "PersistentVolumeClaim",
            "Normal",
            "ProvisioningSucceeded",
            f"Successfully provisioned volume {volume_name}",
        )
        return created

    def _plan(
        self, world: World, claim: Obj, storage_class: Obj, node: str | None, volume_name: str
    ) -> _Plan:
        spec = claim.get("spec") or {}
        try:
            requested = parse_quantity(
                ((spec.get("resources") or {}).get("requests") or {}).get("storage", "0")
            )
        except QuantityError as exc:
            raise _RefusedError(str(exc)) from exc
        pool = _param(storage_class, "poolname")
        if not pool:
            raise _RefusedError("rpc error: code = InvalidArgument desc = poolname not set")
        source = spec.get("dataSourceRef") or spec.get("dataSource")
        if source and source.get("kind") == "PersistentVolumeClaim" and not source.get("apiGroup"):
            return self._plan_clone(
                world,
                claim,
                storage_class,
                source["name"],
                requested=requested,
                pool=pool,
                volume_name=volume_name,
            )
        if (
            source
            and source.get("kind") == "VolumeSnapshot"
            and source.get("apiGroup") == _SNAPSHOT_GROUP
        ):
            return self._plan_restore(world, claim, source["name"], requested, pool)
        if source:
            raise _RefusedError(
                f"data source ({source.get('kind')}) is not handled by the provisioner, assuming "
                "an external populator will provision it"
            )
        fs_type = _param(storage_class, "fstype") or "ext4"
        volume_spec: Obj = {
            "capacity": str(rounded_capacity(requested)),
            "ownerNodeID": node or self._topology_node(storage_class) or self.config.default_node,
            "poolName": pool,
            "volumeType": "DATASET" if fs_type == "zfs" else "ZVOL",
            "fsType": fs_type,
        }
        for param, key in (
            ("compression", "compression"),
            ("dedup", "dedup"),
            ("recordsize", "recordsize"),
            ("volblocksize", "volblocksize"),
            ("thinprovision", "thinProvision"),
            ("shared", "shared"),
            ("quotatype", "quotaType"),
        ):
            value = _param(storage_class, param)
            if value:
                volume_spec[key] = value
        return _Plan(node=volume_spec["ownerNodeID"], spec=volume_spec, labels={})

    @staticmethod
    def _topology_node(storage_class: Obj) -> str | None:
        for term in storage_class.get("allowedTopologies") or []:
            for expression in term.get("matchLabelExpressions") or []:
                if expression.get("key") in (
                    TOPOLOGY_KEY,
                    "kubernetes.io/hostname",
                ) and expression.get("values"):
                    return str(expression["values"][0])
        return None

    def _plan_clone(
        self,
        world: World,
        claim: Obj,
        storage_class: Obj,
        source_name: str,
        *,
        requested: int,
        pool: str,
        volume_name: str,
    ) -> _Plan:
        ns = meta(claim)["namespace"]
        prefix = (
            "error getting handle for DataSource Type PersistentVolumeClaim by Name "
            f"{source_name}: "
        )
        source = world.claims.get((ns, source_name))
        if source is None:
            raise _RefusedError(
                prefix + f'error getting PVC {source_name} (namespace "{ns}") from api server: '
                f'persistentvolumeclaims "{source_name}" not found'
            )
        phase = (source.get("status") or {}).get("phase")
        if phase != "Bound":
            raise _RefusedError(
                prefix
                + f"the PVC DataSource {source_name} must have a status of Bound.  Got {phase}"
            )
        if _deleting(source):
            raise _RefusedError(
                prefix + f"the PVC DataSource {source_name} is currently being deleted"
            )
        source_class = (source.get("spec") or {}).get("storageClassName")
        claim_class = (claim.get("spec") or {}).get("storageClassName")
        if source_class != claim_class:
            raise _RefusedError(
                prefix + "the source PVC and destination PVCs must be in the same storage class "
                f"for cloning.  Source is in {source_class}, but new PVC is in {claim_class}"
            )
        source_request = parse_quantity(
            (((source.get("spec") or {}).get("resources") or {}).get("requests") or {}).get(
                "storage", "0"
            )
        )
        if requested < source_request:
            raise _RefusedError(
                prefix + "error, new PVC request must be greater than or equal in size to the "
                f"specified PVC data source, requested {requested} but source is {source_request}"
            )
        source_volume = world.volumes.get((source.get("spec") or {}).get("volumeName") or "")
        csi = ((source_volume or {}).get("spec") or {}).get("csi") or {}
        if csi.get("driver") != storage_class.get("provisioner"):
            raise _RefusedError(prefix + "claim in dataSource not bound or invalid")
        source_zv = world.zfs_volumes.get(csi.get("volumeHandle", ""))
        if source_zv is None:
            raise _RefusedError(
                f"rpc error: code = NotFound desc = zfsvolumes.zfs.openebs.io "
                f'"{csi.get("volumeHandle")}" not found'
            )
        source_spec = source_zv.get("spec") or {}
        if source_spec.get("poolName") != pool:
            raise _RefusedError(
                "rpc error: code = Internal desc = clone: different pool src pool "
                f"{source_spec.get('poolName')} dst pool {pool}"
            )
        refusal = clone_size_error("PersistentVolumeClaim", requested, int(source_spec["capacity"]))
        if refusal:
            raise _RefusedError(f"rpc error: code = Internal desc = {refusal}")
        source_name_zv = meta(source_zv)["name"]
        spec = copy.deepcopy(source_spec)
        spec["snapname"] = snapshot_handle(source_name_zv, volume_name)
        return _Plan(
            node=spec["ownerNodeID"],
            spec=spec,
            labels={OPENEBS_SOURCE_VOLUME_LABEL: source_name_zv},
        )

    def _plan_restore(
        self, world: World, claim: Obj, snapshot_name: str, requested: int, pool: str
    ) -> _Plan:
        ns = meta(claim)["namespace"]
        prefix = (
            f"error getting handle for DataSource Type VolumeSnapshot by Name {snapshot_name}: "
        )
        snapshot = world.snapshots.get((ns, snapshot_name))
        if snapshot is None:
            raise _RefusedError(
                prefix + f"error getting snapshot {snapshot_name} from api server: "
                f'volumesnapshots.snapshot.storage.k8s.io "{snapshot_name}" not found'
            )
        status = snapshot.get("status") or {}
        content = world.contents.get(status.get("boundVolumeSnapshotContentName") or "")
        if content is None:
            raise _RefusedError(prefix + f"snapshot {snapshot_name} not bound")
        if not status.get("readyToUse"):
            raise _RefusedError(prefix + f"snapshot {snapshot_name} is not Ready")
        if _deleting(snapshot):
            raise _RefusedError(prefix + f"snapshot {snapshot_name} is currently being deleted")
        restore_size = int((content.get("status") or {}).get("restoreSize") or 0)
        if requested < restore_size:
            raise _RefusedError(
                prefix + f"requested volume size {requested} is less than the size "
                f"{restore_size} for the source snapshot {snapshot_name}"
            )
        handle = (content.get("status") or {}).get("snapshotHandle", "")
        zfs_snapshot = world.zfs_snapshots.get(handle.partition("@")[2])
        if zfs_snapshot is None:
            raise _RefusedError(
                f"rpc error: code = NotFound desc = zfssnapshots.zfs.openebs.io "
                f'"{handle.partition("@")[2]}" not found'
            )
        snap_spec = zfs_snapshot.get("spec") or {}
        if snap_spec.get("poolName") != pool:
            raise _RefusedError(
                "rpc error: code = Internal desc = clone to a different pool src pool "
                f"{snap_spec.get('poolName')} dst pool {pool}"
            )
        refusal = clone_size_error("VolumeSnapshot", requested, int(snap_spec["capacity"]))
        if refusal:
            raise _RefusedError(f"rpc error: code = Internal desc = {refusal}")
        spec = copy.deepcopy(snap_spec)
        spec["snapname"] = handle.lower()
        return _Plan(node=spec["ownerNodeID"], spec=spec, labels={})

    def _bind(self, claim: Obj, volume: Obj) -> None:
        """Bind claim and volume as the PV controller does (both sides, then statuses)."""
        m = meta(claim)
        volume_name = meta(volume)["name"]
        volume_spec = volume.get("spec") or {}
        annotations = meta(claim).get("annotations") or {}
        if (claim.get("spec") or {}).get("volumeName") != volume_name or annotations.get(
            _BIND_COMPLETED
        ) != "yes":
            self.kube.patch(
                "PersistentVolumeClaim",
                m["name"],
                {
                    "metadata": {
                        "annotations": {_BIND_COMPLETED: "yes", _BOUND_BY_CONTROLLER: "yes"}
                    },
                    "spec": {"volumeName": volume_name},
                },
                m["namespace"],
            )
        if (volume.get("status") or {}).get("phase") != "Bound":
            self.kube.patch(
                "PersistentVolume", volume_name, {"status": {"phase": "Bound"}}, status=True
            )
        status = claim.get("status") or {}
        wanted = {
            "phase": "Bound",
            "accessModes": volume_spec.get("accessModes"),
            "capacity": volume_spec.get("capacity"),
        }
        if any(status.get(k) != v for k, v in wanted.items()):
            self.kube.patch(
                "PersistentVolumeClaim", m["name"], {"status": wanted}, m["namespace"], status=True
            )

    # --- release and delete --------------------------------------------------------------

    def _release(self, world: World) -> None:
        claims_by_uid = {meta(c)["uid"]: c for c in world.claims.values()}
        for name, volume in world.volumes.items():
            spec = volume.get("spec") or {}
            if (spec.get("csi") or {}).get("driver") != OPENEBS_ZFS_CSI_DRIVER or _deleting(volume):
                continue
            ref = spec.get("claimRef")
            if not ref or not ref.get("uid"):
                continue
            claim = claims_by_uid.get(ref["uid"])
            if claim is not None:
                continue
            # The claim is gone: the volume is Released.
            if (volume.get("status") or {}).get("phase") not in ("Released", "Failed"):
                self.kube.patch(
                    "PersistentVolume", name, {"status": {"phase": "Released"}}, status=True
                )
            provisioned = (meta(volume).get("annotations") or {}).get(_PROVISIONED_BY)
            if (
                spec.get("persistentVolumeReclaimPolicy") != "Delete"
                or provisioned != OPENEBS_ZFS_CSI_DRIVER
            ):
                continue
            handle = spec["csi"]["volumeHandle"]
            zfs_volume = world.zfs_volumes.get(handle)
            if zfs_volume is None:
                self.kube.delete("PersistentVolume", name)
            elif not _deleting(zfs_volume):
                # DeleteVolume: the ZFS controller deletes the ZFSVolume; the node agent
                # destroys the dataset, or cannot while it has dependents.
                self.kube.delete("ZFSVolume", handle, OPENEBS_NAMESPACE)


def main(argv: list[str] | None = None) -> int:
    """``python -m localcluster.storage_sim --kubeconfig FILE``: run until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(
        prog="python -m localcluster.storage_sim", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--default-node", default=DEFAULT_NODE)
    parser.add_argument("--provision-delay-ms", type=int, default=0)
    parser.add_argument("--snapshot-ready-delay-ms", type=int, default=0)
    parser.add_argument(
        "--no-core-controllers",
        action="store_true",
        help="kube-controller-manager runs: do not play its controllers",
    )
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    config = SimulatorConfig(
        default_node=args.default_node,
        provision_delay=args.provision_delay_ms / 1000,
        snapshot_ready_delay=args.snapshot_ready_delay_ms / 1000,
        core_controllers=not args.no_core_controllers,
    )
    stopped = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopped.set())
    simulator = StorageSimulator(args.kubeconfig, config)
    # The API server may still be coming up when `up` starts us.
    for attempt in range(60):
        try:
            simulator.start()
            break
        except Exception as exc:
            if attempt == 59 or stopped.is_set():
                raise
            log.warning("start failed (%s); retrying", exc)
            time.sleep(1)
    log.info("storage simulator running (%s)", args.kubeconfig)
    stopped.wait()
    simulator.stop()
    log.info("storage simulator stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
