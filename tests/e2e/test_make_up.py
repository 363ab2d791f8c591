"""The README's deploy command as a newcomer runs it: ``make up`` (local stack), again, ``make down``.

It runs in a copy of the checkout, so its control plane, state backend and stack are its own;
the copy shares this checkout's ``.venv`` and the toolchain cache. Variables that ``make test``
exports for the checkout (backend, passphrase, kubeconfig) are removed, so the copy's Makefile
chooses them as it does on a fresh machine. The one change to the copy: its ``storage.poolName``
names a pool of this process, since one zfs-fuse daemon serves every pool of the machine (a
developer's ``make up`` holds ``zfspv-pool``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from localcluster.__main__ import kubectl_line
from localcluster.processes import pid_alive
from localcluster.zfs_pool import ZfsPool, zpool

ROOT = Path(__file__).resolve().parents[2]
POOL = f"make-up-{os.getpid()}"
# Set by the Makefile of the checkout running the tests; the copy's Makefile sets its own.
_CHECKOUT_ENV = ("PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE", "KUBECONFIG", "STACK")
_MAKE_ENV = ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")


def _checkout_copy(destination: Path) -> Path:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    (destination / ".venv").symlink_to(ROOT / ".venv")
    stack = destination / "Pulumi.local.yaml"
    document = yaml.safe_load(stack.read_text())
    document["config"]["arc-zfs-cache:storage"]["poolName"] = POOL
    stack.write_text(yaml.safe_dump(document, sort_keys=False))
    return destination


def localcluster(checkout: Path, command: str) -> subprocess.CompletedProcess[str]:
    """``python -m localcluster <command>`` for the copy's control plane."""
    return subprocess.run(
        [
            str(ROOT / ".venv/bin/python"),
            "-m",
            "localcluster",
            "--state-dir",
            str(checkout / ".local-cluster"),
            command,
        ],
        cwd=checkout,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A copy of the checkout; whatever ``make up`` left running is stopped at the end."""
    # A short name: the kubelet's plugin registration socket under the copy's state dir must
    # fit a unix socket path (localcluster.node.MAX_SOCKET_PATH).
    copy = _checkout_copy(tmp_path_factory.mktemp("up"))
    yield copy
    localcluster(copy, "down")


def make(checkout: Path, target: str) -> subprocess.CompletedProcess[str]:
    """``make <target>`` in the copy, treating its ``.venv`` (this checkout's) as up to date."""
    env = {k: v for k, v in os.environ.items() if k not in _CHECKOUT_ENV + _MAKE_ENV}
    return subprocess.run(
        ["make", "--no-print-directory", "-o", ".venv/.deps", target],
        cwd=checkout,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_make_up_deploys_the_local_stack_then_make_down_stops_everything(
    checkout: Path,
) -> None:
    first = make(checkout, "up")
    assert first.returncode == 0, first.stdout + first.stderr
    kubeconfig = checkout / ".local-cluster" / "kubeconfig"
    line = kubectl_line(kubeconfig)
    assert line in first.stdout
    created = re.search(r"\+ (\d+) created", first.stdout)
    assert created is not None, first.stdout
    count = created[1]
    assert (checkout / ".state" / ".pulumi" / "stacks").is_dir()  # the copy's file:// backend

    # The printed line works and shows the system: the node Ready, the controller's and every
    # scale set's listener pod Running (make up waits for them), the scale sets and each
    # cache's parent + builder.
    shown = subprocess.run(line.split(), capture_output=True, text=True, timeout=60, check=False)
    assert shown.returncode == 0, shown.stderr
    rows = [row.split() for row in shown.stdout.splitlines()]
    assert ["node/local-zfs-node", "Ready"] in [row[:2] for row in rows]
    pods = {row[1]: row[3] for row in rows if len(row) > 3 and row[1].startswith("pod/")}
    listeners = {name: phase for name, phase in pods.items() if name.endswith("-listener")}
    scale_sets = yaml.safe_load((checkout / "Pulumi.local.yaml").read_text())["config"][
        "arc-zfs-cache:scaleSets"
    ]
    assert sorted(n.removeprefix("pod/").rsplit("-", 2)[0] for n in listeners) == sorted(scale_sets)
    assert set(listeners.values()) == {"Running"}, pods
    for name in listeners:
        assert f"listener pod {name.removeprefix('pod/')}: Running" in first.stdout
    assert [phase for name, phase in pods.items() if "gha-rs-controller" in name] == ["Running"]
    for name in (
        "local-linux",
        "local-gcc12",
        "local-gcc12-builder",
        "gcc12-gen-1",
        "gcc12-work-1",
        "clang17-gen-1",
        "clang17-work-1",
    ):
        assert name in shown.stdout, name

    # Beside it, the zfs list line; its datasets are the stack's generations and builder
    # volumes (one per PV; each builder volume a clone of its cache's generation 1).
    zfs_line = ZfsPool(checkout / ".local-cluster", POOL).list_line()
    assert zfs_line in first.stdout
    listed = subprocess.run(zfs_line.split(), capture_output=True, text=True, check=False)
    assert listed.returncode == 0, listed.stderr
    volumes = {
        name: pv
        for line in shown.stdout.splitlines()
        if line.startswith("arc-runners ") and "persistentvolumeclaim/" in line
        for name, pv in [(line.split()[1].split("/")[1], line.split()[3])]
    }
    datasets = {d.name: d for d in ZfsPool(checkout / ".local-cluster", POOL).datasets()}
    for cache in ("gcc12", "clang17"):
        gen1, work1 = volumes[f"{cache}-gen-1"], volumes[f"{cache}-work-1"]
        assert f"{POOL}/{gen1}" in listed.stdout and f"{POOL}/{work1}" in listed.stdout
        assert datasets[f"{POOL}/{work1}"].origin == f"{POOL}/{gen1}@{work1}"
    filesystems = {name for name, d in datasets.items() if d.type == "filesystem"}
    assert filesystems == {f"{POOL}/{pv}" for pv in volumes.values()}

    again = make(checkout, "up")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "local cluster already running" in again.stdout
    assert f"{count} unchanged" in again.stdout
    assert "created" not in again.stdout.split("Resources:")[-1]

    pids = [
        json.loads(p.read_text())["pid"] for p in (checkout / ".local-cluster/run").glob("*.pid")
    ]
    # etcd, kube-apiserver, kube-controller-manager, the driver, the sidecars, the controller
    assert len(pids) >= 7
    down = make(checkout, "down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert f"- {count} deleted" in down.stdout  # the stack is destroyed before the cluster stops
    assert [pid for pid in pids if pid_alive(pid)] == []
    status = localcluster(checkout, "status")
    assert status.returncode == 3  # nothing running
    # No pool left imported and nothing left mounted.
    assert zpool("list", POOL, check=False).returncode != 0
    mounts = Path("/proc/mounts").read_text().splitlines()
    assert [m for m in mounts if str(checkout) in m] == []
