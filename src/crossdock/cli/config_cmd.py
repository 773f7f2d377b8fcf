"""``crossdock config``: the effective configuration of a service and where each value came from
(default, crossdock.toml, the service's pyproject.toml, a CROSSDOCK_* variable, an option)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from crossdock.cli.common import (
    BaseOpt,
    JsonOpt,
    PlatformOpt,
    ProjectOpt,
    ServiceOpt,
    TargetOpt,
    option_overrides,
    out_console,
)
from crossdock.cli.root import app


@app.command()
def config(
    project: ProjectOpt = Path(),
    service: ServiceOpt = None,
    platform: PlatformOpt = None,
    target: TargetOpt = None,
    base: BaseOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Print the effective configuration of a service, with the source of every value: the
    defaults, crossdock.toml, [tool.crossdock] in its pyproject.toml, CROSSDOCK_* environment
    variables, or an option (later wins)."""
    from crossdock.config import load_config_with_sources

    resolved, sources = load_config_with_sources(
        project_dir=project, service=service, overrides=option_overrides(platform, target, base)
    )
    # The discovered project (layout, folders) is derived, not a setting.
    dumped = resolved.model_dump(mode="json", by_alias=True, exclude={"project"})
    dumped["platforms"] = [str(p) for p in resolved.platforms]  # as they are written
    values = _flatten(dumped)
    if json_output:
        out_console.print_json(
            json.dumps(
                {
                    "service": resolved.service,
                    "project_root": str(resolved.project_root),
                    "values": {
                        key: {"value": value, "source": sources.get(key, "default")}
                        for key, value in values.items()
                    },
                }
            )
        )
        return
    from rich.markup import escape

    out_console.print(
        f"# crossdock configuration of service {escape(resolved.service)}",
        highlight=False,
        soft_wrap=True,
    )
    for key, value in values.items():
        # TOML-like, so a line can be copied into crossdock.toml; the source follows it.
        line = f"{key} = {json.dumps(value)}"
        out_console.print(
            f"{escape(line)}  [dim]# {escape(sources.get(key, 'default'))}[/]",
            highlight=False,
            soft_wrap=True,
        )


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted keys for nested tables (``environments.dev.repository``); an empty table stays
    one key, so that it is shown."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and value:
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
