"""Print the toolchain pins from pyproject.toml as shell assignments.

pyproject.toml is the one place that holds versions: the Pulumi CLI, language
host and provider plugins follow the Python SDK pins in [project]
dependencies; kubernetes, etcd and actionlint live in
[tool.arc-zfs-cache.toolchain].  scripts/toolchain.sh evals this output, so
every value is checked to be a plain X.Y.Z version before it is printed.
The optional pulumi-language-python key pins the Python language host apart
from the CLI (empty when absent).
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

VERSION = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+$")
DEBIAN_VERSION = re.compile(r"^[0-9][0-9A-Za-z.~]*-[0-9A-Za-z.+~]+$")
PSEUDO_VERSION = re.compile(r"^v[0-9]+\.[0-9]+\.[0-9]+-[0-9]{14}-[0-9a-f]{12}$")

# shell variable -> where the pin lives
SDK_PINS = {
    "PIN_PULUMI": "pulumi",
    "PIN_PULUMI_KUBERNETES": "pulumi-kubernetes",
    "PIN_PULUMI_COMMAND": "pulumi-command",
}
TOOL_PINS = {
    "PIN_KUBERNETES": "kubernetes",
    "PIN_ETCD": "etcd",
    "PIN_ACTIONLINT": "actionlint",
    "PIN_CSI_PROVISIONER": "csi-provisioner",
    "PIN_EXTERNAL_SNAPSHOTTER": "external-snapshotter",
    "PIN_CSI_SPEC": "csi-spec",
}


def main(pyproject: Path) -> int:
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    exact: dict[str, str] = {}
    for requirement in data["project"]["dependencies"]:
        name, sep, version = requirement.partition("==")
        if sep:
            exact[name.strip().lower().replace("_", "-")] = version.strip()
    tools = data.get("tool", {}).get("arc-zfs-cache", {}).get("toolchain", {})

    errors = []
    out = []
    for var, name in SDK_PINS.items():
        value = exact.get(name)
        if value is None:
            errors.append(f"[project] dependencies has no exact pin '{name}==X.Y.Z'")
        elif not VERSION.match(value):
            errors.append(f"pin {name}=={value} is not a plain X.Y.Z version")
        else:
            out.append(f"{var}={value}")
    for var, name in TOOL_PINS.items():
        value = tools.get(name)
        if not isinstance(value, str):
            errors.append(f"[tool.arc-zfs-cache.toolchain] has no string '{name}'")
        elif not VERSION.match(value):
            errors.append(f"toolchain pin {name} = {value!r} is not a plain X.Y.Z version")
        else:
            out.append(f"{var}={value}")
    # Optional: the Python language host pinned apart from the CLI, for when
    # the CLI's own release of it cannot be had (see scripts/toolchain.sh).
    langhost = tools.get("pulumi-language-python", "")
    if langhost and not (isinstance(langhost, str) and VERSION.match(langhost)):
        errors.append(f"toolchain pin pulumi-language-python = {langhost!r} is not X.Y.Z")
    else:
        out.append(f"PIN_PULUMI_LANGUAGE_PYTHON={langhost}")
    # Debian's zfs-fuse, installed with apt-get at exactly this package version
    # (a Debian version, not X.Y.Z: upstream-debian revision, maybe +bN).
    zfs_fuse = tools.get("zfs-fuse")
    if not (isinstance(zfs_fuse, str) and DEBIAN_VERSION.match(zfs_fuse)):
        errors.append(
            f"[tool.arc-zfs-cache.toolchain] zfs-fuse = {zfs_fuse!r} is not a Debian "
            "package version (e.g. 0.7.0-25+b1)"
        )
    else:
        out.append(f"PIN_ZFS_FUSE={zfs_fuse}")
    # The Go module that holds the pulumi-kubernetes provider at the SDK pin:
    # upstream tags it vX.Y.Z but the proxy serves the tagged commit only as a
    # pseudo-version of provider/v4.
    module = tools.get("pulumi-kubernetes-provider-module", "")
    if not (isinstance(module, str) and PSEUDO_VERSION.match(module)):
        errors.append(
            "[tool.arc-zfs-cache.toolchain] pulumi-kubernetes-provider-module = "
            f"{module!r} is not a Go pseudo-version (v4.0.0-YYYYMMDDhhmmss-<commit>)"
        )
    else:
        out.append(f"PIN_PULUMI_KUBERNETES_MODULE={module}")
    if errors:
        for error in errors:
            print(f"toolchain: {pyproject}: {error}", file=sys.stderr)
        return 1
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
