"""The GitHub workflows: actionlint, and the structure the operations guide promises.

Each structural rule is a small checker over a parsed workflow; the negative fixtures in
``tests/data/workflows`` prove every checker finds what it looks for, so a rule that passes on the
real workflows is not vacuous. The stack list is never repeated here: it comes from the
``Pulumi.*.yaml`` files, exactly as CI computes it (``.github/scripts/ci_stacks.py``).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
FIXTURES = Path(__file__).resolve().parent / "data" / "workflows"
CI_STACKS_SCRIPT = ROOT / ".github" / "scripts" / "ci_stacks.py"
FIX_ACTIONLINT = (
    "run the tier with `make unit` (it builds actionlint at the pyproject pin), or "
    'eval "$(bash scripts/toolchain.sh env actionlint)" '
    "(sets ACTIONLINT_BIN and PATH), then re-run the tests"
)


def _load_ci_stacks() -> ModuleType:
    """Import .github/scripts/ci_stacks.py (not a package: .github is no identifier)."""
    spec = importlib.util.spec_from_file_location("ci_stacks", CI_STACKS_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


ci_stacks = _load_ci_stacks()


# --- Reading workflows ----------------------------------------------------------------------


def load(path: Path) -> dict[str, Any]:
    """A workflow as data; YAML 1.1 reads the key ``on`` as True, so it is renamed back."""
    document: dict[Any, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    if True in document:
        document["on"] = document.pop(True)
    return document


@functools.cache
def workflow(name: str) -> dict[str, Any]:
    """One of the repository's workflows by file name (parsed once per session; read only)."""
    return load(WORKFLOWS / name)


def jobs(wf: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The workflow's jobs by id."""
    result: dict[str, dict[str, Any]] = wf.get("jobs") or {}
    return result


def steps(wf: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every step of every job, with its job id."""
    for job_id, job in jobs(wf).items():
        for step in job.get("steps") or []:
            yield job_id, step


def runs(step: dict[str, Any]) -> str:
    """The step's shell script without its comment lines ('' for an action)."""
    lines = str(step.get("run") or "").splitlines()
    return "\n".join(line for line in lines if not line.lstrip().startswith("#"))


def action(step: dict[str, Any]) -> str:
    """The action a step uses, without its ref ('' for a script step)."""
    return str(step.get("uses") or "").partition("@")[0]


def pulumi_command(step: dict[str, Any]) -> str | None:
    """'preview' or 'up' when the step runs that pulumi command, else None."""
    if action(step) == "pulumi/actions":
        command = (step.get("with") or {}).get("command")
        return command if command in ("preview", "up", "update") else None
    match = re.search(r"\bpulumi\s+(preview|up|update)\b", runs(step))
    return match[1] if match else None


def evaluate(expression: str, stack: str) -> str:
    """Substitute the stack into a string whose only expression is the job's stack name."""
    return re.sub(r"\$\{\{\s*[\w.-]+\.stack\s*\}\}", stack, expression)


# --- Checkers (each returns the problems it finds) --------------------------------------------

_SHA = re.compile(r"^[0-9a-f]{40}$")
_EXACT_VERSION = re.compile(r"^v?\d+\.\d+\.\d+$")
_VERSION_COMMENT = re.compile(r"#\s*v?\d+\.\d+\.\d+\b")


def unpinned_actions(path: Path) -> list[str]:
    """Every `uses:` not pinned to a full commit SHA (with its release in a comment) or an exact
    version; and every action pinned in more than one place of the file."""
    problems: list[str] = []
    text = path.read_text(encoding="utf-8")
    for line in text.splitlines():
        match = re.match(r"^\s*(?:-\s+)?uses:\s*(?:&[\w-]+\s+)?([^\s#*][^\s#]*)(.*)$", line)
        if match is None:
            continue
        uses, rest = match[1], match[2]
        if uses.startswith("./"):
            continue  # a local action: pinned by this repository's own commit
        name, _, ref = uses.partition("@")
        if not ref:
            problems.append(f"{uses}: no ref")
        elif _SHA.match(ref):
            if not _VERSION_COMMENT.search(rest):
                problems.append(f"{uses}: a SHA pin needs its release in a comment (# vX.Y.Z)")
        elif not _EXACT_VERSION.match(ref):
            problems.append(f"{uses}: '{ref}' is a branch, 'latest' or a floating version")
    pins = re.findall(r"uses:\s*(?:&[\w-]+\s+)?([\w.-]+/[\w./-]+)@", text)
    for name in sorted({p for p in pins if pins.count(p) > 1}):
        problems.append(f"{name}: pinned {pins.count(name)} times; anchor it once and alias it")
    return problems


def permission_problems(wf: dict[str, Any]) -> list[str]:
    """Permissions beyond least privilege: the top level grants `contents: read` only; a job
    widens it only for what it does (comment on the pull request, read a run's artifacts)."""
    problems: list[str] = []
    if wf.get("permissions") != {"contents": "read"}:
        problems.append(f"top-level permissions {wf.get('permissions')!r}, want contents: read")
    for job_id, job in jobs(wf).items():
        granted = job.get("permissions")
        if granted is None:
            continue
        if not isinstance(granted, dict):
            problems.append(f"{job_id}: permissions {granted!r}, want a mapping of scopes")
            continue
        comments = any((s.get("with") or {}).get("comment-on-pr") for s in job.get("steps") or [])
        downloads = any(action(s) == "actions/download-artifact" for s in job.get("steps") or [])
        allowed = {"contents": "read"}
        if comments:
            allowed["pull-requests"] = "write"
        if downloads:
            allowed["actions"] = "read"
        for scope, level in granted.items():
            if allowed.get(scope) != level:
                problems.append(f"{job_id}: {scope}: {level} is not needed")
        if comments and granted.get("pull-requests") != "write":
            problems.append(f"{job_id}: comments on the pull request without pull-requests: write")
    return problems


def policy_pack_config() -> str:
    """The policy pack config `make preview` passes (the one source the workflows must match)."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    match = re.search(r"--policy-pack-config[ =](\S+)", makefile)
    assert match, "the Makefile's preview target passes no --policy-pack-config"
    return match[1]


def policy_pack_problems(wf: dict[str, Any], config: str) -> list[str]:
    """Every pulumi preview/up that does not run the policy pack in policy/ with ``config``."""
    problems: list[str] = []
    for job_id, step in steps(wf):
        if pulumi_command(step) is None:
            continue
        inputs = step.get("with") or {}
        if action(step) == "pulumi/actions":
            if str(inputs.get("policyPacks") or "").split() != ["policy"]:
                problems.append(f"{job_id}: pulumi/actions without policyPacks: policy")
            if str(inputs.get("policyPackConfigs") or "").split() != [config]:
                problems.append(f"{job_id}: pulumi/actions without policyPackConfigs: {config}")
        else:
            if not re.search(r"--policy-pack[ =]policy\b", runs(step)):
                problems.append(f"{job_id}: `{runs(step).strip()}` without --policy-pack policy")
            if not re.search(rf"--policy-pack-config[ =]{re.escape(config)}\b", runs(step)):
                problems.append(f"{job_id}: `{runs(step).strip()}` without its config {config}")
    return problems


def injection_problems(wf: dict[str, Any]) -> list[str]:
    """Request values expanded into a script (they must reach it through `env:`)."""
    return [
        f"{job_id}: {expr} in a run script"
        for job_id, step in steps(wf)
        for expr in re.findall(r"\$\{\{[^}]*\b(?:inputs|github\.event)\.[^}]*\}\}", runs(step))
    ]


def mutating_jobs(wf: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Jobs that run `pulumi up` (they change a stack)."""
    return {
        job_id: job
        for job_id, job in jobs(wf).items()
        if any(pulumi_command(s) in ("up", "update") for s in job.get("steps") or [])
    }


def concurrency_problems(wf: dict[str, Any]) -> list[str]:
    """Jobs changing a stack outside a per-stack group, or cancellable mid-update."""
    problems: list[str] = []
    for job_id, job in mutating_jobs(wf).items():
        group = (job.get("concurrency") or {}).get("group", "")
        # Per stack: named by the job's stack expression, or ending in the job's literal stack.
        stack = (job.get("env") or {}).get("STACK", "")
        templated = evaluate(group, "a") != evaluate(group, "b")
        if not (templated or (stack and "$" not in stack and group.endswith(f"-{stack}"))):
            problems.append(f"{job_id}: concurrency group {group!r} is not per stack")
        if (job.get("concurrency") or {}).get("cancel-in-progress") is not False:
            problems.append(f"{job_id}: a running pulumi up must not be cancelled")
    return problems


# --- Helpers over the repository's workflows -------------------------------------------------


def stack_files() -> set[str]:
    """Every non-local stack, straight from the file names (independent of ci_stacks.py)."""
    names = {
        p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in ROOT.glob("Pulumi.*.yaml")
    }
    return names - {"local"}


def ci_outputs(command: str) -> dict[str, str]:
    """Run ci_stacks.py as a workflow step does; return what it wrote to $GITHUB_OUTPUT."""
    output = ROOT / ".pytest_cache" / f"github_output_{os.getpid()}"
    output.parent.mkdir(exist_ok=True)
    output.write_text("")
    try:
        subprocess.run(
            [sys.executable, str(CI_STACKS_SCRIPT), command],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, "GITHUB_OUTPUT": str(output)},
        )
        lines = output.read_text().splitlines()
    finally:
        output.unlink()
    return dict(line.split("=", 1) for line in lines)


def matrix_source(wf: dict[str, Any], job_id: str) -> str:
    """The ci_stacks.py output a matrix job iterates over, checked to come from that script."""
    expr = jobs(wf)[job_id]["strategy"]["matrix"]
    match = re.fullmatch(r"\$\{\{\s*fromJSON\(needs\.([\w-]+)\.outputs\.([\w-]+)\)\s*\}\}", expr)
    assert match, f"{job_id}: matrix {expr!r} is not computed from the stack files"
    producer, output = jobs(wf)[match[1]], match[2]
    step_match = re.fullmatch(
        r"\$\{\{\s*steps\.([\w-]+)\.outputs\.([\w-]+)\s*\}\}", producer["outputs"][output]
    )
    assert step_match and step_match[2] == output
    step = next(s for s in producer["steps"] if s.get("id") == step_match[1])
    assert ".github/scripts/ci_stacks.py matrix" in runs(step)
    return output


@functools.cache
def ci_matrix() -> dict[str, str]:
    """The matrix outputs, computed once per session as CI computes them (a subprocess)."""
    return ci_outputs("matrix")


def stacks_of(wf: dict[str, Any], job_id: str) -> list[str]:
    """The stacks a job runs for: its matrix (as CI computes it) or its STACK variable."""
    job = jobs(wf)[job_id]
    if "strategy" in job:
        include = json.loads(ci_matrix()[matrix_source(wf, job_id)])["include"]
        return [entry["stack"] for entry in include]
    return [job["env"]["STACK"]]


# --- actionlint --------------------------------------------------------------------------------


def actionlint() -> str:
    """The actionlint binary: $ACTIONLINT_BIN, else PATH; a missing one fails the test."""
    binary = os.environ.get("ACTIONLINT_BIN") or shutil.which("actionlint")
    if not binary or not os.access(binary, os.X_OK):
        pytest.fail(f"actionlint not found (ACTIONLINT_BIN unset, not on PATH): {FIX_ACTIONLINT}")
    return binary


def test_actionlint_passes_on_every_workflow() -> None:
    files = sorted(WORKFLOWS.glob("*.yml")) + sorted(WORKFLOWS.glob("*.yaml"))
    assert {f.name for f in files} >= {"preview.yml", "deploy.yml", "promote-cache.yml"}
    result = subprocess.run(
        [actionlint(), "-no-color", "-oneline", *map(str, files)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_finds_errors() -> None:
    """The linter really runs: an undefined job in `needs` is reported."""
    broken = "on: push\njobs:\n  a:\n    needs: missing\n    runs-on: ubuntu-24.04\n    steps:\n      - run: 'true'\n"
    result = subprocess.run(
        [actionlint(), "-no-color", "-oneline", "-"],
        input=broken,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1 and "missing" in result.stdout


# --- Triggers ----------------------------------------------------------------------------------


def test_triggers() -> None:
    assert workflow("preview.yml")["on"] == {"pull_request": {"branches": ["main"]}}
    assert workflow("deploy.yml")["on"]["push"]["branches"] == ["main"]
    promote = workflow("promote-cache.yml")["on"]
    assert promote["workflow_run"]["types"] == ["completed"]
    assert promote["workflow_run"]["workflows"]
    assert set(promote["workflow_dispatch"]["inputs"]) == {"stack", "cache", "commit"}
    assert all(i["required"] for i in promote["workflow_dispatch"]["inputs"].values())
    # Only a successful run of this repository's default branch, never a pull request's.
    condition = jobs(workflow("promote-cache.yml"))["resolve"]["if"]
    for needed in (
        "workflow_run.conclusion == 'success'",
        "head_repository.full_name == github.repository",
        "head_branch == github.event.repository.default_branch",
    ):
        assert needed in condition
    assert "pull_request" not in condition


# --- Permissions, pins, scripts ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["preview.yml", "deploy.yml", "promote-cache.yml"])
def test_permissions_least_privilege(name: str) -> None:
    assert permission_problems(workflow(name)) == []


def test_only_the_commenting_job_writes_to_pull_requests() -> None:
    writers = {
        job_id
        for name in ("preview.yml", "deploy.yml", "promote-cache.yml")
        for job_id, job in jobs(workflow(name)).items()
        if (job.get("permissions") or {}).get("pull-requests") == "write"
    }
    assert writers == {"preview"}
    step = next(s for _, s in steps(workflow("preview.yml")) if pulumi_command(s) == "preview")
    assert step["with"]["comment-on-pr"] is True


def test_permission_checker_finds_broad_grants() -> None:
    assert permission_problems(load(FIXTURES / "broad_permissions.yml")) == [
        "top-level permissions 'write-all', want contents: read",
        "lint: contents: write is not needed",
        "lint: pull-requests: write is not needed",
        "comment: id-token: write is not needed",
        "comment: comments on the pull request without pull-requests: write",
    ]


@pytest.mark.parametrize("name", ["preview.yml", "deploy.yml", "promote-cache.yml"])
def test_every_action_pinned_once(name: str) -> None:
    assert unpinned_actions(WORKFLOWS / name) == []


def test_pin_checker_finds_unpinned_actions() -> None:
    assert unpinned_actions(FIXTURES / "unpinned.yml") == [
        "actions/checkout@v4: 'v4' is a branch, 'latest' or a floating version",
        "actions/setup-python@main: 'main' is a branch, 'latest' or a floating version",
        "pulumi/actions@latest: 'latest' is a branch, 'latest' or a floating version",
        "actions/cache@v4.2: 'v4.2' is a branch, 'latest' or a floating version",
        "actions/setup-go@44694675825211faa026b3c33043df3e48a5fa00: a SHA pin needs its release in a comment (# vX.Y.Z)",
        "actions/upload-artifact: no ref",
        "actions/download-artifact: pinned 2 times; anchor it once and alias it",
    ]


@pytest.mark.parametrize("name", ["preview.yml", "deploy.yml", "promote-cache.yml"])
def test_no_request_value_is_expanded_into_a_script(name: str) -> None:
    assert injection_problems(workflow(name)) == []


def test_injection_checker_finds_expanded_values() -> None:
    assert injection_problems(load(FIXTURES / "script_injection.yml")) == [
        "promote: ${{ inputs.cache }} in a run script",
        "promote: ${{ github.event.workflow_run.head_branch }} in a run script",
    ]


@pytest.mark.parametrize("name", ["preview.yml", "deploy.yml", "promote-cache.yml"])
def test_scripts_the_workflows_run_exist(name: str) -> None:
    for _, step in steps(workflow(name)):
        for path in re.findall(r"(?:^|\s)((?:\.github/)?scripts/[\w./-]+)", runs(step)):
            assert (ROOT / path).is_file(), f"{name} runs {path}, which does not exist"
        for target in re.findall(r"\bmake\s+([\w\s-]+)", runs(step)):
            for name_ in target.split():
                assert re.search(rf"^{name_}:", (ROOT / "Makefile").read_text(), re.M), name_


# --- Policy pack -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "command"),
    [("preview.yml", "preview"), ("deploy.yml", "up"), ("promote-cache.yml", "up")],
)
def test_policy_pack_runs_with_every_preview_and_up(name: str, command: str) -> None:
    wf = workflow(name)
    assert [c for _, s in steps(wf) if (c := pulumi_command(s))], f"{name} runs no pulumi"
    assert command in {pulumi_command(s) for _, s in steps(wf)}
    assert policy_pack_problems(wf, policy_pack_config()) == []


def test_policy_pack_checker_finds_missing_packs() -> None:
    config = "policy/policy-config.json"
    assert policy_pack_problems(load(FIXTURES / "no_policy_pack.yml"), config) == [
        "preview: pulumi/actions without policyPacks: policy",
        f"preview: pulumi/actions without policyPackConfigs: {config}",
        "up: `pulumi up --yes --stack dev` without --policy-pack policy",
        f"up: `pulumi up --yes --stack dev` without its config {config}",
        f"up-prod: `pulumi up --yes --stack prod --policy-pack policy` without its config {config}",
    ]


# --- Stacks, environments, concurrency -----------------------------------------------------------


def test_ci_stacks_are_the_stack_files() -> None:
    outputs = ci_matrix()
    assert set(json.loads(outputs["stacks"])) == stack_files()
    assert json.loads(outputs["stacks"])[-1] == ci_stacks.PRODUCTION_STACK


def test_preview_matrix_covers_every_stack_file() -> None:
    wf = workflow("preview.yml")
    assert set(stacks_of(wf, "preview")) == stack_files()
    include = json.loads(ci_matrix()[matrix_source(wf, "preview")])["include"]
    # Previews use environments of their own: no reviewers on pull-request checks.
    assert jobs(wf)["preview"]["environment"] == "${{ matrix.environment }}"
    assert {e["environment"] for e in include} == {f"{s}-preview" for s in stack_files()}


def test_config_check_of_every_stack_file_runs_first() -> None:
    wf = workflow("preview.yml")
    check = [runs(s) for s in jobs(wf)["check"]["steps"]]
    assert "make check" in check and any("make lint unit" in r for r in check)
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(
        r"^check:.*\n\t\$\(PY\) -m components\.config Pulumi\.\*\.yaml$", makefile, re.M
    )
    assert jobs(wf)["preview"]["needs"] == "check"


def test_deploy_covers_every_stack_and_prod_is_last_behind_its_environment() -> None:
    wf = workflow("deploy.yml")
    deployed = {job_id: stacks_of(wf, job_id) for job_id in mutating_jobs(wf)}
    assert sorted(s for stacks in deployed.values() for s in stacks) == sorted(stack_files())
    (prod_job,) = [j for j, stacks in deployed.items() if ci_stacks.PRODUCTION_STACK in stacks]
    assert deployed[prod_job] == [ci_stacks.PRODUCTION_STACK]
    job = jobs(wf)[prod_job]
    assert job["environment"] == ci_stacks.deploy_environment("prod") == "production"
    assert set(deployed) - {prod_job} <= set(job["needs"])
    for job_id in set(deployed) - {prod_job}:
        assert jobs(wf)[job_id]["environment"] == "${{ matrix.environment }}"


@pytest.mark.parametrize("name", ["deploy.yml", "promote-cache.yml"])
def test_stack_changes_are_serialised_per_stack(name: str) -> None:
    assert concurrency_problems(workflow(name)) == []


def test_concurrency_checker_finds_shared_or_cancellable_groups() -> None:
    assert concurrency_problems(load(FIXTURES / "no_policy_pack.yml")) == [
        "up: concurrency group 'deploy' is not per stack",
        "up: a running pulumi up must not be cancelled",
        "up-prod: concurrency group '' is not per stack",
        "up-prod: a running pulumi up must not be cancelled",
    ]


def test_deploy_and_promotion_of_a_stack_share_one_group() -> None:
    deploy, promote = workflow("deploy.yml"), workflow("promote-cache.yml")
    deploy_groups = {
        stack: evaluate(job["concurrency"]["group"], stack)
        for job_id, job in mutating_jobs(deploy).items()
        for stack in stacks_of(deploy, job_id)
    }
    (promote_job,) = mutating_jobs(promote).values()
    assert set(deploy_groups) == stack_files()
    for stack, group in deploy_groups.items():
        assert evaluate(promote_job["concurrency"]["group"], stack) == group
    assert len(set(deploy_groups.values())) == len(deploy_groups)


def test_promotion_validates_the_request_before_touching_anything() -> None:
    wf = workflow("promote-cache.yml")
    resolve, promote = jobs(wf)["resolve"], jobs(wf)["promote"]
    assert promote["needs"] == "resolve"
    assert any("ci_stacks.py promotion" in runs(s) for s in resolve["steps"])
    assert promote["environment"] == "${{ needs.resolve.outputs.environment }}"
    scripts = [runs(s) for s in promote["steps"]]
    set_token = next(i for i, r in enumerate(scripts) if "pulumi config set" in r)
    validated = next(i for i, r in enumerate(scripts) if "ci_stacks.py promotion" in r)
    assert validated < set_token
    assert scripts[set_token].strip() == (
        'pulumi config set --path "caches.${CACHE}.promote" "$COMMIT" --stack "$STACK"'
    )
    up = [s for s in promote["steps"] if pulumi_command(s) == "up"]
    assert len(up) == 1 and promote["steps"].index(up[0]) > set_token


# --- ci_stacks.py ------------------------------------------------------------------------------


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository root with the real Pulumi.yaml and stack files, plus a staging stack."""
    for path in [ROOT / "Pulumi.yaml", *ROOT.glob("Pulumi.*.yaml")]:
        shutil.copy(path, tmp_path / path.name)
    shutil.copy(ROOT / "Pulumi.dev.yaml", tmp_path / "Pulumi.staging.yaml")
    return tmp_path


def test_a_new_stack_file_is_previewed_and_deployed_before_prod(repo: Path) -> None:
    outputs = ci_stacks.matrix_outputs(repo)
    assert json.loads(outputs["stacks"]) == ["dev", "staging", "prod"]
    assert json.loads(outputs["deploy"])["include"] == [
        {"stack": "dev", "environment": "dev"},
        {"stack": "staging", "environment": "staging"},
    ]
    assert outputs["deploy-any"] == "true"


def test_production_alone_skips_the_matrix_deploy(tmp_path: Path) -> None:
    shutil.copy(ROOT / "Pulumi.prod.yaml", tmp_path / "Pulumi.prod.yaml")
    outputs = ci_stacks.matrix_outputs(tmp_path)
    assert outputs["deploy-any"] == "false" and json.loads(outputs["stacks"]) == ["prod"]


def test_a_missing_production_stack_is_refused(tmp_path: Path) -> None:
    shutil.copy(ROOT / "Pulumi.dev.yaml", tmp_path / "Pulumi.dev.yaml")
    with pytest.raises(ci_stacks.RequestError, match=r"Pulumi\.prod\.yaml is missing"):
        ci_stacks.matrix_outputs(tmp_path)


def test_a_valid_promotion_request(repo: Path) -> None:
    commit = "3f2c9a1d" * 5
    assert ci_stacks.promotion_outputs(repo, "prod", "gcc12", commit) == {
        "stack": "prod",
        "cache": "gcc12",
        "commit": commit,
        "environment": "production",
    }
    assert ci_stacks.promotion_outputs(repo, "dev", "clang17", "3f2c9a1")["environment"] == "dev"


@pytest.mark.parametrize(
    ("stack", "cache", "commit", "message"),
    [
        (
            "prod",
            "clang17",
            "3f2c9a1",
            "stack prod has no cache 'clang17'; Pulumi.prod.yaml declares: gcc12, msvc-cross",
        ),
        ("local", "gcc12", "3f2c9a1", "unknown stack 'local'"),
        ("../prod", "gcc12", "3f2c9a1", "unknown stack '../prod'"),
        ("qa", "gcc12", "3f2c9a1", "CI stacks are dev, staging, prod"),
        ("prod", "gcc12;id", "3f2c9a1", "is not a DNS label"),
        ("prod", "$(id)", "3f2c9a1", "is not a DNS label"),
        ("prod", "gcc12", "main", "is not a lower-case hex commit SHA"),
        ("prod", "gcc12", "3F2C9A1", "is not a lower-case hex commit SHA"),
        ("prod", "gcc12", "3f2c9a1 --yes", "is not a lower-case hex commit SHA"),
    ],
)
def test_a_bad_promotion_request_is_refused(
    repo: Path, stack: str, cache: str, commit: str, message: str
) -> None:
    with pytest.raises(ci_stacks.RequestError, match=re.escape(message)):
        ci_stacks.promotion_outputs(repo, stack, cache, commit)


def test_a_builder_runs_request_file(repo: Path, tmp_path: Path) -> None:
    request = tmp_path / "promotion.json"
    request.write_text('{"stack": "prod", "cache": "gcc12"}')
    assert ci_stacks.read_request(request) == ("prod", "gcc12")
    request.write_text('{"stack": "prod"}')
    with pytest.raises(ci_stacks.RequestError, match="expected"):
        ci_stacks.read_request(request)
    with pytest.raises(ci_stacks.RequestError, match="artifact cache-promotion"):
        ci_stacks.read_request(tmp_path / "absent.json")


def test_promotion_command_line(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        ci_stacks.main(
            ["promotion", "--stack", "prod", "--cache", "nope", "--commit", "3f2c9a1"], repo
        )
        == 1
    )
    assert capsys.readouterr().out.startswith("::error::stack prod has no cache 'nope'")


def test_settings_name_what_is_missing(repo: Path) -> None:
    problems = ci_stacks.settings_problems(repo, "dev", {})
    assert [p.split()[1] for p in problems] == [
        "PULUMI_BACKEND_URL",
        "PULUMI_CONFIG_PASSPHRASE",
        "KUBECONFIG",
    ]
    file_backend = {"PULUMI_BACKEND_URL": "file:///tmp/state", "PULUMI_CONFIG_PASSPHRASE": "x"}
    assert "lost after the job" in ci_stacks.settings_problems(repo, "dev", file_backend)[0]


def test_settings_of_a_kms_stack_need_no_passphrase(repo: Path) -> None:
    stack_file = repo / "Pulumi.prod.yaml"
    stack_file.write_text(
        "secretsprovider: awskms://alias/pulumi-prod?region=eu-west-1\n" + stack_file.read_text()
    )
    env = {"PULUMI_BACKEND_URL": "s3://acme-pulumi-state", "KUBECONFIG_CONTENT": "apiVersion: v1"}
    assert ci_stacks.settings_problems(repo, "prod", env) == []


def test_settings_write_a_private_kubeconfig(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner_temp = tmp_path / "runner"
    runner_temp.mkdir()
    github_env = tmp_path / "github_env"
    for name, value in {
        "PULUMI_BACKEND_URL": "s3://acme-pulumi-state",
        "PULUMI_CONFIG_PASSPHRASE": "correct horse",
        "KUBECONFIG_CONTENT": "apiVersion: v1\nkind: Config",
        "RUNNER_TEMP": str(runner_temp),
        "GITHUB_ENV": str(github_env),
    }.items():
        monkeypatch.setenv(name, value)
    assert ci_stacks.main(["settings", "dev"], repo) == 0
    kubeconfig = runner_temp / "kubeconfig"
    assert kubeconfig.read_text() == "apiVersion: v1\nkind: Config\n"
    assert kubeconfig.stat().st_mode & 0o777 == 0o600
    assert github_env.read_text() == f"KUBECONFIG={kubeconfig}\n"
