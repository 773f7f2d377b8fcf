"""AWS Lambda entry point of the example service: ``app.lambda_handler.handler``.

It imports every native dependency on purpose, so that invoking it once proves the image carries
binaries for its own CPU.
"""

from __future__ import annotations

import io
import platform
from typing import Any

import numpy as np
import orjson
import pydantic_core
from cryptography.hazmat.primitives import hashes
from PIL import Image
from pydantic import BaseModel


class Event(BaseModel):
    """The part of the invocation event this handler reads."""

    n: int = 10


def handler(event: dict[str, Any] | None, context: object) -> dict[str, Any]:  # noqa: ARG001
    """Compute with every native dependency and report the CPU."""
    parsed = Event.model_validate(event or {})
    values = np.arange(parsed.n, dtype=np.int64)

    digest = hashes.Hash(hashes.SHA256())
    digest.update(values.tobytes())

    image = Image.new("RGB", (4, 4), color=(parsed.n % 256, 0, 0))
    png = io.BytesIO()
    image.save(png, format="PNG")

    payload = orjson.dumps({"n": parsed.n}).decode()
    return {
        "machine": platform.machine(),
        "sum_of_squares": int(np.dot(values, values)),
        "sha256": digest.finalize().hex(),
        "png_bytes": len(png.getvalue()),
        "orjson": payload,
        "pydantic_core": pydantic_core.__version__,
    }
