"""RunnerScaleSet: one gha-runner-scale-set release in kubernetes container mode."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components._kube import chart_args
from components.config import ChartRef

__all__ = ["RunnerScaleSet", "RunnerScaleSetArgs"]


@dataclass(frozen=True, slots=True)
class RunnerScaleSetArgs:
    """Inputs of :class:`RunnerScaleSet`: the chart and its rendered values."""

    name: str
    namespace: str
    chart: ChartRef
    values: dict[str, Any]
    depends_on: Sequence[pulumi.Resource] = ()


class RunnerScaleSet(pulumi.ComponentResource):
    """An AutoscalingRunnerSet whose runners are pinned to the node of their caches."""

    scale_set_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: RunnerScaleSetArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("arc-zfs-cache:runners:RunnerScaleSet", name, None, opts)
        self.chart = k8s.helm.v4.Chart(
            f"{name}-chart",
            chart_args(args.chart, release=args.name, namespace=args.namespace, values=args.values),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
        )
        self.scale_set_name = pulumi.Output.from_input(args.name)
        self.register_outputs({"scale_set_name": self.scale_set_name})
