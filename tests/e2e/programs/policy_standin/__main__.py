"""Declare the resources listed in ``$POLICY_SCENARIO`` for the policy pack to judge.

Each entry (``type``, ``name``, ``props``, optional ``parent``) becomes a component resource
with the given type token (``kubernetes:core/v1:ConfigMap``...) whose inputs, and outputs, are
``props``: the policy pack sees exactly what it would see of that Kubernetes object in a
preview. Stand-ins, because the e2e toolchain cannot build pulumi-resource-kubernetes yet (the
Go module proxy does not serve its provider module); with the provider, the same scenarios
can be declared with pulumi_kubernetes and previewed against the local API server.
"""

import os
from pathlib import Path
from typing import Any

import pulumi
import yaml


class StandIn(pulumi.ComponentResource):
    """A resource of any type token, carrying ``props`` as inputs and outputs."""

    def __init__(
        self, type_: str, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions
    ) -> None:
        super().__init__(type_, name, props, opts)
        self.register_outputs(props)


declared: dict[str, StandIn] = {}
for item in yaml.safe_load(Path(os.environ["POLICY_SCENARIO"]).read_text()):
    parent = declared.get(item["parent"]) if item.get("parent") else None
    declared[item["name"]] = StandIn(
        item["type"], item["name"], item["props"], pulumi.ResourceOptions(parent=parent)
    )
