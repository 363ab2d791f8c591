"""A local Kubernetes control plane and storage simulator for the e2e tier and the ``local`` stack.

* :class:`~localcluster.controlplane.LocalControlPlane`: etcd + kube-apiserver on loopback
  with certificates, RBAC, PodSecurity admission, an audit log and the CRD fixtures;
* :class:`~localcluster.storage_sim.StorageSimulator`: a test double for OpenEBS ZFS
  LocalPV and the CSI snapshot controllers;
* ``python -m localcluster up|down|status|kubeconfig``: both as background processes.
"""

from __future__ import annotations

__all__: list[str] = []
