import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import threading

import pytest

from crossdock.errors import ToolError
from crossdock.layers import entries_from_tree
from crossdock.resolve import bytecode
from crossdock.resolve.bytecode import bytecode_python, compile_bytecode, find_host_python

HOST_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"


def _tree(root):
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("VALUE = {'b', 'a'}\n")
    (root / "pkg" / "broken.py").write_text("print 'python 2'\n")
    return root


def test_find_host_python_checks_the_version():
    assert find_host_python(HOST_VERSION) is not None
    assert find_host_python("2.1") is None
    assert find_host_python(HOST_VERSION, preferred=sys.executable) == sys.executable
    # a bad override (config's bytecode-python) is skipped, not fatal
    assert find_host_python(HOST_VERSION, preferred="/nonexistent/python") is not None


def test_compile_writes_unchecked_hash_pycs_reproducibly(tmp_path):
    first = _tree(tmp_path / "one")
    second = _tree(tmp_path / "two")
    compile_bytecode(first, sys.executable, image_dir="/opt/packages")
    compile_bytecode(second, sys.executable, image_dir="/opt/packages")
    tag = sys.implementation.cache_tag
    pyc = first / "pkg" / "__pycache__" / f"__init__.{tag}.pyc"
    data = pyc.read_bytes()
    assert data[:4] == importlib.util.MAGIC_NUMBER
    # PEP 552 flags: bit 0 = hash-based, bit 1 = check_source; unchecked-hash is 0b01.
    assert int.from_bytes(data[4:8], "little") == 0b01
    assert data == (second / "pkg" / "__pycache__" / pyc.name).read_bytes()
    # A module that does not compile simply gets no pyc (as pip leaves it), no failure.
    assert not (first / "pkg" / "__pycache__" / f"broken.{tag}.pyc").exists()


def test_compile_failure_of_the_interpreter_is_an_error(tmp_path):
    with pytest.raises(ToolError, match="compiling bytecode"):
        compile_bytecode(_tree(tmp_path), "/bin/false", image_dir="/x")


def test_layers_keep_bytecode_only_when_asked(tmp_path):
    tree = _tree(tmp_path / "t")
    compile_bytecode(tree, sys.executable, image_dir="/x")
    without = {e.path for e in entries_from_tree(tree, "x")}
    with_bytecode = {e.path for e in entries_from_tree(tree, "x", keep_bytecode=True)}
    assert not any("__pycache__" in p for p in without)
    assert any(p.endswith(".pyc") for p in with_bytecode)
    assert without < with_bytecode


def _other_host_python() -> tuple[str, str]:
    """Debian 12's /usr/bin/python3 (3.11), when it is another version than this test's."""
    import subprocess

    exe = "/usr/bin/python3"
    try:
        version = subprocess.run(
            [exe, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("no /usr/bin/python3")
    if version == HOST_VERSION:
        pytest.skip("/usr/bin/python3 is this test's own version")
    return exe, version


def test_bytecode_python_asks_uv_when_the_host_has_none(monkeypatch, tmp_path):
    """No python3.X on PATH under its versioned name, but uv finds one (as `python3`)."""
    exe, version = _other_host_python()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(exe)
    monkeypatch.setenv("PATH", str(bin_dir))
    for name in ("CROSSDOCK_BYTECODE_PYTHON", "UV_PYTHON", "VIRTUAL_ENV", "PYENV_VERSION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("UV_PYTHON_DOWNLOADS", "never")
    assert find_host_python(version) is None
    found = bytecode_python(version)
    assert found.executable is not None
    assert found.how == f"uv python find {version}"


def test_bytecode_python_says_why_uv_installed_none(monkeypatch, tmp_path):
    """Downloads not allowed (as on these machines): uv's own reason reaches the warning."""
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("UV_PYTHON_DOWNLOADS", "never")
    monkeypatch.delenv("CROSSDOCK_BYTECODE_PYTHON", raising=False)
    monkeypatch.delenv("UV_PYTHON", raising=False)
    found = bytecode_python("3.8")
    assert found.executable is None
    assert found.how.startswith("no Python 3.8 on this machine, and `uv python install 3.8` failed")
    assert "not allowed" in found.how


# -- the per-file bytecode cache: it saves compiling, and changes no byte ---------------------

TAG = sys.implementation.cache_tag


def _pycs(tree):
    return {p.relative_to(tree).as_posix(): p.read_bytes() for p in sorted(tree.rglob("*.pyc"))}


def _compileall(tree, image_dir):
    """What crossdock ran before the cache: compileall over the whole tree."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "compileall",
            "-q",
            "-q",
            "--invalidation-mode",
            "unchecked-hash",
            "-d",
            image_dir,
            str(tree),
        ],
        env={**os.environ, "PYTHONHASHSEED": "0"},
        check=False,
    )


def _deep_tree(root):
    # Files at the top and two folders down: each code object names its place in the image.
    _tree(root)
    (root / "top.py").write_text("def f():\n    raise ValueError\n")
    (root / "pkg" / "sub").mkdir()
    (root / "pkg" / "sub" / "deep.py").write_text("X = frozenset({'x', 'y', 'z'})\n")
    return root


def test_the_same_bytes_as_compileall_with_and_without_the_cache(tmp_path):
    reference = _deep_tree(tmp_path / "reference")
    _compileall(reference, "/opt/packages")
    cache = tmp_path / "cache"
    cold = _deep_tree(tmp_path / "cold")
    compile_bytecode(cold, sys.executable, image_dir="/opt/packages", cache_dir=cache)
    warm = _deep_tree(tmp_path / "warm")
    compile_bytecode(warm, sys.executable, image_dir="/opt/packages", cache_dir=cache)
    assert _pycs(reference) == _pycs(cold) == _pycs(warm)
    assert len(_pycs(reference)) == 3  # not vacuous: top, pkg/__init__, pkg/sub/deep


def test_a_cached_pyc_is_reused_only_for_the_same_source_and_path(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    compile_bytecode(_tree(tmp_path / "one"), sys.executable, image_dir="/a", cache_dir=cache)
    compiled: list[list[str]] = []
    real = bytecode._compile

    def spy(tree, python, image_dir, files):
        compiled.append(sorted(source.name for source, _, _ in files))
        real(tree, python, image_dir, files)

    monkeypatch.setattr(bytecode, "_compile", spy)
    # The same sources at the same image path (another platform's tree): nothing compiled,
    # except the file that does not compile (it has no pyc to reuse).
    compile_bytecode(_tree(tmp_path / "two"), sys.executable, image_dir="/a", cache_dir=cache)
    assert compiled == [["broken.py"]]
    # Another source under the same name (another wheel's file): compiled, not reused.
    changed = _tree(tmp_path / "three")
    (changed / "pkg" / "__init__.py").write_text("VALUE = 2\n")
    compile_bytecode(changed, sys.executable, image_dir="/a", cache_dir=cache)
    assert compiled[-1] == ["__init__.py", "broken.py"]
    reference = _tree(tmp_path / "reference")
    (reference / "pkg" / "__init__.py").write_text("VALUE = 2\n")
    _compileall(reference, "/a")
    assert _pycs(changed) == _pycs(reference)
    # The same source placed elsewhere in the image (tracebacks name the path): compiled.
    compile_bytecode(_tree(tmp_path / "four"), sys.executable, image_dir="/b", cache_dir=cache)
    assert compiled[-1] == ["__init__.py", "broken.py"]


@pytest.mark.parametrize("files", [3, bytecode._POOL_THRESHOLD])
def test_the_compiles_workers_keep_each_pyc_in_the_cache(tmp_path, monkeypatch, files):
    """Each worker (one process, or a pool for many files) keeps the pycs it writes in the
    cache, as checksum + pyc under the file's key, with nothing left beside them; the next tree
    of the same sources compiles nothing."""
    cache = tmp_path / "cache"
    first = tmp_path / "first"
    (first / "pkg").mkdir(parents=True)
    for n in range(files):
        (first / "pkg" / f"m{n:03}.py").write_text(f"VALUE = {n}\n")
    compile_bytecode(first, sys.executable, image_dir="/a", cache_dir=cache)
    interpreter = bytecode._interpreter(sys.executable)
    for n in range(files):
        source = first / "pkg" / f"m{n:03}.py"
        key = bytecode._pyc_key(interpreter, f"/a/pkg/{source.name}", source.read_bytes())
        pyc = (first / "pkg" / "__pycache__" / f"m{n:03}.{TAG}.pyc").read_bytes()
        assert (cache / key[:2] / f"{key}.pyc").read_bytes() == hashlib.sha256(pyc).digest() + pyc
    assert len(list(cache.rglob("*"))) == files + len({p.parent for p in cache.rglob("*.pyc")})
    compiled: list[object] = []
    monkeypatch.setattr(bytecode, "_compile", lambda *args: compiled.append(args))
    second = tmp_path / "second"
    shutil.copytree(first, second, ignore=shutil.ignore_patterns("__pycache__"))
    compile_bytecode(second, sys.executable, image_dir="/a", cache_dir=cache)
    assert compiled == []
    assert _pycs(second) == _pycs(first)


def test_a_poisoned_cache_entry_is_detected_and_compiled_afresh(tmp_path):
    cache = tmp_path / "cache"
    reference = _tree(tmp_path / "reference")
    compile_bytecode(reference, sys.executable, image_dir="/a", cache_dir=cache)
    [entry] = list(cache.rglob("*.pyc"))
    data = bytearray(entry.read_bytes())
    data[-1] ^= 0xFF  # a flipped byte in the code object: the checksum no longer matches
    entry.write_bytes(bytes(data))
    again = _tree(tmp_path / "again")
    compile_bytecode(again, sys.executable, image_dir="/a", cache_dir=cache)
    assert _pycs(again) == _pycs(reference)
    # A well-formed entry of another interpreter (another magic number) is refused too.
    pyc = (reference / "pkg" / "__pycache__" / f"__init__.{TAG}.pyc").read_bytes()
    foreign = b"\x00\x00\r\n" + pyc[4:]
    entry.write_bytes(hashlib.sha256(foreign).digest() + foreign)
    third = _tree(tmp_path / "third")
    compile_bytecode(third, sys.executable, image_dir="/a", cache_dir=cache)
    assert _pycs(third) == _pycs(reference)


def test_a_cache_entry_for_other_source_is_refused_even_with_a_valid_checksum(tmp_path):
    # An entry whose bytes are a valid pyc of *another* source (checksum recomputed, as a
    # writer of a shared cache could): its header's source hash does not match, so it is
    # compiled afresh.
    cache = tmp_path / "cache"
    reference = _tree(tmp_path / "reference")
    compile_bytecode(reference, sys.executable, image_dir="/a", cache_dir=cache)
    other = _tree(tmp_path / "other")
    (other / "pkg" / "__init__.py").write_text("VALUE = 'evil'\n")
    compile_bytecode(other, sys.executable, image_dir="/a")
    evil = (other / "pkg" / "__pycache__" / f"__init__.{TAG}.pyc").read_bytes()
    [entry] = list(cache.rglob("*.pyc"))
    entry.write_bytes(hashlib.sha256(evil).digest() + evil)
    again = _tree(tmp_path / "again")
    compile_bytecode(again, sys.executable, image_dir="/a", cache_dir=cache)
    assert _pycs(again) == _pycs(reference)


def test_the_running_interpreter_is_asked_nothing_in_a_child_and_answers_the_same(
    tmp_path, monkeypatch
):
    """Its version and identity (part of every pyc cache key) are read in this process, and
    equal what a child of the same binary answers, so cached pycs keep their keys."""
    link = tmp_path / "python-elsewhere"  # the same binary under a name crossdock does not know
    link.symlink_to(os.path.realpath(sys.executable))
    started: list[str] = []
    from crossdock.children import run_child as real_run_child

    def spy(args, **kwargs):
        started.append(str(args[0]))
        return real_run_child(args, **kwargs)

    monkeypatch.setattr(bytecode, "run_child", spy)
    bytecode._interpreter.cache_clear()
    bytecode._version_of.cache_clear()
    here = (bytecode._interpreter(sys.executable), bytecode._version_of(sys.executable))
    assert started == []
    child = (bytecode._interpreter(str(link)), bytecode._version_of(str(link)))
    assert started == [str(link), str(link)]
    assert here == child
    assert here[1] == HOST_VERSION


# -- a compiler child started ahead of need (prepare_compiler) ---------------------------------


def _children_started(monkeypatch) -> list[list[str]]:
    from crossdock.children import run_child as real_run_child

    started: list[list[str]] = []

    def spy(args, **kwargs):
        started.append([str(a) for a in args])
        return real_run_child(args, **kwargs)

    monkeypatch.setattr(bytecode, "run_child", spy)
    return started


def test_a_prepared_compiler_is_used_and_writes_compilealls_bytes(tmp_path, monkeypatch):
    reference = _deep_tree(tmp_path / "reference")
    _compileall(reference, "/opt/packages")
    started = _children_started(monkeypatch)
    bytecode.prepare_compiler(sys.executable)
    tree = _deep_tree(tmp_path / "tree")
    compile_bytecode(tree, sys.executable, image_dir="/opt/packages")
    assert started == []  # the prepared child compiled: none was started at the compile
    assert sys.executable not in bytecode._READY  # and it was used up
    assert _pycs(tree) == _pycs(reference)
    assert len(_pycs(reference)) == 3
    # The next compile starts its own child again.
    compile_bytecode(_deep_tree(tmp_path / "again"), sys.executable, image_dir="/opt/packages")
    assert len(started) == 1


def test_a_prepared_compiler_is_not_used_after_the_environment_changed(tmp_path, monkeypatch):
    started = _children_started(monkeypatch)
    bytecode.prepare_compiler(sys.executable)
    [(waiting, _)] = bytecode._READY.values()
    monkeypatch.setenv("CROSSDOCK_TEST_CHANGED", "1")
    compile_bytecode(_tree(tmp_path / "t"), sys.executable, image_dir="/x")
    assert len(started) == 1  # a fresh child, with the environment of now
    assert waiting.returncode is not None  # the stale one was ended


def test_an_unused_prepared_compiler_is_ended_and_a_broken_one_still_reports(tmp_path):
    bytecode.prepare_compiler(sys.executable)
    [(waiting, _)] = bytecode._READY.values()
    bytecode._dismiss_ready()  # what runs when crossdock exits
    assert waiting.returncode is not None
    assert not bytecode._READY
    # A prepared child of a broken interpreter changes nothing: the compile says what is wrong.
    bytecode.prepare_compiler("/bin/false")
    with pytest.raises(ToolError, match="compiling bytecode"):
        compile_bytecode(_tree(tmp_path / "t"), "/bin/false", image_dir="/x")
    bytecode._dismiss_ready()
    assert not bytecode._READY


def test_a_pyc_a_wheel_shipped_linked_to_uvs_cache_is_replaced_not_written_into(tmp_path):
    """A wheel's own .pyc is a hard link into uv's cache (resolve.uv installs links): whether
    compiled or taken from the pyc cache, the tree gets a new file and uv's stays as it was."""
    cache = tmp_path / "pyc-cache"
    compile_bytecode(_tree(tmp_path / "one"), sys.executable, image_dir="/a", cache_dir=cache)
    expected = _pycs(tmp_path / "one")
    uv_cache = tmp_path / "uv-cache"
    uv_cache.mkdir()
    (uv_cache / "shipped.pyc").write_bytes(b"the wheel's own pyc")
    for name, cached in (("two", cache), ("three", None)):  # from the pyc cache, compiled
        tree = _tree(tmp_path / name)
        pyc = tree / "pkg" / "__pycache__" / f"__init__.{sys.implementation.cache_tag}.pyc"
        pyc.parent.mkdir()
        os.link(uv_cache / "shipped.pyc", pyc)
        compile_bytecode(tree, sys.executable, image_dir="/a", cache_dir=cached)
        assert _pycs(tree) == expected
        assert (uv_cache / "shipped.pyc").read_bytes() == b"the wheel's own pyc"


def test_a_compile_waits_for_a_running_one_only_when_they_share_pycs(tmp_path, monkeypatch):
    """Two platforms' trees compile one after the other, so the second reuses the first's pycs;
    a tree sharing none of them (the service's own code beside the dependencies) does not wait
    for the dependencies' compile."""
    cache = tmp_path / "cache"
    release = threading.Event()
    compiling = threading.Event()
    compiled: list[list[str]] = []
    real = bytecode._compile

    def spy(tree, python, image_dir, files):
        compiled.append(sorted(source.name for source, _, _ in files))
        if tree.name == "deps-arm64":
            compiling.set()
            assert release.wait(60)
        real(tree, python, image_dir, files)

    monkeypatch.setattr(bytecode, "_compile", spy)

    def compile_in_thread(tree, image_dir="/deps"):
        thread = threading.Thread(
            target=compile_bytecode,
            args=(tree, sys.executable),
            kwargs={"image_dir": image_dir, "cache_dir": cache},
            daemon=True,
        )
        thread.start()
        return thread

    try:
        first = compile_in_thread(_deep_tree(tmp_path / "deps-arm64"))
        assert compiling.wait(60)
        second = compile_in_thread(_deep_tree(tmp_path / "deps-amd64"))
        # The service's code shares no pyc with them: compiled now, while the first is held.
        app = tmp_path / "app"
        app.mkdir()
        (app / "main.py").write_text("print('hi')\n")
        app_compile = compile_in_thread(app, "/app")
        app_compile.join(60)
        assert not app_compile.is_alive()
        assert _pycs(app) and compiled[-1] == ["main.py"]
        assert len(compiled) == 2  # the other dependency tree waits for the held one
    finally:
        release.set()
    first.join(60)
    second.join(60)
    # It reused every pyc the first wrote: only the file that does not compile was tried again.
    assert compiled[2:] == [["broken.py"]]
    assert _pycs(tmp_path / "deps-amd64") == _pycs(tmp_path / "deps-arm64")


def _inode(path):
    st = path.stat()
    return st.st_dev, st.st_ino


def test_an_offered_trees_pycs_are_linked_into_the_next_tree_of_the_same_sources(
    tmp_path, monkeypatch
):
    """The other platform's tree takes each pyc the first tree's compile wrote by a hard link
    (the same file, not the cache's copy read, checked and written again), only where the key
    is the same: a changed source, or the same source elsewhere in the image, is not linked.
    The bytes are compileall's either way."""
    cache = tmp_path / "cache"
    first = _deep_tree(tmp_path / "first")
    compile_bytecode(first, sys.executable, image_dir="/a", cache_dir=cache, offer=True)
    loaded: list[str] = []
    real_load = bytecode._load_pyc

    def spy(cache_dir, key, interpreter, source_hash):
        loaded.append(key)
        return real_load(cache_dir, key, interpreter, source_hash)

    monkeypatch.setattr(bytecode, "_load_pyc", spy)
    second = _deep_tree(tmp_path / "second")
    (second / "top.py").write_text("def f():\n    raise KeyError\n")  # another source
    compile_bytecode(second, sys.executable, image_dir="/a", cache_dir=cache)
    # Only the changed file and the one that does not compile went the cache's way.
    assert len(loaded) == 2
    pyc = f"__pycache__/__init__.{TAG}.pyc"
    deep = f"__pycache__/deep.{TAG}.pyc"
    assert _inode(second / "pkg" / pyc) == _inode(first / "pkg" / pyc)
    assert _inode(second / "pkg" / "sub" / deep) == _inode(first / "pkg" / "sub" / deep)
    top = f"__pycache__/top.{TAG}.pyc"
    assert _inode(second / top) != _inode(first / top)
    reference = _deep_tree(tmp_path / "reference")
    (reference / "top.py").write_text("def f():\n    raise KeyError\n")
    _compileall(reference, "/a")
    assert _pycs(second) == _pycs(reference)
    # The same sources at another image path: nothing linked (the code names its file).
    elsewhere = _deep_tree(tmp_path / "elsewhere")
    compile_bytecode(elsewhere, sys.executable, image_dir="/b", cache_dir=cache)
    assert _inode(elsewhere / "pkg" / pyc) != _inode(first / "pkg" / pyc)
    bytecode.forget_tree(first)


def test_an_offered_tree_is_followed_when_moved_and_not_after_it_is_forgotten(tmp_path):
    """The first tree is renamed into the tree cache (move_tree): later trees link from its new
    place; once forgotten (about to be removed), and for a pyc that is no longer the file the
    compile wrote, they take the cache's copy: the same bytes, another file."""
    cache = tmp_path / "cache"
    scratch = _deep_tree(tmp_path / "scratch")
    compile_bytecode(scratch, sys.executable, image_dir="/a", cache_dir=cache, offer=True)
    expected = _pycs(scratch)
    moved = tmp_path / "moved"
    bytecode.move_tree(scratch, moved)
    assert not scratch.exists()
    pyc = f"pkg/__pycache__/__init__.{TAG}.pyc"
    second = _deep_tree(tmp_path / "second")
    compile_bytecode(second, sys.executable, image_dir="/a", cache_dir=cache)
    assert _inode(second / pyc) == _inode(moved / pyc)
    assert _pycs(second) == expected
    # A pyc replaced by another file after the compile (not the file it wrote): not linked.
    replaced = moved / pyc
    data = replaced.read_bytes()
    replaced.unlink()
    replaced.write_bytes(data)
    third = _deep_tree(tmp_path / "third")
    compile_bytecode(third, sys.executable, image_dir="/a", cache_dir=cache)
    assert _inode(third / pyc) != _inode(moved / pyc)
    assert _pycs(third) == expected
    bytecode.forget_tree(moved)
    fourth = _deep_tree(tmp_path / "fourth")
    compile_bytecode(fourth, sys.executable, image_dir="/a", cache_dir=cache)
    top = f"__pycache__/top.{TAG}.pyc"
    assert _inode(fourth / top) != _inode(moved / top)
    assert _pycs(fourth) == expected


def test_a_pyc_compileall_leaves_as_it_was_is_neither_kept_nor_offered(tmp_path):
    """A wheel's own timestamp pyc that compileall finds up to date is not rewritten: the
    compile did not write it, so the cache keeps nothing for it and no other tree links it."""
    import py_compile

    cache = tmp_path / "cache"
    first = tmp_path / "first"
    first.mkdir()
    (first / "shipped.py").write_text("VALUE = 1\n")
    shipped = first / "__pycache__" / f"shipped.{TAG}.pyc"
    py_compile.compile(str(first / "shipped.py"), cfile=str(shipped))
    before = shipped.read_bytes()
    compile_bytecode(first, sys.executable, image_dir="/a", cache_dir=cache, offer=True)
    assert shipped.read_bytes() == before  # compileall left it (not vacuous: it is the same)
    assert list(cache.rglob("*.pyc")) == []
    second = tmp_path / "second"
    second.mkdir()
    (second / "shipped.py").write_text("VALUE = 1\n")
    compile_bytecode(second, sys.executable, image_dir="/a", cache_dir=cache)
    assert _inode(second / "__pycache__" / f"shipped.{TAG}.pyc") != _inode(shipped)
    bytecode.forget_tree(first)


def test_only_the_latest_trees_pycs_are_offered(tmp_path, monkeypatch):
    """Memory stays flat over many builds in one process: once more trees than a build has
    platforms were compiled, the oldest one's pycs are no longer offered (its sources then go
    the cache's way, with the same bytes)."""
    monkeypatch.setattr(bytecode, "_OFFERED_TREES", 2)
    cache = tmp_path / "cache"
    oldest = _tree(tmp_path / "oldest")
    compile_bytecode(oldest, sys.executable, image_dir="/a", cache_dir=cache, offer=True)
    for n in range(2):  # two newer trees of other sources
        newer = tmp_path / f"newer{n}"
        (newer / "pkg").mkdir(parents=True)
        (newer / "pkg" / "__init__.py").write_text(f"VALUE = {n}\n")
        compile_bytecode(newer, sys.executable, image_dir="/a", cache_dir=cache, offer=True)
    again = _tree(tmp_path / "again")
    compile_bytecode(again, sys.executable, image_dir="/a", cache_dir=cache)
    pyc = f"pkg/__pycache__/__init__.{TAG}.pyc"
    assert _inode(again / pyc) != _inode(oldest / pyc)
    assert _pycs(again) == _pycs(oldest)
    # The newest is still offered (not vacuous: offering works in this process).
    latest = tmp_path / "latest"
    (latest / "pkg").mkdir(parents=True)
    (latest / "pkg" / "__init__.py").write_text("VALUE = 1\n")
    compile_bytecode(latest, sys.executable, image_dir="/a", cache_dir=cache)
    assert _inode(latest / pyc) == _inode(tmp_path / "newer1" / pyc)
    for tree in ("newer0", "newer1"):
        bytecode.forget_tree(tmp_path / tree)


def test_a_tree_put_again_where_a_removed_one_stood_is_offered_and_let_go_cleanly(
    tmp_path, monkeypatch
):
    """A process that builds many times (a library caller, a test run) shares the tree cache
    with other crossdock processes: a tree it moved into place may be removed by another one
    (``crossdock cache prune``) and the same key installed and moved there again. The new
    tree's pycs are the ones offered, and letting the trees go later raises nothing: the old
    and new tree under one folder were two records of it, and dropping the old one took the
    new one's name away (a KeyError from the next compile, the build's traceback)."""
    monkeypatch.setattr(bytecode, "_OFFERED_TREES", 2)
    cache = tmp_path / "cache"
    placed = tmp_path / "deps" / "key"
    placed.parent.mkdir()
    first = _deep_tree(tmp_path / "scratch1")
    compile_bytecode(first, sys.executable, image_dir="/a", cache_dir=cache, offer=True)
    bytecode.move_tree(first, placed)
    shutil.rmtree(placed)  # another process prunes the cache: the tree and the pycs
    shutil.rmtree(cache)
    second = _deep_tree(tmp_path / "scratch2")
    compile_bytecode(second, sys.executable, image_dir="/a", cache_dir=cache, offer=True)
    bytecode.move_tree(second, placed)
    pyc = f"pkg/__pycache__/__init__.{TAG}.pyc"
    other_platform = _deep_tree(tmp_path / "other")
    compile_bytecode(other_platform, sys.executable, image_dir="/a", cache_dir=cache)
    assert _inode(other_platform / pyc) == _inode(placed / pyc)  # the new tree's file
    assert _pycs(other_platform) == _pycs(placed)
    for n in range(2):  # later builds' trees of other sources let the oldest go
        newer = tmp_path / f"newer{n}"
        (newer / "pkg").mkdir(parents=True)
        (newer / "pkg" / "__init__.py").write_text(f"VALUE = {n}\n")
        compile_bytecode(newer, sys.executable, image_dir="/a", cache_dir=cache, offer=True)
    for tree in ("newer0", "newer1"):
        bytecode.forget_tree(tmp_path / tree)
