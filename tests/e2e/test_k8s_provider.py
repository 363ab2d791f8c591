"""The upstream pulumi-resource-kubernetes plugin through the real engine, as this program uses it.

The plugin is the toolchain's: built from github.com/pulumi/pulumi-kubernetes/provider/v4 at
the pinned version and installed into the toolchain's PULUMI_HOME (scripts/toolchain.sh). The
program (tests/e2e/programs/k8s_provider) declares every kind arc-zfs-cache uses: a provider
with an explicit kubeconfig, core objects, a StorageClass, RBAC, a Deployment, a custom resource
and a helm v4 Chart of the local gha-runner-scale-set chart. One stack goes through preview (no
mutating request), up, a no-op up, an in-place update, a replacement and destroy; the tests
assert the provider's documented behaviour that the program relies on or guards against:
server-side apply under a ``pulumi-kubernetes-*`` field manager, a Secret kept secret in the
state, the API server's message inside the provider's error, and the upsert that takes over an
object that already exists.
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

from components import constants as c
from localcluster.crds import install_arc_crds, remove_crds
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
def pulumi_home() -> Path:
    """The toolchain's PULUMI_HOME, which holds the upstream plugin at the pinned version."""
    home = os.environ.get("PULUMI_HOME")
    if shutil.which("pulumi") is None or not home:
        pytest.fail(f"pulumi or PULUMI_HOME is not set.\nFix: {FIX_COMMAND}", pytrace=False)
    return Path(home)


def test_plugin_is_the_upstream_provider(pulumi_home: Path) -> None:
    env = {**os.environ, "PULUMI_HOME": str(pulumi_home), "PULUMI_SKIP_UPDATE_CHECK": "true"}
    listed = subprocess.run(
        ["pulumi", "plugin", "ls", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    plugins = {(p["name"], p["kind"], p["version"]) for p in json.loads(listed.stdout)}
    assert ("kubernetes", "resource", kubernetes_pin()) in plugins, plugins
    binary = pulumi_home / "plugins" / f"resource-kubernetes-v{kubernetes_pin()}"
    info = subprocess.run(
        ["go", "version", "-m", str(binary / "pulumi-resource-kubernetes")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    # The build info names the package it was built from: upstream's command.
    assert (
        "path\tgithub.com/pulumi/pulumi-kubernetes/provider/v4/cmd/pulumi-resource-kubernetes"
        in (info)
    ), info


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
def arc_crds(local_cluster: LocalCluster) -> Iterator[None]:
    """The controller chart's ARC CRDs (the program deploys only the scale-set chart), removed
    again at the end so that later stacks install them with the controller chart."""
    names = install_arc_crds(local_cluster.kube())
    yield
    remove_crds(local_cluster.kube(), names)


@pytest.fixture(scope="module")
def stack(
    arc_crds: None,
    local_cluster: LocalCluster,
    pulumi_home: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """The full program's stack, destroyed at the end whatever happened (the session's ARC
    controller double removes the chart's cleanup-protection finalizers)."""
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
    # Server-side apply, under the field manager the provider generated for this object.
    fields = stack.get("configmap", "settings", NS)["metadata"]["managedFields"]
    appliers = [m["manager"] for m in fields if m["operation"] == "Apply"]
    assert len(appliers) == 1 and appliers[0].startswith("pulumi-kubernetes-"), fields
    outputs = json.loads(stack.pulumi("stack", "output", "--json").stdout)
    # AutoscalingRunnerSet, the kube-mode ServiceAccount, Role and RoleBinding, the manager
    # Role and RoleBinding (as upstream 0.14.2 renders them).
    assert outputs["chart_resources"] == 6
    # The chart's objects are its children. The chart's dependsOn orders the Construct call
    # (the chart renders after its dependencies exist), not its children's state; the one
    # dependency a child records is what its config.kubernetes.io/depends-on annotation names:
    # the AutoscalingRunnerSet on the five objects the chart protects with cleanup-protection,
    # so that `pulumi destroy` deletes it first.
    resources = json.loads(stack.pulumi("stack", "export").stdout)["deployment"]["resources"]
    ars = next(r for r in resources if r["urn"].endswith(f"::runners:{NS}/runners"))
    assert ars["parent"].endswith("kubernetes:helm.sh/v4:Chart::runners")
    by_urn = {r["urn"]: r for r in resources}
    depends_on = sorted(
        (by_urn[urn]["type"].rpartition(":")[2], by_urn[urn]["outputs"]["metadata"]["name"])
        for urn in ars.get("dependencies") or []
    )
    assert depends_on == sorted(
        [
            ("ServiceAccount", "runners-gha-rs-kube-mode"),
            ("Role", "runners-gha-rs-kube-mode"),
            ("RoleBinding", "runners-gha-rs-kube-mode"),
            ("Role", "runners-gha-rs-manager"),
            ("RoleBinding", "runners-gha-rs-manager"),
        ]
    ), ars.get("dependencies")
    for urn in ars["dependencies"]:
        finalizers = by_urn[urn]["outputs"]["metadata"].get("finalizers") or []
        assert c.CLEANUP_PROTECTION_FINALIZER in finalizers, urn


def test_state_never_shows_the_secret(stack: Stack) -> None:
    state = stack.pulumi("stack", "export").stdout
    assert TOKEN not in state
    assert base64.b64encode(TOKEN.encode()).decode() not in state
    secret = next(
        r
        for r in json.loads(state)["deployment"]["resources"]
        if r["type"] == "kubernetes:core/v1:Secret"
    )
    # Upstream stores the stringData the program gave as the Secret's data, encrypted.
    assert "ciphertext" in secret["outputs"]["data"], "outputs.data of the Secret is not secret"
    assert "stringData" not in secret["outputs"], secret["outputs"].keys()
    assert "ciphertext" in json.dumps(secret["inputs"]), "the Secret's inputs are not secret"


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


def test_existing_object_is_taken_over(
    local_cluster: LocalCluster, pulumi_home: Path, tmp_path: Path
) -> None:
    """Upstream with server-side apply upserts: ``up`` adopts an object that already exists.

    The README warns about it (Namespaces and hook ConfigMaps of the same name are adopted, and
    a later ``pulumi destroy`` deletes them); this test pins the behaviour down.
    """
    ns = "kp-exists"
    stack = make_stack(tmp_path, local_cluster, pulumi_home, ns, stage="minimal")
    local_cluster.kube().create(
        "Namespace", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
    )
    uid = stack.get("namespace", ns)["metadata"]["uid"]
    try:
        stack.up()
        live = stack.get("namespace", ns)
        assert live["metadata"]["uid"] == uid, "the namespace was recreated, not adopted"
        assert live["metadata"]["labels"]["app.kubernetes.io/part-of"] == "k8s-provider-e2e"
        stack.pulumi("destroy", "--yes", "--skip-preview")
        gone = stack.get("namespace", ns)
        assert gone is None or gone["status"]["phase"] == "Terminating", gone
    finally:
        stack.pulumi("destroy", "--yes", "--skip-preview", check=False)
        if stack.get("namespace", ns) is not None:
            local_cluster.kube().delete("Namespace", ns)


def test_api_errors_name_the_object(
    local_cluster: LocalCluster, pulumi_home: Path, tmp_path: Path
) -> None:
    stack = make_stack(tmp_path, local_cluster, pulumi_home, "Bad_NS", stage="minimal")
    try:
        result = stack.up(check=False)
        output = result.stdout + result.stderr
        assert result.returncode != 0
        # The object (its URN), then the API server's own message.
        assert (
            'kubernetes:core/v1:Namespace::ns" was not successfully created by the Kubernetes '
            'API server: Namespace "Bad_NS" is invalid: metadata.name' in output
        ), output
    finally:
        stack.pulumi("destroy", "--yes", "--skip-preview", check=False)
