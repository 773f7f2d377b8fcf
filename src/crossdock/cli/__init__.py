"""The ``crossdock`` command line: thin wrappers that read options, call the library, and
render results for people (rich) or for CI (``--json``). One module per command group; each
registers its commands on ``app`` (``crossdock.cli.root``).

Start-up is part of the interface: ``crossdock --version`` runs without importing typer, and
importing every command module (what ``--help`` does) imports no HTTP client, no pydantic and no
rich table. A command module therefore imports at its top only the standard library, typer,
``crossdock.cli.common`` and light crossdock modules (``errors``, ``platform``), and everything
else inside the command function, or under ``TYPE_CHECKING`` for annotations;
``tests/unit/cli/test_startup.py`` checks this.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crossdock.cli.root import app
    from crossdock.errors import CrossdockError

__all__ = ["app", "main"]

_VERSION_ARGUMENTS = (["--version"], ["version"])


def __getattr__(name: str) -> Any:
    # ``from crossdock.cli import app`` (the command modules, tests) loads typer on first use.
    if name == "app":
        from crossdock.cli.root import app

        return app
    raise AttributeError(f"module 'crossdock.cli' has no attribute {name!r}")


def _register_commands() -> None:
    # Importing a command module registers its commands on ``app``.
    from crossdock.cli import (
        build_cmd,  # noqa: F401
        cache_cmd,  # noqa: F401
        config_cmd,  # noqa: F401
        doctor_cmd,  # noqa: F401
        init_cmd,  # noqa: F401
        push_cmd,  # noqa: F401
        rebase_cmd,  # noqa: F401
        run_cmd,  # noqa: F401
        sbom_cmd,  # noqa: F401
        verify_cmd,  # noqa: F401
    )


def main() -> None:
    """Entry point: run the app, turning crossdock's errors into messages and exit codes."""
    if sys.argv[1:] in _VERSION_ARGUMENTS:
        # The commonest question answered before typer (~70 ms of imports) is loaded.
        from crossdock.cli.versions import version_lines

        sys.stdout.write("".join(f"{line}\n" for line in version_lines()))
        return
    # httpx imports its optional command-line client whenever click and pygments happen to be
    # installed (rich's tables and syntax highlighting: ~40 ms); crossdock never uses it, and
    # httpx falls back to a stub when it cannot be imported (a None entry refuses the import).
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
    from crossdock.errors import CrossdockError, VerificationError

    _register_commands()
    from crossdock.cli.root import app

    install_interrupt_handlers()

    try:
        app()
    except VerificationError as err:
        from crossdock.cli.common import err_console

        if err.report is not None and hasattr(err.report, "render"):
            err.report.render(err_console)
        _print_error(err)
        sys.exit(err.exit_code)
    except CrossdockError as err:
        _print_error(err)
        sys.exit(err.exit_code)
    except OSError as err:
        # A file crossdock could not read or write where no caller turned it into an error
        # with more context: still one line, never a traceback.
        where = f" {err.filename}" if err.filename else ""
        _print_error(CrossdockError(f"{err.strerror or err}:{where}"))
        sys.exit(CrossdockError.exit_code)


def install_interrupt_handlers() -> None:
    """Ctrl-C (SIGINT) and SIGTERM stop crossdock at once, with its children
    (``crossdock.cli.interrupt``), instead of waiting for transfers in worker threads."""
    import signal

    def stop(_signum: int, _frame: object) -> None:
        from crossdock.cli.interrupt import stop_after_interrupt

        stop_after_interrupt()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)


def _print_error(err: CrossdockError) -> None:
    from crossdock.cli.common import print_error

    print_error(err)
