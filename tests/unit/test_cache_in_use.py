"""Every command holds the cache in use for as long as it uses the cache's entries, so that a
``crossdock cache prune`` started meanwhile waits instead of removing them (issue 14's
follow-up: only ``crossdock.build.build`` held it, and a push after it, a build answered from
its record, ``verify`` and ``rebase`` read cached blobs and records without it).

Each test runs the command with a probe where it uses its entries (reads a blob, writes an
output, pushes): ``prune_would_wait`` tries the prune's own lock from another open file."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from crossdock import build as build_module
from crossdock import rebase as rebase_module
from crossdock import verify as verify_package
from crossdock.backends import lastbuild
from crossdock.build import OutputSpec, PlanOutputs
from crossdock.cache import CacheLayout
from crossdock.cachelock import IN_USE_LOCK, locked
from crossdock.cacheusage import prune
from crossdock.cli import _register_commands, app, build_report, build_shortcut, release_report
from crossdock.image import sha256_of
from crossdock.publish import pipeline
from crossdock.registry import light
from crossdock.registry.reference import Reference
from crossdock.sinks import write_oci_layout
from crossdock.sources import open_images
from crossdock.verify import engine
from tests.support.cachelock import prune_would_wait
from tests.support.images import image_set
from tests.unit.backends.test_lastbuild import (  # noqa: F401 - project: the fixture
    outcome_for,
    plan_for,
    project,
)

REPOSITORY = Reference("127.0.0.1:5555", "team/api")


class _Probe:
    """Where the command used the cache, and whether a prune would have waited then."""

    def __init__(self, cache: Path) -> None:
        self.cache = cache
        self.seen: dict[str, bool] = {}

    def __call__(self, where: str) -> None:
        self.seen[where] = prune_would_wait(self.cache)

    def publish(self, publishing: object, image_set: object, **_options: object) -> object:
        """The release's stand-in (the CLI's ``publish``): it reads the layers it pushes."""
        self("pushed")
        return SimpleNamespace(publishing=publishing, image_set=image_set)


def _publishing() -> SimpleNamespace:
    return SimpleNamespace(
        request=SimpleNamespace(repository=REPOSITORY, tag="v1"), create_repository=False
    )


# -- crossdock build --push ---------------------------------------------------------------------


def test_a_build_holds_the_cache_until_its_push_has_read_the_layers(project, monkeypatch):  # noqa: F811
    # The push reads the built layers from the blob cache after build() returned: a prune
    # between the two removed them under the push.
    cache = plan_for(project).cache_dir
    monkeypatch.setenv("CROSSDOCK_CACHE_DIR", str(cache))  # (as the project says: not the CI's)
    probe = _Probe(cache)
    outcome = outcome_for(project)

    def build(plan, backend, progress, output, *, smoke):
        return outcome  # (the real build holds the lock itself: the command's hold is tested)

    monkeypatch.setattr(build_module, "build", build)
    monkeypatch.setattr(pipeline, "prepare_release", lambda *_a, **_k: (None, _publishing()))
    _register_commands(["build"])
    from crossdock.cli import build_cmd

    monkeypatch.setattr(build_cmd, "publish", probe.publish)
    monkeypatch.setattr(build_report, "report_build", lambda *_a, **_k: None)
    result = CliRunner().invoke(
        app,
        ["build", "-C", str(project), "--service", "api", "--push", f"{REPOSITORY}:v1", "-q"],
    )
    assert result.exit_code == 0, result.output
    assert probe.seen == {"pushed": True}
    assert not prune_would_wait(cache)  # the command is over


# -- crossdock build answered from its record ---------------------------------------------------


@pytest.fixture
def recorded(project, tmp_path, monkeypatch):  # noqa: F811
    """A build's record that answers ``crossdock build ARGS`` (with a plain --push): the plan,
    the files and the base as recorded; git, the config's cascade and the registry stand-ins."""
    monkeypatch.setenv("CROSSDOCK_CACHE_DIR", str(tmp_path / "machine-cache"))
    monkeypatch.chdir(tmp_path)
    plan = plan_for(project)
    lines = [b"print('hello')\n"]
    inputs = lastbuild.RecordInputs.of(plan, ())
    shortcut = build_shortcut.Shortcut(
        load={"project_dir": Path(project), "service": "api", "overrides": {}},
        settings="f" * 64,
        mtime=plan.mtime,
        files=hashlib.sha256(b"\0".join(lines)).hexdigest(),
        revision="abc1234",
        base_pull=plan.base_pull,
        inputs=inputs,
        plan=PlanOutputs(target=plan.target, cache_dir=plan.cache_dir, service=plan.service),
        build_plan=plan.to_record(),
        warnings=(),
        output=OutputSpec(oci_layout=tmp_path / "out"),
        release=build_shortcut.RememberedRelease(
            settings=pipeline.ReleaseSettings.of(None),
            repository=REPOSITORY,
            tag="v1",
            git_sha=None,
            create_repository=False,
        ),
        json_output=False,
        quiet=True,
        verbose=False,
    )
    args = ["-C", str(project), "--service", "api", "--push", f"{REPOSITORY}:v1"]
    assert build_shortcut._shortcuts().store(
        build_shortcut.command_line_key(args), shortcut.to_json()
    )
    monkeypatch.setattr(build_shortcut, "_lines_if_plan_unchanged", lambda _s: lines)
    monkeypatch.setattr(build_shortcut.RememberedRelease, "publishing", lambda _r: _publishing())
    monkeypatch.setattr(build_report, "report_build", lambda *_a, **_k: None)
    probe = _Probe(plan.cache_dir)
    monkeypatch.setattr(release_report, "publish", probe.publish)
    return SimpleNamespace(args=args, probe=probe, outcome=outcome_for(project))


class _BaseUnmoved:
    """The base's registry (``LightClient``): the tag still names the recorded digest."""

    def __init__(self, _registry: str) -> None:
        pass

    def __enter__(self) -> _BaseUnmoved:
        return self

    def __exit__(self, *_exc: object) -> None:
        pass

    def get_manifest(self, _reference: Reference) -> SimpleNamespace:
        return SimpleNamespace(digest=sha256_of(b"base"))


def test_a_build_answered_from_its_record_holds_the_cache_while_it_uses_the_layers(
    recorded, monkeypatch
):
    # The answer checks the record's layers in the blob cache, links them into the OCI
    # layout and pushes them, before typer is imported and without build(): no lock was held.
    probe = recorded.probe

    def load_outcome(cache_dir, key):
        probe("the record's layers checked")
        return recorded.outcome

    def deliver(outcome, plan, progress, output, *, smoke=False):
        probe("outputs written")

    monkeypatch.setattr(light, "LightClient", _BaseUnmoved)
    monkeypatch.setattr(lastbuild, "load_outcome", load_outcome)
    monkeypatch.setattr(build_shortcut, "deliver", deliver)
    assert build_shortcut.answer_from_record(recorded.args) is True
    assert probe.seen == {
        "the record's layers checked": True,
        "outputs written": True,
        "pushed": True,
    }
    assert not prune_would_wait(probe.cache)


def test_a_rebuild_on_the_recorded_plan_holds_the_cache_until_its_push_ends(recorded, monkeypatch):
    # A code edit: the build runs here on the recorded plan, then pushes what it built.
    def build(plan, backend, progress, output, *, smoke=False):
        return recorded.outcome

    monkeypatch.setattr(build_shortcut, "_recorded_outcome", lambda *_a: None)  # files changed
    monkeypatch.setattr(build_module, "build", build)
    monkeypatch.setattr(build_shortcut, "command_line", None)  # nothing remembered
    assert build_shortcut.answer_from_record(recorded.args) is True
    assert recorded.probe.seen == {"pushed": True}


# -- crossdock verify ---------------------------------------------------------------------------


def test_verify_holds_the_cache_while_it_reads_the_images(tmp_path, monkeypatch):
    # verify keeps layer indexes, observations and verdicts in the cache by layer digest, and
    # a registry image's blobs are the cache's files.
    cache = tmp_path / "machine-cache"
    monkeypatch.setenv("CROSSDOCK_CACHE_DIR", str(cache))
    layout = write_oci_layout(image_set(tmp_path / "blobs"), tmp_path / "layout")
    probe = _Probe(cache)
    real = verify_package.verify_platform_image

    def verify_platform_image(image, **options):
        probe(image.platform.architecture)
        return real(image, **options)

    monkeypatch.setattr(verify_package, "verify_platform_image", verify_platform_image)
    _register_commands(["verify"])
    result = CliRunner().invoke(app, ["verify", f"oci:{layout}", "--json"])
    assert result.exit_code in {0, 6}, result.output  # (verified: this image has no Python)
    assert probe.seen == {"arm64": True, "amd64": True}
    assert not prune_would_wait(cache)


def test_open_images_holds_the_cache_until_its_context_ends(tmp_path):
    cache = tmp_path / "cache"
    layout = write_oci_layout(image_set(tmp_path / "blobs"), tmp_path / "layout")
    with open_images(f"oci:{layout}", cache_dir=cache) as sets:
        assert sets
        assert prune_would_wait(cache)
    assert not prune_would_wait(cache)
    with open_images(f"oci:{layout}") as sets:  # no cache: none held
        assert not prune_would_wait(cache)


def test_verify_image_holds_the_cache_it_is_given(tmp_path, monkeypatch):
    # The library's verification (crossdock.verify_image) reads and writes the cache's records.
    cache = tmp_path / "cache"
    image = image_set(tmp_path / "blobs").images[0]
    probe = _Probe(cache)
    real = engine.verify_fs

    def verify_fs(*args, **options):
        probe("verified")
        return real(*args, **options)

    monkeypatch.setattr(engine, "verify_fs", verify_fs)
    engine.verify_platform_image(image, declared_platform=image.platform, cache_dir=cache)
    assert probe.seen == {"verified": True}
    assert not prune_would_wait(cache)


# -- crossdock rebase ---------------------------------------------------------------------------


def test_rebase_holds_the_cache_until_its_outputs_are_written_and_pushed(tmp_path, monkeypatch):
    # The rebased layers are the cache's files (pulled into it): written to the OCI layout and
    # pushed after rebase() returned.
    cache = tmp_path / "machine-cache"
    monkeypatch.setenv("CROSSDOCK_CACHE_DIR", str(cache))
    probe = _Probe(cache)
    images = image_set(tmp_path / "blobs")

    def rebase(image, new_base, **_options):
        return SimpleNamespace(image_set=images, platforms=(), target=None)

    def write(image_set, root):
        probe("layout written")
        return root

    monkeypatch.setattr(rebase_module, "rebase", rebase)
    monkeypatch.setattr(pipeline, "prepare_release", lambda *_a, **_k: (None, _publishing()))
    _register_commands(["rebase"])
    from crossdock import sinks
    from crossdock.cli import push_cmd, rebase_cmd

    monkeypatch.setattr(sinks, "write_oci_layout", write)
    monkeypatch.setattr(push_cmd, "publish", probe.publish)
    monkeypatch.setattr(push_cmd, "render_release", lambda _r: None)
    monkeypatch.setattr(rebase_cmd, "replace", lambda publishing, **_changes: publishing)
    result = CliRunner().invoke(
        app,
        [
            "rebase",
            f"{REPOSITORY}:v1",
            "--base",
            "127.0.0.1:5555/library/python:3.13-slim",
            "--oci-layout",
            str(tmp_path / "out"),
            "--push",
            f"{REPOSITORY}:v1-rebased",
        ],
    )
    assert result.exit_code == 0, result.output
    assert probe.seen == {"layout written": True, "pushed": True}
    assert not prune_would_wait(cache)


class _StopError(Exception):
    """Raised by a probe once it has seen what the test is about."""


def _raise_stop() -> None:
    raise _StopError


def test_the_library_rebase_holds_the_cache_it_pulls_into(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    probe = _Probe(cache)

    def registries(*_args):
        probe("pulling")
        raise _StopError

    monkeypatch.setattr(rebase_module, "Registries", registries)
    with pytest.raises(_StopError):
        rebase_module.rebase(REPOSITORY.with_tag("v1"), REPOSITORY.with_tag("v2"), cache_dir=cache)
    assert probe.seen == {"pulling": True}
    assert not prune_would_wait(cache)


# -- a process holding the cache twice ----------------------------------------------------------


def _waiting_flocks(path: Path) -> int:
    """The flock requests waiting on ``path`` now (Linux's /proc/locks: ``->`` lines, the file
    named by its device, major:minor in hex, and inode)."""
    st = path.stat()
    where = f" {os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino} "
    with Path("/proc/locks").open() as locks:
        return sum(1 for line in locks if " -> FLOCK " in line and where in line)


def test_a_command_holding_the_cache_holds_it_again_while_a_prune_waits(tmp_path):
    # A command holds the cache and then calls build(), verify_image() or rebase(), which hold
    # it again from another open file: a prune waiting meanwhile for the first hold must not
    # make the second one wait (it would wait for the prune, which waits for the command).
    cache = tmp_path / "cache"
    waiting = threading.Event()
    with CacheLayout(cache).in_use():
        pruner = threading.Thread(
            target=prune, args=(cache,), kwargs={"max_size": 0, "on_wait": waiting.set}
        )
        pruner.start()
        assert waiting.wait(60)
        for _ in range(60_000):  # until the prune waits in flock() itself (at most a minute)
            if _waiting_flocks(cache / IN_USE_LOCK):
                break
            time.sleep(0.001)
        assert _waiting_flocks(cache / IN_USE_LOCK) == 1
        # As CacheLayout.in_use takes it, but raising (not hanging) if it had to wait.
        with locked(cache, exclusive=False, on_wait=_raise_stop):
            assert pruner.is_alive()
    pruner.join(60)
    assert not pruner.is_alive()
