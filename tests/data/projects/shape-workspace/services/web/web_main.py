"""The web service: an ASGI app answering with the shared library's greeting."""

import json

from greeting import answer


async def app(scope, receive, send):
    assert scope["type"] == "http"
    body = json.dumps(answer("web")).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})
