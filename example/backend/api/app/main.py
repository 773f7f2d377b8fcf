"""HTTP entry point of the example service (App Runner, EKS, local runs).

Run with ``uvicorn app.main:app --host 0.0.0.0 --port 8080``.
"""

from __future__ import annotations

import platform
from importlib import metadata

import numpy as np
from fastapi import FastAPI, Query

app = FastAPI(title="api")

# The distributions whose native code must match the image's CPU; /info reports them.
NATIVE_DISTRIBUTIONS = ("numpy", "pillow", "cryptography", "orjson", "pydantic", "pydantic-core")


@app.get("/health")
def health() -> dict[str, str]:
    """Liveness and readiness probe."""
    return {"status": "ok"}


@app.get("/compute")
def compute(n: int = Query(default=10, ge=1, le=1_000_000)) -> dict[str, object]:
    """Sum of squares 0..n-1, computed by numpy (native code for the image's CPU)."""
    values = np.arange(n, dtype=np.int64)
    return {
        "n": n,
        "sum_of_squares": int(np.dot(values, values)),
        "machine": platform.machine(),
    }


@app.get("/info")
def info() -> dict[str, object]:
    """Versions of the native dependencies and the CPU the process runs on."""
    return {
        "machine": platform.machine(),
        "python": platform.python_version(),
        "versions": {name: metadata.version(name) for name in NATIVE_DISTRIBUTIONS},
    }
