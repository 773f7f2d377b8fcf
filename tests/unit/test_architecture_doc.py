"""docs/architecture.md lists the module layers import-linter enforces, in the same order: kept
in step with pyproject.toml's contracts here, so the page cannot describe layers that are gone."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "architecture.md"
PYPROJECT = ROOT / "pyproject.toml"


def _layer_block() -> list[str]:
    """The lines of the code block under "## Module layers"."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("\n## Module layers\n", 1)[1]
    return section.split("```\n", 2)[1].splitlines()


def _name(line: str) -> str:
    return line.strip().split("  ", 1)[0].strip()


def _documented() -> tuple[list[str], dict[str, list[str]]]:
    """The top-level layers, and each package's inner layers (indented by two spaces)."""
    layers: list[str] = []
    inner: dict[str, list[str]] = {}
    for line in _layer_block():
        if not line.strip():
            continue
        if not line.startswith(" "):
            layers.append(_name(line))
        elif line.startswith("  ") and line[2] != " ":
            inner.setdefault(layers[-1], []).append(_name(line))
    return layers, inner


def _contracts() -> list[dict[str, object]]:
    data = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))
    contracts: list[dict[str, object]] = data["tool"]["importlinter"]["contracts"]
    return contracts


def _short(layer: str) -> str:
    return " | ".join(part.strip().removeprefix("crossdock.") for part in layer.split("|"))


def test_the_module_layers_are_the_contracts_layers_in_order() -> None:
    layered = [c for c in _contracts() if c["type"] == "layers" and "containers" not in c]
    assert len(layered) == 1
    layers = layered[0]["layers"]
    assert isinstance(layers, list)
    assert _documented()[0] == [_short(layer) for layer in layers]


def test_the_inner_layers_of_a_package_are_its_contracts() -> None:
    enforced = {}
    for contract in _contracts():
        containers = contract.get("containers")
        if contract["type"] == "layers" and isinstance(containers, list):
            (container,) = containers
            layers = contract["layers"]
            assert isinstance(layers, list)
            enforced[_short(container)] = [_short(layer) for layer in layers]
    assert enforced  # rootfs and sources have inner layers
    assert _documented()[1] == enforced
