"""``crossdock cache``: sizes by kind, and pruning by age and by size, least recently used first."""

from __future__ import annotations

import json
import os
import time

import pytest
from typer.testing import CliRunner

from crossdock.cacheusage import parse_age, parse_size, prune, usage
from crossdock.cli import _register_commands, app

DAY = 86400.0
NOW = time.time()


def put(path, size, age_days):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    stamp = NOW - age_days * DAY
    os.utime(path, (stamp, stamp))


@pytest.fixture
def cache(tmp_path):
    root = tmp_path / "cache"
    put(root / "blobs" / "sha256" / ("a" * 64), 40_000, 40)
    put(root / "blobs" / "sha256" / ("b" * 64), 30_000, 2)
    put(root / "deps" / "k1" / "numpy" / "core.so", 50_000, 10)
    put(root / "records" / "last-build" / "r1.rec", 100, 1)
    put(root / "verify" / "index" / "i1.json", 2_000, 50)
    put(root / "bytecode" / "ab" / ("ab" + "0" * 62 + ".pyc"), 500, 3)
    put(root / "bytecode" / "ab" / ("ab" + "1" * 62 + ".pyc"), 500, 4)
    # A tree's last use is its newest file: this one was used yesterday.
    put(root / "deps" / "k2" / "old.py", 10_000, 90)
    put(root / "deps" / "k2" / "new.py", 10_000, 1)
    for folder in (root / "deps" / "k1", root / "deps" / "k1" / "numpy", root / "deps" / "k2"):
        os.utime(folder, (NOW - 90 * DAY, NOW - 90 * DAY))
    return root


def test_usage_by_kind(cache):
    kinds = {k.kind: k for k in usage(cache)}
    assert set(kinds) == {"blobs", "bytecode", "deps", "records/last-build", "verify/index"}
    assert kinds["bytecode"].entries == 2  # each pyc, not the folder grouping them
    assert kinds["blobs"].entries == 2
    assert kinds["deps"].entries == 2
    assert kinds["blobs"].size >= 70_000
    assert kinds["deps"].newest == pytest.approx(NOW - DAY)
    assert kinds["verify/index"].oldest == pytest.approx(NOW - 50 * DAY)


def test_prune_by_age_removes_only_entries_unused_for_longer(cache):
    removed = prune(cache, older_than=30 * DAY, now=NOW)
    assert sorted(e.path.name for e in removed) == ["a" * 64, "i1.json"]
    assert not (cache / "blobs" / "sha256" / ("a" * 64)).exists()
    assert (cache / "deps" / "k2" / "old.py").exists()  # its tree was used yesterday
    assert (cache / "blobs" / "sha256" / ("b" * 64)).exists()


def test_prune_to_a_size_removes_least_recently_used_first(cache):
    total = sum(k.size for k in usage(cache))
    dry = prune(cache, max_size=total - 1, dry_run=True, now=NOW)
    assert [e.path.name for e in dry] == ["i1.json"]  # the oldest entry alone is enough
    assert (cache / "verify" / "index" / "i1.json").exists()  # a dry run removes nothing
    removed = prune(cache, max_size=60_000, now=NOW)
    left = sum(k.size for k in usage(cache))
    assert left <= 60_000
    # Oldest first: 50 d, 40 d, 10 d ... and the entry used yesterday outlives them.
    assert [e.path.name for e in removed][:3] == ["i1.json", "a" * 64, "k1"]
    assert (cache / "records" / "last-build" / "r1.rec").exists()


@pytest.mark.parametrize(
    ("text", "size"), [("500M", 500 << 20), ("2g", 2 << 30), ("1.5GiB", 3 << 29), ("1024", 1024)]
)
def test_sizes(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize(("text", "age"), [("30d", 30 * DAY), ("12h", 43200), ("2w", 14 * DAY)])
def test_ages(text, age):
    assert parse_age(text) == age


@pytest.mark.parametrize("text", ["ten", "-1d", "5x"])
def test_bad_limits_are_refused(text):
    with pytest.raises(ValueError, match="is not"):
        parse_age(text) if text != "5x" else parse_size(text)


def test_the_cli_shows_and_prunes(cache):
    _register_commands()
    runner = CliRunner()
    shown = runner.invoke(app, ["cache", "--cache-dir", str(cache), "--json"])
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.stdout)
    assert {k["kind"] for k in data["kinds"]} >= {"blobs", "deps"}
    # The newest entry (used a day ago) is the one 35K keeps.
    os.utime(cache / "blobs" / "sha256" / ("b" * 64), (NOW, NOW))
    pruned = runner.invoke(
        app, ["cache", "prune", "--cache-dir", str(cache), "--max-size", "35K", "--json"]
    )
    assert pruned.exit_code == 0, pruned.output
    result = json.loads(pruned.stdout)
    assert result["dry_run"] is False
    assert (cache / "blobs" / "sha256" / ("b" * 64)).exists()  # the one used last
    assert result["freed_bytes"] > 0
