"""Printing outside text literally: names from images, references, paths and anything a user
typed reach the terminal as the characters they are, never as terminal control sequences or
as rich markup.

- ``printable`` shows control characters (ESC, OSC's BEL, carriage returns, C1 codes, and
  newlines unless kept) as Python-style escapes: a file named ``"\\x1b]0;owned\\x07"`` prints as
  that text instead of retitling the terminal.
- ``literal`` also escapes rich markup (``[bold red]`` stays brackets); the consoles are made
  with emoji codes off, so ``a:b:c`` stays ``a:b:c``.
- ``excerpt`` is how outside text (a tool's output, a server's error answer) is quoted in an
  error message: its start or its end, its lines joined with " | ", ``printable`` on one line.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["escape_markup", "excerpt", "literal", "printable"]

# What rich's markup parser takes for a tag (rich.markup.escape), with the backslashes before it.
_MARKUP_TAG = re.compile(r"(\\*)(\[[a-z#/@][^[]*?])")


def _shown(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` with every control or format character written as an escape."""
    if text.isprintable():  # the usual case, checked in C
        return text
    out = []
    for char in text:
        if (char == "\n" and keep_newlines) or char == " ":
            out.append(char)
        elif unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp") or (
            char.isspace() and char != " "
        ):
            out.append(_shown(char))
        else:
            out.append(char)
    return "".join(out)


def excerpt(text: str, limit: int, *, end: bool = False) -> str:
    """At most ``limit`` characters of ``text`` (its start, or its ``end``, with "…" where it
    was cut) on one line: its non-blank lines stripped and joined with " | ", the rest of its
    control characters escaped (``printable``), so that an error message quoting a tool's
    output stays one line that says what went wrong."""
    text = " | ".join(stripped for line in text.splitlines() if (stripped := line.strip()))
    if len(text) > limit:
        text = "…" + text[-limit:] if end else text[:limit] + "…"
    return printable(text)


def literal(text: object, *, keep_newlines: bool = False) -> str:
    """``str(text)`` made safe to pass to a rich console as markup: printed as it is."""
    return escape_markup(printable(str(text), keep_newlines=keep_newlines))


def escape_markup(text: str) -> str:
    """``text`` with everything rich would read as a tag escaped: ``rich.markup.escape``'s
    rule, here so that a line printed without rich (``crossdock.cli.plain_console``) imports
    none of it; tests/unit/test_text.py compares the two."""
    escaped = _MARKUP_TAG.sub(lambda m: f"{m.group(1)}{m.group(1)}\\{m.group(2)}", text)
    if escaped.endswith("\\") and not escaped.endswith("\\\\"):
        return escaped + "\\"
    return escaped
