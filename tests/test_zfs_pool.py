"""The local cluster's ZFS pool refuses to run without its parts, in one line naming the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from localcluster import zfs_pool


def test_no_fuse_device_is_one_line_naming_cause_and_fix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(zfs_pool, "_FUSE_DEVICE", tmp_path / "fuse")
    with pytest.raises(zfs_pool.StorageUnavailableError) as caught:
        zfs_pool.preflight()
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{tmp_path / 'fuse'} is missing")
    assert "fix:" in message


def test_missing_zfs_fuse_names_the_toolchain_step(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zfs_pool, "_FUSE_DEVICE", Path("/dev/null"))  # a character device
    monkeypatch.setattr(zfs_pool.shutil, "which", lambda *_a, **_k: None)
    with pytest.raises(zfs_pool.StorageUnavailableError) as caught:
        zfs_pool.preflight()
    message = str(caught.value)
    assert "\n" not in message
    assert "zfs-fuse is not installed" in message
    assert "fix: scripts/toolchain.sh zfs-fuse" in message
