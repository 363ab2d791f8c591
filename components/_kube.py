"""Small helpers shared by the components: labels, metadata and chart references."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import constants as c
from components.config import ChartRef

__all__ = ["chart_args", "custom_object", "labels", "metadata"]


def labels(**extra: str) -> dict[str, str]:
    """The labels every object of this program carries, plus ``extra``."""
    return {c.LABEL_MANAGED_BY: c.MANAGED_BY, c.LABEL_PART_OF: c.PART_OF, **extra}


def metadata(
    name: str,
    namespace: str | None = None,
    extra_labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> k8s.meta.v1.ObjectMetaArgs:
    """Object metadata with a fixed name (no auto-naming: names are part of the protocol)."""
    return k8s.meta.v1.ObjectMetaArgs(
        name=name,
        namespace=namespace,
        labels=labels(**(extra_labels or {})),
        annotations=annotations,
    )


def custom_object(
    resource_name: str,
    api_version: str,
    kind: str,
    meta: k8s.meta.v1.ObjectMetaArgs,
    fields: dict[str, Any],
    *,
    opts: pulumi.ResourceOptions,
) -> pulumi.CustomResource:
    """An object of a custom resource type with arbitrary top-level fields.

    ``apiextensions.CustomResource`` only carries ``spec``; a VolumeSnapshotClass has
    ``driver`` and ``deletionPolicy`` at the top level, and an imported ZFSVolume a ``status``.
    """
    props = {"apiVersion": api_version, "kind": kind, "metadata": meta, **fields}
    return pulumi.CustomResource(f"kubernetes:{api_version}:{kind}", resource_name, props, opts)


def chart_args(
    ref: ChartRef, *, release: str, namespace: str, values: pulumi.Input[dict[str, Any]]
) -> k8s.helm.v4.ChartArgs:
    """Helm v4 Chart args from a chart reference (OCI, repository URL + name, or local path)."""
    return k8s.helm.v4.ChartArgs(
        chart=ref.chart,
        version=ref.version,
        repository_opts=k8s.helm.v4.RepositoryOptsArgs(repo=ref.repo) if ref.repo else None,
        name=release,
        namespace=namespace,
        values=values,
    )
