"""``crossdock build`` answered before typer, pydantic and the build's stacks are imported, when
nothing has changed since the last build run with the same command line (issue 14).

The full build (``build_cmd``) leaves, under a key of its command line (the arguments, the folder
it ran in, the one variable its options read, crossdock's identity), what it took from that
command line and what its result was keyed by: the arguments it loaded the configuration with
and the cascade's fingerprint (``crossdock.config.settings_fingerprint``), SOURCE_DATE_EPOCH,
the git revision, the base's pull reference, and the inputs of its record's key
(``lastbuild.RecordInputs``: the plan, the service's folders, the allow rules).

Answering checks every one of them again, now: the cascade is read again (every file and
variable it reads, the project's discovery included), the revision and the epoch are read
again, the base's tag is resolved at its registry (a moved base is a change), and the service's
files, lock and pyproject files are hashed into the key the full build computes; the record
under that key is then loaded and checked as the full build loads it (``lastbuild.load_outcome``:
checksum, every layer blob still in the cache and unchanged), and delivered as the full build
delivers it (``crossdock.build.deliver``: the target's refusals, then the outputs; with
``--push``, the release, which checks the registry for every blob, manifest and tag, with the
git state read again). Anything different, missing or failing before the outputs are written
falls through to the full build, which reports what is wrong. Only the native backend is
answered here, to local outputs or a plain ``--push``; an ``--env`` release (its tags are
timestamped), ``--dry-run``, ``--smoke`` or the buildx backend always runs the full command.

When the plan is still the one recorded (the cascade's fingerprint, the epoch and the revision
as they were: an equal ``Config`` makes an equal plan) but the result is not (a code edit, a new
lock, a moved base), the native build runs here on the recorded plan (``BuildPlan.to_record``,
trusted only when its ``repr`` is the recorded one), without typer and without validating the
configuration again: the same backend, the same checks, the same outputs and the same bytes as
the full command (issue 14: a code-only rebuild).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crossdock.backends import lastbuild
from crossdock.build import OutputSpec, PlanOutputs, check_outputs, deliver
from crossdock.cache import CacheLayout, Records
from crossdock.config import machine_settings, settings_fingerprint
from crossdock.errors import CrossdockError
from crossdock.image.document import checked, optional, require, text_or_none, texts
from crossdock.layers import source_date_epoch
from crossdock.plan import BuildPlan, reference_from_record, reference_record
from crossdock.publish.git import head_revision
from crossdock.registry.reference import Reference

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from crossdock.backends.base import BuildOutcome
    from crossdock.publish.pipeline import Publishing, ReleaseSettings

__all__ = ["RememberedRelease", "Shortcut", "answer_from_record", "remember"]

_VERSION = 4  # 2: the files' digest; 3: the plan; 4: the Python versions compiled for
# The variables the options of ``crossdock build`` read (typer's ``envvar``): the command line
# means what it meant only if they are the same. tests/unit/cli/test_build_shortcut.py checks
# this against the command's options.
OPTION_VARIABLES = ("SERVICE_FOLDER",)


@dataclass(frozen=True)
class RememberedRelease:
    """A plain ``--push``: what its release took from the options and the configuration (the
    git state is read again at each answer)."""

    settings: ReleaseSettings
    repository: Reference
    tag: str
    git_sha: str | None
    create_repository: bool

    def publishing(self) -> Publishing:
        return self.settings.publishing(
            self.repository,
            env=None,
            tag=self.tag,
            git_sha=self.git_sha,
            dry_run=False,
            create_repository=self.create_repository,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "settings": self.settings.to_json(),
            "repository": reference_record(self.repository),
            "tag": self.tag,
            "git_sha": self.git_sha,
            "create_repository": self.create_repository,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RememberedRelease:
        from crossdock.publish.pipeline import ReleaseSettings

        return cls(
            settings=ReleaseSettings.from_json(require(data, "settings", dict, _WHAT)),
            repository=reference_from_record(require(data, "repository", dict, _WHAT)),
            tag=require(data, "tag", str, _WHAT),
            git_sha=text_or_none(data["git_sha"], _WHAT),
            create_repository=require(data, "create_repository", bool, _WHAT),
        )


@dataclass(frozen=True)
class Shortcut:
    """What a full build took from its command line, and what its result was keyed by."""

    load: dict[str, Any]  # load_config's arguments: project_dir, service and overrides
    settings: str  # settings_fingerprint of those
    mtime: int
    files: str  # the service's and lock files as they were (a hash of their lines)
    revision: str | None
    base_pull: Reference
    inputs: lastbuild.RecordInputs
    plan: PlanOutputs
    # The whole plan (BuildPlan.to_record): rebuilt from when the files changed.
    build_plan: dict[str, Any]
    warnings: tuple[str, ...]
    output: OutputSpec
    release: RememberedRelease | None
    json_output: bool
    quiet: bool
    verbose: bool
    # The Python version(s) of the bases the last build compiled bytecode for: a rebuild
    # starts the compiler child for them at once (``_prepare_compilers``).
    python_versions: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "load": {**self.load, "project_dir": str(self.load["project_dir"])},
            "settings": self.settings,
            "mtime": self.mtime,
            "files": self.files,
            "revision": self.revision,
            "base_pull": reference_record(self.base_pull),
            "inputs": self.inputs.to_json(),
            "plan": {
                "target": self.plan.target,
                "cache_dir": str(self.plan.cache_dir),
                "service": self.plan.service,
            },
            "build_plan": self.build_plan,
            "warnings": list(self.warnings),
            "output": {
                "oci_layout": _text(self.output.oci_layout),
                "docker_archive": _text(self.output.docker_archive),
                "tag": self.output.tag,
                "archive_repository": self.output.archive_repository,
            },
            "release": None if self.release is None else self.release.to_json(),
            "report": {"json": self.json_output, "quiet": self.quiet, "verbose": self.verbose},
            "python_versions": list(self.python_versions),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Shortcut:
        """What ``to_json`` wrote, each field of its type; a record of any other shape raises
        and is read as absent (the full build runs), never a shortcut that fails while it
        answers (``load`` goes to ``settings_fingerprint`` as keyword arguments)."""
        load = require(data, "load", dict, _WHAT)
        if set(load) != _LOAD_KEYS:
            raise ValueError(f"{_WHAT}: load_config's arguments are {sorted(_LOAD_KEYS)}")
        overrides = require(load, "overrides", dict, _WHAT)
        for name in overrides:
            checked(name, str, _WHAT)
        plan = require(data, "plan", dict, _WHAT)
        output = require(data, "output", dict, _WHAT)
        report = require(data, "report", dict, _WHAT)
        release = data["release"]
        return cls(
            load={
                "project_dir": Path(require(load, "project_dir", str, _WHAT)),
                "service": optional(load, "service", str, _WHAT),
                "overrides": overrides,
            },
            settings=require(data, "settings", str, _WHAT),
            mtime=require(data, "mtime", int, _WHAT),
            files=require(data, "files", str, _WHAT),
            revision=text_or_none(data["revision"], _WHAT),
            base_pull=reference_from_record(require(data, "base_pull", dict, _WHAT)),
            inputs=lastbuild.RecordInputs.from_json(require(data, "inputs", dict, _WHAT)),
            plan=PlanOutputs(
                target=require(plan, "target", str, _WHAT),
                cache_dir=Path(require(plan, "cache_dir", str, _WHAT)),
                service=require(plan, "service", str, _WHAT),
            ),
            build_plan=require(data, "build_plan", dict, _WHAT),
            warnings=texts(data["warnings"], _WHAT),
            output=OutputSpec(
                oci_layout=_path(text_or_none(output["oci_layout"], _WHAT)),
                docker_archive=_path(text_or_none(output["docker_archive"], _WHAT)),
                tag=require(output, "tag", str, _WHAT),
                archive_repository=text_or_none(output["archive_repository"], _WHAT),
            ),
            release=None
            if release is None
            else RememberedRelease.from_json(checked(release, dict, _WHAT)),
            json_output=require(report, "json", bool, _WHAT),
            quiet=require(report, "quiet", bool, _WHAT),
            verbose=require(report, "verbose", bool, _WHAT),
            python_versions=texts(data["python_versions"], _WHAT),
        )


_WHAT = "a build-shortcut record"
# load_config's arguments, as crossdock.cli.common.load_arguments makes them.
_LOAD_KEYS = frozenset({"project_dir", "service", "overrides"})


def _text(path: Path | None) -> str | None:
    return None if path is None else str(path)


def _path(text: str | None) -> Path | None:
    return None if text is None else Path(text)


# The command line of this process (``crossdock build ...``: the arguments after ``build``), set
# by ``crossdock.cli.main``; None when the command runs otherwise (a test's CliRunner), and
# then nothing is remembered.
command_line: list[str] | None = None


# The option whose folder is not part of the key: the same build written to another OCI layout
# folder (a new folder per build, as scripts and the benchmark do) is the same build.
_LAYOUT_OPTION = "--oci-layout"
_ANY_FOLDER = "\0FOLDER"


def layout_folder(arguments: Sequence[str]) -> tuple[list[str], str | None]:
    """``arguments`` with the folder of their one ``--oci-layout FOLDER`` (two words, a bare
    path: no transport, no option-like name) replaced by a stand-in, and that folder; the
    arguments as they are and None otherwise. ``remember`` checks that typer read the folder
    from the same place, or keeps nothing."""
    places = [i for i, word in enumerate(arguments) if word == _LAYOUT_OPTION]
    if len(places) != 1 or places[0] + 1 >= len(arguments):
        return list(arguments), None
    at = places[0] + 1
    folder = arguments[at]
    if not folder or folder.startswith("-") or ":" in folder:
        return list(arguments), None
    return [*arguments[:at], _ANY_FOLDER, *arguments[at + 1 :]], folder


def command_line_key(arguments: Sequence[str], environ: Mapping[str, str] | None = None) -> str:
    """The key of a command line: its arguments (an OCI layout's folder left out, see
    ``layout_folder``), where it runs, the variables its options read and crossdock itself."""
    arguments, _ = layout_folder(arguments)
    env = os.environ if environ is None else environ
    h = hashlib.sha256()
    for part in (
        f"build-shortcut/{_VERSION}",
        lastbuild.crossdock_identity(),
        json.dumps(list(arguments)),
        str(Path.cwd().resolve()),
        json.dumps({name: env.get(name) for name in OPTION_VARIABLES}),
    ):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


def _shortcuts() -> Records:
    # The machine's cache folder (config's rule): found before the project's settings are read.
    return CacheLayout(machine_settings().cache_dir).records("build-shortcut", version=_VERSION)


def remember(
    plan: BuildPlan,
    outcome: BuildOutcome,
    *,
    load: dict[str, Any],
    allow: tuple[str, ...],
    output: OutputSpec,
    release: RememberedRelease | None,
    json_output: bool,
    quiet: bool,
    verbose: bool,
) -> None:
    """After a full native build (to local outputs, or pushed with a plain ``--push``): what the
    next identical command line checks to answer from the record (nothing when this process
    was not run as ``crossdock build``)."""
    if command_line is None or not all(
        getattr(r.verification, "passed", False) for r in outcome.reports
    ):
        return
    inputs = lastbuild.RecordInputs.of(plan, allow)
    shortcut = Shortcut(
        load=load,
        settings=settings_fingerprint(**load),
        mtime=plan.mtime,
        files=_lines_digest(inputs.service_lines()),
        revision=_revision_annotation(plan),
        base_pull=plan.base_pull,
        inputs=inputs,
        plan=PlanOutputs(target=plan.target, cache_dir=plan.cache_dir, service=plan.service),
        build_plan=plan.to_record(),
        warnings=tuple(plan.warnings),
        output=output,
        release=release,
        json_output=json_output,
        quiet=quiet,
        verbose=verbose,
        python_versions=tuple(sorted({r.python_version for r in outcome.reports}))
        if plan.bytecode
        else (),
    )
    _, folder = layout_folder(command_line)
    if folder is not None and output.oci_layout != Path(folder):
        return  # typer read the command line otherwise than layout_folder: keep nothing
    _shortcuts().store(command_line_key(command_line), shortcut.to_json())


def _revision_annotation(plan: BuildPlan) -> str | None:
    return plan.annotations.get("org.opencontainers.image.revision")


def answer_from_record(arguments: Sequence[str]) -> bool:
    """Answer ``crossdock build ARGUMENTS`` from the record of the last build when nothing it
    depends on has changed, or rebuild on the recorded plan when only what the plan is built
    from has (see the module's doc); False: run the full build."""
    shortcut = _shortcuts().load(command_line_key(arguments), Shortcut.from_json)
    if shortcut is None:
        return False
    _, folder = layout_folder(arguments)
    if folder is not None:
        # The same command line but for the folder: the same build, written there.
        shortcut = replace(shortcut, output=replace(shortcut.output, oci_layout=Path(folder)))
    service_lines = _lines_if_plan_unchanged(shortcut)
    if service_lines is None:
        return False
    publishing = None
    if shortcut.release is not None:
        # Before anything is printed, as the full build asks git before building: a refused
        # dirty tree (or any other problem) is the full build's to report.
        try:
            publishing = shortcut.release.publishing()
        except (CrossdockError, OSError):
            return False
    # From here the cache's entries are used: the record's layers checked, linked into the
    # outputs and pushed (or built again): a `crossdock cache prune` waits for the answer to
    # end, as for a full build (the cache's lock, held shared; one open and flock).
    with CacheLayout(shortcut.plan.cache_dir).in_use():
        return _answer(shortcut, service_lines, publishing)


def _answer(shortcut: Shortcut, service_lines: list[bytes], publishing: Publishing | None) -> bool:
    """The recorded result delivered (and released) when the files are as recorded and the
    base has not moved; else the rebuild on the recorded plan."""
    outcome = None
    if _lines_digest(service_lines) == shortcut.files:
        outcome = _recorded_outcome(shortcut, service_lines)
    if outcome is None:
        return _rebuild(shortcut, publishing)
    from crossdock.cli.build_report import report_build
    from crossdock.cli.console import progress

    with progress.shown(quiet=shortcut.quiet):
        for warning in shortcut.warnings:
            progress(None, f"warning: {warning}")
        check_outputs(shortcut.output)
        progress(None, "nothing changed since the last build: its verified result reused")
        deliver(outcome, shortcut.plan, progress, shortcut.output)
        release = None
        if publishing is not None:
            from crossdock.cli.release_report import publish

            release = publish(publishing, outcome.image_set, checked=True, read_first=True)
    report_build(outcome, shortcut.json_output, release, verbose=shortcut.verbose)
    return True


def _lines_if_plan_unchanged(shortcut: Shortcut) -> list[bytes] | None:
    """The service's and lock files' lines, read now, when the plan a full build would make
    now is the recorded one: the cascade's fingerprint (an equal ``Config``), the epoch and the
    git revision as they were; else None."""
    try:
        if settings_fingerprint(**shortcut.load) != shortcut.settings:
            return None
        if source_date_epoch() != shortcut.mtime:
            return None
        if head_revision(shortcut.inputs.service_dir) != shortcut.revision:
            return None
        return shortcut.inputs.service_lines()
    except (CrossdockError, OSError):
        return None  # the full build meets it again, and says what is wrong


def _recorded_outcome(shortcut: Shortcut, service_lines: list[bytes]) -> BuildOutcome | None:
    """The recorded outcome when the base's tag still resolves to the recorded digest (the
    files were compared first: a code edit is rebuilt without this registry round trip)."""
    try:
        # The standard library's HTTP (crossdock.registry.light): anything it declines, the
        # full build does again with the full client.
        from crossdock.registry.light import LightClient

        with LightClient(shortcut.base_pull.registry) as client:
            base_digest = client.get_manifest(shortcut.base_pull).digest
        key = shortcut.inputs.key(base_digest, service_lines)
    except (CrossdockError, OSError):
        return None  # the full build meets it again, and says what is wrong
    return lastbuild.load_outcome(shortcut.plan.cache_dir, key)


def _recorded_plan(shortcut: Shortcut) -> BuildPlan | None:
    """The recorded plan, when it is exactly the one the full build made (its ``repr``)."""
    try:
        plan = BuildPlan.from_record(shortcut.build_plan)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, CrossdockError):
        return None  # a record of another shape: the full build runs
    return plan if repr(plan) == shortcut.inputs.plan else None


def _rebuild(shortcut: Shortcut, publishing: Publishing | None) -> bool:
    """The native build of the recorded plan, delivered, released and remembered as the full
    command does it (crossdock.cli.build_cmd); False when the plan cannot be trusted."""
    plan = _recorded_plan(shortcut)
    if plan is None:
        return False
    _prepare_compilers(plan, shortcut.python_versions)
    from crossdock.backends.native import NativeBackend
    from crossdock.build import build
    from crossdock.cli.build_report import report_build
    from crossdock.cli.console import progress

    with progress.shown(quiet=shortcut.quiet):
        outcome = build(plan, NativeBackend(allow=shortcut.inputs.allow), progress, shortcut.output)
        release = None
        if publishing is not None:
            from crossdock.cli.release_report import publish

            release = publish(publishing, outcome.image_set, checked=True)
    remember(
        plan,
        outcome,
        load=shortcut.load,
        allow=shortcut.inputs.allow,
        output=shortcut.output,
        release=shortcut.release,
        json_output=shortcut.json_output,
        quiet=shortcut.quiet,
        verbose=shortcut.verbose,
    )
    report_build(outcome, shortcut.json_output, release, verbose=shortcut.verbose)
    return True


def _prepare_compilers(plan: BuildPlan, versions: tuple[str, ...]) -> None:
    """Start the bytecode compiler child of each Python the last build compiled for, now: its
    interpreter starts and imports (~0.1-0.2 s) while this process imports and runs the build
    up to the app layer, whose compile then waits for no interpreter (issue 14: a code-only
    rebuild). The build picks its interpreter as before (``resolve.bytecode_python``), and
    takes this child only if it is that interpreter's, with the same environment: the same
    command, environment and input as a child started at the compile, so the same bytes. One
    not taken is ended when crossdock exits."""
    if not plan.bytecode:
        return
    from crossdock.resolve.bytecode import find_host_python, prepare_compiler

    for version in versions:
        python = find_host_python(version, preferred=plan.bytecode_python)
        if python is not None:
            prepare_compiler(python)


def _lines_digest(lines: list[bytes]) -> str:
    return hashlib.sha256(b"\0".join(lines)).hexdigest()
