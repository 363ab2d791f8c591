"""Unit tier: the objects promotion creates are valid Kubernetes objects, labelled alike."""

from __future__ import annotations

import kubernetes_validate

from components import constants as c
from components.promotion import manifests
from components.promotion.model import Claim, Pointer, PromotionInputs, Snapshot

K8S_VERSION = "1.34.0"
INPUTS = PromotionInputs.from_props(
    {
        "namespace": "arc-runners",
        "cache": "gcc12",
        "size": "10Gi",
        "node": "zfs-1",
        "parent_storage_class": "arc-zfs-zfs-1",
        "snapshot_class": "arc-zfs-snapshots",
        "lease_seconds": 300,
        "grace_seconds": 900,
        "retention_seconds": 604800,
        "ready_timeout_seconds": 300,
        "promote": "abc",
        "reset_builder": "r1",
    }
)


def test_generation_restores_its_source_snapshot_at_the_restore_size() -> None:
    snap = Snapshot("gcc12-gen-2-src", restore_size="10737418240")
    body = manifests.generation(INPUTS, "gcc12-gen-2", "gcc12-gen-2-src", snap, 2)
    kubernetes_validate.validate(body, K8S_VERSION, strict=True)
    assert body["spec"]["dataSource"] == {
        "apiGroup": c.SNAPSHOT_API_GROUP,
        "kind": "VolumeSnapshot",
        "name": "gcc12-gen-2-src",
    }
    assert body["spec"]["resources"]["requests"]["storage"] == "10737418240"
    assert body["metadata"]["labels"] == manifests.parent_labels("gcc12", 2)
    assert body["metadata"]["annotations"] == {
        c.ANNOTATION_PROMOTE_TOKEN: "abc",
        c.ANNOTATION_SELECTED_NODE: "zfs-1",
    }


def test_builder_volume_clones_the_parent_in_its_class_at_its_size() -> None:
    parent = Claim("gcc12-gen-2", storage="10Gi", storage_class="arc-zfs-zfs-1")
    body = manifests.builder_volume(INPUTS, "gcc12-work-2", parent)
    kubernetes_validate.validate(body, K8S_VERSION, strict=True)
    assert body["spec"]["dataSource"] == {
        "apiGroup": "",
        "kind": "PersistentVolumeClaim",
        "name": "gcc12-gen-2",
    }
    assert body["spec"]["storageClassName"] == "arc-zfs-zfs-1"
    assert body["metadata"]["labels"][c.LABEL_ROLE] == c.ROLE_BUILDER_VOLUME
    assert body["metadata"]["annotations"][c.ANNOTATION_RESET_TOKEN] == "r1"


def test_pointer_config_map_carries_the_pointer_and_the_swap_precondition() -> None:
    pointer = Pointer(1, "gcc12-gen-1", 1, "gcc12-work-1")
    body = manifests.pointer_config_map("arc-runners", "gcc12", pointer, "42")
    kubernetes_validate.validate(body, K8S_VERSION, strict=True)
    assert body["metadata"]["resourceVersion"] == "42"
    assert Pointer.from_data("p", body["data"]) == pointer
    assert "resourceVersion" not in manifests.pointer_config_map("n", "gcc12", pointer)["metadata"]


def test_source_snapshot_names_the_builder_volume_and_the_token() -> None:
    body = manifests.source_snapshot(INPUTS, "gcc12-gen-2-src", "gcc12-work-1", 2)
    assert body["spec"] == {
        "volumeSnapshotClassName": "arc-zfs-snapshots",
        "source": {"persistentVolumeClaimName": "gcc12-work-1"},
    }
    assert body["metadata"]["labels"][c.LABEL_GENERATION] == "2"
    assert body["metadata"]["annotations"] == {c.ANNOTATION_PROMOTE_TOKEN: "abc"}
