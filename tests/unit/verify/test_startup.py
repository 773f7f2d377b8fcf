"""Images proven to start: the command an image config records, followed through synthetic but
real layer stacks (tar+gzip layers, whiteouts, symlinks) with no Python or libc needed."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from crossdock.image.config import ImageConfig
from crossdock.rootfs.fsview import LayerFS
from crossdock.verify.report import Check
from crossdock.verify.startup import check_startup, find_module, handler_module
from tests.support.layertar import Entry, write_layer

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
APP_PATH = f"/opt/crossdock/packages/bin:{PATH}"
PYTHONPATH = "/app:/opt/crossdock/packages"
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - a server in a container listens on all interfaces
UVICORN = ["/usr/bin/python3.13", "-m", "uvicorn", "app.main:app", "--host", ALL_INTERFACES]

# A Debian-like base: the interpreter's bytes do not matter here, only where it is.
BASE: list[Entry] = [
    ("usr/bin/python3.13", "file", b"\x7fELF not really"),
    ("usr/bin/python3", "symlink", "python3.13"),
    ("bin", "symlink", "usr/bin"),
    ("usr/bin/dash", "file", b"\x7fELF"),
    ("usr/bin/sh", "symlink", "dash"),
    ("usr/bin/env", "file", b"\x7fELF"),
    ("usr/lib/python3.13/os.py", "data", b""),
    ("usr/lib/python3.13/json/__init__.py", "data", b""),
    ("usr/lib/python3/dist-packages", "dir", None),
]
DEPS: list[Entry] = [
    ("opt/crossdock/packages/uvicorn/__init__.py", "data", b""),
    ("opt/crossdock/packages/uvicorn/__main__.py", "data", b""),
    ("opt/crossdock/packages/uvicorn/main.py", "data", b""),
    (
        "opt/crossdock/packages/bin/uvicorn",
        "file",
        b"#!/usr/bin/python3.13\nimport sys\nfrom uvicorn.main import main\nsys.exit(main())\n",
    ),
]


def _config(
    cmd: list[str],
    *,
    entrypoint: list[str] | None = None,
    env: dict[str, str] | None = None,
    working_dir: str = "/app",
    user: str = "65534:65534",
) -> ImageConfig:
    env = {"PATH": APP_PATH, "PYTHONPATH": PYTHONPATH} if env is None else env
    return ImageConfig.from_data(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {
                "Env": [f"{k}={v}" for k, v in env.items()],
                "Entrypoint": entrypoint,
                "Cmd": cmd,
                "WorkingDir": working_dir,
                "User": user,
            },
            "rootfs": {"type": "layers", "diff_ids": []},
        }
    )


def _fs(tmp_path: Path, *layers: Sequence[Entry]) -> LayerFS:
    paths = [
        write_layer(tmp_path / f"layer{i}.tar.gz", entries)
        for i, entries in enumerate([BASE, *layers])
    ]
    return LayerFS(paths)


def _failures(tmp_path: Path, config: ImageConfig, *layers: Sequence[Entry]) -> list[str]:
    result = check_startup(config, _fs(tmp_path, *layers))
    assert all(f.check is Check.STARTUP for f in result.findings)
    return [f"{f.file.path} | {f.expected} | {f.found} | {f.fix}" for f in result.findings]


def test_the_issue_s_broken_image_is_named(tmp_path):
    """`python -m uvicorn app.main:app` where /app has only src/plainsvc/ (issue 11)."""
    app = [
        ("app/pyproject.toml", "data", b"[project]\nname = 'plainsvc'\n"),
        ("app/src/plainsvc/__init__.py", "data", b"def main(): pass\n"),
    ]
    failures = _failures(tmp_path, _config(UVICORN), DEPS, app)
    assert len(failures) == 1, failures
    (failure,) = failures
    assert "module app.main" in failure
    assert "no module app.main in /app, /opt/crossdock/packages, /usr/lib/python3.13," in failure
    assert "/app/src holds plainsvc" in failure and "src layout" in failure


def test_a_service_that_has_its_module_passes(tmp_path):
    app = [("app/app/__init__.py", "data", b""), ("app/app/main.py", "data", b"app = 1\n")]
    result = check_startup(_config(UVICORN), _fs(tmp_path, DEPS, app))
    assert result.passed, result.findings
    assert "module uvicorn -> /opt/crossdock/packages/uvicorn/__init__.py" in result.resolved
    assert "module app.main -> /app/app/main.py" in result.resolved
    # What `crossdock build --smoke` imports in a container, with which Python, from where.
    assert result.modules == ["uvicorn", "app.main"]
    assert result.python == "/usr/bin/python3.13"
    assert result.module_path[:3] == ["/app", "/opt/crossdock/packages", "/usr/lib/python3.13"]


def test_python_m_of_a_missing_runner(tmp_path):
    app = [("app/app/main.py", "data", b"")]
    failures = _failures(tmp_path, _config(UVICORN), app)  # no dependencies layer
    assert len(failures) == 1 and "no module uvicorn in" in failures[0], failures


def test_program_not_on_path(tmp_path):
    failures = _failures(tmp_path, _config(["gunicorn", "app.main:app"]), DEPS)
    assert len(failures) == 1
    assert "the program gunicorn on PATH /opt/crossdock/packages/bin:" in failures[0]
    assert "no such file in the image" in failures[0]


def test_program_not_executable_by_the_image_user(tmp_path):
    tool = [("usr/local/bin/serve", "data", b"\x7fELF")]
    failures = _failures(tmp_path, _config(["serve"]), tool)
    assert len(failures) == 1 and "/usr/local/bin/serve has mode 644" in failures[0]
    # Owner-only execute: root may run it, user 65534 may not.
    owner_only = [("usr/local/bin/serve", "file", b"\x7fELF")]
    assert not _failures(tmp_path, _config(["serve"], user="0"), owner_only)


def test_symlinks_are_followed_inside_the_image_only(tmp_path):
    links = [
        ("usr/local/bin/python3", "symlink", "/usr/bin/python3.13"),
        # Climbs above the root: under chroot rules ".." stops at /, so this is /bin/true,
        # which the image does not have (the host's /bin/true must not count).
        ("usr/local/bin/truthy", "symlink", "../../../../../bin/true"),
    ]
    assert not _failures(tmp_path, _config(["python3", "-c", "pass"]), links)
    failures = _failures(tmp_path, _config(["truthy"]), links)
    assert len(failures) == 1 and "no such file" in failures[0]


def test_a_whiteout_removes_the_module(tmp_path):
    app = [("app/app/__init__.py", "data", b""), ("app/app/main.py", "data", b"")]
    removed = [("app/app/main.py", "whiteout", None)]
    failures = _failures(tmp_path, _config(UVICORN), DEPS, app, removed)
    assert len(failures) == 1 and "no module app.main" in failures[0]


def test_python_m_package_needs_main(tmp_path):
    tool = [("opt/crossdock/packages/tool/__init__.py", "data", b"")]
    failures = _failures(tmp_path, _config(["python3", "-m", "tool"]), tool)
    assert len(failures) == 1 and "tool.__main__" in failures[0]


def test_isolated_mode_ignores_pythonpath(tmp_path):
    failures = _failures(tmp_path, _config(["python3", "-I", "-m", "uvicorn"]), DEPS)
    assert len(failures) == 1 and "no module uvicorn" in failures[0]


def test_console_script_target_module(tmp_path):
    script = b"#!/usr/bin/python3.13\n# -*- coding: utf-8 -*-\n"
    script += b"import sys\nfrom plainsvc.cli import main\n"
    bin_only = [("opt/crossdock/packages/bin/plainsvc", "file", script)]
    failures = _failures(tmp_path, _config(["plainsvc"]), bin_only)
    assert len(failures) == 1
    assert (
        "module plainsvc.cli (the console script /opt/crossdock/packages/bin/plainsvc"
        in (failures[0])
    )
    installed = [
        *bin_only,
        ("opt/crossdock/packages/plainsvc/__init__.py", "data", b""),
        ("opt/crossdock/packages/plainsvc/cli.py", "data", b"def main(): pass\n"),
    ]
    assert not _failures(tmp_path, _config(["plainsvc"]), installed)


def test_console_script_whose_interpreter_is_missing(tmp_path):
    script = [
        ("usr/local/bin/tool", "file", b"#!/usr/local/bin/python3.12\nfrom tool import main\n")
    ]
    failures = _failures(tmp_path, _config(["tool"]), script)
    assert len(failures) == 1
    assert "the interpreter of /usr/local/bin/tool /usr/local/bin/python3.12" in failures[0]


def test_uvicorn_console_script_in_a_venv_with_the_app(tmp_path):
    """The seed's Dockerfile image: /opt/venv, CMD uvicorn app.main:app, no PYTHONPATH."""
    site = "opt/venv/lib/python3.13/site-packages"
    venv: list[Entry] = [
        ("opt/venv/pyvenv.cfg", "data", b"home = /usr/bin\ninclude-system-site-packages = false\n"),
        ("opt/venv/bin/python", "symlink", "/usr/bin/python3.13"),
        (
            "opt/venv/bin/uvicorn",
            "file",
            b"#!/opt/venv/bin/python\nimport sys\nfrom uvicorn.main import main\n",
        ),
        (f"{site}/uvicorn/__init__.py", "data", b""),
        (f"{site}/uvicorn/main.py", "data", b""),
    ]
    env = {"PATH": f"/opt/venv/bin:{PATH}"}
    cmd = ["uvicorn", "app.main:app", "--host", ALL_INTERFACES, "--port", "8080"]
    app = [("app/app/__init__.py", "data", b""), ("app/app/main.py", "data", b"")]
    assert not _failures(tmp_path, _config(cmd, env=env), venv, app)
    failures = _failures(tmp_path, _config(cmd, env=env), venv)
    assert len(failures) == 1 and "uvicorn is told to serve app.main:app" in failures[0]


def test_lambda_base_handler(tmp_path):
    base = [
        ("lambda-entrypoint.sh", "file", b'#!/bin/sh\nexec python3 -m awslambdaric "$@"\n'),
        ("var/runtime/awslambdaric/__init__.py", "data", b""),
    ]
    env = {
        "PATH": "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin",
        "LAMBDA_TASK_ROOT": "/var/task",
        "LAMBDA_RUNTIME_DIR": "/var/runtime",
    }
    config = _config(["app.handler"], entrypoint=["/lambda-entrypoint.sh"], env=env, user="")
    failures = _failures(tmp_path, config, base)
    assert len(failures) == 1
    assert "module app (the Lambda handler app.handler is in it)" in failures[0]
    # The fix names Lambda's own setting and how a web app becomes a handler, not the web
    # targets' app/command settings.
    assert "add app.py with a function handler(event, context)" in failures[0]
    assert "lambda-handler = 'MODULE.FUNCTION'" in failures[0]
    assert "`handler = Mangum(app)`" in failures[0]
    assert "app, command or" not in failures[0]
    task = [("var/task/app.py", "data", b"def handler(event, context): pass\n")]
    assert not _failures(tmp_path, config, base, task)


def test_awslambdaric_argument_on_a_plain_base(tmp_path):
    ric = [("var/task/awslambdaric/__init__.py", "data", b"")]
    ric += [("var/task/awslambdaric/__main__.py", "data", b"")]
    env = {"PATH": PATH, "PYTHONPATH": "/var/task", "LAMBDA_TASK_ROOT": "/var/task"}
    config = _config(
        ["handlers/api.handler"],
        entrypoint=["/usr/bin/python3.13", "-m", "awslambdaric"],
        env=env,
        working_dir="/var/task",
    )
    failures = _failures(tmp_path, config, ric)
    assert len(failures) == 1 and "module handlers.api" in failures[0]
    handlers = [("var/task/handlers/api.py", "data", b"")]
    assert not _failures(tmp_path, config, ric, handlers)


def test_pth_files_add_folders(tmp_path):
    pth = [
        ("usr/lib/python3/dist-packages/_plainsvc.pth", "data", b"import os\n/srv/code\n"),
        ("srv/code/plainsvc/__init__.py", "data", b""),
        ("srv/code/plainsvc/__main__.py", "data", b""),
    ]
    assert not _failures(tmp_path, _config(["python3", "-m", "plainsvc"], env={"PATH": PATH}), pth)


def test_no_command_is_a_note_not_a_failure(tmp_path):
    result = check_startup(_config([]), _fs(tmp_path))
    assert result.passed and "records no command" in result.notes[0]


def test_find_module_kinds(tmp_path):
    fs = _fs(
        tmp_path,
        [
            ("lib/fast.cpython-312-x86_64-linux-gnu.so", "data", b""),
            ("lib/fast.cpython-313-x86_64-linux-gnu.so", "data", b""),
            ("lib/stable.abi3.so", "data", b""),
            ("lib/only.pyc", "data", b""),
            ("lib/ns/sub/mod.py", "data", b""),  # a namespace package (no __init__)
            ("lib/other312.cpython-312-x86_64-linux-gnu.so", "data", b""),
            ("lib/plain.py", "data", b""),
        ],
    )
    search = ["/lib"]
    found = find_module(fs, "fast", search, (3, 13))
    assert found is not None and found.path == "/lib/fast.cpython-313-x86_64-linux-gnu.so"
    assert find_module(fs, "stable", search, (3, 13)) is not None
    assert find_module(fs, "only", search, (3, 13)) is not None
    namespace = find_module(fs, "ns.sub.mod", search, (3, 13))
    assert namespace is not None and namespace.path == "/lib/ns/sub/mod.py"
    assert find_module(fs, "other312", search, (3, 13)) is None  # another CPython's extension
    assert find_module(fs, "plain.sub", search, (3, 13)) is None  # a module is not a package
    assert find_module(fs, "missing", search, (3, 13)) is None


def test_handler_module():
    assert handler_module("app.handler") == "app"
    assert handler_module("pkg/mod.fn") == "pkg.mod"
    assert handler_module("handler") == ""
