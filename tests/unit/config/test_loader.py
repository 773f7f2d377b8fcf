import subprocess
import sys

import pytest

from crossdock.build import make_plan
from crossdock.config import (
    default_cache_dir,
    load_config,
    machine_settings,
    settings_fingerprint,
)
from crossdock.errors import ConfigError, TargetError
from crossdock.platform import AMD64, ARM64


@pytest.fixture
def project(tmp_path):
    service = tmp_path / "backend" / "api"
    service.mkdir(parents=True)
    (service / "pyproject.toml").write_text(
        '[project]\nname = "api"\nversion = "0"\n[tool.crossdock]\nport = 9000\ntarget = "eks"\n'
    )
    (tmp_path / "crossdock.toml").write_text(
        'platforms = ["linux/amd64"]\nport = 7000\n'
        '[registry-mirrors]\n"docker.io" = "mirror.example/hub"\n'
        '[environments.dev]\nrepository = "127.0.0.1:5555/team/api"\n'
    )
    return tmp_path


def test_cascade_order(project):
    # defaults < crossdock.toml < [tool.crossdock] < env < CLI
    config = load_config(project_dir=project, service="api", environ={})
    assert config.platforms == (AMD64,)
    assert config.port == 9000
    assert config.target == "eks"
    assert config.environment("dev").repository == "127.0.0.1:5555/team/api"

    env = {
        "CROSSDOCK_PLATFORMS": "linux/arm64,linux/amd64",
        "CROSSDOCK_TARGET": "lambda",
        "CROSSDOCK_REGISTRY_MIRRORS": "docker.io=127.0.0.1:5555",
    }
    config = load_config(
        project_dir=project,
        service="api",
        environ=env,
        overrides={"target": "apprunner", "base": None},
    )
    assert config.platforms == (ARM64, AMD64)
    assert config.target == "apprunner"  # CLI beats env
    assert config.registry_mirrors == {"docker.io": "127.0.0.1:5555"}


def test_project_root_found_from_a_subfolder(project):
    config = load_config(project_dir=project / "backend" / "api", service="api", environ={})
    assert config.project_root == project.resolve()


def test_unknown_key_names_the_file(project):
    (project / "backend" / "api" / "pyproject.toml").write_text("[tool.crossdock]\nprot = 1\n")
    with pytest.raises(ConfigError, match=r"pyproject.toml \[tool.crossdock\].*prot"):
        load_config(project_dir=project, service="api", environ={})


def test_missing_service_lists_the_ones_found(project):
    with pytest.raises(ConfigError) as info:
        load_config(project_dir=project, service="web", environ={})
    assert "services found: api" in str(info.value)


def test_no_service(project):
    with pytest.raises(ConfigError, match="no service given"):
        load_config(project_dir=project, environ={})


def test_invalid_values_are_reported(project):
    with pytest.raises(ConfigError, match="port"):
        load_config(project_dir=project, service="api", environ={}, overrides={"port": 70000})
    with pytest.raises(ConfigError, match="platform"):
        load_config(
            project_dir=project, service="api", environ={}, overrides={"platforms": "linux/ppc64le"}
        )


def test_unknown_environment(project):
    config = load_config(project_dir=project, service="api", environ={})
    with pytest.raises(ConfigError, match="unknown environment 'staging'"):
        config.environment("staging")


def test_plan_applies_target_and_mirrors(project):
    config = load_config(
        project_dir=project,
        service="api",
        environ={},
        overrides={"platforms": "linux/arm64,linux/amd64"},
    )
    plan = make_plan(config, revision="abc1234")
    assert str(plan.base) == "docker.io/library/python:3.13-slim"
    assert str(plan.base_pull) == "mirror.example/hub/library/python:3.13-slim"
    assert plan.single_manifests is False
    assert plan.runtime.entrypoint == ()
    assert plan.runtime.cmd is not None
    assert plan.runtime.cmd[:3] == ("{python}", "-m", "uvicorn")
    assert plan.runtime.exposed_ports == (9000,)
    assert plan.annotations["org.opencontainers.image.revision"] == "abc1234"
    filled = plan.runtime.with_python("/usr/bin/python3.13")
    assert filled.cmd is not None
    assert filled.cmd[0] == "/usr/bin/python3.13"
    assert plan.to_json()["platforms"] == ["linux/arm64/v8", "linux/amd64"]


def test_lambda_plan(project):
    config = load_config(
        project_dir=project, service="api", environ={}, overrides={"target": "lambda"}
    )
    plan = make_plan(config)
    assert plan.single_manifests is True
    assert str(plan.base) == "public.ecr.aws/lambda/python:3.13"
    assert plan.app_dir == plan.deps_dir == "/var/task"
    assert plan.runtime.cmd == ("app.lambda_handler.handler",)
    assert plan.runtime.entrypoint is None


def test_target_refuses_unknown_architecture():
    from crossdock.platform import Platform
    from crossdock.targets import target_spec

    with pytest.raises(TargetError, match="does not run"):
        target_spec("lambda").check_platforms((Platform("linux", "riscv64"),))


def test_config_is_where_the_bytecode_interpreter_and_machine_settings_are_read(project, tmp_path):
    env = {
        "CROSSDOCK_BYTECODE_PYTHON": "/opt/python3.13/bin/python3",
        "CROSSDOCK_CACHE_DIR": str(tmp_path / "cache"),
        "CROSSDOCK_REGISTRY_MIRRORS": "docker.io=127.0.0.1:5555",
    }
    config = load_config(project_dir=project, service="api", environ=env)
    assert config.bytecode_python == "/opt/python3.13/bin/python3"
    assert make_plan(config).bytecode_python == "/opt/python3.13/bin/python3"
    assert load_config(project_dir=project, service="api", environ={}).bytecode_python is None
    # Commands without a project (verify IMAGE, cache, doctor outside one) read the same names.
    settings = machine_settings(env)
    assert settings.cache_dir == tmp_path / "cache" == config.cache_dir
    assert settings.registry_mirrors.hosts == {"docker.io": "127.0.0.1:5555"}
    assert machine_settings({}).cache_dir == default_cache_dir()


def test_k8s_takes_port_and_health_path_from_the_service_else_from_the_defaults(tmp_path):
    from crossdock.cli.run_cmd import _served_at

    service = tmp_path / "project" / "backend" / "api"
    service.mkdir(parents=True)
    (service / "pyproject.toml").write_text(
        '[project]\nname = "api"\nversion = "0"\n[tool.crossdock]\nport = 9000\n'
        'health-path = "/ready"\n'
    )
    assert _served_at(tmp_path / "project", "api") == (9000, "/ready")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    assert _served_at(outside, None) == (8080, "/health")  # defaults.toml
    with pytest.raises(ConfigError):
        _served_at(outside, "api")  # a service asked for by name must load


def test_every_value_names_its_source(project):
    from crossdock.config import load_config_with_sources

    config, sources = load_config_with_sources(
        project_dir=project,
        service="api",
        environ={"CROSSDOCK_TARGET": "lambda", "CROSSDOCK_CACHE_DIR": str(project / "c")},
        overrides={"base": "python:3.13-slim", "platforms": None},
    )
    assert config.target == "lambda" and config.port == 9000
    assert sources["bytecode"] == "default"
    assert sources["platforms"] == "crossdock.toml"
    assert sources["registry-mirrors.docker.io"] == "crossdock.toml"
    assert sources["environments.dev.repository"] == "crossdock.toml"
    assert sources["environments.prod.repository"] == "default"
    assert sources["port"] == "backend/api/pyproject.toml [tool.crossdock]"  # over crossdock.toml
    assert sources["target"] == "env CROSSDOCK_TARGET"  # over [tool.crossdock]
    assert sources["cache-dir"] == "env CROSSDOCK_CACHE_DIR"
    assert sources["base"] == "option --base"
    assert sources["service"] == "option --service"


def test_config_command_prints_values_and_sources(project):
    import json

    from typer.testing import CliRunner

    from crossdock.cli import _register_commands, app

    _register_commands()
    runner = CliRunner()
    env = {"CROSSDOCK_PLATFORMS": "linux/arm64", "CROSSDOCK_REGISTRY_MIRRORS": ""}
    result = runner.invoke(app, ["config", "-C", str(project), "-s", "api", "--json"], env=env)
    assert result.exit_code == 0, result.output
    values = json.loads(result.stdout)["values"]
    assert values["platforms"] == {
        "value": ["linux/arm64/v8"],
        "source": "env CROSSDOCK_PLATFORMS",
    }
    assert values["port"]["value"] == 9000
    text = runner.invoke(app, ["config", "-C", str(project), "-s", "api", "--port", "1"], env=env)
    assert text.exit_code != 0  # only the options the cascade knows
    text = runner.invoke(app, ["config", "-C", str(project), "-s", "api", "-t", "eks"], env=env)
    assert text.exit_code == 0, text.output
    assert 'target = "eks"  # option --target' in text.stdout
    assert "port = 9000  # backend/api/pyproject.toml [tool.crossdock]" in text.stdout


def test_the_settings_fingerprint_changes_with_every_layer_of_the_cascade(
    project, tmp_path, monkeypatch
):
    def fingerprint(environ=None, **overrides):
        return settings_fingerprint(
            project_dir=project, service="api", overrides=overrides, environ=environ or {}
        )

    first = fingerprint()
    assert fingerprint() == first  # read again: the same
    changes = {"an option": fingerprint(target="lambda")}
    changes["a variable"] = fingerprint({"CROSSDOCK_PRODUCTION_ARCH": "amd64"})
    changes["mirrors"] = fingerprint({"CROSSDOCK_REGISTRY_MIRRORS": "docker.io=m.example"})
    with monkeypatch.context() as patch:  # the default cache folder's (read from the process)
        patch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
        changes["XDG_CACHE_HOME"] = fingerprint()
    settings = project / "crossdock.toml"
    text = settings.read_text()
    settings.write_text("refuse-dirty = true\n" + text)
    changes["crossdock.toml"] = fingerprint()
    settings.write_text(text)
    service = project / "backend" / "api" / "pyproject.toml"
    service_text = service.read_text()
    service.write_text(service_text.replace("port = 9000", "port = 9001"))
    changes["[tool.crossdock]"] = fingerprint()
    service.write_text(service_text)
    assert fingerprint() == first  # every change undone
    assert len({first, *changes.values()}) == len(changes) + 1, changes


def test_the_settings_fingerprint_is_read_without_pydantic(project):
    # It is what a build answered from its record checks before anything heavy is imported.
    probe = (
        "import sys\n"
        "from crossdock.config import settings_fingerprint\n"
        f"settings_fingerprint(project_dir=__import__('pathlib').Path({str(project)!r}),"
        " service='api')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pydantic', 'typer')))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert completed.stdout.strip() == "[]"
