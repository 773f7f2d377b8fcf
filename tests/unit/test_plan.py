"""A plan kept in a record (``BuildPlan.to_record``) comes back as the same plan: a rebuild on
the recorded plan (crossdock.cli.build_shortcut) builds what the full command would."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from crossdock.plan import BuildPlan
from tests.unit.backends.test_lastbuild import plan_for, project  # noqa: F401 - the fixture


def _through_a_record(plan: BuildPlan) -> BuildPlan:
    # As crossdock.cache.Records keeps a value: JSON with its objects' keys sorted.
    data: dict[str, Any] = json.loads(json.dumps(plan.to_record(), sort_keys=True))
    return BuildPlan.from_record(data)


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"target": "lambda"},  # a runtime chosen by the base (base_dependent_runtime)
        {"target": "apprunner", "platforms": "linux/arm64", "bytecode": False},
        {"base": "127.0.0.1:5555/library/python@sha256:" + "a" * 64},
    ],
)
def test_a_recorded_plan_comes_back_the_same(project: Path, overrides: dict[str, Any]) -> None:  # noqa: F811
    plan = plan_for(project, **overrides)
    again = _through_a_record(plan)
    assert again == plan
    assert repr(again) == repr(plan)


def test_the_order_of_the_env_and_the_settings_is_kept(project: Path) -> None:  # noqa: F811
    # An image config's env is written in the runtime's order: a record keeps it (and the
    # settings' order, which the plan's repr shows).
    service = project / "backend" / "api" / "pyproject.toml"
    settings = '\n[tool.crossdock]\nport = 9000\napp = "app.main:app"\n'
    service.write_text(service.read_text() + settings)
    plan = plan_for(project, target="apprunner")
    assert list(plan.runtime.env) != sorted(plan.runtime.env)
    assert list(plan.project.settings) == ["port", "app"]
    again = _through_a_record(plan)
    assert list(again.runtime.env) == list(plan.runtime.env)
    assert list(again.project.settings) == list(plan.project.settings)
    assert repr(again) == repr(plan)
