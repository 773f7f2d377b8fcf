"""The sinks package loads each name from its module at first use (issue 14: a build written to
an OCI layout, or answered from its record, does not import the registry push)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import crossdock.sinks

_PROBE = """
import json, sys
import crossdock.build
print(json.dumps(sorted(name for name in sys.modules if name.startswith("crossdock.sinks"))))
"""


def test_the_build_module_does_not_import_the_registry_push():
    completed = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = set(json.loads(completed.stdout))
    assert "crossdock.sinks.oci_layout" in loaded  # what the build writes is there
    assert "crossdock.sinks.registry" not in loaded


def test_every_name_is_still_there_and_an_unknown_one_is_an_attribute_error():
    from crossdock.sinks.registry import push_image_set

    assert crossdock.sinks.push_image_set is push_image_set
    for name in crossdock.sinks.__all__:
        assert getattr(crossdock.sinks, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'push'"):
        crossdock.sinks.push  # noqa: B018 - the attribute access is what is tested
