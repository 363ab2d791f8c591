"""``python -m localcluster up|down|status|kubeconfig``: the local cluster as background processes.

``up`` starts the control plane (etcd, kube-apiserver, kube-controller-manager when the
toolchain has it), the storage simulator, the node (kube-scheduler, containerd, kubelet:
:mod:`localcluster.node`) and the ARC controller double (:mod:`localcluster.arc_double`) as
detached processes with pidfiles in the state directory (default ``<repo>/.local-cluster``,
gitignored), prints the ``kubectl`` line to look at it and returns; they keep running until
``down``, which stops them all.
``make up`` uses it for the ``local`` stack.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Final

from localcluster.controlplane import LocalControlPlane
from localcluster.node import LocalNode, NodeUnavailableError
from localcluster.processes import ManagedProcess
from localcluster.toolchain import FIX_COMMAND, ToolchainMissingError, find_binaries

__all__ = ["DEFAULT_STATE_DIR", "kubectl_line", "main"]

REPO: Final = Path(__file__).resolve().parent.parent
DEFAULT_STATE_DIR: Final = REPO / ".local-cluster"
_SIMULATOR: Final = "storage-simulator"
_ARC_DOUBLE: Final = "arc-controller-double"
_OVERVIEW_KINDS: Final = (
    "nodes,pods,autoscalingrunnersets,persistentvolumeclaims,volumesnapshots,zfsvolumes"
)


def _arc_double_process(plane: LocalControlPlane) -> ManagedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return ManagedProcess(
        name=_ARC_DOUBLE,
        argv=[
            sys.executable,
            "-m",
            "localcluster.arc_double",
            f"--kubeconfig={plane.kubeconfig_for('arc-double')}",
            f"--state-dir-marker={plane.state_dir}",
        ],
        log_path=plane.state_dir / "logs" / f"{_ARC_DOUBLE}.log",
        pid_path=plane.state_dir / "run" / f"{_ARC_DOUBLE}.pid",
        marker=str(plane.state_dir),
        env=env,
        cwd=REPO,
    )


def _node(plane: LocalControlPlane) -> LocalNode:
    binaries = find_binaries()
    return LocalNode(plane, kubelet=binaries.kubelet, scheduler=binaries.kube_scheduler)


def _simulator_process(plane: LocalControlPlane) -> ManagedProcess:
    argv = [
        sys.executable,
        "-m",
        "localcluster.storage_sim",
        f"--kubeconfig={plane.simulator_kubeconfig}",
    ]
    if plane.controller_manager:
        argv.append("--no-core-controllers")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return ManagedProcess(
        name=_SIMULATOR,
        argv=argv,
        log_path=plane.state_dir / "logs" / f"{_SIMULATOR}.log",
        pid_path=plane.state_dir / "run" / f"{_SIMULATOR}.pid",
        marker=str(plane.state_dir),
        env=env,
        cwd=REPO,
    )


def kubectl_line(kubeconfig: Path) -> str:
    """The command that shows what the program deployed: scale sets, claims, snapshots, datasets.

    It names the toolchain's ``kubectl`` when ``make`` exported it (``KUBECTL_BIN``), so the line
    works without a ``kubectl`` installed by hand.
    """
    kubectl = os.environ.get("KUBECTL_BIN") or "kubectl"
    return f"{kubectl} --kubeconfig {kubeconfig} get {_OVERVIEW_KINDS} -A"


def up(state_dir: Path) -> int:
    """Start everything detached (or report that it already runs)."""
    plane = LocalControlPlane.attach(state_dir)
    if plane.running():
        simulator = _simulator_process(plane)
        if not simulator.alive():
            simulator.start(detached=True)
        node = _node(plane)
        if not all(node.status().values()):
            print(
                "error: the local cluster runs without its node; restart it: "
                "python -m localcluster down && python -m localcluster up",
                file=sys.stderr,
            )
            return 1
        arc = _arc_double_process(plane)
        if not arc.alive():
            arc.start(detached=True)
        print(f"local cluster already running in {plane.state_dir}")
        print(kubectl_line(plane.kubeconfig))
        return 0
    plane = LocalControlPlane(state_dir, detached=True)
    plane.start()
    simulator = _simulator_process(plane)
    simulator.start(detached=True)
    node = _node(plane)
    try:
        node.start()
    except NodeUnavailableError as exc:
        simulator.stop()
        plane.stop()
        print(f"error: the local node cannot run pods: {exc}", file=sys.stderr)
        return 1
    arc = _arc_double_process(plane)
    arc.start(detached=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if not simulator.alive():
            node.stop()
            arc.stop()
            plane.stop()
            print(
                f"error: the storage simulator exited; log {simulator.log_path}:\n"
                f"{simulator.log_tail()}",
                file=sys.stderr,
            )
            return 1
        if "storage simulator running" in simulator.log_tail(200):
            break
        time.sleep(0.1)
    manager = "with" if plane.controller_manager else "without"
    print(
        f"local cluster up in {plane.startup_seconds:.1f}s ({manager} kube-controller-manager; "
        f"node {node.startup_seconds or 0:.1f}s), state in {plane.state_dir}"
    )
    print(f"API server {plane.server}; kubeconfig {plane.kubeconfig} (context arc-zfs-cache-local)")
    print("look at it with:")
    print(f"  {kubectl_line(plane.kubeconfig)}")
    where = "" if plane.state_dir == DEFAULT_STATE_DIR else f" --state-dir {plane.state_dir}"
    print(f"stop it with: python -m localcluster{where} down")
    return 0


def down(state_dir: Path, *, purge: bool) -> int:
    """Stop the simulator and the control plane; with ``purge`` delete the state too."""
    plane = LocalControlPlane.attach(state_dir)
    arc = _arc_double_process(plane)
    arc_stopped = arc.stop()
    node = LocalNode(plane)
    node_error = ""
    try:
        node.stop()
    except NodeUnavailableError as exc:
        node_error = str(exc)
    simulator = _simulator_process(plane)
    stopped = simulator.stop()
    plane.stop()
    if not stopped:
        print(f"error: could not stop the storage simulator (pid {simulator.pid})", file=sys.stderr)
        return 1
    if not arc_stopped:
        print(f"error: could not stop the ARC controller double (pid {arc.pid})", file=sys.stderr)
        return 1
    if node_error:
        print(f"error: the local node: {node_error}", file=sys.stderr)
        return 1
    if purge:
        shutil.rmtree(plane.state_dir, ignore_errors=True)
    print(f"local cluster in {plane.state_dir} stopped{' and deleted' if purge else ''}")
    return 0


def status(state_dir: Path) -> int:
    """Print what runs; exit 0 if everything runs, 1 if part of it, 3 if nothing."""
    plane = LocalControlPlane.attach(state_dir)
    states = plane.status()
    if not plane.controller_manager:
        states.pop("kube-controller-manager", None)
    states[_SIMULATOR] = _simulator_process(plane).alive()
    states.update(LocalNode(plane).status())
    states[_ARC_DOUBLE] = _arc_double_process(plane).alive()
    for name, alive in states.items():
        print(f"{name:24} {'running' if alive else 'stopped'}")
    if all(states.values()):
        print(kubectl_line(plane.kubeconfig))
        return 0
    return 1 if any(states.values()) else 3


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m localcluster``."""
    parser = argparse.ArgumentParser(prog="python -m localcluster", description=__doc__)
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        help=f"where pidfiles, logs, kubeconfigs and etcd data live (default {DEFAULT_STATE_DIR})",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="start the control plane and the storage simulator")
    stop = commands.add_parser("down", help="stop everything")
    stop.add_argument("--purge", action="store_true", help="also delete the state directory")
    commands.add_parser("status", help="show what runs")
    commands.add_parser(
        "kubeconfig", help="print the kubeconfig path (context arc-zfs-cache-local)"
    )
    args = parser.parse_args(argv)
    state_dir: Path = args.state_dir
    if args.command == "up":
        try:
            return up(state_dir)
        except ToolchainMissingError as exc:
            print(f"error: {exc}\nfix: {FIX_COMMAND}", file=sys.stderr)
            return 2
    if args.command == "down":
        return down(state_dir, purge=args.purge)
    if args.command == "status":
        return status(state_dir)
    print(LocalControlPlane.attach(state_dir).kubeconfig)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
