"""The record of the last build (issue 14): keyed by every input, never answering for changed
inputs, never answering from a damaged record or for blobs no longer cached, never recording a
build that failed verification."""

from __future__ import annotations

import dataclasses
import functools
import io
from pathlib import Path

import pytest

from crossdock.backends import lastbuild
from crossdock.backends.base import BuildOutcome, BuildReport, LayerInfo, WheelInfo
from crossdock.build import make_plan
from crossdock.config import load_config
from crossdock.image import sha256_of
from crossdock.plan import BuildPlan
from tests.support.images import image_set

BASE = sha256_of(b"base index")


@pytest.fixture
def project(tmp_path):
    service = tmp_path / "backend" / "api"
    (service / "app").mkdir(parents=True)
    (service / "app" / "main.py").write_text("print('hello')\n")
    (service / "pyproject.toml").write_text('[project]\nname = "api"\nversion = "0"\n')
    (service / "uv.lock").write_text("version = 1\n")
    (tmp_path / "crossdock.toml").write_text(
        'platforms = ["linux/arm64", "linux/amd64"]\ntarget = "eks"\n'
        f'cache-dir = "{tmp_path / "cache"}"\n'
    )
    return tmp_path


def plan_for(project: Path, **overrides: object) -> BuildPlan:
    config = load_config(project_dir=project, service="api", environ={}, overrides=overrides)
    return make_plan(config, revision="abc1234")


def _blobs(plan: BuildPlan) -> Path:
    """Where the blob cache keeps sha256 blobs: a build's layers are all in the blob cache."""
    return plan.cache_dir / "blobs" / "sha256"


def outcome_for(folder: Path, *, passed: bool = True) -> BuildOutcome:
    images = image_set(folder)
    reports = tuple(
        BuildReport(
            platform=image.platform,
            base_digest=BASE,
            image_digest=image.digest,
            python_version="3.13",
            glibc_version="2.41",
            python_platform="x",
            wheels=(WheelInfo("numpy", "2.5.5", ("cp313-cp313-manylinux_2_28",)),),
            layers=(
                LayerInfo(
                    "app",
                    image.layers[0].descriptor.digest,
                    image.config.diff_ids[0],
                    image.layers[0].descriptor.size,
                ),
            ),
            verification=lastbuild.RecordedVerification(
                {"passed": passed, "failures": [], "counts": {"elf": 12, "files": 294}}
            ),
        )
        for image in images.images
    )
    return BuildOutcome(images, reports)


def test_the_key_changes_with_every_input_and_only_then(project):
    plan = plan_for(project)
    key = lastbuild.inputs_key(plan, BASE, ())
    assert lastbuild.inputs_key(plan_for(project), BASE, ()) == key  # same inputs, same key

    service = project / "backend" / "api"
    changes = {
        "base tag moved": lambda: lastbuild.inputs_key(plan, sha256_of(b"moved"), ()),
        "allow rule": lambda: lastbuild.inputs_key(plan, BASE, ("*.so",)),
        "config": lambda: lastbuild.inputs_key(plan_for(project, bytecode=False), BASE, ()),
        "SOURCE_DATE_EPOCH": lambda: lastbuild.inputs_key(
            dataclasses.replace(plan, mtime=1), BASE, ()
        ),
    }
    keys = {name: make() for name, make in changes.items()}
    (service / "app" / "main.py").write_text("print('hello, world')\n")
    keys["code"] = lastbuild.inputs_key(plan, BASE, ())
    (service / "app" / "main.py").write_text("print('hello')\n")
    assert lastbuild.inputs_key(plan, BASE, ()) == key  # back to the same bytes
    (service / "uv.lock").write_text("version = 1\n# relocked\n")
    keys["lock"] = lastbuild.inputs_key(plan, BASE, ())
    (service / "uv.lock").write_text("version = 1\n")
    (service / "app" / "main.py").chmod(0o755)
    keys["mode"] = lastbuild.inputs_key(plan, BASE, ())
    assert key not in keys.values(), keys
    assert len(set(keys.values())) == len(keys)


def test_a_recorded_outcome_comes_back_with_the_same_bytes(project, tmp_path):
    plan = plan_for(project)
    key = lastbuild.inputs_key(plan, BASE, ())
    outcome = outcome_for(_blobs(plan))
    lastbuild.store_outcome(plan.cache_dir, key, outcome)
    loaded = lastbuild.load_outcome(plan.cache_dir, key)
    assert loaded is not None
    assert loaded.digest == outcome.digest
    assert loaded.image_set.index is not None and outcome.image_set.index is not None
    assert loaded.image_set.index.raw == outcome.image_set.index.raw
    for got, want in zip(loaded.image_set.images, outcome.image_set.images, strict=True):
        assert (got.platform, got.manifest.raw, got.config.raw) == (
            want.platform,
            want.manifest.raw,
            want.config.raw,
        )
        assert [b.path for b in got.layers] == [b.path for b in want.layers]
    assert [r.to_json()["wheels"] for r in loaded.reports] == [
        r.to_json()["wheels"] for r in outcome.reports
    ]
    assert all(layer.cached for r in loaded.reports for layer in r.layers)
    # What the answered build says it verified is what the recorded build checked.
    assert [r.verification and r.verification.counts for r in loaded.reports] == [
        {"elf": 12, "files": 294} for _ in outcome.reports
    ]
    from rich.console import Console

    from crossdock.cli.build_report import render_build

    console = Console(file=io.StringIO(), width=200, record=True)
    render_build(loaded, console)
    assert "verified (294 files checked)" in console.export_text()
    # Off a terminal the report is printed without rich (cli.plain_console), as rich prints
    # it there, at the width rich would take (COLUMNS here; 80 without it).
    from crossdock.cli.plain_console import PlainConsole

    for columns, verbose in (("80", False), ("60", True)):
        by_rich, plain = io.StringIO(), io.StringIO()
        render_build(loaded, Console(file=by_rich, width=int(columns)), verbose=verbose)
        plain_console = PlainConsole(functools.partial(_same, plain), Console, {"COLUMNS": columns})
        render_build(loaded, plain_console, verbose=verbose)  # type: ignore[arg-type]
        assert plain.getvalue() == by_rich.getvalue()
        assert "verified (294 files checked)" in plain.getvalue()
    # Another key (any input changed) finds nothing.
    assert lastbuild.load_outcome(plan.cache_dir, "0" * 64) is None


def _same(stream: io.StringIO) -> io.StringIO:
    return stream


def test_a_poisoned_record_is_ignored(project, tmp_path):
    plan = plan_for(project)
    key = lastbuild.inputs_key(plan, BASE, ())
    lastbuild.store_outcome(plan.cache_dir, key, outcome_for(_blobs(plan)))
    [record] = (plan.cache_dir / "records" / "last-build").glob("*.rec")
    data = record.read_bytes()
    # Point the record at another image: the payload no longer matches its checksum.
    poisoned = data.replace(b'"passed":true', b'"passed":true,"x":1', 1)
    assert poisoned != data
    record.write_bytes(poisoned)
    assert lastbuild.load_outcome(plan.cache_dir, key) is None
    # A record copied under another key is foreign too.
    record.write_bytes(data)
    other = record.with_name("f" * 64 + ".rec")
    other.write_bytes(data)
    assert lastbuild.load_outcome(plan.cache_dir, "f" * 64) is None
    assert lastbuild.load_outcome(plan.cache_dir, key) is not None


def test_a_record_whose_layer_is_gone_or_changed_is_not_used(project, tmp_path):
    plan = plan_for(project)
    key = lastbuild.inputs_key(plan, BASE, ())
    outcome = outcome_for(_blobs(plan))
    lastbuild.store_outcome(plan.cache_dir, key, outcome)
    assert lastbuild.load_outcome(plan.cache_dir, key) is not None
    layer = outcome.image_set.images[0].layers[0].path
    good = layer.read_bytes()
    layer.write_bytes(bytes([good[0] ^ 0xFF]) + good[1:])  # same size, other bytes
    assert lastbuild.load_outcome(plan.cache_dir, key) is None
    layer.write_bytes(good + b"x")
    assert lastbuild.load_outcome(plan.cache_dir, key) is None
    layer.unlink()
    assert lastbuild.load_outcome(plan.cache_dir, key) is None


def test_a_build_that_failed_verification_is_never_recorded(project, tmp_path):
    plan = plan_for(project)
    key = lastbuild.inputs_key(plan, BASE, ())
    lastbuild.store_outcome(plan.cache_dir, key, outcome_for(_blobs(plan), passed=False))
    assert lastbuild.load_outcome(plan.cache_dir, key) is None
    assert not (plan.cache_dir / "records" / "last-build").exists()


def test_key_moves_with_a_workspace_member_the_service_builds_from(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.uv.workspace]\nmembers = ["svc", "lib"]\n')
    for name in ("svc", "lib"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "pyproject.toml").write_text(
            f'[project]\nname = "{name}"\nversion = "0"\n[tool.crossdock]\napp = "svc:app"\n'
            f'cache-dir = "{tmp_path / "cache"}"\n'
        )
    (tmp_path / "lib" / "lib.py").write_text("VALUE = 1\n")
    plan = make_plan(load_config(project_dir=tmp_path / "svc", environ={}), revision="abc1234")
    assert (tmp_path / "lib").resolve() in plan.project.source_dirs
    before = lastbuild.inputs_key(plan, BASE, ())
    (tmp_path / "lib" / "lib.py").write_text("VALUE = 2\n")
    assert lastbuild.inputs_key(plan, BASE, ()) != before


def test_recorded_report_keeps_the_local_packages(project: Path, tmp_path: Path) -> None:
    plan = plan_for(project)
    outcome = outcome_for(_blobs(plan))
    local = (WheelInfo("svc", "0.1.0", ("py3-none-any",)),)
    reports = tuple(dataclasses.replace(r, local_packages=local) for r in outcome.reports)
    outcome = dataclasses.replace(outcome, reports=reports)
    key = lastbuild.inputs_key(plan, BASE, ())
    lastbuild.store_outcome(plan.cache_dir, key, outcome)
    recorded = lastbuild.load_outcome(plan.cache_dir, key)
    assert recorded is not None
    assert [r.local_packages for r in recorded.reports] == [local, local]


def test_the_record_inputs_kept_as_data_give_the_key_of_the_plan(project):
    # A build answered from its command line's shortcut (cli/build_shortcut.py) keeps these as
    # JSON and computes the key the full build computes, files read at that moment.
    plan = plan_for(project)
    inputs = lastbuild.RecordInputs.from_json(lastbuild.RecordInputs.of(plan, ("*.so",)).to_json())
    assert inputs.key(BASE) == lastbuild.inputs_key(plan, BASE, ("*.so",))
    assert inputs.key(BASE, inputs.service_lines()) == inputs.key(BASE)  # lines read once
    assert inputs.key(BASE) != lastbuild.inputs_key(plan, BASE, ())
    assert inputs.key(sha256_of(b"moved")) != inputs.key(BASE)
    main = project / "backend" / "api" / "app" / "main.py"
    before = inputs.key(BASE)
    main.write_text("print('edited')\n")
    assert inputs.key(BASE) != before
    assert inputs.key(BASE) == lastbuild.inputs_key(plan, BASE, ("*.so",))


def test_the_tree_hash_is_pathlibs_walk_and_moves_with_every_file(tmp_path: Path) -> None:
    import hashlib

    def by_pathlib(root: Path) -> str:  # how crossdock's own files were hashed before
        h = hashlib.sha256()
        for path in sorted(root.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                h.update(path.relative_to(root).as_posix().encode() + b"\0")
                h.update(path.read_bytes())
        return h.hexdigest()

    # Names whose order by string and by parts differ ("a-b/x" < "a/x" as strings only).
    for name in ("a/x.py", "a-b/x.py", "a.py", "a/b/c.toml", "z.py", "a/__pycache__/x.pyc"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(name.encode())
    first = lastbuild.tree_hash(tmp_path)
    assert first == by_pathlib(tmp_path)
    (tmp_path / "a" / "__pycache__" / "x.pyc").write_bytes(b"bytecode is not hashed")
    assert lastbuild.tree_hash(tmp_path) == first
    (tmp_path / "a-b" / "x.py").write_bytes(b"edited")
    assert lastbuild.tree_hash(tmp_path) != first
    assert lastbuild.tree_hash(tmp_path) == by_pathlib(tmp_path)
    edited = lastbuild.tree_hash(tmp_path)
    (tmp_path / "a-b" / "x.py").rename(tmp_path / "a-b" / "y.py")
    assert lastbuild.tree_hash(tmp_path) not in (first, edited)
    assert lastbuild.tree_hash(tmp_path) == by_pathlib(tmp_path)


def _put(path: tuple[object, ...], *, to: object):
    def change(payload):
        target = payload
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = to

    return change


_REPORT = ("images", 0, "report")
# Checksummed records of the wrong types: none of them is answered as the build's outcome.
WRONG_SHAPES = {
    "images an object": _put(("images",), to={"a": 1}),
    "an image a string": _put(("images", 0), to="image"),
    "a platform a list": _put(("images", 0, "platform"), to=["linux/arm64"]),
    "a manifest an object": _put(("images", 0, "manifest"), to={}),
    "layers a string": _put(("images", 0, "layers"), to="/x"),
    "an origin a number": _put(("images", 0, "origins", 0), to=1),
    "referrers a string": _put(("images", 0, "referrers"), to="r"),
    "the index a number": _put(("index",), to=1),
    "passed the string no": _put((*_REPORT, "verification", "passed"), to="no"),
    "passed a number": _put((*_REPORT, "verification", "passed"), to=1),
    "verification a list": _put((*_REPORT, "verification"), to=[True]),
    "a python version a number": _put((*_REPORT, "python_version"), to=3.13),
    "a glibc version a list": _put((*_REPORT, "glibc_version"), to=["2.41"]),
    "wheels an object": _put((*_REPORT, "wheels"), to={"numpy": 1}),
    "a wheel's tags a string": _put((*_REPORT, "wheels", 0, "tags"), to="cp313"),
    "a wheel's name a number": _put((*_REPORT, "wheels", 0, "name"), to=1),
    "a wheel's built-from-sdist a string": _put(
        (*_REPORT, "wheels", 0, "built_from_sdist"), to="false"
    ),
    "no local packages": lambda data: data["images"][0]["report"].pop("local_packages"),
    "a layer's size a string": _put((*_REPORT, "layers", 0, "size"), to="10"),
    "a layer's size a boolean": _put((*_REPORT, "layers", 0, "size"), to=True),
    "a layer's role a number": _put((*_REPORT, "layers", 0, "role"), to=0),
    "a layer's digest a number": _put((*_REPORT, "layers", 0, "digest"), to=0),
    "counts a list": _put((*_REPORT, "verification", "counts"), to=[294]),
    "a count a string": _put((*_REPORT, "verification", "counts", "files"), to="294"),
}


@pytest.mark.parametrize("shape", sorted(WRONG_SHAPES))
def test_a_record_of_wrong_types_is_not_used(project, shape):
    import json

    from crossdock.cache import CacheLayout

    plan = plan_for(project)
    key = lastbuild.inputs_key(plan, BASE, ())
    lastbuild.store_outcome(plan.cache_dir, key, outcome_for(_blobs(plan)))
    assert lastbuild.load_outcome(plan.cache_dir, key) is not None
    [record] = (plan.cache_dir / "records" / "last-build").glob("*.rec")
    payload = json.loads(record.read_bytes().partition(b"\n")[2])
    WRONG_SHAPES[shape](payload)
    records = CacheLayout(plan.cache_dir).records("last-build", version=lastbuild._RECORD_VERSION)
    assert records.store(key, payload)
    assert lastbuild.load_outcome(plan.cache_dir, key) is None
