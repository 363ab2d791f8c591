"""Unit-tier harness: run components under Pulumi mocks and record every registered resource.

Shared by the unit tests (import it as ``tests.harness``); tests/conftest.py holds only the
fixtures built on it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi

from components import constants as c
from components.config import StackConfig
from components.runner_scale_set import scale_set_values
from components.stack import ArcZfsCache

DATA = Path(__file__).resolve().parent / "data"
ROOT = DATA.parent.parent
PROMOTION_TYPE = "pulumi-python:dynamic/promotion:CachePromotion"
__all__ = [
    "DATA",
    "PROMOTION_TYPE",
    "ROOT",
    "Deployment",
    "RecordingMocks",
    "Registered",
    "deploy",
    "run_under_mocks",
    "runner_env",
    "scale_set_chart_values",
]

_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"  # Pulumi's wire signature of a secret value


def _unwrap(value: Any, path: str, secrets: set[str]) -> Any:
    """Replace wire-format secrets by their values, remembering where they were."""
    if isinstance(value, dict):
        if value.get("4dabf18193072939515e22adb298388d") == _SECRET_SIG:
            secrets.add(path)
            return _unwrap(value["value"], path, secrets)
        return {k: _unwrap(v, f"{path}.{k}" if path else k, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v, f"{path}[{i}]", secrets) for i, v in enumerate(value)]
    return value


@dataclass
class Registered:
    """One resource the program registered: its type, logical name and input properties."""

    typ: str
    name: str
    inputs: dict[str, Any]
    secret_paths: set[str] = field(default_factory=set)

    @property
    def k8s_name(self) -> str | None:
        """``metadata.name`` of a Kubernetes object."""
        return (self.inputs.get("metadata") or {}).get("name")


@dataclass
class Deployment:
    """Every resource one run of the program registered under mocks."""

    resources: list[Registered] = field(default_factory=list)

    def of_type(self, typ: str) -> list[Registered]:
        """All resources of a Pulumi type token."""
        return [r for r in self.resources if r.typ == typ]

    def object(self, typ: str, k8s_name: str) -> dict[str, Any]:
        """The inputs of the one Kubernetes object with this type and metadata.name."""
        found = [r for r in self.of_type(typ) if r.k8s_name == k8s_name]
        assert len(found) == 1, f"{typ} {k8s_name}: {[r.k8s_name for r in self.of_type(typ)]}"
        return found[0].inputs

    def chart(self, release: str) -> dict[str, Any]:
        """The inputs of the Helm v4 Chart with this release name."""
        found = [
            r for r in self.of_type("kubernetes:helm.sh/v4:Chart") if r.inputs["name"] == release
        ]
        assert len(found) == 1, release
        return found[0].inputs


class RecordingMocks(pulumi.runtime.Mocks):
    """Mocks that echo inputs as outputs and play the promotion provider's documented contract
    for a new cache: generation 1, the root claim, builder volume 1."""

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment

    def new_resource(
        self, args: pulumi.runtime.MockResourceArgs
    ) -> tuple[str | None, dict[str, Any]]:
        secrets: set[str] = set()
        inputs = _unwrap(dict(args.inputs), "", secrets)
        self.deployment.resources.append(Registered(args.typ, args.name, inputs, secrets))
        outputs = dict(inputs)
        if args.typ == PROMOTION_TYPE:
            outputs.update(
                parent_claim=inputs["root_claim"],
                generation=1,
                builder_claim=inputs["builder_volume"],
                promoted_at="2026-11-23T00:00:00+00:00",
                token=inputs.get("promote"),
            )
        return f"{args.name}-id", outputs

    def call(
        self, args: pulumi.runtime.MockCallArgs
    ) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


def run_under_mocks(
    build: Callable[[], pulumi.Output[Any]], *, preview: bool = False
) -> tuple[Deployment, Any]:
    """Run ``build`` (which declares resources and returns an output) under mocks.

    Returns what was registered and the output's resolved value.
    """
    deployment = Deployment()
    pulumi.runtime.set_mocks(
        RecordingMocks(deployment), project=c.CONFIG_NAMESPACE, stack="unit", preview=preview
    )
    resolved: list[Any] = []

    @pulumi.runtime.test  # type: ignore[misc]
    def run() -> pulumi.Output[Any]:
        return build().apply(resolved.append)

    run()
    return deployment, resolved[0] if resolved else None


def deploy(config: StackConfig, *, preview: bool = False) -> Deployment:
    """Run the whole program for ``config`` under mocks; return what it registered."""

    def build() -> pulumi.Output[Any]:
        system = ArcZfsCache("unit", config)
        return pulumi.Output.all(system.parent_claims, system.generations, system.scale_sets)

    deployment, _ = run_under_mocks(build, preview=preview)
    return deployment


def scale_set_chart_values(**overrides: Any) -> dict[str, Any]:
    """The scale-set chart values of a small ``linux`` scale set, ``overrides`` applied."""
    args: dict[str, Any] = {
        "name": "linux",
        "namespace": "arc-runners",
        "github_config_url": "https://github.com/acme",
        "runner_group": "default",
        "min_runners": 0,
        "max_runners": 2,
        "runner_image": c.RUNNER_IMAGE,
        "node": "node-a",
        "controller_namespace": "arc-systems",
        "controller_service_account": "arc-gha-rs-controller",
        "work_volume_size": "10Gi",
        "work_volume_storage_class": None,
        **overrides,
    }
    return scale_set_values(**args)


def runner_env(values: dict[str, Any]) -> dict[str, str]:
    """The runner container's env of rendered scale-set chart values, by name."""
    (runner,) = values["template"]["spec"]["containers"]
    return {e["name"]: e["value"] for e in runner["env"]}
