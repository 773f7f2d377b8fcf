"""The local docker daemon through its Engine API (``docker-daemon:REF``), without the docker CLI.

``GET /images/{name}/get`` streams the same tarball ``docker save`` writes; crossdock reads it
like any docker archive (every layer checked against its diff_id). The daemon is found the way
the docker CLI finds it: ``DOCKER_HOST`` (``unix://PATH`` or ``tcp://HOST:PORT``), else
``/var/run/docker.sock``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import httpx

from crossdock.errors import NotFoundError, ToolError
from crossdock.text import excerpt, printable

__all__ = ["DEFAULT_SOCKET", "save_image"]

DEFAULT_SOCKET = Path("/var/run/docker.sock")
# A save streams for as long as the image is large; only connecting and stalls are bounded.
_TIMEOUT = httpx.Timeout(30.0, read=300.0)
_CHUNK = 1024 * 1024
# Of a refusal's body, this much is read and quoted (a daemon's error is one short JSON line; a
# proxy's page or a hostile answer is not worth more).
_QUOTED_BODY_CHARS = 200


def _client(docker_host: str | None) -> httpx.Client:
    host = docker_host if docker_host is not None else os.environ.get("DOCKER_HOST", "")
    if host.startswith("tcp://"):
        return httpx.Client(base_url="http://" + host.removeprefix("tcp://"), timeout=_TIMEOUT)
    socket = Path(host.removeprefix("unix://")) if host.startswith("unix://") else DEFAULT_SOCKET
    if host and not host.startswith("unix://"):
        raise ToolError(
            f"DOCKER_HOST={host!r}: crossdock reads the docker daemon over unix:// or tcp://",
            hint="set DOCKER_HOST=unix:///var/run/docker.sock or unset it",
        )
    if not socket.exists():
        raise ToolError(
            f"no docker daemon socket at {socket}",
            hint="start dockerd, set DOCKER_HOST, or save the image to a file and pass "
            "docker-archive:FILE",
        )
    transport = httpx.HTTPTransport(uds=str(socket))
    # The host name is not used on a unix socket; "docker" is what the docker CLI sends.
    return httpx.Client(transport=transport, base_url="http://docker", timeout=_TIMEOUT)


def save_image(
    reference: str,
    dest: Path,
    *,
    docker_host: str | None = None,
    on_bytes: Callable[[int], object] | None = None,
) -> Path:
    """Write the daemon's ``docker save`` tarball of ``reference`` to ``dest`` (``on_bytes``
    hears of every chunk, for progress)."""
    # The reference is the user's text: shown with its control characters escaped.
    shown = printable(reference)
    try:
        with (
            _client(docker_host) as client,
            client.stream("GET", f"/images/{quote(reference, safe='')}/get") as response,
        ):
            if response.status_code == 404:
                raise NotFoundError(
                    f"docker-daemon:{shown}: the docker daemon has no such image",
                    hint=f"pull or build it first (docker pull {shown}), or check `docker images`",
                )
            if response.status_code != 200:
                raise ToolError(
                    f"docker-daemon:{shown}: the docker daemon answered "
                    f"{response.status_code}: {_quoted_body(response)}",
                    hint="check the daemon's log (journalctl -u docker) and `docker image "
                    f"inspect {shown}`; or save the image to a file and pass docker-archive:FILE",
                )
            with dest.open("wb") as out:
                for chunk in response.iter_bytes(_CHUNK):
                    out.write(chunk)
                    if on_bytes is not None:
                        on_bytes(len(chunk))
    except httpx.HTTPError as err:
        raise ToolError(
            f"docker-daemon:{shown}: cannot read from the docker daemon: {printable(str(err))}",
            hint="is dockerd running? (docker info)",
        ) from err
    return dest


def _quoted_body(response: httpx.Response) -> str:
    """The start of a refusal's body, on one line with its control characters escaped (the
    daemon's text is outside text: it may hold newlines or terminal escapes)."""
    head = b""
    for chunk in response.iter_bytes(_QUOTED_BODY_CHARS * 4):
        head += chunk
        if len(head) >= _QUOTED_BODY_CHARS * 4:
            break
    return excerpt(head.decode("utf-8", errors="replace"), _QUOTED_BODY_CHARS) or "(no details)"
