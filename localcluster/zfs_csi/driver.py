"""The ZFS CSI driver double: Identity + Controller services and the node agent, on real ``zfs``.

(The Node service and the kubelet registration are in :mod:`localcluster.zfs_csi.node_service`.)

A TEST DOUBLE of OpenEBS ZFS LocalPV's ``zfs.csi.openebs.io`` (README.md beside this file says
which upstream files and release it follows). The split is upstream's: the controller
services only write ``ZFSVolume``/``ZFSSnapshot`` objects and wait for their ``status.state``;
the node agent (:class:`NodeAgent`, upstream's ``pkg/mgmt/volume`` and ``pkg/mgmt/snapshot``
controllers) turns them into datasets with real ``zfs`` commands and back. Both run in this
one process because the local cluster has one node.
"""

from __future__ import annotations

import logging
import re
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Final, NoReturn, TypeVar

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from components.constants import (
    OPENEBS_NODE_TOPOLOGY_KEY,
    OPENEBS_PERSISTENT_VOLUME_LABEL,
    OPENEBS_SOURCE_VOLUME_LABEL,
    OPENEBS_ZFS_CHART_VERSION,
    OPENEBS_ZFS_CSI_DRIVER,
    ZFS_API_VERSION,
)
from localcluster.kube import ApiError, Kube, is_conflict, is_not_found, meta
from localcluster.zfs_csi import NODE_LABEL, REQUESTED_COMPRESSION, ZFS_FINALIZER
from localcluster.zfs_csi.generated import csi_pb2, csi_pb2_grpc
from localcluster.zfs_pool import zfs

__all__ = [
    "ControllerService",
    "DriverConfig",
    "IdentityService",
    "NodeAgent",
    "ObjectApi",
    "abort",
    "rounded_capacity",
    "zfs_compression",
]

log = logging.getLogger("zfs_csi")

T = TypeVar("T")
Obj = dict[str, Any]

POOL_NAME_KEY: Final = "openebs.io/poolname"
CAS_TYPE_KEY: Final = "openebs.io/cas-type"
CAS_TYPE: Final = "localpv-zfs"
_MI: Final = 2**20
_GI: Final = 2**30
#: upstream checkVolCreation: the controller waits this long for the node agent.
_CREATE_WAIT: Final = 10.0
#: zfs-fuse 0.7 predates lz4 and zstd; these are its algorithms.
_ZFS_FUSE_COMPRESSION: Final = re.compile(r"^(on|off|lzjb|gzip|gzip-[1-9]|zle)$")


class DriverConfig:
    """Where the driver runs: its node, the namespace of its objects."""

    def __init__(self, node_id: str, namespace: str) -> None:
        self.node_id = node_id
        self.namespace = namespace


def rounded_capacity(size: int) -> int:
    """upstream getRoundedCapacity: whole GiB above 1 GiB, else whole MiB (minimum 1 MiB)."""
    if size > _GI:
        return -(-size // _GI) * _GI
    return max(-(-size // _MI), 1) * _MI


def zfs_compression(requested: str) -> str:
    """The ``compression`` zfs-fuse gets for a StorageClass's ``compression`` parameter.

    zfs-fuse has no lz4 (nor zstd): lz4, OpenEBS's usual choice, becomes ``on`` (zfs-fuse's
    default algorithm, lzjb), so the program's classes provision; the dataset records what
    was asked in :data:`REQUESTED_COMPRESSION`. Anything else zfs-fuse lacks is refused
    (ValueError naming what it has), rather than silently stored uncompressed.
    """
    value = requested.lower()
    if value == "lz4":
        return "on"
    if _ZFS_FUSE_COMPRESSION.match(value):
        return value
    raise ValueError(
        f"compression {requested!r} is not available in zfs-fuse (the local cluster's ZFS): "
        "it has on|off|lzjb|gzip|gzip-[1-9]|zle, and lz4 is mapped to on"
    )


def abort(context: grpc.ServicerContext, code: grpc.StatusCode, message: str) -> NoReturn:
    """End the call with ``code`` and ``message`` (logged: the sidecars retry quietly)."""
    log.info("%s: %s", code.name, message)
    context.abort(code, message)
    # abort() raises to end the call; grpc has no type stubs to tell mypy so.
    raise AssertionError("grpc.ServicerContext.abort returned")


def _params(parameters: Mapping[str, str]) -> dict[str, str]:
    # upstream GetCaseInsensitiveMap: ZFS parameter keys are lower case.
    return {k.lower(): v for k, v in parameters.items()}


class ObjectApi:
    """The driver's API calls, one at a time (lightkube clients are not shared across threads)."""

    def __init__(self, kube: Kube, namespace: str) -> None:
        self._kube = kube
        self._lock = threading.Lock()
        self.namespace = namespace

    def call(self, fn: Callable[[Kube], T]) -> T:
        with self._lock:
            return fn(self._kube)

    def get(self, kind: str, name: str) -> Obj | None:
        return self.call(lambda k: k.get(kind, name, self.namespace))

    def create(self, kind: str, body: Obj) -> Obj:
        return self.call(lambda k: k.create(kind, body))

    def update(self, kind: str, body: Obj) -> Obj:
        """Write the whole object as upstream's clients Update() it (resourceVersion kept)."""
        m = meta(body)
        patch: Obj = {
            "metadata": {
                "labels": m.get("labels") or {},
                "finalizers": m.get("finalizers") or [],
                "resourceVersion": m.get("resourceVersion"),
            },
            "spec": body.get("spec") or {},
            "status": body.get("status") or {},
        }
        return self.call(lambda k: k.patch(kind, m["name"], patch, self.namespace))

    def delete(self, kind: str, name: str) -> bool:
        return self.call(lambda k: k.delete(kind, name, self.namespace))

    def list(self, kind: str) -> list[Obj]:
        return self.call(lambda k: k.list(kind, self.namespace))


class IdentityService(csi_pb2_grpc.IdentityServicer):  # type: ignore[misc]
    """upstream pkg/driver/identity.go."""

    def GetPluginInfo(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return csi_pb2.GetPluginInfoResponse(
            name=OPENEBS_ZFS_CSI_DRIVER, vendor_version=OPENEBS_ZFS_CHART_VERSION
        )

    def GetPluginCapabilities(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        service = csi_pb2.PluginCapability.Service
        return csi_pb2.GetPluginCapabilitiesResponse(
            capabilities=[
                csi_pb2.PluginCapability(service=service(type=service.CONTROLLER_SERVICE)),
                csi_pb2.PluginCapability(
                    service=service(type=service.VOLUME_ACCESSIBILITY_CONSTRAINTS)
                ),
            ]
        )

    def Probe(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return csi_pb2.ProbeResponse()


class ControllerService(csi_pb2_grpc.ControllerServicer):  # type: ignore[misc]
    """upstream pkg/driver/controller.go: objects in, objects out; no zfs command here."""

    def __init__(self, api: ObjectApi, config: DriverConfig) -> None:
        self.api = api
        self.config = config

    # --- capabilities ---------------------------------------------------------------------

    def ControllerGetCapabilities(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        rpc = csi_pb2.ControllerServiceCapability.RPC
        # upstream also offers EXPAND_VOLUME and GET_CAPACITY; the program never expands a
        # volume (allowVolumeExpansion: false) nor tracks capacity, so this double does not.
        kinds = (rpc.CREATE_DELETE_VOLUME, rpc.CREATE_DELETE_SNAPSHOT, rpc.CLONE_VOLUME)
        return csi_pb2.ControllerGetCapabilitiesResponse(
            capabilities=[csi_pb2.ControllerServiceCapability(rpc=rpc(type=kind)) for kind in kinds]
        )

    def ValidateVolumeCapabilities(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        if self.api.get("ZFSVolume", request.volume_id.lower()) is None:
            return abort(context, grpc.StatusCode.NOT_FOUND, f"volume {request.volume_id}")
        return csi_pb2.ValidateVolumeCapabilitiesResponse(
            confirmed=csi_pb2.ValidateVolumeCapabilitiesResponse.Confirmed(
                volume_capabilities=request.volume_capabilities
            )
        )

    # --- volumes --------------------------------------------------------------------------

    def CreateVolume(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        if not request.name:
            return abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                "failed to handle create volume request: missing volume name",
            )
        if not request.volume_capabilities:
            return abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                "failed to handle create volume request: missing volume capabilities",
            )
        name = request.name.lower()
        params = _params(request.parameters)
        pool = params.get("poolname", "")
        size = rounded_capacity(request.capacity_range.required_bytes)
        source = request.volume_content_source
        if source.HasField("snapshot"):
            node = self._snap_clone(context, name, pool, size, source.snapshot.snapshot_id)
        elif source.HasField("volume"):
            node = self._vol_clone(context, name, pool, size, source.volume.volume_id)
        else:
            node = self._new_volume(context, request, name, params, size)
        log.info("created the volume %s/%s on node %s", pool, name, node)
        return csi_pb2.CreateVolumeResponse(
            volume=csi_pb2.Volume(
                volume_id=name,
                capacity_bytes=size,
                volume_context={POOL_NAME_KEY: pool, CAS_TYPE_KEY: CAS_TYPE},
                content_source=source if source.ListFields() else None,
                accessible_topology=[csi_pb2.Topology(segments={OPENEBS_NODE_TOPOLOGY_KEY: node})],
            )
        )

    def _wanted_node(self, request: Any) -> str | None:
        """upstream's scheduler, for one node: ours, if the topology allows it."""
        requirement = request.accessibility_requirements
        terms = list(requirement.preferred) + list(requirement.requisite)
        if not terms:
            return self.config.node_id
        for term in terms:
            if term.segments.get(OPENEBS_NODE_TOPOLOGY_KEY) == self.config.node_id:
                return self.config.node_id
        return None

    def _new_volume(
        self,
        context: grpc.ServicerContext,
        request: Any,
        name: str,
        params: dict[str, str],
        size: int,
    ) -> str:
        capacity = str(size)
        existing = self.api.get("ZFSVolume", name)
        if existing is not None and meta(existing).get("deletionTimestamp") is None:
            if existing["spec"].get("capacity") != capacity:
                return abort(
                    context, grpc.StatusCode.ALREADY_EXISTS, f"volume {name} already present"
                )
            if (existing.get("status") or {}).get("state") != "Ready":
                return abort(
                    context, grpc.StatusCode.ABORTED, f"volume {name} request already pending"
                )
            return str(existing["spec"]["ownerNodeID"])
        fstype = params.get("fstype", "")
        if fstype != "zfs":
            # upstream makes a zvol for every other fstype; zfs-fuse has no zvols.
            return abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                f"fstype {fstype or '(unset: ext4)'} needs a ZVOL, which zfs-fuse (the local "
                "cluster's ZFS) does not have: use fstype: zfs",
            )
        if params.get("compression"):
            try:
                zfs_compression(params["compression"])
            except ValueError as exc:
                return abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        node = self._wanted_node(request)
        if node is None:
            return abort(
                context,
                grpc.StatusCode.INTERNAL,
                "scheduler failed, node list is empty for creating the PV",
            )
        spec: Obj = {
            "ownerNodeID": node,
            "poolName": params.get("poolname", ""),
            "capacity": capacity,
            "recordsize": params.get("recordsize"),
            "volblocksize": params.get("volblocksize"),
            "compression": params.get("compression"),
            "dedup": params.get("dedup"),
            "encryption": params.get("encryption"),
            "keyformat": params.get("keyformat"),
            "keylocation": params.get("keylocation"),
            "thinProvision": params.get("thinprovision"),
            "volumeType": "DATASET",
            "quotaType": params.get("quotatype") or "quota",
            "fsType": fstype,
            "shared": params.get("shared"),
        }
        body = self._volume_body(name, {k: v for k, v in spec.items() if v}, labels={})
        self._provision(context, body, f"not able to provision the volume, nodes [{node}], err : ")
        return node

    def _vol_clone(
        self, context: grpc.ServicerContext, name: str, pool: str, size: int, source_id: str
    ) -> str:
        source = self.api.get("ZFSVolume", source_id.lower())
        if source is None:
            return abort(
                context,
                grpc.StatusCode.NOT_FOUND,
                f'zfsvolumes.zfs.openebs.io "{source_id}" not found',
            )
        spec = dict(source["spec"])
        if spec.get("poolName") != pool:
            return abort(
                context,
                grpc.StatusCode.INTERNAL,
                f"clone: different pool src pool {spec.get('poolName')} dst pool {pool}",
            )
        if spec.get("capacity") != str(size):
            return abort(context, grpc.StatusCode.INTERNAL, "clone: volume size is not matching")
        source_name = meta(source)["name"]
        # A PVC->PVC clone snapshots its source under the clone's own name.
        spec["snapname"] = f"{source_name}@{name}"
        body = self._volume_body(name, spec, labels={OPENEBS_SOURCE_VOLUME_LABEL: source_name})
        self._provision(context, body, "clone: not able to provision the volume err : ")
        return str(spec["ownerNodeID"])

    def _snap_clone(
        self, context: grpc.ServicerContext, name: str, pool: str, size: int, snapshot_id: str
    ) -> str:
        parts = snapshot_id.split("@")
        if len(parts) != 2:
            return abort(
                context,
                grpc.StatusCode.NOT_FOUND,
                f"snap name is not valid {snapshot_id}, {{invalid snapshot name}}",
            )
        snap = self.api.get("ZFSSnapshot", parts[1])
        if snap is None:
            return abort(
                context,
                grpc.StatusCode.NOT_FOUND,
                f'zfssnapshots.zfs.openebs.io "{parts[1]}" not found',
            )
        spec = dict(snap["spec"])
        if spec.get("poolName") != pool:
            return abort(
                context,
                grpc.StatusCode.INTERNAL,
                f"clone to a different pool src pool {spec.get('poolName')} dst pool {pool}",
            )
        if spec.get("capacity") != str(size):
            return abort(context, grpc.StatusCode.INTERNAL, "clone volume size is not matching")
        spec["snapname"] = snapshot_id.lower()
        body = self._volume_body(name, spec, labels={})
        self._provision(context, body, "not able to provision the clone volume err : ")
        return str(spec["ownerNodeID"])

    def _volume_body(self, name: str, spec: Obj, labels: dict[str, str]) -> Obj:
        return {
            "apiVersion": ZFS_API_VERSION,
            "kind": "ZFSVolume",
            "metadata": {"name": name, "namespace": self.config.namespace, "labels": labels},
            "spec": spec,
            "status": {"state": "Pending"},
        }

    def _provision(self, context: grpc.ServicerContext, body: Obj, prefix: str) -> None:
        """upstream ProvisionVolume + checkVolCreation: write the object, wait for the agent."""
        name = meta(body)["name"]
        existing = self.api.get("ZFSVolume", name)
        try:
            if existing is None:
                self.api.create("ZFSVolume", body)
            elif meta(existing).get("deletionTimestamp") is None:
                existing["spec"], existing["status"] = body["spec"], body["status"]
                self.api.update("ZFSVolume", existing)
            else:
                abort(context, grpc.StatusCode.ABORTED, f"volume {name} is being deleted")
        except ApiError as exc:
            abort(context, grpc.StatusCode.INTERNAL, prefix + str(exc))
        deadline = time.monotonic() + _CREATE_WAIT
        while time.monotonic() < deadline:
            current = self.api.get("ZFSVolume", name)
            state = ((current or {}).get("status") or {}).get("state")
            if state == "Ready":
                return
            if state == "Failed":
                # upstream deletes the object of a failed provisioning and reports the error.
                self.api.delete("ZFSVolume", name)
                abort(context, grpc.StatusCode.INTERNAL, prefix + "zfs: volume creation failed")
            time.sleep(0.1)
        abort(context, grpc.StatusCode.INTERNAL, prefix + "zfs: vol creation timeout reached")

    def DeleteVolume(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        if not request.volume_id:
            return abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                "failed to handle delete volume request: missing volume id",
            )
        name = request.volume_id.lower()
        volume = self.api.get("ZFSVolume", name)
        if volume is None or meta(volume).get("deletionTimestamp") is not None:
            return csi_pb2.DeleteVolumeResponse()
        if (volume.get("status") or {}).get("state") != "Ready":
            return abort(
                context, grpc.StatusCode.INTERNAL, "can not delete, volume creation is in progress"
            )
        # Deleting the object is all the controller does: the node agent destroys the
        # dataset when it can (NodeAgent._volume), so the object may stay terminating.
        self.api.delete("ZFSVolume", name)
        return csi_pb2.DeleteVolumeResponse()

    # --- snapshots ------------------------------------------------------------------------

    def CreateSnapshot(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        snap_name = request.name.lower()
        volume_id = request.source_volume_id.lower()
        if not snap_name or not volume_id:
            return abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                f"CreateSnapshot error invalid request {volume_id}: {snap_name}",
            )
        snap = self.api.get("ZFSSnapshot", snap_name)
        if snap is not None:
            owner = (meta(snap).get("labels") or {}).get(OPENEBS_PERSISTENT_VOLUME_LABEL)
            if owner != volume_id:
                return abort(
                    context,
                    grpc.StatusCode.ALREADY_EXISTS,
                    f"CreateSnapshot error snapshot {snap_name} already exist for different "
                    f"source vol {owner}: {volume_id}",
                )
        else:
            volume = self.api.get("ZFSVolume", volume_id)
            if volume is None:
                return abort(
                    context,
                    grpc.StatusCode.NOT_FOUND,
                    f"CreateSnapshot not able to get volume {volume_id}: {snap_name}",
                )
            body = {
                "apiVersion": ZFS_API_VERSION,
                "kind": "ZFSSnapshot",
                "metadata": {
                    "name": snap_name,
                    "namespace": self.config.namespace,
                    "labels": {OPENEBS_PERSISTENT_VOLUME_LABEL: meta(volume)["name"]},
                },
                "spec": dict(volume["spec"]),
                "status": {"state": "Pending"},
            }
            try:
                snap = self.api.create("ZFSSnapshot", body)
            except ApiError as exc:
                return abort(
                    context,
                    grpc.StatusCode.INTERNAL,
                    f"failed to handle CreateSnapshotRequest for {volume_id}: {snap_name}, "
                    f"{{{exc}}}",
                )
            if "wait" in _params(request.parameters):
                deadline = time.monotonic() + _CREATE_WAIT
                while (snap.get("status") or {}).get("state") != "Ready":
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.1)
                    snap = self.api.get("ZFSSnapshot", snap_name) or snap
        created = Timestamp()
        created.GetCurrentTime()
        return csi_pb2.CreateSnapshotResponse(
            snapshot=csi_pb2.Snapshot(
                size_bytes=int(snap["spec"].get("capacity") or 0),
                snapshot_id=f"{volume_id}@{snap_name}",
                source_volume_id=volume_id,
                creation_time=created,
                ready_to_use=(snap.get("status") or {}).get("state") == "Ready",
            )
        )

    def DeleteSnapshot(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        if not request.snapshot_id:
            return abort(
                context, grpc.StatusCode.INVALID_ARGUMENT, "DeleteSnapshot: empty snapshotID"
            )
        parts = request.snapshot_id.split("@")
        if len(parts) == 2:
            self.api.delete("ZFSSnapshot", parts[1])
        return csi_pb2.DeleteSnapshotResponse()


def _deleting(obj: Obj) -> bool:
    return meta(obj).get("deletionTimestamp") is not None


def _user_finalizers(obj: Obj) -> list[str]:
    return [
        f
        for f in meta(obj).get("finalizers") or []
        if f not in (ZFS_FINALIZER, "foregroundDeletion")
    ]


def _exists(dataset: str) -> bool:
    return zfs("list", "-H", "-o", "name", dataset, check=False).returncode == 0


def _zfs_error(exc: subprocess.CalledProcessError) -> str:
    return " ".join(str(exc.stderr or exc.stdout).split())


class NodeAgent:
    """upstream's node agent for this node: datasets and snapshots for the objects, and back.

    Level-triggered: each pass lists the objects and converges them, so a restarted driver
    picks up where the last one stopped; an object whose dataset ZFS refuses to destroy
    (dependent clones) stays terminating and is retried every pass.
    """

    def __init__(self, api: ObjectApi, config: DriverConfig, interval: float = 0.2) -> None:
        self.api = api
        self.config = config
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._reported: set[str] = set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="zfs-node-agent", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.reconcile()
            except Exception:
                log.exception("node agent pass failed; retrying")
            self._stop.wait(self.interval)

    def _once(self, key: str, message: str) -> None:
        # A blocked destroy is retried every pass; say why once, not five times a second.
        if key not in self._reported:
            self._reported.add(key)
            log.info("%s", message)

    def reconcile(self) -> None:
        """One pass over every ZFSVolume and ZFSSnapshot of this node."""
        snapshots = [
            s
            for s in self.api.list("ZFSSnapshot")
            if s["spec"].get("ownerNodeID") == self.config.node_id
        ]
        for volume in self.api.list("ZFSVolume"):
            if volume["spec"].get("ownerNodeID") == self.config.node_id:
                self._guard(self._volume, volume, snapshots)
        for snap in snapshots:
            self._guard(self._snapshot, snap)

    def _guard(self, step: Callable[..., None], obj: Obj, *args: Any) -> None:
        try:
            step(obj, *args)
        except ApiError as exc:
            if not (is_conflict(exc) or is_not_found(exc)):
                raise
            # Changed or gone under us: the next pass sees the new state.

    def _volume(self, volume: Obj, snapshots: list[Obj]) -> None:
        m = meta(volume)
        name = m["name"]
        spec = volume["spec"]
        dataset = f"{spec['poolName']}/{name}"
        state = (volume.get("status") or {}).get("state")
        if _deleting(volume):
            if ZFS_FINALIZER not in (m.get("finalizers") or []) or _user_finalizers(volume):
                return
            owned = sorted(
                meta(s)["name"]
                for s in snapshots
                if (meta(s).get("labels") or {}).get(OPENEBS_PERSISTENT_VOLUME_LABEL) == name
            )
            if owned:
                # Current releases keep a volume that still has ZFSSnapshot objects: it is
                # only marked for deletion until they are gone.
                self._once(f"v/{name}/snaps", f"volume {dataset} kept: snapshots {owned}")
                return
            if _exists(dataset) and not self._zfs_or_report(
                f"v/{name}/busy", f"destroy volume {dataset}", "destroy", "-r", dataset
            ):
                return
            source = (m.get("labels") or {}).get(OPENEBS_SOURCE_VOLUME_LABEL)
            if source:
                # A PVC->PVC clone's own snapshot of its source goes with it.
                origin = f"{spec['poolName']}/{source}@{name}"
                if _exists(origin):
                    result = zfs("destroy", origin, check=False)
                    if result.returncode != 0:
                        log.error(
                            "zfs: could not destroy snapshot %s: %s", origin, result.stderr.strip()
                        )
            log.info("destroyed volume %s", dataset)
            self._finish(volume, "ZFSVolume")
            return
        if state == "Ready":
            return
        try:
            self._create_dataset(name, spec, m.get("labels") or {})
        except (subprocess.CalledProcessError, ValueError) as exc:
            detail = _zfs_error(exc) if isinstance(exc, subprocess.CalledProcessError) else str(exc)
            log.error("zfs: could not create volume %s: %s", dataset, detail)
            volume["status"] = {"state": "Failed"}
            self.api.update("ZFSVolume", volume)
            return
        self._mark_ready(volume, "ZFSVolume")

    def _create_dataset(self, name: str, spec: Obj, labels: Mapping[str, str]) -> None:
        """upstream CreateVolume/CreateClone (zfs_util.go), on the pool's own mountpoints."""
        pool = spec["poolName"]
        dataset = f"{pool}/{name}"
        options: list[str] = []
        if spec.get("capacity"):
            options += ["-o", f"{spec.get('quotaType') or 'quota'}={spec['capacity']}"]
        if spec.get("recordsize"):
            options += ["-o", f"recordsize={spec['recordsize']}"]
        if spec.get("thinProvision") == "no":
            reservation = "refreservation" if spec.get("quotaType") == "refquota" else "reservation"
            options += ["-o", f"{reservation}={spec['capacity']}"]
        if spec.get("dedup"):
            options += ["-o", f"dedup={spec['dedup']}"]
        if spec.get("compression"):
            options += ["-o", f"compression={zfs_compression(spec['compression'])}"]
            options += ["-o", f"{REQUESTED_COMPRESSION}={spec['compression']}"]
        # upstream sets mountpoint=legacy and mounts at NodePublish with mount -t zfs;
        # zfs-fuse has no legacy mount helper, so datasets inherit the pool's mountpoint
        # (<state-dir>/zfs/mnt/<pool>/<volume>), which NodePublish bind-mounts.
        snapname = spec.get("snapname")
        if not snapname:
            if not _exists(dataset):
                zfs("create", *options, dataset)
            return
        source = labels.get(OPENEBS_SOURCE_VOLUME_LABEL)
        if source:
            origin = f"{pool}/{source}@{name}"
            if not _exists(origin):
                zfs("snapshot", origin)
        if not _exists(dataset):
            zfs("clone", *options, f"{pool}/{snapname}", dataset)

    def _snapshot(self, snap: Obj) -> None:
        m = meta(snap)
        name = m["name"]
        volume = (m.get("labels") or {}).get(OPENEBS_PERSISTENT_VOLUME_LABEL, "")
        dataset = f"{snap['spec']['poolName']}/{volume}@{name}"
        if _deleting(snap):
            if ZFS_FINALIZER not in (m.get("finalizers") or []) or _user_finalizers(snap):
                return
            if _exists(dataset) and not self._zfs_or_report(
                f"s/{name}/busy", f"destroy snapshot {dataset}", "destroy", dataset
            ):
                return
            log.info("deleted snapshot %s", dataset)
            self._finish(snap, "ZFSSnapshot")
            return
        if (snap.get("status") or {}).get("state") == "Ready":
            return
        if not _exists(dataset) and not self._zfs_or_report(
            f"s/{name}/create", f"create snapshot {dataset}", "snapshot", dataset
        ):
            return
        self._mark_ready(snap, "ZFSSnapshot")

    def _zfs_or_report(self, key: str, what: str, *args: str) -> bool:
        """Run ``zfs ARGS``; if ZFS refuses, say so once (under ``key``) and return False:
        the object stays as it is and the next pass tries again."""
        try:
            zfs(*args)
        except subprocess.CalledProcessError as exc:
            self._once(key, f"zfs: could not {what}: {_zfs_error(exc)}")
            return False
        return True

    def _mark_ready(self, obj: Obj, kind: str) -> None:
        """upstream UpdateZvolInfo/UpdateSnapInfo: this node's label, the finalizer, Ready."""
        m = meta(obj)
        labels = dict(m.get("labels") or {})
        labels[NODE_LABEL] = self.config.node_id
        m["labels"] = labels
        m["finalizers"] = [ZFS_FINALIZER]
        obj["status"] = {"state": "Ready"}
        self.api.update(kind, obj)

    def _finish(self, obj: Obj, kind: str) -> None:
        self.api.call(lambda k: k.remove_finalizer(kind, obj, ZFS_FINALIZER))
