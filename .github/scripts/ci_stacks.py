"""The stacks CI previews and deploys, their GitHub environments, and promotion requests.

The workflows in ``.github/workflows`` call this script instead of repeating a stack list: the
stacks are the ``Pulumi.<stack>.yaml`` files at the repository root, so an environment is
previewed and deployed from the commit that adds its stack file. ``local`` targets the local
control plane (``make up``) and is never a CI target.

Subcommands (results go to ``$GITHUB_OUTPUT`` when it is set, else to stdout)::

    ci_stacks.py matrix                        preview/deploy matrices of the CI stacks
    ci_stacks.py settings STACK                check the job's secrets, write the kubeconfig
    ci_stacks.py promotion --stack S --cache C --commit SHA
    ci_stacks.py promotion --request promotion.json --commit SHA

Problems are printed as GitHub error annotations (``::error::``) and exit with status 1.
Everything but ``promotion`` (which reads YAML) needs only the standard library, so a job can
run it before the project's virtualenv exists.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

__all__ = [
    "LOCAL_STACKS",
    "PRODUCTION_ENVIRONMENT",
    "PRODUCTION_STACK",
    "RequestError",
    "ci_stacks",
    "deploy_environment",
    "main",
    "matrix_outputs",
    "preview_environment",
    "promotion_outputs",
    "settings_problems",
]

ROOT: Final = Path(__file__).resolve().parents[2]
# Stacks that only exist on a developer's machine: never previewed or deployed by CI.
LOCAL_STACKS: Final = frozenset({"local"})
# The stack deployed last, behind the GitHub environment with required reviewers.
PRODUCTION_STACK: Final = "prod"
PRODUCTION_ENVIRONMENT: Final = "production"
# Previews run pull-request code, so they get environments of their own: no reviewers (a review
# per pull request would block every check) and credentials a team can scope apart from deploys.
PREVIEW_SUFFIX: Final = "-preview"

_STACK_FILE: Final = re.compile(r"^Pulumi\.(?P<stack>[A-Za-z0-9_.-]+)\.yaml$")
# Cache names are DNS labels (components/config/); checked again here because the name goes
# into a `pulumi config set --path` expression and a shell variable.
_CACHE: Final = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_COMMIT: Final = re.compile(r"^[0-9a-f]{7,40}$")
_SECRETS_PROVIDER: Final = re.compile(r"^secretsprovider:\s*(?P<provider>\S+)", re.MULTILINE)
DOCS: Final = "docs/operations.md"


class RequestError(ValueError):
    """A request CI must refuse; the message says what is wrong and how to fix it."""


# --- Stacks and environments -------------------------------------------------------------


def ci_stacks(root: Path = ROOT) -> list[str]:
    """Names of the stacks CI previews and deploys, sorted; the production stack last."""
    names = [
        match["stack"]
        for path in root.iterdir()
        if (match := _STACK_FILE.match(path.name)) and path.is_file()
    ]
    return sorted(
        (n for n in names if n not in LOCAL_STACKS), key=lambda n: (n == PRODUCTION_STACK, n)
    )


def deploy_environment(stack: str) -> str:
    """The GitHub environment whose secrets and protection rules a deploy of ``stack`` uses."""
    return PRODUCTION_ENVIRONMENT if stack == PRODUCTION_STACK else stack


def preview_environment(stack: str) -> str:
    """The GitHub environment of the pull-request preview of ``stack`` (no reviewers)."""
    return f"{stack}{PREVIEW_SUFFIX}"


def _include(entries: Sequence[Mapping[str, str]]) -> str:
    """A strategy matrix as compact JSON, for ``fromJSON`` in a workflow."""
    return json.dumps({"include": list(entries)}, separators=(",", ":"))


def matrix_outputs(root: Path = ROOT) -> dict[str, str]:
    """Job outputs: the preview matrix (every CI stack) and the deploy matrix (all but prod).

    ``deploy-any`` is ``false`` when production is the only CI stack: an empty matrix is an
    error in GitHub Actions, so the deploy job is skipped instead.
    """
    stacks = ci_stacks(root)
    if PRODUCTION_STACK not in stacks:
        raise RequestError(
            f"Pulumi.{PRODUCTION_STACK}.yaml is missing: deploy.yml deploys it last, behind the "
            f"'{PRODUCTION_ENVIRONMENT}' environment (see {DOCS})"
        )
    before = [s for s in stacks if s != PRODUCTION_STACK]
    return {
        "stacks": json.dumps(stacks, separators=(",", ":")),
        "preview": _include([{"stack": s, "environment": preview_environment(s)} for s in stacks]),
        "deploy": _include([{"stack": s, "environment": deploy_environment(s)} for s in before]),
        "deploy-any": "true" if before else "false",
    }


# --- Settings of a job that runs pulumi ---------------------------------------------------


def _stack_file(root: Path, stack: str) -> Path:
    """The stack file of a CI stack, or a RequestError naming the stacks that exist."""
    stacks = ci_stacks(root)
    if stack not in stacks:
        raise RequestError(
            f"unknown stack {stack!r}: CI stacks are {', '.join(stacks)} "
            f"(the Pulumi.<stack>.yaml files; {', '.join(sorted(LOCAL_STACKS))} is local only)"
        )
    return root / f"Pulumi.{stack}.yaml"


def settings_problems(root: Path, stack: str, env: Mapping[str, str]) -> list[str]:
    """What the job's environment lacks to run pulumi against ``stack`` (empty: all set)."""
    problems: list[str] = []
    text = _stack_file(root, stack).read_text(encoding="utf-8")
    backend = env.get("PULUMI_BACKEND_URL", "")
    if not backend:
        problems.append(
            "variable PULUMI_BACKEND_URL is not set (e.g. s3://acme-pulumi-state, gs://…, "
            "azblob://…, https://api.pulumi.com)"
        )
    elif backend.startswith("file://"):
        # A runner's disk is gone after the job: the stack's state would be lost with it.
        problems.append(
            f"PULUMI_BACKEND_URL is {backend!r}: a file:// backend lives on the runner and is "
            "lost after the job; use an object store or Pulumi Cloud"
        )
    match = _SECRETS_PROVIDER.search(text)
    provider = match["provider"] if match else "passphrase"
    if provider.startswith("passphrase") and not env.get("PULUMI_CONFIG_PASSPHRASE"):
        problems.append(
            f"secret PULUMI_CONFIG_PASSPHRASE is not set; Pulumi.{stack}.yaml uses the passphrase "
            "secrets provider"
        )
    if not env.get("KUBECONFIG_CONTENT", "").strip():
        problems.append(
            "secret KUBECONFIG is not set: the kubeconfig file's content, with the context "
            f"that Pulumi.{stack}.yaml names in cluster.context"
        )
    return problems


def write_kubeconfig(content: str, directory: Path) -> Path:
    """Write the kubeconfig readable by this user only; return its path."""
    path = directory / "kubeconfig"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(content if content.endswith("\n") else content + "\n")
    return path


# --- Promotion requests --------------------------------------------------------------------


def _project_name(root: Path) -> str:
    """The Pulumi project name: the namespace of every key in the stack files."""
    match = re.search(r"^name:\s*(\S+)", (root / "Pulumi.yaml").read_text(encoding="utf-8"), re.M)
    if match is None:
        raise RequestError("Pulumi.yaml has no name")
    return match[1]


def _stack_caches(root: Path, stack: str) -> list[str]:
    """Cache names declared in a CI stack's file."""
    # Imported here: the matrix and settings steps run before the virtualenv (and PyYAML) exist.
    import yaml  # noqa: PLC0415

    path = _stack_file(root, stack)
    document: Any = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    config = document.get("config") or {}
    caches = config.get(f"{_project_name(root)}:caches") or {}
    if not isinstance(caches, dict):
        raise RequestError(f"{path.name}: caches is not a mapping")
    return sorted(str(name) for name in caches)


def promotion_outputs(root: Path, stack: str, cache: str, commit: str) -> dict[str, str]:
    """Validate a promotion request against the stack file; return the job's outputs."""
    if not _CACHE.match(cache):
        raise RequestError(f"cache name {cache!r} is not a DNS label (e.g. gcc12)")
    if not _COMMIT.match(commit):
        raise RequestError(
            f"commit {commit!r} is not a lower-case hex commit SHA (7 to 40 characters)"
        )
    caches = _stack_caches(root, stack)
    if cache not in caches:
        raise RequestError(
            f"stack {stack} has no cache {cache!r}; Pulumi.{stack}.yaml declares: "
            f"{', '.join(caches) or 'none'}"
        )
    return {
        "stack": stack,
        "cache": cache,
        "commit": commit,
        "environment": deploy_environment(stack),
    }


def read_request(path: Path) -> tuple[str, str]:
    """``(stack, cache)`` from the ``promotion.json`` a builder run uploaded."""
    try:
        request: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RequestError(
            f"cannot read the builder run's promotion request {path}: {exc} (the builder "
            f'workflow uploads {{"stack": "<stack>", "cache": "<cache>"}} as artifact '
            f"cache-promotion; see {DOCS})"
        ) from None
    if not isinstance(request, dict) or not all(
        isinstance(request.get(k), str) for k in ("stack", "cache")
    ):
        raise RequestError(f'{path}: expected {{"stack": "<stack>", "cache": "<cache>"}}')
    return request["stack"], request["cache"]


# --- Command line --------------------------------------------------------------------------


def _emit(outputs: Mapping[str, str]) -> None:
    """Append ``key=value`` lines to $GITHUB_OUTPUT, or print them when run by hand."""
    lines = "".join(f"{key}={value}\n" for key, value in outputs.items())
    target = os.environ.get("GITHUB_OUTPUT")
    if target:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(lines)
    sys.stdout.write(lines)


def _fail(problems: Sequence[str]) -> int:
    """Print each problem as a GitHub error annotation; return the exit status."""
    for problem in problems:
        print(f"::error::{problem}")
    return 1


def main(argv: Sequence[str] | None = None, root: Path = ROOT) -> int:
    """Run one subcommand; 0 on success, 1 with annotations on a refused request."""
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("matrix", help="preview and deploy matrices of the CI stacks")
    settings = sub.add_parser("settings", help="check a job's secrets, write the kubeconfig")
    settings.add_argument("stack")
    promotion = sub.add_parser("promotion", help="validate a cache promotion request")
    promotion.add_argument("--stack")
    promotion.add_argument("--cache")
    promotion.add_argument("--request", type=Path, help="promotion.json of a builder run")
    promotion.add_argument("--commit", required=True)
    args = parser.parse_args(argv)

    try:
        if args.command == "matrix":
            _emit(matrix_outputs(root))
        elif args.command == "settings":
            problems = settings_problems(root, args.stack, os.environ)
            if problems:
                return _fail([*problems, f"set them in the job's GitHub environment ({DOCS})"])
            path = write_kubeconfig(
                os.environ["KUBECONFIG_CONTENT"],
                Path(os.environ.get("RUNNER_TEMP") or root),
            )
            # Later steps of the job (pulumi) find the cluster through $KUBECONFIG.
            github_env = os.environ.get("GITHUB_ENV")
            if github_env:
                with open(github_env, "a", encoding="utf-8") as handle:
                    handle.write(f"KUBECONFIG={path}\n")
            print(f"settings of stack {args.stack}: ok; kubeconfig at {path}")
        else:
            if args.request is not None:
                stack, cache = read_request(args.request)
            elif args.stack and args.cache:
                stack, cache = args.stack, args.cache
            else:
                parser.error("promotion needs --request, or --stack and --cache")
            _emit(promotion_outputs(root, stack, cache, args.commit))
    except RequestError as exc:
        return _fail([str(exc)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
