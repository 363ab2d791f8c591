"""Starting and stopping the local cluster's processes, with pidfiles another process can use.

Every process gets its own session (so a Ctrl-C aimed at the test runner does not kill it
halfway through a clean stop) and, when owned by the starting process, a parent-death
signal (so a test runner killed with SIGKILL does not leave servers behind).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ManagedProcess",
    "free_port",
    "pid_alive",
    "port_free",
    "stop_pid",
]

_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_free(port: int) -> bool:
    """True if ``port`` can be bound on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def pid_alive(pid: int) -> bool:
    """True if ``pid`` is a live (not zombie) process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # The state letter follows the parenthesised command name.
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def stop_pid(pid: int, marker: str, timeout: float = 15.0) -> bool:
    """Terminate ``pid`` (then kill it) if its command line still contains ``marker``.

    The marker (the state directory) guards against a recycled pid. Returns True if the
    process is gone afterwards.
    """
    if not pid_alive(pid):
        return True
    if marker not in _cmdline(pid):
        return True  # the pid now belongs to someone else: ours is long gone
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap it if it is our child
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    for _ in range(100):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    return not pid_alive(pid)


def _die_with_parent() -> Callable[[], None]:
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)

    def preexec() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    return preexec


@dataclass
class ManagedProcess:
    """One server process: its command, log file and pidfile."""

    name: str
    argv: Sequence[str]
    log_path: Path
    pid_path: Path
    marker: str
    env: dict[str, str] | None = None
    cwd: Path | None = None
    popen: subprocess.Popen[bytes] | None = None

    def start(self, *, detached: bool) -> None:
        """Start it; ``detached`` processes outlive this one (``python -m localcluster up``)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.pid_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                list(self.argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=self.env,
                cwd=self.cwd,
                preexec_fn=None if detached else _die_with_parent(),  # noqa: PLW1509
            )
        self.pid_path.write_text(
            json.dumps({"pid": self.popen.pid, "argv": list(self.argv)}) + "\n"
        )

    @property
    def pid(self) -> int | None:
        """Pid from this object or, for a process started elsewhere, from the pidfile."""
        if self.popen is not None:
            return self.popen.pid
        try:
            pid: int = json.loads(self.pid_path.read_text())["pid"]
        except (OSError, ValueError, KeyError):
            return None
        return pid

    def alive(self) -> bool:
        """True while the process runs."""
        if self.popen is not None:
            return self.popen.poll() is None
        pid = self.pid
        return pid is not None and pid_alive(pid) and self.marker in _cmdline(pid)

    def stop(self, timeout: float = 15.0) -> bool:
        """Terminate, wait, kill; remove the pidfile. True if nothing is left running."""
        gone = True
        if self.popen is not None:
            if self.popen.poll() is None:
                self.popen.terminate()
                try:
                    self.popen.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.popen.kill()
                    self.popen.wait(10)
            gone = self.popen.poll() is not None
        else:
            pid = self.pid
            if pid is not None:
                gone = stop_pid(pid, self.marker, timeout)
        if gone:
            self.pid_path.unlink(missing_ok=True)
        return gone

    def log_tail(self, lines: int = 30) -> str:
        """The end of the process's log, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])
