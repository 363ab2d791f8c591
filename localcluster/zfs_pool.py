"""A real ZFS pool for the local cluster: Debian's zfs-fuse over /dev/fuse, on a sparse file.

zfs-fuse serves every ``zpool``/``zfs`` command of the machine through one fixed socket
(``/var/run/zfs/zfs_socket``), so there is one daemon per machine, shared by every local
cluster that runs on it (engineers and CI run several). Whoever finds no daemon starts one
and records its pid under :data:`RUN_DIR`; it is stopped, by that pid, when the last pool
goes. Each cluster's pool lives in its state directory (``zfs/<pool>.img``, mounted under
``zfs/mnt``) and is exported when the cluster stops, destroyed when it is purged.

Nothing here falls back to anything: a machine without ``/dev/fuse`` or without the package
gets :class:`StorageUnavailableError`, one line naming the cause and the fix.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from localcluster.processes import ManagedProcess, pid_alive

__all__ = [
    "RUN_DIR",
    "Dataset",
    "StorageUnavailableError",
    "ZfsPool",
    "preflight",
    "zfs",
    "zpool",
]

#: Machine-wide state of the shared zfs-fuse daemon (its pid, log and lock).
RUN_DIR: Final = Path("/run/arc-zfs-cache")
_FUSE_DEVICE: Final = Path("/dev/fuse")
_INSTALL_FIX: Final = "scripts/toolchain.sh zfs-fuse (as root; installs Debian's zfs-fuse)"
#: Sparse: quotas, not this size, bound each dataset; blocks are allocated as written.
DEFAULT_POOL_SIZE: Final = 64 * 2**30


class StorageUnavailableError(RuntimeError):
    """The real ZFS cannot run here; the message is one line: cause, then fix."""


def _binary(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/sbin:/usr/sbin")
    if found is None:
        raise StorageUnavailableError(
            f"{name} not found: zfs-fuse is not installed; fix: {_INSTALL_FIX}"
        )
    return found


def preflight() -> None:
    """Raise StorageUnavailableError unless zfs-fuse can run on this machine."""
    try:
        mode = _FUSE_DEVICE.stat().st_mode
    except OSError:
        mode = 0
    if not stat.S_ISCHR(mode):
        raise StorageUnavailableError(
            f"{_FUSE_DEVICE} is missing: zfs-fuse needs the FUSE device; fix: run on a host or "
            "container that has it (e.g. docker run --device /dev/fuse --cap-add SYS_ADMIN)"
        )
    for name in ("zfs-fuse", "zpool", "zfs"):
        _binary(name)
    if os.geteuid() != 0:
        raise StorageUnavailableError(
            "zfs-fuse needs root (it mounts datasets with FUSE); fix: run the e2e tier as root"
        )


def _run(tool: str, args: tuple[str, ...], check: bool) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [_binary(tool), *args], capture_output=True, text=True, check=False, timeout=120
    )
    if check and result.returncode != 0:
        raise subprocess.CalledProcessError(
            result.returncode, [tool, *args], result.stdout, result.stderr
        )
    return result


def zfs(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``zfs ARGS`` (CalledProcessError with zfs's message if ``check`` and it fails)."""
    return _run("zfs", args, check)


def zpool(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``zpool ARGS``."""
    return _run("zpool", args, check)


def _zpool_settled(*args: str, timeout: float = 20.0) -> None:
    """``zpool ARGS`` (export, destroy), retried: right after the processes that used the
    pool's datasets exit, zfs-fuse still refuses for a moment; past ``timeout`` the
    RuntimeError carries zpool's own message."""
    deadline = time.monotonic() + timeout
    while True:
        result = zpool(*args, check=False)
        if result.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"zpool {' '.join(args)}: {result.stderr.strip()}")
        time.sleep(0.2)


@dataclass(frozen=True, slots=True)
class Dataset:
    """One line of ``zfs list -t all``: a filesystem or a snapshot."""

    name: str
    type: str
    used: int
    origin: str | None


@contextlib.contextmanager
def _daemon_lock() -> Iterator[None]:
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    with (RUN_DIR / "zfs-fuse.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _daemon() -> ManagedProcess:
    # zfs-fuse's own --pidfile puts a marker in its command line, so a recycled pid is
    # never mistaken for it.
    pidfile = RUN_DIR / "zfs-fuse.pid"
    return ManagedProcess(
        name="zfs-fuse",
        argv=[_binary("zfs-fuse"), "--no-daemon", "--no-kstat-mount", "--pidfile", str(pidfile)],
        log_path=RUN_DIR / "zfs-fuse.log",
        pid_path=RUN_DIR / "zfs-fuse.json",
        marker=str(pidfile),
    )


def _daemon_answers() -> bool:
    return zpool("list", "-H", "-o", "name", check=False).returncode == 0


def _ensure_daemon() -> None:
    """Start the machine's zfs-fuse unless one answers already (call with the lock held)."""
    if _daemon_answers():
        return
    daemon = _daemon()
    if daemon.alive():
        daemon.stop()
    # Detached: the daemon serves every cluster on the machine, so it must not die with
    # the process that happened to start it.
    daemon.start(detached=True)
    deadline = time.monotonic() + 30
    while not _daemon_answers():
        if not daemon.alive() or time.monotonic() > deadline:
            raise StorageUnavailableError(
                f"zfs-fuse did not start (log {daemon.log_path}: "
                f"{daemon.log_tail(3).replace(chr(10), ' / ')}); fix: check that /dev/fuse works "
                "(modprobe fuse on the host)"
            )
        time.sleep(0.1)


def _release_daemon() -> None:
    """Stop the daemon this project started once no pool is left (call with the lock held)."""
    listed = zpool("list", "-H", "-o", "name", check=False)
    if listed.returncode == 0 and listed.stdout.strip():
        return
    _daemon().stop()


def _live_cluster(state_dir: Path) -> bool:
    """True while the local cluster of ``state_dir`` still has a running API server."""
    pidfile = state_dir / "run" / "kube-apiserver.pid"
    try:
        pid = int(json.loads(pidfile.read_text())["pid"])
    except (OSError, ValueError, KeyError):
        return False
    return pid_alive(pid)


class ZfsPool:
    """The pool ``name`` of the local cluster in ``state_dir`` (file ``zfs/<name>.img``)."""

    def __init__(self, state_dir: Path, name: str, size: int = DEFAULT_POOL_SIZE) -> None:
        self.state_dir = state_dir.resolve()
        self.name = name
        self.size = size
        self.image = self.state_dir / "zfs" / f"{name}.img"
        self.mountpoint = self.state_dir / "zfs" / "mnt"

    def _vdevs(self) -> list[str]:
        status = zpool("status", self.name, check=False).stdout
        return [line.split()[0] for line in status.splitlines() if line.strip().startswith("/")]

    def imported(self) -> bool:
        """True if the pool is imported in the running daemon."""
        return _daemon_answers() and zpool("list", "-H", self.name, check=False).returncode == 0

    def ensure(self) -> None:
        """Start zfs-fuse if needed, then import or create the pool."""
        preflight()
        with _daemon_lock():
            _ensure_daemon()
            if zpool("list", "-H", self.name, check=False).returncode == 0:
                vdevs = self._vdevs()
                if vdevs == [str(self.image)]:
                    return
                other = Path(vdevs[0]).parent.parent if vdevs else None
                if other is not None and _live_cluster(other):
                    raise StorageUnavailableError(
                        f"pool {self.name} is in use by the local cluster in {other}; fix: stop "
                        f"it (python -m localcluster --state-dir {other} down) or use another "
                        "storage.poolName"
                    )
                # Left imported by a cluster that died without stopping: its state is gone
                # or stale, and the name is needed now.
                zpool("destroy", "-f", self.name)
            self.mountpoint.mkdir(parents=True, exist_ok=True)
            if self.image.exists():
                zpool("import", "-d", str(self.image.parent), "-f", self.name)
                return
            with self.image.open("wb") as sparse:
                sparse.truncate(self.size)
            zpool(
                "create", "-f", "-m", str(self.mountpoint / self.name), self.name, str(self.image)
            )

    def export(self) -> None:
        """Unmount and export the pool (kept on disk for the next start)."""
        with _daemon_lock():
            if self.imported() and self._vdevs() == [str(self.image)]:
                _zpool_settled("export", "-f", self.name)
            _release_daemon()

    def destroy(self) -> None:
        """Destroy the pool and delete its file."""
        with _daemon_lock():
            if _daemon_answers() and zpool("list", "-H", self.name, check=False).returncode == 0:
                if self._vdevs() == [str(self.image)]:
                    _zpool_settled("destroy", "-f", self.name)
            elif self.image.exists() and _daemon_answers():
                # Exported earlier: import it only to destroy it, so nothing refers to it.
                zpool("import", "-d", str(self.image.parent), "-f", self.name, check=False)
                zpool("destroy", "-f", self.name, check=False)
            _release_daemon()
        self.image.unlink(missing_ok=True)

    def datasets(self) -> list[Dataset]:
        """Every filesystem and snapshot of the pool (its own root left out), as ``zfs list -t
        all`` shows them; read with ``zfs get -p`` because zfs-fuse's ``list`` has no ``-p``."""
        out = zfs(
            "get", "-H", "-p", "-r", "-o", "name,property,value", "type,used,origin", self.name
        )
        props: dict[str, dict[str, str]] = {}
        for line in out.stdout.splitlines():
            name, prop, value = line.split("\t")
            props.setdefault(name, {})[prop] = value
        return [
            Dataset(name, p["type"], int(p["used"]), None if p["origin"] == "-" else p["origin"])
            for name, p in props.items()
            if name != self.name
        ]

    def list_line(self) -> str:
        """The command that shows the pool's datasets (printed beside the kubectl line)."""
        return f"zfs list -t all -r -o name,used,origin {self.name}"
