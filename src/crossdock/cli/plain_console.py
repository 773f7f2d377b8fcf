"""Lines for a console that is not a terminal, written without importing rich (issue 14: rich's
console is ~50 ms of a code-only rebuild's start-up, and off a terminal it draws nothing that
needs it).

``PlainConsole`` prints the markup crossdock's progress lines and ``--json`` report are written
in to the characters rich's ``Console`` prints for them when it does not see a terminal: tags
dropped, escaped brackets restored (``crossdock.text.literal``), prose wrapped at the width rich
takes (the terminal size of a standard stream, ``COLUMNS``, else 80), JSON indented by 2. Text
whose wrapping depends on character widths (anything but ASCII) is handed to rich itself.
``tests/unit/cli/test_plain_console.py`` compares both on the same input. On a terminal, or when
rich's own variables make it draw as on one (``FORCE_COLOR``, ``TTY_COMPATIBLE``), rich prints.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import sys
from collections.abc import Callable, Mapping
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["PlainConsole", "plain_markup", "rich_sees_terminal", "wrap_offsets"]

# rich.markup.RE_TAGS: a tag, with the backslashes before it (an odd count escapes it).
_TAGS = re.compile(r"((\\*)\[([a-z#/@][^[]*?)])")
# rich._wrap.re_word: a word and the whitespace around it.
_WORD = re.compile(r"\s*\S+\s*")
_TRAILING_SPACE = re.compile(r"\s+$")
# rich.text.Text strips these control codes from what it prints (strip_control_codes).
_STRIPPED = {7: None, 8: None, 11: None, 12: None, 13: None}


def rich_sees_terminal(stream: IO[str], environ: Mapping[str, str] | None = None) -> bool:
    """Whether rich's ``Console`` writing to ``stream`` would draw as on a terminal
    (``Console.is_terminal``): ``TTY_COMPATIBLE`` first, then ``FORCE_COLOR``, then isatty."""
    env = os.environ if environ is None else environ
    compatible = env.get("TTY_COMPATIBLE", "")
    if compatible in ("0", "1"):
        return compatible == "1"
    forced = env.get("FORCE_COLOR")
    if forced is not None:
        return forced != ""
    try:
        return stream.isatty()
    except ValueError:  # a closed stream
        return False


def _width(environ: Mapping[str, str]) -> int:
    """rich's ``Console.size`` width: a standard stream's terminal size, ``COLUMNS``, else 80."""
    width: int | None = None
    for descriptor in (0, 1, 2):
        try:
            width = os.get_terminal_size(descriptor).columns
        except (AttributeError, ValueError, OSError):
            continue
        break
    columns = environ.get("COLUMNS")
    if columns is not None and columns.isdigit():
        width = int(columns)
    return width or 80


def plain_markup(markup: str) -> str:
    """The text rich shows for ``markup``: its tags dropped, escaped brackets and backslashes
    as they were before ``rich.markup.escape`` (rich.markup._parse)."""
    out: list[str] = []
    position = 0
    for match in _TAGS.finditer(markup):
        full_text, escapes, _tag = match.groups()
        start, end = match.span()
        out.append(markup[position:start])
        position = end
        backslashes, escaped = divmod(len(escapes), 2)
        out.append("\\" * backslashes)
        if escaped:
            out.append(full_text[len(escapes) :])
    out.append(markup[position:])
    return "".join(out).translate(_STRIPPED)


def wrap_offsets(text: str, width: int) -> list[int]:
    """Where rich breaks a line of single-cell characters to fit ``width`` (rich._wrap
    .divide_line, folding words longer than a line)."""
    breaks: list[int] = []
    offset = 0
    for match in _WORD.finditer(text):
        start, word = match.start(), match.group(0)
        length = len(word.rstrip())
        if width - offset >= length:
            offset += len(word)
        elif length > width:
            pieces = [word[i : i + width] for i in range(0, len(word), width)]
            for last, piece in ((i == len(pieces) - 1, p) for i, p in enumerate(pieces)):
                if start:
                    breaks.append(start)
                if last:
                    offset = len(piece)
                else:
                    start += len(piece)
        elif offset and start:
            breaks.append(start)
            offset = len(word)
    return breaks


def _wrapped(text: str, width: int) -> list[str]:
    """``text`` (one line of single-cell characters) as rich wraps it: at ``wrap_offsets``,
    each line's whitespace beyond ``width`` dropped, then cut to ``width``."""
    cuts = [0, *wrap_offsets(text, width), len(text)]
    lines = []
    for begin, end in itertools.pairwise(cuts):
        line = text[begin:end]
        if len(line) > width:
            trailing = _TRAILING_SPACE.search(line)
            if trailing is not None:
                line = line[: len(line) - min(len(trailing.group(0)), len(line) - width)]
            line = line[:width]
        lines.append(line)
    return lines


class PlainConsole:
    """What crossdock's progress view and ``--json`` report ask of a console, for a stream
    that is not a terminal: ``print`` (markup, one line or wrapped prose) and ``print_json``."""

    def __init__(
        self,
        stream: Callable[[], IO[str]],
        rich_console: Callable[[], Console],
        environ: Mapping[str, str] | None = None,
    ) -> None:
        # The stream is looked up at each write, as rich's console does (sys.stderr may be
        # replaced, by a test's capture say).
        self._stream = stream
        self._rich = rich_console
        self._environ = os.environ if environ is None else environ

    @property
    def width(self) -> int:
        return _width(self._environ)

    def print(self, markup: str, *, highlight: bool = False, soft_wrap: bool = False) -> None:
        """``markup`` as one line (``soft_wrap``), or wrapped at the width like rich's prose."""
        del highlight  # off a terminal nothing is highlighted
        text = plain_markup(markup)
        parts = text.split("\n")
        if soft_wrap:
            lines = parts
        elif all(part.isascii() and part.isprintable() for part in parts):
            width = self.width
            lines = [line for part in parts for line in _wrapped(part, width)]
        else:
            # Cell widths, tabs and other controls: rich's own rules.
            self._rich().print(markup, highlight=False, soft_wrap=False)
            return
        self._write("".join(f"{line}\n" for line in lines))

    def print_json(self, text: str) -> None:
        """``text`` (JSON) indented as rich's ``print_json`` does it."""
        self._write(json.dumps(json.loads(text), indent=2, ensure_ascii=False) + "\n")

    def _write(self, text: str) -> None:
        stream = self._stream()
        stream.write(text)
        stream.flush()


def stderr() -> IO[str]:
    return sys.stderr


def stdout() -> IO[str]:
    return sys.stdout
