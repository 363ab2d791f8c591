"""Every fact lives in one place: no stray literal of a constant outside its home.

Greps (with ``ast``: code strings only, not comments or docstrings) components/, policy/ and
localcluster/ for the values of facts that components/constants.py holds (the policy pack's
own home is policy/arc_policy/_constants.py: it ships without components/), and fails naming
file and line of each literal found elsewhere.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from pulumi.runtime.rpc import UNKNOWN

from components import constants as c

ROOT = Path(__file__).resolve().parent.parent
TREES = ("components", "policy", "localcluster")
HOMES = frozenset({"components/constants.py", "policy/arc_policy/_constants.py"})
UNKNOWN_FACT = "engine unknown value (pulumi.runtime.rpc.UNKNOWN)"
#: Homes of single facts that are not the program's: the pack keeps the engine's unknown-value
#: marker with its other unknown markers (the program imports it from pulumi.runtime.rpc).
FACT_HOMES: dict[str, str] = {UNKNOWN_FACT: "policy/arc_policy/values.py"}

#: Facts found inside a string (API versions, paths, the engine's unknown-value marker).
CONTAINED: dict[str, str] = {
    "ZFS_API_VERSION": c.ZFS_API_VERSION,
    "snapshot apiVersion": f"{c.SNAPSHOT_API_GROUP}/{c.SNAPSHOT_API_VERSION}",
    "RUNNER_WORK_DIR": c.RUNNER_WORK_DIR,
    UNKNOWN_FACT: UNKNOWN,
}
#: Facts that are a whole string: the label and annotation keys.
WHOLE: dict[str, str] = {
    name: value
    for name, value in vars(c).items()
    if name.startswith(("LABEL_", "ANNOTATION_")) or name.endswith("_LABEL")
}
#: The runner's ACTIONS_RUNNER_* env names (c.ENV_*).
ENV_NAME = re.compile(r"(?<![A-Z_])ACTIONS_RUNNER_[A-Z_]+")


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
                    if FACT_HOMES.get(fact) != rel:
                        yield rel, node.lineno, fact


def test_no_stray_literal_of_a_constant() -> None:
    found = [f"{path}:{line}: {fact}" for path, line, fact in stray_literals()]
    assert not found, "use the constant (components/constants.py) instead:\n" + "\n".join(found)


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
