"""The gRPC code the driver double speaks, generated from the pinned protos.

``csi_pb2``/``csi_pb2_grpc`` come from the pinned CSI spec's csi.proto, ``registration_pb2``/
``registration_pb2_grpc`` from the kubelet's plugin registration API (``pluginregistration``
v1 of ``k8s.io/kubelet`` at the pinned kubernetes release). ``scripts/toolchain.sh csi-spec``
generates both into the toolchain cache, which ``CSI_PB_PYTHONPATH`` and
``PLUGIN_REGISTRATION_PB_PYTHONPATH`` name.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

__all__ = ["csi_pb2", "csi_pb2_grpc", "registration_pb2", "registration_pb2_grpc"]

_FIX = 'scripts/toolchain.sh csi-spec && eval "$(scripts/toolchain.sh env csi-spec)"'


def _generated(variable: str, package: str, module: str, what: str) -> tuple[Any, Any]:
    where = os.environ.get(variable)
    if not where or not os.path.isdir(where):
        raise ImportError(
            f"{variable}={where or '(unset)'}: the {what} gRPC code is not generated; fix: {_FIX}"
        )
    if where not in sys.path:
        sys.path.insert(0, where)
    # Imported by name: the package exists only once the toolchain generated it.
    return (
        importlib.import_module(f"{package}.{module}_pb2"),
        importlib.import_module(f"{package}.{module}_pb2_grpc"),
    )


csi_pb2, csi_pb2_grpc = _generated("CSI_PB_PYTHONPATH", "csi_pb", "csi", "CSI")
registration_pb2, registration_pb2_grpc = _generated(
    "PLUGIN_REGISTRATION_PB_PYTHONPATH", "pluginregistration_pb", "api", "plugin registration"
)
