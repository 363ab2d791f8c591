"""Entry point Pulumi runs: the arc-zfs-cache policy pack (its policies are in ``arc_policy``)."""

import importlib

from pulumi_policy import EnforcementLevel, PolicyPack

# Pulumi runs this file with only policy/ on sys.path: the package is `arc_policy` here and
# `policy.arc_policy` from the repository root, so it is imported by name.
pack = importlib.import_module("arc_policy.pack")

PolicyPack(
    name=pack.PACK_NAME,
    policies=pack.all_policies(),
    enforcement_level=EnforcementLevel.MANDATORY,
    description=pack.PACK_DESCRIPTION,
)
