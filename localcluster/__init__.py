"""A local Kubernetes cluster with real ZFS storage for the e2e tier and the ``local`` stack.

* :class:`~localcluster.controlplane.LocalControlPlane`: etcd + kube-apiserver on loopback
  with certificates, RBAC, PodSecurity admission, an audit log and the CRD fixtures;
* :class:`~localcluster.storage.LocalStorage`: a zfs-fuse pool, the ZFS CSI driver double
  (:mod:`localcluster.zfs_csi`) and the real csi-provisioner, csi-snapshotter and
  snapshot-controller;
* :class:`~localcluster.stand_ins.StandIns`: what a missing kubelet or
  kube-controller-manager would do;
* :class:`~localcluster.harness.LocalCluster`: all of it as one object for tests;
* ``python -m localcluster up|down|status|kubeconfig``: all of it as background processes.
"""

from __future__ import annotations

__all__: list[str] = []
