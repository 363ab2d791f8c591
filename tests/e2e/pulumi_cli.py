"""Drive this repository's program through the real Pulumi CLI, as a user would.

Each :class:`PulumiProject` is a copy of the program (Pulumi.yaml, __main__.py, components/,
charts/) in a temporary directory with its own ``file://`` backend and passphrase secrets, so
tests never touch the repository's stack files or state.
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

__all__ = ["ROOT", "PulumiCommandError", "PulumiProject", "Result"]

ROOT = Path(__file__).resolve().parents[2]
PASSPHRASE = "e2e-throwaway-passphrase"


class PulumiCommandError(AssertionError):
    """A pulumi command exited non-zero; the message holds its output."""


@dataclass(frozen=True)
class Result:
    """Exit code and output of one pulumi command."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        """stdout and stderr together."""
        return self.stdout + self.stderr


@dataclass
class PulumiProject:
    """A throwaway copy of the program with one stack on a local file:// backend."""

    workdir: Path
    stack: str = "e2e"
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def create(cls, workdir: Path, kubeconfig: Path, stack: str = "e2e") -> PulumiProject:
        """Copy the program into ``workdir`` and create the stack."""
        project = workdir / "project"
        project.mkdir(parents=True)
        for name in ("__main__.py", "components", "charts"):
            source = ROOT / name
            if source.is_dir():
                shutil.copytree(
                    source, project / name, ignore=shutil.ignore_patterns("__pycache__")
                )
            else:
                shutil.copy2(source, project / name)
        manifest = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
        manifest["runtime"]["options"]["virtualenv"] = str(ROOT / ".venv")
        (project / "Pulumi.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
        state = workdir / "state"
        state.mkdir()
        env = {
            "PULUMI_BACKEND_URL": f"file://{state}",
            "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "KUBECONFIG": str(kubeconfig),
            "NO_COLOR": "1",
        }
        self = cls(project, stack, env)
        self.run("stack", "init", stack)
        return self

    def run(
        self, *args: str, check: bool = True, timeout: float = 600, stdin: str | None = None
    ) -> Result:
        """Run ``pulumi <args>`` non-interactively in the project (``stdin``: its input)."""
        pulumi = shutil.which("pulumi", path=os.environ.get("PATH"))
        if pulumi is None:
            raise PulumiCommandError(
                'pulumi is not on PATH: run `eval "$(scripts/toolchain.sh env)"`'
            )
        proc = subprocess.run(
            [pulumi, *args, "--non-interactive", "--cwd", str(self.workdir)],
            capture_output=True,
            text=True,
            env={**os.environ, **self.env},
            input=stdin if stdin is not None else "",
            timeout=timeout,
            check=False,
        )
        result = Result(proc.returncode, proc.stdout, proc.stderr)
        if check and proc.returncode != 0:
            raise PulumiCommandError(
                f"pulumi {' '.join(args)} exited {proc.returncode}:\n{result.output}"
            )
        return result

    def set_config(self, config: dict[str, Any], secrets: dict[str, str] | None = None) -> None:
        """Write the stack's config (top-level keys without namespace), then set secrets."""
        stack_file = self.workdir / f"Pulumi.{self.stack}.yaml"
        existing = yaml.safe_load(stack_file.read_text()) if stack_file.exists() else {}
        existing = existing or {}
        existing["config"] = {f"arc-zfs-cache:{k}": v for k, v in config.items()}
        stack_file.write_text(yaml.safe_dump(existing, sort_keys=False))
        for path, value in (secrets or {}).items():
            # On standard input, so a secret is never in an argument list or an error message.
            self.run(
                "config", "set", "--secret", "--path", path, "--stack", self.stack, stdin=value
            )

    def preview(self, *extra: str, check: bool = True) -> Result:
        """``pulumi preview`` of the stack."""
        return self.run("preview", "--stack", self.stack, "--diff", *extra, check=check)

    def up(self, *extra: str, check: bool = True) -> Result:
        """``pulumi up --yes`` of the stack."""
        return self.run("up", "--yes", "--stack", self.stack, "--skip-preview", *extra, check=check)

    def destroy(self, check: bool = True) -> Result:
        """``pulumi destroy --yes`` of the stack."""
        return self.run("destroy", "--yes", "--stack", self.stack, "--skip-preview", check=check)

    def preview_steps(self) -> list[dict[str, Any]]:
        """The steps of ``pulumi preview --json``."""
        result = self.run("preview", "--stack", self.stack, "--json")
        steps: list[dict[str, Any]] = json.loads(result.stdout).get("steps", [])
        return steps

    def outputs(self) -> dict[str, Any]:
        """The stack outputs."""
        result = self.run("stack", "output", "--json", "--stack", self.stack)
        outputs: dict[str, Any] = json.loads(result.stdout)
        return outputs

    def export(self) -> str:
        """``pulumi stack export`` (the whole state as JSON text)."""
        return self.run("stack", "export", "--stack", self.stack).stdout

    def resource_count(self) -> int:
        """Number of resources in the stack's state, not counting the stack itself."""
        deployment = json.loads(self.export()).get("deployment", {})
        resources = deployment.get("resources") or []
        return sum(1 for r in resources if r.get("type") != "pulumi:pulumi:Stack")
