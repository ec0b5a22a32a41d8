"""YAML loading with errors that name the file and the key, and `${VAR:-default}` expansion."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)

_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")


class ConfigError(ValueError):
    """A configuration file is missing, unreadable or invalid; the message names file and key."""


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping, failing with the file name when it is missing or malformed."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise ConfigError(f"{path}: file not found") from error
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"{path}: not valid UTF-8 ({error.reason} at byte {error.start}) — re-encode the file as UTF-8"
        ) from error
    except OSError as error:
        raise ConfigError(f"{path}: cannot be read ({error.strerror or error})") from error
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({error})") from error
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def parse_model(model: type[Model], data: Any, path: Path, prefix: str = "") -> Model:
    """Validate `data` as `model`; on failure list every bad key as `file: key.path: reason`."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        lines = []
        for issue in error.errors():
            key = ".".join(str(part) for part in (prefix, *issue["loc"]) if part != "")
            lines.append(f"{path}: {key or '<root>'}: {issue['msg']}")
        raise ConfigError("\n".join(lines)) from error


def expand_variables(value: str, environ: dict[str, str] | None = None) -> str:
    """Expand `${NAME}` and `${NAME:-default}`; an unset variable without default is an error."""
    env = os.environ if environ is None else environ

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group("name"), match.group("default")
        if env.get(name):
            return env[name]
        if default is not None:
            return default
        raise ConfigError(f"environment variable {name} is not set (used in {value!r})")

    return _VARIABLE.sub(substitute, value)
