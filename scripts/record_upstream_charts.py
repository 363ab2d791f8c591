"""Record what the upstream ARC charts render for every shipped stack, or render any chart
copy the same way.

    .venv/bin/python -m scripts.record_upstream_charts [--charts DIR]

runs the program for Pulumi.local.yaml, Pulumi.dev.yaml and Pulumi.prod.yaml under the unit
tier's Pulumi mocks (tests/conftest.py ``deploy``), takes the values, release and namespace
of each ``gha-runner-scale-set`` and ``gha-runner-scale-set-controller`` Chart the program
declares, renders the chart of the same name from ``DIR`` with helm's Go library
(scripts/helm_render, helm.sh/helm/v3 v3.18.6 as linked by pulumi-kubernetes 4.25.0,
``helm template --include-crds`` semantics, Kubernetes v1.34.2) and writes
tests/data/upstream-charts-0.14.2/<stack>.json.  ``DIR`` defaults to the upstream charts
extracted from the actions-runner-controller mirror at tag gha-runner-scale-set-0.14.2
(see tests/data/upstream-charts-0.14.2/README.md for the exact commands).

The table lists every object (kind, apiVersion, namespace, name) with the whole object;
CustomResourceDefinitions are recorded by name and the sha256 of their canonical JSON (each
is ~0.6 MB).  tests/e2e/test_local_charts.py renders charts/local/ the same way and
compares object by object.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

from components.config import SecretValue, load_stack_file, validate_config

ROOT = Path(__file__).resolve().parent.parent
STACKS = ("local", "dev", "prod")
ARC_CHARTS = ("gha-runner-scale-set", "gha-runner-scale-set-controller")
KUBE_VERSION = "v1.34.2"
TABLE_DIR = ROOT / "tests" / "data" / "upstream-charts-0.14.2"
UPSTREAM_TAG = "gha-runner-scale-set-0.14.2"
MIRROR = Path("/work/.mirror/actions+actions-runner-controller/repo")
TOOLCHAIN = Path(
    os.environ.get("ARC_ZFS_CACHE_TOOLCHAIN_DIR", Path.home() / ".cache/arc-zfs-cache/toolchain")
)


def renderer() -> Path:
    """Build scripts/helm_render (cached by Go's build cache) and return the binary."""
    out = TOOLCHAIN / "helm-render" / "helm_render"
    out.parent.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "GOMODCACHE": str(TOOLCHAIN / "go" / "mod"),
        "GOCACHE": str(TOOLCHAIN / "go" / "build"),
        "GOFLAGS": "-mod=mod",
        "GOPROXY": os.environ.get("GOPROXY", "https://proxy.golang.org"),
        "GOSUMDB": "off",
    }
    subprocess.run(
        ["go", "build", "-trimpath", "-p", "2", "-o", str(out), "."],
        cwd=ROOT / "scripts" / "helm_render",
        env=env,
        check=True,
    )
    return out


def _seal_free(value: Any) -> Any:
    """Replace every ``secure:`` entry by a placeholder secret (no chart value carries one)."""
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            return SecretValue("recorded-placeholder")
        return {k: _seal_free(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_seal_free(v) for v in value]
    return value


def releases(stack: str) -> list[dict[str, Any]]:
    """The ARC chart releases the program declares for a shipped stack."""
    # The unit tier's harness: the program under Pulumi mocks, every registered resource.
    deploy = importlib.import_module("tests.conftest").deploy
    raw = _seal_free(load_stack_file(ROOT / f"Pulumi.{stack}.yaml"))
    deployment = deploy(validate_config(raw))
    found = []
    for chart in deployment.of_type("kubernetes:helm.sh/v4:Chart"):
        inputs = chart.inputs
        base = inputs["chart"].rstrip("/").rsplit("/", 1)[-1]
        if base in ARC_CHARTS:
            found.append(
                {
                    "chart": base,
                    "release": inputs["name"],
                    "namespace": inputs["namespace"],
                    "values": inputs.get("values") or {},
                }
            )
    return sorted(found, key=lambda r: (r["chart"], r["release"]))


def render(binary: Path, chart_dir: Path, release: dict[str, Any]) -> list[dict[str, Any]]:
    """Render one release; return its objects, normalised and sorted."""
    request = {
        "chart": str(chart_dir / release["chart"]),
        "release": release["release"],
        "namespace": release["namespace"],
        "kubeVersion": KUBE_VERSION,
        "values": release["values"],
    }
    done = subprocess.run(
        [str(binary)], input=json.dumps(request), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{release['chart']} {release['release']}: {done.stderr.strip()}")
    objects = []
    for doc in yaml.safe_load_all(done.stdout):
        if not doc:
            continue
        objects.append(normalise(doc, release["namespace"]))
    return sorted(objects, key=lambda o: (o["kind"], o["namespace"] or "", o["name"]))


def normalise(obj: dict[str, Any], release_namespace: str) -> dict[str, Any]:
    """One table row: identity plus the object (a CRD by digest)."""
    meta = obj.get("metadata") or {}
    namespaced = obj["kind"] not in (
        "CustomResourceDefinition",
        "ClusterRole",
        "ClusterRoleBinding",
        "Namespace",
    )
    row: dict[str, Any] = {
        "kind": obj["kind"],
        "apiVersion": obj["apiVersion"],
        # helm v4 Chart (like `helm install`) puts namespaced objects without one in the
        # release namespace.
        "namespace": (meta.get("namespace") or release_namespace) if namespaced else None,
        "name": meta["name"],
    }
    if obj["kind"] == "CustomResourceDefinition":
        canonical = json.dumps(obj, sort_keys=True, separators=(",", ":"))
        row["sha256"] = hashlib.sha256(canonical.encode()).hexdigest()
    else:
        row["object"] = obj
    return row


def table(binary: Path, chart_dir: Path, stack: str) -> dict[str, Any]:
    """What ``chart_dir``'s ARC charts render for one stack, release by release."""
    return {
        "stack": stack,
        "kubeVersion": KUBE_VERSION,
        "releases": [
            {
                "chart": r["chart"],
                "release": r["release"],
                "namespace": r["namespace"],
                "objects": render(binary, chart_dir, r),
            }
            for r in releases(stack)
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--charts", type=Path, default=Path("/tmp/upstream-charts/charts"))
    parser.add_argument("--out", type=Path, default=TABLE_DIR)
    args = parser.parse_args(argv)
    binary = renderer()
    args.out.mkdir(parents=True, exist_ok=True)
    for stack in STACKS:
        path = args.out / f"{stack}.json"
        rendered = table(binary, args.charts, stack)
        path.write_text(json.dumps(rendered, indent=1, sort_keys=True) + "\n")
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


def differences(upstream: dict[str, Any], local: dict[str, Any]) -> list[str]:
    """Every difference between two tables of one stack, one line each, sorted.

    An object only one side renders is ``<release> <kind>/<name>: missing`` (or ``extra``);
    an object both render but differently lists the first JSON paths where they differ.
    """
    out: list[str] = []

    def walk(prefix: str, a: Any, b: Any, where: str) -> None:
        if a == b:
            return
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b)):
                walk(f"{prefix}.{key}", a.get(key), b.get(key), where)
            return
        out.append(f"{where}: {prefix.lstrip('.')} differs")

    ups = {r["release"]: r for r in upstream["releases"]}
    locs = {r["release"]: r for r in local["releases"]}
    for release in sorted(set(ups) | set(locs)):
        if release not in locs or release not in ups:
            out.append(f"{release}: release {'missing' if release not in locs else 'extra'}")
            continue
        u = {(o["kind"], o["name"]): o for o in ups[release]["objects"]}
        v = {(o["kind"], o["name"]): o for o in locs[release]["objects"]}
        for key in sorted(set(u) | set(v)):
            where = f"{release} {key[0]}/{key[1]}"
            if key not in v:
                out.append(f"{where}: missing")
            elif key not in u:
                out.append(f"{where}: extra")
            else:
                walk("", u[key], v[key], where)
    return sorted(out)
