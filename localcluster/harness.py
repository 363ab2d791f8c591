"""The local cluster as one object for tests: control plane + storage simulator (in a thread)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from lightkube import Client

from localcluster.audit import AuditEvent, AuditLog, AuditMark
from localcluster.controlplane import LocalControlPlane
from localcluster.kube import Kube
from localcluster.node import LocalNode
from localcluster.storage_sim import SimulatorConfig, StorageSimulator
from localcluster.toolchain import find_binaries

__all__ = ["LocalCluster"]


class LocalCluster:
    """A started :class:`LocalControlPlane` with a :class:`StorageSimulator` attached.

    ``controller_manager`` forces kube-controller-manager on or off (default: on when the
    toolchain has it); without it the simulator plays the core controllers too.

    ``node=True`` adds kube-scheduler and a real kubelet on containerd
    (:class:`~localcluster.node.LocalNode`, node ``local-zfs-node``): pods then really run,
    and ``start`` fails with :class:`~localcluster.node.NodeUnavailableError` (one line) if
    the machine cannot run them. Without it there is no scheduler and no kubelet.

    ``kubeconfig`` is the code under test's (context ``arc-zfs-cache-local``);
    ``client()``/``kube()`` act as the harness, whose requests the audit assertions ignore.
    """

    def __init__(
        self,
        state_dir: Path,
        config: SimulatorConfig | None = None,
        *,
        controller_manager: bool | None = None,
        node: bool = False,
    ) -> None:
        self.control_plane = LocalControlPlane(state_dir, controller_manager=controller_manager)
        self._simulator_config = config
        self.simulator: StorageSimulator | None = None
        self._want_node = node
        self.node: LocalNode | None = None

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> LocalCluster:
        """Start the control plane, then the simulator (with core controllers unless KCM runs)."""
        self.control_plane.start()
        config = self._simulator_config or SimulatorConfig()
        if self.control_plane.controller_manager:
            config = dataclasses.replace(config, core_controllers=False)
        try:
            self.simulator = StorageSimulator(self.control_plane.simulator_kubeconfig, config)
            self.simulator.start()
            if self._want_node:
                binaries = find_binaries()
                self.node = LocalNode(
                    self.control_plane,
                    kubelet=binaries.kubelet,
                    scheduler=binaries.kube_scheduler,
                )
                self.node.start()
        except BaseException:
            self.node = None
            if self.simulator is not None:
                self.simulator.stop()
                self.simulator = None
            self.control_plane.stop()
            raise
        return self

    def restart_simulator(self, **changes: Any) -> StorageSimulator:
        """Stop the simulator and start a new one (with ``changes`` to its config).

        The new one knows only what the API server holds: tests use this to prove that
        a restart converges.
        """
        assert self.simulator is not None, "the cluster is not started"
        config = dataclasses.replace(self.simulator.config, **changes)
        self.simulator.stop()
        self.simulator = StorageSimulator(self.control_plane.simulator_kubeconfig, config)
        return self.simulator.start()

    def stop(self) -> None:
        """Stop the node, the simulator, then the control plane (raises if a process survives)."""
        if self.node is not None:
            node, self.node = self.node, None
            try:
                node.stop()
            except BaseException:
                if self.simulator is not None:
                    self.simulator.stop()
                    self.simulator = None
                self.control_plane.stop()
                raise
        if self.simulator is not None:
            self.simulator.stop()
            self.simulator = None
        self.control_plane.stop()

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
        """Mutating requests after ``since``, without harness/simulator/system identities."""
        return self.audit.mutating_requests(since)

    def client(self, identity: str = "harness") -> Client:
        """A new lightkube client (``harness``, ``admin`` or ``simulator``)."""
        return self.control_plane.client(identity)

    def kube(self, identity: str = "harness") -> Kube:
        """A dict-based :class:`~localcluster.kube.Kube` client."""
        return self.control_plane.kube(identity)

    def schedule_pod(self, namespace: str, name: str, node: str) -> None:
        """Bind a pod to ``node`` as kube-scheduler would (nothing else schedules pods here)."""
        self.kube().bind_pod(name, namespace, node)

    @contextmanager
    def simulator_config(self, **changes: Any) -> Iterator[SimulatorConfig]:
        """Temporarily change simulator knobs, e.g. ``snapshot_ready_delay=1.0``."""
        assert self.simulator is not None, "the cluster is not started"
        previous = self.simulator.config
        self.simulator.config = dataclasses.replace(previous, **changes)
        try:
            yield self.simulator.config
        finally:
            self.simulator.config = previous
