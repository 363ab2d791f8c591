"""A minimal Pulumi program holding one CachePromotion, run by the real Pulumi CLI and engine.

It exercises exactly the path the full program takes for promotion (the Python language host,
the engine, the dynamic provider process ``pulumi-resource-pulumi-python`` deserialising the
provider with dill, diff/update/delete over gRPC) without the Kubernetes provider plugin: the
cache's generation 1 and builder volume 1 are made by the test harness, as the program's
BuildCache would. Own ``file://`` backend and passphrase secrets in a temporary directory.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.e2e.promotion_env import NODE, NODE_CLASS, SIZE, SNAPSHOT_CLASS

__all__ = ["PromotionProgram", "Run"]

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "promotion-e2e"
MAIN = '''"""One CachePromotion, configured from stack config."""

from datetime import timedelta

import pulumi

from components.promotion import CachePromotion, CachePromotionArgs

cfg = pulumi.Config()
promotion = CachePromotion(
    "gcc12-promotion",
    CachePromotionArgs(
        namespace=cfg.require("namespace"),
        cache="gcc12",
        root_claim="gcc12-gen-1",
        builder_volume="gcc12-work-1",
        size=cfg.require("size"),
        node=cfg.require("node"),
        parent_storage_class=cfg.require("storageClass"),
        snapshot_class=cfg.require("snapshotClass"),
        lease_duration=timedelta(seconds=30),
        grace_period=timedelta(seconds=cfg.require_int("graceSeconds")),
        retention=timedelta(days=7),
        ready_timeout=timedelta(seconds=60),
        promote=cfg.get("promote"),
        reset_builder=cfg.get("resetBuilder"),
        kubeconfig=cfg.require("kubeconfig"),
        context=None,
    ),
)
pulumi.export("parent_claim", promotion.parent_claim)
pulumi.export("generation", promotion.generation)
pulumi.export("builder_claim", promotion.builder_claim)
pulumi.export("report", promotion.report)
'''


@dataclass(frozen=True)
class Run:
    """Exit code and output of one pulumi command."""

    returncode: int
    stdout: str
    output: str


@dataclass
class PromotionProgram:
    """The program in ``workdir`` with stack ``e2e``."""

    workdir: Path
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def create(cls, workdir: Path, kubeconfig: Path, namespace: str) -> PromotionProgram:
        """Write the project (with a copy of components/), init the stack, set its config."""
        project = workdir / "project"
        project.mkdir(parents=True)
        shutil.copytree(
            ROOT / "components",
            project / "components",
            ignore=shutil.ignore_patterns("__pycache__"),
        )
        (project / "__main__.py").write_text(MAIN)
        manifest = {
            "name": PROJECT,
            "runtime": {
                "name": "python",
                "options": {"toolchain": "pip", "virtualenv": str(ROOT / ".venv")},
            },
        }
        (project / "Pulumi.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
        state = workdir / "state"
        state.mkdir()
        env = {
            "PULUMI_BACKEND_URL": f"file://{state}",
            "PULUMI_CONFIG_PASSPHRASE": "promotion-e2e-throwaway",
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "NO_COLOR": "1",
        }
        program = cls(project, env)
        program.run("stack", "init", "e2e")
        program.configure(
            namespace=namespace,
            size=SIZE,
            node=NODE,
            storageClass=NODE_CLASS,
            snapshotClass=SNAPSHOT_CLASS,
            graceSeconds="3600",
            kubeconfig=str(kubeconfig),
        )
        return program

    def run(self, *args: str, check: bool = True) -> Run:
        """``pulumi <args>`` in the project, non-interactive."""
        pulumi = shutil.which("pulumi") or os.environ.get("PULUMI_BIN")
        if not pulumi:
            raise AssertionError('pulumi is not on PATH: eval "$(scripts/toolchain.sh env)"')
        proc = subprocess.run(
            [pulumi, *args, "--non-interactive", "--cwd", str(self.workdir)],
            capture_output=True,
            text=True,
            env={**os.environ, **self.env},
            stdin=subprocess.DEVNULL,
            timeout=300,
            check=False,
        )
        result = Run(proc.returncode, proc.stdout, proc.stdout + proc.stderr)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"pulumi {' '.join(args)} exited {proc.returncode}:\n{result.output}"
            )
        return result

    def configure(self, **values: str | None) -> None:
        """Set (or, with None, remove) stack config keys."""
        for key, value in values.items():
            if value is None:
                self.run("config", "rm", key, "--stack", "e2e", check=False)
            else:
                self.run("config", "set", key, value, "--stack", "e2e")

    def preview(self, *extra: str) -> Run:
        """``pulumi preview --diff``."""
        return self.run("preview", "--diff", "--stack", "e2e", *extra)

    def up(self, *extra: str) -> Run:
        """``pulumi up --yes --skip-preview``."""
        return self.run("up", "--yes", "--skip-preview", "--stack", "e2e", *extra)

    def destroy(self) -> Run:
        """``pulumi destroy --yes``."""
        return self.run("destroy", "--yes", "--skip-preview", "--stack", "e2e")

    def outputs(self) -> dict[str, Any]:
        """Stack outputs."""
        out: dict[str, Any] = json.loads(
            self.run("stack", "output", "--json", "--stack", "e2e").stdout
        )
        return out
