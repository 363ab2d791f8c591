"""Container security rules for job pods and runner pods (Pod Security ``restricted``).

Each check follows the corresponding Kubernetes Pod Security Standards check, so that a pod
this pack passes is admitted in a namespace enforcing ``restricted`` (the oracle tests compare
the two). Where the pack is stricter (a uid allow-list) it says so in the message.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from typing import Final

from ..config import ALLOWED_CAPABILITIES, ALLOWED_UIDS, Settings
from ..model import Finding, PodKind, PodTarget
from ..policy_kit import PodRule, Rule
from ..remediation import (
    drop_all_capabilities,
    forbid_privilege_escalation,
    remediate_declared_pods,
)
from ..values import UNKNOWN, as_int, as_list, as_mapping, is_unknown
from .common import containers, pod_finding, pod_security_context

__all__ = [
    "DROP_ALL_CAPABILITIES",
    "NO_PRIVILEGED_CONTAINERS",
    "NO_PRIVILEGE_ESCALATION",
    "NO_UNSAFE_POD_OPTIONS",
    "RULES",
    "RUN_AS_NON_ROOT",
    "SECCOMP_PROFILE",
    "check_capabilities",
    "check_no_privilege_escalation",
    "check_no_privileged",
    "check_run_as_non_root",
    "check_seccomp",
    "check_unsafe_options",
]

_POD_KINDS: Final = (PodKind.JOB, PodKind.RUNNER)
_SECCOMP_ALLOWED: Final = frozenset({"RuntimeDefault", "Localhost"})
#: SELinux types Pod Security baseline allows.
_SELINUX_TYPES: Final = frozenset(
    {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
)
#: Sysctls Pod Security baseline allows (Kubernetes 1.32+).
_SAFE_SYSCTLS: Final = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
        "net.ipv4.tcp_rmem",
        "net.ipv4.tcp_wmem",
    }
)
_APPARMOR_ANNOTATION: Final = "container.apparmor.security.beta.kubernetes.io/"
_REMEDIATE_LEVEL: Final = "(at the remediate level the pack adds it to the declared containers)."


def check_no_privileged(target: PodTarget, settings: Settings) -> Iterator[Finding]:
    """No container runs privileged."""
    del settings
    for ref in containers(target):
        if ref.field("privileged") is True:
            yield ref.finding(
                "securityContext.privileged",
                "privileged: true gives the container every capability and the host's devices",
                "remove privileged (or set privileged: false)",
            )


def check_no_privilege_escalation(target: PodTarget, settings: Settings) -> Iterator[Finding]:
    """Every container sets ``allowPrivilegeEscalation: false`` (the default is true)."""
    del settings
    for ref in containers(target):
        value = ref.field("allowPrivilegeEscalation")
        if value is False or value is UNKNOWN:
            continue
        state = "is not set (defaults to true)" if value is None else f"is {value!r}"
        yield ref.finding(
            "securityContext.allowPrivilegeEscalation",
            f"allowPrivilegeEscalation {state}: setuid binaries (sudo) can gain privileges",
            "set securityContext.allowPrivilegeEscalation: false",
        )


def check_capabilities(target: PodTarget, settings: Settings) -> Iterator[Finding]:
    """Every container drops ALL capabilities and adds back only allowed ones."""
    allowed = settings.allowed_capabilities
    for ref in containers(target):
        capabilities = ref.field("capabilities")
        if capabilities is UNKNOWN:
            continue
        capabilities = as_mapping(capabilities) or {}
        drop = capabilities.get("drop")
        if not is_unknown(drop) and "ALL" not in as_list(drop):
            yield ref.finding(
                "securityContext.capabilities.drop",
                "capabilities are not dropped: the container keeps the runtime's default set",
                'set securityContext.capabilities.drop: ["ALL"]',
            )
        add = capabilities.get("add")
        for capability in as_list(add):
            if is_unknown(capability) or capability in allowed:
                continue
            yield ref.finding(
                "securityContext.capabilities.add",
                f"adds capability {capability!r}; only {sorted(allowed)} may be added back",
                f"remove {capability!r} from securityContext.capabilities.add",
            )


def check_run_as_non_root(target: PodTarget, settings: Settings) -> Iterator[Finding]:
    """Non-root everywhere: ``runAsNonRoot: true`` for every container, no uid 0, allowed uids."""
    pod_context = pod_security_context(target)
    if pod_context is UNKNOWN:
        return
    pod_context = pod_context or {}
    pod_non_root = pod_context.get("runAsNonRoot")
    if pod_non_root is False:
        yield pod_finding(
            target,
            "securityContext.runAsNonRoot",
            "runAsNonRoot: false lets containers run as root",
            "set securityContext.runAsNonRoot: true",
        )
    yield from _uid_findings(
        target, pod_context.get("runAsUser"), settings, None, "securityContext.runAsUser"
    )
    for ref in containers(target):
        non_root = ref.field("runAsNonRoot")
        if non_root is False:
            yield ref.finding(
                "securityContext.runAsNonRoot",
                "runAsNonRoot: false lets the container run as root",
                "set securityContext.runAsNonRoot: true",
            )
        elif non_root is None and pod_non_root is None:
            yield ref.finding(
                "securityContext.runAsNonRoot",
                "runAsNonRoot is set neither on the container nor on the pod: the image may "
                "run as root",
                "set securityContext.runAsNonRoot: true on the pod or the container",
            )
        if ref.field("runAsUser") is not UNKNOWN:
            yield from _uid_findings(
                target, ref.field("runAsUser"), settings, ref.name, "securityContext.runAsUser"
            )


def _uid_findings(
    target: PodTarget, uid: object, settings: Settings, container: str | None, suffix: str
) -> Iterator[Finding]:
    """Findings for a ``runAsUser`` value at pod level (``container`` None) or a container."""
    uid = as_int(uid)  # numbers arrive from the engine as floats
    if uid is None:
        return
    if uid == 0:
        problem, fix = "runAsUser: 0 runs as root", "set runAsUser to a non-zero uid"
    elif settings.allowed_uids and uid not in settings.allowed_uids:
        allowed = sorted(settings.allowed_uids)
        problem = (
            f"runAsUser: {uid} is not an allowed uid {allowed} (stricter than restricted: "
            "a job container with another uid cannot write the runner's _runner_file_commands)"
        )
        fix = f"set runAsUser: {allowed[0]} (or extend the policy's {ALLOWED_UIDS})"
    else:
        return
    if container is None:
        yield pod_finding(target, suffix, problem, fix)
        return
    for ref in containers(target):
        if ref.name == container:
            yield ref.finding(suffix, problem, fix)
            return


def check_seccomp(target: PodTarget, settings: Settings) -> Iterator[Finding]:
    """Seccomp ``RuntimeDefault`` or ``Localhost`` on the pod, or on every container."""
    del settings
    pod_context = pod_security_context(target)
    if pod_context is UNKNOWN:
        return
    pod_type = _profile_type((pod_context or {}).get("seccompProfile"))
    if pod_type is UNKNOWN:
        return
    pod_ok = pod_type in _SECCOMP_ALLOWED
    if pod_type is not None and not pod_ok:
        yield pod_finding(
            target,
            "securityContext.seccompProfile.type",
            f"seccomp profile {pod_type!r} leaves every system call open",
            "set securityContext.seccompProfile.type: RuntimeDefault",
        )
    for ref in containers(target):
        profile = ref.field("seccompProfile")
        container_type = _profile_type(profile)
        if container_type is UNKNOWN:
            continue
        if container_type is not None and container_type not in _SECCOMP_ALLOWED:
            yield ref.finding(
                "securityContext.seccompProfile.type",
                f"seccomp profile {container_type!r} leaves every system call open",
                "set securityContext.seccompProfile.type: RuntimeDefault",
            )
        elif container_type is None and pod_type is None:
            yield ref.finding(
                "securityContext.seccompProfile",
                "no seccomp profile on the container or the pod (runs Unconfined)",
                "set securityContext.seccompProfile.type: RuntimeDefault on the pod",
            )


def _profile_type(profile: object) -> object:
    """``type`` of a seccomp/AppArmor profile: None if unset, UNKNOWN if unknown."""
    if is_unknown(profile):
        return UNKNOWN
    if not isinstance(profile, dict):
        return None
    value = profile.get("type")
    return UNKNOWN if is_unknown(value) else value


def check_unsafe_options(target: PodTarget, settings: Settings) -> Iterator[Finding]:
    """No Windows host process, AppArmor unconfined, custom SELinux, unmasked /proc or unsafe
    sysctls (the remaining Pod Security baseline checks)."""
    del settings
    pod_context = pod_security_context(target)
    if pod_context is not UNKNOWN:
        pod_context = pod_context or {}
        yield from _context_options(target, pod_context, None)
        for index, sysctl in enumerate(as_list(pod_context.get("sysctls"))):
            name = sysctl.get("name") if isinstance(sysctl, dict) else None
            if isinstance(name, str) and name not in _SAFE_SYSCTLS:
                yield pod_finding(
                    target,
                    f"securityContext.sysctls[{index}]",
                    f"sysctl {name!r} is not namespaced-safe",
                    f"remove sysctl {name!r}",
                )
    annotations = as_mapping(target.pod.get("metadata", {}).get("annotations")) or {}
    for key, value in annotations.items():
        if (
            key.startswith(_APPARMOR_ANNOTATION)
            and isinstance(value, str)
            and value != "runtime/default"
            and not value.startswith("localhost/")
        ):
            yield Finding(
                resource=target.resource,
                path=f"{target.prefix}metadata.annotations[{key}]",
                problem=f"AppArmor profile {value!r} is not allowed",
                fix="use runtime/default or a localhost/ profile",
                subject=target.kind.value,
            )
    for ref in containers(target):
        context = ref.security_context
        if context is UNKNOWN or context is None:
            continue
        yield from _context_options(target, context, ref.name)


def _context_options(
    target: PodTarget, context: dict[str, object], container: str | None
) -> Iterable[Finding]:
    """hostProcess, AppArmor, SELinux and procMount findings for one securityContext."""
    problems: list[tuple[str, str, str]] = []
    windows = as_mapping(context.get("windowsOptions")) or {}
    if windows.get("hostProcess") is True:
        problems.append(
            (
                "securityContext.windowsOptions.hostProcess",
                "a host process container runs on the node itself",
                "remove windowsOptions.hostProcess",
            )
        )
    if _profile_type(context.get("appArmorProfile")) == "Unconfined":
        problems.append(
            (
                "securityContext.appArmorProfile.type",
                "AppArmor profile Unconfined is not allowed",
                "use RuntimeDefault or Localhost",
            )
        )
    selinux = as_mapping(context.get("seLinuxOptions")) or {}
    se_type = selinux.get("type")
    if isinstance(se_type, str) and se_type not in _SELINUX_TYPES:
        problems.append(
            (
                "securityContext.seLinuxOptions.type",
                f"SELinux type {se_type!r} is not allowed",
                "remove seLinuxOptions.type or use container_t",
            )
        )
    for field in ("user", "role"):
        if isinstance(selinux.get(field), str) and selinux.get(field):
            problems.append(
                (
                    f"securityContext.seLinuxOptions.{field}",
                    f"a custom SELinux {field} is not allowed",
                    f"remove seLinuxOptions.{field}",
                )
            )
    proc_mount = context.get("procMount")
    if container is not None and isinstance(proc_mount, str) and proc_mount != "Default":
        problems.append(
            (
                "securityContext.procMount",
                f"procMount {proc_mount!r} unmasks /proc",
                "remove procMount (or set Default)",
            )
        )
    for suffix, problem, fix in problems:
        if container is None:
            yield pod_finding(target, suffix, problem, fix)
        else:
            for ref in containers(target):
                if ref.name == container:
                    yield ref.finding(suffix, problem, fix)
                    break


NO_PRIVILEGED_CONTAINERS: Final = PodRule(
    name="no-privileged-containers",
    description="Job and runner containers never run privileged.",
    check=check_no_privileged,
    kinds=_POD_KINDS,
)
NO_PRIVILEGE_ESCALATION: Final = PodRule(
    name="no-privilege-escalation",
    description="Job and runner containers set allowPrivilegeEscalation: false.",
    check=check_no_privilege_escalation,
    kinds=_POD_KINDS,
    remediation=functools.partial(remediate_declared_pods, fix=forbid_privilege_escalation),
    remediation_steps="Set securityContext.allowPrivilegeEscalation: false on every container "
    + _REMEDIATE_LEVEL,
)
DROP_ALL_CAPABILITIES: Final = PodRule(
    name="drop-all-capabilities",
    description=(
        "Job and runner containers drop ALL capabilities and add back at most NET_BIND_SERVICE."
    ),
    check=check_capabilities,
    kinds=_POD_KINDS,
    config_keys=(ALLOWED_CAPABILITIES,),
    remediation=functools.partial(remediate_declared_pods, fix=drop_all_capabilities),
    remediation_steps='Set securityContext.capabilities.drop: ["ALL"] on every container '
    + _REMEDIATE_LEVEL,
)
RUN_AS_NON_ROOT: Final = PodRule(
    name="run-as-non-root",
    description=(
        "Job and runner pods run as non-root: runAsNonRoot true, no uid 0, allowed uids only."
    ),
    check=check_run_as_non_root,
    kinds=_POD_KINDS,
    config_keys=(ALLOWED_UIDS,),
)
SECCOMP_PROFILE: Final = PodRule(
    name="seccomp-profile",
    description="Job and runner pods use the RuntimeDefault (or a Localhost) seccomp profile.",
    check=check_seccomp,
    kinds=_POD_KINDS,
)
NO_UNSAFE_POD_OPTIONS: Final = PodRule(
    name="no-unsafe-pod-options",
    description=(
        "Job and runner pods set no host process, unconfined AppArmor, custom SELinux, unmasked "
        "/proc or unsafe sysctls."
    ),
    check=check_unsafe_options,
    kinds=_POD_KINDS,
)

#: The container security policies, in report order.
RULES: Final[tuple[Rule, ...]] = (
    NO_PRIVILEGED_CONTAINERS,
    NO_PRIVILEGE_ESCALATION,
    DROP_ALL_CAPABILITIES,
    RUN_AS_NON_ROOT,
    SECCOMP_PROFILE,
    NO_UNSAFE_POD_OPTIONS,
)
