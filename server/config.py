"""Effective settings from four layers (flags > COCREATE_* environment > TOML file > defaults) + sources."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from server.settings import Settings

CONFIG_VARIABLE = "COCREATE_CONFIG"  # a config file path, when --config is not given
DEFAULT = "default"


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the file and the offending key."""


_KINDS: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "str": (str,),
    "str | None": (str,),
    "Path": (str,),
}


def read_config_file(path: Path) -> dict[str, Any]:
    """The settings a TOML file sets: top-level `name = value` pairs (`-` or `_` in names)."""
    try:
        with path.open("rb") as file:
            document = tomllib.load(file)
    except OSError as exc:
        raise ConfigError(f"config file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    known = {item.name: str(item.type) for item in fields(Settings)}
    values: dict[str, Any] = {}
    for key, value in document.items():
        name = key.replace("-", "_")
        if name not in known:
            raise ConfigError(
                f"config file {path}: unknown setting {key!r} (known: {', '.join(sorted(known))})"
            )
        expected = _KINDS.get(known[name], (str,))
        if isinstance(value, bool) or not isinstance(value, expected):
            wanted = " or ".join(kind.__name__ for kind in expected)
            raise ConfigError(
                f"config file {path}: setting {key!r} must be of type {wanted}, not {type(value).__name__}"
            )
        values[name] = value
    return values


def resolve(
    flags: Mapping[str, Any],
    environ: Mapping[str, str] = os.environ,
    config_path: Path | None = None,
) -> tuple[Settings, dict[str, str]]:
    """The effective settings and, for each, where its value came from.

    `flags`: the values given on the command line (only those given). `config_path`: the file of
    `--config`; when None, `$COCREATE_CONFIG` if set. Raises `ValueError` (or `ConfigError`).
    """
    if config_path is None and environ.get(CONFIG_VARIABLE):
        config_path = Path(environ[CONFIG_VARIABLE])
    values: dict[str, Any] = {}
    sources = {item.name: DEFAULT for item in fields(Settings)}
    if config_path is not None:
        for name, value in read_config_file(config_path).items():
            values[name] = value
            sources[name] = f"file {config_path}"
    for item in fields(Settings):
        variable = f"COCREATE_{item.name.upper()}"
        if variable in environ:
            values[item.name] = environ[variable]
            sources[item.name] = f"environment {variable}"
    for name, value in flags.items():
        values[name] = value
        sources[name] = f"flag --{name.replace('_', '-')}"
    return Settings().with_values(values), sources


def render(settings: Settings, sources: Mapping[str, str]) -> str:
    """One `name = value  # source` line per setting, secrets and passwords redacted."""
    shown = {name: value if value != "" else '""' for name, value in settings.describe().items()}
    width = max(len(f"{name} = {value}") for name, value in shown.items())
    lines = [
        f"{f'{name} = {value}':<{width}}  # {sources.get(name, DEFAULT)}" for name, value in shown.items()
    ]
    return "\n".join(lines)
