"""The few project facts the policy pack needs, copied from ``components/constants.py``.

The pack runs on its own: Pulumi starts it with only the ``policy/`` directory on ``sys.path``
(and ``pulumi policy publish`` ships only that directory), so it cannot import ``components``.
``tests/test_policy_pack.py::test_copied_constants_equal_the_programs`` asserts that every
value here equals the one in ``components.constants``: change them there first.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "CONTAINER_MODE_KUBERNETES",
    "CONTAINER_MODE_NOVOLUME",
    "ENV_CLAIM_NAME",
    "ENV_CONTAINER_HOOKS",
    "ENV_CONTAINER_HOOK_TEMPLATE",
    "ENV_IMAGE",
    "ENV_KUBERNETES_NAMESPACE",
    "ENV_POD_NAME",
    "ENV_REQUIRE_JOB_CONTAINER",
    "ENV_USE_KUBE_SCHEDULER",
    "HOOK_ENTRYPOINT",
    "HOOK_TEMPLATE_KEY",
    "JOB_CONTAINER_NAME",
    "LABEL_HOOK_TEMPLATE",
    "LABEL_PART_OF",
    "NOVOLUME_HOOK_ENTRYPOINT",
    "NOVOLUME_HOOK_FS_GROUP",
    "RUNNER_CONTAINER_NAME",
    "RUNNER_GID",
    "RUNNER_UID",
    "RUNNER_WORK_DIR",
]

#: gha-runner-scale-set ``containerMode.type`` of hook 0.7 (a work volume shared with the runner).
CONTAINER_MODE_KUBERNETES: Final = "kubernetes"
#: ``containerMode.type`` of hook 0.8 (no shared volume; job pods placed by the scheduler).
CONTAINER_MODE_NOVOLUME: Final = "kubernetes-novolume"
#: Name of the job container in a hook template (the hook merges ``$job`` into its ``job``).
JOB_CONTAINER_NAME: Final = "$job"
#: Name the gha-runner-scale-set chart gives the runner container.
RUNNER_CONTAINER_NAME: Final = "runner"
#: uid of the runner image's ``runner`` user; job containers must use it too.
RUNNER_UID: Final = 1001
#: gid of the runner image's ``docker`` group.
RUNNER_GID: Final = 123
#: runner-container-hooks 0.7 kubernetes-mode entry point in the runner image.
HOOK_ENTRYPOINT: Final = "/home/runner/k8s/index.js"
#: runner-container-hooks 0.8 entry point (container mode ``kubernetes-novolume``).
NOVOLUME_HOOK_ENTRYPOINT: Final = "/home/runner/k8s-novolume/index.js"
#: ``fsGroup`` hook 0.8 sets on its job pods; its ``fs-init`` init container runs as this uid/gid.
NOVOLUME_HOOK_FS_GROUP: Final = 1001
#: ConfigMap key holding the hook template.
HOOK_TEMPLATE_KEY: Final = "content"
#: Label marking a ConfigMap as a runner-container-hooks pod template.
LABEL_HOOK_TEMPLATE: Final = "arc-zfs-cache.io/hook-template"
#: The runner's work directory (the chart mounts the ``work`` volume there).
RUNNER_WORK_DIR: Final = "/home/runner/_work"
#: Label the charts put on their objects, naming the chart (``gha-rs-controller``, ...).
LABEL_PART_OF: Final = "app.kubernetes.io/part-of"
#: Runner env: the hook entry point (the chart sets it in the kubernetes container modes).
ENV_CONTAINER_HOOKS: Final = "ACTIONS_RUNNER_CONTAINER_HOOKS"
#: Runner env the hooks read: the template file they merge (``ENV_HOOK_TEMPLATE_PATH``).
ENV_CONTAINER_HOOK_TEMPLATE: Final = "ACTIONS_RUNNER_CONTAINER_HOOK_TEMPLATE"
#: Runner env: refuse jobs that do not use a job container.
ENV_REQUIRE_JOB_CONTAINER: Final = "ACTIONS_RUNNER_REQUIRE_JOB_CONTAINER"
#: Runner env: ``true`` makes 0.7 pin by node affinity (``ENV_USE_KUBE_SCHEDULER``).
ENV_USE_KUBE_SCHEDULER: Final = "ACTIONS_RUNNER_USE_KUBE_SCHEDULER"
#: Runner env: the runner pod's name, which the hooks name and label their pods after.
ENV_POD_NAME: Final = "ACTIONS_RUNNER_POD_NAME"
#: Runner env: the work claim hook 0.7 mounts (``getVolumeClaimName``).
ENV_CLAIM_NAME: Final = "ACTIONS_RUNNER_CLAIM_NAME"
#: Runner env: the image of hook 0.8's ``fs-init`` (the chart sets it to the runner's image).
ENV_IMAGE: Final = "ACTIONS_RUNNER_IMAGE"
#: Runner env: the namespace the hooks create pods in (default: the runner's).
ENV_KUBERNETES_NAMESPACE: Final = "ACTIONS_RUNNER_KUBERNETES_NAMESPACE"
