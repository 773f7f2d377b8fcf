"""What crossdock says when the docker daemon (or the docker CLI) refuses: one line, with no
control characters from the daemon's answer, naming the image and what to do.

The daemon here is a real HTTP server on a unix socket in the test's folder (the Engine API's
transport), answering what a broken or hostile daemon could; the CLI is a stand-in executable
that writes what a failing ``docker`` could on stderr."""

from __future__ import annotations

import socketserver
import stat
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from crossdock.dockercli import Docker
from crossdock.dockerengine import save_image
from crossdock.errors import CrossdockError, ToolError
from crossdock.platform import Platform

# What a daemon (or a proxy in front of it) could answer: several lines, a terminal escape that
# would retitle the terminal, a carriage return that would overwrite the line, a C1 code.
_HOSTILE_BODY = (
    "line one of the daemon's error\n"
    "\x1b]0;owned\x07second line\r\n"
    "third\x9b2J line\tend\n" + "x" * 400
)


class _UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def _answering(status: int, body: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def address_string(self) -> str:  # a unix socket's peer has no host
            return "docker-client"

        def log_message(self, *_args: object) -> None:
            return

    return Handler


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Callable[[int, str], str]]:
    servers: list[_UnixHTTPServer] = []

    def serve(status: int, body: str) -> str:
        socket_path = tmp_path / f"docker{len(servers)}.sock"
        server = _UnixHTTPServer(str(socket_path), _answering(status, body))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"unix://{socket_path}"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def _assert_one_safe_line(err: CrossdockError) -> None:
    for text in (err.message, err.hint or ""):
        assert "\n" not in text and "\r" not in text, text
        assert all(char.isprintable() for char in text), repr(text)


def test_a_daemon_error_body_becomes_one_safe_line(daemon, tmp_path):
    host = daemon(500, _HOSTILE_BODY)
    with pytest.raises(ToolError) as caught:
        save_image("example/api:latest", tmp_path / "out.tar", docker_host=host)
    err = caught.value
    _assert_one_safe_line(err)
    assert err.message.startswith(
        "docker-daemon:example/api:latest: the docker daemon answered 500"
    )
    # The daemon's words are still there, escaped, and cut to a bounded length.
    assert "line one of the daemon's error" in err.message
    assert "\\x1b]0;owned\\x07" in err.message
    assert len(err.message) < 400
    assert err.hint
    assert not (tmp_path / "out.tar").exists()


def test_a_missing_image_is_one_line_with_a_hint(daemon, tmp_path):
    host = daemon(404, '{"message":"No such image: example/none:latest"}\n')
    with pytest.raises(CrossdockError) as caught:
        save_image("example/none:latest", tmp_path / "out.tar", docker_host=host)
    _assert_one_safe_line(caught.value)
    assert caught.value.exit_code == 9
    assert "example/none:latest" in caught.value.message


def test_a_saved_image_is_written_whole(daemon, tmp_path):
    host = daemon(200, "the tarball's bytes")
    heard: list[int] = []
    out = save_image(
        "example/api:latest", tmp_path / "out.tar", docker_host=host, on_bytes=heard.append
    )
    assert out.read_text() == "the tarball's bytes"
    assert sum(heard) == len("the tarball's bytes")


def _stand_in_docker(tmp_path: Path, stderr: str) -> str:
    """An executable that fails like ``docker`` does, writing ``stderr``."""
    (tmp_path / "said.txt").write_text(stderr)
    script = tmp_path / "docker"
    script.write_text(f"#!/bin/sh\ncat '{tmp_path / 'said.txt'}' >&2\nexit 1\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def test_a_failing_docker_command_is_one_safe_line(tmp_path):
    said = "Error response from daemon:\n\x1b]0;owned\x07no such image\r\n"
    docker = Docker(_stand_in_docker(tmp_path, said))
    with pytest.raises(ToolError) as caught:
        docker.save("example/api:latest", tmp_path / "out.tar")
    _assert_one_safe_line(caught.value)
    assert "docker could not save example/api:latest" in caught.value.message
    assert "Error response from daemon: | \\x1b]0;owned\\x07no such image" in caught.value.message
    assert caught.value.hint


def test_a_long_docker_output_is_cut_to_its_end(tmp_path):
    docker = Docker(_stand_in_docker(tmp_path, _HOSTILE_BODY + "\nthe last line says why"))
    with pytest.raises(ToolError) as caught:
        docker.load(tmp_path / "in.tar")
    _assert_one_safe_line(caught.value)
    assert caught.value.message.endswith("the last line says why")
    assert len(caught.value.message) < 500


def test_a_daemon_that_is_not_running_says_so_on_one_line(tmp_path):
    said = (
        "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
        "Is the docker daemon running?\n"
    )
    docker = Docker(_stand_in_docker(tmp_path, said))
    with pytest.raises(ToolError) as caught:
        docker.pull("example/api:latest", Platform.parse("linux/arm64"))
    _assert_one_safe_line(caught.value)
    assert "Cannot connect to the Docker daemon" in caught.value.message
    assert "start dockerd" in (caught.value.hint or "")
