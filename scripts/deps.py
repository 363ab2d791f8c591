"""Print the pinned requirements of pyproject.toml (runtime plus the given extras), one per line.

The Makefile pipes them into pip, so pyproject.toml stays the only place that holds a pin.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

__all__ = ["requirements"]


def requirements(extras: list[str]) -> list[str]:
    """The ``[project]`` dependencies plus those of each optional-dependency group named."""
    project = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())[
        "project"
    ]
    deps = list(project["dependencies"])
    for extra in extras:
        deps += project["optional-dependencies"][extra]
    return deps


if __name__ == "__main__":
    print("\n".join(requirements(sys.argv[1:])))
