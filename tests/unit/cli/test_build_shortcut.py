"""The early answer of an unchanged ``crossdock build`` command line (issue 14): what keys it,
and what it keeps. The answer itself, and every input it checks again, are tested end to end
on the stage (tests/integration/test_build_caches.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer.main

from crossdock.backends.lastbuild import RecordInputs
from crossdock.build import OutputSpec, PlanOutputs
from crossdock.cli import _register_commands, app, build_shortcut
from crossdock.image import sha256_of
from crossdock.plan import BuildPlan
from crossdock.platform import AMD64
from crossdock.publish.pipeline import ReleaseSettings
from crossdock.registry.reference import Reference
from crossdock.resolve import bytecode
from tests.unit.backends.test_lastbuild import (  # noqa: F401 - project: the fixture
    _put,
    outcome_for,
    plan_for,
    project,
)

ARGS = ["-C", "example", "--service", "api", "--oci-layout", "out"]


def test_the_variables_the_build_options_read_are_in_the_key():
    _register_commands(["build"])
    command = typer.main.get_command(app).commands["build"]  # type: ignore[attr-defined]
    variables: set[str] = set()
    for param in command.params:
        envvar = getattr(param, "envvar", None)
        variables.update([envvar] if isinstance(envvar, str) else envvar or [])
    assert variables == set(build_shortcut.OPTION_VARIABLES)


def test_the_key_is_the_command_line_where_it_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    key = build_shortcut.command_line_key(ARGS, {})
    assert build_shortcut.command_line_key(list(ARGS), {}) == key
    others = {
        build_shortcut.command_line_key([*ARGS, "--tag", "latest"], {}),
        build_shortcut.command_line_key(ARGS, {"SERVICE_FOLDER": "api"}),
    }
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # a relative -C names another folder
    others.add(build_shortcut.command_line_key(ARGS, {}))
    assert len(others | {key}) == 4


def test_an_oci_layout_folder_is_not_part_of_the_key(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    key = build_shortcut.command_line_key(ARGS, {})
    elsewhere = ["-C", "example", "--service", "api", "--oci-layout", "builds/another"]
    assert build_shortcut.command_line_key(elsewhere, {}) == key
    assert build_shortcut.layout_folder(elsewhere)[1] == "builds/another"
    # Written otherwise, the folder is part of the key, as any other argument.
    for args in (
        [*ARGS[:-2], "--oci-layout", "oci:out:v1"],  # a transport name: it names a tag too
        [*ARGS[:-2], "--oci-layout=out"],
        [*ARGS, "--oci-layout", "again"],  # twice
        [*ARGS[:-1], "--quiet"],  # the next word is an option
    ):
        assert build_shortcut.layout_folder(args) == (args, None)
        assert build_shortcut.command_line_key(args, {}) != key


def test_what_a_build_remembers_reads_back_the_same(project, tmp_path):  # noqa: F811
    shortcut = _remembered(project, tmp_path)
    again = build_shortcut.Shortcut.from_json(shortcut.to_json())
    assert again == shortcut
    assert again.inputs.key(sha256_of(b"base")) == shortcut.inputs.key(sha256_of(b"base"))


def test_nothing_is_remembered_for_a_build_not_run_as_the_command(project, tmp_path, monkeypatch):  # noqa: F811
    # A library caller or a test's CliRunner has no command line to answer next time.
    monkeypatch.setenv("CROSSDOCK_CACHE_DIR", str(tmp_path / "machine-cache"))
    monkeypatch.setattr(build_shortcut, "command_line", None)
    plan = plan_for(project)

    def remember() -> None:
        _remember(plan, Path(project), tmp_path)

    remember()
    assert not (tmp_path / "machine-cache").exists()
    # Typer read the layout's folder elsewhere than layout_folder does (here: none): nothing
    # is kept, so that no other command line is answered with this output.
    monkeypatch.setattr(build_shortcut, "command_line", ARGS)
    remember()
    assert not (tmp_path / "machine-cache").exists()
    monkeypatch.setattr(build_shortcut, "command_line", ARGS[:-2])
    remember()
    [entry] = (tmp_path / "machine-cache" / "records" / "build-shortcut").iterdir()
    assert entry.name == f"{build_shortcut.command_line_key(ARGS[:-2])}.rec"


def test_a_rebuild_starts_the_compiler_of_the_last_builds_python_at_once(project, monkeypatch):  # noqa: F811
    """A code-only rebuild starts the bytecode compiler child for the Python versions the last
    build compiled for before it imports and runs the build (its interpreter starts meanwhile);
    the compile takes it only if it is the interpreter and environment it would start."""
    host = f"{sys.version_info.major}.{sys.version_info.minor}"
    plan = plan_for(project)
    assert plan.bytecode
    try:
        build_shortcut._prepare_compilers(plan, (host,))
        [(python, (child, env))] = bytecode._READY.items()
        assert python == bytecode.find_host_python(host)
        assert env == bytecode._compile_env()
        assert child.poll() is None  # started, waiting for its files
        # A version no interpreter here has, and a build without bytecode, start nothing more.
        build_shortcut._prepare_compilers(plan, ("2.9",))
        build_shortcut._prepare_compilers(plan_for(project, bytecode=False), (host,))
        assert len(bytecode._READY) == 1
    finally:
        bytecode._dismiss_ready()


def test_a_build_remembers_the_python_versions_it_compiled_for(project, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("CROSSDOCK_CACHE_DIR", str(tmp_path / "machine-cache"))
    monkeypatch.setattr(build_shortcut, "command_line", ARGS[:-2])
    for bytecode_on, versions in ((True, ["3.13"]), (False, [])):
        _remember(plan_for(project, bytecode=bytecode_on), Path(project), tmp_path)
        [entry] = (tmp_path / "machine-cache" / "records" / "build-shortcut").iterdir()
        assert json.loads(entry.read_bytes().split(b"\n", 1)[1])["python_versions"] == versions


def _remember(plan: BuildPlan, project_dir: Path, tmp_path: Path) -> None:
    """What `crossdock build` does after a build of ``plan`` to an OCI layout: keep the record
    that answers the same command line next time (when the command line is known)."""
    build_shortcut.remember(
        plan,
        outcome_for(tmp_path),
        load={"project_dir": project_dir, "service": "api", "overrides": {}},
        allow=(),
        output=OutputSpec(),
        release=None,
        json_output=False,
        quiet=False,
        verbose=False,
    )


def _remembered(project_dir: Path, tmp_path: Path) -> build_shortcut.Shortcut:
    plan = plan_for(project_dir)
    return build_shortcut.Shortcut(
        load={"project_dir": project_dir, "service": "api", "overrides": {"platforms": None}},
        settings="f" * 64,
        mtime=plan.mtime,
        files="e" * 64,
        revision="abc1234",
        base_pull=plan.base_pull,
        inputs=RecordInputs.of(plan, ("*.so",)),
        plan=PlanOutputs(target=plan.target, cache_dir=plan.cache_dir, service=plan.service),
        build_plan=plan.to_record(),
        warnings=("a warning",),
        output=OutputSpec(oci_layout=tmp_path / "out", tag="v1"),
        release=build_shortcut.RememberedRelease(
            settings=ReleaseSettings(
                target="lambda",
                refuse_dirty=True,
                project_root=project_dir,
                production_arch=AMD64,
                templates=("{env}-latest",),
            ),
            repository=Reference("127.0.0.1:5555", "team/api"),
            tag="v1",
            git_sha="abc1234",
            create_repository=True,
        ),
        json_output=True,
        quiet=False,
        verbose=True,
        python_versions=("3.12", "3.13"),
    )


def _drop(path: tuple[object, ...]):
    def change(data):
        target = data
        for step in path[:-1]:
            target = target[step]
        del target[path[-1]]

    return change


# Checksummed build-shortcut records of the wrong types: each reads as absent (the full build
# runs), never as a shortcut whose fields fail later, in the middle of the answer.
WRONG_SHAPES = {
    "load with another key": _put(("load", "colour"), to="blue"),
    "load's service a number": _put(("load", "service"), to=1),
    "load's project folder a list": _put(("load", "project_dir"), to=["/x"]),
    "load's overrides a list": _put(("load", "overrides"), to=[["platforms", None]]),
    "load a list": _put(("load",), to=[]),
    "settings a number": _put(("settings",), to=1),
    "mtime a string": _put(("mtime",), to="0"),
    "mtime a float": _put(("mtime",), to=1.5),
    "mtime a boolean": _put(("mtime",), to=True),
    "files a list": _put(("files",), to=["e"]),
    "revision a number": _put(("revision",), to=1234),
    "the base's registry a number": _put(("base_pull", "registry"), to=5555),
    "the base's tag a number": _put(("base_pull", "tag"), to=3),
    "the base's digest not a digest": _put(("base_pull", "digest"), to="sha256:x"),
    "the inputs' folders a string": _put(("inputs", "folders"), to="/srv"),
    "the inputs' plan a number": _put(("inputs", "plan"), to=1),
    "the inputs' allow rules a string": _put(("inputs", "allow"), to="*.so"),
    "the inputs' service folder a list": _put(("inputs", "service_dir"), to=["/x"]),
    "the plan's target a number": _put(("plan", "target"), to=1),
    "the plan's cache folder a list": _put(("plan", "cache_dir"), to=["/x"]),
    "the build plan a list": _put(("build_plan",), to=[["a", 1]]),
    "warnings a string": _put(("warnings",), to="a warning"),
    "a warning a number": _put(("warnings", 0), to=1),
    "the output's tag a number": _put(("output", "tag"), to=1),
    "the output's layout a number": _put(("output", "oci_layout"), to=1),
    "the archive's repository a list": _put(("output", "archive_repository"), to=["r"]),
    "the release's tag a number": _put(("release", "tag"), to=1),
    "the release's git sha a number": _put(("release", "git_sha"), to=1234),
    "create-repository a string": _put(("release", "create_repository"), to="false"),
    "refuse-dirty a string": _put(("release", "settings", "refuse_dirty"), to="false"),
    "the release's templates a string": _put(("release", "settings", "templates"), to="{env}"),
    "the release's target a number": _put(("release", "settings", "target"), to=1),
    "the release's root a list": _put(("release", "settings", "project_root"), to=["/x"]),
    "the report's json a string": _put(("report", "json"), to="false"),
    "the report's quiet a number": _put(("report", "quiet"), to=0),
    "python versions a string": _put(("python_versions",), to="3.13"),
    "a python version a float": _put(("python_versions", 1), to=3.13),
    "no python versions": _drop(("python_versions",)),
}


def test_a_shortcut_record_of_wrong_types_counts_as_absent(project, tmp_path, monkeypatch):  # noqa: F811
    import copy

    monkeypatch.setenv("CROSSDOCK_CACHE_DIR", str(tmp_path / "machine-cache"))
    good = _remembered(project, tmp_path).to_json()
    records = build_shortcut._shortcuts()
    assert records.store("key", good)
    assert records.load("key", build_shortcut.Shortcut.from_json) == _remembered(project, tmp_path)
    accepted = []
    for name, change in WRONG_SHAPES.items():
        altered = copy.deepcopy(good)
        change(altered)
        assert json.dumps(altered) != json.dumps(good), name
        assert records.store("key", altered)
        if records.load("key", build_shortcut.Shortcut.from_json) is not None:
            accepted.append(name)
    assert accepted == []


def test_a_shortcut_record_of_wrong_types_is_answered_by_the_full_build(
    project,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    """The command line's record says what load_config takes in a shape it does not take: the
    build is not answered from it (and says nothing: no traceback from the check)."""
    monkeypatch.setenv("CROSSDOCK_CACHE_DIR", str(tmp_path / "machine-cache"))
    monkeypatch.chdir(tmp_path)
    good = _remembered(project, tmp_path).to_json()
    for change in (WRONG_SHAPES["load with another key"], WRONG_SHAPES["load's service a number"]):
        altered = json.loads(json.dumps(good))
        change(altered)
        build_shortcut._shortcuts().store(build_shortcut.command_line_key(ARGS), altered)
        assert build_shortcut.answer_from_record(ARGS) is False
