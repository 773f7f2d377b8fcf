"""``crossdock cache``: sizes by kind, and pruning by age and by size, least recently used first."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from crossdock import build as build_module
from crossdock.cache import CacheLayout
from crossdock.cachelock import IN_USE_LOCK
from crossdock.cacheusage import cache_entries, parse_age, parse_size, prune, usage
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


# -- a prune and the builds using the cache -----------------------------------------------------


class _WaitedError(Exception):
    """Raised by a prune's on_wait: it found a build using the cache."""


def _raise_waited() -> None:
    raise _WaitedError


def test_a_prune_waits_for_the_builds_using_the_cache_and_removes_nothing_under_them(cache):
    # Two CI jobs share one cache: one prunes while the other builds. An entry removed under a
    # running build (its dependency tree while it is packed, a blob while it is linked into the
    # output) made that build fail. Now the build holds the cache's lock (shared) and a prune
    # waits for it (here it says so and stops instead of waiting, so the test needs no thread).
    doomed = cache / "blobs" / "sha256" / ("a" * 64)
    with CacheLayout(cache).in_use(), CacheLayout(cache).in_use():  # two builds at once
        with pytest.raises(_WaitedError):
            prune(cache, older_than=30 * DAY, now=NOW, on_wait=_raise_waited)
        assert doomed.exists()
        # A dry run removes nothing: it waits for no build.
        assert {e.path for e in prune(cache, older_than=30 * DAY, now=NOW, dry_run=True)} >= {
            doomed
        }
    removed = prune(cache, older_than=30 * DAY, now=NOW, on_wait=_raise_waited)  # none running
    assert sorted(e.path.name for e in removed) == ["a" * 64, "i1.json"]
    assert not doomed.exists()
    # The lock is no entry of the cache: never reported, never pruned.
    assert all(e.path.name != IN_USE_LOCK for e in cache_entries(cache))
    assert (cache / IN_USE_LOCK).exists()
    assert prune(cache, max_size=0, on_wait=_raise_waited)
    assert list(cache_entries(cache)) == []
    assert (cache / IN_USE_LOCK).exists()


def test_a_build_holds_the_cache_while_it_builds_and_writes_its_outputs(cache, monkeypatch):
    seen: list[str] = []

    class Backend:
        def build(self, _plan, _progress):
            try:
                prune(cache, max_size=0, on_wait=_raise_waited)
            except _WaitedError:
                seen.append("the prune waited for the build")
            return "outcome"

    def deliver(outcome, plan, progress, output, *, smoke):
        with pytest.raises(_WaitedError):
            prune(cache, max_size=0, on_wait=_raise_waited)
        seen.append(f"{outcome} delivered under the lock")

    monkeypatch.setattr(build_module, "deliver", deliver)
    plan = SimpleNamespace(warnings=(), cache_dir=cache)
    assert build_module.build(plan, Backend(), lambda *_: None) == "outcome"  # type: ignore[arg-type,comparison-overlap]
    assert seen == ["the prune waited for the build", "outcome delivered under the lock"]
    assert prune(cache, max_size=0, on_wait=_raise_waited)  # the build is over: no wait


def test_crossdock_cache_prune_says_it_waits_for_a_command_using_the_cache(cache):
    # What a user sees when the cache is in use (a build, a verify, a rebase in another
    # process): one line naming the cache, then the prune once the command is over.
    doomed = cache / "blobs" / "sha256" / ("a" * 64)
    command = [str(Path(sys.executable).parent / "crossdock"), "cache", "prune"]
    with CacheLayout(cache).in_use():
        pruning = subprocess.Popen(
            [*command, "--cache-dir", str(cache), "--max-size", "0"],
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "NO_COLOR": "1", "COLUMNS": "300"},
        )
        assert pruning.stderr is not None
        said = pruning.stderr.readline()  # written before it waits: it waits for the lock
        assert said.strip() == f"waiting for the builds using {cache} to end"
        assert doomed.exists()
        assert pruning.poll() is None
    _, rest = pruning.communicate(timeout=120)
    assert pruning.returncode == 0, rest
    assert "removed" in rest
    assert not doomed.exists()
