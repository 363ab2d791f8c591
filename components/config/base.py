"""The base of every config model, and the chart reference every component shares."""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

__all__ = ["ChartRef", "ConfigModel"]


class ConfigModel(BaseModel):
    """Base of every config model: camelCase keys, unknown keys rejected, immutable."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        arbitrary_types_allowed=True,
    )


class ChartRef(ConfigModel):
    """Where a Helm chart comes from: OCI reference, repository URL plus name, or local path."""

    chart: str = Field(
        description="chart name in `repo`, an `oci://` reference, or a local chart directory",
        examples=["oci://ghcr.io/actions/actions-runner-controller-charts/gha-runner-scale-set"],
    )
    version: str | None = Field(
        description="pinned chart version (required for OCI and repository charts)",
        default=None,
        examples=["0.14.2"],
    )
    repo: str | None = Field(
        description="Helm repository URL holding `chart`",
        default=None,
        examples=["https://openebs.github.io/zfs-localpv"],
    )

    @property
    def is_local(self) -> bool:
        """True when the chart is a directory or archive on disk."""
        return self.repo is None and not self.chart.startswith("oci://")

    @model_validator(mode="after")
    def _pinned(self) -> Self:
        if not self.is_local and (self.version is None or self.version in ("", "latest")):
            raise PydanticCustomError(
                "chart_version",
                "remote chart {chart!r} needs a pinned `version`, e.g. 0.14.2",
                {"chart": self.chart},
            )
        return self
