"""Project shapes found from where the user stands, with real pyproject files on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from crossdock.build import make_plan
from crossdock.config import load_config
from crossdock.errors import ConfigError
from crossdock.progress import NO_PROGRESS
from crossdock.project import discover_service, find_project_root

HATCHLING = '[build-system]\nrequires = ["hatchling==1.27.0"]\nbuild-backend = "hatchling.build"\n'


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def project_toml(name: str, *, extra: str = "", build: bool = False) -> str:
    text = f'[project]\nname = "{name}"\nversion = "0.1.0"\nrequires-python = ">=3.13"\n'
    return text + extra + (HATCHLING if build else "")


@pytest.fixture
def single(tmp_path: Path) -> Path:
    """What `uv init plainsvc` writes: a project that is not a package."""
    root = tmp_path / "plainsvc"
    write(root / "pyproject.toml", project_toml("plainsvc"))
    write(root / "main.py", "print('hi')\n")
    return root


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """Two services sharing a library member; the root is virtual."""
    root = tmp_path / "ws"
    write(
        root / "pyproject.toml",
        '[tool.uv.workspace]\nmembers = ["services/*", "libs/*"]\nexclude = ["libs/old"]\n',
    )
    write(
        root / "services" / "alpha" / "pyproject.toml",
        project_toml("alpha", extra='[project.scripts]\nalpha = "alpha:main"\n', build=True),
    )
    write(
        root / "services" / "beta" / "pyproject.toml",
        project_toml("beta", extra='[tool.crossdock]\napp = "beta.web:app"\n'),
    )
    write(root / "libs" / "shared" / "pyproject.toml", project_toml("shared", build=True))
    write(root / "libs" / "old" / "pyproject.toml", project_toml("old"))
    return root


# -- the root ---------------------------------------------------------------------------------


def test_single_project_is_its_own_root_and_service(single: Path) -> None:
    assert find_project_root(single) == single.resolve()
    project = discover_service(single, start=single, service=None, services_dir="backend")
    assert project.layout == "single"
    assert project.name == "plainsvc"
    assert project.service_dir == project.lock_dir == single.resolve()
    assert project.package is None
    assert project.packaged is False  # uv init's default: no [build-system]


def test_single_project_found_from_a_subfolder(single: Path) -> None:
    sub = single / "src" / "deep"
    sub.mkdir(parents=True)
    config = load_config(project_dir=sub, environ={})
    assert config.project.layout == "single"
    assert config.service == "plainsvc"
    assert config.project_root == single.resolve()


def test_single_project_refuses_a_service_that_is_not_it(single: Path) -> None:
    with pytest.raises(ConfigError, match=r"single uv project .*--service web names nothing"):
        load_config(project_dir=single, service="web", environ={})
    # Its own name is accepted.
    assert load_config(project_dir=single, service="plainsvc", environ={}).service == "plainsvc"


def test_crossdock_toml_at_a_single_projects_root_keeps_it_single(single: Path) -> None:
    write(single / "crossdock.toml", 'platforms = ["linux/amd64"]\n')
    config = load_config(project_dir=single, environ={})
    assert config.project.layout == "single"
    assert [str(p) for p in config.platforms] == ["linux/amd64"]


def test_seed_layout_without_crossdock_toml(tmp_path: Path) -> None:
    write(tmp_path / "backend" / "api" / "pyproject.toml", project_toml("api"))
    config = load_config(project_dir=tmp_path, service="api", environ={})
    assert config.project.layout == "seed"
    assert config.service_dir == (tmp_path / "backend" / "api").resolve()
    assert config.project.lock_dir == config.service_dir
    # The seed's services serve app.main:app unless they say otherwise.
    assert config.app == "app.main:app"


def test_seed_service_is_the_folder_you_stand_in(tmp_path: Path) -> None:
    write(tmp_path / "crossdock.toml", "")
    write(tmp_path / "backend" / "api" / "pyproject.toml", project_toml("api"))
    write(tmp_path / "backend" / "worker" / "pyproject.toml", project_toml("worker"))
    config = load_config(project_dir=tmp_path / "backend" / "worker", environ={})
    assert config.project.layout == "seed"
    assert config.service == "worker"
    with pytest.raises(ConfigError, match="no service given"):
        load_config(project_dir=tmp_path, environ={})


def test_example_is_the_seed_layout() -> None:
    example = Path(__file__).resolve().parents[3] / "example"
    config = load_config(project_dir=example, service="api", environ={})
    assert config.project.layout == "seed"
    assert config.project.packaged is False
    plan = make_plan(config)
    assert plan.runtime.cmd == (
        "{python}",
        "-m",
        "uvicorn",
        "app.main:app",
        "--host",
        "0.0.0.0",  # noqa: S104
        "--port",
        "8080",
    )


# -- workspaces -------------------------------------------------------------------------------


def test_workspace_member_by_name_with_the_workspace_lock(workspace: Path) -> None:
    config = load_config(project_dir=workspace, service="alpha", environ={})
    project = config.project
    assert project.layout == "workspace"
    assert project.root == project.lock_dir == workspace.resolve()
    assert project.service_dir == (workspace / "services" / "alpha").resolve()
    assert project.package == "alpha"
    assert project.packaged is True
    assert project.scripts == {"alpha": "alpha:main"}


def test_workspace_member_found_from_its_folder(workspace: Path) -> None:
    start = workspace / "services" / "beta"
    assert find_project_root(start) == workspace.resolve()
    config = load_config(project_dir=start, environ={})
    assert config.service == "beta"
    assert config.project.packaged is False
    assert config.app == "beta.web:app"  # the member's own [tool.crossdock]


def test_workspace_without_a_service_lists_the_members(workspace: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(project_dir=workspace, environ={})
    message = str(info.value) + (info.value.hint or "")
    assert "is a uv workspace" in message
    # Every member, the excluded libs/old left out.
    assert "one of: alpha, beta, shared;" in message


def test_workspace_unknown_member(workspace: Path) -> None:
    with pytest.raises(ConfigError, match="no member named 'gamma'"):
        load_config(project_dir=workspace, service="gamma", environ={})


def test_workspace_root_project_is_the_service_at_the_root(tmp_path: Path) -> None:
    write(
        tmp_path / "pyproject.toml",
        project_toml("rootsvc", extra='[tool.uv.workspace]\nmembers = ["libs/*"]\n', build=True),
    )
    write(tmp_path / "libs" / "util" / "pyproject.toml", project_toml("util", build=True))
    config = load_config(project_dir=tmp_path, environ={})
    assert config.project.layout == "workspace"
    assert config.service == "rootsvc"
    assert config.project.package == "rootsvc"
    config = load_config(project_dir=tmp_path / "libs" / "util", environ={})
    assert config.service == "util"


# -- packaged or not, uv's rule ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "build", "packaged"),
    [
        ("", False, False),  # no [build-system]: a virtual project
        ("", True, True),  # a [build-system]: a package
        ("[tool.uv]\npackage = false\n", True, False),  # said so
        ("[tool.uv]\npackage = true\n", False, True),  # said so (uv's default backend)
    ],
)
def test_packaged_follows_uv(tmp_path: Path, extra: str, build: bool, packaged: bool) -> None:
    write(tmp_path / "pyproject.toml", project_toml("svc", extra=extra, build=build))
    assert load_config(project_dir=tmp_path, environ={}).project.packaged is packaged


def test_invalid_pyproject_is_a_config_error(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", "[project\nname=")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(project_dir=tmp_path, environ={})


def test_buildx_backend_refuses_a_shape_its_dockerfiles_cannot_build(single: Path) -> None:
    from crossdock.backends.buildx import BuildxBackend
    from crossdock.registry.reference import Mirrors

    (single / "pyproject.toml").write_text(
        project_toml("plainsvc", extra='[tool.crossdock]\napp = "main:app"\n')
    )
    plan = make_plan(load_config(project_dir=single, environ={}))
    backend = BuildxBackend(single / "Dockerfile", mirrors=Mirrors({}))
    with pytest.raises(ConfigError, match="buildx backend builds the seed's Dockerfiles"):
        backend.build(plan, NO_PROGRESS)
