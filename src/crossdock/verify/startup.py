"""Images proven to start: what an image config says it runs must exist in the image.

A container starts ``Entrypoint + Cmd``. This module follows that command through the image's own
layered filesystem (``fsview``: whiteouts applied, symlinks followed as under chroot, so never
outside the image) the way the kernel and CPython would:

* the program resolves on the image's ``PATH`` (from the config's ``Env``; relative names from
  ``WorkingDir``) to a regular file with an execute bit (for the image's user), and a script's
  ``#!`` interpreter does too;
* when a Python runs it: ``python -m MODULE`` finds MODULE (and a package's ``__main__``) on the
  ``sys.path`` that interpreter would build: the working directory (or the script's folder),
  ``PYTHONPATH``, the standard library and the site directories of *that* Python (read from the
  image, as :mod:`crossdock.rootfs.baseprofile` does), a virtual environment's, and ``.pth``
  entries;
* a console script's target (``from pkg.cli import main``) is a module on that path;
* the module a server or runtime is told to import: uvicorn / gunicorn / hypercorn ``module:attr``
  arguments, ``python -m awslambdaric module.function``, and a Lambda base's ``CMD`` handler.

The checks read directory listings from the layer index and only the few small script files
they need, so they cost milliseconds. ``check_startup`` returns findings for the verification
report; ``find_module`` and ``python_search_path`` are the pieces other checks reuse (a Lambda
preflight: does the handler module resolve in the image?).
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from crossdock.image.config import ImageConfig
from crossdock.rootfs.baseprofile import (
    DEFAULT_PATH,
    BaseProfile,
    PythonFound,
    find_python,
    python_at,
)
from crossdock.rootfs.fsview import EntryKind, FsEntry, LayerFS
from crossdock.verify.report import Check, FileRef, Finding

__all__ = [
    "ModuleLocation",
    "StartupCheck",
    "check_startup",
    "find_module",
    "handler_module",
    "python_search_path",
]

# Scripts worth reading to learn what they run: console scripts are a few hundred bytes.
_SCRIPT_READ_LIMIT = 64 * 1024
_PYTHON_PROGRAM = re.compile(r"python(3(\.\d+)?)?")
# CPython options that take a value (``-X dev``, ``-W error``), and those that change sys.path.
_PYTHON_OPTIONS_WITH_VALUE = frozenset("XWQ")
# ``module:attribute`` as uvicorn, gunicorn and hypercorn take their application.
_APP_ARGUMENT = re.compile(r"([A-Za-z_][\w.]*):([A-Za-z_][\w.]*)(\(.*\))?")
# Servers that import a ``module:attr`` argument, with the working directory on sys.path first
# (uvicorn's --app-dir defaults to "."; gunicorn and hypercorn insert the cwd themselves).
_APP_SERVERS = frozenset({"uvicorn", "gunicorn", "hypercorn"})
# The Lambda runtime interface client takes the handler (``module.function``) as its argument.
_LAMBDA_RIC = "awslambdaric"
_LAMBDA_TASK_ROOT = "LAMBDA_TASK_ROOT"
_LAMBDA_RUNTIME_DIR = "LAMBDA_RUNTIME_DIR"
_FROM_IMPORT = re.compile(rb"^from\s+([A-Za-z_][\w.]*)\s+import\s+", re.MULTILINE)


@dataclass(frozen=True)
class ModuleLocation:
    """Where an import of a module would find it."""

    name: str  # "app.main"
    path: str  # the file (or, for a namespace package, the first folder) in the image
    is_package: bool = False
    # A package's folders (its __path__): more than one for a namespace package.
    package_dirs: tuple[str, ...] = ()


@dataclass
class StartupCheck:
    """What was followed from the image config, and what did not resolve."""

    command: tuple[str, ...]
    findings: list[Finding] = field(default_factory=list)
    # What resolved: "program /usr/bin/python3.13", "module app.main -> /app/app/main.py".
    resolved: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # What a deeper check can import in a running container (``crossdock build --smoke``): the
    # modules the command imports, in order, the image's interpreter that imports them, and the
    # sys.path they were found on.
    modules: list[str] = field(default_factory=list)
    python: str | None = None
    module_path: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.findings


def handler_module(handler: str) -> str:
    """The module of a Lambda handler: ``app.handler`` -> ``app``, ``pkg/mod.fn`` -> ``pkg.mod``
    (awslambdaric splits on the last dot and reads ``/`` as a package separator)."""
    module, _, _function = handler.rpartition(".")
    return module.replace("/", ".")


# ----- module resolution --------------------------------------------------------------------


def find_module(
    fs: LayerFS, name: str, search_path: Sequence[str], python: tuple[int, int] | None = None
) -> ModuleLocation | None:
    """Where ``import name`` finds ``name`` on ``search_path`` in the image, or None.

    Per folder, as CPython's FileFinder: a package (folder with ``__init__``), then an extension
    module (``.cpython-XY-*.so``, ``.abi3.so``, ``.so``), then ``.py``, then a sourceless
    ``.pyc``; a folder without ``__init__`` is a namespace package portion, used only when no
    folder on the path has anything else. ``python``: the image's version, to tell which
    extension suffixes it loads (any CPython's when None).
    """
    location: ModuleLocation | None = None
    dirs: Sequence[str] = search_path
    parts = name.split(".")
    for depth, part in enumerate(parts):
        location = _find_in(fs, ".".join(parts[: depth + 1]), part, dirs, python)
        if location is None:
            return None
        if depth < len(parts) - 1:
            if not location.is_package:
                return None  # "app.main" where app is a module, not a package
            dirs = location.package_dirs
    return location


def _find_in(
    fs: LayerFS, full_name: str, part: str, dirs: Sequence[str], python: tuple[int, int] | None
) -> ModuleLocation | None:
    portions: list[str] = []
    for directory in dirs:
        names = set(fs.listdir(directory))
        if not names:
            continue
        if part in names:
            folder = posixpath.join(directory, part)
            entry = fs.get(folder)
            if entry is not None and entry.kind is EntryKind.DIRECTORY:
                init = _module_file(fs, folder, "__init__", python)
                if init is not None:
                    return ModuleLocation(full_name, init, is_package=True, package_dirs=(folder,))
                portions.append(folder)
        module = _module_file(fs, directory, part, python, names)
        if module is not None:
            return ModuleLocation(full_name, module)
    if portions:
        return ModuleLocation(full_name, portions[0], is_package=True, package_dirs=tuple(portions))
    return None


def _module_file(
    fs: LayerFS,
    directory: str,
    stem: str,
    python: tuple[int, int] | None,
    names: set[str] | None = None,
) -> str | None:
    """The file that makes ``stem`` a module in ``directory`` (extension, source, bytecode)."""
    if names is None:
        names = set(fs.listdir(directory))
    cp = f"{python[0]}{python[1]}" if python else r"\d+"
    extension = re.compile(rf"{re.escape(stem)}(\.cpython-{cp}[^.]*|\.abi3)?\.so")
    candidates = sorted(n for n in names if extension.fullmatch(n))
    candidates += [n for n in (f"{stem}.py", f"{stem}.pyc") if n in names]
    for candidate in candidates:
        path = posixpath.join(directory, candidate)
        entry = fs.get(path)
        if entry is not None and entry.kind is EntryKind.FILE:
            return path
    return None


def python_search_path(
    fs: LayerFS,
    python: PythonFound,
    *,
    first: str | None,
    env: Mapping[str, str],
    launcher: str | None = None,
    isolated: bool = False,
    no_site: bool = False,
) -> tuple[str, ...]:
    """The ``sys.path`` a Python in the image starts with (before ``.pth`` files).

    ``first``: the working directory for ``-m``/``-c``, a script's folder, or None (``-I``/
    ``-P``); ``launcher``: the path the interpreter was started as, to find a virtual
    environment (``/opt/venv/bin/python`` is a symlink to the base's interpreter).
    """
    path: list[str] = []
    if first:
        path.append(first)
    if not isolated:
        path += [p for p in env.get("PYTHONPATH", "").split(":") if p.startswith("/")]
    path += [python.stdlib, posixpath.join(python.stdlib, "lib-dynload")]
    if no_site:
        return tuple(dict.fromkeys(path))
    venv = _virtual_env(fs, launcher, python.version)
    if venv is not None:
        site_dir, system_site = venv
        path.append(site_dir)
        if system_site:
            path += python.site_packages
    else:
        path += python.site_packages
    return tuple(dict.fromkeys(path))


def _virtual_env(fs: LayerFS, launcher: str | None, version: str) -> tuple[str, bool] | None:
    """(site-packages, include-system-site-packages) of the venv ``launcher`` belongs to."""
    if launcher is None:
        return None
    root = posixpath.dirname(posixpath.dirname(launcher))
    cfg_path = posixpath.join(root, "pyvenv.cfg")
    if not fs.is_file(cfg_path):
        return None
    text = (fs.read_file(cfg_path, limit=_SCRIPT_READ_LIMIT) or b"").decode("utf-8", "replace")
    system = re.search(r"^include-system-site-packages\s*=\s*true\s*$", text, re.I | re.M)
    return posixpath.join(root, "lib", f"python{version}", "site-packages"), system is not None


def _pth_dirs(fs: LayerFS, site_dirs: Iterable[str]) -> list[str]:
    """Folders that ``.pth`` files in the site directories add to sys.path (``import`` lines
    are code and are not run here)."""
    wanted = [posixpath.join(d, n) for d in site_dirs for n in fs.listdir(d) if n.endswith(".pth")]
    found: list[str] = []
    for pth, data in sorted(fs.read_files(wanted, limit=_SCRIPT_READ_LIMIT).items()):
        base = posixpath.dirname(pth)
        for raw in data.decode("utf-8", "replace").splitlines():
            line = raw.strip()
            if not line or line.startswith(("#", "import ", "import\t")):
                continue
            folder = posixpath.normpath(posixpath.join(base, line))
            entry = fs.get(folder)
            if entry is not None and entry.kind is EntryKind.DIRECTORY:
                found.append(folder)
    return found


# ----- following the command ----------------------------------------------------------------


@dataclass(frozen=True)
class _Context:
    fs: LayerFS
    env: Mapping[str, str]
    working_dir: str
    user: str
    profile: BaseProfile | None
    command_text: str


def check_startup(
    config: ImageConfig, fs: LayerFS, *, profile: BaseProfile | None = None
) -> StartupCheck:
    """Follow what ``config`` runs through ``fs``; a finding for each thing that is missing.

    ``profile``: the base's profile, when known (its Python's paths); without it they are read
    from the image.
    """
    runtime = config.runtime
    argv = tuple(str(a) for a in (runtime.get("Entrypoint") or [])) + tuple(
        str(a) for a in (runtime.get("Cmd") or [])
    )
    result = StartupCheck(argv)
    if not argv:
        result.notes.append(
            "the image config records no command (Entrypoint/Cmd): nothing to start"
        )
        return result
    context = _Context(
        fs=fs,
        env=config.env,
        working_dir=str(runtime.get("WorkingDir") or "/"),
        user=str(runtime.get("User") or ""),
        profile=profile,
        command_text=shlex.join(argv),
    )
    program = _executable(context, argv[0], result, what="the program")
    if program is None:
        return result
    _follow(context, program, argv, result)
    return result


def _follow(context: _Context, program: FsEntry, argv: Sequence[str], result: StartupCheck) -> None:
    """What the program does with its arguments, as far as it can be told from the image."""
    if _is_python(program.path) or _is_python(argv[0]):
        _python_command(context, program, argv[0], list(argv[1:]), result)
        return
    script = _script(context.fs, program)
    interpreter = _script_interpreter(context, program, script, result) if script else None
    if script is None or interpreter is None:
        _lambda_base_handler(context, argv, result)
        return  # a native program or a shell script: what it runs next is not recorded
    python_entry, launcher = interpreter
    python = _python(context, python_entry.path)
    if python is None:
        return
    search = python_search_path(
        context.fs,
        python,
        first=posixpath.dirname(program.path),
        env=context.env,
        launcher=_absolute_on_path(context, launcher),
    )
    target = _FROM_IMPORT.search(script[1])
    if target is not None:
        module = target.group(1).decode()
        what = f"the console script {program.path} imports"
        if _require_module(context, python, module, search, result, what=what):
            _runner_arguments(context, python, module, list(argv[1:]), search, result)


def _is_python(path: str) -> bool:
    return _PYTHON_PROGRAM.fullmatch(posixpath.basename(path)) is not None


def _script_interpreter(
    context: _Context,
    program: FsEntry,
    script: tuple[list[str], bytes],
    result: StartupCheck,
) -> tuple[FsEntry, str] | None:
    """(the Python a script's ``#!`` line runs, the name it is started as); None when the
    interpreter is missing (a finding) or is not Python."""
    words = script[0]
    what = f"the interpreter of {program.path}"
    interpreter = _executable(context, words[0], result, what=what)
    launcher = words[0]
    if interpreter is not None and posixpath.basename(interpreter.path) == "env":
        if len(words) < 2:
            return None
        interpreter = _executable(context, words[1], result, what=what)
        launcher = words[1]
    if interpreter is None or not _is_python(interpreter.path):
        return None
    return interpreter, launcher


@dataclass
class _PythonArgs:
    """What a ``python`` command line asks for (``python [options] -m MODULE | SCRIPT ...``)."""

    module: str | None = None
    script: str | None = None
    rest: list[str] = field(default_factory=list)
    ignore_environment: bool = False  # -E, -I: PYTHONPATH is ignored
    no_site: bool = False  # -S: no site directories
    safe_path: bool = False  # -P, -I: no working directory in front of sys.path


def _parse_python_args(args: Sequence[str]) -> _PythonArgs:
    parsed = _PythonArgs()
    position = 0
    while position < len(args):
        arg = args[position]
        position += 1
        if arg in ("-", "--") or not arg.startswith("-"):
            parsed.script = None if arg in ("-", "--") else arg
            break
        if arg.startswith("-m"):
            parsed.module = arg[2:] or (args[position] if position < len(args) else None)
            position += 0 if arg[2:] else 1
            break
        flags = arg[1:]
        if "c" in flags:
            break  # -c CODE: nothing to follow
        parsed.ignore_environment |= "I" in flags or "E" in flags
        parsed.no_site |= "S" in flags
        parsed.safe_path |= "I" in flags or "P" in flags
        if flags in _PYTHON_OPTIONS_WITH_VALUE:
            position += 1
    parsed.rest = list(args[position:])
    return parsed


def _python_command(
    context: _Context,
    program: FsEntry,
    launcher: str,
    args: list[str],
    result: StartupCheck,
) -> None:
    python = _python(context, program.path)
    if python is None:
        return
    parsed = _parse_python_args(args)
    if parsed.script is not None:
        script_path = posixpath.join(context.working_dir, parsed.script)
        entry = context.fs.get(script_path)
        if entry is not None and entry.kind is EntryKind.FILE:
            result.resolved.append(f"script {entry.path}")
            return
        result.findings.append(
            _finding(
                context,
                script_path,
                expected=f"the script {parsed.script} (from WorkingDir {context.working_dir})",
                found="no such file in the image",
                fix="copy the script into the image, or fix the command",
            )
        )
        return
    module = parsed.module
    if module is None:
        return
    search = python_search_path(
        context.fs,
        python,
        first=None if parsed.safe_path else context.working_dir,
        env={} if parsed.ignore_environment else context.env,
        launcher=_absolute_on_path(context, launcher),
        no_site=parsed.no_site,
    )
    location = _require_module(
        context, python, module, search, result, what=f"`python -m {module}` runs"
    )
    if location is None:
        return
    if location.is_package and not find_module(
        context.fs, "__main__", location.package_dirs, _version(python)
    ):
        result.findings.append(
            _finding(
                context,
                location.path,
                expected=f"{module}.__main__ (python -m runs a package's __main__ module)",
                found=f"{module} is a package without __main__.py",
                fix=f"name a module of the package (python -m {module}.MODULE), or add "
                f"{module}/__main__.py",
            )
        )
        return
    _runner_arguments(context, python, module, parsed.rest, search, result)


def _runner_arguments(  # noqa: PLR0917 - private, two callers
    context: _Context,
    python: PythonFound,
    module: str,
    args: Sequence[str],
    search: Sequence[str],
    result: StartupCheck,
) -> None:
    """The module a server or the Lambda runtime client is told to import."""
    top = module.split(".", maxsplit=1)[0]
    if top in _APP_SERVERS:
        path = list(dict.fromkeys([context.working_dir, *search]))
        for position, arg in enumerate(args):
            if position > 0 and args[position - 1] == "--app-dir":
                path.insert(0, posixpath.join(context.working_dir, arg))
        for arg in args:
            match = _APP_ARGUMENT.fullmatch(arg)
            if match is not None:
                what = f"{top} is told to serve {arg}; it imports"
                _require_module(context, python, match.group(1), path, result, what=what)
    elif top == _LAMBDA_RIC:
        handler = next((a for a in args if not a.startswith("-")), None)
        if handler is not None:
            _handler(context, python, handler, search, result)


def _lambda_base_handler(context: _Context, argv: Sequence[str], result: StartupCheck) -> None:
    """A Lambda base (``LAMBDA_TASK_ROOT`` in its env): its entrypoint script runs the runtime
    client on the first argument, the handler, from the task root."""
    task_root = context.env.get(_LAMBDA_TASK_ROOT)
    if task_root is None or len(argv) < 2:
        return
    handler = argv[1]
    if handler.startswith("-") or "." not in handler:
        return
    python = _python(context, None)
    if python is None:
        return
    # Like Lambda: the function's code (task root) first, then the runtime's own packages.
    first = [task_root, context.env.get(_LAMBDA_RUNTIME_DIR) or ""]
    search = python_search_path(context.fs, python, first=None, env=context.env)
    _handler(context, python, handler, [p for p in (*first, *search) if p], result)


def _handler(
    context: _Context,
    python: PythonFound,
    handler: str,
    search: Sequence[str],
    result: StartupCheck,
) -> None:
    module = handler_module(handler)
    if not module:
        result.findings.append(
            _finding(
                context,
                "(image config)",
                expected="a Lambda handler as module.function",
                found=handler,
                fix="set lambda-handler to MODULE.FUNCTION, e.g. app.handler",
            )
        )
        return
    _require_module(
        context,
        python,
        module,
        search,
        result,
        what=f"the Lambda handler {handler} is in",
        advice=_missing_handler_advice(handler, module),
    )


def _missing_handler_advice(handler: str, module: str) -> str:
    """What to do when a Lambda handler's module is missing: Lambda calls a function, so a
    web application's ``app`` (what App Runner and EKS serve) is not one; say how to make it
    one, and which setting names it."""
    function = handler.rpartition(".")[2]
    return (
        f"add {module.replace('.', '/')}.py with a function {function}(event, context) to the "
        "function's code, or name a handler the image has (crossdock: [tool.crossdock] "
        "lambda-handler = 'MODULE.FUNCTION'); an ASGI app (FastAPI) becomes one with "
        f"Mangum: `{function} = Mangum(app)` (mangum among the dependencies)"
    )


# ----- helpers ------------------------------------------------------------------------------


def _version(python: PythonFound) -> tuple[int, int]:
    major, minor = python.version.split(".")[:2]
    return int(major), int(minor)


def _python(context: _Context, executable: str | None) -> PythonFound | None:
    """The image's Python at ``executable`` (or the one on PATH), its paths from the profile
    when it is the base's interpreter."""
    profile = context.profile
    if profile is not None and (
        executable is None or context.fs.resolve(profile.python_path) == executable
    ):
        return PythonFound(
            profile.python_version,
            profile.python_path,
            profile.python_stdlib,
            profile.site_packages,
        )
    if executable is None:
        found = find_python(context.fs, context.env.get("PATH") or DEFAULT_PATH)
    else:
        found = python_at(context.fs, executable)
    return found


def _require_module(
    context: _Context,
    python: PythonFound,
    module: str,
    search: Sequence[str],
    result: StartupCheck,
    *,
    what: str,
    advice: str | None = None,
) -> ModuleLocation | None:
    """Where ``module`` is found on ``search``; else a finding, with ``advice`` as its fix (or
    the general advice for a missing module)."""
    fs = context.fs
    location = find_module(fs, module, search, _version(python))
    if location is None:
        # .pth files add folders (a project installed with `pip install -e`, say): look there
        # only when the module is not found without them.
        extra = _pth_dirs(fs, [d for d in search if d.endswith(("site-packages", "dist-packages"))])
        if extra:
            location = find_module(fs, module, [*search, *extra], _version(python))
    if location is not None:
        result.resolved.append(f"module {module} -> {location.path}")
        result.modules.append(module)
        result.python = result.python or python.executable
        result.module_path.extend(d for d in search if d not in result.module_path)
        return location
    shown = ", ".join(search)
    result.findings.append(
        _finding(
            context,
            "(image config)",
            expected=f"module {module} ({what} it) on the image's sys.path",
            found=f"no module {module} in {shown}",
            fix=advice or _missing_module_advice(context, module, search),
        )
    )
    return None


def _missing_module_advice(context: _Context, module: str, search: Sequence[str]) -> str:
    # A src layout copied as files: its packages sit one folder below what sys.path holds.
    for directory in dict.fromkeys([context.working_dir, *search]):
        src = posixpath.join(directory, "src")
        packages = context.fs.listdir(src)
        if packages:
            return (
                f"{src} holds {', '.join(packages)}, which is not on sys.path (a src layout "
                "copied as files): install the project into the image (a packaged project "
                f"built as a wheel), or name a module the image has instead of {module} "
                "(crossdock: [tool.crossdock] app, command or lambda-handler)"
            )
    return (
        f"add the code that provides {module} to the image, or change the command to name a "
        "module the image has (crossdock: [tool.crossdock] app, command or lambda-handler)"
    )


def _executable(context: _Context, name: str, result: StartupCheck, *, what: str) -> FsEntry | None:
    """The file ``name`` runs as (PATH search, symlinks followed), or None with a finding."""
    fs = context.fs
    path_env = context.env.get("PATH") or DEFAULT_PATH
    if "/" in name:
        candidates = [posixpath.join(context.working_dir, name)]
        where = (
            f"(relative to WorkingDir {context.working_dir})" if not name.startswith("/") else ""
        )
    else:
        candidates = [posixpath.join(d, name) for d in path_env.split(":") if d.startswith("/")]
        where = f"on PATH {path_env}"
    not_executable: FsEntry | None = None
    for candidate in candidates:
        entry = fs.get(candidate)
        if entry is None or entry.kind is not EntryKind.FILE:
            continue
        if _can_execute(entry.mode, context.user):
            result.resolved.append(f"{what} {name} -> {entry.path}")
            return entry
        not_executable = not_executable or entry
    if not_executable is not None:
        result.findings.append(
            _finding(
                context,
                not_executable.path,
                expected=f"{what} {name} is executable by user {context.user or 'root'}",
                found=f"{not_executable.path} has mode {not_executable.mode & 0o7777:o}",
                fix="give the file execute permission (chmod a+x) in the layer that adds it",
            )
        )
        return None
    result.findings.append(
        _finding(
            context,
            candidates[0] if len(candidates) == 1 else name,
            expected=f"{what} {name} {where}".rstrip(),
            found="no such file in the image",
            fix=f"install {name} in the image or change the command "
            "(crossdock: [tool.crossdock] app or command)",
        )
    )
    return None


def _can_execute(mode: int, user: str) -> bool:
    """Whether the image's user may execute a file of this mode. Layer files belong to root,
    so a non-root user needs the "others" execute bit; root needs any of them."""
    uid = user.split(":", 1)[0]
    if uid in ("", "0", "root"):
        return bool(mode & 0o111)
    return bool(mode & 0o001)


def _absolute_on_path(context: _Context, name: str) -> str | None:
    if "/" in name:
        return posixpath.join(context.working_dir, name)
    path_env = context.env.get("PATH") or DEFAULT_PATH
    for directory in path_env.split(":"):
        candidate = posixpath.join(directory, name)
        if directory.startswith("/") and context.fs.is_file(candidate):
            return context.fs.resolve(candidate, follow_final=False)
    return None


def _script(fs: LayerFS, entry: FsEntry) -> tuple[list[str], bytes] | None:
    """(the ``#!`` line's words, the script's bytes) of a small script; None for other files."""
    if entry.size > _SCRIPT_READ_LIMIT:
        return None
    data = fs.read_file(entry.path, limit=_SCRIPT_READ_LIMIT)
    if not data or not data.startswith(b"#!"):
        return None
    line = data[2:].split(b"\n", 1)[0].decode("utf-8", "replace").strip()
    words = line.split()
    return (words, data) if words else None


def _finding(context: _Context, path: str, *, expected: str, found: str, fix: str) -> Finding:
    return Finding(
        Check.STARTUP,
        FileRef(path),
        expected=f"{expected}, for the command {context.command_text}",
        found=found,
        fix=fix,
    )
