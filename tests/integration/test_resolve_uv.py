"""Resolution with the real uv binary against the real PyPI: wheels for both platforms, a pure
sdist built on the host, a native sdist refused, and missing/stale locks refused."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from uv import find_uv_bin

from crossdock.cache import CacheLayout, Records
from crossdock.errors import LockError, ResolveError
from crossdock.platform import AMD64, ARM64
from crossdock.resolve import check_lock, export_locked, install_dependencies, resolve
from crossdock.resolve.uv import Uv
from crossdock.wheeltags import wheel_target

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_API = REPO / "example" / "backend" / "api"
PROJECTS = REPO / "tests" / "data" / "projects"
GLIBC = "2.41"  # the stage's Debian trixie bases
PYTHON = "3.13"
IMAGE_PYTHON = "/usr/bin/python3.13"
# ELF e_machine values (System V gABI): what a native file in each image must say.
E_MACHINE = {AMD64: 62, ARM64: 183}
SO_SUFFIX = {AMD64: "x86_64-linux-gnu", ARM64: "aarch64-linux-gnu"}


@pytest.fixture(autouse=True)
def _uv_python(monkeypatch, host_python):
    # How a user names the host interpreter for uv; crossdock passes the environment on.
    monkeypatch.setenv("UV_PYTHON", host_python)


def _copy_project(source: Path, destination: Path, *, lock: bool = True) -> Path:
    shutil.copytree(
        source, destination, ignore=shutil.ignore_patterns(".venv", "uv.lock", "__pycache__")
    )
    if lock:
        subprocess.run([find_uv_bin(), "lock", "--quiet"], cwd=destination, check=True)
    return destination


@pytest.fixture(scope="module")
def example_project(tmp_path_factory, host_python) -> Path:
    destination: Path = tmp_path_factory.mktemp("example") / "api"
    shutil.copytree(
        EXAMPLE_API, destination, ignore=shutil.ignore_patterns(".venv", "uv.lock", "__pycache__")
    )
    env = {**os.environ, "UV_PYTHON": host_python}
    subprocess.run([find_uv_bin(), "lock", "--quiet"], cwd=destination, check=True, env=env)
    return destination


def _e_machine(path: Path) -> int:
    header = path.read_bytes()[:20]
    assert header[:4] == b"\x7fELF", path
    # e_machine is the 16-bit field at offset 18; byte 5 (EI_DATA) says its byte order.
    order = "<" if header[5] == 1 else ">"
    return int(struct.unpack(f"{order}H", header[18:20])[0])


@pytest.mark.parametrize("platform", [ARM64, AMD64], ids=["arm64", "amd64"])
def test_example_installs_the_target_platforms_wheels(example_project, tmp_path, platform):
    target_dir = tmp_path / "deps"
    resolution = resolve(
        example_project,
        platform,
        python_version=PYTHON,
        glibc=GLIBC,
        target_dir=target_dir,
        image_python=IMAGE_PYTHON,
    )
    suffix = SO_SUFFIX[platform]
    assert (target_dir / "numpy" / "_core" / f"_multiarray_umath.cpython-313-{suffix}.so").is_file()
    # Every native file in the tree is for the target CPU, none for the host's.
    shared_objects = [p for p in target_dir.rglob("*.so*") if p.is_file()]
    assert len(shared_objects) > 10
    assert {_e_machine(p) for p in shared_objects} == {E_MACHINE[platform]}

    names = {dist.name for dist in resolution.distributions}
    assert {"fastapi", "uvicorn", "numpy", "pillow", "cryptography", "pydantic", "orjson"} <= names
    assert "pytest" not in names  # the dev group stays out of images
    assert not list(target_dir.glob("pytest*"))
    assert "api" not in names  # the service itself is copied as files, not installed
    assert "colorama" not in names  # click's Windows-only dependency
    numpy = next(dist for dist in resolution.distributions if dist.name == "numpy")
    arch = "aarch64" if platform == ARM64 else "x86_64"
    assert all(tag.startswith("cp313-cp313-manylinux") and tag.endswith(arch) for tag in numpy.tags)
    assert not any(dist.built_from_sdist for dist in resolution.distributions)

    assert not list(target_dir.rglob("*.pyc"))  # no bytecode from the host's Python
    assert (target_dir / "bin" / "uvicorn").read_text().splitlines()[0] == f"#!{IMAGE_PYTHON}"
    assert resolution.target.uv_python_platform == f"{arch}-manylinux_2_40"
    assert "--hash=sha256:" in resolution.requirements


def test_amd64_tree_runs_the_lambda_handler(example_project, tmp_path, host_python):
    """The host is amd64: its Python 3.13 can run what was installed for linux/amd64."""
    target_dir = tmp_path / "deps"
    resolve(example_project, AMD64, python_version=PYTHON, glibc=GLIBC, target_dir=target_dir)
    code = (
        "import json; from app.lambda_handler import handler; "
        "print(json.dumps(handler({'n': 5}, None)))"
    )
    completed = subprocess.run(
        [
            host_python,
            "-I",
            "-c",
            f"import sys; sys.path[:0] = {[str(target_dir), str(example_project)]!r}; {code}",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(completed.stdout)
    assert result["machine"] == "x86_64"
    assert result["sum_of_squares"] == 30
    assert result["orjson"] == '{"n":5}'


def test_cache_key_is_stable_and_per_platform(example_project):
    arm64 = wheel_target(ARM64, GLIBC, PYTHON)
    first = export_locked(example_project, arm64).cache_key
    assert export_locked(example_project, arm64).cache_key == first
    assert export_locked(example_project, wheel_target(AMD64, GLIBC, PYTHON)).cache_key != first
    assert export_locked(example_project, wheel_target(ARM64, "2.34", PYTHON)).cache_key != first


@pytest.mark.parametrize("platform", [ARM64, AMD64], ids=["arm64", "amd64"])
def test_pure_python_sdist_is_built_on_the_host_and_installed(tmp_path, platform):
    project = _copy_project(PROJECTS / "pure-sdist", tmp_path / "project")
    target_dir = tmp_path / "deps"
    resolution = resolve(
        project, platform, python_version=PYTHON, glibc=GLIBC, target_dir=target_dir
    )
    by_name = {str(dist.name): dist for dist in resolution.distributions}
    assert set(by_name) == {"docopt", "idna"}
    assert by_name["docopt"].built_from_sdist
    assert by_name["docopt"].pure
    assert "py3-none-any" in by_name["docopt"].tags
    assert not by_name["idna"].built_from_sdist
    assert (target_dir / "docopt.py").is_file()
    assert not list(target_dir.rglob("*.so"))


def test_native_sdist_is_refused_with_the_options(tmp_path):
    project = _copy_project(PROJECTS / "native-sdist", tmp_path / "project")
    target_dir = tmp_path / "deps"
    with pytest.raises(ResolveError) as caught:
        resolve(project, ARM64, python_version=PYTHON, glibc=GLIBC, target_dir=target_dir)
    text = str(caught.value)
    assert "mmh3 2.5.1" in text
    assert "linux/arm64/v8" in text
    assert "aarch64-manylinux_2_40" in text
    assert "native code" in text
    for option in ("pin a version of mmh3", "another base image", "buildx backend"):
        assert option in text
    # Nothing compiled on the host reached the target folder.
    assert not list(target_dir.rglob("*.so"))
    assert not list(target_dir.glob("mmh3*"))


def test_missing_lock_is_refused(tmp_path):
    project = _copy_project(PROJECTS / "wheels-only", tmp_path / "project", lock=False)
    with pytest.raises(LockError) as caught:
        resolve(project, AMD64, python_version=PYTHON, glibc=GLIBC, target_dir=tmp_path / "deps")
    assert str(project / "uv.lock") in caught.value.message
    assert caught.value.hint == f"run `uv lock` in {project}"
    assert not (tmp_path / "deps").exists()


def test_stale_lock_is_refused(tmp_path, host_python):
    project = _copy_project(PROJECTS / "wheels-only", tmp_path / "project")
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace('"idna==3.20",', '"idna==3.20", "h11==0.16.0",')
    )
    lock_before = (project / "uv.lock").read_bytes()
    with pytest.raises(LockError) as caught:
        resolve(
            project,
            AMD64,
            python_version=PYTHON,
            glibc=GLIBC,
            target_dir=tmp_path / "deps",
            host_python=host_python,
        )
    assert "out of date" in caught.value.message
    assert "needs to be updated" in caught.value.message  # uv's own words are kept
    assert caught.value.hint is not None
    assert "run `uv lock`" in caught.value.hint
    assert (project / "uv.lock").read_bytes() == lock_before  # never updated behind the user's back
    assert not (tmp_path / "deps").exists()


def test_install_dependencies_reuses_a_tree_with_the_same_inputs(example_project, tmp_path):
    cache_dir = tmp_path / "cache"
    arguments = {
        "project_dir": example_project,
        "platform": ARM64,
        "python_version": PYTHON,
        "glibc_version": GLIBC,
        "python_path": "/var/lang/bin/python3.13",
        "cache_dir": cache_dir,
    }
    first = install_dependencies(**arguments)
    assert first.target_dir.parent == cache_dir
    assert first.python_platform == "aarch64-manylinux_2_40"
    assert (
        (first.target_dir / "bin" / "uvicorn")
        .read_text()
        .startswith("#!/var/lang/bin/python3.13\n")
    )
    marker = first.target_dir / "numpy" / "__init__.py"
    mtime = marker.stat().st_mtime_ns

    again = install_dependencies(**arguments)
    assert again.target_dir == first.target_dir
    assert again.distributions == first.distributions
    assert marker.stat().st_mtime_ns == mtime  # reused, not reinstalled
    assert [p.name for p in cache_dir.iterdir()] == [first.target_dir.name]  # no leftovers

    other = install_dependencies(**{**arguments, "python_path": "/usr/bin/python3.13"})
    assert other.target_dir != first.target_dir  # shebangs differ, so trees differ


# -- uv's answer about an unchanged lock is recorded (resolve/lockcheck.py) --------------------


class _CountingUv(Uv):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[list[str]] = []

    def run(self, args, cwd, extra_env=None):
        self.calls.append(list(args))
        return super().run(args, cwd, extra_env)


def _exported(project: Path, records: Records, *, package: str | None = None):
    uv = _CountingUv()
    locked = export_locked(
        project, wheel_target(ARM64, GLIBC, PYTHON), uv=uv, records=records, package=package
    )
    return locked, [c[0] for c in uv.calls]


def test_a_recorded_export_is_uvs_answer_and_starts_no_uv(tmp_path):
    project = _copy_project(PROJECTS / "wheels-only", tmp_path / "project")
    records = CacheLayout(tmp_path / "cache").records("uv-export", version=1)
    first, calls = _exported(project, records)
    assert calls == ["export", "--version"]
    again, calls = _exported(project, records)
    assert calls == []  # answered from the record
    plain = export_locked(project, wheel_target(ARM64, GLIBC, PYTHON))  # no record at all
    for locked in (first, again):
        assert locked.cache_key == plain.cache_key
        assert locked.requirements_text == plain.requirements_text
        assert locked.uv_version == plain.uv_version


def test_a_lock_checked_ahead_is_read_by_the_export_and_starts_no_uv(tmp_path):
    """check_lock (asked while a build reads its base, before the platform is known) records
    uv's answer; the platform's export then starts no uv and gives what uv gives."""
    project = _copy_project(PROJECTS / "wheels-only", tmp_path / "project")
    records = CacheLayout(tmp_path / "cache").records("uv-export", version=1)
    uv = _CountingUv()
    answer = check_lock(project, uv=uv, records=records)
    assert [c[0] for c in uv.calls] == ["export", "--version"]
    locked, calls = _exported(project, records)
    assert calls == []
    plain = export_locked(project, wheel_target(ARM64, GLIBC, PYTHON))  # no record at all
    assert locked.requirements_text == plain.requirements_text
    assert answer.uv_version == locked.uv_version == plain.uv_version


def test_a_stale_lock_is_refused_after_a_recorded_export(tmp_path):
    project = _copy_project(PROJECTS / "wheels-only", tmp_path / "project")
    records = CacheLayout(tmp_path / "cache").records("uv-export", version=1)
    _exported(project, records)
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace('"idna==3.20",', '"idna==3.20", "h11==0.16.0",')
    )
    with pytest.raises(LockError, match="out of date"):
        _exported(project, records)
    with pytest.raises(LockError, match="out of date"):  # and again: a failure is not recorded
        _exported(project, records)


def test_a_poisoned_export_record_is_ignored_and_uv_answers(tmp_path):
    project = _copy_project(PROJECTS / "wheels-only", tmp_path / "project")
    records = CacheLayout(tmp_path / "cache").records("uv-export", version=1)
    first, _ = _exported(project, records)
    [record] = list(records.folder.glob("*.rec"))
    # Another requirement slipped into the payload (the header's checksum no longer matches).
    record.write_bytes(record.read_bytes().replace(b"idna==3.20", b"idna==3.1"))
    again, calls = _exported(project, records)
    assert calls == ["export", "--version"]
    assert again.requirements_text == first.requirements_text
    assert "idna==3.20" in again.requirements_text


def test_a_new_workspace_member_is_a_change(tmp_path):
    """The lock names the members it was made with; a new folder matching the workspace's
    globs makes it stale, and uv is asked again (and says so)."""
    project = _copy_project(PROJECTS / "shape-workspace", tmp_path / "ws")
    records = CacheLayout(tmp_path / "cache").records("uv-export", version=1)
    _exported(project, records, package="web")
    _, calls = _exported(project, records, package="web")
    assert calls == []
    member = project / "libs" / "extra"
    member.mkdir()
    (member / "pyproject.toml").write_text(
        '[project]\nname = "extra"\nversion = "0.1.0"\nrequires-python = ">=3.11"\n'
    )
    with pytest.raises(LockError, match="out of date"):
        _exported(project, records, package="web")
