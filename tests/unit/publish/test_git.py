import subprocess

import pytest

from crossdock.errors import ConfigError
from crossdock.publish.git import git_state
from tests.support.prerequisites import needs_tools

pytestmark = needs_tools("git")


def git(folder, *args):
    subprocess.run(
        ["git", "-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        check=True,
        capture_output=True,
    )


def test_short_sha_and_dirty_tree(tmp_path):
    git(tmp_path, "init", "-q")
    (tmp_path / "app.py").write_text("print(1)\n")
    git(tmp_path, "add", "app.py")
    git(tmp_path, "commit", "-q", "-m", "one")
    full = subprocess.run(
        ["git", "-C", str(tmp_path), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    state = git_state(tmp_path)
    assert state.sha == full[:7]
    assert state.dirty is False
    (tmp_path / "app.py").write_text("print(2)\n")
    assert git_state(tmp_path).dirty is True
    (tmp_path / "app.py").write_text("print(1)\n")
    (tmp_path / "new.py").write_text("")
    assert git_state(tmp_path).dirty is True


def test_outside_a_repository_asks_for_git_sha(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    with pytest.raises(ConfigError, match="--git-sha"):
        git_state(tmp_path)
    state = git_state(tmp_path, sha_override="ABCDEF1234567")
    assert (state.sha, state.dirty) == ("abcdef1", None)
    with pytest.raises(ConfigError):
        git_state(tmp_path, sha_override="not-a-sha")
