"""The CRDs the program's objects need, installed into the local control plane as fixtures.

The YAML files beside this module are written for the tests from the published API
fields of their upstream projects (external-snapshotter, OpenEBS ZFS LocalPV,
actions-runner-controller); their headers say which. Deep parts (pod templates) keep
unknown fields; top-level fields, validations and status subresources are the real ones.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import yaml
from lightkube import ApiError
from lightkube.generic_resource import create_global_resource, create_namespaced_resource

from localcluster.kube import Kube, is_conflict, meta

__all__ = ["CRD_DIR", "crd_documents", "install_crds"]

CRD_DIR = Path(__file__).with_name("crds")


def crd_documents() -> list[dict[str, Any]]:
    """Every CRD fixture, parsed."""
    docs: list[dict[str, Any]] = []
    for path in sorted(CRD_DIR.glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


def install_crds(kube: Kube, timeout: float = 60.0) -> list[str]:
    """Create (or update) every CRD fixture and wait until each is Established."""
    names: list[str] = []
    for doc in crd_documents():
        name = meta(doc)["name"]
        names.append(name)
        try:
            kube.create("CustomResourceDefinition", doc)
        except Exception as exc:
            if not is_conflict(exc):
                raise
            kube.patch("CustomResourceDefinition", name, {"spec": doc["spec"]})
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
    for doc in crd_documents():
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
