"""Finding the control-plane binaries that ``scripts/toolchain.sh`` builds.

``eval "$(scripts/toolchain.sh env)"`` exports ``KUBE_APISERVER_BIN`` and ``ETCD_BIN``
(and puts the cache's bin directory on PATH); this module reads those, then PATH.
kube-controller-manager is optional: it is used when it sits next to kube-apiserver
(same Kubernetes module, so the toolchain may build it too) or is named by
``KUBE_CONTROLLER_MANAGER_BIN``.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = ["FIX_COMMAND", "Binaries", "ToolchainMissingError", "find_binaries"]

#: What a developer runs to get the binaries (and what error messages tell them).
FIX_COMMAND: Final = 'scripts/toolchain.sh && eval "$(scripts/toolchain.sh env)"'


class ToolchainMissingError(RuntimeError):
    """A control-plane binary could not be found; the message says how to get it."""


@dataclass(frozen=True, slots=True)
class Binaries:
    """Paths of the control-plane programs."""

    kube_apiserver: Path
    etcd: Path
    kube_controller_manager: Path | None
    #: The local node's (localcluster.node): KUBE_SCHEDULER_BIN / KUBELET_BIN, or beside
    #: kube-apiserver.
    kube_scheduler: Path | None = None
    kubelet: Path | None = None


def _lookup(env_var: str, program: str) -> Path | None:
    explicit = os.environ.get(env_var)
    if explicit:
        path = Path(explicit)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise ToolchainMissingError(
                f"{env_var}={explicit} is not an executable file; rebuild it with: {FIX_COMMAND}"
            )
        return path
    found = shutil.which(program)
    return Path(found) if found else None


def find_binaries() -> Binaries:
    """Locate kube-apiserver and etcd (required) and kube-controller-manager (optional)."""
    apiserver = _lookup("KUBE_APISERVER_BIN", "kube-apiserver")
    etcd = _lookup("ETCD_BIN", "etcd")
    missing = [
        name for name, path in (("kube-apiserver", apiserver), ("etcd", etcd)) if path is None
    ]
    if missing or apiserver is None or etcd is None:
        raise ToolchainMissingError(
            f"{' and '.join(missing)} not found (looked at KUBE_APISERVER_BIN/ETCD_BIN and "
            f"PATH). The e2e tier needs a real API server; build and select the toolchain "
            f"with: {FIX_COMMAND}"
        )
    manager = _lookup("KUBE_CONTROLLER_MANAGER_BIN", "kube-controller-manager")
    if manager is None:
        sibling = apiserver.parent / "kube-controller-manager"
        if sibling.is_file() and os.access(sibling, os.X_OK):
            manager = sibling
    found: dict[str, Path | None] = {}
    for env_var, program in (
        ("KUBE_SCHEDULER_BIN", "kube-scheduler"),
        ("KUBELET_BIN", "kubelet"),
    ):
        path = _lookup(env_var, program)
        sibling = apiserver.parent / program
        if path is None and sibling.is_file() and os.access(sibling, os.X_OK):
            path = sibling
        found[program] = path
    return Binaries(
        kube_apiserver=apiserver,
        etcd=etcd,
        kube_controller_manager=manager,
        kube_scheduler=found["kube-scheduler"],
        kubelet=found["kubelet"],
    )
