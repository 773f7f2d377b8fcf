"""A plain ASGI app (no framework): answers every request with what it runs on."""

import json
import platform
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import numpy  # type: ignore[import-not-found,unused-ignore]  # in the image, not the dev env

Message = MutableMapping[str, Any]


async def app(
    scope: Message,
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    if scope["type"] != "http":
        return
    body = json.dumps(
        {
            "machine": platform.machine(),
            "python": f"{sys.version_info[0]}.{sys.version_info[1]}",
            "numpy": numpy.__version__,
            "sum_of_squares": int(numpy.arange(7).dot(numpy.arange(7))),
        }
    ).encode()
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
