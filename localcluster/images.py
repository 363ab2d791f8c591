"""Stand-in container images for the local node, built here from Debian's ``busybox-static``.

No container registry is reachable from the machines the e2e tier runs on, so every image a
pod of the local stack names is built locally as an OCI image archive and imported into the
node's containerd (``ctr -n k8s.io images import``) under the exact reference the program
renders; the pods use ``imagePullPolicy: IfNotPresent`` (the default for a tagged image) and
never pull. EVERY image here is a STAND-IN: one busybox layer plus a few scripts, nothing of
the upstream image's software. What each stands in for:

* ``RUNNER_IMAGE`` (``components.constants``): the runner. ``/home/runner/run.sh`` waits for
  SIGTERM (no GitHub to register with); ``/home/runner/k8s/index.js`` and
  ``/home/runner/k8s-novolume/index.js`` exist as markers only: the hook itself is the test
  double :mod:`localcluster.hook_double`, run from the runner pod's view. uid 1001, gid 123.
* the ARC controller image (the chart's ``image.repository:tag``): ``/manager`` (the
  Deployment's entrypoint) and ``/ghalistener`` (the listener pod's command) wait for SIGTERM;
  the controller's work is done by the test double :mod:`localcluster.arc_double`. uid 65532
  as upstream's distroless image.
* :data:`JOB_IMAGE`, :data:`SERVICE_IMAGE`: a workflow's job container and a service
  container (tests name them in the workflow they simulate).
* :data:`PAUSE_IMAGE`: the pod sandbox (containerd's ``sandbox_image``).

The archives are deterministic (fixed mtimes, sorted entries), so rebuilding gives the same
digests and an import of an unchanged image is a no-op.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from components import constants as c

__all__ = [
    "BUSYBOX",
    "CONTROLLER_IMAGE",
    "JOB_IMAGE",
    "PAUSE_IMAGE",
    "SERVICE_IMAGE",
    "StandInImage",
    "build_archive",
    "stand_in_images",
]

BUSYBOX: Final = Path("/bin/busybox")
#: The sandbox image containerd's CRI plugin runs for every pod (its pinned default name).
PAUSE_IMAGE: Final = "registry.k8s.io/pause:3.10"
#: The ARC controller image the controller chart renders (the listener pods use it too).
CONTROLLER_IMAGE: Final = "ghcr.io/actions/gha-runner-scale-set-controller:0.14.2"
#: A workflow job container's image (stand-in for a small Debian image).
JOB_IMAGE: Final = "docker.io/library/debian:bookworm-slim"
#: A workflow service container's image.
SERVICE_IMAGE: Final = "docker.io/library/redis:7.4"

#: Exits at once on SIGTERM (busybox sh ignores it as pid 1 otherwise).
_WAIT: Final = "#!/bin/sh\ntrap 'exit 0' TERM INT\nwhile :; do sleep 3600 & wait $!; done\n"
_PASSWD: Final = (
    "root:x:0:0:root:/root:/bin/sh\n"
    "runner:x:1001:1001:runner:/home/runner:/bin/sh\n"
    "nonroot:x:65532:65532:nonroot:/home/nonroot:/bin/sh\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n"
)
_GROUP: Final = (
    "root:x:0:\ndocker:x:123:runner\nrunner:x:1001:\nnonroot:x:65532:\nnogroup:x:65534:\n"
)
_MTIME: Final = 1_700_000_000


@dataclass(frozen=True)
class StandInImage:
    """One image: its reference, files (path -> (content, mode, uid, gid)), config."""

    reference: str
    files: dict[str, tuple[bytes, int, int, int]] = field(default_factory=dict)
    dirs: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    user: str = ""
    working_dir: str = "/"
    env: tuple[str, ...] = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",)


def _applets() -> list[str]:
    out = subprocess.run(
        [str(BUSYBOX), "--list"], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    return sorted(a for a in out.split() if a and a != "busybox")


def _layer(image: StandInImage, applets: Iterable[str]) -> bytes:
    """The single layer (uncompressed tar), deterministic."""
    buf = io.BytesIO()
    entries: dict[str, tarfile.TarInfo] = {}
    payload: dict[str, bytes] = {}

    def add_dir(path: str, mode: int = 0o755, uid: int = 0, gid: int = 0) -> None:
        info = tarfile.TarInfo(path)
        info.type = tarfile.DIRTYPE
        info.mode, info.uid, info.gid, info.mtime = mode, uid, gid, _MTIME
        entries[path] = info

    for d in ("bin", "etc", "home", "root", "sbin", "usr", "usr/bin", "usr/sbin", "var", "dev"):
        add_dir(d)
    add_dir("proc", 0o555)
    add_dir("sys", 0o555)
    add_dir("tmp", 0o1777)
    for path, (mode, uid, gid) in image.dirs.items():
        parts = path.strip("/").split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if parent not in entries:
                add_dir(parent)
        add_dir(path.strip("/"), mode, uid, gid)
    busybox = BUSYBOX.read_bytes()
    files = {
        "bin/busybox": (busybox, 0o755, 0, 0),
        "etc/passwd": (_PASSWD.encode(), 0o644, 0, 0),
        "etc/group": (_GROUP.encode(), 0o644, 0, 0),
        **{k.strip("/"): v for k, v in image.files.items()},
    }
    for path, (content, mode, uid, gid) in files.items():
        info = tarfile.TarInfo(path)
        info.size, info.mode, info.uid, info.gid, info.mtime = len(content), mode, uid, gid, _MTIME
        entries[path] = info
        payload[path] = content
    for applet in applets:
        path = f"bin/{applet}"
        if path in entries:
            continue
        info = tarfile.TarInfo(path)
        info.type = tarfile.SYMTYPE
        info.linkname = "busybox"
        info.mode, info.mtime = 0o777, _MTIME
        entries[path] = info
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(entries):
            info = entries[path]
            info.uname = info.gname = ""
            data = payload.get(path)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _blob(out: tarfile.TarFile, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    info = tarfile.TarInfo(f"blobs/sha256/{digest}")
    info.size, info.mode, info.mtime = len(data), 0o644, _MTIME
    out.addfile(info, io.BytesIO(data))
    return f"sha256:{digest}"


def build_archive(image: StandInImage, path: Path, applets: Iterable[str] | None = None) -> Path:
    """Write ``image`` as an OCI image-layout tar at ``path``; return ``path``."""
    layer = _layer(image, _applets() if applets is None else applets)
    diff_id = f"sha256:{hashlib.sha256(layer).hexdigest()}"
    compressed = gzip.compress(layer, mtime=0)
    config_obj = {
        "architecture": "amd64",
        "os": "linux",
        "created": "2023-11-14T22:13:20Z",
        "config": {
            "Env": list(image.env),
            "Entrypoint": list(image.entrypoint) or None,
            "Cmd": list(image.cmd) or None,
            "User": image.user,
            "WorkingDir": image.working_dir,
            "Labels": {"io.arc-zfs-cache.stand-in": "true"},
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": "2023-11-14T22:13:20Z", "created_by": "localcluster.images"}],
    }
    config = json.dumps(config_obj, sort_keys=True).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as out:
        layer_digest = _blob(out, compressed)
        config_digest = _blob(out, config)
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": config_digest,
                    "size": len(config),
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": layer_digest,
                        "size": len(compressed),
                    }
                ],
            },
            sort_keys=True,
        ).encode()
        manifest_digest = _blob(out, manifest)
        index = json.dumps(
            {
                "schemaVersion": 2,
                "manifests": [
                    {
                        "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "digest": manifest_digest,
                        "size": len(manifest),
                        "platform": {"architecture": "amd64", "os": "linux"},
                        "annotations": {
                            "io.containerd.image.name": image.reference,
                            "org.opencontainers.image.ref.name": image.reference.rsplit(":", 1)[-1],
                        },
                    }
                ],
            },
            sort_keys=True,
        ).encode()
        for name, data in (
            ("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
            ("index.json", index),
        ):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, _MTIME
            out.addfile(info, io.BytesIO(data))
    shutil.move(tmp, path)
    return path


def _script(text: str) -> tuple[bytes, int, int, int]:
    return (text.encode(), 0o755, 0, 0)


def stand_in_images(runner_image: str = c.RUNNER_IMAGE) -> list[StandInImage]:
    """Every image the local stack's pods name (see the module docstring)."""
    runner_home = (0o755, c.RUNNER_UID, c.RUNNER_GID)
    return [
        StandInImage(PAUSE_IMAGE, files={"pause": _script(_WAIT)}, entrypoint=("/pause",)),
        StandInImage(
            CONTROLLER_IMAGE,
            files={"manager": _script(_WAIT), "ghalistener": _script(_WAIT)},
            entrypoint=("/manager",),
            user="65532:65532",
        ),
        StandInImage(
            runner_image,
            files={
                "home/runner/run.sh": _script(_WAIT),
                "home/runner/k8s/index.js": (
                    b"// stand-in: see localcluster/hook_double.py\n",
                    0o644,
                    0,
                    0,
                ),
                "home/runner/k8s-novolume/index.js": (
                    b"// stand-in: see localcluster/hook_double.py\n",
                    0o644,
                    0,
                    0,
                ),
                # The runner's externals (node20, node24): hook 0.8's fs-init moves them into
                # the job pod's externals volume and fails if there are none.
                "home/runner/externals/node20/bin/node": (_WAIT.encode(), 0o755, *runner_home[1:]),
                "home/runner/externals/node24/bin/node": (_WAIT.encode(), 0o755, *runner_home[1:]),
            },
            dirs={
                "home/runner": runner_home,
                "home/runner/_work": runner_home,
                "home/runner/externals": runner_home,
                "home/runner/externals/node20": runner_home,
                "home/runner/externals/node20/bin": runner_home,
                "home/runner/externals/node24": runner_home,
                "home/runner/externals/node24/bin": runner_home,
                "home/runner/k8s": (0o755, 0, 0),
                "home/runner/k8s-novolume": (0o755, 0, 0),
            },
            cmd=("/home/runner/run.sh",),
            user=f"{c.RUNNER_UID}:{c.RUNNER_GID}",
            working_dir="/home/runner",
        ),
        StandInImage(JOB_IMAGE, cmd=("/bin/sh",)),
        StandInImage(
            SERVICE_IMAGE,
            files={"usr/local/bin/redis-server": _script(_WAIT)},
            cmd=("/usr/local/bin/redis-server",),
        ),
    ]
