"""The problems a stack config can have, as the user reads them."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ConfigError", "ConfigProblem"]


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One problem in the stack config: where, what is wrong, and an example of a right value."""

    path: str
    message: str
    example: str | None = None

    def __str__(self) -> str:
        hint = f" (e.g. {self.example})" if self.example else ""
        return f"{self.path}: {self.message}{hint}"


class ConfigError(ValueError):
    """The stack config has one or more problems; ``problems`` lists all of them."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))
