"""Bytecode for the image's Python, compiled on the host without emulation.

Why: an image without ``.pyc`` files compiles every module it imports at every start when its
folders are read-only to the running user (App Runner/EKS run as 65534; Lambda's /var/task is
read-only). Under QEMU that made the example's first request take minutes; on real hardware it
is a slower cold start. ``.pyc`` files depend on the Python *version* (their magic number), not
on the CPU, so a host interpreter of the image's major.minor writes correct ones for any
platform.

How: ``compileall`` with ``unchecked-hash`` invalidation (the pyc records a hash of its source,
not its mtime, so layers stay reproducible and Python never needs to rewrite them), and
PYTHONHASHSEED=0 so the marshalled constants come out the same on every run.

Always in a child process, even when the compiling interpreter is the one running crossdock:
a pyc's bytes depend on the compiling process's state, not only on the source. A string
constant is marshalled as interned or not depending on whether an equal string was already
interned in that process (a nested function's qualname, say): compiling typing_extensions.py in
a process that has imported typing_extensions gives other bytes than in a fresh one. A fresh
child with the same imports every time keeps the bytes the same across builds and machines.
What is asked of the running interpreter itself (its version, its magic number) is answered
here.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import importlib.util
import json
import os
import posixpath
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from crossdock.children import run_child, start_child
from crossdock.errors import ToolError
from crossdock.resolve.uv import Uv
from crossdock.text import excerpt

__all__ = [
    "BytecodePython",
    "bytecode_python",
    "compile_bytecode",
    "find_host_python",
    "forget_tree",
    "move_tree",
    "prepare_compiler",
]


def _is_running_interpreter(python: str) -> bool:
    """Whether ``python`` names the interpreter running crossdock, whose answers to questions
    about itself (version, magic number) need no child process."""
    return python == sys.executable


@functools.cache  # an interpreter's version does not change while crossdock runs
def _version_of(executable: str) -> str | None:
    if _is_running_interpreter(executable):
        return f"{sys.version_info.major}.{sys.version_info.minor}"
    try:
        completed = run_child(
            [executable, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return completed.stdout.strip() if completed.returncode == 0 else None


def find_host_python(version: str, *, preferred: str | None = None) -> str | None:
    """A host interpreter whose major.minor is ``version`` ("3.13"), or None.

    Looked for, in order: ``preferred`` (config's bytecode-python, CROSSDOCK_BYTECODE_PYTHON),
    the interpreter running crossdock, UV_PYTHON, and ``python3.13`` on PATH. Each candidate is
    asked its version (a pyenv shim may exist on PATH for a version that is not installed).
    """
    candidates = [
        preferred,
        sys.executable,
        os.environ.get("UV_PYTHON"),
        shutil.which(f"python{version}"),
    ]
    for candidate in candidates:
        if candidate and _version_of(candidate) == version:
            return candidate
    return None


@dataclass(frozen=True)
class BytecodePython:
    """The host interpreter that compiles an image's bytecode, or why there is none."""

    executable: str | None
    # How it was found ("uv python find 3.11"), or why none was (for the build's warning).
    how: str


def bytecode_python(
    version: str, uv: Uv | None = None, *, preferred: str | None = None
) -> BytecodePython:
    """A host interpreter of ``version``: one on this machine (``find_host_python``), else the
    one uv knows (``uv python find``), else one uv installs (``uv python install``) where uv's
    settings allow downloads (``UV_PYTHON_DOWNLOADS`` / ``python-downloads``); else none, with
    uv's reason."""
    local = find_host_python(version, preferred=preferred)
    if local is not None:
        return BytecodePython(local, f"Python {version} on this machine")
    try:
        uv = uv or Uv()
    except ToolError as err:
        return BytecodePython(None, f"no Python {version} on this machine ({err.message})")
    found = _uv_python_find(uv, version)
    if found is not None:
        return BytecodePython(found, f"uv python find {version}")
    installed = uv.run(["python", "install", version], Path.cwd())
    if installed.returncode == 0:
        found = _uv_python_find(uv, version)
        if found is not None:
            return BytecodePython(found, f"uv python install {version}")
    reason = (installed.stderr or installed.stdout).strip().splitlines()
    return BytecodePython(
        None,
        f"no Python {version} on this machine, and `uv python install {version}` failed: "
        + (reason[-1] if reason else f"exit {installed.returncode}"),
    )


def _uv_python_find(uv: Uv, version: str) -> str | None:
    completed = uv.run(["python", "find", "--no-project", version], Path.cwd())
    found = completed.stdout.strip()
    if completed.returncode != 0 or not found or _version_of(found) != version:
        return None
    return found


# What compileall is told to skip (Python 2 leftovers in packages' test folders).
_EXCLUDE = r"[/\\](tests?|test_.*)[/\\].*_py2\.py$"
# Enough sources to be worth a pool of compiler processes (each costs an interpreter start).
_POOL_THRESHOLD = 200
# Bump when what a cached pyc depends on changes (flags, invalidation mode).
_PYC_CACHE_SCHEMA = "1"
# A compile waits for those running in this process that compile any of its pycs (by cache key):
# two platforms' trees compile one after the other with every core each, so the second reuses
# every pyc the first wrote (pure-Python files, and the .py files of native wheels, are the same
# bytes on every architecture); a tree sharing none (the service's code) does not wait.
_RUNNING: list[frozenset[str]] = []
_RUNNING_CHANGED = threading.Condition()

# Run by the image's Python version (3.7 or later): compile the listed files as
# ``compileall -d IMAGE_DIR TREE`` does, each with the folder it has in the image as its ``ddir``
# (so the code objects name the same files), with the same flags; then, where the spec names a
# cache entry for a file, keep its pyc there as ``_store_pyc`` does (the sha256 of the pyc, then
# the pyc; written aside and renamed into place), in the worker that compiled it: the stores run
# on every core beside the compiles instead of one after another in crossdock once all are done.
# It prints, for each file, the (device, inode) of the pyc it wrote, or null (``_Written``).
_DRIVER = """
import compileall, hashlib, json, os, py_compile, re, sys
from concurrent.futures import ProcessPoolExecutor
spec = json.load(sys.stdin)
rx = re.compile(spec["exclude"])
mode = py_compile.PycInvalidationMode.UNCHECKED_HASH
def keep(pyc, entry):
    try:
        with open(pyc, "rb") as f:
            data = f.read()
        os.makedirs(os.path.dirname(entry), exist_ok=True)
        folder, name = os.path.split(entry)
        tmp = os.path.join(folder, ".%s.%d" % (name, os.getpid()))
        try:
            with open(tmp, "wb") as f:
                f.write(hashlib.sha256(data).digest() + data)
            os.replace(tmp, entry)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError:
        pass
def identity(path):
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_dev, st.st_ino]
def compile_one(source, ddir, pyc, entry):
    before = identity(pyc)
    ok = compileall.compile_file(source, ddir, rx=rx, quiet=2, invalidation_mode=mode)
    after = identity(pyc)
    # A pyc is written whole into a new file (py_compile renames it into place): another file
    # than before means this compile wrote it. One left as it was (a wheel's own pyc that
    # compileall found up to date) is neither kept nor reported.
    written = after if ok and after is not None and after != before else None
    if entry and written:
        keep(pyc, entry)
    return ok, written
columns = (spec["files"], spec["ddirs"], spec["pycs"], spec["entries"])
if spec["workers"] > 1:
    with ProcessPoolExecutor(spec["workers"]) as pool:
        results = list(pool.map(compile_one, *columns, chunksize=32))
else:
    results = [compile_one(*row) for row in zip(*columns)]
json.dump([written for _, written in results], sys.stdout)
sys.exit(0 if all(ok for ok, _ in results) else 1)
"""
_IDENTITY = (
    "import importlib.util, sys; "
    "print(sys.implementation.cache_tag, importlib.util.MAGIC_NUMBER.hex(), sys.version)"
)


@dataclass(frozen=True)
class _Interpreter:
    """What a pyc depends on besides its source: which interpreter wrote it."""

    cache_tag: str  # cpython-313: the pyc's file name
    magic: bytes
    identity: str  # version, path, and the binary's size and modification time


@functools.cache
def _interpreter(python: str) -> _Interpreter:
    if _is_running_interpreter(python):
        # What _IDENTITY prints, read here (the same values: the pyc cache's keys are unchanged).
        return _identified(
            python, sys.implementation.cache_tag, importlib.util.MAGIC_NUMBER, sys.version.strip()
        )
    completed = run_child(
        [python, "-c", _IDENTITY], capture_output=True, text=True, timeout=30, check=False
    )
    if completed.returncode != 0:
        raise ToolError(
            f"compiling bytecode with {python} failed: it does not run as Python "
            f"(exit {completed.returncode}): {excerpt(completed.stderr, 500, end=True)}",
            hint="set CROSSDOCK_BYTECODE_PYTHON to a working interpreter of the image's "
            "Python version, or build with --no-bytecode",
        )
    tag, magic, version = completed.stdout.strip().split(" ", 2)
    return _identified(python, tag, bytes.fromhex(magic), version)


def _identified(python: str, tag: str, magic: bytes, version: str) -> _Interpreter:
    real = Path(python).resolve()
    st = real.stat()
    return _Interpreter(tag, magic, f"{version}\0{real}\0{st.st_size}\0{st.st_mtime_ns}")


def compile_bytecode(
    tree: Path,
    python: str,
    *,
    image_dir: str,
    cache_dir: Path | None = None,
    offer: bool = False,
) -> None:
    """Write ``__pycache__/*.cpython-XY.pyc`` next to every ``.py`` file under ``tree``.

    ``image_dir`` is where ``tree`` lands in the image; tracebacks name files there (Python also
    fixes the file name up when it loads a pyc, so this is for readability).

    With ``cache_dir``, each pyc is kept by the hash of what it is made from (the source's
    bytes, its path in the image, the interpreter), so a file compiled once (by an earlier
    build, or for the other architecture) is never compiled again. A cached pyc is checked on
    read (its checksum, and a header naming this interpreter's magic number and a hash-based
    pyc), and anything else is compiled afresh: the cache changes no byte of the image.

    With ``offer``, the pycs compiled here are offered to the trees compiled after it in this
    process (``_Written``: the other platform's tree links them instead of copying the cache's);
    the caller then renames ``tree`` only with ``move_tree`` and calls ``forget_tree`` before
    removing it.
    """
    interpreter = _interpreter(python)
    # Each source's key (and the hash its pyc's header must hold) is made before waiting for
    # another tree's compile (its workers are other processes: this thread reads and hashes
    # meanwhile); the sources' bytes are not kept (a large tree's would be tens of MiB).
    planned: list[tuple[Path, Path, str, bytes | None]] = []
    for source in _sources(tree):
        rel = source.relative_to(tree)
        target = source.parent / "__pycache__" / f"{source.name[:-3]}.{interpreter.cache_tag}.pyc"
        text = source.read_bytes()
        key = _pyc_key(interpreter, posixpath.join(image_dir, rel.as_posix()), text)
        planned.append((source, target, key, _source_hash(interpreter, text)))
    keys = frozenset(key for _, _, key, _ in planned)
    with _RUNNING_CHANGED:
        _RUNNING_CHANGED.wait_for(lambda: not any(keys & running for running in _RUNNING))
        _RUNNING.append(keys)
    try:
        missing: list[tuple[Path, Path, str]] = []
        for source, target, key, source_hash in planned:
            if _WRITTEN.link(key, target):
                continue
            cached = _load_pyc(cache_dir, key, interpreter, source_hash) if cache_dir else None
            if cached is None:
                missing.append((source, target, key))
            else:
                target.parent.mkdir(exist_ok=True)
                # A new file: one a wheel shipped is a hard link into uv's cache (resolve.uv).
                target.unlink(missing_ok=True)
                target.write_bytes(cached)
        if missing:
            # The compile's workers keep each pyc they write in the cache (a file that does not
            # compile has no pyc, and nothing is kept for it).
            written = _compile(
                tree,
                python,
                image_dir,
                [
                    (source, target, _entry(cache_dir, key) if cache_dir is not None else None)
                    for source, target, key in missing
                ],
            )
            if offer:
                _WRITTEN.record(
                    tree,
                    (
                        (key, target.relative_to(tree), file)
                        for (_, target, key), file in zip(missing, written, strict=True)
                        if file is not None
                    ),
                )
    finally:
        with _RUNNING_CHANGED:
            _RUNNING.remove(keys)
            _RUNNING_CHANGED.notify_all()


class _Written:
    """The pycs this process's compiles wrote into trees, by cache key: another tree of the
    same build (the other platform's) takes each by a hard link instead of reading, checking
    and writing the cache's copy. A key names everything a pyc depends on (the source's bytes,
    its path in the image, the interpreter, the invalidation mode), and the linked file is the
    one the compile wrote (its device and inode, which the compiler reported, are checked on
    the link): nothing writes into a tree's files once it is compiled, so sharing them is
    safe. A tree is followed when it is renamed into the tree cache (``move_tree``) and
    forgotten when dropped (``forget_tree``); a link that fails leaves the cache's way."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._roots: dict[int, Path] = {}  # a tree's folder now, by the number it was given
        self._trees: dict[Path, int] = {}
        self._pycs: dict[str, tuple[int, Path, tuple[int, int]]] = {}
        self._next = 1

    def record(self, tree: Path, pycs: Iterable[tuple[str, Path, tuple[int, int]]]) -> None:
        """Keep (key, the pyc's path under ``tree``, its device and inode) of each pyc."""
        with self._lock:
            number = self._trees.get(tree)
            if number is None:
                number = self._next
                self._next += 1
                self._place(number, tree)
                # The oldest trees' pycs are let go (memory stays flat over many builds in one
                # process): a build offers its platforms' trees to one another.
                while len(self._roots) > _OFFERED_TREES:
                    self._drop(min(self._roots))
            # The latest compile's file for a key: it was compiled because no earlier tree's
            # file for it could be linked (gone, or another file now).
            for key, rel, file in pycs:
                self._pycs[key] = (number, rel, file)

    def link(self, key: str, target: Path) -> bool:
        """Hard-link the pyc written for ``key`` at ``target``; False when there is none (or
        it is no longer the file the compile wrote): the caller takes the cache's way."""
        with self._lock:
            found = self._pycs.get(key)
            if found is None:
                return False
            number, rel, file = found
            root = self._roots.get(number)
            if root is None:
                return False
            # Under the lock: a tree is renamed (move_tree) or forgotten under it too.
            source = root / rel
            try:
                target.parent.mkdir(exist_ok=True)
                # A new file: one a wheel shipped is a hard link into uv's cache (resolve.uv).
                target.unlink(missing_ok=True)
                os.link(source, target)
            except OSError:
                return False
        st = target.stat()
        if (st.st_dev, st.st_ino) != file:
            target.unlink()
            return False
        return True

    def move(self, old: Path, new: Path) -> None:
        with self._lock:
            old.rename(new)
            number = self._trees.pop(old, None)
            if number is not None:
                self._place(number, new)

    def _place(self, number: int, tree: Path) -> None:
        """Tree ``number`` is now at ``tree`` (the caller holds the lock). A tree recorded
        there before is gone (removed by another process, say ``crossdock cache prune``, and
        the same key put there again): its pycs are no longer offered, and one folder is
        never the place of two trees (dropping the old one would drop the new one's too)."""
        replaced = self._trees.get(tree)
        if replaced is not None:
            self._drop(replaced)
        self._roots[number] = tree
        self._trees[tree] = number

    def forget(self, tree: Path) -> None:
        with self._lock:
            number = self._trees.get(tree)
            if number is not None:
                self._drop(number)

    def _drop(self, number: int) -> None:
        """Offer the pycs of tree ``number`` no longer (the caller holds the lock)."""
        del self._trees[self._roots.pop(number)]
        self._pycs = {k: v for k, v in self._pycs.items() if v[0] != number}


# How many trees' pycs are offered at most: the most a build compiles, one per platform.
_OFFERED_TREES = 4
_WRITTEN = _Written()


def move_tree(old: Path, new: Path) -> None:
    """Rename a compiled tree from ``old`` to ``new`` (an OSError as ``Path.rename``), its
    pycs still offered to the trees compiled after it."""
    _WRITTEN.move(old, new)


def forget_tree(tree: Path) -> None:
    """A compiled tree is about to be removed: its pycs are no longer offered."""
    _WRITTEN.forget(tree)


def _source_hash(interpreter: _Interpreter, source: bytes) -> bytes | None:
    """The source hash a pyc of ``source`` holds in its header, when computable here (crossdock
    runs on the image's Python version, as it usually does), else None."""
    if interpreter.magic != importlib.util.MAGIC_NUMBER:
        return None
    return importlib.util.source_hash(source)


def _sources(tree: Path) -> list[Path]:
    """The files compileall compiles under ``tree``: ``*.py`` files (symlinks to files too),
    not in ``__pycache__``, not under symlinked folders, not matching the exclusion."""
    exclude = re.compile(_EXCLUDE)
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(tree, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(filenames):
            path = Path(dirpath, name)
            if name.endswith(".py") and not exclude.search(str(path)) and path.is_file():
                found.append(path)
    return found


def _pyc_key(interpreter: _Interpreter, image_path: str, source: bytes) -> str:
    h = hashlib.sha256(f"{_PYC_CACHE_SCHEMA}\0{interpreter.identity}\0{image_path}\0".encode())
    h.update(source)
    return h.hexdigest()


def _entry(cache_dir: Path, key: str) -> Path:
    return cache_dir / key[:2] / f"{key}.pyc"


def _load_pyc(
    cache_dir: Path, key: str, interpreter: _Interpreter, source_hash: bytes | None
) -> bytes | None:
    try:
        data = _entry(cache_dir, key).read_bytes()
    except OSError:
        return None
    checksum, pyc = data[:32], data[32:]
    # unchecked-hash pycs: the magic number, then flags 0b01 (hash-based, not checked).
    header_ok = pyc[:4] == interpreter.magic and pyc[4:8] == b"\x01\x00\x00\x00"
    if hashlib.sha256(pyc).digest() != checksum or not header_ok:
        return None
    # The header's hash of the source must be this source's (``_source_hash``).
    if source_hash is not None and pyc[8:16] != source_hash:
        return None
    return pyc


def _image_folder(image_dir: str, rel_dir: Path) -> str:
    return image_dir if rel_dir == Path() else posixpath.join(image_dir, rel_dir.as_posix())


def prepare_compiler(python: str) -> None:
    """Start a compiler child of ``python`` now, for the next compile with it to use: its
    interpreter starts and imports while the build does other work, then waits for its list of
    files on stdin (a code-only rebuild's one file then waits for no interpreter to start). It
    is the command, environment and input a child started at the compile gets, so the same
    bytes; one not used is ended when crossdock exits."""
    env = _compile_env()
    with _READY_LOCK:
        if python in _READY:
            return
        try:
            process = start_child(
                [python, "-c", _DRIVER],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
            )
        except OSError:
            return  # the compile starts its own child and reports what is wrong
        if not _READY_CLEANUP:
            atexit.register(_dismiss_ready)
            _READY_CLEANUP.append(True)
        _READY[python] = (process, env)


# Compiler children started ahead of need, by interpreter, with the environment they got.
_READY: dict[str, tuple[subprocess.Popen[str], dict[str, str]]] = {}
_READY_LOCK = threading.Lock()
_READY_CLEANUP: list[bool] = []


def _take_ready(python: str, env: dict[str, str]) -> subprocess.Popen[str] | None:
    """The compiler child started for ``python``, if one waits and got ``env``."""
    with _READY_LOCK:
        ready = _READY.pop(python, None)
    if ready is None:
        return None
    process, started_with = ready
    if started_with != env or process.poll() is not None:
        _dismiss(process)
        return None
    return process


def _dismiss(process: subprocess.Popen[str]) -> None:
    process.kill()
    process.communicate()


def _dismiss_ready() -> None:
    with _READY_LOCK:
        ready = list(_READY.values())
        _READY.clear()
    for process, _ in ready:
        _dismiss(process)


def _compile_env() -> dict[str, str]:
    return {**os.environ, "PYTHONHASHSEED": "0", "SOURCE_DATE_EPOCH": "0"}


def _compile(
    tree: Path, python: str, image_dir: str, files: list[tuple[Path, Path, Path | None]]
) -> list[tuple[int, int] | None]:
    """Compile each (source, its pyc, the pyc cache's entry for it or None) of ``files``; for
    each, the (device, inode) of the pyc the compile wrote, or None."""
    env = _compile_env()
    spec = {
        "exclude": _EXCLUDE,
        "files": [str(source) for source, _, _ in files],
        "ddirs": [_image_folder(image_dir, s.parent.relative_to(tree)) for s, _, _ in files],
        "pycs": [str(pyc) for _, pyc, _ in files],
        "entries": [str(entry) if entry is not None else None for _, _, entry in files],
        # One worker per core for many files (CPU-bound); a few compile faster in one process
        # than it takes to start a pool of workers.
        "workers": (os.cpu_count() or 1) if len(files) >= _POOL_THRESHOLD else 1,
    }
    ready = _take_ready(python, env)
    if ready is not None:
        stdout, stderr = ready.communicate(json.dumps(spec))
        returncode = ready.returncode
    else:
        completed = run_child(
            [python, "-c", _DRIVER],
            input=json.dumps(spec),
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        stdout, stderr, returncode = completed.stdout, completed.stderr, completed.returncode
    # Exit 1 when some file does not compile (a Python 2 leftover in a package's test folder,
    # say): that file simply has no pyc, exactly as pip would leave it. Anything else (the
    # interpreter missing, a crash, an exit 1 that compiled nothing) is a failure.
    compiled_nothing = returncode == 1 and not any(tree.rglob("*.pyc"))
    if returncode not in (0, 1) or compiled_nothing:
        raise ToolError(
            f"compiling bytecode with {python} failed (exit {returncode}): "
            f"{excerpt(stderr, 2000, end=True)}",
            hint="set CROSSDOCK_BYTECODE_PYTHON to a working interpreter of the image's "
            "Python version, or build with --no-bytecode",
        )
    return _written_files(stdout, len(files))


def _written_files(stdout: str, count: int) -> list[tuple[int, int] | None]:
    """The driver's list of what it wrote; an answer of another shape offers nothing (each
    pyc then stays where the compile put it, and other trees take the cache's copies)."""
    try:
        answer = json.loads(stdout)
    except ValueError:
        return [None] * count
    if not isinstance(answer, list) or len(answer) != count:
        return [None] * count
    return [
        (file[0], file[1])
        if isinstance(file, list) and len(file) == 2 and all(type(n) is int for n in file)
        else None
        for file in answer
    ]
