"""Scalar types of the stack config: names, quantities, durations, paths, images, secrets.

Each type validates one value and reports a problem the user can act on; the models in the
sibling modules are built from them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Annotated, Final

from pydantic import AfterValidator, BeforeValidator, PlainSerializer
from pydantic_core import PydanticCustomError

from components import constants as c

__all__ = [
    "SECRET_FIELD_ALIASES",
    "DnsLabel",
    "Duration",
    "MountPath",
    "PinnedImage",
    "Quantity",
    "ResourceQuantity",
    "RunnerImage",
    "Secret",
    "SecretValue",
    "parse_duration",
    "parse_quantity",
    "parse_resource_quantity",
]


_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_QUANTITY = re.compile(r"^(?P<num>[0-9]+(\.[0-9]+)?)(?P<unit>Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")
_UNITS: Final = {
    None: 1,
    "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
}  # fmt: skip
# A container resource quantity (Kubernetes resource.Quantity): CPU takes milli-units (250m)
# and any quantity a decimal exponent (1e3); storage sizes stay whole bytes (parse_quantity).
_RESOURCE_QUANTITY = re.compile(
    r"^(?P<num>[0-9]+(\.[0-9]*)?|\.[0-9]+)"
    r"(?:(?P<unit>Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)|[eE](?P<exp>[+-]?[0-9]+))?$"
)
_FRACTIONS: Final = {"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3")}
_DURATION = re.compile(r"^(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?$")


def parse_quantity(value: str) -> int:
    """Return the number of bytes of a Kubernetes storage quantity such as ``200Gi``."""
    match = _QUANTITY.match(value)
    if match is None:
        raise ValueError(value)
    return int(float(match["num"]) * _UNITS[match["unit"]])


def parse_resource_quantity(value: str) -> Decimal:
    """Return the amount of a container resource quantity such as ``250m``, ``2`` or ``4Gi``."""
    match = _RESOURCE_QUANTITY.match(value)
    if match is None:
        raise ValueError(value)
    number = Decimal(match["num"])
    if match["exp"] is not None:
        return number.scaleb(int(match["exp"]))
    unit = match["unit"]
    return number * (_FRACTIONS[unit] if unit in _FRACTIONS else _UNITS[unit])


def parse_duration(value: str) -> timedelta:
    """Parse a duration such as ``90s``, ``15m``, ``1h30m`` or ``7d``."""
    match = _DURATION.match(value)
    if not value or match is None:
        raise ValueError(value)
    return timedelta(
        days=int(match["d"] or 0),
        hours=int(match["h"] or 0),
        minutes=int(match["m"] or 0),
        seconds=int(match["s"] or 0),
    )


def _dns_label(value: str) -> str:
    if len(value) > 40 or not _DNS_LABEL.match(value):
        raise PydanticCustomError(
            "dns_label",
            "'{value}' is not a valid name: use at most 40 lower-case letters, digits and '-', "
            "starting and ending with a letter or digit (e.g. gcc12-main)",
            {"value": value},
        )
    return value


def _quantity(value: str) -> str:
    try:
        if parse_quantity(value) <= 0:
            raise ValueError(value)
    except ValueError:
        raise PydanticCustomError(
            "quantity",
            "'{value}' is not a Kubernetes quantity: use a number with a unit, e.g. 200Gi",
            {"value": value},
        ) from None
    return value


def _resource_quantity(value: str) -> str:
    try:
        if parse_resource_quantity(value) <= 0:
            raise ValueError(value)
    except ValueError:
        raise PydanticCustomError(
            "resource_quantity",
            "'{value}' is not a Kubernetes resource quantity: use a number with an optional unit, "
            "e.g. 250m or 2 (cpu), 4Gi (memory)",
            {"value": value},
        ) from None
    return value


def _duration(value: str | timedelta) -> timedelta:
    if isinstance(value, timedelta):
        return value
    try:
        parsed = parse_duration(value)
    except ValueError:
        raise PydanticCustomError(
            "duration",
            "'{value}' is not a duration: use units d, h, m, s such as 15m, 1h30m or 7d",
            {"value": value},
        ) from None
    if parsed <= timedelta(0):
        raise PydanticCustomError("duration", "must be longer than zero, e.g. 15m", {})
    return parsed


def _absolute_path(value: str) -> str:
    if not value.startswith("/") or value.rstrip("/") in ("", c.RUNNER_WORK_DIR):
        raise PydanticCustomError(
            "mount_path",
            "'{value}' is not a usable mount path: use an absolute directory such as /CONAN_HOME",
            {"value": value},
        )
    return value.rstrip("/")


def _pinned_image(value: str) -> str:
    name, _, digest = value.partition("@")
    tag = name.rsplit("/", 1)[-1].partition(":")[2]
    if digest:
        if not digest.startswith("sha256:"):
            raise PydanticCustomError(
                "image", "'{value}' has a malformed digest: use @sha256:<64 hex>", {"value": value}
            )
        return value
    if not tag or tag == "latest":
        raise PydanticCustomError(
            "image",
            "'{value}' is not pinned: give a version tag or a digest, e.g. {example}",
            {"value": value, "example": c.RUNNER_IMAGE},
        )
    return value


def _version(text: str) -> tuple[int, ...] | None:
    parts = text.removeprefix("v").split(".")
    return tuple(int(p) for p in parts) if all(p.isdigit() for p in parts) else None


def _registrable_runner(value: str) -> str:
    """Refuse an actions-runner image GitHub no longer registers (other images pass)."""
    name, _, _ = value.partition("@")
    repository, _, tag = name.rpartition(":")
    version = _version(tag)
    official = repository.rsplit("/", 1)[-1] == "actions-runner"
    if official and version is not None and version < (_version(c.MIN_RUNNER_VERSION) or ()):
        raise PydanticCustomError(
            "runner_version",
            "'{value}' is older than {minimum}: GitHub refuses to register it, and older "
            "images lack the hooks this program configures; use {example}",
            {"value": value, "minimum": c.MIN_RUNNER_VERSION, "example": c.RUNNER_IMAGE},
        )
    return value


DnsLabel = Annotated[str, AfterValidator(_dns_label)]
Quantity = Annotated[str, AfterValidator(_quantity)]
ResourceQuantity = Annotated[str, AfterValidator(_resource_quantity)]
Duration = Annotated[
    timedelta,
    BeforeValidator(_duration),
    PlainSerializer(lambda d: f"{int(d.total_seconds())}s", return_type=str),
]
MountPath = Annotated[str, AfterValidator(_absolute_path)]
PinnedImage = Annotated[str, AfterValidator(_pinned_image)]
RunnerImage = Annotated[PinnedImage, AfterValidator(_registrable_runner)]


@dataclass(frozen=True, slots=True)
class SecretValue:
    """A config value stored encrypted in the stack file.

    ``value`` is the plaintext when the Pulumi engine decrypted it, or ``None`` in the offline
    config check, which never decrypts. The plaintext never appears in ``repr``.
    """

    value: str | None

    def __repr__(self) -> str:
        return "SecretValue(***)"

    def __str__(self) -> str:
        return "***"


def _secret(value: object) -> SecretValue:
    if isinstance(value, SecretValue):
        return value
    if isinstance(value, Mapping) and set(value) == {"secure"}:
        return SecretValue(None)
    raise PydanticCustomError(
        "plain_secret",
        "is stored in plain text; store it encrypted with "
        "`pulumi config set --secret --path {path} <value>`",
        {"path": "{path}"},
    )


Secret = Annotated[
    SecretValue,
    BeforeValidator(_secret),
    PlainSerializer(lambda _: "***", return_type=str),
]

#: Aliases of the fields that hold secrets (a test checks this against the models).
SECRET_FIELD_ALIASES: Final = frozenset({"token", "privateKey"})
