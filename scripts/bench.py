"""Benchmarks of the program through the real Pulumi CLI, printed as ratios from one run.

    make bench
    # = eval "$(scripts/toolchain.sh env)"; .venv/bin/python scripts/bench.py

Everything is measured in this one run on this machine, so the ratios compare like with like:

a. ``pulumi preview`` of stacks with 1, 10 and 40 runner scale sets against the local control
   plane (kube-apiserver + etcd + the real storage of ``localcluster``), without and with
   the policy pack, each as a multiple of the preview of an empty Python program: the floor that
   the CLI, the engine and the Python language host cost whatever the program does;
b. ``pulumi up`` that promotes a cache against ``pulumi up`` with no change (the local stack);
c. the unit tier;
d. on the local node (``localcluster.node``, real kubelet on containerd): a job pod from the
   hook double's ``prepare-job`` (the runner pod's view, the program's hook template) from
   creation to Running with its cache mounted: the template's ZFS clone (through the CSI
   driver double's Node service) of a parent of 10 files / 1 MiB and of one of 100,000 files
   / 1 GiB, with the program's ``fsGroupChangePolicy: OnRootMismatch`` and, for
   comparison, ``Always`` (what a template without it gets: a recursive ownership change at
   every mount); the hook-template propagation: a ``pulumi up`` that changes a scale set's
   hook template, then the wait until a running runner pod (the ARC controller double's) has
   the new template in its mounted file; and the peak memory of the whole local stack (every
   process of its state dir and what runs in its containers: the largest summed RSS of a
   sample, and the sum of each process's own peak, ``VmHWM``) while the local stack is
   deployed and the job pods run;
e. on the local cluster's real storage (zfs-fuse, the real csi-provisioner, the ZFS driver
   double): a job's clone PVC of a parent filled with 10 files / 1 MiB and of one filled with
   100,000 files / 1 GiB (incompressible bytes, really written), from creation to Bound, and
   the clone's ``used``: copy-on-write should make both the same (goal: within 1.2x, ``used``
   under 1 MiB).

Then it shows where the time goes: the gRPC calls the engine makes to the language host,
the providers and the policy analyzer (``PULUMI_DEBUG_GRPC``: calls and time per method), the
program's own Python under Pulumi mocks (``cProfile``: building the resource graph of the
40-scale-set stack), its import time, and the unit tier's slowest tests.

The stack configs are generated from ``Pulumi.local.yaml``; the program runs from a temporary
copy with a ``file://`` backend, as the e2e tier runs it (``tests/e2e/pulumi_cli.py``). A part
whose tools are missing is reported as not measured, with the reason, and the script exits 1.
No test asserts on any time: these are numbers for people.
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import functools
import importlib
import io
import json
import os
import platform
import pstats
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

ROOT: Final = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as `python scripts/bench.py`
    sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from components import constants as c  # noqa: E402
from components.config import SecretValue, validate_config  # noqa: E402
from localcluster.controlplane import LocalControlPlane  # noqa: E402
from localcluster.harness import LocalCluster  # noqa: E402
from localcluster.images import JOB_IMAGE  # noqa: E402
from localcluster.kube import meta  # noqa: E402
from localcluster.node import LocalNode  # noqa: E402
from localcluster.storage import DEFAULT_NODE  # noqa: E402
from localcluster.toolchain import ToolchainMissingError, find_binaries  # noqa: E402
from localcluster.zfs_pool import zfs  # noqa: E402
from scripts.deps import requirements  # noqa: E402
from tests.e2e.propagation_env import (  # noqa: E402
    SCALE_SET,
    job_memory,
    running_runner,
    with_runner_work_class,
)
from tests.e2e.pulumi_cli import PulumiCommandError, PulumiProject  # noqa: E402

SIZES: Final = (1, 10, 40)
TOKEN: Final = "ghp_benchThrowawayToken0123456789"  # never leaves the local control plane
POLICY_PACK: Final = ROOT / "policy"
# The config `make preview` and the workflows pass with the pack (its visible exemptions).
POLICY_PACK_CONFIG: Final = POLICY_PACK / "policy-config.json"
UNIT_TIER: Final = ("-m", "pytest", "-q", "-m", "not e2e", "--ignore=tests/e2e")
FIX_TOOLCHAIN: Final = 'scripts/toolchain.sh && eval "$(scripts/toolchain.sh env)"'


class NotMeasuredError(Exception):
    """A part of the benchmark cannot run here; the message says why and how to fix it."""


@dataclass
class Timing:
    """Wall times of repeated runs of one thing."""

    label: str
    seconds: list[float] = field(default_factory=list)

    @property
    def best(self) -> float:
        """Fastest run: the one least disturbed by other work on the machine."""
        return min(self.seconds)

    @property
    def median(self) -> float:
        """Median wall time in seconds."""
        return statistics.median(self.seconds)

    def spread(self) -> str:
        """min-max of the runs, for judging the noise."""
        return f"{min(self.seconds):.2f}-{max(self.seconds):.2f}s"


@dataclass
class Report:
    """Every result and every part that could not be measured."""

    timings: dict[str, Timing] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    sections: list[str] = field(default_factory=list)

    def time(self, key: str, label: str, run: Callable[[], object], repeat: int) -> Timing:
        """Run ``run`` ``repeat`` times and record its wall times under ``key``."""
        timing = self.timings.get(key) or Timing(label)
        for _ in range(repeat):
            began = time.perf_counter()
            run()
            timing.seconds.append(time.perf_counter() - began)
        # Recorded only once a run succeeded: a failing part leaves no empty row behind.
        self.timings[key] = timing
        return timing


# --- Stack configs ----------------------------------------------------------------------------


def local_stack_config(pool: str | None = None) -> dict[str, Any]:
    """The shipped local stack's config without its sealed secret (set per project instead),
    on ``pool`` if given (a local cluster's, for stacks that provision)."""
    document = yaml.safe_load((ROOT / "Pulumi.local.yaml").read_text(encoding="utf-8"))
    config: dict[str, Any] = {k.partition(":")[2]: v for k, v in document["config"].items()}
    del config["github"]["credentials"]["token"]
    if pool is not None:
        config["storage"]["poolName"] = pool
    return config


def scaled_config(scale_sets: int) -> dict[str, Any]:
    """The local stack with ``scale_sets`` copies of its consumer scale set ``local-linux``.

    Caches, storage and controller stay as shipped, so the stacks differ only in the number of
    scale sets (each one: a hook ConfigMap, a gha-runner-scale-set chart release, its namespace
    objects); the builder scale set is left out so that every scale set is alike.
    """
    config = local_stack_config()
    template = config["scaleSets"]["local-linux"]
    config["scaleSets"] = {f"bench-{i:02d}": copy.deepcopy(template) for i in range(scale_sets)}
    return config


# --- Running pulumi -----------------------------------------------------------------------------


def pulumi_version() -> str:
    """``pulumi version`` of the CLI on PATH, or NotMeasuredError with the fix."""
    pulumi = shutil.which("pulumi")
    if pulumi is None:
        raise NotMeasuredError(f"no pulumi CLI on PATH; run: {FIX_TOOLCHAIN}")
    return subprocess.run(
        [pulumi, "version"], capture_output=True, text=True, check=True
    ).stdout.strip()


def require_plugins(project: PulumiProject) -> str:
    """The kubernetes provider plugin the program needs (the SDK's pin), or NotMeasuredError.

    The local stack prepares no node over SSH, so the command plugin is not needed.
    """
    listed = json.loads(project.run("plugin", "ls", "--json").stdout or "[]")
    have = {(p["name"], p["version"]) for p in listed if p.get("kind") == "resource"}
    # The plugin version is the Python SDK pin (pyproject.toml, read as the Makefile does).
    (version,) = [
        r.partition("==")[2] for r in requirements([]) if r.startswith("pulumi-kubernetes==")
    ]
    if ("kubernetes", version) not in have:
        raise NotMeasuredError(
            f"provider plugin kubernetes v{version} not installed in PULUMI_HOME="
            f"{os.environ.get('PULUMI_HOME', '~/.pulumi')}; run: {FIX_TOOLCHAIN}"
        )
    return f"kubernetes plugin v{version}"


def empty_project(workdir: Path) -> PulumiProject:
    """A Python program that registers nothing, on the repository's virtualenv."""
    workdir.mkdir(parents=True)
    manifest = {
        "name": "bench-floor",
        "runtime": {
            "name": "python",
            "options": {"toolchain": "pip", "virtualenv": str(ROOT / ".venv")},
        },
    }
    (workdir / "Pulumi.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    (workdir / "__main__.py").write_text('"""Registers nothing: the engine\'s floor."""\n')
    state = workdir.parent / "floor-state"
    state.mkdir()
    project = PulumiProject(
        workdir,
        "floor",
        {
            "PULUMI_BACKEND_URL": f"file://{state}",
            "PULUMI_CONFIG_PASSPHRASE": "bench-throwaway",
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "NO_COLOR": "1",
        },
    )
    project.run("stack", "init", "floor")
    return project


def preview_args(policy: bool) -> list[str]:
    """Arguments of a benchmarked preview (as CI runs it, minus the diff rendering)."""
    return [
        "preview",
        "--stack",
        "{stack}",
        *(
            ["--policy-pack", str(POLICY_PACK), "--policy-pack-config", str(POLICY_PACK_CONFIG)]
            if policy
            else []
        ),
    ]


def run_preview(project: PulumiProject, policy: bool = False, **env: str) -> None:
    """One ``pulumi preview`` of the project's stack (policy pack optional)."""
    args = [a.replace("{stack}", project.stack) for a in preview_args(policy)]
    saved = dict(project.env)
    project.env.update(env)
    try:
        project.run(*args)
    finally:
        project.env = saved


@dataclass
class GrpcMethod:
    """The calls of one gRPC method in a debug log."""

    server: bool  # served by the engine (program -> engine) rather than called by it
    calls: int = 0
    seconds: float = 0.0


def grpc_profile(project: PulumiProject, logfile: Path, policy: bool) -> dict[str, GrpcMethod]:
    """Calls per gRPC method of one preview, and the time of those the engine makes.

    The engine logs both directions. Calls it makes (to the language host, the providers, the
    policy analyzer) carry their duration; calls it serves (the program's RegisterResource and
    friends) are logged without a start time, so only their number means something.
    """
    run_preview(project, policy, PULUMI_DEBUG_GRPC=str(logfile))
    methods: dict[str, GrpcMethod] = {}
    for line in logfile.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("progress") != "response_completed":
            continue
        server = (entry.get("metadata") or {}).get("mode") == "server"
        method = methods.setdefault(entry["method"], GrpcMethod(server))
        method.calls += 1
        if not server:
            method.seconds += entry.get("duration", 0) / 1e9
    return methods


# --- The parts ------------------------------------------------------------------------------


@contextmanager
def local_cluster(workdir: Path) -> Iterator[LocalCluster]:
    """A started local control plane + its real storage, the local node and the ARC controller
    double, stopped on the way out: the local stack's ``up`` awaits the controller Deployment
    (a kubelet must run its pod) and its destroy needs the double's scale-set cleanup."""
    try:
        find_binaries()
    except ToolchainMissingError as exc:
        raise NotMeasuredError(f"no local control plane: {exc}") from None
    cluster = LocalCluster(workdir / "cluster", node=True, arc_controller=True)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


def prepare_floor(report: Report, workdir: Path) -> PulumiProject:
    """The empty program, warmed up, with the engine calls of its preview profiled."""
    project = empty_project(workdir / "floor")
    run_preview(project)  # warm-up: the language host's first start, .pyc files
    engine_calls = {
        name.rsplit("/", 1)[-1]: m.seconds
        for name, m in grpc_profile(project, workdir / "floor-grpc.jsonl", False).items()
        if not m.server and m.seconds >= 0.01
    }
    report.sections.append(
        "The floor's own engine calls (one preview with the gRPC debug log): "
        + ", ".join(f"`{name}` {seconds:.2f}s" for name, seconds in engine_calls.items())
        + "; the rest of its wall time is the CLI, the engine and the language host starting."
    )
    return project


FLOOR_LABEL: Final = "empty program (engine floor)"


def measure_previews(
    report: Report,
    *,
    floor: PulumiProject,
    cluster: LocalCluster,
    workdir: Path,
    repeat: int,
    sizes: Sequence[int],
) -> None:
    """Previews of the program at each size, with and without the policy pack; gRPC profile.

    One stack per size, and the runs interleaved round by round (floor, then every size and
    variant): load from other work on the machine then falls on all of them alike.
    """
    projects: dict[int, PulumiProject] = {}
    for size in sizes:
        project = PulumiProject.create(workdir / f"program-{size}", cluster.kubeconfig, f"s{size}")
        if not projects:
            report.notes.append(require_plugins(project))
        project.set_config(scaled_config(size), {"github.credentials.token": TOKEN})
        run_preview(project)  # warm-up: .pyc files of the copy, plugin start-up caches
        run_preview(project, policy=True)
        projects[size] = project
    for _ in range(repeat):
        report.time("floor", FLOOR_LABEL, lambda: run_preview(floor), 1)
        for size, project in projects.items():
            plain = functools.partial(run_preview, project)
            report.time(f"preview-{size}", f"preview, {size} scale set(s)", plain, 1)
            with_policy = functools.partial(run_preview, project, policy=True)
            report.time(
                f"policy-{size}", f"preview + policy pack, {size} scale set(s)", with_policy, 1
            )
    largest = max(sizes)
    began = time.perf_counter()
    totals = grpc_profile(projects[largest], workdir / "grpc.jsonl", policy=True)
    wall = time.perf_counter() - began
    rows = sorted(totals.items(), key=lambda kv: (kv[1].server, -kv[1].seconds, -kv[1].calls))
    lines = [
        f"gRPC calls of one preview + policy pack, {largest} scale sets (wall {wall:.1f}s with "
        "the debug log on; concurrent calls overlap, so their times add up to more than it):",
        "",
        "| method | direction | calls | total s |",
        "| --- | --- | ---: | ---: |",
        *(
            f"| `{name.rsplit('/', 2)[-2]}/{name.rsplit('/', 1)[-1]}` | "
            f"{'program → engine' if m.server else 'engine → plugin'} | {m.calls} | "
            f"{'—' if m.server else f'{m.seconds:.2f}'} |"
            for name, m in rows
            if m.server or m.seconds >= 0.01
        ),
    ]
    report.sections.append("\n".join(lines))


def measure_promotion(report: Report, cluster: LocalCluster, workdir: Path, repeat: int) -> None:
    """``pulumi up`` promoting gcc12 vs ``pulumi up`` with no change, on the local stack.

    Interleaved: each round is a no-change up, then a new promote token and its up.
    """
    project = PulumiProject.create(workdir / "promotion", cluster.kubeconfig, stack="promote")
    require_plugins(project)
    project.set_config(
        local_stack_config(cluster.storage.pool.name), {"github.credentials.token": TOKEN}
    )
    report.time("up-create", "up, creating the local stack", project.up, 1)
    generation = int(project.outputs()["generations"]["gcc12"])
    for attempt in range(1, repeat + 1):
        report.time("up-noop", "up with no change", lambda: project.up("--expect-no-changes"), 1)
        project.run(
            "config", "set", "--path", "caches.gcc12.promote", f"bench-{attempt}",
            "--stack", project.stack,
        )  # fmt: skip
        timings = dict(report.timings)
        report.time("up-promote", "up promoting cache gcc12", project.up, 1)
        now = int(project.outputs()["generations"]["gcc12"])
        if now != generation + 1:
            report.timings = timings
            report.timings.pop("up-promote", None)
            raise NotMeasuredError(
                f"a new promote token left gcc12 at generation {now} (expected {generation + 1}): "
                "the CachePromotion provider does not promote yet"
            )
        generation = now
    project.destroy(check=False)


def stack_memory(marker: str) -> dict[int, tuple[int, int]]:
    """pid -> (resident bytes, own peak resident bytes ``VmHWM``) of every process whose
    command line names ``marker``, and of their descendants (containers, shims)."""
    parents: dict[int, int] = {}
    memory: dict[int, tuple[int, int]] = {}
    roots: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            fields = dict(
                line.split(":", 1) for line in (entry / "status").read_text().splitlines()
            )
        except (OSError, ValueError):
            continue
        if "VmRSS" not in fields:  # a kernel thread, or exiting
            continue
        pid = int(entry.name)
        parents[pid] = int(stat.rsplit(")", 1)[1].split()[1])
        kib = (int(fields[key].split()[0]) * 1024 for key in ("VmRSS", "VmHWM"))
        memory[pid] = (next(kib), next(kib))
        if marker in cmdline:
            roots.add(pid)
    mine: dict[int, tuple[int, int]] = {}
    for pid, usage in memory.items():
        walk = pid
        while walk > 1 and walk not in roots:
            walk = parents.get(walk, 0)
        if walk in roots:
            mine[pid] = usage
    return mine


class PeakSampler:
    """Samples :func:`stack_memory` every ``interval`` seconds in a thread.

    ``peak``: the largest sum of the processes' resident memory seen at one sample;
    ``sum_of_peaks``: the sum over every process seen of its own peak (``VmHWM``, kept for
    processes that exited), an upper bound that no sampling interval can miss. Both in bytes.
    """

    def __init__(self, marker: str, interval: float = 0.5) -> None:
        self.marker, self.interval, self.peak = marker, interval, 0
        self._peaks: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def sum_of_peaks(self) -> int:
        """Sum of every sampled process's own peak resident memory."""
        return sum(self._peaks.values())

    @property
    def processes(self) -> int:
        """How many processes were seen."""
        return len(self._peaks)

    def _run(self) -> None:
        while not self._stop.is_set():
            sample = stack_memory(self.marker)
            self.peak = max(self.peak, sum(rss for rss, _ in sample.values()))
            for pid, (_, hwm) in sample.items():
                self._peaks[pid] = max(self._peaks.get(pid, 0), hwm)
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


NODE_PARENTS: Final = {
    # parent: (files, total bytes of its files)
    "small": (10, 2**20),
    "large": (100_000, 2**30),
}
NODE_VARIANTS: Final = {
    # key: (label, parent, fsGroupChangePolicy: None = the program's template)
    "job-small": ("job pod to Running, clone of 10 files / 1 MiB", "small", None),
    "job-large": ("job pod to Running, clone of 100,000 files / 1 GiB", "large", None),
    "job-large-always": ("the same, fsGroupChangePolicy: Always", "large", "Always"),
}
NODE_NAMESPACE: Final = "bench-node"


def _wait(what: str, check: Callable[[], object], timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise NotMeasuredError(f"timed out waiting for {what}")


def _running(kube: Any, namespace: str, name: str) -> bool:
    pod = kube.get("Pod", name, namespace) or {}
    return bool((pod.get("status") or {}).get("phase") == "Running")


#: ``$job`` memory requests that successive propagation samples switch between.
PROPAGATION_REQUESTS: Final = ("384Mi", "512Mi")


def template_propagation(
    project: PulumiProject,
    config: dict[str, Any],
    node: LocalNode,
    pod: dict[str, Any],
    memory: str,
) -> tuple[float, float]:
    """A ``pulumi up`` giving the ``$job`` container ``memory``, then the wait for the running
    runner pod's mounted template file to have it: (seconds of the ``up``, seconds from its
    return to the new template in the file)."""
    path = (
        node.kubelet_root / "pods" / pod["metadata"]["uid"] / "volumes"
        / "kubernetes.io~configmap" / c.HOOK_TEMPLATE_VOLUME / c.HOOK_TEMPLATE_KEY
    )  # fmt: skip
    project.set_config(with_runner_work_class(config, memory), {"github.credentials.token": TOKEN})
    began = time.monotonic()
    project.up()
    returned = time.monotonic()

    def arrived() -> bool:
        text = path.read_text()  # parsed only once it may have changed: polled every 20 ms
        return memory in text and job_memory(yaml.safe_load(text)) == memory

    _wait("the new template in the runner pod", arrived, 300.0)
    return returned - began, time.monotonic() - returned


def measure_node(report: Report, workdir: Path, repeat: int) -> None:
    """Part d: job pods on the local node, and the stack's peak memory (see the docstring)."""
    from components.hook_template import CacheMount, hook_template  # noqa: PLC0415
    from localcluster.hook_double import prepare_job  # noqa: PLC0415
    from tests.e2e.node_env import hook_view, local_storage_class, runner_pod  # noqa: PLC0415

    state = workdir / "node-stack"
    # One zfs-fuse daemon serves every pool of the machine: a pool of this run's own.
    pool = f"bench-node-{os.getpid()}"
    cli = [sys.executable, "-m", "localcluster", "--state-dir", str(state), "--pool", pool]
    up = subprocess.run(
        [*cli, "up"], capture_output=True, text=True, cwd=ROOT, timeout=600, check=False
    )
    if up.returncode != 0:
        raise NotMeasuredError((up.stderr or up.stdout).strip().splitlines()[-1])
    try:
        with PeakSampler(str(state)) as sampler:
            plane = LocalControlPlane.attach(state)
            node = LocalNode(plane)
            project = PulumiProject.create(workdir / "node-program", plane.kubeconfig, "local")
            config = local_stack_config(pool)
            project.set_config(with_runner_work_class(config), {"github.credentials.token": TOKEN})
            project.up()
            kube = plane.kube("harness")
            runner_namespace = config["scaleSets"][SCALE_SET]["namespace"]
            runner = running_runner(plane.client(), kube, node, runner_namespace)
            runner_pod_now = kube.get("Pod", runner, runner_namespace)
            if runner_pod_now is None:
                raise NotMeasuredError(f"runner pod {runner_namespace}/{runner} is gone")
            # First, while the runner pod is fresh: each sample waits up to a kubelet re-sync.
            samples = [
                template_propagation(
                    project, config, node, runner_pod_now,
                    PROPAGATION_REQUESTS[i % len(PROPAGATION_REQUESTS)],
                )
                for i in range(min(repeat, 3))
            ]  # fmt: skip
            after = kube.get("Pod", runner, runner_namespace) or {}
            restarted = meta(after).get("uid") != meta(runner_pod_now).get("uid")
            views: dict[str, Any] = {}
            namespace = NODE_NAMESPACE
            kube.create(
                "Namespace",
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace,
                 "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}},
            )  # fmt: skip
            _wait("service account", functools.partial(
                kube.get, "ServiceAccount", "default", namespace))  # fmt: skip
            storage_class = local_storage_class()  # the program's class on the node
            for parent, (files, total) in NODE_PARENTS.items():
                volume = _claim(kube, namespace, f"parent-{parent}", storage_class=storage_class)
                root = _mountpoint(f"{pool}/{volume}")
                _fill(root, files, total)
                # As a builder job with fsGroup 123 leaves it (the kubelet's setgid group dir):
                # OnRootMismatch then finds nothing to change at a clone's mount.
                os.chown(root, 0, c.RUNNER_GID)
                root.chmod(0o2775)
            os.sync()  # the parents were written long before a job clones them
            for key, (_, parent, policy) in NODE_VARIANTS.items():
                mount = CacheMount(
                    cache="bench",
                    claim=f"parent-{parent}",
                    size=CLONE_SIZE,
                    storage_class=storage_class,
                    mount_path="/CONAN_HOME",
                )
                template = hook_template("bench", [mount])
                if policy:
                    template["spec"]["securityContext"]["fsGroupChangePolicy"] = policy
                runner = runner_pod(kube, node, namespace, template, name=f"runner-{key}")
                _wait("runner Running", functools.partial(_running, kube, namespace, runner))
                views[key] = hook_view(plane, node, namespace, runner)

            def job(key: str) -> None:
                view = views[key]
                created = prepare_job(view, image=JOB_IMAGE, entry_point="/bin/sh",
                                      entry_point_args=["-c", "sleep 3600"])  # fmt: skip
                name = created["metadata"]["name"]
                _wait("job pod Running", functools.partial(_running, kube, view.namespace, name))

            def reset(key: str) -> None:
                view = views[key]
                job_pod = f"{view.runner_pod}-workflow"
                kube.delete("Pod", job_pod, view.namespace, grace_period=0)
                # Its clone claim (<pod>-<volume>) goes with it; the next job's has that name.
                _wait("job pod and its clone gone", lambda: not [
                    x for kind in ("Pod", "PersistentVolumeClaim")
                    for x in kube.list(kind, view.namespace)
                    if x["metadata"]["name"].startswith(job_pod)])  # fmt: skip

            for key in NODE_VARIANTS:  # warm-up: first mount, first container of the image
                job(key)
                reset(key)
            for _ in range(repeat):  # interleaved rounds, as the other parts
                for key, (label, *_rest) in NODE_VARIANTS.items():
                    report.time(key, label, functools.partial(job, key), 1)
                    reset(key)
        report.sections.append(
            "Hook template propagation (part d): a `pulumi up` of the local stack changing "
            f"scale set {SCALE_SET}'s hook template (its `$job` memory request), then the wait "
            "for the running runner pod (the ARC controller double's) to have it in its mounted "
            "template file; "
            + "; ".join(f"up {up_s:.1f}s, then {wait_s:.1f}s" for up_s, wait_s in samples)
            + (" (the runner pod was replaced: not a propagation)" if restarted else "")
            + ". The kubelet rewrites a ConfigMap volume when it re-syncs the pod, every "
            "`syncFrequency` jittered up to 1.5x (pod_workers.go at v1.34.2), once its Watch "
            "cache has the change; the local kubelet sets neither `syncFrequency` nor "
            "`configMapAndSecretChangeDetectionStrategy`, so a default kubelet's 1 minute and "
            "Watch apply: up to about 90 s."
        )
        report.sections.append(
            f"Peak memory of the whole local stack ({sampler.processes} processes: etcd, "
            "kube-apiserver, kube-controller-manager, zfs-fuse, the CSI driver double and "
            "sidecars, kube-scheduler, containerd and its shims, kubelet, ARC controller double, "
            "and every container) while the local stack was deployed and the job pods ran: "
            f"the largest sum of their RSS at one sample (every 0.5 s) {sampler.peak / 2**30:.2f} "
            f"GiB, the sum of each process's own peak (VmHWM) {sampler.sum_of_peaks / 2**30:.2f} "
            "GiB (goal under 3 GiB). Not a cgroup figure: the processes share no cgroup of "
            "their own (the kubelet runs with cgroupsPerQOS: false)."
        )
    finally:
        subprocess.run(
            [*cli, "down", "--purge"], capture_output=True, text=True, cwd=ROOT, timeout=300,
            check=False,
        )  # fmt: skip


CLONE_VARIANTS: Final = {
    # key: (label, files, total bytes of the parent's files)
    "clone-small": ("job clone to Bound, parent 10 files / 1 MiB", 10, 2**20),
    "clone-large": ("job clone to Bound, parent 100,000 files / 1 GiB", 100_000, 2**30),
}
#: Parents and clones alike: a clone must request exactly its parent's size (driver rule).
CLONE_SIZE: Final = "2Gi"


def _fill(path: Path, files: int, total: int) -> None:
    """``files`` files of random bytes (so lzjb compression cannot shrink them) under ``path``."""
    for index in range(files):
        sub = path / f"d{index // 1000:03d}"
        sub.mkdir(exist_ok=True)
        (sub / f"f{index:06d}").write_bytes(os.urandom(total // files))


def _mountpoint(dataset: str) -> Path:
    return Path(zfs("get", "-H", "-o", "value", "mountpoint", dataset).stdout.strip())


def _claim(
    kube: Any,
    namespace: str,
    name: str,
    parent: str | None = None,
    storage_class: str = "bench-zfs",
) -> str:
    """Create a claim of ``storage_class`` (a clone of ``parent`` if given); its PV once Bound."""
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "storageClassName": storage_class,
        "resources": {"requests": {"storage": CLONE_SIZE}},
    }
    if parent is not None:
        spec["dataSource"] = {"kind": "PersistentVolumeClaim", "name": parent}
    kube.create(
        "PersistentVolumeClaim",
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
         "metadata": {"name": name, "namespace": namespace}, "spec": spec},
    )  # fmt: skip
    found: list[str] = []

    def bound() -> bool:
        pvc = kube.get("PersistentVolumeClaim", name, namespace) or {}
        if (pvc.get("status") or {}).get("phase") == "Bound":
            found.append(pvc["spec"]["volumeName"])
        return bool(found)

    _wait(f"claim {name} Bound", bound)
    return found[0]


def measure_clones(report: Report, cluster: LocalCluster) -> None:
    """Part e: a job's clone of a small and of a large parent, creation to Bound, and ``used``."""
    kube = cluster.kube()
    pool = cluster.storage.pool
    namespace = "bench-clones"
    kube.ensure("Namespace", {"apiVersion": "v1", "kind": "Namespace",
                              "metadata": {"name": namespace}})  # fmt: skip
    kube.ensure(
        "StorageClass",
        {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
         "metadata": {"name": "bench-zfs"}, "provisioner": c.OPENEBS_ZFS_CSI_DRIVER,
         "parameters": {"poolname": pool.name, "fstype": "zfs", "compression": "lz4"},
         "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate",
         "allowedTopologies": [{"matchLabelExpressions": [
             {"key": c.OPENEBS_NODE_TOPOLOGY_KEY, "values": [DEFAULT_NODE]}]}]},
    )  # fmt: skip
    parents: dict[str, str] = {}
    jobs: dict[str, str] = {}

    def clone(key: str, name: str) -> None:
        jobs[name] = _claim(kube, namespace, name, f"{key}-parent")

    for key, (_, files, total) in CLONE_VARIANTS.items():
        parents[key] = f"{pool.name}/{_claim(kube, namespace, f'{key}-parent')}"
        _fill(_mountpoint(parents[key]), files, total)
    # A warm cache was written long before a job clones it: flush the fresh writes so a
    # clone's time is the clone's, not the write-back of the fill.
    os.sync()
    clone("clone-small", "warm-up")  # the first clone of a run pays for cold caches
    for key, (label, *_) in CLONE_VARIANTS.items():
        # One run each: a ratio for people, never a timed assert.
        report.time(key, label, functools.partial(clone, key, f"{key}-job"), 1)
    sizes = {d.name: d.used for d in pool.datasets()}
    used = {
        key: (sizes[parents[key]], sizes[f"{pool.name}/{jobs[f'{key}-job']}"])
        for key in CLONE_VARIANTS
    }
    report.sections.append(
        "Job clones on the real storage (part e, one run each after one warm-up clone): "
        + "; ".join(
            f"{CLONE_VARIANTS[key][0].split(', ')[1]}: parent used {parent / 2**20:.1f} MiB, "
            f"clone used {clone / 2**10:.0f} KiB"
            for key, (parent, clone) in used.items()
        )
        + f". Clone time ratio large/small: {ratio(report, 'clone-large', 'clone-small')} "
        "(goal within 1.2x, clone used under 1 MiB)."
    )


def measure_unit_tier(report: Report, repeat: int) -> None:
    """Wall time of the unit tier as `make unit` runs it; its slowest tests once."""

    failures: set[str] = set()

    def unit(*extra: str) -> str:
        result = subprocess.run(
            [sys.executable, *UNIT_TIER, "-p", "no:cacheprovider", *extra],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode not in (0, 1):  # 1: tests failed; anything else: it did not run
            raise NotMeasuredError(f"the unit tier did not run:\n{result.stdout[-2000:]}")
        failures.update(re.findall(r"^FAILED (\S+)", result.stdout, re.M))
        return result.stdout

    report.time("unit", "unit tier", unit, repeat)
    slowest = [
        line
        for line in unit("--durations=8").splitlines()
        if re.match(r"^\d+\.\d+s (call|setup|teardown) ", line)
    ]
    report.sections.append(
        "Slowest unit tests (one extra run):\n\n" + "\n".join(f"    {line}" for line in slowest)
    )
    if failures:
        # A failing test barely changes the tier's time, but the reader must know.
        report.sections.append(
            "The unit tier had failing tests during this run (timed all the same): "
            + ", ".join(f"`{f}`" for f in sorted(failures))
        )


def profile_program(report: Report, sizes: Sequence[int], repeat: int) -> None:
    """Where the program's own Python time goes: imports, and the graph under mocks."""
    probe = (
        "import time; t = time.perf_counter(); import components.stack; "
        "print(time.perf_counter() - t)"
    )
    report.time(
        "import",
        "python start-up + `import components.stack`",
        lambda: subprocess.run(
            [sys.executable, "-c", probe], cwd=ROOT, check=True, capture_output=True
        ),
        repeat,
    )
    # The unit tier's harness runs the whole program under Pulumi mocks, in this process.
    deploy = importlib.import_module("tests.conftest").deploy

    def graph(size: int) -> Any:
        raw = scaled_config(size)
        raw["github"]["credentials"]["token"] = SecretValue(TOKEN)
        return deploy(validate_config(raw))

    graph(min(sizes))  # warm-up: the SDK's lazily imported resource modules load on first use
    resources: dict[int, int] = {}
    for size in sizes:
        resources[size] = len(graph(size).resources)
        report.time(
            f"mocks-{size}",
            f"program under mocks, {size} scale set(s) ({resources[size]} resources)",
            functools.partial(graph, size),
            repeat,
        )
    largest = max(sizes)
    profiler = cProfile.Profile()
    profiler.runcall(graph, largest)
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(12)
    table = "\n".join(
        f"    {line}"
        for line in out.getvalue().splitlines()
        if re.match(r"^\s+\d+(/\d+)?\s+\d", line)
    )
    report.sections.append(
        f"Own time (cProfile, sorted by tottime) of building the {largest}-scale-set stack "
        f"under mocks:\n\n"
        f"    ncalls tottime percall cumtime percall filename:lineno(function)\n{table}"
    )


# --- Output ------------------------------------------------------------------------------------


def cpu_model() -> str:
    """The CPU's model name (Linux), else the machine type."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return platform.machine()
    match = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    return match[1].strip() if match else platform.machine()


def ratio(report: Report, key: str, base: str) -> str:
    """``key``'s best time as a multiple of ``base``'s, or a dash when either is missing."""
    if key not in report.timings or base not in report.timings:
        return "—"
    return f"{report.timings[key].best / report.timings[base].best:.2f}x"


def render(report: Report, command: str, repeat: int, sizes: Sequence[int]) -> str:
    """The results as Markdown (what docs/benchmarks.md records)."""
    t = report.timings
    lines = [
        f"Command: `{command}`  ",
        f"Machine: {os.cpu_count()} CPU(s), {cpu_model()}, "
        f"Python {platform.python_version()}, {', '.join(report.notes)}  ",
        f"{repeat} timed run(s) of each after one warm-up run, interleaved round by round; "
        "ratios compare the best runs (the least disturbed by other work on the machine). "
        "The floor is the preview of an empty Python program on the same engine.",
        "",
        "| what | best | median | ratio |",
        "| --- | ---: | ---: | --- |",
    ]

    def row(key: str, comparison: str) -> None:
        if key in t:
            lines.append(
                f"| {t[key].label} | {t[key].best:.2f}s | {t[key].median:.2f}s | {comparison} |"
            )

    row("floor", "1.00x (floor)")
    for size in sizes:
        for variant in ("preview", "policy"):
            key = f"{variant}-{size}"
            scaling = f", {ratio(report, key, f'{variant}-{sizes[0]}')} of {sizes[0]}"
            row(key, f"{ratio(report, key, 'floor')} floor{scaling if size != sizes[0] else ''}")
    for size in sizes:
        key = f"mocks-{size}"
        row(key, f"{ratio(report, key, f'mocks-{sizes[0]}')} of {sizes[0]}")
    row("import", f"{ratio(report, 'import', 'floor')} floor")
    row("up-noop", f"{ratio(report, 'up-noop', 'floor')} floor")
    row("up-promote", f"{ratio(report, 'up-promote', 'up-noop')} no-change up")
    row("up-create", f"{ratio(report, 'up-create', 'up-noop')} no-change up")
    row("unit", f"{ratio(report, 'unit', 'floor')} floor")
    row("job-small", "1.00x (small cache)")
    row("job-large", f"{ratio(report, 'job-large', 'job-small')} small cache")
    row("job-large-always", f"{ratio(report, 'job-large-always', 'job-small')} small cache")
    row("clone-small", "1.00x (small parent)")
    row("clone-large", f"{ratio(report, 'clone-large', 'clone-small')} small parent")
    for section in report.sections:
        lines += ["", section]
    if report.missing:
        lines += ["", "Not measured:", "", *(f"- {m}" for m in report.missing)]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run every part that can run; print the Markdown report; 1 if a part was not measured."""
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per measurement")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="scale sets per stack")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument(
        "--node",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="part d: job pods on the local node and the stack's peak memory",
    )
    parser.add_argument("--only-node", action="store_true", help="part d alone")
    parser.add_argument("--only-clones", action="store_true", help="part e alone")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    command = shlex.join(["python", "scripts/bench.py", *(sys.argv[1:] if argv is None else argv)])
    report = Report()
    load_before = os.getloadavg()[0]

    def part(name: str, run: Callable[[], object]) -> None:
        began = time.perf_counter()
        print(f"bench: {name}…", file=sys.stderr, flush=True)
        try:
            run()
        except Exception as exc:  # any failure of one part: report it, measure the rest
            if not isinstance(exc, NotMeasuredError | PulumiCommandError):
                exc = NotMeasuredError(f"{type(exc).__name__}: {exc}")
            report.missing.append(f"{name}: {str(exc).strip().splitlines()[0][:400]}")
            print(f"bench: {name}: NOT MEASURED: {exc}", file=sys.stderr, flush=True)
        else:
            print(f"bench: {name}: {time.perf_counter() - began:.0f}s", file=sys.stderr, flush=True)

    workdir = Path(tempfile.mkdtemp(prefix="arc-zfs-cache-bench-"))
    try:
        if args.only_node:
            part("local node", lambda: measure_node(report, workdir, args.repeat))
        elif args.only_clones:

            def clones_alone() -> None:
                with local_cluster(workdir) as cluster:
                    measure_clones(report, cluster)

            part("job clones", clones_alone)
        else:
            try:
                report.notes.append(pulumi_version().join(("pulumi ", "")))
            except NotMeasuredError as exc:
                report.missing.append(f"everything through the CLI: {exc}")
            else:
                floors: list[PulumiProject] = []
                part("engine floor", lambda: floors.append(prepare_floor(report, workdir)))
                if floors:
                    floor = floors[0]

                    def cluster_parts() -> None:
                        with local_cluster(workdir) as cluster:
                            part(
                                "previews",
                                lambda: measure_previews(
                                    report,
                                    floor=floor,
                                    cluster=cluster,
                                    workdir=workdir,
                                    repeat=args.repeat,
                                    sizes=sizes,
                                ),
                            )
                            part(
                                "promotion",
                                lambda: measure_promotion(report, cluster, workdir, args.repeat),
                            )
                            part("job clones", lambda: measure_clones(report, cluster))

                    part("local control plane", cluster_parts)
                    if "floor" not in report.timings:  # the previews could not run: time it alone
                        alone = functools.partial(run_preview, floor)
                        part(
                            "engine floor alone",
                            lambda: report.time("floor", FLOOR_LABEL, alone, args.repeat),
                        )
            part("unit tier", lambda: measure_unit_tier(report, args.repeat))
            part("program profile", lambda: profile_program(report, sizes, args.repeat))
            if args.node:
                part("local node", lambda: measure_node(report, workdir, args.repeat))
    finally:
        if args.keep:
            print(f"bench: kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    # Other work on the machine skews every time; the ratios within one run less so.
    report.notes.append(
        f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after the run"
    )
    print(render(report, command, args.repeat, sizes))
    return 1 if report.missing else 0


if __name__ == "__main__":
    sys.exit(main())
