"""The Lease that serialises a cache's promotions, resets and garbage collection.

Leases are advisory: the API server stores holder and times, and clients enforce expiry.
A holder renews every third of the lease duration while it works and checks, right before
every irreversible step, that it still holds the lease (a synchronous renewal with a
resourceVersion precondition). A holder that dies stops renewing; its lease expires after
the lease duration and the next promotion takes it over. Clocks are assumed to agree to well
within a lease duration (the same assumption Kubernetes leader election makes).

:class:`LeaseView` and :func:`lease_free` are pure; :class:`PromotionLease` does the API calls.
"""

from __future__ import annotations

import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from lightkube import ApiError
from lightkube.models.coordination_v1 import LeaseSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.coordination_v1 import Lease

from components.promotion.kube import ApiClient
from components.promotion.model import format_time

__all__ = [
    "LeaseError",
    "LeaseHeldError",
    "LeaseLostError",
    "LeaseView",
    "PromotionLease",
    "holder_identity",
    "lease_free",
]

#: Longest pause between two looks at a lease held by someone else.
_MAX_POLL: Final = 5.0
#: A write lost to a concurrent writer (409): look again at once.
_CONFLICT: Final = object()


def holder_identity() -> str:
    """``<host>/pid-<pid>/<random>``: names the process in errors, unique per attempt."""
    return f"{socket.gethostname()}/pid-{os.getpid()}/{uuid.uuid4().hex[:8]}"


def _micro_now() -> datetime:
    now = datetime.now(UTC)
    # metav1.MicroTime is parsed with a fixed 6-digit fraction, and lightkube leaves the
    # fraction out when it is zero: never send a whole second.
    return now.replace(microsecond=now.microsecond or 1)


@dataclass(frozen=True, slots=True)
class LeaseView:
    """What a Lease says about its holder."""

    holder: str | None
    duration_seconds: int | None
    acquired: datetime | None
    renewed: datetime | None
    transitions: int = 0

    @classmethod
    def of(cls, lease: Lease) -> LeaseView:
        """Read a lightkube Lease."""
        spec = lease.spec or LeaseSpec()
        return cls(
            holder=spec.holderIdentity or None,
            duration_seconds=spec.leaseDurationSeconds,
            acquired=spec.acquireTime,
            renewed=spec.renewTime,
            transitions=spec.leaseTransitions or 0,
        )

    @property
    def expires_at(self) -> datetime | None:
        """When the holder's claim lapses unless renewed (None if there is no usable claim)."""
        start = self.renewed or self.acquired
        if not self.holder or start is None or not self.duration_seconds:
            return None
        return start + timedelta(seconds=self.duration_seconds)


def lease_free(view: LeaseView, me: str, now: datetime) -> bool:
    """True if ``me`` may take (or keep) the lease at ``now``.

    Free when nobody holds it, ``me`` holds it, or the holder's claim expired. A holder with no
    times or duration cannot be judged and would block forever: such a lease counts as expired.
    """
    if not view.holder or view.holder == me:
        return True
    expiry = view.expires_at
    return expiry is None or expiry <= now


class LeaseError(RuntimeError):
    """The lease could not be taken or was lost."""


class LeaseHeldError(LeaseError):
    """Someone else holds the lease and kept renewing it for longer than we could wait."""

    def __init__(self, where: str, view: LeaseView, waited: float) -> None:
        self.holder = view.holder
        self.expires_at = view.expires_at
        expiry = format_time(view.expires_at) if view.expires_at else "unknown"
        renewed = format_time(view.renewed) if view.renewed else "never"
        super().__init__(
            f"promotion lease {where} is held by {view.holder} until {expiry} (last renewed "
            f"{renewed}); waited {waited:.0f}s. Another promotion, reset or collection of this "
            f"cache is running: let it finish and run `pulumi up` again. If that process is "
            f"gone, its lease expires by itself at {expiry}; re-run after that."
        )


class LeaseLostError(LeaseError):
    """We held the lease but can no longer prove it (renewals failed or someone took it)."""


class PromotionLease:
    """Take, renew and release one Lease (the lease port of :mod:`.port`):
    :meth:`acquire` before the work, :meth:`release` in a ``finally`` after it.

    ``client_factory`` builds a new API client: the renewal thread gets its own, so it never
    shares a connection with the work it protects.
    """

    def __init__(
        self,
        client_factory: Callable[[], ApiClient],
        namespace: str,
        name: str,
        *,
        duration_seconds: int,
        labels: dict[str, str],
        identity: str | None = None,
    ) -> None:
        self._factory = client_factory
        self._client = client_factory()
        self.namespace = namespace
        self.name = name
        self.duration = max(1, duration_seconds)
        self.labels = labels
        self.identity = identity or holder_identity()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._renewed_at = 0.0  # monotonic time of our last successful write
        self._lost: str | None = None

    @property
    def where(self) -> str:
        """``namespace/name``."""
        return f"{self.namespace}/{self.name}"

    # --- acquiring ------------------------------------------------------------------------

    def acquire(self, timeout: float) -> None:
        """Take the lease, waiting (with backoff, never past the holder's expiry) up to
        ``timeout`` seconds; raise LeaseHeldError naming the holder and its expiry."""
        began = time.monotonic()
        deadline = began + timeout
        delay = 0.2
        while True:
            view = self._try_take(self._client)
            if view is None:
                self._renewed_at = time.monotonic()
                self._start_renewing()
                return
            now = time.monotonic()
            if now >= deadline:
                raise LeaseHeldError(self.where, view, now - began)
            until_expiry = (
                (view.expires_at - datetime.now(UTC)).total_seconds() if view.expires_at else 0.0
            )
            pause = min(delay, max(0.05, until_expiry), deadline - now, _MAX_POLL)
            time.sleep(pause * random.uniform(0.8, 1.0))
            delay = min(delay * 1.6, _MAX_POLL)

    def _try_take(self, client: ApiClient) -> LeaseView | None:
        """Attempts until one is not lost to a concurrent writer: None if we now hold the
        lease, else the view of who holds it."""
        while True:
            taken = self._take_once(client)
            if taken is not _CONFLICT:
                return taken if isinstance(taken, LeaseView) else None

    def _take_once(self, client: ApiClient) -> LeaseView | object | None:
        now = _micro_now()
        try:
            lease = client.get(Lease, self.name, namespace=self.namespace)
        except ApiError as exc:
            if exc.status.code != 404:
                raise
            try:
                client.create(self._new_lease(now))
            except ApiError as create_exc:
                if create_exc.status.code == 409:  # someone created it first: look again
                    return _CONFLICT
                raise
            return None
        view = LeaseView.of(lease)
        if not lease_free(view, self.identity, now):
            return view
        spec = lease.spec or LeaseSpec()
        taking_over = spec.holderIdentity != self.identity
        spec.holderIdentity = self.identity
        spec.leaseDurationSeconds = self.duration
        spec.renewTime = now
        if taking_over:
            spec.acquireTime = now
            spec.leaseTransitions = (spec.leaseTransitions or 0) + 1
        lease.spec = spec
        try:
            # The resourceVersion read above is the precondition: two takers, one winner.
            client.replace(lease)
        except ApiError as exc:
            if exc.status.code == 409:
                return _CONFLICT
            raise
        return None

    def _new_lease(self, now: datetime) -> Lease:
        return Lease(
            metadata=ObjectMeta(name=self.name, namespace=self.namespace, labels=self.labels),
            spec=LeaseSpec(
                holderIdentity=self.identity,
                leaseDurationSeconds=self.duration,
                acquireTime=now,
                renewTime=now,
                leaseTransitions=0,
            ),
        )

    # --- holding ---------------------------------------------------------------------------

    def _renew(self, client: ApiClient) -> None:
        now = _micro_now()
        lease = client.get(Lease, self.name, namespace=self.namespace)
        spec = lease.spec or LeaseSpec()
        if spec.holderIdentity != self.identity:
            view = LeaseView.of(lease)
            raise LeaseLostError(
                f"promotion lease {self.where} was taken over by {view.holder} while this "
                f"process ({self.identity}) worked: it stalled for longer than the lease "
                f"duration ({self.duration}s). Nothing irreversible was done after that; "
                "run `pulumi up` again (a longer leaseDuration avoids this)"
            )
        spec.renewTime = now
        lease.spec = spec
        client.replace(lease)
        self._renewed_at = time.monotonic()

    def _start_renewing(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._renew_loop, name=f"lease-{self.name}", daemon=True
        )
        self._thread.start()

    def _renew_loop(self) -> None:
        client = self._factory()
        try:
            while not self._stop.wait(self.duration / 3):
                with self._lock:
                    if self._lost:
                        return
                    try:
                        self._renew(client)
                    except LeaseLostError as exc:
                        self._lost = str(exc)
                        return
                    except Exception as exc:  # transient API trouble: retry until expiry
                        if time.monotonic() - self._renewed_at >= self.duration:
                            self._lost = (
                                f"could not renew promotion lease {self.where} for "
                                f"{self.duration}s ({exc}); run `pulumi up` again"
                            )
                            return
        finally:
            client.close()

    def ensure_held(self) -> None:
        """Renew now and prove we still hold the lease; call before every irreversible step."""
        with self._lock:
            if self._lost:
                raise LeaseLostError(self._lost)
            try:
                self._renew(self._client)
            except ApiError as exc:
                if exc.status.code == 409:
                    # A concurrent write to the lease: only a taker writes, so re-check once.
                    self._renew(self._client)
                else:
                    raise

    def release(self) -> None:
        """Stop renewing and clear the holder (only if it is still us)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with self._lock:
            try:
                lease = self._client.get(Lease, self.name, namespace=self.namespace)
                spec = lease.spec or LeaseSpec()
                if spec.holderIdentity == self.identity:
                    spec.holderIdentity = None
                    spec.renewTime = None
                    spec.acquireTime = None
                    lease.spec = spec
                    self._client.replace(lease)
            except Exception:
                # Never fatal, and never allowed to mask the error that ended the work: an
                # unreleased lease expires by itself after its duration.
                pass
            finally:
                self._client.close()
