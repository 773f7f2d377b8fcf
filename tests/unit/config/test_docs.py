"""docs/config.md is the reference of every setting: kept in step with defaults.toml here."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from crossdock.config.loader import ENV_VARIABLES
from crossdock.config.model import Config, EnvironmentConfig

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "config.md"
DEFAULTS = ROOT / "src" / "crossdock" / "config" / "defaults.toml"
_KEY = re.compile(r"^`([^`]+)`$")


def _documented() -> dict[str, tuple[str, str]]:
    """key -> (default cell, environment variable cell) from the Keys table."""
    rows = {}
    for line in DOC.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        match = _KEY.match(cells[0]) if len(cells) == 4 else None
        if match:
            rows[match.group(1)] = (cells[1], cells[2])
    return rows


def _leaves(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and value:
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_every_default_is_documented_with_its_value():
    defaults = _leaves(tomllib.loads(DEFAULTS.read_text()))
    documented = _documented()
    for key, value in defaults.items():
        assert key in documented, f"{key} is in defaults.toml but not in docs/config.md"
        cell = documented[key][0]
        assert cell.startswith("`") and cell.endswith("`"), f"{key}: no default shown"
        shown = tomllib.loads(f"v = {cell.strip('`')}")["v"]
        assert shown == value, f"{key}: docs/config.md says {shown!r}, defaults.toml {value!r}"


def test_every_documented_key_exists():
    fields = {f.alias or name for name, f in Config.model_fields.items()}
    env_fields = {f.alias or name for name, f in EnvironmentConfig.model_fields.items()}
    defaults = _leaves(tomllib.loads(DEFAULTS.read_text()))
    for key, (default, variable) in _documented().items():
        if key.startswith("environments."):
            assert key.split(".")[-1] in env_fields, key
        else:
            assert key in fields, f"docs/config.md lists {key}, which crossdock does not read"
        if not default:
            assert key not in defaults, f"{key} has a default in defaults.toml; show it"
        assert (variable.strip("`") or None) == ENV_VARIABLES.get(key), key


def test_every_environment_variable_is_documented():
    documented = {v.strip("`") for _, v in _documented().values() if v}
    assert set(ENV_VARIABLES.values()) <= documented
