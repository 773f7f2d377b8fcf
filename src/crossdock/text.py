"""Printing outside text literally: names from images, references, paths and anything a user
typed reach the terminal as the characters they are, never as terminal control sequences or
as rich markup.

- ``printable`` shows control characters (ESC, OSC's BEL, carriage returns, C1 codes, and
  newlines unless kept) as Python-style escapes: a file named ``"\\x1b]0;owned\\x07"`` prints as
  that text instead of retitling the terminal.
- ``literal`` also escapes rich markup (``[bold red]`` stays brackets); the consoles are made
  with emoji codes off, so ``a:b:c`` stays ``a:b:c``.
"""

from __future__ import annotations

import unicodedata

__all__ = ["literal", "printable"]


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


def literal(text: object, *, keep_newlines: bool = False) -> str:
    """``str(text)`` made safe to pass to a rich console as markup: printed as it is."""
    from rich.markup import escape  # here: the CLI's start-up imports no rich module

    return escape(printable(str(text), keep_newlines=keep_newlines))
