"""The local cluster as one object for tests: control plane, real storage, stand-ins, the
ARC controller double."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from lightkube import Client

from localcluster.arc_double import ArcControllerDouble
from localcluster.audit import AuditEvent, AuditLog, AuditMark
from localcluster.controlplane import LocalControlPlane
from localcluster.kube import Kube
from localcluster.lifecycle import Started
from localcluster.node import LocalNode
from localcluster.stand_ins import StandInConfig, StandIns
from localcluster.storage import LocalStorage
from localcluster.toolchain import find_binaries

__all__ = ["LocalCluster"]

#: Numbers the pools of this process's clusters: one zfs-fuse daemon serves every pool of the
#: machine, so test clusters (several per session, beside a developer's `make up` pool)
#: need names of their own.
_POOL_NUMBERS = itertools.count(1)


class LocalCluster(Started):
    """A started :class:`LocalControlPlane` with its real storage and the stand-ins it needs.

    ``storage`` is :class:`~localcluster.storage.LocalStorage`: a zfs-fuse pool named
    ``pool`` (default ``e2e-<pid>-<n>``, unique on the machine; a program deployed here
    names it in ``storage.poolName``), the ZFS CSI driver double, the real csi-provisioner,
    csi-snapshotter and snapshot-controller. ``start`` fails with
    :class:`~localcluster.zfs_pool.StorageUnavailableError` (one line) if the machine cannot
    run zfs-fuse; ``stop`` destroys the pool.

    ``controller_manager`` forces kube-controller-manager on or off (default: on when the
    toolchain has it); without it :class:`~localcluster.stand_ins.StandIns` play its
    controllers, and without a node they finish pod deletions as a kubelet would.

    ``node=True`` adds kube-scheduler and a real kubelet on containerd
    (:class:`~localcluster.node.LocalNode`, node ``local-zfs-node``): pods then really run,
    and ``start`` fails with :class:`~localcluster.node.NodeUnavailableError` (one line) if
    the machine cannot run them. Without it there is no scheduler and no kubelet.

    ``arc_controller=True`` runs the ARC controller double
    (:class:`~localcluster.arc_double.ArcControllerDouble`, polling every
    ``arc_interval`` seconds) from the start to the end: what deploys the scale-set chart
    needs it, since the chart's cleanup-protection finalizers only go when the controller
    cleans an AutoscalingRunnerSet up. The ARC CRDs are not installed here: the controller
    chart installs them (or :func:`~localcluster.crds.install_arc_crds` for a test without it).

    ``kubeconfig`` is the code under test's (context ``arc-zfs-cache-local``);
    ``client()``/``kube()`` act as the harness, whose requests the audit assertions ignore.
    """

    def __init__(
        self,
        state_dir: Path,
        *,
        pool: str | None = None,
        controller_manager: bool | None = None,
        node: bool = False,
        arc_controller: bool = False,
        arc_interval: float = 0.5,
    ) -> None:
        self.control_plane = LocalControlPlane(state_dir, controller_manager=controller_manager)
        self.storage = LocalStorage(
            self.control_plane, pool=pool or f"e2e-{os.getpid()}-{next(_POOL_NUMBERS)}"
        )
        self._storage_started = False
        self.stand_ins: StandIns | None = None
        self._want_node = node
        self.node: LocalNode | None = None
        self._arc_interval = arc_interval if arc_controller else None
        self.arc_controller: ArcControllerDouble | None = None

    def start(self) -> LocalCluster:
        """Start the control plane, the storage, the stand-ins it lacks, the node, then the
        ARC controller double."""
        self.control_plane.start()
        try:
            self.storage.start()
            self._storage_started = True
            config = StandInConfig(
                kubelet=not self._want_node,
                core_controllers=not self.control_plane.controller_manager,
            )
            if config.anything:
                self.stand_ins = StandIns(self.control_plane.kubeconfig_for("stand-ins"), config)
                self.stand_ins.start()
            if self._want_node:
                binaries = find_binaries()
                self.node = LocalNode(
                    self.control_plane,
                    kubelet=binaries.kubelet,
                    scheduler=binaries.kube_scheduler,
                )
                self.node.start()
            if self._arc_interval is not None:
                self.arc_controller = ArcControllerDouble(
                    self.control_plane.kubeconfig_for("arc-double"), interval=self._arc_interval
                ).start()
        except BaseException:
            # A node that failed to start has stopped what it started (LocalNode.start).
            self.node = None
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the ARC controller double, the node, the stand-ins, the storage (destroying
        the pool), then the control plane; every part is stopped even if one fails, then the
        first failure is raised."""
        steps: list[Callable[[], None]] = []
        if self.arc_controller is not None:
            steps.append(self.arc_controller.stop)
        if self.node is not None:
            steps.append(self.node.stop)
        if self.stand_ins is not None:
            steps.append(self.stand_ins.stop)
        if self._storage_started:
            steps.append(lambda: self.storage.stop(destroy=True))
        steps.append(self.control_plane.stop)
        self.node = self.stand_ins = self.arc_controller = None
        self._storage_started = False
        failure: BaseException | None = None
        for step in steps:
            try:
                step()
            except BaseException as exc:
                failure = failure or exc
        if failure is not None:
            raise failure

    @property
    def kubeconfig(self) -> Path:
        """kubeconfig of the code under test."""
        return self.control_plane.kubeconfig

    @property
    def state_dir(self) -> Path:
        """Where logs, certificates, kubeconfigs and the audit log live."""
        return self.control_plane.state_dir

    @property
    def audit(self) -> AuditLog:
        """The audit log (``mark()``, ``mutating_requests(since)``, ``requests(since)``)."""
        return self.control_plane.audit

    def mutating_requests(self, since: AuditMark | datetime | None = None) -> list[AuditEvent]:
        """Mutating requests after ``since``, without harness/storage/stand-in/system identities."""
        return self.audit.mutating_requests(since)

    def client(self, identity: str = "harness") -> Client:
        """A new lightkube client (``harness``, ``admin``, ``stand-ins``, ...)."""
        return self.control_plane.client(identity)

    def kube(self, identity: str = "harness") -> Kube:
        """A dict-based :class:`~localcluster.kube.Kube` client."""
        return self.control_plane.kube(identity)

    def schedule_pod(self, namespace: str, name: str, node: str) -> None:
        """Bind a pod to ``node`` as kube-scheduler would (nothing else schedules pods here)."""
        self.kube().bind_pod(name, namespace, node)
