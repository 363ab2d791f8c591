"""Safe automatic fixes: add ``allowPrivilegeEscalation: false`` and drop ALL capabilities.

Used by policies whose enforcement level is set to ``remediate``. A fix only *adds* the
setting to containers the resource itself declares (hook-template containers, including a
``$job`` entry added when missing; the runner pod template of an AutoscalingRunnerSet; the
``template.spec`` containers of scale-set chart values). It never touches a privileged
container (the API server rejects ``allowPrivilegeEscalation: false`` with
``privileged: true``), never edits a secret value, and leaves unknown values alone. A hook
template rewritten this way is re-serialised YAML (comments are not kept).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import yaml

from ._constants import JOB_CONTAINER_NAME
from .discovery import CONFIG_MAP_TYPE, Resource, hook_templates, is_scale_set_values, runner_pods
from .values import is_unknown, raw_copy

__all__ = [
    "ContainerFix",
    "drop_all_capabilities",
    "forbid_privilege_escalation",
    "harden_template",
    "remediate_declared_pods",
]

#: Edits one container mapping in place; returns True if it changed it.
ContainerFix = Callable[[dict[str, Any]], bool]


def _context(container: dict[str, Any]) -> dict[str, Any] | None:
    """The container's securityContext, created when unset; ``None`` if it cannot be edited."""
    context = container.get("securityContext")
    if context is None:
        context = container["securityContext"] = {}
    if not isinstance(context, dict) or context.get("privileged") is True:
        return None
    return context


def forbid_privilege_escalation(container: dict[str, Any]) -> bool:
    """Set ``securityContext.allowPrivilegeEscalation: false`` unless already so."""
    context = _context(container)
    if context is None:
        return False
    current = context.get("allowPrivilegeEscalation")
    if current is False or is_unknown(current):
        return False
    context["allowPrivilegeEscalation"] = False
    return True


def drop_all_capabilities(container: dict[str, Any]) -> bool:
    """Add ``ALL`` to ``securityContext.capabilities.drop`` unless already there."""
    context = _context(container)
    if context is None:
        return False
    capabilities = context.get("capabilities")
    if capabilities is None:
        capabilities = context["capabilities"] = {}
    if not isinstance(capabilities, dict):
        return False
    drop = capabilities.get("drop")
    if is_unknown(drop) or (drop is not None and not isinstance(drop, list)):
        return False
    if "ALL" in (drop or []):
        return False
    capabilities["drop"] = [*(drop or []), "ALL"]
    return True


def _fix_containers(spec: Any, fix: ContainerFix) -> bool:
    """Apply ``fix`` to every container and init container of a pod spec."""
    if not isinstance(spec, dict):
        return False
    changed = False
    for group in ("containers", "initContainers"):
        entries = spec.get(group)
        if not isinstance(entries, list):
            continue
        for container in entries:
            if isinstance(container, dict):
                changed = fix(container) or changed
    return changed


def harden_template(template: dict[str, Any], fix: ContainerFix) -> bool:
    """Apply ``fix`` to every container of a hook template, adding a ``$job`` entry if needed."""
    spec = template.get("spec")
    if spec is None:
        spec = template["spec"] = {}
    if not isinstance(spec, dict):
        return False
    entries = spec.get("containers")
    if entries is None:
        entries = spec["containers"] = []
    if not isinstance(entries, list):
        return False
    added = False
    if not any(isinstance(c, dict) and c.get("name") == JOB_CONTAINER_NAME for c in entries):
        entries.insert(0, {"name": JOB_CONTAINER_NAME})
        added = True
    changed = _fix_containers(spec, fix)
    if added and not changed:
        entries.pop(0)
    return changed


def remediate_declared_pods(
    resource: Resource, props: Mapping[str, Any], fix: ContainerFix
) -> Mapping[str, Any] | None:
    """New properties with ``fix`` applied to the pods ``resource`` declares, or ``None``."""
    raw = raw_copy(props)
    if not isinstance(raw, dict):
        return None
    changed = False
    if resource.type == CONFIG_MAP_TYPE:
        data = raw.get("data")
        for found in hook_templates(resource):
            if not isinstance(found.template, dict) or not isinstance(data, dict):
                continue
            text = data.get(found.key)
            if not isinstance(text, str) or is_unknown(text):
                continue  # a secret or unknown value: leave it alone
            template = yaml.safe_load(text)
            if isinstance(template, dict) and harden_template(template, fix):
                data[found.key] = yaml.safe_dump(template, sort_keys=False)
                changed = True
    elif runner_pods(resource):
        if is_scale_set_values(resource):
            values = raw.get("values")
            template = values.get("template") if isinstance(values, dict) else None
            spec = template.get("spec") if isinstance(template, dict) else None
        else:
            ars_spec = raw.get("spec")
            template = ars_spec.get("template") if isinstance(ars_spec, dict) else None
            spec = template.get("spec") if isinstance(template, dict) else None
        changed = _fix_containers(spec, fix)
    return raw if changed else None
