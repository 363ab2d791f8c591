"""The local cluster's storage, from real parts: ZFS, the CSI sidecars, the snapshot controller.

:class:`LocalStorage` runs, beside a started :class:`~localcluster.controlplane.LocalControlPlane`:

* a zfs-fuse pool on a sparse file in the state directory (:mod:`localcluster.zfs_pool`);
* the ZFS CSI driver double (:mod:`localcluster.zfs_csi`) on the unix socket
  ``<state-dir>/csi/zfs.csi.openebs.io/csi.sock``, registered with the local node's kubelet
  through its own registration socket in the kubelet's ``plugins_registry`` dir (what
  node-driver-registrar does upstream), and its CSIDriver object as OpenEBS's chart makes it;
* the real csi-provisioner and csi-snapshotter sidecars on that socket, and the real
  snapshot-controller, each with its own client certificate (so the audit log names it);
* the real VolumeSnapshot CRDs of the external-snapshotter release the toolchain pins.

Every process is started and stopped by pid (pidfiles in ``<state-dir>/run``); everything
talks over loopback or unix sockets. ``stop`` also unmounts what the driver's NodePublish
left mounted in the kubelet's pod dirs (a kubelet that died before unpublishing), so the
pool can be exported.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path
from typing import Final

import yaml
from lightkube import ApiError, Client
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.models.storage_v1 import CSIDriverSpec
from lightkube.resources.storage_v1 import CSIDriver

from components.config import load_stack_file, validate_config
from components.constants import OPENEBS_NAMESPACE, OPENEBS_ZFS_CSI_DRIVER
from localcluster.controlplane import CONTEXT, STORAGE, LocalControlPlane
from localcluster.crds import apply_crd
from localcluster.kube import is_conflict, meta
from localcluster.lifecycle import wait_until_ready
from localcluster.node import MAX_SOCKET_PATH, kubelet_root, unmount_all
from localcluster.processes import ManagedProcess
from localcluster.toolchain import ToolchainMissingError
from localcluster.zfs_csi import registration_socket
from localcluster.zfs_csi.mounts import mounts_under, parse_mountinfo
from localcluster.zfs_pool import StorageUnavailableError, ZfsPool

__all__ = [
    "DEFAULT_NODE",
    "LOCAL_STACK",
    "LocalStorage",
    "StorageBinaries",
    "find_storage_binaries",
    "stack_pool",
]

REPO: Final = Path(__file__).resolve().parent.parent
#: The local cluster's one node (the local stack's cache node).
DEFAULT_NODE: Final = "local-zfs-node"
#: The stack the local cluster serves; its ``storage.poolName`` names the pool.
LOCAL_STACK: Final = REPO / "Pulumi.local.yaml"
_FIX: Final = 'scripts/toolchain.sh && eval "$(scripts/toolchain.sh env)"'
#: The order they start in (stopped in reverse).
_ORDER: Final = ("zfs-csi-driver", "snapshot-controller", "csi-provisioner", "csi-snapshotter")


class StorageBinaries:
    """The toolchain's storage programs and files (``scripts/toolchain.sh env`` names them)."""

    def __init__(self) -> None:
        self.csi_provisioner = _env_path("CSI_PROVISIONER_BIN", "csi-provisioner")
        self.csi_snapshotter = _env_path("CSI_SNAPSHOTTER_BIN", "csi-snapshotter")
        self.snapshot_controller = _env_path("SNAPSHOT_CONTROLLER_BIN", "snapshot-controller")
        self.crd_dir = _env_path("VOLUME_SNAPSHOT_CRD_DIR", "external-snapshotter")
        self.csi_pb = _env_path("CSI_PB_PYTHONPATH", "csi-spec")
        self.registration_pb = _env_path("PLUGIN_REGISTRATION_PB_PYTHONPATH", "csi-spec")


def _env_path(variable: str, tool: str) -> Path:
    value = os.environ.get(variable)
    if not value or not Path(value).exists():
        raise ToolchainMissingError(
            f"{variable}={value or '(unset)'}: the toolchain's {tool} is missing (the local "
            f"cluster's storage is the real CSI machinery); build and select it with: {_FIX}"
        )
    return Path(value)


def find_storage_binaries() -> StorageBinaries:
    """The storage toolchain, or ToolchainMissingError naming what is missing and the fix."""
    return StorageBinaries()


def stack_pool(stack_file: Path = LOCAL_STACK) -> str:
    """The pool a stack's StorageClasses name (``storage.poolName``, validated as ``make check``
    does, so the default lives in one place: :mod:`components.config`)."""
    return validate_config(load_stack_file(stack_file)).storage.pool_name


class LocalStorage:
    """Pool, driver double, sidecars and snapshot controller of ``plane``'s state directory."""

    def __init__(
        self,
        plane: LocalControlPlane,
        *,
        pool: str,
        node: str = DEFAULT_NODE,
        binaries: StorageBinaries | None = None,
    ) -> None:
        self.plane = plane
        self.state_dir = plane.state_dir
        self.node = node
        self.pool = ZfsPool(self.state_dir, pool)
        self.socket = self.state_dir / "csi" / OPENEBS_ZFS_CSI_DRIVER / "csi.sock"
        #: The kubelet's plugin watcher dir, where the driver registers itself.
        self.plugin_registry = kubelet_root(self.state_dir) / "plugins_registry"
        self._binaries = binaries
        self._processes: dict[str, ManagedProcess] = {}

    def kubeconfig(self, role: str) -> Path:
        """kubeconfig file of one storage component."""
        return self.state_dir / f"{role}.kubeconfig"

    def _write_kubeconfigs(self) -> None:
        pki = self.plane.pki
        pki.ensure(list(STORAGE.values()))
        for role, identity in STORAGE.items():
            pki.write_kubeconfig(
                self.kubeconfig(role),
                server=self.plane.server,
                cluster=CONTEXT,
                identity=identity,
                context=f"{CONTEXT}-{role}",
            )

    def _argv(self, role: str, binaries: StorageBinaries) -> tuple[list[str], dict[str, str]]:
        kubeconfig = f"--kubeconfig={self.kubeconfig(role)}"
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.state_dir)}
        if role == "zfs-csi-driver":
            env["PYTHONPATH"] = str(REPO)
            env["CSI_PB_PYTHONPATH"] = str(binaries.csi_pb)
            env["PLUGIN_REGISTRATION_PB_PYTHONPATH"] = str(binaries.registration_pb)
            # zfs and zpool live in /sbin, which a non-login PATH may lack.
            env["PATH"] += ":/sbin:/usr/sbin"
            argv = [
                sys.executable,
                "-m",
                "localcluster.zfs_csi",
                f"--endpoint={self.socket}",
                kubeconfig,
                f"--node-id={self.node}",
                f"--namespace={OPENEBS_NAMESPACE}",
                f"--plugin-registry-dir={self.plugin_registry}",
                # The marker that lets stop() tell our pid from a recycled one.
                f"--state-dir={self.state_dir}",
            ]
            return argv, env
        if role == "snapshot-controller":
            # The program takes no group snapshots; with the (GA, default-on) gate the
            # controller waits --retry-crd-interval-max (30 s) for their CRDs before it works.
            return [
                str(binaries.snapshot_controller),
                kubeconfig,
                "--v=2",
                "--feature-gates=CSIVolumeGroupSnapshot=false",
            ], env
        address = f"--csi-address={self.socket}"
        if role == "csi-provisioner":
            # As OpenEBS deploys it (deploy/zfs-operator.yaml), less capacity tracking (the
            # driver double offers no GET_CAPACITY); quick retries, for tests that wait.
            return [
                str(binaries.csi_provisioner),
                address,
                kubeconfig,
                "--v=2",
                "--feature-gates=Topology=true",
                "--strict-topology",
                "--extra-create-metadata=true",
                "--timeout=30s",
                "--retry-interval-start=200ms",
                "--retry-interval-max=5s",
            ], env
        return [
            str(binaries.csi_snapshotter),
            address,
            kubeconfig,
            "--v=2",
            "--timeout=30s",
            "--extra-create-metadata=true",
            # The driver answers CreateSnapshot before the node agent made the snapshot
            # (as upstream does without its `wait` parameter); the sidecar asks again,
            # after 1s doubling to 5 min by default.
            "--retry-interval-start=200ms",
            "--retry-interval-max=5s",
        ], env

    def _process(self, role: str, binaries: StorageBinaries | None = None) -> ManagedProcess:
        argv, env = self._argv(role, binaries) if binaries else ([], None)
        return ManagedProcess(
            name=role,
            argv=argv,
            log_path=self.state_dir / "logs" / f"{role}.log",
            pid_path=self.state_dir / "run" / f"{role}.pid",
            marker=str(self.state_dir),
            env=env,
            cwd=REPO,
        )

    def install_crds(self, binaries: StorageBinaries) -> list[str]:
        """Create or update the release's VolumeSnapshot CRDs (over any fixture); create the
        OpenEBS namespace the driver keeps its objects in and the driver's CSIDriver object
        (the chart's install makes both; the local stack has ``storage.install: false``, so
        this stands for that install)."""
        kube = self.plane.kube("harness")
        kube.ensure(
            "Namespace",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": OPENEBS_NAMESPACE}},
        )
        self._ensure_csi_driver(kube.client)
        names = []
        for path in sorted(binaries.crd_dir.glob("snapshot.storage.k8s.io_*.yaml")):
            for doc in yaml.safe_load_all(path.read_text()):
                if not doc:
                    continue
                names.append(meta(doc)["name"])
                apply_crd(kube, doc)
        return names

    @staticmethod
    def _ensure_csi_driver(client: Client) -> None:
        # As deploy/helm/charts/templates/csidriver.yaml (zfs-localpv develop d52f9a9) has
        # it: no VolumeAttachment, no pod info, and no fsGroupPolicy, so the API server's
        # default ReadWriteOnceWithFSType: the kubelet applies a pod's fsGroup to a
        # ReadWriteOnce volume whose PV names an fsType (csi-provisioner copies the class's
        # `fstype: zfs`). storageCapacity is false here: the double publishes no capacity.
        driver = CSIDriver(
            metadata=ObjectMeta(name=OPENEBS_ZFS_CSI_DRIVER),
            spec=CSIDriverSpec(attachRequired=False, podInfoOnMount=False, storageCapacity=False),
        )
        try:
            client.create(driver)
        except ApiError as exc:
            if not is_conflict(exc):
                raise

    def _wait_socket(self, proc: ManagedProcess, timeout: float = 60.0) -> None:
        wait_until_ready(
            proc,
            self._socket_accepts,
            timeout,
            exited=lambda: RuntimeError(
                f"{proc.name} exited; log {proc.log_path}:\n{proc.log_tail()}"
            ),
            not_ready=lambda: RuntimeError(
                f"{proc.name}: no socket {self.socket} after {timeout}s"
            ),
        )

    def _socket_accepts(self) -> bool:
        with socket.socket(socket.AF_UNIX) as sock:
            try:
                sock.connect(str(self.socket))
            except OSError:
                return False
            return True

    def start(self, *, detached: bool = False) -> LocalStorage:
        """Pool, CRDs, the driver (ready on its socket), then the controllers and sidecars."""
        binaries = self._binaries or find_storage_binaries()
        registration = registration_socket(self.plugin_registry)
        if len(str(registration)) > MAX_SOCKET_PATH:
            raise StorageUnavailableError(
                f"state dir {self.state_dir} is too long for the driver's registration socket "
                f"{registration} (unix sockets: at most {MAX_SOCKET_PATH} characters); fix: a "
                "shorter state dir, e.g. make up LOCAL_CLUSTER_DIR=/tmp/arc-zfs-cache-local"
            )
        self.pool.ensure()
        try:
            self._write_kubeconfigs()
            self.install_crds(binaries)
            for role in _ORDER:
                proc = self._process(role, binaries)
                proc.start(detached=detached)
                self._processes[role] = proc
                if role == "zfs-csi-driver":
                    self._wait_socket(proc)
            time.sleep(0.5)
            dead = [p for p in self._processes.values() if not p.alive()]
            if dead:
                raise RuntimeError(
                    f"{dead[0].name} exited; log {dead[0].log_path}:\n{dead[0].log_tail()}"
                )
        except BaseException:
            self.stop()
            raise
        return self

    def _sweep_publications(self) -> None:
        """Unmount the pool's datasets from the kubelet's dirs: NodePublish's bind mounts
        that no NodeUnpublish removed (the node stops its pods first, so normally none)."""
        mounts = parse_mountinfo(Path("/proc/self/mountinfo").read_text())
        ours = {m.point for m in mounts if m.source.startswith(self.pool.name + "/")}
        left = [p for p in mounts_under(mounts, kubelet_root(self.state_dir)) if p in ours]
        if left:
            unmount_all(left)

    def status(self) -> dict[str, bool]:
        """Component -> running (the pool counts as running while imported)."""
        states = {role: self._process(role).alive() for role in _ORDER}
        # No pool file: no pool was ever made here (nor zfs-fuse needed to say so).
        states["zfs pool " + self.pool.name] = self.pool.image.exists() and self.pool.imported()
        return states

    def stop(self, *, destroy: bool = False) -> None:
        """Stop every process (reverse order, by pid), then export (or destroy) the pool."""
        survivors = []
        for role in reversed(_ORDER):
            proc = self._processes.pop(role, None) or self._process(role)
            if not proc.stop():
                survivors.append(role)
        if survivors:
            raise RuntimeError(f"could not stop: {', '.join(survivors)}")
        self._sweep_publications()
        if not self.pool.image.exists():
            return  # no pool was made here (e.g. `up` failed its preflight): nothing to export
        if destroy:
            self.pool.destroy()
        else:
            self.pool.export()
