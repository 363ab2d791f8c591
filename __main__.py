"""arc-zfs-cache: load and validate the stack config, then build the system."""

import pulumi

from components.config import ConfigError
from components.pulumi_config import load_stack_config
from components.stack import ArcZfsCache

try:
    config = load_stack_config()
except ConfigError as error:
    for problem in error.problems:
        pulumi.log.error(f"config {problem}")
    # RunError ends the program without a traceback, before any resource is registered.
    raise pulumi.RunError(
        f"stack config has {len(error.problems)} problem(s); fix them in "
        f"Pulumi.{pulumi.get_stack()}.yaml (check offline: "
        f"python -m components.config Pulumi.{pulumi.get_stack()}.yaml)"
    ) from None

system = ArcZfsCache(pulumi.get_stack(), config)
pulumi.export("parent_claims", system.parent_claims)
pulumi.export("generations", system.generations)
pulumi.export("scale_sets", system.scale_sets)
