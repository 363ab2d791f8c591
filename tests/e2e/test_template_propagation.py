"""After a ``pulumi up`` that changes the hook template, a running runner pod reads the new one.

The runner pod is the ARC controller double's, built from the chart's ``spec.template`` as
upstream builds it, which mounts the scale set's hook-template ConfigMap as a directory
(``components.constants.HOOK_TEMPLATE_DIR``: a ``subPath`` mount would never be updated). The
hook reads the file at job start, so what matters is that file, read here as the hook double
reads it: from the kubelet's volume directory of the running pod.

The kubelet writes a changed ConfigMap into a running pod's volume when it re-syncs the pod:
``syncFrequency`` after the previous sync, jittered up to 1.5x (``pod_workers.go``,
``workerResyncIntervalJitterFactor``, Kubernetes v1.34.2), once its ``Watch`` ConfigMap
cache has the change. The local kubelet sets neither, so both are the defaults: 1 minute,
so up to 90 s. The wait's timeout leaves room for that; it is no timing assertion (bench
part d records how long it took).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lightkube.resources.core_v1 import ConfigMap, Pod

from components import constants as c
from localcluster.harness import LocalCluster
from tests.e2e import node_env
from tests.e2e.propagation_env import SCALE_SET, job_memory, running_runner, with_runner_work_class
from tests.e2e.pulumi_cli import PulumiProject

pytestmark = pytest.mark.e2e

TOKEN = "ghp_e2eTemplatePropagation0123456789ab"
NEW_REQUEST = "384Mi"
#: kubelet re-sync (up to 90 s, see the docstring) + the watch's delay + a loaded machine.
PROPAGATION_TIMEOUT = 240.0


def stack_config(cluster: LocalCluster, memory: str | None = None) -> dict[str, Any]:
    return with_runner_work_class(node_env.local_stack_config(cluster.storage.pool.name), memory)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with node_env.node_cluster(tmp_path_factory.mktemp("propagation")) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def stack(cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    project = PulumiProject.create(
        tmp_path_factory.mktemp("propagation-program"), Path(cluster.kubeconfig), stack="local"
    )
    project.set_config(stack_config(cluster), {"github.credentials.token": TOKEN})
    project.up()
    yield project
    project.destroy(check=False)


def test_a_running_runner_pod_reads_the_new_template_from_its_mounted_directory(
    cluster: LocalCluster, stack: Any
) -> None:
    client = cluster.client()
    assert cluster.node is not None
    node, plane = cluster.node, cluster.control_plane
    namespace = stack_config(cluster)["scaleSets"][SCALE_SET]["namespace"]
    runner = running_runner(client, cluster.kube(), node, namespace)
    uid = client.get(Pod, runner, namespace=namespace).metadata.uid

    before = node_env.hook_view(plane, node, namespace, runner)
    assert before.env[c.ENV_CONTAINER_HOOK_TEMPLATE] == c.HOOK_TEMPLATE_FILE
    assert "the runner pod's volume" in before.template_source
    assert before.template is not None
    assert job_memory(before.template) is None

    stack.set_config(stack_config(cluster, NEW_REQUEST), {"github.credentials.token": TOKEN})
    stack.up()
    config_map = client.get(ConfigMap, c.hook_template_name(SCALE_SET), namespace=namespace)
    assert NEW_REQUEST in (config_map.data or {})[c.HOOK_TEMPLATE_KEY]

    def updated() -> Any:
        view = node_env.hook_view(plane, node, namespace, runner)
        return view if job_memory(view.template) == NEW_REQUEST else None

    after = node_env.wait_for(
        "the new template in the runner pod's file", updated, PROPAGATION_TIMEOUT, interval=0.5
    )
    assert "the runner pod's volume" in after.template_source
    # The same pod, never restarted: the kubelet rewrote its volume in place.
    pod = client.get(Pod, runner, namespace=namespace)
    assert pod.metadata is not None and pod.metadata.uid == uid
    assert pod.status is not None
    assert [s.restartCount for s in pod.status.containerStatuses or []] == [0]
