"""The pulumi-resource-kubernetes test double (tools/k8s-provider) through the real engine.

The double is built from this checkout's sources (tools/k8s-provider/build.sh) and installed
into a private PULUMI_HOME, so these tests always exercise the code in the tree. The program
(tests/e2e/programs/k8s_provider) declares every kind arc-zfs-cache uses: a provider with an
explicit kubeconfig, core objects, a StorageClass, RBAC, a Deployment, a custom resource and a
helm v4 Chart of the local gha-runner-scale-set chart. One stack goes through preview (no
mutating request), up, a no-op up, an in-place update, a replacement and destroy.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from localcluster.harness import LocalCluster

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = Path(__file__).resolve().parent / "programs" / "k8s_provider"
CHART = ROOT / "charts" / "local" / "gha-runner-scale-set"
FIX_COMMAND = 'scripts/toolchain.sh && eval "$(scripts/toolchain.sh env)"'
PASSPHRASE = "k8s-provider-e2e"
# A throwaway value that the state must never show, in clear or base64.
TOKEN = "k8s-provider-e2e-token-7d1f"


def kubernetes_pin() -> str:
    """The pulumi-kubernetes version pinned in pyproject.toml (the plugin's version)."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return next(d.split("==", 1)[1] for d in deps if d.startswith("pulumi-kubernetes=="))


@pytest.fixture(scope="module")
def pulumi_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PULUMI_HOME holding the double built from this checkout, as the pinned version."""
    pulumi = shutil.which("pulumi")
    if pulumi is None:
        pytest.fail(f"pulumi is not on PATH.\nFix: {FIX_COMMAND}", pytrace=False)
    home = tmp_path_factory.mktemp("pulumi-home")
    out = tmp_path_factory.mktemp("k8s-provider-bin")
    build = subprocess.run(
        [str(ROOT / "tools" / "k8s-provider" / "build.sh"), str(out)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if build.returncode != 0:
        pytest.fail(f"building tools/k8s-provider failed:\n{build.stderr}", pytrace=False)
    env = {**os.environ, "PULUMI_HOME": str(home), "PULUMI_SKIP_UPDATE_CHECK": "true"}
    install = subprocess.run(
        [
            pulumi,
            "plugin",
            "install",
            "resource",
            "kubernetes",
            kubernetes_pin(),
            "--file",
            str(out / "pulumi-resource-kubernetes"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    if install.returncode != 0:
        pytest.fail(
            f"pulumi plugin install failed:\n{install.stdout}{install.stderr}", pytrace=False
        )
    return home


@dataclass
class Stack:
    """One stack of the test program in a temporary copy, with its own file:// backend."""

    project: Path
    env: dict[str, str]
    kubectl: list[str]

    def pulumi(
        self, *args: str, check: bool = True, stdin: str = ""
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            ["pulumi", *args, "--non-interactive", "--cwd", str(self.project)],
            capture_output=True,
            text=True,
            env=self.env,
            input=stdin,
            timeout=300,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"pulumi {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}"
            )
        return proc

    def config(self, **values: str) -> None:
        for key, value in values.items():
            self.pulumi("config", "set", key, value)

    def up(self, *extra: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.pulumi("up", "--yes", "--skip-preview", *extra, check=check)

    def get(self, resource: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """The live object (as the harness, which the audit assertions ignore), or None."""
        args = [
            *self.kubectl,
            "get",
            resource,
            name,
            "-o",
            "json",
            "--ignore-not-found",
            "--show-managed-fields",
        ]
        if namespace:
            args += ["-n", namespace]
        proc = subprocess.run(args, capture_output=True, text=True, timeout=60, check=True)
        return json.loads(proc.stdout) if proc.stdout.strip() else None


def make_stack(
    root: Path, cluster: LocalCluster, home: Path, namespace: str, **config: str
) -> Stack:
    """A copy of the program (with components/, which it imports) and an initialised stack."""
    project = root / "project"
    shutil.copytree(PROGRAM, project)
    shutil.copytree(
        ROOT / "components", project / "components", ignore=shutil.ignore_patterns("__pycache__")
    )
    manifest = yaml.safe_load((project / "Pulumi.yaml").read_text())
    manifest["runtime"]["options"]["virtualenv"] = str(ROOT / ".venv")
    (project / "Pulumi.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    (root / "state").mkdir()
    kubectl = os.environ.get("KUBECTL_BIN") or shutil.which("kubectl")
    if kubectl is None:
        pytest.fail(f"kubectl is not available (KUBECTL_BIN).\nFix: {FIX_COMMAND}", pytrace=False)
    env = {
        **os.environ,
        "PULUMI_HOME": str(home),
        "PULUMI_BACKEND_URL": f"file://{root / 'state'}",
        "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        # The provider must use its explicit kubeconfig, never the environment's.
        "KUBECONFIG": str(root / "no-such-kubeconfig"),
        "NO_COLOR": "1",
    }
    stack = Stack(
        project,
        env,
        [kubectl, "--kubeconfig", str(cluster.control_plane.kubeconfig_for("harness"))],
    )
    stack.pulumi("stack", "init", "e2e")
    stack.config(
        kubeconfig=str(cluster.kubeconfig), namespace=namespace, chart=str(CHART), **config
    )
    # On standard input: a secret never appears in an argument list or an error message.
    stack.pulumi("config", "set", "--secret", "token", stdin=TOKEN)
    return stack


@pytest.fixture(scope="module")
def stack(
    local_cluster: LocalCluster, pulumi_home: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """The full program's stack, destroyed at the end whatever happened."""
    s = make_stack(tmp_path_factory.mktemp("k8s-provider"), local_cluster, pulumi_home, "kp-full")
    yield s
    s.pulumi("destroy", "--yes", "--skip-preview", check=False)


NS = "kp-full"


def test_preview_shows_every_object_and_mutates_nothing(
    stack: Stack, local_cluster: LocalCluster
) -> None:
    mark = local_cluster.audit.mark()
    result = stack.pulumi("preview", "--json")
    mutating = local_cluster.mutating_requests(mark)
    assert not mutating, "preview mutated the cluster:\n" + "\n".join(
        e.describe() for e in mutating
    )
    # It did talk to the cluster (discovery for the chart's capabilities, namespaced kinds).
    assert local_cluster.audit.requests(mark), "preview made no request at all"

    steps = json.loads(result.stdout)["steps"]
    creates = {
        (s["urn"].split("::")[-2], s["urn"].split("::")[-1]) for s in steps if s["op"] == "create"
    }
    chart_children = {
        ("kubernetes:actions.github.com/v1alpha1:AutoscalingRunnerSet", f"runners:{NS}/runners"),
        ("kubernetes:core/v1:ServiceAccount", f"runners:{NS}/runners-gha-rs-kube-mode"),
        ("kubernetes:rbac.authorization.k8s.io/v1:Role", f"runners:{NS}/runners-gha-rs-kube-mode"),
        (
            "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding",
            f"runners:{NS}/runners-gha-rs-kube-mode",
        ),
    }
    missing = {
        c for c in chart_children if not any(t.endswith(c[0]) and n == c[1] for t, n in creates)
    }
    assert not missing, f"chart children missing from the preview: {missing}\n{sorted(creates)}"
    assert any(t.endswith("kubernetes:core/v1:Secret") for t, _ in creates)


def test_up_creates_every_object(stack: Stack) -> None:
    stack.up()
    assert stack.get("namespace", NS)["status"]["phase"] == "Active"
    assert stack.get("configmap", "settings", NS)["data"] == {"content": "one"}
    secret = stack.get("secret", "credentials", NS)
    assert base64.b64decode(secret["data"]["token"]).decode() == TOKEN
    assert stack.get("storageclass", f"{NS}-zfs")["provisioner"] == "zfs.csi.openebs.io"
    assert stack.get("pvc", "claim", NS)["spec"]["storageClassName"] == f"{NS}-zfs"
    assert stack.get("deployment", "web", NS)["spec"]["replicas"] == 1
    assert stack.get("volumesnapshotclass", f"{NS}-snap")["driver"] == "zfs.csi.openebs.io"
    for kind in ("serviceaccount", "role", "rolebinding"):
        assert stack.get(kind, "runner" if kind == "serviceaccount" else "reader", NS) is not None
        assert stack.get(kind, "runners-gha-rs-kube-mode", NS) is not None, f"chart {kind} missing"
    ars = stack.get("autoscalingrunnersets.actions.github.com", "runners", NS)
    assert ars is not None and ars["spec"]["maxRunners"] == 1
    # Server-side apply, as our field manager.
    managers = {
        m["manager"] for m in stack.get("configmap", "settings", NS)["metadata"]["managedFields"]
    }
    assert "pulumi-kubernetes" in managers
    outputs = json.loads(stack.pulumi("stack", "output", "--json").stdout)
    assert outputs["chart_resources"] == 4
    # The chart's objects are its children and wait for what the chart depends on.
    resources = json.loads(stack.pulumi("stack", "export").stdout)["deployment"]["resources"]
    ars = next(r for r in resources if r["urn"].endswith(f"::runners:{NS}/runners"))
    assert ars["parent"].endswith("kubernetes:helm.sh/v4:Chart::runners")
    assert {d.split("::")[-1] for d in ars.get("dependencies", [])} >= {"ns", "credentials", "sc"}


def test_state_never_shows_the_secret(stack: Stack) -> None:
    state = stack.pulumi("stack", "export").stdout
    assert TOKEN not in state
    assert base64.b64encode(TOKEN.encode()).decode() not in state
    secret = next(
        r
        for r in json.loads(state)["deployment"]["resources"]
        if r["type"] == "kubernetes:core/v1:Secret"
    )
    for key in ("data", "stringData"):
        assert "ciphertext" in secret["outputs"][key], f"outputs.{key} of the Secret is not secret"


def test_second_up_changes_nothing(stack: Stack) -> None:
    stack.up("--expect-no-changes")


def test_refresh_follows_the_cluster(stack: Stack) -> None:
    # Refresh reads every object back; nothing the program declares changed.
    stack.pulumi("refresh", "--yes", "--skip-preview")
    stack.up("--expect-no-changes")
    # An object deleted behind Pulumi's back leaves the state on refresh and comes back on up.
    subprocess.run(
        [*stack.kubectl, "delete", "configmap", "settings", "-n", NS],
        check=True,
        capture_output=True,
    )
    stack.pulumi("refresh", "--yes", "--skip-preview")
    result = stack.up()
    assert "settings created" in result.stdout, result.stdout
    assert stack.get("configmap", "settings", NS)["data"] == {"content": "one"}
    stack.up("--expect-no-changes")


def test_change_updates_in_place(stack: Stack) -> None:
    uid = stack.get("configmap", "settings", NS)["metadata"]["uid"]
    stack.config(variant="2")
    steps = json.loads(stack.pulumi("preview", "--json").stdout)["steps"]
    ops = {s["urn"].split("::")[-1]: s["op"] for s in steps}
    assert ops["web"] == "update" and ops["settings"] == "update", ops
    assert not [
        u for u, op in ops.items() if op in ("replace", "create-replacement", "delete-replaced")
    ], ops
    stack.up()
    assert stack.get("deployment", "web", NS)["spec"]["replicas"] == 2
    assert (
        stack.get("autoscalingrunnersets.actions.github.com", "runners", NS)["spec"]["maxRunners"]
        == 2
    )
    live = stack.get("configmap", "settings", NS)
    assert live["metadata"]["uid"] == uid and live["metadata"]["labels"]["variant"] == "2"
    stack.up("--expect-no-changes")


def test_configmap_data_change_replaces_it(stack: Stack) -> None:
    # Upstream replaces a ConfigMap whose data changes (enableConfigMapMutable is off);
    # same name, so the old one is deleted first.
    uid = stack.get("configmap", "settings", NS)["metadata"]["uid"]
    stack.config(settings="two")
    result = stack.up()
    assert "replaced" in result.stdout, result.stdout
    live = stack.get("configmap", "settings", NS)
    assert live["data"] == {"content": "two"} and live["metadata"]["uid"] != uid


def test_destroy_leaves_nothing(stack: Stack) -> None:
    stack.pulumi("destroy", "--yes", "--skip-preview")
    assert stack.get("namespace", NS) is None
    assert stack.get("storageclass", f"{NS}-zfs") is None
    assert stack.get("volumesnapshotclass", f"{NS}-snap") is None
    assert json.loads(stack.pulumi("stack", "export").stdout)["deployment"].get("resources") in (
        None,
        [],
    )


def test_existing_object_is_not_adopted(
    local_cluster: LocalCluster, pulumi_home: Path, tmp_path: Path
) -> None:
    ns = "kp-exists"
    stack = make_stack(tmp_path, local_cluster, pulumi_home, ns, stage="minimal")
    local_cluster.kube().create(
        "Namespace", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
    )
    try:
        result = stack.up(check=False)
        assert result.returncode != 0
        assert f'Namespace {ns}: resource "{ns}" already exists' in result.stdout + result.stderr, (
            result.stdout
        )
    finally:
        stack.pulumi("destroy", "--yes", "--skip-preview", check=False)
        local_cluster.kube().delete("Namespace", ns)


def test_api_errors_name_the_object(
    local_cluster: LocalCluster, pulumi_home: Path, tmp_path: Path
) -> None:
    stack = make_stack(tmp_path, local_cluster, pulumi_home, "Bad_NS", stage="minimal")
    try:
        result = stack.up(check=False)
        output = result.stdout + result.stderr
        assert result.returncode != 0
        # The object, then the API server's own message.
        assert (
            'creating Namespace Bad_NS: Namespace "Bad_NS" is invalid: metadata.name' in output
        ), output
    finally:
        stack.pulumi("destroy", "--yes", "--skip-preview", check=False)
