"""flatapp: a tiny ASGI app, installed from its wheel (not copied as files)."""

import json
import platform


async def app(scope, receive, send):
    assert scope["type"] == "http"
    body = json.dumps(
        {"shape": "flat-package", "machine": platform.machine(), "module": __file__}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})
