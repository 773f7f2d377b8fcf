from __future__ import annotations

import os
import stat

import pytest

from crossdock.errors import ResolveError
from crossdock.resolve.shebangs import rewrite_shebangs

BODY = "# -*- coding: utf-8 -*-\nimport sys\nfrom uvicorn.main import main\nsys.exit(main())\n"
# uv's form for interpreter paths too long for a kernel shebang.
TRAMPOLINE = "#!/bin/sh\n'''exec' '/very/long/host/path/.venv/bin/python' \"$0\" \"$@\"\n' '''\n"


@pytest.fixture
def bin_dir(tmp_path):
    directory = tmp_path / "bin"
    directory.mkdir()
    (directory / "uvicorn").write_text("#!/root/.pyenv/versions/3.11.7/bin/python\n" + BODY)
    (directory / "long").write_text(TRAMPOLINE + BODY)
    (directory / "envpy").write_text("#!/usr/bin/env python3\n" + BODY)
    (directory / "tool.sh").write_text("#!/bin/sh\necho hello\n")
    (directory / "native").write_bytes(b"\x7fELF\x02\x01\x01" + bytes(64))
    (directory / "link").symlink_to("uvicorn")
    for path in directory.iterdir():
        if not path.is_symlink():
            path.chmod(0o755)
    return directory


def test_python_scripts_get_the_image_python(bin_dir):
    changed = rewrite_shebangs(bin_dir, "/usr/bin/python3.13")
    assert [path.name for path in changed] == ["envpy", "long", "uvicorn"]
    for name in ("uvicorn", "long", "envpy"):
        assert (bin_dir / name).read_text() == "#!/usr/bin/python3.13\n" + BODY
        assert stat.S_IMODE((bin_dir / name).stat().st_mode) == 0o755


def test_other_files_are_left_alone(bin_dir):
    rewrite_shebangs(bin_dir, "/usr/bin/python3.13")
    assert (bin_dir / "tool.sh").read_text() == "#!/bin/sh\necho hello\n"
    assert (bin_dir / "native").read_bytes().startswith(b"\x7fELF")
    assert (bin_dir / "link").is_symlink()


def test_second_rewrite_changes_nothing(bin_dir):
    rewrite_shebangs(bin_dir, "/usr/bin/python3.13")
    assert rewrite_shebangs(bin_dir, "/usr/bin/python3.13") == ()


def test_missing_bin_dir_is_nothing_to_do(tmp_path):
    assert rewrite_shebangs(tmp_path / "bin", "/usr/bin/python3.13") == ()


@pytest.mark.parametrize("python", ["python3", "/usr/bin/python 3"])
def test_python_path_must_be_absolute_without_spaces(bin_dir, python):
    with pytest.raises(ValueError, match="absolute path"):
        rewrite_shebangs(bin_dir, python)


def test_record_describes_the_rewritten_scripts_whatever_the_host_path(tmp_path):
    # The same wheel installed from two checkouts (two host interpreter paths) must give the
    # same files, RECORD included: it is part of a reproducible layer.
    import base64
    import csv
    import hashlib

    trees = []
    for host in ("/work/a/.venv/bin/python", "/srv/ci-clone/.venv/bin/python"):
        root = tmp_path / host.strip("/").replace("/", "_")
        (root / "bin").mkdir(parents=True)
        script = root / "bin" / "uvicorn"
        script.write_text(f"#!{host}\n" + BODY)
        dist_info = root / "uvicorn-1.0.dist-info"
        dist_info.mkdir()
        data = script.read_bytes()
        stale = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        (dist_info / "RECORD").write_text(
            f"bin/uvicorn,sha256={stale},{len(data)}\nuvicorn/__init__.py,sha256=abc,1\n"
            "uvicorn-1.0.dist-info/RECORD,,\n"
        )
        assert rewrite_shebangs(root / "bin", "/usr/bin/python3.13") == (script,)
        trees.append(root)
    first, second = ((t / "uvicorn-1.0.dist-info" / "RECORD").read_text() for t in trees)
    assert first == second
    rows = list(csv.reader(first.splitlines()))
    installed = (trees[0] / "bin" / "uvicorn").read_bytes()
    expected = base64.urlsafe_b64encode(hashlib.sha256(installed).digest()).rstrip(b"=")
    assert rows[0] == ["bin/uvicorn", "sha256=" + expected.decode(), str(len(installed))]
    assert rows[1] == ["uvicorn/__init__.py", "sha256=abc", "1"]  # other rows untouched
    assert rows[2] == ["uvicorn-1.0.dist-info/RECORD", "", ""]


def test_a_script_linked_to_uvs_cache_is_replaced_not_written_into(bin_dir, tmp_path):
    """uv installs hard links into its cache: rewriting a script gives the tree a new file (the
    same mode) and leaves the cache's file, and its RECORD's other links, as they were."""
    cache = tmp_path / "uv-cache"
    cache.mkdir()
    original = (bin_dir / "uvicorn").read_bytes()
    (bin_dir / "uvicorn").rename(cache / "uvicorn")
    os.link(cache / "uvicorn", bin_dir / "uvicorn")
    dist_info = tmp_path / "uvicorn-1.0.dist-info"
    dist_info.mkdir()
    record = "bin/uvicorn,sha256=old,10\nuvicorn-1.0.dist-info/RECORD,,\n"
    (cache / "RECORD").write_text(record)
    os.link(cache / "RECORD", dist_info / "RECORD")
    rewrite_shebangs(bin_dir, "/usr/bin/python3.13")
    assert (bin_dir / "uvicorn").read_text() == "#!/usr/bin/python3.13\n" + BODY
    assert stat.S_IMODE((bin_dir / "uvicorn").stat().st_mode) == 0o755
    assert (cache / "uvicorn").read_bytes() == original
    assert not (bin_dir / "uvicorn").samefile(cache / "uvicorn")
    assert "sha256=old" not in (dist_info / "RECORD").read_text()
    assert (cache / "RECORD").read_text() == record


@pytest.mark.parametrize(
    "record",
    [b"bin/uvicorn,sha256=x,1\n\xff\n", b"bin/uvicorn,sha256=x,1\n" + b"a" * 200_000 + b"\n"],
    ids=["not-utf8", "a-field-past-csv-limit"],
)
def test_a_record_that_cannot_be_read_is_a_resolve_error(bin_dir, record):
    dist_info = bin_dir.parent / "uvicorn-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "RECORD").write_bytes(record)
    with pytest.raises(ResolveError, match="RECORD") as caught:
        rewrite_shebangs(bin_dir, "/usr/local/bin/python3")
    assert "\n" not in caught.value.message
