"""Pod-level rules: host access, volume types, the service account token, other workloads."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from ..config import Settings
from ..model import Finding, PodKind, PodTarget
from ..policy_kit import PodRule, Rule
from ..values import as_int, as_list, as_mapping, is_unknown
from .common import containers, pod_finding
from .container_security import check_no_privileged

__all__ = [
    "NO_HOST_ACCESS",
    "NO_PRIVILEGED_WORKLOADS",
    "NO_SERVICE_ACCOUNT_TOKEN",
    "RESTRICTED_VOLUME_TYPES",
    "RULES",
    "check_baseline_workload",
    "check_host_access",
    "check_no_service_account_token",
    "check_volume_types",
]

#: Volume sources Pod Security ``restricted`` allows.
_RESTRICTED_VOLUMES: Final = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)
#: Capabilities Pod Security ``baseline`` lets a container add.
_BASELINE_CAPABILITIES: Final = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)


def check_host_access(target: PodTarget, settings: Settings) -> Iterator[Finding]:
    """No host network/PID/IPC namespace, no hostPath volume, no hostPort."""
    del settings
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if target.spec.get(field) is True:
            yield pod_finding(
                target,
                field,
                f"{field}: true shares the node's namespace with the pod",
                f"remove {field} (or set it to false)",
            )
    for index, volume in enumerate(as_list(target.spec.get("volumes"))):
        if isinstance(volume, dict) and volume.get("hostPath") is not None:
            name = volume.get("name", index)
            path = (as_mapping(volume.get("hostPath")) or {}).get("path", "?")
            yield pod_finding(
                target,
                f"volumes[{name}].hostPath",
                f"hostPath volume mounts the node's {path}",
                "use an emptyDir, ephemeral or persistentVolumeClaim volume instead",
            )
    for ref in containers(target):
        for port in as_list(ref.container.get("ports")):
            host_port = as_int(port.get("hostPort")) if isinstance(port, dict) else None
            if host_port:
                yield ref.finding(
                    "ports.hostPort",
                    f"hostPort {host_port} binds a port on the node",
                    "remove hostPort (use a Service)",
                )


def check_volume_types(target: PodTarget, settings: Settings) -> Iterator[Finding]:
    """Only the volume types Pod Security ``restricted`` allows (hostPath: see no-host-access)."""
    del settings
    for index, volume in enumerate(as_list(target.spec.get("volumes"))):
        if not isinstance(volume, dict):
            continue
        sources = [key for key in volume if key != "name" and volume[key] is not None]
        for source in sources:
            if source in _RESTRICTED_VOLUMES or source == "hostPath" or is_unknown(source):
                continue
            yield pod_finding(
                target,
                f"volumes[{volume.get('name', index)}].{source}",
                f"volume type {source!r} is not allowed in a restricted namespace",
                "use configMap, secret, emptyDir, ephemeral, persistentVolumeClaim, csi, "
                "projected or downwardAPI",
            )


def check_no_service_account_token(target: PodTarget, settings: Settings) -> Iterator[Finding]:
    """The job pod mounts no service account token (the hook's pod gets ``default``'s)."""
    del settings
    automount = target.spec.get("automountServiceAccountToken")
    if automount is not False and not is_unknown(automount):
        state = "is not set (defaults to true)" if automount is None else f"is {automount!r}"
        yield pod_finding(
            target,
            "automountServiceAccountToken",
            f"automountServiceAccountToken {state}: workflow code gets the namespace's "
            "service account token",
            "set spec.automountServiceAccountToken: false",
        )
    for volume in as_list(target.spec.get("volumes")):
        sources = (
            as_list((as_mapping(volume.get("projected")) or {}).get("sources"))
            if isinstance(volume, dict)
            else []
        )
        if any(isinstance(s, dict) and s.get("serviceAccountToken") is not None for s in sources):
            yield pod_finding(
                target,
                f"volumes[{volume.get('name')}].projected.sources.serviceAccountToken",
                "a projected service account token is mounted into the job pod",
                "remove the serviceAccountToken projection",
            )


def check_baseline_workload(target: PodTarget, settings: Settings) -> Iterator[Finding]:
    """Other workloads stay within Pod Security ``baseline``: not privileged, no host access,
    no capabilities beyond the baseline set."""
    yield from check_no_privileged(target, settings)
    yield from check_host_access(target, settings)
    for ref in containers(target):
        capabilities = ref.field("capabilities")
        for capability in as_list((as_mapping(capabilities) or {}).get("add")):
            if isinstance(capability, str) and capability not in _BASELINE_CAPABILITIES:
                yield ref.finding(
                    "securityContext.capabilities.add",
                    f"adds capability {capability!r}, beyond Pod Security baseline",
                    f"remove {capability!r} (or exempt the workload with a reason)",
                )


NO_HOST_ACCESS: Final = PodRule(
    name="no-host-access",
    description=(
        "Job and runner pods use no host network, PID or IPC namespace, hostPath volume or "
        "hostPort."
    ),
    check=check_host_access,
    kinds=(PodKind.JOB, PodKind.RUNNER),
)
RESTRICTED_VOLUME_TYPES: Final = PodRule(
    name="restricted-volume-types",
    description="Job and runner pods use only the volume types Pod Security restricted allows.",
    check=check_volume_types,
    kinds=(PodKind.JOB, PodKind.RUNNER),
)
NO_SERVICE_ACCOUNT_TOKEN: Final = PodRule(
    name="no-service-account-token",
    description="Job pods mount no Kubernetes API token (automountServiceAccountToken: false).",
    check=check_no_service_account_token,
    kinds=(PodKind.JOB,),
)
NO_PRIVILEGED_WORKLOADS: Final = PodRule(
    name="no-privileged-workloads",
    description=(
        "Other workloads are not privileged and use no host namespaces, hostPath or hostPort "
        "unless exempted by name, with a reason, in this policy's config."
    ),
    check=check_baseline_workload,
    kinds=(PodKind.WORKLOAD,),
)

#: The pod-level policies, in report order.
RULES: Final[tuple[Rule, ...]] = (
    NO_HOST_ACCESS,
    RESTRICTED_VOLUME_TYPES,
    NO_SERVICE_ACCOUNT_TOKEN,
    NO_PRIVILEGED_WORKLOADS,
)
