"""``python -m localcluster up|down|status|kubeconfig``: the local cluster as background processes.

``up`` starts the control plane (etcd, kube-apiserver, kube-controller-manager when the
toolchain has it), the real storage (:mod:`localcluster.storage`: a zfs-fuse pool named by
the local stack's ``storage.poolName``, the ZFS CSI driver double, csi-provisioner,
csi-snapshotter, snapshot-controller), the stand-ins it lacks (:mod:`localcluster.stand_ins`),
the node (kube-scheduler, containerd, kubelet:
:mod:`localcluster.node`) and the ARC controller double (:mod:`localcluster.arc_double`) as
detached processes with pidfiles in the state directory (default ``<repo>/.local-cluster``,
gitignored), prints the ``kubectl`` and ``zfs list`` lines to look at it and returns; they keep
running until ``down``, which stops them all and exports the pool (``--purge`` destroys it).
The storage and the node start side by side (each needs only the control plane).
``status`` also shows the listener pod of every AutoscalingRunnerSet (``--wait N``: until
they all run, naming the one that does not). ``make up`` uses it for the ``local`` stack.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final

from lightkube.resources.core_v1 import Event, Pod

from localcluster.arc_double import listener_name, scale_sets
from localcluster.controlplane import LocalControlPlane
from localcluster.node import LocalNode, NodeUnavailableError
from localcluster.processes import ManagedProcess
from localcluster.storage import LocalStorage, stack_pool
from localcluster.toolchain import FIX_COMMAND, ToolchainMissingError, find_binaries
from localcluster.zfs_pool import StorageUnavailableError

__all__ = ["DEFAULT_STATE_DIR", "kubectl_line", "listener_phases", "main"]

REPO: Final = Path(__file__).resolve().parent.parent
DEFAULT_STATE_DIR: Final = REPO / ".local-cluster"
_STAND_INS: Final = "stand-ins"
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


def _storage(plane: LocalControlPlane, pool: str | None) -> LocalStorage:
    return LocalStorage(plane, pool=pool or stack_pool())


def _stand_ins_process(plane: LocalControlPlane) -> ManagedProcess | None:
    """The stand-ins for kube-controller-manager, or None when it runs (the node's kubelet
    finishes pod deletions itself, so nothing is left to stand in for)."""
    if plane.controller_manager:
        return None
    argv = [
        sys.executable,
        "-m",
        "localcluster.stand_ins",
        f"--kubeconfig={plane.kubeconfig_for('stand-ins')}",
        "--no-kubelet",
    ]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return ManagedProcess(
        name=_STAND_INS,
        argv=argv,
        log_path=plane.state_dir / "logs" / f"{_STAND_INS}.log",
        pid_path=plane.state_dir / "run" / f"{_STAND_INS}.pid",
        marker=str(plane.state_dir),
        env=env,
        cwd=REPO,
    )


_FAILED: Final = {
    "storage": "the local cluster's storage cannot run",
    "node": "the local node cannot run pods",
}


def _together(steps: Mapping[str, Callable[[], object]]) -> dict[str, BaseException]:
    """Run the steps in parallel threads; the exception of each step that failed, by name."""
    with ThreadPoolExecutor(max_workers=len(steps)) as pool:
        futures = {name: pool.submit(run) for name, run in steps.items()}
    return {name: exc for name, f in futures.items() if (exc := f.exception()) is not None}


def _raise_unexpected(errors: Iterable[BaseException]) -> None:
    """Re-raise the first error that is not a one-line "cannot run here" error."""
    expected = (StorageUnavailableError, ToolchainMissingError, NodeUnavailableError)
    for exc in errors:
        if not isinstance(exc, expected):
            raise exc


def kubectl_line(kubeconfig: Path) -> str:
    """The command that shows what the program deployed: scale sets, claims, snapshots, datasets.

    It names the toolchain's ``kubectl`` when ``make`` exported it (``KUBECTL_BIN``), so the line
    works without a ``kubectl`` installed by hand.
    """
    kubectl = os.environ.get("KUBECTL_BIN") or "kubectl"
    return f"{kubectl} --kubeconfig {kubeconfig} get {_OVERVIEW_KINDS} -A"


def listener_phases(
    scale_sets: Iterable[Mapping[str, Any]], pods: Iterable[Mapping[str, Any]]
) -> dict[str, str]:
    """The listener pod of each AutoscalingRunnerSet (by the name the controller gives it)
    -> its phase, ``""`` while it does not exist."""
    phases = {
        p["metadata"]["name"]: (p.get("status") or {}).get("phase") or "Pending" for p in pods
    }
    return {name: phases.get(name, "") for name in sorted(map(listener_name, scale_sets))}


def _listeners(plane: LocalControlPlane) -> tuple[dict[str, str], dict[str, str]]:
    """``listener_phases`` of the cluster, and the latest event message about each listener
    (the ARC double's ``FailedCreatePod`` on the AutoscalingListener before the pod's own)."""
    client = plane.client("harness")
    # No ARC CRDs until the controller chart installs them: no scale set yet.
    sets = scale_sets(client) or []
    names = set(map(listener_name, sets))
    pods = [p.to_dict() for p in client.list(Pod, namespace="*")]
    events = sorted(
        (e.to_dict() for e in client.list(Event, namespace="*")),
        key=lambda e: (
            e["involvedObject"].get("kind") == "AutoscalingListener",
            str(e.get("lastTimestamp") or e.get("eventTime") or ""),
        ),
    )
    messages = {
        e["involvedObject"].get("name", ""): e.get("message") or ""
        for e in events
        if e["involvedObject"].get("name") in names
    }
    return listener_phases(sets, pods), messages


def up(state_dir: Path, pool: str | None = None) -> int:
    """Start everything detached (or report that it already runs)."""
    plane = LocalControlPlane.attach(state_dir)
    if plane.running():
        stand_ins = _stand_ins_process(plane)
        if stand_ins is not None and not stand_ins.alive():
            stand_ins.start(detached=True)
        storage = _storage(plane, pool)
        node = _node(plane)
        for part, states in (("storage", storage.status()), ("node", node.status())):
            if not all(states.values()):
                print(
                    f"error: the local cluster runs without its {part}; restart it: "
                    "python -m localcluster down && python -m localcluster up",
                    file=sys.stderr,
                )
                return 1
        arc = _arc_double_process(plane)
        if not arc.alive():
            arc.start(detached=True)
        print(f"local cluster already running in {plane.state_dir}")
        print(kubectl_line(plane.kubeconfig))
        print(storage.pool.list_line())
        return 0
    plane = LocalControlPlane(state_dir, detached=True)
    plane.start()
    stand_ins = _stand_ins_process(plane)
    if stand_ins is not None:
        stand_ins.start(detached=True)
    storage = _storage(plane, pool)
    node = _node(plane)
    # Independent of each other (each needs only the API server): side by side they save
    # the shorter one's start-up. Each stops what it started when it fails.
    failed = _together({"storage": lambda: storage.start(detached=True), "node": node.start})
    if failed:
        if "storage" not in failed:
            storage.stop()
        if "node" not in failed:
            node.stop()
        if stand_ins is not None:
            stand_ins.stop()
        plane.stop()
        _raise_unexpected(failed.values())
        for part, exc in failed.items():
            print(f"error: {_FAILED[part]}: {exc}", file=sys.stderr)
        return 1
    arc = _arc_double_process(plane)
    arc.start(detached=True)
    deadline = time.monotonic() + 30
    while stand_ins is not None and time.monotonic() < deadline:
        if not stand_ins.alive():
            node.stop()
            arc.stop()
            storage.stop()
            plane.stop()
            print(
                f"error: the stand-ins exited; log {stand_ins.log_path}:\n{stand_ins.log_tail()}",
                file=sys.stderr,
            )
            return 1
        if "stand-ins running" in stand_ins.log_tail(200):
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
    print(f"  {storage.pool.list_line()}")
    where = "" if plane.state_dir == DEFAULT_STATE_DIR else f" --state-dir {plane.state_dir}"
    print(f"stop it with: python -m localcluster{where} down")
    return 0


def down(state_dir: Path, pool: str | None = None, *, purge: bool) -> int:
    """Stop everything and export the pool; with ``purge`` destroy it and delete the state."""
    plane = LocalControlPlane.attach(state_dir)
    arc = _arc_double_process(plane)
    arc_stopped = arc.stop()
    node = LocalNode(plane)
    node_error = ""
    try:
        node.stop()
    except NodeUnavailableError as exc:
        node_error = str(exc)
    stand_ins = _stand_ins_process(plane)
    stopped = stand_ins is None or stand_ins.stop()
    storage_error = ""
    try:
        _storage(plane, pool).stop(destroy=purge)
    except (RuntimeError, StorageUnavailableError) as exc:
        storage_error = str(exc)
    plane.stop()
    if stand_ins is not None and not stopped:
        print(f"error: could not stop the stand-ins (pid {stand_ins.pid})", file=sys.stderr)
        return 1
    if storage_error:
        print(f"error: the local cluster's storage: {storage_error}", file=sys.stderr)
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


def status(state_dir: Path, pool: str | None = None, wait: float = 0.0) -> int:
    """Print what runs; exit 0 if everything runs, 1 if part of it, 3 if nothing.

    Every process, then the listener pod of each AutoscalingRunnerSet (once a stack is
    deployed); ``wait`` seconds for the listeners to be Running (the ARC controller double
    creates them after ``pulumi up`` has created the scale sets).
    """
    plane = LocalControlPlane.attach(state_dir)
    states = plane.status()
    if not plane.controller_manager:
        states.pop("kube-controller-manager", None)
    stand_ins = _stand_ins_process(plane)
    if stand_ins is not None:
        states[_STAND_INS] = stand_ins.alive()
    storage = _storage(plane, pool)
    states.update(storage.status())
    states.update(LocalNode(plane).status())
    states[_ARC_DOUBLE] = _arc_double_process(plane).alive()
    for name, alive in states.items():
        print(f"{name:24} {'running' if alive else 'stopped'}")
    if not all(states.values()):
        return 1 if any(states.values()) else 3
    deadline = time.monotonic() + wait
    phases, events = _listeners(plane)
    while time.monotonic() < deadline and any(p != "Running" for p in phases.values()):
        time.sleep(0.5)
        phases, events = _listeners(plane)
    for name, phase in phases.items():
        print(f"listener pod {name}: {phase or 'not created'}")
    print(kubectl_line(plane.kubeconfig))
    print(storage.pool.list_line())
    stuck = [name for name, phase in phases.items() if phase != "Running"]
    for name in stuck:
        why = events.get(name) or "no event names a reason"
        print(f"error: listener pod {name} is not Running: {why}", file=sys.stderr)
    return 1 if stuck else 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m localcluster``."""
    parser = argparse.ArgumentParser(prog="python -m localcluster", description=__doc__)
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        help=f"where pidfiles, logs, kubeconfigs and etcd data live (default {DEFAULT_STATE_DIR})",
    )
    parser.add_argument(
        "--pool",
        help="the zfs-fuse pool's name (default: storage.poolName of Pulumi.local.yaml; tests "
        "name their own, as one zfs-fuse daemon serves every pool of the machine)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="start the control plane, its storage and its node")
    stop = commands.add_parser("down", help="stop everything")
    stop.add_argument(
        "--purge", action="store_true", help="also destroy the pool and delete the state directory"
    )
    shown = commands.add_parser("status", help="show what runs")
    shown.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait up to SECONDS for every scale set's listener pod to be Running",
    )
    commands.add_parser(
        "kubeconfig", help="print the kubeconfig path (context arc-zfs-cache-local)"
    )
    args = parser.parse_args(argv)
    state_dir: Path = args.state_dir
    if args.command == "up":
        try:
            return up(state_dir, args.pool)
        except ToolchainMissingError as exc:
            print(f"error: {exc}\nfix: {FIX_COMMAND}", file=sys.stderr)
            return 2
    if args.command == "down":
        return down(state_dir, args.pool, purge=args.purge)
    if args.command == "status":
        return status(state_dir, args.pool, args.wait)
    print(LocalControlPlane.attach(state_dir).kubeconfig)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
