"""Unit tier: the lightkube adapter of the cluster port asks where the objects are."""

from __future__ import annotations

from typing import Any

from components.promotion.kube import ApiClient, KubeCluster


class RecordingClient:
    """Answers every LIST with nothing and remembers what was asked, and where."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str | None]] = []

    def list(self, resource: Any, *, namespace: str | None = None, **_: Any) -> list[Any]:
        self.asked.append((resource.__name__, namespace))
        return []

    def get(self, resource: Any, name: str, *, namespace: str | None = None) -> Any:
        self.asked.append((resource.__name__, namespace))
        return object()


def test_zfs_objects_are_read_in_the_storage_namespace() -> None:
    client = RecordingClient()
    cluster = KubeCluster(ApiClient(client), "arc-runners", "zfs-system")  # type: ignore[arg-type]
    cluster.inventory()
    assert cluster.zfs_volume_exists("pvc-1")
    asked = dict(client.asked)
    assert asked["ZFSVolume"] == "zfs-system" and asked["ZFSSnapshot"] == "zfs-system"
    assert asked["PersistentVolumeClaim"] == "arc-runners"
    assert asked["VolumeSnapshotContent"] is None  # cluster-scoped
