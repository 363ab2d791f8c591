"""Every fact lives in one place: no stray literal of a constant outside its home.

Greps (with ``ast``: code strings only, not comments or docstrings) components/, policy/ and
localcluster/ for the values of facts that components/constants.py holds (the policy pack's
own home is policy/arc_policy/_constants.py: it ships without components/), and fails naming
file and line of each literal found elsewhere.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from pulumi.runtime.rpc import UNKNOWN

from components import constants as c

ROOT = Path(__file__).resolve().parent.parent
TREES = ("components", "policy", "localcluster")
HOMES = frozenset({"components/constants.py", "policy/arc_policy/_constants.py"})

#: Facts found inside a string (API versions, paths, the engine's unknown-value marker).
CONTAINED: dict[str, str] = {
    "ZFS_API_VERSION": c.ZFS_API_VERSION,
    "snapshot apiVersion": f"{c.SNAPSHOT_API_GROUP}/{c.SNAPSHOT_API_VERSION}",
    "RUNNER_WORK_DIR": c.RUNNER_WORK_DIR,
    "engine unknown value (pulumi.runtime.rpc.UNKNOWN)": UNKNOWN,
}
#: Facts that are a whole string: the label and annotation keys.
WHOLE: dict[str, str] = {
    name: value
    for name, value in vars(c).items()
    if name.startswith(("LABEL_", "ANNOTATION_")) or name.endswith("_LABEL")
}
#: The runner's ACTIONS_RUNNER_* env names (c.ENV_*).
ENV_NAME = re.compile(r"(?<![A-Z_])ACTIONS_RUNNER_[A-Z_]+")

#: Literals outside a home today in policy/ and localcluster/ (not yet moved to their
#: constants): a ceiling per file and fact, so any new literal fails; lower or delete an
#: entry when its literals go.
KNOWN: Counter[tuple[str, str]] = Counter(
    {
        ("localcluster/arc_double.py", "LABEL_PART_OF"): 1,
        ("localcluster/arc_double.py", "env ACTIONS_RUNNER_INPUT_JITCONFIG"): 1,
        ("localcluster/arc_double.py", "env ACTIONS_RUNNER_RETURN_VERSION_DEPRECATED_EXIT_CODE"): 1,
        ("localcluster/hook_double.py", "env ACTIONS_RUNNER_CLAIM_NAME"): 1,
        ("localcluster/hook_double.py", "env ACTIONS_RUNNER_CONTAINER_HOOKS"): 1,
        ("localcluster/hook_double.py", "env ACTIONS_RUNNER_CONTAINER_HOOK_TEMPLATE"): 1,
        ("localcluster/hook_double.py", "env ACTIONS_RUNNER_IMAGE"): 1,
        ("localcluster/hook_double.py", "env ACTIONS_RUNNER_POD_NAME"): 1,
        ("localcluster/hook_double.py", "env ACTIONS_RUNNER_USE_KUBE_SCHEDULER"): 1,
        ("localcluster/zfs_csi/driver.py", "ZFS_API_VERSION"): 2,
        ("policy/arc_policy/discovery.py", "RUNNER_WORK_DIR"): 2,
        ("policy/arc_policy/discovery.py", "env ACTIONS_RUNNER_CONTAINER_HOOKS"): 1,
        ("policy/arc_policy/discovery.py", "env ACTIONS_RUNNER_CONTAINER_HOOK_TEMPLATE"): 1,
        ("policy/arc_policy/discovery.py", "env ACTIONS_RUNNER_KUBERNETES_NAMESPACE"): 1,
        ("policy/arc_policy/discovery.py", "env ACTIONS_RUNNER_POD_NAME"): 2,
        ("policy/arc_policy/discovery.py", "env ACTIONS_RUNNER_REQUIRE_JOB_CONTAINER"): 1,
        ("policy/arc_policy/hook_merge.py", "RUNNER_WORK_DIR"): 1,
        ("policy/arc_policy/hook_merge.py", "env ACTIONS_RUNNER_CLAIM_NAME"): 1,
        ("policy/arc_policy/hook_merge.py", "env ACTIONS_RUNNER_CONTAINER_HOOK_TEMPLATE"): 1,
        ("policy/arc_policy/hook_merge.py", "env ACTIONS_RUNNER_IMAGE"): 1,
        ("policy/arc_policy/hook_merge.py", "env ACTIONS_RUNNER_KUBERNETES_NAMESPACE"): 1,
        ("policy/arc_policy/hook_merge.py", "env ACTIONS_RUNNER_USE_KUBE_SCHEDULER"): 1,
        ("policy/arc_policy/rules/credentials.py", "LABEL_PART_OF"): 1,
        ("policy/arc_policy/rules/listener.py", "LABEL_PART_OF"): 1,
        ("policy/arc_policy/scale_set_chart.py", "RUNNER_WORK_DIR"): 1,
        ("policy/arc_policy/scale_set_chart.py", "env ACTIONS_RUNNER_CONTAINER_HOOKS"): 1,
        ("policy/arc_policy/scale_set_chart.py", "env ACTIONS_RUNNER_POD_NAME"): 1,
        ("policy/arc_policy/scale_set_chart.py", "env ACTIONS_RUNNER_REQUIRE_JOB_CONTAINER"): 1,
        ("policy/arc_policy/testing.py", "engine unknown value (pulumi.runtime.rpc.UNKNOWN)"): 1,
        ("policy/arc_policy/values.py", "engine unknown value (pulumi.runtime.rpc.UNKNOWN)"): 1,
    }
)


def _code_strings(tree: ast.AST) -> Iterator[ast.Constant]:
    documentation = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in documentation
        ):
            yield node


def stray_literals() -> Iterator[tuple[str, int, str]]:
    """(file, line, fact) of every fact's literal outside its home."""
    for tree in TREES:
        for path in sorted((ROOT / tree).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel in HOMES:
                continue
            for node in _code_strings(ast.parse(path.read_text(encoding="utf-8"))):
                text = node.value
                facts = [name for name, value in CONTAINED.items() if value in text]
                facts += [name for name, value in WHOLE.items() if text == value]
                facts += [f"env {m}" for m in ENV_NAME.findall(text)]
                for fact in facts:
                    yield rel, node.lineno, fact


def test_no_stray_literal_of_a_constant() -> None:
    found = list(stray_literals())
    counts = Counter((path, fact) for path, _, fact in found)
    new = [f"{p}:{line}: {fact}" for p, line, fact in found if counts[p, fact] > KNOWN[p, fact]]
    assert not new, "use the constant (components/constants.py) instead:\n" + "\n".join(new)


def test_the_grep_finds_a_stray_literal(tmp_path: Path) -> None:
    sample = ast.parse(
        f'"""docstring {c.ZFS_API_VERSION}"""\nX = {{"apiVersion": "{c.ZFS_API_VERSION}"}}\n'
        f'Y = "{c.LABEL_CACHE}"\nZ = ["ACTIONS_RUNNER_POD_NAME", "GITHUB_ACTIONS_RUNNER_X"]\n'
    )
    texts = [(node.lineno, node.value) for node in _code_strings(sample)]
    assert (2, c.ZFS_API_VERSION) in texts and all(line != 1 for line, _ in texts)
    assert ENV_NAME.findall("GITHUB_ACTIONS_RUNNER_X ACTIONS_RUNNER_POD_NAME") == [
        "ACTIONS_RUNNER_POD_NAME"
    ]
