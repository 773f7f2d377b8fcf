"""What every integration test shares."""

from __future__ import annotations

import pytest

from crossdock.resolve.bytecode import find_host_python

# The example services require Python >= 3.13; the stage's bases run 3.13.
SERVICE_PYTHON = "3.13"


@pytest.fixture(scope="session")
def host_python() -> str:
    """A host interpreter of the services' Python version: `uv lock` and `uv export --locked`
    need one for the >=3.13 projects, and crossdock compiles the image's bytecode with it.
    Found the way crossdock finds it (scripts/dev-env.sh sets UV_PYTHON)."""
    python = find_host_python(SERVICE_PYTHON)
    if python is None:
        pytest.fail(
            f"no Python {SERVICE_PYTHON} on this host: source scripts/dev-env.sh (sets UV_PYTHON)"
        )
    return python
