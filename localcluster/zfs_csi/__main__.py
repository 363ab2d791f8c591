"""``python -m localcluster.zfs_csi``: serve the driver double on unix sockets until SIGTERM.

The CSI services (Identity, Controller, Node) on ``--endpoint``; with ``--plugin-registry-dir``
also the kubelet's plugin registration API on ``<dir>/zfs-localpv-reg.sock`` (what
node-driver-registrar serves upstream), naming ``--endpoint`` as the CSI socket.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from concurrent import futures
from pathlib import Path

import grpc

from localcluster.kube import Kube, make_client
from localcluster.zfs_csi import registration_socket
from localcluster.zfs_csi.driver import (
    ControllerService,
    DriverConfig,
    IdentityService,
    NodeAgent,
    ObjectApi,
)
from localcluster.zfs_csi.generated import csi_pb2_grpc
from localcluster.zfs_csi.node_service import NodeService, Registrar


def main(argv: list[str] | None = None) -> int:
    """Run the Identity, Controller and Node services, the registration and the node agent."""
    parser = argparse.ArgumentParser(prog="python -m localcluster.zfs_csi", description=__doc__)
    parser.add_argument("--endpoint", type=Path, required=True, help="unix socket to listen on")
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--node-id", required=True, help="this node's openebs.io/nodeid")
    parser.add_argument("--namespace", required=True, help="where ZFSVolume/ZFSSnapshot live")
    parser.add_argument(
        "--plugin-registry-dir",
        type=Path,
        help="the kubelet's plugins_registry dir: register there (as node-driver-registrar)",
    )
    # Not read: it puts the state directory in the command line, the marker by which the
    # local cluster tells this process from a recycled pid when it stops it.
    parser.add_argument("--state-dir", type=Path, help="the local cluster's state directory")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    config = DriverConfig(node_id=args.node_id, namespace=args.namespace)
    api = ObjectApi(Kube(make_client(args.kubeconfig)), args.namespace)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    csi_pb2_grpc.add_IdentityServicer_to_server(IdentityService(), server)
    csi_pb2_grpc.add_ControllerServicer_to_server(ControllerService(api, config), server)
    csi_pb2_grpc.add_NodeServicer_to_server(NodeService(api, config), server)
    args.endpoint.parent.mkdir(parents=True, exist_ok=True)
    args.endpoint.unlink(missing_ok=True)
    server.add_insecure_port(f"unix://{args.endpoint}")
    # A server of its own: the registration socket serves the registration API only.
    registrar = (
        Registrar(registration_socket(args.plugin_registry_dir), args.endpoint)
        if args.plugin_registry_dir is not None
        else None
    )
    agent = NodeAgent(api, config)
    stopped = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopped.set())
    server.start()
    agent.start()
    logging.info("zfs.csi.openebs.io double serving on %s (node %s)", args.endpoint, args.node_id)
    if registrar is not None:
        # Only once the CSI socket answers: the kubelet calls NodeGetInfo on registering.
        registrar.serve(stopped)
    else:
        stopped.wait()
    server.stop(grace=5).wait()
    agent.stop()
    args.endpoint.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
