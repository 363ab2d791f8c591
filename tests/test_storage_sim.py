"""Unit tests of the storage simulator's pure rules (no API server)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from components.constants import OPENEBS_SOURCE_VOLUME_LABEL
from localcluster.audit import AuditEvent, AuditLog, AuditMark
from localcluster.storage_sim import World, consumer_node
from localcluster.zfs_model import (
    PERSISTENT_VOLUME_LABEL,
    DatasetGraph,
    QuantityError,
    ZfsDataset,
    clone_size_error,
    format_quantity,
    parse_quantity,
    pv_name,
    rounded_capacity,
    snapshot_content_name,
    snapshot_handle,
    zfs_snapshot_name,
)

GI = 1024**3
MI = 1024**2


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("10Gi", 10 * GI),
        ("10240Mi", 10 * GI),
        ("10737418240", 10 * GI),
        ("1.5Gi", 3 * GI // 2),
        ("1G", 10**9),
        ("500M", 500 * 10**6),
        ("1e3", 1000),
        ("100m", 1),  # rounded up to a whole byte, as the API server does
        (".5Ki", 512),
    ],
)
def test_parse_quantity(text: str, size: int) -> None:
    assert parse_quantity(text) == size


@pytest.mark.parametrize("text", ["10GB", "ten", "", "Gi", "1.2.3Gi"])
def test_parse_quantity_rejects_non_quantities(text: str) -> None:
    with pytest.raises(QuantityError):
        parse_quantity(text)


@given(st.integers(min_value=1, max_value=2**50))
def test_format_quantity_round_trips(size: int) -> None:
    assert parse_quantity(format_quantity(size)) == size


def test_format_quantity_is_canonical() -> None:
    assert format_quantity(10 * GI) == "10Gi"
    assert format_quantity(1536 * MI) == "1536Mi"
    assert format_quantity(1000) == "1000"


@pytest.mark.parametrize(
    ("requested", "provisioned"),
    [(GI, GI), (GI + 1, 2 * GI), (1536 * MI, 2 * GI), (100 * MI, 100 * MI), (MI + 1, 2 * MI)],
)
def test_rounded_capacity_follows_the_driver(requested: int, provisioned: int) -> None:
    assert rounded_capacity(requested) == provisioned


def test_clone_size_must_equal_the_source_capacity() -> None:
    assert clone_size_error("PersistentVolumeClaim", 10 * GI, 10 * GI) is None
    assert clone_size_error("PersistentVolumeClaim", 10240 * MI, 10 * GI) is None
    assert clone_size_error("PersistentVolumeClaim", 11 * GI, 10 * GI) == (
        "clone: volume size is not matching"
    )
    assert clone_size_error("VolumeSnapshot", 9 * GI, 10 * GI) == (
        "clone volume size is not matching"
    )
    # Bigger by a byte rounds up to the next GiB: refused too.
    assert clone_size_error("PersistentVolumeClaim", 10 * GI + 1, 10 * GI) is not None


def test_names_follow_the_upstream_components() -> None:
    assert pv_name("1234") == "pvc-1234"
    assert zfs_snapshot_name("abcd") == "snapshot-abcd"
    assert snapshot_content_name("abcd") == "snapcontent-abcd"
    assert snapshot_handle("pvc-1", "snapshot-2") == "pvc-1@snapshot-2"


def _zv(name: str, snapname: str | None = None, source: str | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {"kind": "ZFSVolume", "metadata": {"name": name}, "spec": {}}
    if snapname:
        obj["spec"]["snapname"] = snapname
    if source:
        obj["metadata"]["labels"] = {OPENEBS_SOURCE_VOLUME_LABEL: source}
    return obj


def _zs(name: str, volume: str) -> dict[str, Any]:
    return {
        "kind": "ZFSSnapshot",
        "metadata": {"name": name, "labels": {PERSISTENT_VOLUME_LABEL: volume}},
    }


def test_dependency_tracking_from_the_objects() -> None:
    objects = [
        _zv("parent"),
        _zv("clone", snapname="parent@clone", source="parent"),
        _zv("grandchild", snapname="clone@grandchild", source="clone"),
        _zs("snapshot-1", "clone"),
        _zv("restored", snapname="clone@snapshot-1"),
        _zv("lonely"),
    ]
    graph = DatasetGraph(ZfsDataset.from_object(o) for o in objects)
    assert graph.volume_dependents("parent") == ["ZFSVolume/clone"]
    # Every clone of one of its snapshots blocks a volume, with the snapshot itself.
    assert graph.volume_dependents("clone") == [
        "ZFSSnapshot/snapshot-1",
        "ZFSVolume/grandchild",
        "ZFSVolume/restored",
    ]
    assert graph.snapshot_dependents("snapshot-1") == ["ZFSVolume/restored"]
    assert graph.volume_dependents("lonely") == []
    assert graph.dependents("volume", "restored") == []
    # Once the restore is gone the snapshot, then the clone, can go.
    graph = DatasetGraph(
        ZfsDataset.from_object(o) for o in objects if o["metadata"]["name"] != "restored"
    )
    assert graph.snapshot_dependents("snapshot-1") == []


def test_a_clone_without_snapname_still_depends_on_its_labelled_source() -> None:
    graph = DatasetGraph(
        [ZfsDataset.from_object(_zv("parent")), ZfsDataset.from_object(_zv("c", source="parent"))]
    )
    assert graph.volume_dependents("parent") == ["ZFSVolume/c"]


def test_terminating_dependents_still_block() -> None:
    clone = _zv("clone", snapname="parent@clone")
    clone["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    graph = DatasetGraph(ZfsDataset.from_object(o) for o in (_zv("parent"), clone))
    assert graph.volume_dependents("parent") == ["ZFSVolume/clone"]


def _pod(
    name: str, node: str | None, volumes: list[dict[str, Any]], **extra: Any
) -> dict[str, Any]:
    spec: dict[str, Any] = {"volumes": volumes}
    if node:
        spec["nodeName"] = node
    return {"metadata": {"name": name, "namespace": "ns", **extra}, "spec": spec, "status": {}}


def test_consumer_node_finds_scheduled_users_of_a_claim() -> None:
    world = World(
        pods={
            ("ns", "a"): _pod(
                "a", None, [{"name": "v", "persistentVolumeClaim": {"claimName": "data"}}]
            ),
            ("ns", "b"): _pod(
                "b", "node-b", [{"name": "v", "persistentVolumeClaim": {"claimName": "data"}}]
            ),
            ("ns", "job"): _pod(
                "job", "node-j", [{"name": "cache", "ephemeral": {"volumeClaimTemplate": {}}}]
            ),
            ("ns", "gone"): _pod(
                "gone",
                "node-x",
                [{"name": "v", "persistentVolumeClaim": {"claimName": "other"}}],
                deletionTimestamp="2026-01-01T00:00:00Z",
            ),
        }
    )
    assert consumer_node(world, "ns", "data") == "node-b"
    assert consumer_node(world, "ns", "job-cache") == "node-j"
    assert consumer_node(world, "ns", "other") is None
    assert consumer_node(world, "elsewhere", "data") is None


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
