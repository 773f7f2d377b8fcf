"""What git says about the project being pushed: the short commit SHA and a dirty tree.

The SHA goes into tags (``SHA``, ``SHA-ARCH``); a dirty tree means those tags name a commit that
is not what was built, so it is reported (and a config may refuse it). Outside a git repository
(a CI job on a source tarball) pass the SHA explicitly (``--git-sha``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from crossdock.children import run_child
from crossdock.errors import ConfigError, ToolError
from crossdock.text import excerpt

__all__ = ["GitState", "git_state", "head_revision"]

# git's default abbreviation is 7; the seed's tags use that length.
SHORT_SHA_LENGTH = 7
_SHA_RE = re.compile(r"^[0-9a-f]{4,40}$")


@dataclass(frozen=True)
class GitState:
    """The commit to name in tags, and whether the work tree differs from it (None: unknown)."""

    sha: str
    dirty: bool | None


def git_state(project: Path, *, sha_override: str | None = None) -> GitState:
    """The short SHA of HEAD in ``project`` and whether its tree is dirty.

    ``sha_override`` (``--git-sha``) is used as given, without running git; dirtiness is then
    unknown.
    """
    if sha_override is not None:
        sha = sha_override.strip().lower()
        if not _SHA_RE.match(sha):
            raise ConfigError(
                f"--git-sha {sha_override!r} is not a hexadecimal commit id",
                hint="pass 4 to 40 hex digits, e.g. $(git rev-parse --short HEAD)",
            )
        return GitState(sha[:SHORT_SHA_LENGTH], None)
    sha = _git(project, "rev-parse", f"--short={SHORT_SHA_LENGTH}", "HEAD")
    porcelain = _git(project, "status", "--porcelain", "--untracked-files=normal")
    return GitState(sha, bool(porcelain))


def head_revision(project: Path) -> str | None:
    """The full commit id of HEAD, for the image's ``org.opencontainers.image.revision``
    annotation; None outside a git repository (an annotation is optional, a tag is not)."""
    try:
        return _git(project, "rev-parse", "HEAD")
    except (ConfigError, ToolError):
        return None


def _git(project: Path, *args: str) -> str:
    try:
        result = run_child(
            ["git", "-C", str(project), *args], capture_output=True, text=True, check=False
        )
    except FileNotFoundError as err:
        raise ToolError(
            "git is not installed, and the tags need the commit's SHA",
            hint="install git, or pass the commit with --git-sha",
        ) from err
    if result.returncode != 0:
        stderr = result.stderr.strip()
        if "not a git repository" in stderr or "unknown revision" in stderr or "HEAD" in stderr:
            raise ConfigError(
                f"{project} is not in a git repository with a commit, and the tags need the "
                "commit's SHA",
                hint="run from the git checkout, or pass the commit with --git-sha",
            )
        raise ToolError(
            f"git {' '.join(args)} failed in {project}: {excerpt(stderr, 500, end=True)}",
            hint="run the same git command there to see what is wrong, or pass the commit "
            "with --git-sha",
        )
    return result.stdout.strip()
