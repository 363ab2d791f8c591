"""RunnerNamespace: a runner namespace with Pod Security labels and the GitHub credentials."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components import constants as c
from components._kube import labels, metadata
from components.config import GithubConfig, PodSecurityConfig
from components.hook_template import pod_security_labels

__all__ = ["RunnerNamespace", "RunnerNamespaceArgs", "github_secret_data"]


@dataclass(frozen=True, slots=True)
class RunnerNamespaceArgs:
    """Inputs of :class:`RunnerNamespace`."""

    namespace: str
    pod_security: PodSecurityConfig
    github: GithubConfig


def github_secret_data(github: GithubConfig) -> dict[str, str]:
    """The keys the gha-runner-scale-set chart reads from ``githubConfigSecret``."""
    creds = github.credentials
    if creds.app is not None:
        return {
            "github_app_id": str(creds.app.app_id),
            "github_app_installation_id": str(creds.app.installation_id),
            "github_app_private_key": creds.app.private_key.value or "",
        }
    assert creds.token is not None  # the model guarantees exactly one of app or token
    return {"github_token": creds.token.value or ""}


class RunnerNamespace(pulumi.ComponentResource):
    """Namespace of runner and job pods: Pod Security enforced, credentials as a Secret."""

    name: pulumi.Output[str]
    github_secret: pulumi.Output[str]
    github_ca_config_map: pulumi.Output[str] | None

    def __init__(
        self, name: str, args: RunnerNamespaceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("arc-zfs-cache:runners:RunnerNamespace", name, None, opts)
        annotations = (
            {c.ANNOTATION_POD_SECURITY_REASON: args.pod_security.reason}
            if args.pod_security.reason
            else None
        )
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=args.namespace,
                labels={**labels(), **pod_security_labels(args.pod_security.level)},
                annotations=annotations,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        after = pulumi.ResourceOptions(parent=self, depends_on=[namespace])
        secret = k8s.core.v1.Secret(
            f"{name}-github",
            metadata=metadata(c.GITHUB_SECRET_NAME, args.namespace),
            type="Opaque",
            # Output.secret keeps the credentials encrypted in state and out of the diff.
            string_data=pulumi.Output.secret(github_secret_data(args.github)),
            opts=after,
        )
        self.github_ca_config_map = None
        if args.github.ca_bundle:
            ca = k8s.core.v1.ConfigMap(
                f"{name}-github-ca",
                metadata=metadata(c.GITHUB_CA_CONFIG_MAP, args.namespace),
                data={c.GITHUB_CA_KEY: args.github.ca_bundle},
                opts=after,
            )
            self.github_ca_config_map = ca.metadata.name
        self.resource = namespace
        self.name = namespace.metadata.name
        self.github_secret = secret.metadata.name
        self.register_outputs({"name": self.name, "github_secret": self.github_secret})
