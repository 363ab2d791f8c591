"""Unit tier: lease expiry logic (pure) and the error a blocked promotion reports."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from components.promotion.lease import LeaseHeldError, LeaseView, holder_identity, lease_free

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
ME = "ci-a/pid-1/aaaa"


def view(holder: str | None, renewed_ago: float | None, duration: int | None = 300) -> LeaseView:
    renewed = NOW - timedelta(seconds=renewed_ago) if renewed_ago is not None else None
    return LeaseView(holder=holder, duration_seconds=duration, acquired=None, renewed=renewed)


@pytest.mark.parametrize(
    ("lease", "free"),
    [
        (view(None, None), True),  # nobody
        (view("", 10), True),  # released
        (view(ME, 10), True),  # ours
        (view(ME, 10_000), True),  # ours, even if we let it lapse
        (view("ci-b/pid-2/bbbb", 10), False),  # held
        (view("ci-b/pid-2/bbbb", 299.9), False),  # held to the last moment
        (view("ci-b/pid-2/bbbb", 300), True),  # expired exactly now
        (view("ci-b/pid-2/bbbb", 3600), True),  # a dead holder's lease
        (view("ci-b/pid-2/bbbb", None), True),  # no times: cannot be judged, not a deadlock
        (view("ci-b/pid-2/bbbb", 10, duration=None), True),
    ],
)
def test_lease_is_free_when_unheld_ours_or_expired(lease: LeaseView, free: bool) -> None:
    assert lease_free(lease, ME, NOW) is free


def test_expiry_counts_from_the_last_renewal_else_the_acquisition() -> None:
    acquired = NOW - timedelta(minutes=10)
    lease = LeaseView("x", 300, acquired=acquired, renewed=None)
    assert lease.expires_at == acquired + timedelta(seconds=300)
    renewed = LeaseView("x", 300, acquired=acquired, renewed=NOW)
    assert renewed.expires_at == NOW + timedelta(seconds=300)
    assert LeaseView(None, 300, acquired, NOW).expires_at is None


def test_a_held_lease_error_names_holder_expiry_and_what_to_do() -> None:
    lease = view("ci-b/pid-2/bbbb", 60)
    message = str(LeaseHeldError("arc-runners/gcc12-promotion", lease, 42.4))
    assert "promotion lease arc-runners/gcc12-promotion is held by ci-b/pid-2/bbbb" in message
    assert "until 2026-11-23T12:04:00Z (last renewed 2026-11-23T11:59:00Z); waited 42s" in message
    assert "its lease expires by itself at 2026-11-23T12:04:00Z" in message


def test_holder_identity_names_host_and_process_and_is_unique() -> None:
    first, second = holder_identity(), holder_identity()
    assert re.fullmatch(r"[^/]+/pid-\d+/[0-9a-f]{8}", first)
    assert first != second
