"""Verification results: findings, allow rules, a report per platform, and its two renderings
(a few lines per platform for people, JSON for CI)."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from crossdock.errors import ConfigError
from crossdock.text import literal

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "AllowRule",
    "Check",
    "FileRef",
    "Finding",
    "PlatformReport",
    "apply_allow",
    "render_reports",
    "reports_to_json",
]


class Check(StrEnum):
    """Every check crossdock runs; the value is the name ``--allow CHECK:GLOB`` uses."""

    ELF_PLATFORM = "elf-platform"
    ELF_READABLE = "elf-readable"
    FOREIGN_BINARY = "foreign-binary"
    GLIBC = "glibc"
    GLIBCXX = "glibcxx"
    WHEEL_PYTHON = "wheel-python"
    WHEEL_PLATFORM = "wheel-platform"
    WHEEL_GLIBC = "wheel-glibc"
    WHEEL_TAG = "wheel-tag"
    EXTENSION_SUFFIX = "extension-suffix"
    PYC_MAGIC = "pyc-magic"
    ENTRYPOINT = "entrypoint"
    STARTUP = "startup"
    PLATFORM_LABEL = "platform-label"
    UNSAFE_PATH = "unsafe-path"
    # Each layer's uncompressed digest is the diff_id the config names for it (a runtime
    # refuses to unpack a layer that is not): never allowed by --allow.
    DIFF_ID = "diff-id"
    # The Lambda preflight (``crossdock verify --target lambda``, every Lambda build): what
    # Lambda refuses at deploy time although docker and the local emulator accept it.
    LAMBDA_SINGLE_MANIFEST = "lambda-single-manifest"
    LAMBDA_MEDIA_TYPE = "lambda-media-type"
    LAMBDA_GZIP = "lambda-gzip"
    LAMBDA_HARDLINK = "lambda-hardlink"
    LAMBDA_PARENT_DIRECTORY = "lambda-parent-directory"
    LAMBDA_SIZE = "lambda-size"
    LAMBDA_HANDLER = "lambda-handler"
    LAMBDA_ARCHITECTURE = "lambda-architecture"


@dataclass(frozen=True)
class FileRef:
    """A file and the layer it came from."""

    path: str
    layer_index: int | None = None
    layer_digest: str | None = None


@dataclass(frozen=True)
class Finding:
    check: Check
    file: FileRef
    expected: str
    found: str
    fix: str
    allowed_by: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "check": str(self.check),
            "path": self.file.path,
            "layer_index": self.file.layer_index,
            "layer_digest": self.file.layer_digest,
            "expected": self.expected,
            "found": self.found,
            "fix": self.fix,
        }
        if self.allowed_by is not None:
            out["allowed_by"] = self.allowed_by
        return out


@dataclass(frozen=True)
class AllowRule:
    """``GLOB`` (any check) or ``CHECK:GLOB``; the glob matches the absolute path in the image."""

    text: str
    check: Check | None
    pattern: str

    @classmethod
    def parse(cls, text: str) -> AllowRule:
        """A rule from ``--allow``; a malformed one (empty, an unclosed ``[``, an unknown
        check name) is a ConfigError rather than a rule that silently matches nothing."""
        checks = sorted(c.value for c in Check)
        head, sep, tail = text.partition(":")
        if sep and head in checks:
            rule = cls(text, Check(head), _absolute(_glob(tail, text)))
        elif sep and _CHECK_LIKE.match(head):
            raise ConfigError(
                f"--allow {text!r}: {head!r} is not a check",
                hint=f"checks: {', '.join(checks)}; or give a path glob alone",
            )
        else:
            rule = cls(text, None, _absolute(_glob(text, text)))
        return rule

    def matches(self, finding: Finding) -> bool:
        if self.check is not None and self.check != finding.check:
            return False
        return fnmatch.fnmatchcase(finding.file.path, self.pattern)


_CHECK_LIKE = re.compile(r"^[a-z]+(-[a-z0-9]+)+$")


def _glob(pattern: str, text: str) -> str:
    if not pattern.strip():
        raise ConfigError(
            f"--allow {text!r}: the glob is empty", hint="e.g. --allow '*/libfoo*.so'"
        )
    depth = 0
    for char in pattern:  # fnmatch reads an unclosed "[" as a literal: almost surely a typo
        if char == "[":
            depth += 1
        elif char == "]" and depth:
            depth = 0
    if depth:
        raise ConfigError(
            f"--allow {text!r}: '[' is not closed",
            hint="a glob's [...] names a set of characters; write [[] for a literal '['",
        )
    return pattern


def _absolute(pattern: str) -> str:
    return pattern if pattern.startswith(("/", "*")) else "/" + pattern


def apply_allow(
    findings: Iterable[Finding], rules: Sequence[AllowRule]
) -> tuple[list[Finding], list[Finding]]:
    """Split findings into (failures, allowed), marking each allowed one with its rule."""
    failures: list[Finding] = []
    allowed: list[Finding] = []
    for finding in findings:
        rule = next((r for r in rules if r.matches(finding)), None)
        if rule is None:
            failures.append(finding)
        else:
            allowed.append(replace(finding, allowed_by=rule.text))
    return failures, allowed


@dataclass(frozen=True)
class Requirement:
    """The highest version any file needs, who needs it, and what the image has."""

    available: str | None
    required: str | None = None
    required_by: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "available": self.available,
            "required": self.required,
            "required_by": self.required_by,
        }


@dataclass(frozen=True)
class PlatformReport:
    platform: str
    image: str | None  # config digest or reference, for the reader
    python_version: str | None
    glibc: Requirement
    glibcxx: Requirement
    checks: tuple[str, ...]  # checks that ran
    notes: tuple[str, ...]  # checks that did not run, and why
    counts: dict[str, int] = field(default_factory=dict)
    failures: tuple[Finding, ...] = ()
    allowed: tuple[Finding, ...] = ()
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.failures

    def render(self, console: Console) -> None:
        render_reports([self], console)

    def to_json(self) -> dict[str, Any]:
        return {
            "platform": self.platform,
            "image": self.image,
            "passed": self.passed,
            "python_version": self.python_version,
            "glibc": self.glibc.to_json(),
            "glibcxx": self.glibcxx.to_json(),
            "checks": list(self.checks),
            "notes": list(self.notes),
            "counts": dict(sorted(self.counts.items())),
            "failures": [f.to_json() for f in self.failures],
            "allowed": [f.to_json() for f in self.allowed],
            "seconds": round(self.seconds, 3),
        }


def reports_to_json(reports: Sequence[PlatformReport]) -> dict[str, Any]:
    return {
        "passed": all(r.passed for r in reports),
        "platforms": [r.to_json() for r in reports],
    }


# Thousands of lines help nobody on a terminal; JSON always has every finding.
_MAX_ROWS_PER_CHECK = 15


def render_reports(
    reports: Sequence[PlatformReport], console: Console, *, verbose: bool = False
) -> None:
    """A few lines per platform that read at 80 columns: the verdict, what was checked, the
    glibc need, and one line per failure with its fix below it. ``verbose`` adds the list of
    checks that ran; names, paths and digests are never cut (long ones wrap)."""
    for report in reports:
        status = "[green]PASS[/green]" if report.passed else "[red]FAIL[/red]"
        console.print(
            f"{status} {literal(report.platform)}  python {report.python_version or '?'}, "
            f"glibc {report.glibc.available or '?'}  ({report.seconds:.2f}s)",
            highlight=False,
        )
        if report.image:
            _line(console, f"  image    {literal(report.image)}")
        _line(console, f"  checked  {_checked(report.counts)}")
        if report.glibc.required:
            needed_by = literal(report.glibc.required_by or "?")
            _line(console, f"  glibc    {report.glibc.required} needed by {needed_by}")
        if verbose:
            _line(console, f"  checks   {literal(', '.join(report.checks))}")
        for note in report.notes:
            _line(console, f"  [yellow]note:[/yellow] {literal(note)}")
        for title, findings in (("failures", report.failures), ("allowed", report.allowed)):
            if findings:
                _line(console, f"  {title} ({len(findings)}):")
                for text in _finding_lines(findings):
                    _line(console, text)


def _line(console: Console, markup: str) -> None:
    console.print(markup, highlight=False, soft_wrap=True)


def _checked(counts: dict[str, int]) -> str:
    """``7121 files: 531 elf, 78 extension, 2014 pyc, 23 wheel``."""
    files = counts.get("files")
    rest = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()) if kind != "files")
    if files is None:
        return rest or "nothing"
    return f"{files} files" + (f": {rest}" if rest else "")


def _finding_lines(findings: Sequence[Finding]) -> list[str]:
    """One line per finding (check, file, expected and found), its fix indented below."""
    lines: list[str] = []
    shown: dict[Check, int] = {}
    hidden: dict[Check, int] = {}
    for finding in findings:
        shown[finding.check] = shown.get(finding.check, 0) + 1
        if shown[finding.check] > _MAX_ROWS_PER_CHECK:
            hidden[finding.check] = hidden.get(finding.check, 0) + 1
            continue
        layer = "" if finding.file.layer_index is None else f" (layer {finding.file.layer_index})"
        lines.append(
            f"    [red]{literal(finding.check)}[/red] {literal(finding.file.path)}{layer}: "
            f"expected {literal(finding.expected)}, found {literal(finding.found)}"
        )
        fix = finding.fix + (f" (allowed by {finding.allowed_by})" if finding.allowed_by else "")
        if fix:
            lines.append(f"      fix: {literal(fix)}")
    lines.extend(
        f"    {check}: ... and {count} more (see --json)" for check, count in hidden.items()
    )
    return lines
