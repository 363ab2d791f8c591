"""The cluster as promotion's steps see it: a small port, its errors, and time.

:mod:`.steps` is written against these protocols only. :mod:`.kube` implements
:class:`ClusterPort` over lightkube and :mod:`.lease` implements :class:`LeasePort` with a
coordination Lease; the unit tests implement both in memory. Every write is idempotent
(create tolerates "already exists", delete tolerates "not found") so every step can be
repeated after a crash. Pure: no API client here.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final, Protocol, TypeVar

from components.promotion.model import Claim, Inventory, PodUse, Pointer, Snapshot

__all__ = [
    "SYSTEM_CLOCK",
    "Clock",
    "ClusterPort",
    "LeasePort",
    "PointerConflictError",
    "SystemClock",
    "WaitTimeoutError",
    "wait_for",
]

T = TypeVar("T")
JsonDict = dict[str, Any]

#: Longest pause between two looks while waiting.
_MAX_BACKOFF: Final = 5.0


class PointerConflictError(RuntimeError):
    """The pointer changed between our read and our compare-and-swap."""


class WaitTimeoutError(TimeoutError):
    """A wait ran out of time; the message says what was awaited and what was seen last."""


class ClusterPort(Protocol):
    """One namespace of one cluster (and OpenEBS's objects), as promotion sees it."""

    def read_pointer(self, cache: str) -> tuple[Pointer, str] | None:
        """The pointer and its resourceVersion, or None if there is none."""

    def create_pointer(self, cache: str, pointer: Pointer) -> bool:
        """Create the pointer; False if it already exists (someone else was first)."""

    def swap_pointer(self, cache: str, new: Pointer, version: str) -> str:
        """Replace the pointer only if it is still at ``version``; return the new version or
        raise PointerConflictError."""

    def delete_pointer(self, cache: str) -> None:
        """Delete the pointer (gone already is fine)."""

    def delete_lease(self, cache: str) -> None:
        """Delete the cache's promotion Lease (gone already is fine)."""

    def claim(self, name: str) -> Claim | None:
        """One PVC of the namespace."""

    def snapshot(self, name: str) -> Snapshot | None:
        """One VolumeSnapshot of the namespace."""

    def pods(self) -> list[PodUse]:
        """Every pod of the namespace."""

    def events_about(self, name: str) -> list[str]:
        """Warning events about object ``name`` (newest last), for error messages."""

    def inventory(self) -> Inventory:
        """Everything that can refer to or depend on a claim of this namespace."""

    def zfs_volume_exists(self, name: str) -> bool:
        """True if ZFSVolume ``name`` still exists (its dataset is not destroyed yet)."""

    def create_claim(self, body: JsonDict) -> bool:
        """Create a PVC; False if it already exists."""

    def create_snapshot(self, body: JsonDict) -> bool:
        """Create a VolumeSnapshot; False if it already exists."""

    def annotate_claim(self, name: str, annotations: Mapping[str, str]) -> None:
        """Merge ``annotations`` into a PVC's metadata."""

    def delete_claim(self, name: str) -> None:
        """Delete a PVC (gone already is fine)."""

    def delete_snapshot(self, name: str) -> None:
        """Delete a VolumeSnapshot (gone already is fine)."""


class LeasePort(Protocol):
    """The lease that serialises one cache's promotions, resets and collections."""

    def acquire(self, timeout: float) -> None:
        """Take the lease, waiting up to ``timeout`` seconds for another holder."""

    def ensure_held(self) -> None:
        """Prove we still hold the lease; called right before every irreversible step."""

    def release(self) -> None:
        """Give the lease up (never raises)."""


class Clock(Protocol):
    """Wall time for stamps, monotonic time and sleep for waits."""

    def now(self) -> datetime:
        """The current time (UTC)."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back."""

    def sleep(self, seconds: float) -> None:
        """Pause."""


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        """``datetime.now(UTC)``."""
        return datetime.now(UTC)

    def monotonic(self) -> float:
        """``time.monotonic()``."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        """``time.sleep``."""
        time.sleep(seconds)


SYSTEM_CLOCK: Final = SystemClock()


def wait_for(
    probe: Callable[[], T | None],
    timeout: float,
    on_timeout: Callable[[], str],
    clock: Clock = SYSTEM_CLOCK,
) -> T:
    """Call ``probe`` with exponential backoff (0.1 s growing to 5 s, jittered) until it
    returns something other than None, for at most ``timeout`` seconds; then raise
    WaitTimeoutError with ``on_timeout()`` as the message."""
    deadline = clock.monotonic() + timeout
    delay = 0.1
    while True:
        value = probe()
        if value is not None:
            return value
        remaining = deadline - clock.monotonic()
        if remaining <= 0:
            raise WaitTimeoutError(on_timeout())
        clock.sleep(min(delay * random.uniform(0.7, 1.0), remaining))
        delay = min(delay * 1.6, _MAX_BACKOFF)
