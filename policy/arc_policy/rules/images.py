"""Pinned images: a tag other than ``latest``, or a digest, from an allowed registry."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from ..config import ALLOWED_REGISTRIES, Settings
from ..discovery import Resource, chart_name, pod_targets
from ..hook_merge import EXTENSION_PREFIX
from ..model import Finding, PodKind
from ..policy_kit import ResourceCheckRule, Rule
from ..values import as_mapping, as_str, get_in
from .common import containers

__all__ = ["PINNED_IMAGES", "RULES", "ImageRef", "check_pinned_images", "parse_image"]

_DOCKER_HUB: Final = "docker.io"


@dataclass(frozen=True)
class ImageRef:
    """An image reference split into its parts."""

    #: Registry host (``docker.io`` when the reference names none).
    registry: str
    #: Repository path within the registry (``library/ubuntu`` for ``ubuntu``).
    repository: str
    tag: str | None
    digest: str | None

    @property
    def full_name(self) -> str:
        """``registry/repository`` (what allowed-registry prefixes match)."""
        return f"{self.registry}/{self.repository}"

    @property
    def pinned(self) -> bool:
        """True with a digest, or a tag other than ``latest``."""
        return self.digest is not None or (self.tag is not None and self.tag != "latest")


def parse_image(reference: str) -> ImageRef:
    """Split ``[registry/]repository[:tag][@digest]`` the way container runtimes do."""
    rest, _, digest = reference.partition("@")
    last_slash = rest.rfind("/")
    tag = None
    if ":" in rest[last_slash + 1 :]:
        rest, _, tag = rest.rpartition(":")
    first, _, remainder = rest.partition("/")
    if remainder and ("." in first or ":" in first or first == "localhost"):
        registry, repository = first, remainder
    else:
        registry, repository = _DOCKER_HUB, rest
        if "/" not in repository:
            repository = f"library/{repository}"
    return ImageRef(registry, repository, tag or None, digest or None)


def _image_findings(
    resource: Resource, image: str, path: str, settings: Settings, *, subject: str, container: str
) -> Iterator[Finding]:
    """Findings for one image reference."""
    ref = parse_image(image)
    if not ref.pinned:
        tag = "latest" if ref.tag == "latest" else "no tag (means latest)"
        yield Finding(
            resource=resource.ref,
            path=path,
            problem=f"image {image!r} has {tag}: what runs changes without a deployment",
            fix="pin a version tag (e.g. ghcr.io/actions/actions-runner:2.324.0) or a digest",
            subject=subject,
            container=container,
        )
    allowed = settings.allowed_registries
    if allowed and not any(
        ref.full_name == prefix.rstrip("/")
        or ref.full_name.startswith(prefix.rstrip("/") + "/")
        or image.startswith(prefix)
        for prefix in allowed
    ):
        yield Finding(
            resource=resource.ref,
            path=path,
            problem=f"image {image!r} is not from an allowed registry {list(allowed)}",
            fix="pull it through an allowed registry (mirror it), or extend allowedRegistries",
            subject=subject,
            container=container,
        )


def check_pinned_images(resource: Resource, settings: Settings) -> Iterator[Finding]:
    """Runner, hook-template, workload and controller images are pinned and allowed.

    The job and service images of a job pod come from workflows, not from the deployment:
    only the containers a hook template adds itself are checked.
    """
    for target in pod_targets(resource):
        for ref in containers(target):
            declared = target.display_name(ref.name)
            if target.kind is PodKind.JOB and declared.startswith(EXTENSION_PREFIX):
                continue
            image = as_str(ref.container.get("image"))
            if image:
                yield from _image_findings(
                    resource,
                    image,
                    ref.path("image"),
                    settings,
                    subject=target.kind.value,
                    container=declared,
                )
    if resource.is_helm and "controller" in chart_name(resource):
        values = as_mapping(resource.props.get("values")) or {}
        repository = as_str(get_in(values, "image", "repository"))
        tag = as_str(get_in(values, "image", "tag"))
        if repository or tag:
            image = f"{repository or 'ghcr.io/actions/gha-runner-scale-set-controller'}"
            # An empty tag makes the chart use its appVersion: pinned with the chart version.
            image += f":{tag or 'chart-app-version'}"
            yield from _image_findings(
                resource, image, "values.image", settings, subject="controller", container="manager"
            )


PINNED_IMAGES: Final = ResourceCheckRule(
    name="pinned-images",
    description=(
        "Runner, hook-template, workload and controller images are pinned (a tag other than "
        "latest, or a digest) and come from allowed registries."
    ),
    check=check_pinned_images,
    config_keys=(ALLOWED_REGISTRIES,),
)

#: The image policies.
RULES: Final[tuple[Rule, ...]] = (PINNED_IMAGES,)
