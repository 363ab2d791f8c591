"""The ZFS driver double's Node service decisions (localcluster/zfs_csi/mounts.py), no I/O."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.constants import OPENEBS_NODE_TOPOLOGY_KEY
from localcluster.zfs_csi import registration_socket
from localcluster.zfs_csi.mounts import (
    OPENEBS_NODENAME_TOPOLOGY_KEY,
    Mount,
    PublishRefusedError,
    dataset_mounts,
    mounts_under,
    node_topology,
    parse_mountinfo,
    publish_needed,
)

STATE = "/tmp/state"
OWN = f"{STATE}/zfs/mnt/pool/pvc-1"
TARGET = f"{STATE}/node/kubelet/pods/u1/volumes/kubernetes.io~csi/pvc-1/mount"
MOUNTINFO = "\n".join(
    [
        "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw",
        f"209 27 0:128 / {STATE}/zfs/mnt/pool rw,relatime - fuse.zfs pool rw,allow_other",
        f"210 209 0:129 / {OWN} rw,relatime - fuse.zfs pool/pvc-1 rw,allow_other",
        f"300 22 0:129 / {TARGET} rw,relatime shared:5 - fuse.zfs pool/pvc-1 rw,allow_other",
        rf"301 22 0:50 / {STATE}/with\040space rw - tmpfs tmpfs rw",
        "garbage line",
    ]
)


def test_mountinfo_gives_point_source_and_type_with_escapes_undone() -> None:
    mounts = parse_mountinfo(MOUNTINFO)
    assert [m.point for m in mounts] == ["/", f"{STATE}/zfs/mnt/pool", OWN, TARGET,
                                         f"{STATE}/with space"]  # fmt: skip
    assert mounts[3] == Mount(point=TARGET, source="pool/pvc-1", fstype="fuse.zfs")


def test_mounts_under_are_deepest_first_and_exclude_lookalike_prefixes() -> None:
    mounts = [*parse_mountinfo(MOUNTINFO), Mount(f"{STATE}x/other", "x", "tmpfs")]
    assert mounts_under(mounts, Path(STATE)) == [
        f"{STATE}/with space",
        TARGET,
        OWN,
        f"{STATE}/zfs/mnt/pool",
    ]


def test_a_datasets_publications_leave_out_its_own_mountpoint() -> None:
    mounts = parse_mountinfo(MOUNTINFO)
    assert dataset_mounts(mounts, "pool/pvc-1", OWN) == [TARGET]
    assert dataset_mounts(mounts, "pool/pvc-2", f"{STATE}/zfs/mnt/pool/pvc-2") == []


def _needed(**overrides: object) -> bool:
    args: dict[str, object] = {
        "target": TARGET,
        "owner_node": "local-zfs-node",
        "node_id": "local-zfs-node",
        "ready": True,
        "shared": False,
        "current": [],
    }
    args.update(overrides)
    return publish_needed(**args)  # type: ignore[arg-type]


def test_publish_mounts_once_and_is_idempotent_on_the_same_target() -> None:
    assert _needed() is True
    assert _needed(current=[TARGET]) is False


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"target": ""}, "verifyMount: mount path missing in request"),
        ({"owner_node": "other"}, "verifyMount: volume is owned by different node"),
        ({"ready": False}, "verifyMount: volume is not ready to be mounted"),
        ({"current": ["/elsewhere"]}, "verifyMount: device already mounted at [/elsewhere]"),
    ],
)
def test_publish_refusals_are_upstreams(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(PublishRefusedError) as refused:
        _needed(**overrides)
    assert str(refused.value) == message


def test_a_shared_volume_may_be_mounted_at_a_second_target() -> None:
    assert _needed(shared=True, current=["/elsewhere"]) is True


def test_topology_is_every_label_plus_the_drivers_keys() -> None:
    labels = {"kubernetes.io/hostname": "n1", "kubernetes.io/os": "linux"}
    assert node_topology(labels, "n1") == {
        **labels,
        OPENEBS_NODE_TOPOLOGY_KEY: "n1",
        OPENEBS_NODENAME_TOPOLOGY_KEY: "n1",
    }
    # A node labelled with the key keeps its value (upstream: "if not labelled already").
    labelled = node_topology({OPENEBS_NODE_TOPOLOGY_KEY: "zone-a"}, "n1")
    assert labelled[OPENEBS_NODE_TOPOLOGY_KEY] == "zone-a"
    assert labelled[OPENEBS_NODENAME_TOPOLOGY_KEY] == "n1"


def test_the_registration_socket_is_in_the_registry_dir() -> None:
    registry = Path("/k/plugins_registry")
    assert registration_socket(registry).parent == registry
    assert registration_socket(registry).name.endswith("-reg.sock")
