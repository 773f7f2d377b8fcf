"""The ``crossdock`` command line: thin wrappers that read options, call the library, and
render results for people (rich) or for CI (``--json``). One module per command group; each
registers its commands on ``app`` (``crossdock.cli.root``).

Start-up is part of the interface: ``crossdock --version`` runs without importing typer, a
command imports only the module that registers it (``COMMAND_INDEX``), and ``--help`` lists the
commands from that index without importing any of them. Importing every command module (what
the tests do) still imports no HTTP client, no pydantic and no rich table: a command module
imports at its top only the standard library, typer, ``crossdock.cli.common`` and light crossdock
modules (``errors``, ``platform``), and everything else inside the command function, or under
``TYPE_CHECKING`` for annotations; ``tests/unit/cli/test_startup.py`` checks this.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crossdock.cli.root import app
    from crossdock.errors import CrossdockError

__all__ = ["COMMAND_INDEX", "app", "main"]

_VERSION_ARGUMENTS = (["--version"], ["version"])

# Every command: the module that registers it and the first sentence of its help, in the order
# ``--help`` lists them. ``--help`` shows these without importing the modules (registering the
# commands and inspecting their parameters is most of its time); a command imports only its own
# module. tests/unit/cli/test_startup.py checks the index against the registered commands.
COMMAND_INDEX: dict[str, tuple[str, str]] = {
    "version": (
        "crossdock.cli.root",
        "Print crossdock's version, and the uv and Python it runs with.",
    ),
    "push": (
        "crossdock.cli.push_cmd",
        "Push an OCI layout written by `crossdock build --oci-layout` with the release tags.",
    ),
    "plan": (
        "crossdock.cli.build_cmd",
        "Print the build plan (what would be built, from what, how it runs) as JSON.",
    ),
    "build": (
        "crossdock.cli.build_cmd",
        "Build the service's image for each platform, verify it, and write or push it.",
    ),
    "config": (
        "crossdock.cli.config_cmd",
        (
            "Print the effective configuration of a service, with the source of every value: the "
            "defaults, crossdock.toml, [tool.crossdock] in its pyproject.toml, CROSSDOCK_* "
            "environment variables, or an option (later wins)."
        ),
    ),
    "doctor": (
        "crossdock.cli.doctor_cmd",
        (
            "Diagnose the seed's Common Issues (exec format error, platform mismatch, QEMU, "
            "registry access) and say how to fix each; exit code 1 when crossdock cannot build as "
            "configured."
        ),
    ),
    "init": ("crossdock.cli.init_cmd", "Create a project in DIR with one service."),
    "rebase": (
        "crossdock.cli.rebase_cmd",
        (
            "Move IMAGE onto a new version of its base: the new base's layers under the image's "
            "own, config and base annotations updated, refused when the Python minor differs or "
            "the new glibc is older than the image's binaries need, every check run again, pushed "
            "with the release rules of a build (and a fresh SBOM)."
        ),
    ),
    "run": (
        "crossdock.cli.run_cmd",
        "Start a web-service image (apprunner, eks) with docker and wait for its health path.",
    ),
    "invoke": (
        "crossdock.cli.run_cmd",
        "Invoke a Lambda image once against a local Lambda Runtime API; print its response.",
    ),
    "k8s": (
        "crossdock.cli.run_cmd",
        "Write a Deployment + Service for IMAGE, scheduled only on the architectures it has.",
    ),
    "sbom": (
        "crossdock.cli.sbom_cmd",
        (
            "Print the CycloneDX 1.6 JSON SBOM crossdock attached to IMAGE's manifest for one "
            "platform (an OCI 1.1 referrer; from the referrers API or its fallback tag)."
        ),
    ),
    "verify": (
        "crossdock.cli.verify_cmd",
        (
            "Verify each platform of IMAGE: ELF machine/class/endianness, glibc and GLIBCXX needs, "
            "wheel tags, extension suffixes and bytecode against the image's own platform and "
            "Python, each layer against the diff_id its config names (uncompressed digest), and "
            "that what the image runs (its program, the modules it imports) exists in it."
        ),
    ),
    "cache": (
        "crossdock.cli.cache_cmd",
        "Show the cache's size by kind (no subcommand), or prune it.",
    ),
}


def __getattr__(name: str) -> Any:
    # ``from crossdock.cli import app`` (the command modules, tests) loads typer on first use.
    if name == "app":
        from crossdock.cli.root import app

        return app
    raise AttributeError(f"module 'crossdock.cli' has no attribute {name!r}")


def _register_commands(names: Iterable[str] | None = None) -> None:
    """Import the modules that register ``names`` on ``app`` (every command by default)."""
    from importlib import import_module

    wanted = COMMAND_INDEX if names is None else names
    for module in dict.fromkeys(COMMAND_INDEX[name][0] for name in wanted):
        import_module(module)


def _command_named(arguments: list[str]) -> str | None:
    """The command ``arguments`` run: the first one that is not an option (the root has no
    option that takes a value)."""
    return next((a for a in arguments if not a.startswith("-")), None)


def main() -> None:
    """Entry point: run the app, turning crossdock's errors into messages and exit codes; the
    process then ends without the interpreter's teardown (``crossdock.cli.exiting``)."""
    from crossdock.cli.exiting import end_process, exit_code

    try:
        _run()
    except SystemExit as stop:
        end_process(exit_code(stop))
    end_process(0)


def _run() -> None:
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

    install_interrupt_handlers()
    try:
        if sys.argv[1:2] == ["build"] and _build_answered_from_record(sys.argv[2:]):
            return
        command = _command_named(sys.argv[1:])
        if command in COMMAND_INDEX:
            _register_commands([command])
        elif command is not None:
            # Not a command: every one registered, so that the error can suggest the nearest.
            _register_commands()
        from crossdock.cli.root import app

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


def _build_answered_from_record(arguments: list[str]) -> bool:
    """``crossdock build`` when nothing changed since the same command's last build: answered
    before typer and the build's stacks are imported (``crossdock.cli.build_shortcut``); else
    the full build remembers this command line for next time."""
    from crossdock.cli import build_shortcut

    build_shortcut.command_line = arguments
    return build_shortcut.answer_from_record(arguments)


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
