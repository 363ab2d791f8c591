"""localcluster.lifecycle.wait_until_ready: the one wait loop of the control plane, the node
and the storage; each caller keeps its own error type and message."""

from __future__ import annotations

from pathlib import Path

import pytest

from localcluster.lifecycle import wait_until_ready
from localcluster.processes import ManagedProcess


class ExitedError(Exception):
    """What the caller raises for a process that died."""


class NotReadyError(Exception):
    """What the caller raises when the time is up."""


def _process(tmp_path: Path) -> ManagedProcess:
    """A process never started: no pidfile, so not alive."""
    return ManagedProcess(
        name="server",
        argv=[],
        log_path=tmp_path / "server.log",
        pid_path=tmp_path / "server.pid",
        marker=str(tmp_path),
    )


def _running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ManagedProcess:
    proc = _process(tmp_path)
    monkeypatch.setattr(proc, "alive", lambda: True)
    return proc


def test_returns_once_ready_while_the_process_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = iter([False, False, True])
    asked = []

    def ready() -> bool:
        asked.append(True)
        return next(answers)

    wait_until_ready(
        _running(tmp_path, monkeypatch),
        ready,
        60.0,
        exited=ExitedError,
        not_ready=NotReadyError,
    )
    assert len(asked) == 3


def test_a_dead_process_raises_the_callers_exited_error_before_asking_ready(
    tmp_path: Path,
) -> None:
    asked = []

    def ready() -> bool:
        asked.append(True)
        return True

    with pytest.raises(ExitedError):
        wait_until_ready(
            _process(tmp_path), ready, 60.0, exited=ExitedError, not_ready=NotReadyError
        )
    assert asked == []


def test_a_never_ready_process_raises_the_callers_not_ready_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(NotReadyError):
        wait_until_ready(
            _running(tmp_path, monkeypatch),
            lambda: False,
            0.2,
            exited=ExitedError,
            not_ready=NotReadyError,
        )
