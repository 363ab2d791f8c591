"""``python -m localcluster.zfs_csi``: serve the driver double on a unix socket until SIGTERM."""

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
from localcluster.zfs_csi.driver import (
    ControllerService,
    DriverConfig,
    IdentityService,
    NodeAgent,
    ObjectApi,
)
from localcluster.zfs_csi.generated import csi_pb2_grpc


def main(argv: list[str] | None = None) -> int:
    """Run the Identity and Controller services and the node agent."""
    parser = argparse.ArgumentParser(prog="python -m localcluster.zfs_csi", description=__doc__)
    parser.add_argument("--endpoint", type=Path, required=True, help="unix socket to listen on")
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--node-id", required=True, help="this node's openebs.io/nodeid")
    parser.add_argument("--namespace", required=True, help="where ZFSVolume/ZFSSnapshot live")
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
    args.endpoint.parent.mkdir(parents=True, exist_ok=True)
    args.endpoint.unlink(missing_ok=True)
    server.add_insecure_port(f"unix://{args.endpoint}")
    agent = NodeAgent(api, config)
    stopped = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopped.set())
    server.start()
    agent.start()
    logging.info("zfs.csi.openebs.io double serving on %s (node %s)", args.endpoint, args.node_id)
    stopped.wait()
    server.stop(grace=5).wait()
    agent.stop()
    args.endpoint.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
