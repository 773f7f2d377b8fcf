"""A tiny ASGI app without a framework: the answer names the shape and the CPU it runs on."""

import json
import platform


async def app(scope, receive, send):
    assert scope["type"] == "http"
    body = json.dumps({"shape": "single", "machine": platform.machine()}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})
