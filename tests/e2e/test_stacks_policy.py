"""The project's shipped stacks pass the policy pack through the real CLI and engine.

dev and prod target clusters this machine cannot reach, and charts in a registry it cannot
reach: their caches, scale sets, namespaces, images and credentials are previewed unchanged
against the local control plane, with only the plumbing swapped for the local stack's
(cluster, the OpenEBS install played by the local cluster's storage, the local stand-in charts).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.pulumi_cli import ROOT, PulumiProject

pytestmark = pytest.mark.e2e

POLICY = ROOT / "policy"
POLICY_CONFIG = POLICY / "policy-config.json"
SECRET_PATHS = {
    "github.credentials.token": "ghp_policyE2eToken0123456789",
    "github.credentials.app.privateKey": "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----",
}


def shipped_config(stack: str) -> tuple[dict[str, Any], dict[str, str]]:
    """A stack file's config with local plumbing, and the secrets it seals (set per test)."""
    config = {
        k.partition(":")[2]: v
        for k, v in yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"].items()
    }
    local = {
        k.partition(":")[2]: v
        for k, v in yaml.safe_load((ROOT / "Pulumi.local.yaml").read_text())["config"].items()
    }
    config["cluster"] = local["cluster"]
    config["storage"] = {
        **config.get("storage", {}),
        "install": False,
        "installSnapshotCrds": False,
    }
    config["controller"] = {**config.get("controller", {}), **local["controller"]}
    secrets: dict[str, str] = {}
    credentials = config["github"]["credentials"]
    if "token" in credentials:
        del credentials["token"]
        secrets["github.credentials.token"] = SECRET_PATHS["github.credentials.token"]
    if "app" in credentials:
        del credentials["app"]["privateKey"]
        secrets["github.credentials.app.privateKey"] = SECRET_PATHS[
            "github.credentials.app.privateKey"
        ]
    return config, secrets


@pytest.mark.parametrize("stack", ["dev", "prod", "local"])
def test_shipped_stack_passes_the_policy_pack(
    stack: str, local_cluster: Any, tmp_path: Path
) -> None:
    project = PulumiProject.create(tmp_path, Path(local_cluster.kubeconfig), stack=stack)
    config, secrets = shipped_config(stack)
    project.set_config(config, secrets)
    mark = local_cluster.audit.mark()
    result = project.preview(
        "--policy-pack", str(POLICY), "--policy-pack-config", str(POLICY_CONFIG), check=False
    )
    assert result.returncode == 0, result.output
    assert "arc-zfs-cache@v0.1.0" in result.output
    assert "mandatory" not in result.output
    for value in secrets.values():
        assert value not in result.output
    assert local_cluster.mutating_requests(mark) == []
