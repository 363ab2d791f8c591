"""A real etcd + kube-apiserver (+ kube-controller-manager when available) on loopback.

:class:`LocalControlPlane` runs the Kubernetes API the way a cluster does, minus nodes:
generated certificates and client-certificate auth, RBAC, service-account signing keys,
the admission chain with PodSecurity, and an audit log of every request. It writes a
kubeconfig (context ``arc-zfs-cache-local``) for the code under test, separate ones for
the test harness, the stand-ins and the storage components (so their requests can be told
apart in the audit log), installs the CRD fixtures and stops cleanly, leaving no process behind.

What there is no process for, and what that means for tests:

* No kubelet and no kube-scheduler (unless :class:`localcluster.node.LocalNode` adds them): pods
  stay Pending and never run. A test "schedules"
  a pod with :meth:`localcluster.kube.Kube.bind_pod` (what the scheduler does);
  :mod:`localcluster.stand_ins` finishes the deletion of pods that have a node, as a kubelet
  would.
  Workloads never become ready, so anything that waits for readiness (Deployments,
  Helm releases with ``--wait``) must be told not to wait or use test charts.
* When ``kube-controller-manager`` is in the toolchain it runs, with the controllers the
  program relies on (namespace, garbage collector, service accounts and tokens,
  ephemeral volumes, PV binder, PV/PVC protection, root CA publisher, pod GC,
  deployments/replica sets/jobs). Without it the API server runs without
  StorageObjectInUseProtection (nothing would remove its finalizers) and the
  ``core_controllers`` of :mod:`localcluster.stand_ins` stand in for the rest: the ephemeral volume
  controller (pod-owned PVCs), garbage collection of pod-owned PVCs, default service
  accounts, and namespace finalization. Anything else owned through ownerReferences is
  then NOT cascaded on delete.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import ssl
import subprocess
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import yaml
from lightkube import Client

from localcluster.audit import AuditEvent, AuditLog, AuditMark
from localcluster.crds import install_crds
from localcluster.kube import Kube, make_client
from localcluster.lifecycle import Started, wait_until_ready
from localcluster.pki import ClientIdentity, Pki
from localcluster.processes import ManagedProcess, free_port, port_free
from localcluster.toolchain import Binaries, find_binaries

__all__ = [
    "ADMIN",
    "APISERVER_KUBELET_CLIENT",
    "ARC_DOUBLE",
    "CONTEXT",
    "CONTROLLER_MANAGER",
    "HARNESS",
    "KUBELET",
    "SCHEDULER",
    "STAND_INS",
    "STORAGE",
    "ControlPlaneError",
    "LocalControlPlane",
]

#: kubeconfig context of the code under test (Pulumi's ``kubernetes:context``).
CONTEXT: Final = "arc-zfs-cache-local"
#: The identity the code under test uses (cluster admin, like a platform team's kubeconfig).
ADMIN: Final = ClientIdentity("arc-zfs-cache-admin", ("system:masters",))
#: The test harness: set-up and read-back requests, left out of audit assertions.
HARNESS: Final = ClientIdentity("arc-zfs-cache:harness", ("system:masters",))
#: The stand-ins for a kubelet and kube-controller-manager (localcluster.stand_ins).
STAND_INS: Final = ClientIdentity("arc-zfs-cache:stand-ins", ("system:masters",))
#: The storage components (localcluster.storage), one identity each as upstream deploys them:
#: their writes are the storage system's, not the program's.
STORAGE: Final = {
    role: ClientIdentity(f"arc-zfs-cache:{role}", ("system:masters",))
    for role in ("zfs-csi-driver", "csi-provisioner", "csi-snapshotter", "snapshot-controller")
}
#: kube-controller-manager (one identity for all controllers: no per-controller accounts).
CONTROLLER_MANAGER: Final = ClientIdentity("system:kube-controller-manager", ("system:masters",))
#: kube-scheduler, under the default RBAC roles of ``system:kube-scheduler`` (localcluster.node).
SCHEDULER: Final = ClientIdentity("system:kube-scheduler", ())
#: The kubelet of the local node, under the Node authorizer and NodeRestriction.
KUBELET: Final = ClientIdentity("system:node:local-zfs-node", ("system:nodes",))
#: The API server's identity towards kubelets (logs, exec).
APISERVER_KUBELET_CLIENT: Final = ClientIdentity(
    "kube-apiserver-kubelet-client", ("system:masters",)
)
#: The ARC controller test double (localcluster.arc_double): a controller, not the program.
ARC_DOUBLE: Final = ClientIdentity("arc-zfs-cache:arc-controller-double", ("system:masters",))

_IDENTITIES: Final = {
    "admin": ADMIN,
    "harness": HARNESS,
    "stand-ins": STAND_INS,
    "controller-manager": CONTROLLER_MANAGER,
    "scheduler": SCHEDULER,
    "kubelet": KUBELET,
    "apiserver-kubelet-client": APISERVER_KUBELET_CLIENT,
    "arc-double": ARC_DOUBLE,
}
_KUBECONFIG_FILES: Final = {
    "admin": "kubeconfig",
    "harness": "harness.kubeconfig",
    "stand-ins": "stand-ins.kubeconfig",
    "controller-manager": "controller-manager.kubeconfig",
    "scheduler": "scheduler.kubeconfig",
    "kubelet": "kubelet.kubeconfig",
    "apiserver-kubelet-client": "apiserver-kubelet-client.kubeconfig",
    "arc-double": "arc-double.kubeconfig",
}
_ADMISSION_PLUGINS: Final = (
    "NamespaceLifecycle",
    "LimitRanger",
    "ServiceAccount",
    "DefaultStorageClass",
    "DefaultTolerationSeconds",
    "PersistentVolumeClaimResize",
    "RuntimeClass",
    "Priority",
    "PodSecurity",
    "NodeRestriction",
    "StorageObjectInUseProtection",
    "MutatingAdmissionWebhook",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionWebhook",
    "ResourceQuota",
)
#: Controllers run when kube-controller-manager is available (see the module docstring).
_CONTROLLERS: Final = (
    "namespace-controller",
    "garbage-collector-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "ephemeral-volume-controller",
    "persistentvolume-binder-controller",
    "persistentvolume-protection-controller",
    "persistentvolumeclaim-protection-controller",
    "root-ca-certificate-publisher-controller",
    "pod-garbage-collector-controller",
    "deployment-controller",
    "replicaset-controller",
    "job-controller",
    "statefulset-controller",
    "daemonset-controller",
    # Lifts the node's not-ready taint once its kubelet reports Ready (localcluster.node).
    "node-lifecycle-controller",
    # Collects the Jobs of container steps (hook 0.7 sets ttlSecondsAfterFinished).
    "ttl-after-finished-controller",
)
_AUDIT_POLICY: Final = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    # One event per request (at completion) is enough to tell who changed what.
    "omitStages": ["RequestReceived"],
    "rules": [{"level": "Metadata"}],
}


class ControlPlaneError(RuntimeError):
    """A control-plane process failed to start or stop; the message carries its log tail."""


def _help_text(binary: Path) -> str:
    result = subprocess.run(
        [str(binary), "--help"], capture_output=True, text=True, check=False, timeout=30
    )
    return result.stdout + result.stderr


class LocalControlPlane(Started):
    """etcd + kube-apiserver (+ kube-controller-manager) in ``state_dir``, on 127.0.0.1.

    Use as a context manager (``with LocalControlPlane(dir) as cp:``), or ``start()`` /
    ``stop()``; ``detached=True`` lets the processes outlive this Python process (for
    ``python -m localcluster up``), and :meth:`attach` finds them again from another one.
    Files in ``state_dir``: ``kubeconfig`` (context ``arc-zfs-cache-local``),
    ``harness.kubeconfig``, ``stand-ins.kubeconfig``, ``audit/audit.log``,
    ``logs/*.log``, ``pki/``, ``etcd/`` (data, kept across restarts), ``run/*.pid``.
    """

    def __init__(
        self,
        state_dir: Path,
        *,
        binaries: Binaries | None = None,
        controller_manager: bool | None = None,
        detached: bool = False,
        start_timeout: float = 180.0,
    ) -> None:
        self.state_dir = state_dir.resolve()
        self._binaries = binaries
        self._want_controller_manager = controller_manager
        self.detached = detached
        self.start_timeout = start_timeout
        self.pki = Pki(self.state_dir / "pki")
        self.audit_log_path = self.state_dir / "audit" / "audit.log"
        self.etcd_port = 0
        self.apiserver_port = 0
        self.controller_manager = False
        self.startup_seconds: float | None = None
        self._processes: dict[str, ManagedProcess] = {}
        self._harness_client: Client | None = None
        self.audit = AuditLog(
            self.audit_log_path,
            infrastructure_users=[
                HARNESS.user,
                STAND_INS.user,
                *(identity.user for identity in STORAGE.values()),
                CONTROLLER_MANAGER.user,
                "system:apiserver",
                "system:kube-scheduler",
                KUBELET.user,
                ARC_DOUBLE.user,
            ],
            sync=self._audit_sync,
        )

    # --- paths and clients ---------------------------------------------------------------

    @property
    def server(self) -> str:
        """``https://127.0.0.1:<port>``."""
        return f"https://127.0.0.1:{self.apiserver_port}"

    @property
    def kubeconfig(self) -> Path:
        """kubeconfig of the code under test (context ``arc-zfs-cache-local``)."""
        return self.kubeconfig_for("admin")

    @property
    def harness_kubeconfig(self) -> Path:
        """kubeconfig of the test harness."""
        return self.kubeconfig_for("harness")

    def kubeconfig_for(self, identity: str) -> Path:
        """kubeconfig file of an identity of ``_IDENTITIES`` (``admin``, ``harness``, ...)."""
        return self.state_dir / _KUBECONFIG_FILES[identity]

    def client(self, identity: str = "harness") -> Client:
        """A new lightkube client acting as ``identity`` (default: the harness)."""
        return make_client(self.kubeconfig_for(identity))

    def kube(self, identity: str = "harness") -> Kube:
        """A :class:`~localcluster.kube.Kube` acting as ``identity``."""
        return Kube(self.client(identity))

    @property
    def _state_file(self) -> Path:
        return self.state_dir / "controlplane.json"

    # --- audit ---------------------------------------------------------------------------

    def _audit_sync(self, marker: str) -> None:
        if self._harness_client is None:
            self._harness_client = self.client("harness")
        Kube(self._harness_client).get("ServiceAccount", marker, "default")

    def mutating_requests(self, since: AuditMark | datetime | None = None) -> list[AuditEvent]:
        """Mutating requests after ``since`` by anyone but the infrastructure identities."""
        return self.audit.mutating_requests(since)

    # --- lifecycle -----------------------------------------------------------------------

    def _process(self, name: str, argv: list[str]) -> ManagedProcess:
        return ManagedProcess(
            name=name,
            argv=argv,
            log_path=self.state_dir / "logs" / f"{name}.log",
            pid_path=self.state_dir / "run" / f"{name}.pid",
            marker=str(self.state_dir),
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.state_dir)},
        )

    def _pick_ports(self) -> None:
        previous: dict[str, Any] = {}
        with contextlib.suppress(OSError, ValueError):
            previous = json.loads(self._state_file.read_text())
        # Reusing the previous ports keeps kubeconfigs others copied valid across restarts.
        ports: list[int] = []
        for key in ("etcd_port", "etcd_peer_port", "apiserver_port"):
            port = int(previous.get(key) or 0)
            if not port or not port_free(port) or port in ports:
                port = free_port()
                while port in ports:
                    port = free_port()
            ports.append(port)
        self.etcd_port, self._etcd_peer_port, self.apiserver_port = ports

    def start(self) -> LocalControlPlane:
        """Start everything, wait for /readyz and the CRDs; raise ControlPlaneError on failure."""
        began = time.monotonic()
        if self.running():
            raise ControlPlaneError(
                f"a control plane is already running in {self.state_dir} (stop it first)"
            )
        binaries = self._binaries or find_binaries()
        self.controller_manager = (
            binaries.kube_controller_manager is not None
            if self._want_controller_manager is None
            else self._want_controller_manager
        )
        if self.controller_manager and binaries.kube_controller_manager is None:
            raise ControlPlaneError("kube-controller-manager was requested but is not available")
        for sub in ("logs", "run", "audit", "etcd"):
            (self.state_dir / sub).mkdir(parents=True, exist_ok=True)
        self.pki.ensure(list(_IDENTITIES.values()))
        self._pick_ports()
        self._write_files()
        try:
            self._start_etcd(binaries.etcd)
            self._start_apiserver(binaries.kube_apiserver)
            install_crds(self.kube("harness"))
            if self.controller_manager and binaries.kube_controller_manager is not None:
                self._start_controller_manager(binaries.kube_controller_manager)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began
        self._state_file.write_text(
            json.dumps(
                {
                    "server": self.server,
                    "etcd_port": self.etcd_port,
                    "etcd_peer_port": self._etcd_peer_port,
                    "apiserver_port": self.apiserver_port,
                    "controller_manager": self.controller_manager,
                    "startup_seconds": round(self.startup_seconds, 2),
                    "started_at": time.time(),
                },
                indent=2,
            )
            + "\n"
        )
        return self

    def _write_files(self) -> None:
        policy = self.state_dir / "audit-policy.yaml"
        policy.write_text(yaml.safe_dump(_AUDIT_POLICY, sort_keys=False))
        for role, identity in _IDENTITIES.items():
            self.pki.write_kubeconfig(
                self.kubeconfig_for(role),
                server=self.server,
                cluster=CONTEXT,
                identity=identity,
                context=CONTEXT if role == "admin" else f"{CONTEXT}-{role}",
            )

    def _start_etcd(self, etcd: Path) -> None:
        client_url = f"http://127.0.0.1:{self.etcd_port}"
        peer_url = f"http://127.0.0.1:{self._etcd_peer_port}"
        argv = [
            str(etcd),
            "--name=local",
            f"--data-dir={self.state_dir / 'etcd'}",
            f"--listen-client-urls={client_url}",
            f"--advertise-client-urls={client_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=local={peer_url}",
            "--log-level=warn",
        ]
        if "--unsafe-no-fsync" in _help_text(etcd):
            # A throwaway test store: durability costs seconds per test run on slow disks.
            argv.append("--unsafe-no-fsync")
        proc = self._process("etcd", argv)
        proc.start(detached=self.detached)
        self._processes["etcd"] = proc
        self._wait(proc, self._etcd_healthy, 30.0, "etcd /health")

    def _etcd_healthy(self) -> bool:
        conn = http.client.HTTPConnection("127.0.0.1", self.etcd_port, timeout=2)
        try:
            conn.request("GET", "/health")
            body = conn.getresponse().read()
        except OSError:
            return False
        finally:
            conn.close()
        return b'"health":"true"' in body

    def _start_apiserver(self, apiserver: Path) -> None:
        pki = self.pki
        admission = list(_ADMISSION_PLUGINS)
        if not self.controller_manager:
            # Its finalizers are removed by KCM's protection controllers only.
            admission.remove("StorageObjectInUseProtection")
        argv = [
            str(apiserver),
            f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.apiserver_port}",
            f"--cert-dir={self.state_dir / 'pki'}",
            f"--tls-cert-file={pki.serving_cert}",
            f"--tls-private-key-file={pki.serving_key}",
            f"--client-ca-file={pki.ca_cert}",
            "--anonymous-auth=false",
            # Node: the local node's kubelet sees only its own pods' secrets and volumes.
            "--authorization-mode=Node,RBAC",
            f"--kubelet-client-certificate={pki.client_cert(APISERVER_KUBELET_CLIENT)}",
            f"--kubelet-client-key={pki.client_key(APISERVER_KUBELET_CLIENT)}",
            # The kubelet registers --node-ip 127.0.0.1; nothing resolves node names here.
            "--kubelet-preferred-address-types=InternalIP,Hostname",
            f"--service-account-key-file={pki.service_account_pub}",
            f"--service-account-signing-key-file={pki.service_account_key}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            "--service-cluster-ip-range=10.96.0.0/16",
            # PodSecurity, not this switch, must be what rejects privileged pods.
            "--allow-privileged=true",
            f"--enable-admission-plugins={','.join(admission)}",
            f"--audit-policy-file={self.state_dir / 'audit-policy.yaml'}",
            f"--audit-log-path={self.audit_log_path}",
            "--audit-log-format=json",
            # Written before the response completes: tests read it right after a request.
            "--audit-log-mode=blocking",
            "--audit-log-maxsize=0",
            "--profiling=false",
            "--v=1",
        ]
        if not self.controller_manager:
            # Default plugins stay on unless disabled explicitly.
            argv.append("--disable-admission-plugins=StorageObjectInUseProtection")
        proc = self._process("kube-apiserver", argv)
        proc.start(detached=self.detached)
        self._processes["kube-apiserver"] = proc
        self._wait(proc, self._apiserver_ready, self.start_timeout, "kube-apiserver /readyz")

    def _ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        context.load_cert_chain(
            str(self.pki.client_cert(HARNESS)), str(self.pki.client_key(HARNESS))
        )
        return context

    def _apiserver_ready(self) -> bool:
        conn = http.client.HTTPSConnection(
            "127.0.0.1", self.apiserver_port, context=self._ssl_context(), timeout=5
        )
        try:
            conn.request("GET", "/readyz")
            response = conn.getresponse()
            response.read()
        except (OSError, ssl.SSLError):
            return False
        finally:
            conn.close()
        return response.status == 200

    def _start_controller_manager(self, manager: Path) -> None:
        help_text = _help_text(manager)
        controllers = [c for c in _CONTROLLERS if c in help_text] or ["*"]
        argv = [
            str(manager),
            f"--kubeconfig={self.kubeconfig_for('controller-manager')}",
            "--secure-port=0",
            "--leader-elect=false",
            "--use-service-account-credentials=false",
            # The binder also resyncs claims on this period; the default 15s makes a claim
            # whose PV event was missed under load wait that long in tests.
            "--pvclaimbinder-sync-period=2s",
            f"--controllers={','.join(controllers)}",
            f"--service-account-private-key-file={self.pki.service_account_key}",
            f"--root-ca-file={self.pki.ca_cert}",
            "--v=1",
        ]
        proc = self._process("kube-controller-manager", argv)
        proc.start(detached=self.detached)
        self._processes["kube-controller-manager"] = proc
        kube = self.kube("harness")
        # Ready once the service-account controller has made the default namespace's SA.
        self._wait(
            proc,
            lambda: kube.get("ServiceAccount", "default", "default") is not None,
            60.0,
            "kube-controller-manager (default service account)",
        )

    @staticmethod
    def _wait(proc: ManagedProcess, check: Callable[[], bool], timeout: float, what: str) -> None:
        wait_until_ready(
            proc,
            check,
            timeout,
            exited=lambda: ControlPlaneError(
                f"{proc.name} exited while waiting for {what}; log {proc.log_path}:\n"
                f"{proc.log_tail()}"
            ),
            not_ready=lambda: ControlPlaneError(
                f"{what} not ready after {timeout}s; log {proc.log_path}:\n{proc.log_tail()}"
            ),
        )

    def _known_processes(self) -> list[ManagedProcess]:
        procs = dict(self._processes)
        for name in ("kube-controller-manager", "kube-apiserver", "etcd"):
            if name not in procs:
                procs[name] = self._process(name, [])
        order = ("kube-controller-manager", "kube-apiserver", "etcd")
        return [procs[name] for name in order]

    def pids(self) -> dict[str, int]:
        """Process name -> pid of the processes that are alive."""
        return {p.name: p.pid for p in self._known_processes() if p.alive() and p.pid is not None}

    def running(self) -> bool:
        """True if any of this state directory's processes is alive."""
        return any(p.alive() for p in self._known_processes())

    def status(self) -> dict[str, bool]:
        """Process name -> alive."""
        return {p.name: p.alive() for p in self._known_processes()}

    def stop(self) -> None:
        """Stop the controller manager, the API server, then etcd; raise if one survives."""
        if self._harness_client is not None:
            self._harness_client.close()
            self._harness_client = None
        survivors = [p.name for p in self._known_processes() if not p.stop()]
        self._processes.clear()
        if survivors:
            raise ControlPlaneError(f"could not stop: {', '.join(survivors)}")

    @classmethod
    def attach(cls, state_dir: Path) -> LocalControlPlane:
        """The control plane of ``state_dir`` as started by another process."""
        plane = cls(state_dir, detached=True)
        with contextlib.suppress(OSError, ValueError):
            state = json.loads(plane._state_file.read_text())
            plane.etcd_port = int(state["etcd_port"])
            plane._etcd_peer_port = int(state["etcd_peer_port"])
            plane.apiserver_port = int(state["apiserver_port"])
            plane.controller_manager = bool(state["controller_manager"])
            plane.startup_seconds = float(state["startup_seconds"])
        return plane

    def destroy(self) -> None:
        """Stop and delete the state directory."""
        self.stop()
        shutil.rmtree(self.state_dir, ignore_errors=True)
