"""crossdock init: the packaged templates are the example project, and rendering is safe."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from crossdock.errors import ConfigError
from crossdock.scaffold import render_project, write_project

EXAMPLE = Path(__file__).resolve().parents[2] / "example"
# The files init shares with the example project (the service's code is the example owner's).
SHARED = (
    ".gitignore",
    "Makefile",
    "crossdock.toml",
    "scripts/docker-push.sh",
    "backend/.dockerignore",
    "backend/Dockerfile.lambda",
    "backend/Dockerfile.apprunner",
    "backend/Dockerfile.eks",
)


TEMPLATE = Path(__file__).resolve().parents[2] / "src/crossdock/templates/project"


def test_templates_do_not_drift_from_the_example_project() -> None:
    """Each shared file is either a link to its template (it cannot drift: there is one file)
    or a copy that must hold the same bytes as the template rendered for the example's service.
    """
    rendered = {str(f.path): f.content for f in render_project("api")}
    copies = [name for name in SHARED if not (EXAMPLE / name).is_symlink()]
    for name in SHARED:
        if (EXAMPLE / name).is_symlink():
            assert (EXAMPLE / name).resolve() == TEMPLATE / name, f"example/{name} links elsewhere"
            # The link is the example's file only because rendering for "api" changes nothing.
            assert rendered[name] == (TEMPLATE / name).read_bytes(), name
    # The copies are the files a comparison can catch drifting (.gitignore and the Dockerfiles).
    assert copies, "every shared file is a link: this comparison would check nothing"
    for name in copies:
        assert rendered[name] == (EXAMPLE / name).read_bytes(), (
            f"src/crossdock/templates/project and example/ differ on {name}: "
            "change both (copy example/ over the template)"
        )


def test_layout_is_the_seeds() -> None:
    paths = {str(f.path) for f in render_project("orders")}
    assert paths == {
        *SHARED,
        "backend/orders/pyproject.toml",
        "backend/orders/app/__init__.py",
        "backend/orders/app/main.py",
        "backend/orders/app/lambda_handler.py",
    }


def test_service_name_reaches_defaults_and_code() -> None:
    files = {str(f.path): f.content.decode() for f in render_project("orders")}
    assert "SERVICE ?= orders\n" in files["Makefile"]
    assert "ARG SERVICE_FOLDER=orders\n" in files["backend/Dockerfile.lambda"]
    assert 'name = "orders"' in files["backend/orders/pyproject.toml"]
    assert "{{service}}" not in "".join(files.values())
    assert "SERVICE ?= api" not in files["Makefile"]


def test_write_project_writes_an_executable_push_script_and_refuses_to_overwrite(
    tmp_path: Path,
) -> None:
    written = write_project(tmp_path / "new", "api")
    assert (tmp_path / "new/backend/api/app/main.py").is_file()
    assert os.access(tmp_path / "new/scripts/docker-push.sh", os.X_OK)
    assert len(written) == len(render_project("api"))
    before = (tmp_path / "new/Makefile").read_bytes()
    with pytest.raises(ConfigError) as caught:
        write_project(tmp_path / "new", "api")
    assert "Makefile" in str(caught.value)
    assert (tmp_path / "new/Makefile").read_bytes() == before


@pytest.mark.parametrize("name", ["", "Api", "../x", "a b", "-x"])
def test_unusable_service_names_are_refused(name: str) -> None:
    with pytest.raises(ConfigError):
        render_project(name)


def test_single_layout_is_one_uv_project_that_is_the_service(tmp_path: Path) -> None:
    from crossdock.build import make_plan
    from crossdock.config import load_config

    paths = {str(f.path) for f in render_project("orders", "single")}
    assert paths == {".gitignore", "pyproject.toml", "main.py"}
    write_project(tmp_path / "orders", "orders", "single")
    config = load_config(project_dir=tmp_path / "orders", environ={})
    assert config.project.layout == "single"
    assert config.service == "orders"
    assert make_plan(config).runtime.cmd == (
        "{python}",
        "-m",
        "uvicorn",
        "main:app",
        "--host",
        "0.0.0.0",  # noqa: S104
        "--port",
        "8080",
    )


def test_unknown_layout_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown layout 'monorepo'"):
        render_project("api", "monorepo")
