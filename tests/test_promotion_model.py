"""Unit tier: the model of promotion (pointer, names, references, objects read from JSON)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from components import constants as c
from components.promotion.model import (
    HISTORY_LENGTH,
    Claim,
    ConfigMapText,
    Inventory,
    PodUse,
    Pointer,
    PointerError,
    Snapshot,
    ZfsSnapshot,
    ZfsVolume,
    builder_index_of,
    builder_users,
    format_time,
    generation_of,
    parse_time,
    refers_to,
)

POINTER = Pointer(
    generation=3,
    parent_claim="gcc12-gen-3",
    builder_index=2,
    builder_claim="gcc12-work-2",
    promote_token="abc",
    promoted_at="2026-11-23T10:00:00Z",
    promote_history=("x", "abc"),
)
tokens = st.text(alphabet="abcdef0123456789-", min_size=1, max_size=12)


def test_names_are_deterministic() -> None:
    assert c.generation_name("gcc12", 4) == "gcc12-gen-4"
    assert c.source_snapshot_name("gcc12", 4) == "gcc12-gen-4-src"
    assert c.builder_volume_name("gcc12", 3) == "gcc12-work-3"
    assert c.promotion_pointer_name("gcc12") == c.promotion_lease_name("gcc12") == "gcc12-promotion"


@given(
    generation=st.integers(1, 10_000),
    index=st.integers(1, 10_000),
    promote=st.none() | tokens,
    reset=st.none() | tokens,
    history=st.lists(tokens, max_size=5),
)
def test_pointer_round_trips_through_config_map_data(
    generation: int, index: int, promote: str | None, reset: str | None, history: list[str]
) -> None:
    pointer = Pointer(
        generation=generation,
        parent_claim=c.generation_name("gcc12", generation),
        builder_index=index,
        builder_claim=c.builder_volume_name("gcc12", index),
        promote_token=promote,
        reset_token=reset,
        promoted_at="2026-11-23T10:00:00Z",
        promote_history=tuple(history),
        reset_history=tuple(reversed(history)),
    )
    data = pointer.to_data()
    assert all(isinstance(v, str) for v in data.values())
    assert Pointer.from_data("ns/gcc12-promotion", data) == pointer


@pytest.mark.parametrize(
    "data",
    [{}, {"generation": "x"}, {**POINTER.to_data(), "generation": "0"}, {"generation": "2"}],
)
def test_a_damaged_pointer_names_itself_and_the_fix(data: dict[str, str]) -> None:
    with pytest.raises(PointerError) as error:
        Pointer.from_data("arc-runners/gcc12-promotion", data)
    assert "arc-runners/gcc12-promotion is damaged" in str(error.value)
    assert "delete it to start the lineage again at generation 1" in str(error.value)


def test_promotion_moves_the_pointer_one_generation_and_remembers_the_token() -> None:
    when = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    new = POINTER.promoted("gcc12", "def", when)
    assert (new.generation, new.parent_claim, new.promote_token) == (4, "gcc12-gen-4", "def")
    assert new.promoted_at == "2026-11-23T12:00:00Z"
    assert new.promote_history == ("x", "abc", "def")
    assert new.builder_claim == POINTER.builder_claim
    reset = new.reset("gcc12", "r1")
    assert (reset.builder_index, reset.builder_claim, reset.reset_token) == (
        3,
        "gcc12-work-3",
        "r1",
    )
    assert reset.generation == 4


def test_token_history_is_bounded_and_keeps_the_latest_last() -> None:
    pointer = POINTER
    for i in range(HISTORY_LENGTH + 10):
        pointer = pointer.promoted("gcc12", f"t{i}", datetime.now(UTC))
    assert len(pointer.promote_history) == HISTORY_LENGTH
    assert pointer.promote_history[-1] == f"t{HISTORY_LENGTH + 9}"
    assert pointer.promote_applied("t59") and not pointer.promote_applied("t0")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: gcc12-gen-1\n", True),
        ('{"claimName":"gcc12-gen-1"}', True),
        ("name: gcc12-gen-12\n", False),
        ("name: gcc12-gen-1-src", False),
        ("name: xgcc12-gen-1", False),
        ("name: gcc12-gen-1.backup", False),
        ("", False),
    ],
)
def test_references_match_whole_object_names_only(text: str, expected: bool) -> None:
    assert refers_to(text, "gcc12-gen-1") is expected


def test_generation_and_builder_numbers() -> None:
    assert generation_of("gcc12-gen-7", {c.LABEL_GENERATION: "9"}) == 9
    assert generation_of("gcc12-gen-7", {}) == 7
    assert generation_of("gcc12-gen-7-src", {}) == 7
    assert generation_of("other", {}) is None
    assert builder_index_of("gcc12-work-3") == 3 and builder_index_of("gcc12-gen-3") is None


def test_time_stamps_round_trip_and_garbage_reads_as_missing() -> None:
    when = datetime(2026, 11, 23, 10, 0, 5, tzinfo=UTC)
    assert parse_time(format_time(when)) == when
    assert parse_time("not a time") is None and parse_time(None) is None
    assert parse_time("2026-11-23T10:00:05") == when  # naive means UTC


def test_builder_users_are_live_pods_naming_the_claim() -> None:
    pods = [
        PodUse("running", "Running", ("gcc12-work-2",)),
        PodUse("pending", "Pending", ("gcc12-work-2",)),
        PodUse("terminating", "Running", ("gcc12-work-2",), deleting=True),
        PodUse("done", "Succeeded", ("gcc12-work-2",)),
        PodUse("failed", "Failed", ("gcc12-work-2",)),
        PodUse("other", "Running", ("gcc12-work-1",)),
    ]
    assert builder_users(pods, "gcc12-work-2") == ["pending", "running", "terminating"]


def test_objects_are_read_from_api_json() -> None:
    claim = Claim.from_object(
        {
            "metadata": {"name": "j", "labels": {"a": "b"}, "deletionTimestamp": "x"},
            "spec": {
                "volumeName": "pvc-1",
                "storageClassName": "arc-zfs-parents",
                "dataSourceRef": {"kind": "PersistentVolumeClaim", "name": "gcc12-gen-3"},
                "resources": {"requests": {"storage": "10Gi"}},
            },
            "status": {"phase": "Bound"},
        }
    )
    assert claim.data_source == ("PersistentVolumeClaim", "gcc12-gen-3")
    assert (claim.storage, claim.storage_class, claim.deleting, claim.bound) == (
        "10Gi",
        "arc-zfs-parents",
        True,
        False,
    )
    snap = Snapshot.from_object(
        {
            "metadata": {"name": "gcc12-gen-4-src", "uid": "u1"},
            "spec": {"source": {"persistentVolumeClaimName": "gcc12-work-2"}},
            "status": {
                "readyToUse": True,
                "restoreSize": "10Gi",
                "boundVolumeSnapshotContentName": "snapcontent-u1",
                "error": {"message": "boom"},
            },
        }
    )
    assert (snap.source_claim, snap.ready, snap.restore_size, snap.error) == (
        "gcc12-work-2",
        True,
        "10Gi",
        "boom",
    )
    assert snap.zfs_snapshot_name({"snapcontent-u1": "pvc-9@snap-x"}) == "snap-x"
    assert snap.zfs_snapshot_name({}) == "snapshot-u1"
    pod = PodUse.from_object(
        {
            "metadata": {"name": "p"},
            "spec": {"volumes": [{"name": "a", "persistentVolumeClaim": {"claimName": "c1"}}]},
        }
    )
    assert pod.claims == ("c1",) and pod.live


def test_dependents_of_a_claim_cover_every_kind_of_reference() -> None:
    gen = Claim("gcc12-gen-3", phase="Bound", volume_name="pvc-g3")
    inventory = Inventory(
        claims=(
            gen,
            Claim("job-1-cache", data_source=("PersistentVolumeClaim", "gcc12-gen-3")),
            Claim("unrelated", data_source=("PersistentVolumeClaim", "gcc12-gen-30")),
        ),
        snapshots=(Snapshot("snap-of-gen", source_claim="gcc12-gen-3"),),
        pods=(PodUse("reader", "Running", ("gcc12-gen-3",)),),
        config_maps=(ConfigMapText("linux-hook-template", "name: gcc12-gen-3\n"),),
        zfs_volumes=(
            ZfsVolume("pvc-clone", source_volume="pvc-g3"),
            ZfsVolume("pvc-restored", snapname="pvc-g3@snapshot-1"),
            ZfsVolume("pvc-g3"),
        ),
        zfs_snapshots=(ZfsSnapshot("snapshot-1", volume="pvc-g3"),),
    )
    assert inventory.claim_dependents(gen) == [
        "PersistentVolumeClaim job-1-cache is cloned from it",
        "pod reader mounts it",
        "VolumeSnapshot snap-of-gen is a snapshot of it",
        "ConfigMap linux-hook-template refers to it",
        "ZFSVolume pvc-clone is a clone of its dataset pvc-g3",
        "ZFSVolume pvc-restored is a clone of its dataset pvc-g3",
        "ZFSSnapshot snapshot-1 is a snapshot of its dataset pvc-g3",
    ]


def test_dependents_of_a_snapshot_are_restores_and_clones_of_its_zfs_snapshot() -> None:
    snap = Snapshot("gcc12-gen-4-src", uid="u4", content_name="snapcontent-u4")
    inventory = Inventory(
        claims=(Claim("gcc12-gen-4", data_source=("VolumeSnapshot", "gcc12-gen-4-src")),),
        zfs_volumes=(ZfsVolume("pvc-g4", snapname="pvc-w2@snapshot-u4"),),
        snapshot_handles={"snapcontent-u4": "pvc-w2@snapshot-u4"},
    )
    assert inventory.snapshot_dependents(snap) == [
        "PersistentVolumeClaim gcc12-gen-4 is restored from it",
        "ZFSVolume pvc-g4 is a clone of its ZFS snapshot snapshot-u4",
    ]
    assert Inventory().snapshot_dependents(snap) == []
