"""Typed models of the whole stack configuration, and the offline config check.

Every key is validated, unknown keys are rejected, and every problem is reported with the key
path as the user types it with ``pulumi config set --path`` (``caches.gcc12.size``), what is
wrong, and an example of a right value. Run the check without a cluster or the Pulumi engine::

    python -m components.config Pulumi.dev.yaml

The package is split by responsibility (imports go downwards only, see ``.importlinter``):

- :mod:`.scalars`: the scalar types (names, quantities, durations, paths, images, secrets);
- :mod:`.base`: the base model and the chart reference;
- :mod:`.cluster`, :mod:`.storage`, :mod:`.github`, :mod:`.caches`, :mod:`.scale_sets`: the
  models of each section;
- :mod:`.rules`: the cross-field rules; :mod:`.stack`: the whole stack model;
- :mod:`.errors`: the problems as the user reads them; :mod:`.translate`: pydantic's errors
  translated into them (the one module that knows pydantic's error format);
- :mod:`.files`: reading a stack file; :mod:`.cli`: ``python -m components.config``.

Every public name is re-exported here, so callers import from ``components.config``.
"""

from components.config.base import ChartRef, ConfigModel
from components.config.caches import CacheConfig, ImportedDataset
from components.config.cli import main, summary
from components.config.cluster import ArcControllerConfig, ClusterConfig, ImagesConfig
from components.config.errors import ConfigError, ConfigProblem
from components.config.files import load_stack_file
from components.config.github import GithubAppCredentials, GithubConfig, GithubCredentials
from components.config.rules import cross_reference_problems
from components.config.scalars import (
    SECRET_FIELD_ALIASES,
    SecretValue,
    parse_duration,
    parse_quantity,
    parse_resource_quantity,
)
from components.config.scale_sets import (
    CacheMountConfig,
    PodSecurityConfig,
    Resources,
    ScaleSetConfig,
    WorkVolume,
)
from components.config.stack import StackConfig
from components.config.storage import NodePreparation, SshHost, StorageConfig
from components.config.translate import validate_config

__all__ = [
    "SECRET_FIELD_ALIASES",
    "ArcControllerConfig",
    "CacheConfig",
    "CacheMountConfig",
    "ChartRef",
    "ClusterConfig",
    "ConfigError",
    "ConfigModel",
    "ConfigProblem",
    "GithubAppCredentials",
    "GithubConfig",
    "GithubCredentials",
    "ImagesConfig",
    "ImportedDataset",
    "NodePreparation",
    "PodSecurityConfig",
    "Resources",
    "ScaleSetConfig",
    "SecretValue",
    "SshHost",
    "StackConfig",
    "StorageConfig",
    "WorkVolume",
    "cross_reference_problems",
    "load_stack_file",
    "main",
    "parse_duration",
    "parse_quantity",
    "parse_resource_quantity",
    "summary",
    "validate_config",
]
