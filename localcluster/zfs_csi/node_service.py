"""The driver double's Node service and its kubelet plugin registration, on real mounts.

:class:`NodeService` follows upstream's ``pkg/driver/agent.go`` and ``pkg/zfs/mount.go``
(openebs/zfs-localpv, develop at ``d52f9a9``; README.md beside this file): NodePublishVolume
mounts a ``fstype: zfs`` dataset at the kubelet's target path, NodeUnpublishVolume unmounts
it. Upstream mounts a ``mountpoint=legacy`` dataset there with ``mount -t zfs``; zfs-fuse
has no legacy mounts, so the dataset stays mounted at its pool mountpoint (under the state
dir) and the target gets a bind mount of it: the pod sees the dataset itself, as upstream's.

:class:`RegistrationService` is what node-driver-registrar serves upstream: the kubelet's
``pluginregistration`` v1 API on a socket in the kubelet's ``plugins_registry`` dir, naming
the CSI socket the kubelet then calls.
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading
from concurrent import futures
from pathlib import Path
from typing import Any, Final

import grpc
from lightkube.resources.core_v1 import Node

from components.constants import OPENEBS_ZFS_CSI_DRIVER
from localcluster.kube import ApiError, meta
from localcluster.zfs_csi.driver import DriverConfig, ObjectApi, abort
from localcluster.zfs_csi.generated import (
    csi_pb2,
    csi_pb2_grpc,
    registration_pb2,
    registration_pb2_grpc,
)
from localcluster.zfs_csi.mounts import (
    Mount,
    PublishRefusedError,
    dataset_mounts,
    node_topology,
    parse_mountinfo,
    publish_needed,
)
from localcluster.zfs_pool import zfs

__all__ = ["CSI_PLUGIN_TYPE", "NodeService", "Registrar", "RegistrationService"]

log = logging.getLogger("zfs_csi.node")

#: k8s.io/kubelet pkg/apis/pluginregistration/v1 constants.go: CSIPlugin.
CSI_PLUGIN_TYPE: Final = "CSIPlugin"
#: The CSI versions the plugin speaks; the kubelet (pkg/volume/csi/csi_plugin.go,
#: validateVersions at v1.34.2) takes the highest 1.x.
_SUPPORTED_VERSIONS: Final = ("1.0.0",)
_MOUNTINFO: Final = Path("/proc/self/mountinfo")


def _mounts() -> list[Mount]:
    return parse_mountinfo(_MOUNTINFO.read_text())


def _run(*argv: str) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
    if result.returncode != 0:
        raise OSError(f"{' '.join(argv)}: {(result.stderr or result.stdout).strip()}")


class NodeService(csi_pb2_grpc.NodeServicer):  # type: ignore[misc]
    """upstream pkg/driver/agent.go's node server, for ``fstype: zfs`` datasets."""

    def __init__(self, api: ObjectApi, config: DriverConfig) -> None:
        self.api = api
        self.config = config
        # The kubelet may publish and unpublish several volumes at once; the mount table
        # check and the mount must not interleave.
        self._lock = threading.Lock()

    def NodeGetInfo(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        try:
            node = self.api.call(lambda k: k.client.get(Node, self.config.node_id))
        except ApiError as exc:
            return abort(
                context,
                grpc.StatusCode.INTERNAL,
                f"failed to get the node {self.config.node_id}: {exc}",
            )
        labels = dict(node.metadata.labels or {}) if node.metadata else {}
        return csi_pb2.NodeGetInfoResponse(
            node_id=self.config.node_id,
            accessible_topology=csi_pb2.Topology(
                segments=node_topology(labels, self.config.node_id)
            ),
        )

    def NodeGetCapabilities(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        rpc = csi_pb2.NodeServiceCapability.RPC
        # upstream also offers EXPAND_VOLUME; the program never expands a volume. No
        # STAGE_UNSTAGE_VOLUME, as upstream: the kubelet then calls NodePublish directly.
        return csi_pb2.NodeGetCapabilitiesResponse(
            capabilities=[csi_pb2.NodeServiceCapability(rpc=rpc(type=rpc.GET_VOLUME_STATS))]
        )

    def NodeStageVolume(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return abort(context, grpc.StatusCode.UNIMPLEMENTED, "")

    def NodeUnstageVolume(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return abort(context, grpc.StatusCode.UNIMPLEMENTED, "")

    def _volume(self, context: grpc.ServicerContext, volume_id: str) -> dict[str, Any]:
        try:
            volume = self.api.get("ZFSVolume", volume_id.lower())
        except ApiError as exc:
            return abort(context, grpc.StatusCode.INTERNAL, str(exc))
        if volume is None:
            return abort(
                context,
                grpc.StatusCode.INTERNAL,
                f'zfsvolumes.zfs.openebs.io "{volume_id.lower()}" not found',
            )
        return volume

    def NodePublishVolume(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        if not request.HasField("volume_capability"):
            return abort(
                context, grpc.StatusCode.INVALID_ARGUMENT, "Volume capability missing in request"
            )
        if not request.volume_id:
            return abort(context, grpc.StatusCode.INVALID_ARGUMENT, "Volume ID missing in request")
        volume = self._volume(context, request.volume_id)
        if request.volume_capability.HasField("block"):
            # upstream bind-mounts a zvol's device; zfs-fuse has no zvols (CreateVolume
            # refuses every fstype but zfs), so a block request cannot name one.
            return abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                "block access needs a ZVOL, which zfs-fuse (the local cluster's ZFS) does not have",
            )
        options = list(request.volume_capability.mount.mount_flags)
        if request.readonly:
            options.append("ro")
        try:
            self._publish(volume, request.target_path, options)
        except PublishRefusedError as exc:
            return abort(context, grpc.StatusCode.INTERNAL, str(exc))
        except (OSError, subprocess.CalledProcessError) as exc:
            return abort(context, grpc.StatusCode.INTERNAL, f"dataset: mount failed err : {exc}")
        return csi_pb2.NodePublishVolumeResponse()

    def _publish(self, volume: dict[str, Any], target: str, options: list[str]) -> None:
        """upstream MountFilesystem + MountDataset, with a bind mount for ``mount -t zfs``."""
        spec = volume["spec"]
        dataset = f"{spec['poolName']}/{meta(volume)['name']}"
        if target:
            # upstream: 0750, so that only the owner (root) and the kubelet's group see in.
            os.makedirs(target, mode=0o750, exist_ok=True)
        with self._lock:
            mountpoint, mounted = zfs(
                "get", "-H", "-o", "value", "mountpoint,mounted", dataset
            ).stdout.split()
            needed = publish_needed(
                target=target,
                owner_node=spec.get("ownerNodeID", ""),
                node_id=self.config.node_id,
                ready=(volume.get("status") or {}).get("state") == "Ready",
                shared=spec.get("shared") == "yes",
                current=dataset_mounts(_mounts(), dataset, mountpoint),
            )
            if not needed:
                log.info("dataset : already mounted %s => %s", dataset, target)
                return
            if mounted == "no":
                # upstream MountZFSDataset: a dataset that was unmounted is mounted again.
                zfs("mount", dataset)
            _run("mount", "--bind", mountpoint, target)
            if options:
                # A bind mount takes its flags (ro, ...) on a remount; without them it must
                # not stay (a read-only request left writable).
                try:
                    _run("mount", "-o", ",".join(["remount", "bind", *options]), target)
                except OSError:
                    _run("umount", target)
                    raise
        log.info("dataset : mounted %s => %s (%s)", dataset, target, ",".join(options) or "rw")

    def NodeUnpublishVolume(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        if not request.volume_id:
            return abort(context, grpc.StatusCode.INVALID_ARGUMENT, "Volume ID missing in request")
        if not request.target_path:
            return abort(
                context, grpc.StatusCode.INVALID_ARGUMENT, "Target path missing in request"
            )
        volume = self._volume(context, request.volume_id)
        target = request.target_path
        with self._lock:
            mounted = any(m.point == target for m in _mounts())
            if not mounted or not os.path.exists(target):
                # upstream UmountVolume: nothing mounted there is a success (idempotent).
                log.warning(
                    "Unmount skipped because volume %s not mounted: %s",
                    meta(volume)["name"],
                    target,
                )
                return csi_pb2.NodeUnpublishVolumeResponse()
            try:
                _run("umount", target)
            except OSError as exc:
                return abort(
                    context,
                    grpc.StatusCode.INTERNAL,
                    f"unable to umount the volume {request.volume_id} err : {exc}",
                )
        try:
            os.rmdir(target)
        except OSError as exc:
            log.error("failed to remove mount path vol %s err : %s", meta(volume)["name"], exc)
        log.info("umount done %s path %s", meta(volume)["name"], target)
        return csi_pb2.NodeUnpublishVolumeResponse()

    def NodeGetVolumeStats(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        if not request.volume_id:
            return abort(context, grpc.StatusCode.INVALID_ARGUMENT, "volume id is not provided")
        path = request.volume_path
        if not path:
            return abort(context, grpc.StatusCode.INVALID_ARGUMENT, "path is not provided")
        if not any(m.point == path for m in _mounts()):
            return abort(context, grpc.StatusCode.NOT_FOUND, "path is not a mount path")
        try:
            fs = os.statvfs(path)
        except OSError as exc:
            return abort(context, grpc.StatusCode.INTERNAL, f"statfs on {path} failed: {exc}")
        usage = csi_pb2.VolumeUsage
        return csi_pb2.NodeGetVolumeStatsResponse(
            usage=[
                usage(
                    unit=usage.BYTES,
                    total=fs.f_blocks * fs.f_bsize,
                    used=(fs.f_blocks - fs.f_bfree) * fs.f_bsize,
                    available=fs.f_bavail * fs.f_bsize,
                ),
                usage(
                    unit=usage.INODES,
                    total=fs.f_files,
                    used=fs.f_files - fs.f_ffree,
                    available=fs.f_ffree,
                ),
            ]
        )


class RegistrationService(registration_pb2_grpc.RegistrationServicer):  # type: ignore[misc]
    """node-driver-registrar's part: tell the kubelet the driver's name and CSI socket."""

    def __init__(self, endpoint: Path) -> None:
        self.endpoint = endpoint
        #: Set when the kubelet refused the registration (Registrar then registers again).
        self.refused = threading.Event()

    def GetInfo(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return registration_pb2.PluginInfo(
            type=CSI_PLUGIN_TYPE,
            name=OPENEBS_ZFS_CSI_DRIVER,
            endpoint=str(self.endpoint),
            supported_versions=list(_SUPPORTED_VERSIONS),
        )

    def NotifyRegistrationStatus(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        if request.plugin_registered:
            log.info("registered with the kubelet")
        else:
            log.error("the kubelet refused the registration: %s", request.error)
            self.refused.set()
        return registration_pb2.RegistrationStatusResponse()


class Registrar:
    """The registration socket and its server; registers again after a refusal.

    The kubelet does not retry a registration it refused (NodeGetInfo fails while the Node
    object does not exist yet, as upstream's does): node-driver-registrar then exits and is
    restarted, making its socket anew. Here the socket is made anew in place, after
    ``retry`` seconds, which the kubelet's plugin watcher sees as a new plugin.
    """

    def __init__(self, socket: Path, endpoint: Path, retry: float = 1.0) -> None:
        self.socket = socket
        self.service = RegistrationService(endpoint)
        self.retry = retry
        self._server: grpc.Server | None = None

    def start(self) -> None:
        """Serve on a fresh socket."""
        self.socket.parent.mkdir(parents=True, exist_ok=True)
        self.socket.unlink(missing_ok=True)
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        registration_pb2_grpc.add_RegistrationServicer_to_server(self.service, server)
        server.add_insecure_port(f"unix://{self.socket}")
        server.start()
        self._server = server
        log.info("plugin registration served on %s", self.socket)

    def stop(self) -> None:
        """Remove the socket (the kubelet deregisters the driver) and stop serving."""
        self.socket.unlink(missing_ok=True)
        if self._server is not None:
            self._server.stop(grace=1).wait()
            self._server = None

    def serve(self, stopped: threading.Event) -> None:
        """Serve until ``stopped``, registering again after each refusal."""
        self.start()
        while not stopped.wait(0.2):
            if self.service.refused.is_set() and not stopped.wait(self.retry):
                self.service.refused.clear()
                self.stop()
                self.start()
        self.stop()
