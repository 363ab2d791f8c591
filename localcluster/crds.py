"""CRDs for the local control plane: storage fixtures, and ARC's CRDs from the controller chart.

The YAML files beside this module (``crds/``) are the CRDs of the storage stack, which the
local cluster does not deploy by chart (OpenEBS ZFS LocalPV, external-snapshotter): written
for the tests from the published API fields of their upstream projects, their headers say
which. The control plane installs them at start.

ARC's four ``actions.github.com`` CRDs are not fixtures: they ship in the stand-in controller
chart's ``crds/`` directory as upstream 0.14.2 has them, and a stack's ``pulumi up`` installs
them with that chart before any AutoscalingRunnerSet. A test that creates AutoscalingRunnerSets
without deploying the chart installs the same files with :func:`install_arc_crds`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

import yaml
from lightkube import ApiError
from lightkube.generic_resource import create_global_resource, create_namespaced_resource

from localcluster.kube import Kube, is_conflict, meta

__all__ = [
    "ARC_CRD_DIR",
    "CRD_DIR",
    "apply_crd",
    "arc_crd_documents",
    "crd_documents",
    "install_arc_crds",
    "install_crds",
    "remove_crds",
]

CRD_DIR: Final = Path(__file__).with_name("crds")
#: The stand-in controller chart's ``crds/`` (upstream's files, byte for byte).
ARC_CRD_DIR: Final = (
    Path(__file__).resolve().parent.parent
    / "charts"
    / "local"
    / "gha-runner-scale-set-controller"
    / "crds"
)


def _documents(directory: Path) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


def crd_documents() -> list[dict[str, Any]]:
    """Every storage CRD fixture, parsed."""
    return _documents(CRD_DIR)


def arc_crd_documents() -> list[dict[str, Any]]:
    """The ARC CRDs of the stand-in controller chart, parsed."""
    return _documents(ARC_CRD_DIR)


def install_arc_crds(kube: Kube, timeout: float = 60.0) -> list[str]:
    """Install the controller chart's ARC CRDs as the chart would, for a test that creates
    AutoscalingRunnerSets without deploying it; wait until each is servable."""
    return install_crds(kube, arc_crd_documents(), timeout)


def remove_crds(kube: Kube, names: Iterable[str], timeout: float = 60.0) -> None:
    """Delete CRDs (and so every object of theirs) and wait until they are gone."""
    pending = list(names)
    for name in pending:
        kube.delete("CustomResourceDefinition", name)
    deadline = time.monotonic() + timeout
    while pending := [n for n in pending if kube.get("CustomResourceDefinition", n)]:
        if time.monotonic() > deadline:
            raise TimeoutError(f"CRDs still there after {timeout}s: {pending}")
        time.sleep(0.1)


def apply_crd(kube: Kube, doc: dict[str, Any]) -> None:
    """Create the CRD ``doc``, or merge its metadata and spec over the one of that name (a
    restarted cluster keeps its CRDs; the storage's release CRDs replace the fixtures)."""
    try:
        kube.create("CustomResourceDefinition", doc)
    except ApiError as exc:
        if not is_conflict(exc):
            raise
        kube.patch(
            "CustomResourceDefinition",
            meta(doc)["name"],
            {"metadata": doc["metadata"], "spec": doc["spec"]},
        )


def install_crds(
    kube: Kube, documents: Iterable[dict[str, Any]] | None = None, timeout: float = 60.0
) -> list[str]:
    """Create (or update) CRDs (default: the storage fixtures) and wait until each is
    Established and servable."""
    docs = list(crd_documents() if documents is None else documents)
    names: list[str] = []
    for doc in docs:
        name = meta(doc)["name"]
        names.append(name)
        apply_crd(kube, doc)
    deadline = time.monotonic() + timeout
    pending = set(names)
    while pending:
        for name in sorted(pending):
            crd = kube.get("CustomResourceDefinition", name) or {}
            conditions = (crd.get("status") or {}).get("conditions") or []
            if any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
                pending.discard(name)
        if pending and time.monotonic() > deadline:
            raise TimeoutError(f"CRDs not Established after {timeout}s: {sorted(pending)}")
        if pending:
            time.sleep(0.1)
    # Established is not servable yet: the first lists get 429 while the watch cache fills.
    for doc in docs:
        _wait_servable(kube, doc, deadline)
    return names


def _wait_servable(kube: Kube, doc: dict[str, Any], deadline: float) -> None:
    spec = doc["spec"]
    version = next(v["name"] for v in spec["versions"] if v.get("storage"))
    names = spec["names"]
    if spec["scope"] == "Namespaced":
        resource: Any = create_namespaced_resource(
            spec["group"], version, names["kind"], names["plural"]
        )
        namespace: str | None = "*"
    else:
        resource = create_global_resource(spec["group"], version, names["kind"], names["plural"])
        namespace = None
    while True:
        try:
            if namespace:
                list(kube.client.list(resource, namespace=namespace, chunk_size=1))
            else:
                list(kube.client.list(resource, chunk_size=1))
            return
        except ApiError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
