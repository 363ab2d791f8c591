"""Unit tier: garbage-collection decisions (pure), including a property test of its safety."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components import constants as c
from components.promotion.gc import (
    Action,
    Decision,
    GcSettings,
    human_duration,
    pending,
    plan_gc,
)
from components.promotion.model import (
    Claim,
    ConfigMapText,
    Inventory,
    PodUse,
    Pointer,
    Snapshot,
    ZfsVolume,
    format_time,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SETTINGS = GcSettings(
    cache="gcc12",
    root_claim="gcc12-gen-1",
    stack_builder="gcc12-work-1",
    grace=timedelta(minutes=15),
    retention=timedelta(days=7),
    now=NOW,
)
POINTER = Pointer(
    generation=4, parent_claim="gcc12-gen-4", builder_index=2, builder_claim="gcc12-work-2"
)


def gen(n: int, *, superseded: timedelta | None = None, **extra: object) -> Claim:
    annotations = {}
    if superseded is not None:
        annotations[c.ANNOTATION_SUPERSEDED_AT] = format_time(NOW - superseded)
    return Claim(
        name=c.generation_name("gcc12", n),
        labels={c.LABEL_CACHE: "gcc12", c.LABEL_ROLE: c.ROLE_PARENT, c.LABEL_GENERATION: str(n)},
        annotations=annotations,
        phase="Bound",
        volume_name=f"pvc-g{n}",
        **extra,  # type: ignore[arg-type]
    )


def builder(m: int, *, retired: timedelta | None = None) -> Claim:
    annotations = {}
    if retired is not None:
        annotations[c.ANNOTATION_RETIRED_AT] = format_time(NOW - retired)
    return Claim(
        name=c.builder_volume_name("gcc12", m),
        labels={c.LABEL_CACHE: "gcc12", c.LABEL_ROLE: c.ROLE_BUILDER_VOLUME},
        annotations=annotations,
        phase="Bound",
        volume_name=f"pvc-w{m}",
    )


def source(n: int) -> Snapshot:
    return Snapshot(
        name=c.source_snapshot_name("gcc12", n),
        uid=f"u{n}",
        labels={
            c.LABEL_CACHE: "gcc12",
            c.LABEL_ROLE: c.ROLE_SOURCE_SNAPSHOT,
            c.LABEL_GENERATION: str(n),
        },
        source_claim="gcc12-work-1",
        ready=True,
    )


def decision(decisions: list[Decision], name: str) -> Decision:
    (found,) = [d for d in decisions if d.name == name]
    return found


def test_current_root_and_stack_builder_are_kept() -> None:
    decisions = plan_gc(
        Inventory(claims=(gen(1, superseded=timedelta(days=30)), gen(4), builder(1), builder(2))),
        POINTER,
        SETTINGS,
    )
    assert decision(decisions, "gcc12-gen-4").reasons == ("current parent (generation 4)",)
    assert decision(decisions, "gcc12-gen-1").reasons[0].startswith("root generation, owned by")
    assert decision(decisions, "gcc12-work-1").reasons[0].startswith("first builder volume")
    assert decision(decisions, "gcc12-work-2").reasons == ("current builder volume",)
    assert pending(decisions) == []


def test_superseded_generation_waits_out_the_grace_period() -> None:
    young = plan_gc(Inventory(claims=(gen(3, superseded=timedelta(minutes=5)),)), POINTER, SETTINGS)
    assert decision(young, "gcc12-gen-3").describe() == (
        "keep PersistentVolumeClaim gcc12-gen-3: superseded 5m ago, grace period 15m "
        "(collectable after 2026-11-23T12:10:00Z)"
    )
    old = plan_gc(Inventory(claims=(gen(3, superseded=timedelta(minutes=16)),)), POINTER, SETTINGS)
    assert decision(old, "gcc12-gen-3").action is Action.DELETE
    assert (
        decision(old, "gcc12-gen-3")
        .describe()
        .startswith("collect PersistentVolumeClaim gcc12-gen-3: superseded 16m ago")
    )


@pytest.mark.parametrize(
    ("inventory_extra", "reason"),
    [
        (
            {"config_maps": (ConfigMapText("linux-hook-template", "name: gcc12-gen-3"),)},
            "ConfigMap linux-hook-template refers to it",
        ),
        (
            {"pods": (PodUse("odd", "Running", ("gcc12-gen-3",)),)},
            "pod odd mounts it",
        ),
        (
            {"zfs_volumes": (ZfsVolume("pvc-job", source_volume="pvc-g3"),)},
            "ZFSVolume pvc-job is a clone of its dataset pvc-g3",
        ),
        (
            {"snapshots": (Snapshot("manual", source_claim="gcc12-gen-3"),)},
            "VolumeSnapshot manual is a snapshot of it",
        ),
    ],
)
def test_a_generation_anything_refers_to_is_kept(
    inventory_extra: dict[str, tuple[object, ...]], reason: str
) -> None:
    claims = (gen(3, superseded=timedelta(hours=1)),)
    decisions = plan_gc(Inventory(claims=claims, **inventory_extra), POINTER, SETTINGS)  # type: ignore[arg-type]
    assert decision(decisions, "gcc12-gen-3").action is Action.KEEP
    assert reason in decision(decisions, "gcc12-gen-3").reasons


def test_missing_stamps_are_stamped_not_collected() -> None:
    decisions = plan_gc(Inventory(claims=(gen(3), builder(3))), POINTER, SETTINGS)
    assert decision(decisions, "gcc12-gen-3").action is Action.STAMP_SUPERSEDED
    # builder 3 > current index 2: left by an unfinished reset, not a retired one.
    assert decision(decisions, "gcc12-work-3").action is Action.DELETE
    decisions = plan_gc(
        Inventory(claims=(builder(1),)),
        Pointer(generation=4, parent_claim="gcc12-gen-4", builder_index=3, builder_claim="x"),
        SETTINGS,
    )
    assert decision(decisions, "gcc12-work-1").action is Action.KEEP  # the stack's own


def test_leftovers_of_an_unfinished_promotion_are_removed_unless_something_depends() -> None:
    orphan = gen(5, data_source=("VolumeSnapshot", "gcc12-gen-5-src"))
    decisions = plan_gc(Inventory(claims=(orphan,), snapshots=(source(5),)), POINTER, SETTINGS)
    assert decision(decisions, "gcc12-gen-5").action is Action.DELETE
    # Its snapshot goes in a later round, once the claim restored from it is gone.
    assert decision(decisions, "gcc12-gen-5-src").action is Action.KEEP
    decisions = plan_gc(Inventory(snapshots=(source(5),)), POINTER, SETTINGS)
    assert decision(decisions, "gcc12-gen-5-src").action is Action.DELETE
    with_clone = Inventory(
        claims=(orphan, Claim("j", data_source=("PersistentVolumeClaim", "gcc12-gen-5"))),
    )
    assert decision(plan_gc(with_clone, POINTER, SETTINGS), "gcc12-gen-5").action is Action.KEEP


def test_source_snapshot_is_kept_while_a_dataset_is_a_clone_of_it() -> None:
    snap = Snapshot(
        name="gcc12-gen-3-src",
        uid="u3",
        labels=source(3).labels,
        content_name="snapcontent-u3",
    )
    inventory = Inventory(
        snapshots=(snap,),
        zfs_volumes=(ZfsVolume("pvc-g3", snapname="pvc-w1@snapshot-u3", deleting=True),),
        snapshot_handles={"snapcontent-u3": "pvc-w1@snapshot-u3"},
    )
    assert decision(plan_gc(inventory, POINTER, SETTINGS), "gcc12-gen-3-src").reasons == (
        "ZFSVolume pvc-g3 is a clone of its ZFS snapshot snapshot-u3",
    )


def test_retired_builder_waits_for_retention_and_for_its_dependents() -> None:
    young = builder(3, retired=timedelta(days=1))
    pointer = Pointer(generation=4, parent_claim="gcc12-gen-4", builder_index=4, builder_claim="w")
    decisions = plan_gc(Inventory(claims=(young,)), pointer, SETTINGS)
    assert "kept 7d for troubleshooting" in decision(decisions, "gcc12-work-3").reasons[0]
    old = builder(3, retired=timedelta(days=8))
    decisions = plan_gc(Inventory(claims=(old,)), pointer, SETTINGS)
    assert decision(decisions, "gcc12-work-3").action is Action.DELETE
    chained = Inventory(
        claims=(old,),
        snapshots=(Snapshot("gcc12-gen-4-src", source_claim="gcc12-work-3"),),
    )
    decisions = plan_gc(chained, pointer, SETTINGS)
    assert decision(decisions, "gcc12-work-3").reasons == (
        "VolumeSnapshot gcc12-gen-4-src is a snapshot of it",
    )


def test_objects_of_other_caches_are_not_considered() -> None:
    other = Claim(
        "clang17-gen-2",
        labels={c.LABEL_CACHE: "clang17", c.LABEL_ROLE: c.ROLE_PARENT},
        annotations={c.ANNOTATION_SUPERSEDED_AT: format_time(NOW - timedelta(days=9))},
    )
    assert plan_gc(Inventory(claims=(other,)), POINTER, SETTINGS) == []


@pytest.mark.parametrize(
    ("span", "text"),
    [
        (timedelta(0), "0s"),
        (timedelta(seconds=-5), "0s"),
        (timedelta(seconds=192), "3m12s"),
        (timedelta(hours=2), "2h"),
        (timedelta(days=7, minutes=1), "7d1m"),
    ],
)
def test_human_duration(span: timedelta, text: str) -> None:
    assert human_duration(span) == text


# --- safety as a property ---------------------------------------------------------------------

ages = st.none() | st.integers(0, 3 * 24 * 3600).map(lambda s: timedelta(seconds=s))


@st.composite
def worlds(draw: st.DrawFn) -> tuple[Inventory, Pointer]:
    current = draw(st.integers(1, 6))
    builder_index = draw(st.integers(1, 3))
    claims: list[Claim] = []
    extra: list[Claim] = []
    config_maps: list[ConfigMapText] = []
    zfs: list[ZfsVolume] = []
    for n in range(1, draw(st.integers(current, current + 2)) + 1):
        claims.append(gen(n, superseded=draw(ages)))
        if draw(st.booleans()):
            extra.append(Claim(f"job-{n}", data_source=("PersistentVolumeClaim", gen(n).name)))
        if draw(st.booleans()):
            config_maps.append(ConfigMapText(f"cm-{n}", f"name: {gen(n).name}"))
        if draw(st.booleans()):
            zfs.append(ZfsVolume(f"pvc-child-{n}", source_volume=f"pvc-g{n}"))
    for m in range(1, draw(st.integers(builder_index, builder_index + 1)) + 1):
        claims.append(builder(m, retired=draw(ages)))
    pointer = Pointer(
        generation=current,
        parent_claim=gen(current).name,
        builder_index=builder_index,
        builder_claim=c.builder_volume_name("gcc12", builder_index),
    )
    inventory = Inventory(
        claims=tuple(claims + extra), config_maps=tuple(config_maps), zfs_volumes=tuple(zfs)
    )
    return inventory, pointer


@settings(max_examples=300, deadline=None)
@given(world=worlds(), grace=st.integers(300, 7200), retention=st.integers(300, 10**6))
def test_collection_never_deletes_anything_in_use(
    world: tuple[Inventory, Pointer], grace: int, retention: int
) -> None:
    inventory, pointer = world
    rules = GcSettings(
        cache="gcc12",
        root_claim="gcc12-gen-1",
        stack_builder="gcc12-work-1",
        grace=timedelta(seconds=grace),
        retention=timedelta(seconds=retention),
        now=NOW,
    )
    for d in plan_gc(inventory, pointer, rules):
        if d.action is not Action.DELETE:
            assert d.reasons, d
            continue
        claim = inventory.claim(d.name)
        assert claim is not None
        assert d.name not in (pointer.parent_claim, pointer.builder_claim)
        assert d.name not in (rules.root_claim, rules.stack_builder)
        assert inventory.claim_dependents(claim) == [], d
        stamp = claim.annotations.get(c.ANNOTATION_SUPERSEDED_AT) or claim.annotations.get(
            c.ANNOTATION_RETIRED_AT
        )
        if "unfinished" in d.reasons[0]:
            continue  # left by an interrupted run: never current, never referenced
        assert stamp is not None
        age = NOW - datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        assert age > (rules.grace if d.name.startswith("gcc12-gen-") else rules.retention)
