"""Single source of truth for every fact the program, the policy pack and the tests share.

Version pins, label keys, mount paths and object names live here and nowhere else.
"""

from __future__ import annotations

from typing import Final, Literal

__all__ = [
    "ANNOTATION_DEPENDS_ON",
    "ANNOTATION_POD_SECURITY_REASON",
    "ANNOTATION_PROMOTE_TOKEN",
    "ANNOTATION_RESET_TOKEN",
    "ANNOTATION_RETIRED_AT",
    "ANNOTATION_SELECTED_NODE",
    "ANNOTATION_SUPERSEDED_AT",
    "ARC_CONTROLLER_CHART",
    "ARC_CONTROLLER_CHART_VERSION",
    "ARC_CONTROLLER_IMAGE_REPOSITORY",
    "ARC_SCALE_SET_CHART",
    "ARC_SCALE_SET_CHART_VERSION",
    "CACHE_CLONE_VOLUME_PREFIX",
    "CLEANUP_PROTECTION_FINALIZER",
    "CONFIG_NAMESPACE",
    "CONTAINER_MODE_KUBERNETES",
    "CONTAINER_MODE_NOVOLUME",
    "ENV_CLAIM_NAME",
    "ENV_CONTAINER_HOOKS",
    "ENV_CONTAINER_HOOK_TEMPLATE",
    "ENV_IMAGE",
    "ENV_INPUT_JITCONFIG",
    "ENV_KUBERNETES_NAMESPACE",
    "ENV_POD_NAME",
    "ENV_REQUIRE_JOB_CONTAINER",
    "ENV_RETURN_VERSION_DEPRECATED_EXIT_CODE",
    "ENV_USE_KUBE_SCHEDULER",
    "GITHUB_CA_CONFIG_MAP",
    "GITHUB_CA_DIR",
    "GITHUB_CA_KEY",
    "GITHUB_SECRET_NAME",
    "HOOK_ENTRYPOINT",
    "HOOK_TEMPLATE_DIR",
    "HOOK_TEMPLATE_FILE",
    "HOOK_TEMPLATE_KEY",
    "HOOK_TEMPLATE_VOLUME",
    "JOB_CONTAINER_NAME",
    "JOB_GID",
    "JOB_UID",
    "LABEL_CACHE",
    "LABEL_GENERATION",
    "LABEL_HOOK_TEMPLATE",
    "LABEL_MANAGED_BY",
    "LABEL_PART_OF",
    "LABEL_ROLE",
    "LABEL_SCALE_SET",
    "LISTENER_CONTAINER_NAME",
    "LISTENER_TERMINATION_GRACE_SECONDS",
    "MANAGED_BY",
    "MIN_RUNNER_VERSION",
    "NOVOLUME_HOOK_ENTRYPOINT",
    "NOVOLUME_HOOK_FS_GROUP",
    "NOVOLUME_HOOK_INIT_CONTAINER",
    "OPENEBS_NAMESPACE",
    "OPENEBS_NODE_TOPOLOGY_KEY",
    "OPENEBS_PERSISTENT_VOLUME_LABEL",
    "OPENEBS_SOURCE_VOLUME_LABEL",
    "OPENEBS_ZFS_CHART",
    "OPENEBS_ZFS_CHART_NAME",
    "OPENEBS_ZFS_CHART_VERSION",
    "OPENEBS_ZFS_CONTROLLER_SIDECARS",
    "OPENEBS_ZFS_CSI_DRIVER",
    "OPENEBS_ZFS_NODE_REGISTRAR",
    "OPENEBS_ZFS_PLUGIN",
    "PART_OF",
    "ROLE_BUILDER_VOLUME",
    "ROLE_LEASE",
    "ROLE_PARENT",
    "ROLE_POINTER",
    "ROLE_SOURCE_SNAPSHOT",
    "RUNNER_CONTAINER_NAME",
    "RUNNER_GID",
    "RUNNER_IMAGE",
    "RUNNER_UID",
    "RUNNER_VERSION",
    "RUNNER_WORK_DIR",
    "SNAPSHOT_API_GROUP",
    "SNAPSHOT_API_VERSION",
    "SYSTEM_CA_DIR",
    "ZFS_API_VERSION",
    "ContainerMode",
    "builder_volume_name",
    "cache_storage_class",
    "controller_service_account_name",
    "generation_name",
    "hook_template_name",
    "promotion_lease_name",
    "promotion_pointer_name",
    "scale_set_chart_fullname",
    "source_snapshot_name",
]

#: Pulumi config namespace (the project name in Pulumi.yaml).
CONFIG_NAMESPACE: Final = "arc-zfs-cache"

# --- Pinned upstream artefacts -------------------------------------------------------------

ARC_CONTROLLER_CHART: Final = (
    "oci://ghcr.io/actions/actions-runner-controller-charts/gha-runner-scale-set-controller"
)
ARC_CONTROLLER_CHART_VERSION: Final = "0.14.2"
ARC_SCALE_SET_CHART: Final = (
    "oci://ghcr.io/actions/actions-runner-controller-charts/gha-runner-scale-set"
)
ARC_SCALE_SET_CHART_VERSION: Final = "0.14.2"
#: Controller image; the controller starts every listener pod from the same image.
ARC_CONTROLLER_IMAGE_REPOSITORY: Final = "ghcr.io/actions/gha-runner-scale-set-controller"
#: Runner image (actions/runner images/Dockerfile at v2.336.0): hook 0.7.0 at
#: /home/runner/k8s, hook 0.8.1 at /home/runner/k8s-novolume. GitHub refuses to register
#: runners older than 2.329.0, and each release 30 days after the next one ships.
RUNNER_VERSION: Final = "2.336.0"
#: Oldest runner GitHub still registers (and the first image with both hooks in it).
MIN_RUNNER_VERSION: Final = "2.329.0"
RUNNER_IMAGE: Final = f"ghcr.io/actions/actions-runner:{RUNNER_VERSION}"

OPENEBS_ZFS_CHART: Final = "https://openebs.github.io/zfs-localpv"
OPENEBS_ZFS_CHART_NAME: Final = "zfs-localpv"
OPENEBS_ZFS_CHART_VERSION: Final = "2.11.0"
OPENEBS_NAMESPACE: Final = "openebs"
#: zfs-localpv chart values holding an ``image.registry``: the controller's CSI sidecars...
OPENEBS_ZFS_CONTROLLER_SIDECARS: Final = (
    "resizer",
    "snapshotter",
    "snapshotController",
    "provisioner",
)
#: ...the node plugin's registrar (under ``zfsNode``) and the driver itself (top level).
OPENEBS_ZFS_NODE_REGISTRAR: Final = "driverRegistrar"
OPENEBS_ZFS_PLUGIN: Final = "zfsPlugin"
OPENEBS_ZFS_CSI_DRIVER: Final = "zfs.csi.openebs.io"
#: Label OpenEBS puts on a clone's ZFSVolume, naming the PV it was cloned from.
OPENEBS_SOURCE_VOLUME_LABEL: Final = "openebs.io/source-volume"
#: Topology key the OpenEBS ZFS node plugin registers nodes under.
OPENEBS_NODE_TOPOLOGY_KEY: Final = "openebs.io/nodeid"
#: Label OpenEBS puts on a ZFSSnapshot, naming the PV (dataset) it is a snapshot of.
OPENEBS_PERSISTENT_VOLUME_LABEL: Final = "openebs.io/persistent-volume"
#: apiVersion of the OpenEBS ZFS LocalPV objects (ZFSVolume, ZFSSnapshot).
ZFS_API_VERSION: Final = "zfs.openebs.io/v1"
#: API group and version of VolumeSnapshot (external-snapshotter).
SNAPSHOT_API_GROUP: Final = "snapshot.storage.k8s.io"
SNAPSHOT_API_VERSION: Final = "v1"
#: Annotation naming the node a WaitForFirstConsumer claim is provisioned on (the scheduler's).
ANNOTATION_SELECTED_NODE: Final = "volume.kubernetes.io/selected-node"

# --- Listener pod facts (ARC controller 0.14.2, resourcebuilder.go) -------------------------

#: Name of the listener container in the pod the controller builds (newScaleSetListenerPod).
LISTENER_CONTAINER_NAME: Final = "listener"
#: The controller's default listener terminationGracePeriodSeconds; a listenerTemplate
#: replaces it (with nothing, unless the template repeats it).
LISTENER_TERMINATION_GRACE_SECONDS: Final = 60

# --- Runner and job pod facts (runner image, hook 0.7 and 0.8) -----------------------------

RUNNER_CONTAINER_NAME: Final = "runner"
JOB_CONTAINER_NAME: Final = "$job"
RUNNER_UID: Final = 1001
RUNNER_GID: Final = 123
#: Job containers run as the runner's uid so `_runner_file_commands` stays writable.
JOB_UID: Final = RUNNER_UID
JOB_GID: Final = RUNNER_GID
#: Container modes of the gha-runner-scale-set chart that run jobs in separate pods.
ContainerMode = Literal["kubernetes", "kubernetes-novolume"]
CONTAINER_MODE_KUBERNETES: Final[ContainerMode] = "kubernetes"
CONTAINER_MODE_NOVOLUME: Final[ContainerMode] = "kubernetes-novolume"
#: Hook 0.7 (shared work volume) entry point in the runner image.
HOOK_ENTRYPOINT: Final = "/home/runner/k8s/index.js"
#: Hook 0.8 (no work volume: the workspace is copied in) entry point in the runner image.
NOVOLUME_HOOK_ENTRYPOINT: Final = "/home/runner/k8s-novolume/index.js"
#: Hook 0.8 sets this fsGroup on its job pods (createJobPod) and runs fs-init as uid/gid 1001.
NOVOLUME_HOOK_FS_GROUP: Final = 1001
#: Hook 0.8's init container in every job pod (createJobPod): restricted rejects it.
NOVOLUME_HOOK_INIT_CONTAINER: Final = "fs-init"
RUNNER_WORK_DIR: Final = "/home/runner/_work"
#: Runner env the hooks read (actions/runner v2.336.0 and runner-container-hooks v0.7.0).
ENV_CONTAINER_HOOKS: Final = "ACTIONS_RUNNER_CONTAINER_HOOKS"
ENV_CONTAINER_HOOK_TEMPLATE: Final = "ACTIONS_RUNNER_CONTAINER_HOOK_TEMPLATE"
ENV_REQUIRE_JOB_CONTAINER: Final = "ACTIONS_RUNNER_REQUIRE_JOB_CONTAINER"
ENV_USE_KUBE_SCHEDULER: Final = "ACTIONS_RUNNER_USE_KUBE_SCHEDULER"
#: The runner pod's name: the hooks name and label their pods after it (the chart sets it).
ENV_POD_NAME: Final = "ACTIONS_RUNNER_POD_NAME"
#: The work claim hook 0.7 mounts into its job pods (its ``getVolumeClaimName``).
ENV_CLAIM_NAME: Final = "ACTIONS_RUNNER_CLAIM_NAME"
#: The image hook 0.8 runs its fs-init container from (the chart sets the runner's image).
ENV_IMAGE: Final = "ACTIONS_RUNNER_IMAGE"
#: The namespace the hooks create their pods in (default: the runner pod's).
ENV_KUBERNETES_NAMESPACE: Final = "ACTIONS_RUNNER_KUBERNETES_NAMESPACE"
#: The runner's JIT config, which the ARC controller sets from the EphemeralRunner's secret.
ENV_INPUT_JITCONFIG: Final = "ACTIONS_RUNNER_INPUT_JITCONFIG"
#: The ARC controller sets it ("1"): run.sh (actions/runner v2.336.0) then exits with 7 when
#: the runner version is deprecated, instead of 0, so the pod fails visibly.
ENV_RETURN_VERSION_DEPRECATED_EXIT_CODE: Final = (
    "ACTIONS_RUNNER_RETURN_VERSION_DEPRECATED_EXIT_CODE"
)
#: The hook-template ConfigMap is mounted as a directory: a subPath mount never sees updates.
HOOK_TEMPLATE_DIR: Final = "/home/runner/pod-template"
HOOK_TEMPLATE_KEY: Final = "content"
HOOK_TEMPLATE_FILE: Final = f"{HOOK_TEMPLATE_DIR}/{HOOK_TEMPLATE_KEY}"
HOOK_TEMPLATE_VOLUME: Final = "hook-template"
CACHE_CLONE_VOLUME_PREFIX: Final = "cache-"
GITHUB_SECRET_NAME: Final = "arc-github-credentials"
#: ConfigMap (and its key) holding the CA bundle of a GitHub Enterprise Server.
GITHUB_CA_CONFIG_MAP: Final = "arc-github-ca"
GITHUB_CA_KEY: Final = "ca.crt"
#: Directory the runner gets the CA in (githubServerTLS.runnerMountPath). Not the system
#: store: updating that needs `sudo update-ca-certificates`, which no-new-privileges forbids.
GITHUB_CA_DIR: Final = "/home/runner/github-ca"
#: The runner image's system CA directory; SSL_CERT_DIR lists it before GITHUB_CA_DIR.
SYSTEM_CA_DIR: Final = "/etc/ssl/certs"

# --- Labels and annotations ----------------------------------------------------------------

LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
LABEL_PART_OF: Final = "app.kubernetes.io/part-of"
MANAGED_BY: Final = "pulumi"
PART_OF: Final = "arc-zfs-cache"
LABEL_CACHE: Final = "arc-zfs-cache.io/cache"
LABEL_ROLE: Final = "arc-zfs-cache.io/role"
LABEL_GENERATION: Final = "arc-zfs-cache.io/generation"
LABEL_SCALE_SET: Final = "arc-zfs-cache.io/scale-set"
#: Marks a ConfigMap as a runner-container-hooks pod template (the policy pack looks for it).
LABEL_HOOK_TEMPLATE: Final = "arc-zfs-cache.io/hook-template"
ANNOTATION_SUPERSEDED_AT: Final = "arc-zfs-cache.io/superseded-at"
#: When a builder volume stopped being the current one (a reset); retention counts from it.
ANNOTATION_RETIRED_AT: Final = "arc-zfs-cache.io/retired-at"
#: The promote token whose promotion made a source snapshot or generation (crash re-runs adopt
#: objects only when it matches).
ANNOTATION_PROMOTE_TOKEN: Final = "arc-zfs-cache.io/promote-token"
#: The reset token whose reset made a builder volume.
ANNOTATION_RESET_TOKEN: Final = "arc-zfs-cache.io/reset-token"
#: Why a runner namespace enforces baseline instead of restricted (podSecurity.reason).
ANNOTATION_POD_SECURITY_REASON: Final = "arc-zfs-cache.io/pod-security-reason"
ROLE_PARENT: Final = "parent"
ROLE_BUILDER_VOLUME: Final = "builder-volume"
ROLE_SOURCE_SNAPSHOT: Final = "source-snapshot"
#: The promotion pointer ConfigMap (current generation and builder volume of a cache).
ROLE_POINTER: Final = "promotion-pointer"
#: The Lease serialising a cache's promotions, resets and collection.
ROLE_LEASE: Final = "promotion-lease"


# --- Deterministic object names ------------------------------------------------------------


def generation_name(cache: str, generation: int) -> str:
    """Name of the parent claim of one cache generation: ``<cache>-gen-<N>``."""
    return f"{cache}-gen-{generation}"


def source_snapshot_name(cache: str, generation: int) -> str:
    """Name of the VolumeSnapshot a generation was cloned from: ``<cache>-gen-<N>-src``."""
    return f"{generation_name(cache, generation)}-src"


def builder_volume_name(cache: str, index: int) -> str:
    """Name of a cache's builder volume: ``<cache>-work-<M>``."""
    return f"{cache}-work-{index}"


def promotion_pointer_name(cache: str) -> str:
    """Name of the ConfigMap holding a cache's promotion pointer: ``<cache>-promotion``."""
    return f"{cache}-promotion"


def promotion_lease_name(cache: str) -> str:
    """Name of the coordination.k8s.io Lease serialising a cache's promotions."""
    return f"{cache}-promotion"


#: Base name of the gha-runner-scale-set-controller chart (its ``gha-base-name``).
_CONTROLLER_CHART_BASE_NAME: Final = "gha-rs-controller"


def controller_service_account_name(release: str) -> str:
    """Service account the gha-runner-scale-set-controller chart creates for a release.

    The chart's ``fullname``: the release name alone when it contains ``gha-rs-controller``,
    else ``<release>-gha-rs-controller``; truncated to 63 characters, no trailing ``-``.
    """
    name = (
        release
        if _CONTROLLER_CHART_BASE_NAME in release
        else f"{release}-{_CONTROLLER_CHART_BASE_NAME}"
    )
    return name[:63].rstrip("-")


#: Base name of the gha-runner-scale-set chart (its ``gha-base-name``).
_SCALE_SET_CHART_BASE_NAME: Final = "gha-rs"

#: What the gha-runner-scale-set chart puts on the objects the controller needs to clean up
#: a scale set (constants.go ``AutoscalingRunnerSetCleanupFinalizerName``); the controller
#: removes it when the AutoscalingRunnerSet is deleted.
CLEANUP_PROTECTION_FINALIZER: Final = "actions.github.com/cleanup-protection"

#: The explicit dependency annotation a helm.sh/v4 Chart orders its objects by (cli-utils'
#: ``dependson.Annotation``): ``<group>/namespaces/<namespace>/<Kind>/<name>``, comma-separated.
ANNOTATION_DEPENDS_ON: Final = "config.kubernetes.io/depends-on"


def scale_set_chart_fullname(scale_set: str) -> str:
    """The gha-runner-scale-set chart's ``fullname``: ``<scale set>-gha-rs``, truncated to 63
    characters, no trailing ``-``; the prefix of the objects it names after the scale set."""
    return f"{scale_set}-{_SCALE_SET_CHART_BASE_NAME}"[:63].rstrip("-")


def cache_storage_class(prefix: str, node: str) -> str:
    """StorageClass of the caches on one node: ``<prefix>-<node>``.

    Parents, builder volumes and job clones of a cache share it, because the CSI
    external-provisioner refuses a clone whose StorageClass differs from its source's.
    """
    return f"{prefix}-{node}"


def hook_template_name(scale_set: str) -> str:
    """Name of the hook-template ConfigMap of a scale set."""
    return f"{scale_set}-hook-template"
