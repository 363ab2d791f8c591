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
    "HOOK_ENTRYPOINT",
    "HOOK_TEMPLATE_KEY",
    "JOB_CONTAINER_NAME",
    "LABEL_HOOK_TEMPLATE",
    "NOVOLUME_HOOK_ENTRYPOINT",
    "NOVOLUME_HOOK_FS_GROUP",
    "RUNNER_CONTAINER_NAME",
    "RUNNER_GID",
    "RUNNER_UID",
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
