"""Unit tests of the audit log reader (no API server)."""

from __future__ import annotations

import json
from pathlib import Path

from localcluster.audit import AuditEvent, AuditLog, AuditMark


def _audit_line(verb: str, user: str, uri: str, name: str, stamp: str) -> str:
    return json.dumps(
        {
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": "Metadata",
            "stage": "ResponseComplete",
            "requestURI": uri,
            "verb": verb,
            "user": {"username": user, "groups": ["system:masters"]},
            "userAgent": "test",
            "objectRef": {"resource": "configmaps", "namespace": "ns", "name": name},
            "responseStatus": {"code": 201},
            "stageTimestamp": stamp,
        }
    )


def test_mutating_requests_leave_out_reads_dry_runs_and_infrastructure(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    lines = [
        _audit_line(
            "create",
            "harness",
            "/api/v1/namespaces/ns/configmaps",
            "setup",
            "2026-01-01T00:00:00.1Z",
        ),
        _audit_line(
            "get", "admin", "/api/v1/namespaces/ns/configmaps/a", "a", "2026-01-01T00:00:01Z"
        ),
        _audit_line(
            "patch",
            "admin",
            "/api/v1/namespaces/ns/configmaps/a?dryRun=All",
            "a",
            "2026-01-01T00:00:02Z",
        ),
        _audit_line(
            "create", "admin", "/api/v1/namespaces/ns/configmaps", "b", "2026-01-01T00:00:03Z"
        ),
        _audit_line(
            "delete", "system:serviceaccount:kube-system:gc", "/x", "c", "2026-01-01T00:00:04Z"
        ),
    ]
    log.write_text("\n".join(lines) + "\n" + '{"kind": "Event", "verb": "crea')  # torn last line
    audit = AuditLog(log, infrastructure_users=["harness"])
    found = audit.mutating_requests()
    assert [(e.verb, e.name) for e in found] == [("create", "b")]
    assert [e.name for e in audit.mutating_requests(include_dry_run=True)] == ["a", "b"]
    assert found[0].describe() == "create configmaps ns/b by admin (201)"
    offset = len("\n".join(lines[:3])) + 1
    assert [e.name for e in audit.mutating_requests(AuditMark(offset))] == ["b"]
    since = AuditEvent.from_json(json.loads(lines[3])).timestamp
    assert [e.name for e in audit.requests(since, include_infrastructure=True)] == ["b", "c"]
