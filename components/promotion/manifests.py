"""The objects of a cache's lineage, as the JSON the API server takes (pure).

Promotion's steps create the later generations, their source snapshots, the builder volumes
and the pointer from these; :class:`components.build_cache.BuildCache` labels generation 1
and builder volume 1 and imports an existing dataset with the same functions, so an object
the stack made and one promotion made carry the same labels.
"""

from __future__ import annotations

from typing import Any

from components import constants as c
from components.promotion.model import Claim, Pointer, PromotionInputs, Snapshot

__all__ = [
    "builder_labels",
    "builder_volume",
    "common_labels",
    "generation",
    "imported_zfs_volume",
    "parent_labels",
    "pointer_config_map",
    "source_snapshot",
]

JsonDict = dict[str, Any]


def common_labels(cache: str, role: str) -> dict[str, str]:
    """Labels of every object of a cache's lineage (the program's standard set, the cache and
    the object's role)."""
    return {
        c.LABEL_MANAGED_BY: c.MANAGED_BY,
        c.LABEL_PART_OF: c.PART_OF,
        c.LABEL_CACHE: cache,
        c.LABEL_ROLE: role,
    }


def parent_labels(cache: str, generation: int) -> dict[str, str]:
    """Labels of generation ``generation``'s parent claim."""
    return {**common_labels(cache, c.ROLE_PARENT), c.LABEL_GENERATION: str(generation)}


def builder_labels(cache: str) -> dict[str, str]:
    """Labels of a builder volume."""
    return common_labels(cache, c.ROLE_BUILDER_VOLUME)


def source_snapshot(inputs: PromotionInputs, name: str, builder: str, gen: int) -> JsonDict:
    """The VolumeSnapshot of builder volume ``builder`` that generation ``gen`` is made from."""
    labels = {**common_labels(inputs.cache, c.ROLE_SOURCE_SNAPSHOT), c.LABEL_GENERATION: str(gen)}
    return {
        "apiVersion": f"{c.SNAPSHOT_API_GROUP}/{c.SNAPSHOT_API_VERSION}",
        "kind": "VolumeSnapshot",
        "metadata": {
            "name": name,
            "namespace": inputs.namespace,
            "labels": labels,
            "annotations": {c.ANNOTATION_PROMOTE_TOKEN: inputs.promote or ""},
        },
        "spec": {
            "volumeSnapshotClassName": inputs.snapshot_class,
            "source": {"persistentVolumeClaimName": builder},
        },
    }


def generation(
    inputs: PromotionInputs, name: str, snap_name: str, snapshot: Snapshot, gen: int
) -> JsonDict:
    """Parent claim ``name`` of generation ``gen``, restored from source snapshot
    ``snap_name``."""
    return _claim(
        inputs,
        name,
        labels=parent_labels(inputs.cache, gen),
        # The node's class places it by allowedTopologies; the selected-node annotation also
        # gets it provisioned by a WaitForFirstConsumer class (nobody ever mounts it).
        token=(c.ANNOTATION_PROMOTE_TOKEN, inputs.promote),
        storage_class=inputs.parent_storage_class,
        source=(c.SNAPSHOT_API_GROUP, "VolumeSnapshot", snap_name),
        # OpenEBS ZFS restores only at exactly the snapshot's size.
        size=snapshot.restore_size or inputs.size,
    )


def builder_volume(inputs: PromotionInputs, name: str, parent: Claim) -> JsonDict:
    """Builder volume ``name``: a clone of the current parent ``parent``."""
    return _claim(
        inputs,
        name,
        labels=builder_labels(inputs.cache),
        token=(c.ANNOTATION_RESET_TOKEN, inputs.reset_builder),
        # A PVC clone must be in its source's StorageClass (CSI external-provisioner) and
        # request exactly its size (OpenEBS ZFS).
        storage_class=parent.storage_class or inputs.parent_storage_class,
        source=("", "PersistentVolumeClaim", parent.name),
        size=parent.storage or inputs.size,
    )


def _claim(
    inputs: PromotionInputs,
    name: str,
    *,
    labels: dict[str, str],
    token: tuple[str, str | None],
    storage_class: str,
    source: tuple[str, str, str],
    size: str,
) -> JsonDict:
    """A claim on the cache's node, cloned or restored from ``source`` (apiGroup, kind,
    name), annotated with the token that made it (a re-run adopts it only for that token)."""
    api_group, kind, source_name = source
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": name,
            "namespace": inputs.namespace,
            "labels": labels,
            "annotations": {token[0]: token[1] or "", c.ANNOTATION_SELECTED_NODE: inputs.node},
        },
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": storage_class,
            "dataSource": {"apiGroup": api_group, "kind": kind, "name": source_name},
            "resources": {"requests": {"storage": size}},
        },
    }


def pointer_config_map(
    namespace: str, cache: str, pointer: Pointer, resource_version: str | None = None
) -> JsonDict:
    """The pointer ConfigMap; with ``resource_version``, the body of a compare-and-swap."""
    metadata: JsonDict = {
        "name": c.promotion_pointer_name(cache),
        "namespace": namespace,
        "labels": common_labels(cache, c.ROLE_POINTER),
    }
    if resource_version is not None:
        metadata["resourceVersion"] = resource_version
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata,
        "data": pointer.to_data(),
    }


def imported_zfs_volume(*, pool: str, capacity: str, node: str) -> JsonDict:
    """The ``spec`` and ``status`` of the ZFSVolume that imports an existing dataset of pool
    ``pool`` on ``node`` (OpenEBS then treats it as a volume it provisioned); ``capacity`` in
    bytes, as OpenEBS writes it."""
    return {
        "spec": {
            "capacity": capacity,
            "ownerNodeID": node,
            "poolName": pool,
            "volumeType": "DATASET",
            "fsType": "zfs",
        },
        "status": {"state": "Ready"},
    }
