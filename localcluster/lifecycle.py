"""One ``with`` protocol for the local cluster's parts that start and stop, and one way to
wait for a started process to become ready."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from types import TracebackType
from typing import Self

from localcluster.processes import ManagedProcess

__all__ = ["Started", "wait_until_ready"]


class Started(ABC):
    """A part with ``start()`` (returning itself) and ``stop()``: ``with part:`` runs it."""

    @abstractmethod
    def start(self) -> Self:
        """Start the part; return it."""

    @abstractmethod
    def stop(self) -> None:
        """Stop what ``start`` started."""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def wait_until_ready(
    proc: ManagedProcess,
    ready: Callable[[], bool],
    timeout: float,
    *,
    exited: Callable[[], Exception],
    not_ready: Callable[[], Exception],
) -> None:
    """Poll ``ready`` every 0.1 s for up to ``timeout`` seconds while ``proc`` runs.

    Raises ``exited()`` as soon as ``proc`` is found dead (before asking ``ready``), and
    ``not_ready()`` when the time is up; each caller builds its own error, because the
    message names its part and reads the log only when there is something to report.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise exited()
        if ready():
            return
        time.sleep(0.1)
    raise not_ready()
