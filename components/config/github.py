"""Config of where runners register with GitHub and with which (secret) credentials."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from components.config.base import ConfigModel
from components.config.scalars import Secret

__all__ = ["GithubAppCredentials", "GithubConfig", "GithubCredentials"]


class GithubAppCredentials(ConfigModel):
    """A GitHub App installation the runners register with."""

    app_id: int = Field(description="GitHub App id", gt=0, examples=[123456])
    installation_id: int = Field(description="GitHub App installation id", gt=0, examples=[7890123])
    private_key: Secret = Field(description="GitHub App private key PEM (secret)")


class GithubCredentials(ConfigModel):
    """Exactly one of a GitHub App or a personal access token, both secret."""

    app: GithubAppCredentials | None = Field(default=None, description="GitHub App credentials")
    token: Secret | None = Field(default=None, description="personal access token (secret)")

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.app is None) == (self.token is None):
            raise PydanticCustomError(
                "credentials",
                "set exactly one of `app` (appId, installationId, privateKey) or `token`, e.g. "
                "`pulumi config set --secret --path github.credentials.token ghp_...`",
                {},
            )
        return self


class GithubConfig(ConfigModel):
    """Where runners register and with which credentials."""

    url: str = Field(
        description="organisation, enterprise or repository URL runners register at",
        pattern=r"^https://[^/\s]+(/[^/\s]+){1,2}/?$",
        examples=["https://github.com/acme"],
    )
    credentials: GithubCredentials = Field(
        description="exactly one of `app` or `token`, set with `--secret`"
    )
    ca_bundle: str | None = Field(
        description="PEM CA bundle of a GitHub Enterprise Server",
        default=None,
        pattern=r"^-----BEGIN CERTIFICATE-----",
        examples=["-----BEGIN CERTIFICATE-----\n..."],
    )
