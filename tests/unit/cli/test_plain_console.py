"""Lines printed without rich off a terminal (crossdock.cli.plain_console, issue 14) are the
characters rich's own console prints for the same markup: compared with rich itself on the same
inputs, progress lines, wrapped warnings and ``--json`` alike."""

from __future__ import annotations

import io
import json
import os
import random
import string
import subprocess
import sys
from types import SimpleNamespace

import pytest
from rich.console import Console
from rich.markup import escape

from crossdock.cli import progress_view
from crossdock.cli.plain_console import PlainConsole, rich_sees_terminal
from crossdock.cli.progress_view import ProgressView
from crossdock.platform import Platform
from crossdock.progress import step
from crossdock.text import escape_markup, literal

_AWKWARD = ["[bold]", "\\[x]", "[/]", "\\", "\\\\[red]", "[a=b]", "[#fff]", "[@click]", "a[b]c"]


def _prose(rng: random.Random) -> str:
    """Words of every kind rich treats specially: markup-like brackets, backslashes, words
    longer than a line, runs of spaces, newlines."""
    parts = []
    for _ in range(rng.randint(0, 40)):
        roll = rng.random()
        if roll < 0.05:
            parts.append("x" * rng.randint(20, 200))
        elif roll < 0.1:
            parts.append(rng.choice(_AWKWARD))
        else:
            letters = string.ascii_letters + string.digits + ".,:;()/-_"
            parts.append("".join(rng.choice(letters) for _ in range(rng.randint(1, 12))))
        parts.append(rng.choice([" ", " ", " ", "  ", "\n", " " * rng.randint(1, 30)]))
    return "".join(parts)


def _both(
    width: int, monkeypatch: pytest.MonkeyPatch
) -> tuple[Console, io.StringIO, PlainConsole, io.StringIO]:
    """rich's console and a plain one, each writing to its own buffer, at ``width``."""
    monkeypatch.setenv("COLUMNS", str(width))
    rich_out, plain_out = io.StringIO(), io.StringIO()
    rich = Console(file=rich_out, soft_wrap=True, emoji=False)
    return rich, rich_out, PlainConsole(lambda: plain_out, lambda: rich), plain_out


def test_escape_markup_is_richs_escape():
    rng = random.Random(3)  # noqa: S311 - a reproducible corpus, not a secret
    alphabet = "ab[]/\\#@=x "
    for _ in range(20000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 15)))
        assert escape_markup(text) == escape(text), text


def test_plain_lines_are_what_rich_prints_off_a_terminal(monkeypatch):
    rng = random.Random(1)  # noqa: S311 - a reproducible corpus, not a secret
    compared = 0
    for _ in range(1500):
        width = rng.randint(5, 120)
        raw = _prose(rng)
        markup = rng.choice([f"[yellow]crossdock[/] {literal(raw)}", literal(raw)])
        soft_wrap = rng.random() < 0.5
        rich, rich_out, plain, plain_out = _both(width, monkeypatch)
        rich.print(markup, highlight=False, soft_wrap=soft_wrap)
        plain.print(markup, highlight=False, soft_wrap=soft_wrap)
        assert plain_out.getvalue() == rich_out.getvalue(), (markup, width, soft_wrap)
        compared += "\n" in rich_out.getvalue().rstrip("\n")
    assert compared > 100  # wrapped or multi-line output was among the cases


def test_text_rich_measures_by_cells_is_printed_by_rich(monkeypatch):
    _rich, rich_out, plain, plain_out = _both(20, monkeypatch)
    markup = "[yellow]arm64[/] " + literal("警告: ここに長い説明があります " * 3)
    plain.print(markup, soft_wrap=False)
    reference_out = io.StringIO()
    Console(file=reference_out, soft_wrap=True, emoji=False).print(
        markup, highlight=False, soft_wrap=False
    )
    assert plain_out.getvalue() == ""
    assert rich_out.getvalue() == reference_out.getvalue()


def test_json_is_indented_as_richs_print_json(monkeypatch):
    rich, rich_out, plain, plain_out = _both(40, monkeypatch)
    text = json.dumps({"digest": "sha256:" + "a" * 64, "name": "café [x]", "n": [1, 2.5, None]})
    rich.print_json(text)
    plain.print_json(text)
    assert plain_out.getvalue() == rich_out.getvalue()


def test_a_build_progress_off_a_terminal_reads_the_same(monkeypatch):
    rich, rich_out, plain, plain_out = _both(80, monkeypatch)
    # The same durations on both sides, however loaded the machine.
    monkeypatch.setattr(progress_view, "time", SimpleNamespace(perf_counter=lambda: 7.0))
    arm64 = Platform.parse("linux/arm64")
    for console in (rich, plain):
        view = ProgressView(console, live=False)  # type: ignore[arg-type]
        with view:
            view(None, "warning: target apprunner: linux/arm64/v8 is not documented " * 3)
            view(arm64, "bytecode for Python 3.13: [not markup] here")
            with step(view, arm64, "app layer") as packing:
                packing.describe("43.6 KiB compressed")
            with pytest.raises(RuntimeError), step(view, arm64, "verify"):
                raise RuntimeError
    assert plain_out.getvalue() == rich_out.getvalue()
    assert "arm64 app layer (0.0s)  43.6 KiB compressed\n" in plain_out.getvalue()


@pytest.mark.parametrize(
    ("environ", "tty", "expected"),
    [
        ({}, False, False),
        ({}, True, True),
        ({"FORCE_COLOR": "1"}, False, True),
        ({"FORCE_COLOR": ""}, True, False),
        ({"TTY_COMPATIBLE": "1"}, False, True),
        ({"TTY_COMPATIBLE": "0", "FORCE_COLOR": "1"}, True, False),
    ],
)
def test_rich_sees_a_terminal_where_rich_does(monkeypatch, environ, tty, expected):
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "JUPYTER_COLUMNS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)

    class Stream(io.StringIO):
        def isatty(self) -> bool:
            return bool(tty)

    assert rich_sees_terminal(Stream()) is expected
    assert bool(Console(file=Stream()).is_terminal) is expected


def test_progress_and_json_off_a_terminal_import_no_rich():
    # A process whose stderr and stdout are pipes: the command's progress and its JSON.
    program = """
import sys
from crossdock.cli.console import lines_console, out_console, progress
from crossdock.platform import Platform
from crossdock.progress import step
with progress.shown():
    progress(None, "warning: " + "prose " * 30)
    with step(progress, Platform.parse("linux/amd64"), "verify") as verifying:
        verifying.describe("2636 files checked, passed")
lines_console(out_console).print_json('{"digest": "sha256:00"}')
print(sorted(m for m in sys.modules if m.split(".")[0] == "rich"), file=sys.stderr)
"""
    # Without the variables that make rich draw as on a terminal anyway (FORCE_COLOR, ...).
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    done = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env=env,
    )
    assert done.stdout == '{\n  "digest": "sha256:00"\n}\n'
    assert "amd64 verify (0.0s)  2636 files checked, passed\n" in done.stderr
    assert done.stderr.endswith("[]\n"), done.stderr
