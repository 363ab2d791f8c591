"""A real node for the local control plane: kube-scheduler, containerd + runc, CNI, a kubelet.

:class:`LocalNode` adds to a started :class:`~localcluster.controlplane.LocalControlPlane`
what it takes for pods to run, all as processes this module starts and stops by pid:

* ``kube-scheduler`` (identity ``system:kube-scheduler``, no serving port);
* ``containerd`` (Debian's, installed by ``scripts/node-packages.sh``) with a config, root,
  state, socket and CNI config in ``<state>/node/``: runtime ``runc`` (crun refuses the
  hybrid cgroup layout of these machines), ``restrict_oom_score_adj = true`` (the sandbox
  may not lower ``oom_score_adj``: without it runc fails "can't get final child's PID from
  pipe"), network namespaces under the state dir, the stand-in ``sandbox_image``;
* a CNI ``bridge`` + ``host-local`` network (``loopback`` too) on a bridge named after the
  state dir, on a /24 derived from it, no masquerade: pod addresses exist only in the
  network namespaces this node creates, and nothing sends traffic to them;
* the stand-in images of :mod:`localcluster.images`, imported under the names the program
  renders;
* ``kubelet`` (node ``local-zfs-node``, identity ``system:node:local-zfs-node`` under the
  Node authorizer and NodeRestriction) with ``cgroupDriver: cgroupfs``,
  ``cgroupsPerQOS: false``, ``enforceNodeAllocatable: []``, ``failSwapOn: false``, serving
  on 127.0.0.1 only (``--node-ip 127.0.0.1``; the API server prefers InternalIP), root dir
  and pod logs in the state dir, image garbage collection off (the stand-ins cannot be
  pulled again).

``start`` returns once the Node is Ready, the controller-manager's node-lifecycle
controller has lifted the ``not-ready`` taint, and the node's CSINode lists the CSI drivers
it waits for (the ZFS driver double, which registers itself through the kubelet's
``plugins_registry`` dir: :mod:`localcluster.zfs_csi`). If something the node needs is missing
(root, the Debian packages, the kubelet binary, cgroup controllers, overlayfs, CNI
plugins), :class:`NodeUnavailableError` says so in ONE line; there is no pod-less
fallback. ``stop`` deletes the node's pods through the API (so the kubelet tears their
sandboxes and volumes down), stops the kubelet, removes what is left through containerd,
stops it, and then sweeps: shim processes whose command line names this state dir,
mounts under it, the bridge device. Afterwards no container, mount, network namespace,
network device or process of the node is left.

Outside the state dir, only what containerd 1.6 hard-codes: shim sockets in
``/run/containerd/s/`` (removed as each shim exits) and libcni's result cache in
``/var/lib/cni/`` (entries removed on sandbox teardown).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import yaml

from components.constants import OPENEBS_ZFS_CSI_DRIVER
from localcluster.images import PAUSE_IMAGE, build_archive, stand_in_images
from localcluster.kube import Kube, meta
from localcluster.lifecycle import wait_until_ready
from localcluster.processes import ManagedProcess, free_port, pid_alive, stop_pid
from localcluster.zfs_csi.mounts import mounts_under, parse_mountinfo

if TYPE_CHECKING:
    from localcluster.controlplane import LocalControlPlane

__all__ = [
    "MAX_SOCKET_PATH",
    "NODE_NAME",
    "LocalNode",
    "NodeUnavailableError",
    "kubelet_root",
    "mount_points_under",
    "node_preflight",
    "unmount_all",
]

#: The node the local stack's caches name (Pulumi.local.yaml).
NODE_NAME: Final = "local-zfs-node"
REPO: Final = Path(__file__).resolve().parent.parent
PACKAGES_SCRIPT: Final = REPO / "scripts" / "node-packages.sh"
CNI_BIN_DIR: Final = Path("/usr/lib/cni")
_CNI_PLUGINS: Final = ("bridge", "host-local", "loopback")
_CGROUP_V1_CONTROLLERS: Final = ("cpu", "cpuacct", "memory", "pids", "devices", "freezer")
_NOT_READY_TAINT: Final = "node.kubernetes.io/not-ready"
#: the longest unix socket path every listener here takes: grpc's (the driver double's
#: sockets) refuses 106 characters and more, below sun_path's 108 bytes.
MAX_SOCKET_PATH: Final = 105


class NodeUnavailableError(RuntimeError):
    """The node cannot start here; the message is one line naming the missing piece."""


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), text.strip())


def node_preflight(kubelet: Path | None, scheduler: Path | None) -> None:
    """Raise :class:`NodeUnavailableError` naming the first thing the node lacks."""
    if os.geteuid() != 0:
        raise NodeUnavailableError(
            "the local node needs root (containerd, runc and the kubelet mount and create "
            "network namespaces): run as root"
        )
    check = subprocess.run(
        [str(PACKAGES_SCRIPT), "check"], capture_output=True, text=True, check=False, timeout=60
    )
    if check.returncode != 0:
        raise NodeUnavailableError(_first_line(check.stderr or check.stdout))
    for name, path in (("kubelet", kubelet), ("kube-scheduler", scheduler)):
        if path is None:
            raise NodeUnavailableError(
                f"{name} not found (KUBELET_BIN/KUBE_SCHEDULER_BIN, or next to kube-apiserver): "
                'build it with: scripts/toolchain.sh kubernetes && eval "$(scripts/toolchain.sh '
                'env)"'
            )
    cgroup = Path("/sys/fs/cgroup")
    if not (cgroup / "cgroup.controllers").exists():
        missing = [c for c in _CGROUP_V1_CONTROLLERS if not (cgroup / c / "tasks").exists()]
        if missing:
            raise NodeUnavailableError(
                f"cgroup controllers not mounted under /sys/fs/cgroup: {', '.join(missing)} "
                "(the kubelet needs them)"
            )
    if "overlay" not in Path("/proc/filesystems").read_text():
        raise NodeUnavailableError("the kernel has no overlayfs (containerd's snapshotter)")
    for plugin in _CNI_PLUGINS:
        if not (CNI_BIN_DIR / plugin).is_file():
            raise NodeUnavailableError(
                f"CNI plugin {CNI_BIN_DIR / plugin} missing (scripts/node-packages.sh installs "
                "containernetworking-plugins)"
            )


def kubelet_root(state_dir: Path) -> Path:
    """The kubelet's ``--root-dir`` for a state dir (pods' volumes, ``plugins_registry``)."""
    return state_dir / "node" / "kubelet"


def mount_points_under(root: Path) -> list[str]:
    """Mount points at or below ``root``, deepest (latest) first."""
    try:
        text = Path("/proc/self/mountinfo").read_text()
    except OSError:
        return []
    return mounts_under(parse_mountinfo(text), root)


def unmount_all(points: list[str]) -> None:
    """Unmount each of ``points`` (in order), lazily if a plain unmount is refused."""
    for point in points:
        result = subprocess.run(
            ["umount", point], capture_output=True, text=True, check=False, timeout=30
        )
        if result.returncode != 0:
            subprocess.run(["umount", "-l", point], capture_output=True, check=False, timeout=30)


def _shim_pids(marker: str) -> list[int]:
    """containerd shims (and anything else) whose command line names ``marker``."""
    pids: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if marker in cmdline and "containerd-shim" in cmdline:
            pids.append(int(entry.name))
    return pids


class LocalNode:
    """kube-scheduler + containerd + kubelet for ``plane`` (see the module docstring)."""

    def __init__(
        self,
        plane: LocalControlPlane,
        *,
        kubelet: Path | None = None,
        scheduler: Path | None = None,
        ready_timeout: float = 120.0,
        csi_drivers: Sequence[str] = (OPENEBS_ZFS_CSI_DRIVER,),
    ) -> None:
        self.plane = plane
        #: CSI drivers the node must have registered (its CSINode lists them) to be ready.
        self.csi_drivers = tuple(csi_drivers)
        self.dir = plane.state_dir / "node"
        self.kubelet_bin = kubelet
        self.scheduler_bin = scheduler
        self.ready_timeout = ready_timeout
        digest = hashlib.sha256(str(plane.state_dir).encode()).digest()
        #: Bridge device of this node's pod network (at most 15 characters).
        self.bridge = f"azc{digest[:4].hex()}"
        #: The pod subnet: a /24 in 10.200.0.0-10.249.255.0 derived from the state dir.
        self.subnet = f"10.{200 + digest[4] % 50}.{digest[5]}.0/24"
        self.startup_seconds: float | None = None
        self._processes: dict[str, ManagedProcess] = {}

    # --- paths ---------------------------------------------------------------------------

    @property
    def containerd_socket(self) -> Path:
        """containerd's gRPC socket (CRI and ctr)."""
        return self.dir / "run" / "containerd.sock"

    @property
    def kubelet_root(self) -> Path:
        """The kubelet's ``--root-dir`` (pods' volumes, plugin registration, ...)."""
        return kubelet_root(self.plane.state_dir)

    @property
    def _state_file(self) -> Path:
        return self.dir / "node.json"

    def _process(
        self, name: str, argv: list[str], env: dict[str, str] | None = None
    ) -> ManagedProcess:
        base = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
        return ManagedProcess(
            name=name,
            argv=argv,
            log_path=self.plane.state_dir / "logs" / f"{name}.log",
            pid_path=self.plane.state_dir / "run" / f"{name}.pid",
            marker=str(self.plane.state_dir),
            env={**base, **(env or {})},
        )

    def _known(self) -> list[ManagedProcess]:
        order = ("kube-scheduler", "kubelet", "containerd")
        return [self._processes.get(n) or self._process(n, []) for n in order]

    def running(self) -> bool:
        """True if any of the node's processes is alive."""
        return any(p.alive() for p in self._known())

    def status(self) -> dict[str, bool]:
        """Process name -> alive."""
        return {p.name: p.alive() for p in self._known()}

    # --- start ---------------------------------------------------------------------------

    def start(self) -> LocalNode:
        """Start everything and wait until the Node is Ready and schedulable."""
        began = time.monotonic()
        node_preflight(self.kubelet_bin, self.scheduler_bin)
        assert self.kubelet_bin is not None and self.scheduler_bin is not None
        if len(str(self.containerd_socket)) > MAX_SOCKET_PATH:
            raise NodeUnavailableError(
                f"state dir {self.plane.state_dir} is too long for unix sockets (keep it under "
                f"{MAX_SOCKET_PATH - 30} characters)"
            )
        # A previous run that died without `stop` may have left mounts and processes.
        self._sweep()
        for sub in ("run", "cni/net.d", "cni/ipam", "kubelet", "pod-logs", "images", "containerd"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        try:
            self._start_scheduler()
            self._start_containerd()
            self._import_images()
            self._start_kubelet()
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began
        self._state_file.write_text(
            json.dumps(
                {
                    "node": NODE_NAME,
                    "bridge": self.bridge,
                    "subnet": self.subnet,
                    "startup_seconds": round(self.startup_seconds, 2),
                },
                indent=2,
            )
            + "\n"
        )
        return self

    def _start_scheduler(self) -> None:
        assert self.scheduler_bin is not None
        config = self.dir / "kube-scheduler.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "kubescheduler.config.k8s.io/v1",
                    "kind": "KubeSchedulerConfiguration",
                    "clientConnection": {"kubeconfig": str(self.plane.kubeconfig_for("scheduler"))},
                    "leaderElection": {"leaderElect": False},
                },
                sort_keys=False,
            )
        )
        argv = [
            str(self.scheduler_bin),
            f"--config={config}",
            "--secure-port=0",
            f"--authentication-kubeconfig={self.plane.kubeconfig_for('scheduler')}",
            f"--authorization-kubeconfig={self.plane.kubeconfig_for('scheduler')}",
            "--v=1",
        ]
        proc = self._process("kube-scheduler", argv)
        proc.start(detached=self.plane.detached)
        self._processes[proc.name] = proc

    def _containerd_config(self) -> str:
        d = self.dir
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        return "\n".join(
            [
                "version = 2",
                f'root = "{d / "containerd" / "root"}"',
                f'state = "{d / "containerd" / "state"}"',
                "oom_score = 0",
                "disabled_plugins = [",
                '  "io.containerd.internal.v1.opt",',
                '  "io.containerd.snapshotter.v1.aufs",',
                '  "io.containerd.snapshotter.v1.btrfs",',
                '  "io.containerd.snapshotter.v1.devmapper",',
                '  "io.containerd.snapshotter.v1.zfs",',
                '  "io.containerd.tracing.processor.v1.otlp",',
                "]",
                "[grpc]",
                f'  address = "{self.containerd_socket}"',
                "[ttrpc]",
                f'  address = "{self.containerd_socket}.ttrpc"',
                "[debug]",
                '  address = ""',
                "[metrics]",
                '  address = ""',
                f"[{cri}]",
                f'  sandbox_image = "{PAUSE_IMAGE}"',
                "  restrict_oom_score_adj = true",
                "  netns_mounts_under_state_dir = true",
                "  enable_selinux = false",
                "  disable_apparmor = true",
                "  enable_unprivileged_ports = false",
                f"[{cri}.containerd]",
                '  snapshotter = "overlayfs"',
                '  default_runtime_name = "runc"',
                "  discard_unpacked_layers = false",
                f"[{cri}.containerd.runtimes.runc]",
                '  runtime_type = "io.containerd.runc.v2"',
                f"[{cri}.containerd.runtimes.runc.options]",
                '  BinaryName = "/usr/sbin/runc"',
                f'  Root = "{d / "runc"}"',
                "  SystemdCgroup = false",
                f"[{cri}.cni]",
                f'  bin_dir = "{CNI_BIN_DIR}"',
                f'  conf_dir = "{d / "cni" / "net.d"}"',
                "  max_conf_num = 1",
                "",
            ]
        )

    def _cni_config(self) -> dict[str, Any]:
        gateway = self.subnet.rsplit(".", 1)[0] + ".1"
        return {
            "cniVersion": "1.0.0",
            "name": "arc-zfs-cache-local",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": self.bridge,
                    "isGateway": True,
                    "ipMasq": False,
                    "hairpinMode": False,
                    "ipam": {
                        "type": "host-local",
                        "dataDir": str(self.dir / "cni" / "ipam"),
                        "ranges": [[{"subnet": self.subnet, "gateway": gateway}]],
                        "routes": [{"dst": self.subnet}],
                    },
                },
                {"type": "loopback"},
            ],
        }

    def _start_containerd(self) -> None:
        config = self.dir / "containerd.toml"
        config.write_text(self._containerd_config())
        (self.dir / "cni" / "net.d" / "10-arc-zfs-cache.conflist").write_text(
            json.dumps(self._cni_config(), indent=2) + "\n"
        )
        proc = self._process("containerd", ["/usr/bin/containerd", f"--config={config}"])
        proc.start(detached=self.plane.detached)
        self._processes[proc.name] = proc
        timeout = 30.0
        wait_until_ready(
            proc,
            lambda: self.ctr("version", check=False).returncode == 0,
            timeout,
            exited=lambda: NodeUnavailableError(
                f"{proc.name} exited: {self._reason(proc)} (log {proc.log_path})"
            ),
            not_ready=lambda: NodeUnavailableError(
                f"{proc.name} socket not ready after {timeout:.0f}s"
            ),
        )

    def ctr(
        self, *args: str, check: bool = True, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        """Run ``ctr --address <socket> -n k8s.io ARGS``."""
        result = subprocess.run(
            ["/usr/bin/ctr", "--address", str(self.containerd_socket), "-n", "k8s.io", *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise NodeUnavailableError(
                f"ctr {' '.join(args)} failed: {_first_line(result.stderr or result.stdout)}"
            )
        return result

    def _import_images(self) -> None:
        from localcluster.images import _applets  # noqa: PLC0415 - one busybox --list per start

        applets = _applets()
        for image in stand_in_images():
            safe = image.reference.replace("/", "_").replace(":", "_")
            archive = build_archive(image, self.dir / "images" / f"{safe}.tar", applets)
            self.ctr("images", "import", "--no-unpack=false", str(archive), check=False)
            listed = self.ctr("images", "ls", "-q").stdout.split()
            if image.reference not in listed:
                result = self.ctr("images", "import", str(archive), check=False)
                raise NodeUnavailableError(
                    f"could not import stand-in image {image.reference}: "
                    f"{_first_line(result.stderr or result.stdout)}"
                )

    def _kubelet_config(self, port: int, healthz_port: int) -> dict[str, Any]:
        return {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "address": "127.0.0.1",
            "port": port,
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": healthz_port,
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": False},
                "x509": {"clientCAFile": str(self.plane.pki.ca_cert)},
            },
            "authorization": {"mode": "AlwaysAllow"},
            "containerRuntimeEndpoint": f"unix://{self.containerd_socket}",
            "cgroupDriver": "cgroupfs",
            "cgroupsPerQOS": False,
            "enforceNodeAllocatable": [],
            "failSwapOn": False,
            "podLogsDir": str(self.dir / "pod-logs"),
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "evictionHard": {
                "memory.available": "1Mi",
                "nodefs.available": "1%",
                "imagefs.available": "1%",
            },
            "serializeImagePulls": False,
            "registerNode": True,
            "rotateCertificates": False,
            "serverTLSBootstrap": False,
            "shutdownGracePeriod": "0s",
            "maxPods": 60,
            "resolvConf": "/etc/resolv.conf",
            "staticPodPath": "",
            "volumePluginDir": str(self.dir / "kubelet-plugins"),
            "localStorageCapacityIsolation": True,
        }

    def _start_kubelet(self) -> None:
        assert self.kubelet_bin is not None
        config = self.dir / "kubelet.yaml"
        config.write_text(
            yaml.safe_dump(self._kubelet_config(free_port(), free_port()), sort_keys=False)
        )
        argv = [
            str(self.kubelet_bin),
            f"--config={config}",
            f"--kubeconfig={self.plane.kubeconfig_for('kubelet')}",
            f"--root-dir={self.kubelet_root}",
            f"--cert-dir={self.dir / 'kubelet-pki'}",
            f"--hostname-override={NODE_NAME}",
            "--node-ip=127.0.0.1",
            "--v=1",
        ]
        proc = self._process("kubelet", argv)
        proc.start(detached=self.plane.detached)
        self._processes[proc.name] = proc

    def _node_ready(self, kube: Kube) -> bool:
        try:
            node = kube.client.get(_node_resource(), NODE_NAME)
        except Exception:  # not registered yet
            return False
        data = node.to_dict() if hasattr(node, "to_dict") else dict(node)
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in (data.get("status") or {}).get("conditions") or []
        )
        taints = [t.get("key") for t in (data.get("spec") or {}).get("taints") or []]
        return ready and _NOT_READY_TAINT not in taints

    def _wait_ready(self) -> None:
        kube = self.plane.kube("harness")
        kubelet = self._processes["kubelet"]
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            for proc in self._processes.values():
                if not proc.alive():
                    raise NodeUnavailableError(
                        f"{proc.name} exited: {self._reason(proc)} (log {proc.log_path})"
                    )
            if self._node_ready(kube) and not self._unregistered_drivers(kube):
                return
            time.sleep(0.25)
        if self._node_ready(kube):
            missing = ", ".join(self._unregistered_drivers(kube))
            raise NodeUnavailableError(
                f"node {NODE_NAME}: CSI driver {missing} not registered with the kubelet after "
                f"{self.ready_timeout:.0f}s (CSINode {NODE_NAME} does not list it; logs "
                f"{kubelet.log_path} and the driver's)"
            )
        raise NodeUnavailableError(
            f"node {NODE_NAME} not Ready and schedulable after {self.ready_timeout:.0f}s: "
            f"{self._reason(kubelet)} (log {kubelet.log_path})"
        )

    def _unregistered_drivers(self, kube: Kube) -> list[str]:
        """The wanted CSI drivers the node's CSINode does not list yet."""
        try:
            csi_node = kube.client.get(_csi_node_resource(), NODE_NAME)
        except Exception:  # the kubelet creates it on registering the first plugin
            return list(self.csi_drivers)
        listed = {d.name for d in (csi_node.spec.drivers or [])}
        return [d for d in self.csi_drivers if d not in listed]

    @staticmethod
    def _reason(proc: ManagedProcess) -> str:
        """The most telling line of a process's log (the last error, else the last line)."""
        lines = proc.log_tail(200).splitlines()
        for needle in ("failed to run Kubelet", '"command failed"', "level=fatal", "E0", "error"):
            hits = [line for line in lines if needle in line]
            if hits:
                return hits[-1].strip()[:400]
        return (lines[-1].strip() if lines else "no log")[:400]

    # --- stop ----------------------------------------------------------------------------

    def _delete_pods(self, timeout: float) -> None:
        """Delete every pod bound to the node and wait for the kubelet to confirm."""
        try:
            kube = self.plane.kube("harness")
            pods = [
                p for p in kube.list("Pod") if (p.get("spec") or {}).get("nodeName") == NODE_NAME
            ]
        except Exception:  # the API server is gone: the sweep below
            return
        for pod in pods:
            with contextlib.suppress(Exception):
                kube.delete("Pod", meta(pod)["name"], meta(pod)["namespace"], grace_period=1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                left = [
                    p
                    for p in kube.list("Pod")
                    if (p.get("spec") or {}).get("nodeName") == NODE_NAME
                ]
            except Exception:  # the API server went away
                return
            if not left:
                return
            time.sleep(0.25)

    def stop(self) -> None:
        """Tear everything down (see the module docstring); raise if something survives."""
        scheduler, kubelet, containerd = self._known()
        survivors: list[str] = []
        if not scheduler.stop():
            survivors.append(scheduler.name)
        if kubelet.alive() and containerd.alive():
            self._delete_pods(timeout=45.0)
        if not kubelet.stop():
            survivors.append(kubelet.name)
        if containerd.alive():
            self._remove_containers()
        if not containerd.stop():
            survivors.append(containerd.name)
        self._processes.clear()
        survivors += self._sweep()
        if survivors:
            raise NodeUnavailableError(f"could not remove: {', '.join(survivors)}")

    def _remove_containers(self) -> None:
        with contextlib.suppress(Exception):
            for task in self.ctr("tasks", "ls", "-q", check=False).stdout.split():
                self.ctr("tasks", "kill", "-s", "SIGKILL", task, check=False)
            for _ in range(50):
                if not self.ctr("tasks", "ls", "-q", check=False).stdout.split():
                    break
                for task in self.ctr("tasks", "ls", "-q", check=False).stdout.split():
                    self.ctr("tasks", "delete", "-f", task, check=False)
                time.sleep(0.1)
            containers = self.ctr("containers", "ls", "-q", check=False).stdout.split()
            if containers:
                self.ctr("containers", "rm", *containers, check=False)

    def _sweep(self) -> list[str]:
        """Remove what a crashed or stopped node left; return what could not be removed."""
        left: list[str] = []
        marker = str(self.plane.state_dir)
        for pid in _shim_pids(marker):
            if not stop_pid(pid, marker, timeout=5.0):
                left.append(f"process {pid}")
        unmount_all(mount_points_under(self.dir))
        if mount_points_under(self.dir):
            left.append(f"mounts under {self.dir}")
        netns = self.dir / "containerd" / "state" / "io.containerd.grpc.v1.cri"
        for path in sorted(netns.glob("netns/*")) if netns.is_dir() else []:
            with contextlib.suppress(OSError):
                path.unlink()
        if Path(f"/sys/class/net/{self.bridge}").exists():
            subprocess.run(
                ["ip", "link", "delete", self.bridge], capture_output=True, check=False, timeout=30
            )
            if Path(f"/sys/class/net/{self.bridge}").exists():
                left.append(f"network device {self.bridge}")
        # Pods' runc state and the CNI address leases describe containers that are gone.
        for stale in (self.dir / "runc", self.dir / "cni" / "ipam"):
            shutil.rmtree(stale, ignore_errors=True)
        return left


def _node_resource() -> Any:
    from lightkube.resources.core_v1 import Node  # noqa: PLC0415

    return Node


def _csi_node_resource() -> Any:
    from lightkube.resources.storage_v1 import CSINode  # noqa: PLC0415

    return CSINode


def pids_alive(pids: list[int]) -> list[int]:
    """The pids of ``pids`` that still run."""
    return [p for p in pids if pid_alive(p)]
