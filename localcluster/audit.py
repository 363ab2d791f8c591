"""Reading the local API server's audit log: who changed what, and when.

The control plane writes every request at level Metadata (JSON lines) to one file. Tests
use :meth:`AuditLog.mutating_requests` to prove, for example, that ``pulumi preview`` made
no mutating call: infrastructure identities (the test harness, the storage components, the
stand-ins, the API server itself, kube-controller-manager) are excluded, so what is left is
what the code under test did.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

__all__ = ["MUTATING_VERBS", "AuditEvent", "AuditLog", "AuditMark"]

#: Verbs that change state (reads are get/list/watch).
MUTATING_VERBS: Final = frozenset({"create", "update", "patch", "delete", "deletecollection"})
#: Name prefix of the objects the harness looks up to flush the log (see AuditLog.sync).
_SYNC_PREFIX: Final = "arc-audit-sync-"


@dataclass(frozen=True, slots=True)
class AuditMark:
    """A position in the audit log: events after it are the ones that happened later."""

    offset: int


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One request as the API server recorded it."""

    verb: str
    user: str
    groups: tuple[str, ...]
    user_agent: str
    request_uri: str
    resource: str | None
    subresource: str | None
    api_group: str | None
    namespace: str | None
    name: str | None
    status_code: int | None
    timestamp: datetime
    dry_run: bool

    @classmethod
    def from_json(cls, event: dict[str, Any]) -> AuditEvent:
        """Build from one decoded line of the log (an ``audit.k8s.io/v1`` Event)."""
        ref = event.get("objectRef") or {}
        user = event.get("user") or {}
        uri = event.get("requestURI", "")
        stamp: str = event.get("stageTimestamp") or event.get("requestReceivedTimestamp") or ""
        return cls(
            verb=event.get("verb", ""),
            user=user.get("username", ""),
            groups=tuple(user.get("groups") or ()),
            user_agent=event.get("userAgent", ""),
            request_uri=uri,
            resource=ref.get("resource"),
            subresource=ref.get("subresource"),
            api_group=ref.get("apiGroup"),
            namespace=ref.get("namespace"),
            name=ref.get("name"),
            status_code=(event.get("responseStatus") or {}).get("code"),
            timestamp=datetime.fromisoformat(stamp.replace("Z", "+00:00")),  # raises if absent
            dry_run="dryRun=" in uri,
        )

    @property
    def mutating(self) -> bool:
        """True for create/update/patch/delete/deletecollection."""
        return self.verb in MUTATING_VERBS

    def describe(self) -> str:
        """One line for assertion messages: ``patch configmaps ns/name by user (200)``."""
        target = "/".join(p for p in (self.namespace, self.name) if p)
        sub = f"/{self.subresource}" if self.subresource else ""
        dry = " [dry-run]" if self.dry_run else ""
        return f"{self.verb} {self.resource}{sub} {target} by {self.user} ({self.status_code}){dry}"


class AuditLog:
    """The audit log file of one control plane.

    ``infrastructure_users`` are the identities whose requests are not the code under
    test's (harness, storage, stand-ins, API server, controller manager). ``sync`` is a callable
    that makes one request as the harness for a unique object name; :meth:`flush` uses it
    so that every request completed before the call is in the file when it returns.
    """

    def __init__(
        self,
        path: Path,
        infrastructure_users: Iterable[str],
        sync: Callable[[str], None] | None = None,
    ) -> None:
        self.path = path
        self.infrastructure_users = frozenset(infrastructure_users)
        self._sync = sync

    def _is_infrastructure(self, user: str) -> bool:
        # kube-controller-manager may act through per-controller service accounts.
        return user in self.infrastructure_users or user.startswith(
            "system:serviceaccount:kube-system:"
        )

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until the requests completed so far are written to the log.

        The API server writes an event when a request completes, concurrently with the
        response; a unique marker request, written after ours, proves ours are there.
        """
        if self._sync is None:
            return
        marker = _SYNC_PREFIX + uuid.uuid4().hex[:12]
        start = self.path.stat().st_size if self.path.exists() else 0
        self._sync(marker)
        deadline = time.monotonic() + timeout
        needle = marker.encode()
        while time.monotonic() < deadline:
            if self.path.exists():
                # Only what was written after the marker request started can hold it.
                with self.path.open("rb") as handle:
                    handle.seek(start)
                    if needle in handle.read():
                        return
            time.sleep(0.02)
        raise TimeoutError(f"audit marker {marker} did not reach {self.path} in {timeout}s")

    def mark(self) -> AuditMark:
        """The current end of the log (after a :meth:`flush`)."""
        self.flush()
        return AuditMark(self.path.stat().st_size if self.path.exists() else 0)

    def events(self, since: AuditMark | datetime | None = None) -> Iterator[AuditEvent]:
        """Events after ``since`` (a mark, or a timezone-aware time), oldest first."""
        if not self.path.exists():
            return
        with self.path.open("rb") as handle:
            if isinstance(since, AuditMark):
                handle.seek(since.offset)
            for raw in handle:
                line = raw.strip()
                if not line:
                    continue
                try:
                    event = AuditEvent.from_json(json.loads(line))
                except (ValueError, KeyError, AttributeError):
                    continue  # a line being written right now
                if isinstance(since, datetime) and event.timestamp < since:
                    continue
                if event.name and event.name.startswith(_SYNC_PREFIX):
                    continue
                yield event

    def requests(
        self, since: AuditMark | datetime | None = None, *, include_infrastructure: bool = False
    ) -> list[AuditEvent]:
        """All requests after ``since``, by default without the infrastructure identities."""
        self.flush()
        return [
            e
            for e in self.events(since)
            if include_infrastructure or not self._is_infrastructure(e.user)
        ]

    def mutating_requests(
        self, since: AuditMark | datetime | None = None, *, include_dry_run: bool = False
    ) -> list[AuditEvent]:
        """Create/update/patch/delete/deletecollection requests after ``since``.

        Requests of the infrastructure identities are left out; so are server-side
        dry-run requests (``pulumi preview`` sends those, and they change nothing)
        unless ``include_dry_run``. Failed attempts are kept: an attempt to mutate is
        what a "no mutating request" assertion is about.
        """
        return [
            e for e in self.requests(since) if e.mutating and (include_dry_run or not e.dry_run)
        ]
