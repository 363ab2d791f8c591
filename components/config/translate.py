"""Validation entry point: pydantic's errors translated into :class:`ConfigProblem`.

The one module that knows pydantic's error format (its location parts and error kinds).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from components.config.errors import ConfigError, ConfigProblem
from components.config.stack import StackConfig

__all__ = ["validate_config"]


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith("function-") or part in ("dataclass", "json-or-python", "[key]"):
            continue
        else:
            out += f".{part}" if out else part
    return out


def _field_at(loc: tuple[int | str, ...]) -> tuple[type[BaseModel] | None, Any]:
    """Walk the models along an error location; return (parent model, field info)."""
    model: Any = StackConfig
    field: Any = None
    parent: type[BaseModel] | None = None
    for part in loc:
        if isinstance(model, type) and issubclass(model, BaseModel):
            by_alias = {f.alias or n: f for n, f in model.model_fields.items()}
            field = by_alias.get(str(part))
            parent = model
            if field is None:
                return parent, None
            model = _inner_model(field.annotation)
        elif model is not None and field is not None:
            continue  # dict key or list index: the model stays the element type
    return parent, field


def _inner_model(annotation: Any) -> Any:
    for arg in (annotation, *getattr(annotation, "__args__", ())):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
        inner = _inner_model_from_args(arg)
        if inner is not None:
            return inner
    return None


def _inner_model_from_args(annotation: Any) -> Any:
    for arg in getattr(annotation, "__args__", ()) + getattr(annotation, "__metadata__", ()):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
        origin_args = getattr(arg, "__args__", ())
        for inner in origin_args:
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                return inner
    return None


def _problem_from(error: Any) -> ConfigProblem:
    loc = tuple(error["loc"])
    path = _path(loc)
    parent, field = _field_at(loc)
    example = None
    if field is not None and field.examples:
        example = (
            json.dumps(field.examples[0])
            if not isinstance(field.examples[0], str)
            else (field.examples[0])
        )
    kind = error["type"]
    if kind == "extra_forbidden":
        known = sorted(f.alias or n for n, f in parent.model_fields.items()) if parent else []
        return ConfigProblem(path, "is not a known key; known keys here: " + ", ".join(known))
    if kind == "missing":
        return ConfigProblem(path, "is required", example)
    if kind == "string_pattern_mismatch":
        return ConfigProblem(path, f"{error['input']!r} does not have the expected form", example)
    message = str(error["msg"]).replace("{path}", path)
    if message.startswith("Value error, "):
        message = message.removeprefix("Value error, ")
    return ConfigProblem(path, message[:1].lower() + message[1:], example)


def validate_config(raw: Mapping[str, Any]) -> StackConfig:
    """Validate raw config (top-level keys without the project prefix); raise ConfigError."""
    try:
        return StackConfig.model_validate(raw)
    except ConfigError:
        raise
    except ValidationError as exc:
        problems: list[ConfigProblem] = []
        for error in exc.errors():
            ctx_error = (error.get("ctx") or {}).get("error")
            if isinstance(ctx_error, ConfigError):
                problems.extend(ctx_error.problems)
            else:
                problems.append(_problem_from(error))
        raise ConfigError(problems) from None
