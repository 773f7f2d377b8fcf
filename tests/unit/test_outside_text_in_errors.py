"""Outside text cut into an error message (a registry's error answer, an interpreter's stderr, a
name from an SBOM) arrives on one line, its control characters escaped
(``crossdock.text.printable``), and bounded: the message stays one line that says what went
wrong, whatever the outside text holds. (docker's and the docker daemon's words:
tests/unit/test_dockerengine.py.)"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import httpx
import pytest

from crossdock.errors import CrossdockError, MalformedError, ToolError
from crossdock.registry.responses import error_for_response

# Newlines, a terminal title escape (OSC ... BEL), a carriage return, a C1 control (CSI), and
# far more than a message quotes.
HOSTILE = "first line\n\x1b]0;owned\x07second\r\nthird \x9b2J end\n" + "x" * 5000
# What a failing interpreter says last is what matters (the end of a traceback).
HOSTILE_END = "y" * 5000 + "\nTraceback ...\nError:\x1b]0;owned\x07 the end\r\n"


def _assert_one_safe_line(err: CrossdockError, *, limit: int = 2500) -> None:
    for text in (err.message, err.hint or ""):
        assert "\n" not in text and "\r" not in text, text[:300]
        assert text.isprintable(), repr(text[:300])
    assert len(err.message) < limit, len(err.message)


def test_a_registry_error_message_is_one_safe_line():
    body = {"errors": [{"code": "DENIED", "message": HOSTILE}, {"code": "X\n", "message": 5}]}
    response = httpx.Response(
        403, json=body, request=httpx.Request("PUT", "https://registry.test/v2/a/manifests/v1")
    )
    err = error_for_response(
        response, registry="registry.test", repository="team/api", action="push manifest v1"
    )
    _assert_one_safe_line(err)
    assert err.message.startswith("cannot push manifest v1 on registry.test/team/api: 403 ")
    assert "DENIED: first line | \\x1b]0;owned\\x07second | third \\x9b2J end | xxx" in err.message
    assert err.hint


def _stand_in_python(folder: Path, *, identity: bool) -> str:
    """An executable that fails as a broken interpreter could, writing HOSTILE_END on stderr;
    with ``identity``, it first answers crossdock's identity question as a Python 3.13 would."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "said.txt").write_text(HOSTILE_END)
    script = folder / "python3.13"
    answer = 'case "$2" in *cache_tag*) echo "cpython-313 f30d0d0a 3.13.0"; exit 0;; esac\n'
    script.write_text(
        "#!/bin/sh\n" + (answer if identity else "") + f"cat '{folder / 'said.txt'}' >&2\nexit 3\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def _tree(folder: Path) -> Path:
    (folder / "pkg").mkdir(parents=True)
    (folder / "pkg" / "__init__.py").write_text("VALUE = 1\n")
    return folder


def test_an_interpreter_that_does_not_run_is_one_safe_line(tmp_path):
    from crossdock.resolve.bytecode import compile_bytecode

    python = _stand_in_python(tmp_path / "bin", identity=False)
    with pytest.raises(ToolError) as caught:
        compile_bytecode(_tree(tmp_path / "t"), python, image_dir="/x")
    _assert_one_safe_line(caught.value)
    assert "it does not run as Python (exit 3)" in caught.value.message
    assert caught.value.message.endswith("Error:\\x1b]0;owned\\x07 the end")


def test_a_compile_that_fails_is_one_safe_line(tmp_path):
    from crossdock.resolve.bytecode import compile_bytecode

    python = _stand_in_python(tmp_path / "bin", identity=True)
    with pytest.raises(ToolError) as caught:
        compile_bytecode(_tree(tmp_path / "t"), python, image_dir="/x")
    _assert_one_safe_line(caught.value)
    assert f"compiling bytecode with {python} failed (exit 3)" in caught.value.message
    assert caught.value.message.endswith("Error:\\x1b]0;owned\\x07 the end")


def test_a_malformed_sbom_components_name_is_quoted_on_one_safe_line():
    from crossdock.sbom.document import python_packages_of

    purl = "pkg:pypi/evil@1\n\x1b]0;owned\x07" + "y" * 1000
    document = json.dumps({"components": [{"purl": purl, "properties": [{"name": 1}]}]})
    with pytest.raises(MalformedError) as caught:
        python_packages_of(document.encode())
    _assert_one_safe_line(caught.value, limit=400)
    assert "pkg:pypi/evil@1 | \\x1b]0;owned\\x07" in caught.value.message


def _stand_in_tool(folder: Path, name: str) -> str:
    """An executable named ``name`` that writes HOSTILE_END on stderr and fails."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.said").write_text(HOSTILE_END)
    script = folder / name
    script.write_text(f"#!/bin/sh\ncat '{folder / f'{name}.said'}' >&2\nexit 3\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def test_a_failing_buildx_command_is_one_safe_line(tmp_path):
    from crossdock.backends.buildx import BuildxBackend
    from crossdock.dockercli import Docker
    from crossdock.registry.reference import Mirrors

    backend = BuildxBackend(tmp_path / "Dockerfile", mirrors=Mirrors({}))
    backend._driver = Docker(_stand_in_tool(tmp_path / "bin", "docker"))
    with pytest.raises(ToolError) as caught:
        backend._run(["buildx", "build", "--platform", "linux/arm64", "."])
    _assert_one_safe_line(caught.value)
    assert "`docker buildx build --platform ...` failed with exit code 3" in caught.value.message
    assert caught.value.message.endswith("Error:\\x1b]0;owned\\x07 the end")


def test_a_uv_that_does_not_say_its_version_is_one_safe_line(tmp_path):
    from crossdock.resolve.uv import Uv

    uv = Uv(_stand_in_tool(tmp_path / "bin", "uv"))
    with pytest.raises(ToolError) as caught:
        _ = uv.version
    _assert_one_safe_line(caught.value)
    assert caught.value.message.endswith("Error:\\x1b]0;owned\\x07 the end")
    assert caught.value.hint


def test_a_failing_git_is_one_safe_line(tmp_path, monkeypatch):
    from crossdock.publish.git import git_state

    monkeypatch.setenv("PATH", f"{Path(_stand_in_tool(tmp_path / 'bin', 'git')).parent}:/usr/bin")
    with pytest.raises(ToolError) as caught:
        git_state(tmp_path)
    _assert_one_safe_line(caught.value)
    assert caught.value.message.endswith("Error:\\x1b]0;owned\\x07 the end")
    assert caught.value.hint


def test_an_excerpt_is_one_line_of_the_start_or_the_end():
    from crossdock.text import excerpt

    said = "  first\r\n\n  second\x1b[2J\n\tthird  \n"
    assert excerpt(said, 100) == "first | second\\x1b[2J | third"
    assert excerpt(said, 5) == "first…"
    assert excerpt(said, 5, end=True) == "…third"
    assert excerpt("\n \n", 10) == ""


def test_uvs_failed_export_is_one_safe_line(tmp_path):
    from crossdock.errors import LockError
    from crossdock.resolve.uv import Uv, _export

    uv = Uv(_stand_in_tool(tmp_path / "bin", "uv"))
    with pytest.raises(LockError) as caught:
        _export(uv, ["export", "--locked"], tmp_path, {}, None)
    _assert_one_safe_line(caught.value, limit=3500)
    assert caught.value.message.startswith(f"`uv export` failed for {tmp_path / 'uv.lock'}: …")
    assert caught.value.message.endswith("Traceback ... | Error:\\x1b]0;owned\\x07 the end")


def test_an_sdist_build_that_fails_is_one_safe_line(tmp_path):
    from crossdock.resolve.sdists import tail

    output = "\n".join(f"line {n}" for n in range(100)) + "\n" + HOSTILE_END
    quoted = tail(output)
    assert "\n" not in quoted and quoted.isprintable()
    assert quoted.endswith("Traceback ... | Error:\\x1b]0;owned\\x07 the end")
    assert "line 99" not in quoted  # 25 lines: the end of the y's, the traceback's two lines
    assert len(quoted) < 3100  # 3,000 characters, "…", and the escapes


def test_a_container_that_failed_is_one_safe_line_with_its_logs(tmp_path):
    from crossdock.dockercli import Container, Docker
    from crossdock.localrun.docker_run import failure_with_logs
    from crossdock.platform import ARM64

    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "said.txt").write_text(HOSTILE_END)
    script = folder / "docker"  # `docker logs` answers what the container wrote
    script.write_text(f"#!/bin/sh\ncat '{folder / 'said.txt'}'\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    container = Container("0123456789abcdef", "example/api:latest", ARM64)
    err = failure_with_logs(
        Docker(str(script)), container, "the service did not answer", hint="run it yourself"
    )
    _assert_one_safe_line(err, limit=3500)
    assert err.message.startswith(
        "the service did not answer; last 30 lines of container 0123456789ab: "
    )
    assert err.message.endswith("Error:\\x1b]0;owned\\x07 the end")
