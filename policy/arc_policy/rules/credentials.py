"""No inline credentials: GitHub credentials by Secret name only, secrets never as literal env."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Final

from .._constants import LABEL_PART_OF
from ..config import Settings
from ..discovery import Resource, is_scale_set_values, pod_targets, runner_pods
from ..model import Finding
from ..policy_kit import ResourceCheckRule, Rule
from ..values import as_list, as_mapping, get_in, is_unknown
from .common import containers

__all__ = ["NO_INLINE_CREDENTIALS", "RULES", "check_no_inline_credentials"]

#: Keys of a gha-runner-scale-set GitHub config secret that hold credentials.
_GITHUB_SECRET_KEYS: Final = frozenset(
    {"github_token", "github_app_id", "github_app_installation_id", "github_app_private_key"}
)
#: Annotation the chart puts on an AutoscalingRunnerSet whose credentials were inline values.
_INLINE_SECRET_ANNOTATION: Final = "actions.github.com/cleanup-github-secret-name"
#: ``app.kubernetes.io/part-of`` value of everything gha-runner-scale-set renders.
_CHART_PART_OF: Final = "gha-rs"
_SECRET_ENV: Final = re.compile(
    r"(^|_)(TOKEN|PASSWORD|PASSWD|SECRET|PRIVATE_KEY|API_KEY|ACCESS_KEY)$", re.IGNORECASE
)
_FIX: Final = (
    "create a Secret with github_app_id, github_app_installation_id and github_app_private_key "
    "(or github_token) from a Pulumi secret, and set githubConfigSecret to its name"
)


def check_no_inline_credentials(resource: Resource, settings: Settings) -> Iterator[Finding]:
    """GitHub credentials come from a Secret named in ``githubConfigSecret``, and no pod sets a
    secret-looking environment variable to a literal value."""
    del settings
    if is_scale_set_values(resource):
        secret = get_in(resource.props, "values", "githubConfigSecret")
        if isinstance(secret, dict):
            keys = sorted(k for k in secret if k in _GITHUB_SECRET_KEYS) or sorted(secret)
            yield Finding(
                resource=resource.ref,
                path="values.githubConfigSecret",
                problem=f"GitHub credentials are inline chart values ({', '.join(keys)}): they "
                "land in the release's values and in a chart-made Secret",
                fix=_FIX,
            )
    for runner in runner_pods(resource):
        annotations = as_mapping(get_in(resource.props, "metadata", "annotations")) or {}
        if runner.values is None and _INLINE_SECRET_ANNOTATION in annotations:
            yield Finding(
                resource=resource.ref,
                path=f"metadata.annotations[{_INLINE_SECRET_ANNOTATION}]",
                problem="this scale set was rendered from inline GitHub credentials (the chart "
                "made the Secret from values)",
                fix=_FIX,
            )
    if resource.kind == "Secret" and resource.labels.get(LABEL_PART_OF) == _CHART_PART_OF:
        data = {
            **(as_mapping(resource.props.get("data")) or {}),
            **(as_mapping(resource.props.get("stringData")) or {}),
        }
        keys = sorted(k for k in data if k in _GITHUB_SECRET_KEYS)
        if keys:
            yield Finding(
                resource=resource.ref,
                path="data",
                problem=f"gha-runner-scale-set rendered this Secret from inline values "
                f"({', '.join(keys)})",
                fix=_FIX,
            )
    for target in pod_targets(resource):
        for ref in containers(target):
            for item in as_list(ref.container.get("env")):
                if not isinstance(item, dict):
                    continue
                name, value = item.get("name"), item.get("value")
                if (
                    isinstance(name, str)
                    and _SECRET_ENV.search(name)
                    and isinstance(value, str)
                    and value
                    and not is_unknown(value)
                ):
                    yield ref.finding(
                        f"env[{name}].value",
                        f"{name} is set to a literal value, readable by anyone who can read "
                        "the resource",
                        "use valueFrom.secretKeyRef",
                    )


NO_INLINE_CREDENTIALS: Final = ResourceCheckRule(
    name="no-inline-credentials",
    description=(
        "GitHub credentials are referenced by Secret name, never inline in chart values or env."
    ),
    check=check_no_inline_credentials,
)

#: The credential policies.
RULES: Final[tuple[Rule, ...]] = (NO_INLINE_CREDENTIALS,)
