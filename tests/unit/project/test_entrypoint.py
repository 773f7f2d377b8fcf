"""The entrypoint from what the project says: command > app > the only script > an error."""

from __future__ import annotations

from pathlib import Path

import pytest

from crossdock.build import make_plan
from crossdock.config import load_config
from crossdock.errors import ConfigError
from crossdock.project import SERVERS, Command, ConsoleScript, ServedApp, choose_entrypoint

DEPS_BIN = "/opt/crossdock/packages/bin"


def choose(**kwargs: object) -> object:
    values: dict[str, object] = {
        "service": "svc",
        "command": None,
        "app": None,
        "server": "uvicorn",
        "scripts": {},
        "packaged": True,
    }
    values.update(kwargs)
    return choose_entrypoint(**values)  # type: ignore[arg-type]


def test_command_wins_over_everything() -> None:
    entry = choose(command=("python3", "-m", "svc"), app="svc:app", scripts={"svc": "svc:main"})
    assert entry == Command(("python3", "-m", "svc"))


def test_app_wins_over_scripts_and_is_served_by_uvicorn() -> None:
    entry = choose(app="svc.web:app", scripts={"svc": "svc:main"})
    assert entry == ServedApp("svc.web:app", SERVERS["uvicorn"])


def test_the_only_script_of_a_package() -> None:
    assert choose(scripts={"svc": "svc.cli:main"}) == ConsoleScript("svc", "svc.cli:main")


def test_several_scripts_are_listed_in_the_error() -> None:
    with pytest.raises(ConfigError) as info:
        choose(scripts={"serve": "svc:serve", "migrate": "svc:migrate"})
    text = f"{info.value} {info.value.hint}"
    assert "2 console scripts (migrate, serve)" in text
    assert "command =" in text
    assert "app =" in text


def test_nothing_said_lists_the_choices() -> None:
    with pytest.raises(ConfigError) as info:
        choose()
    text = f"{info.value} {info.value.hint}"
    assert "service 'svc' does not say how it starts" in text
    assert "command = " in text
    assert "app = " in text
    assert "[project.scripts]" in text


def test_scripts_of_a_project_that_is_not_a_package_are_not_installed() -> None:
    with pytest.raises(ConfigError, match="not installed: the project is not a package"):
        choose(scripts={"svc": "svc:main"}, packaged=False)


def test_unknown_server() -> None:
    with pytest.raises(ConfigError, match="unknown server 'hypercorn'"):
        choose(app="svc:app", server="hypercorn")


@pytest.mark.parametrize(
    ("server", "argv"),
    [
        ("uvicorn", ("-m", "uvicorn", "m:app", "--host", "0.0.0.0", "--port", "9000")),  # noqa: S104
        ("gunicorn", ("-m", "gunicorn", "--bind", "0.0.0.0:9000", "m:app")),
        ("waitress", ("-m", "waitress", "--listen=0.0.0.0:9000", "m:app")),
    ],
)
def test_servers_argv(server: str, argv: tuple[str, ...]) -> None:
    assert SERVERS[server].argv("m:app", 9000) == argv


# -- through the plan, from real files --------------------------------------------------------


def plan_cmd(root: Path, pyproject: str) -> tuple[str, ...] | None:
    (root / "pyproject.toml").write_text(pyproject)
    return make_plan(load_config(project_dir=root, environ={})).runtime.cmd


PACKAGE = (
    '[project]\nname = "tool"\nversion = "1"\n'
    '[build-system]\nrequires = ["hatchling==1.27.0"]\nbuild-backend = "hatchling.build"\n'
)


def test_plan_runs_the_console_script_by_its_path_in_the_image(tmp_path: Path) -> None:
    cmd = plan_cmd(tmp_path, PACKAGE + '[project.scripts]\ntool-serve = "tool.cli:main"\n')
    assert cmd == (f"{DEPS_BIN}/tool-serve",)


def test_plan_serves_a_wsgi_app_with_the_named_server(tmp_path: Path) -> None:
    cmd = plan_cmd(
        tmp_path, PACKAGE + '[tool.crossdock]\napp = "tool.wsgi:app"\nserver = "gunicorn"\n'
    )
    assert cmd == ("{python}", "-m", "gunicorn", "--bind", "0.0.0.0:8080", "tool.wsgi:app")


def test_plan_command_is_the_argv(tmp_path: Path) -> None:
    cmd = plan_cmd(tmp_path, PACKAGE + '[tool.crossdock]\ncommand = ["tool", "--serve"]\n')
    assert cmd == ("tool", "--serve")


def test_plan_of_a_plain_uv_init_project_says_what_to_add(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="service 'plain' does not say how it starts"):
        plan_cmd(tmp_path, '[project]\nname = "plain"\nversion = "0.1.0"\n')


def test_lambda_keeps_its_handler(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "fn"\nversion = "1"\n[tool.crossdock]\ntarget = "lambda"\n'
        'lambda-handler = "fn.handler.handle"\n'
    )
    plan = make_plan(load_config(project_dir=tmp_path, environ={}))
    assert plan.runtime.cmd == ("fn.handler.handle",)
