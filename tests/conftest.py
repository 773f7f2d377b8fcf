"""What the whole suite shares: on CI (scripts/test.sh sets CROSSDOCK_FAIL_ON_SKIP=1) a skipped
test fails the run, because the setup installs everything the tests need on this machine kind
(Debian packages, the stage, dockerd): a skip there means a missing setup step, not an optional
test."""

from __future__ import annotations

import os

import pytest


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not os.environ.get("CROSSDOCK_FAIL_ON_SKIP"):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    skipped = reporter.stats.get("skipped", [])
    if skipped and exitstatus == pytest.ExitCode.OK:
        reporter.write_line("")  # after the progress dots
        reporter.write_line(
            f"{len(skipped)} test(s) skipped with CROSSDOCK_FAIL_ON_SKIP=1: the setup "
            "(stage/stage.sh, scripts/dev-env.sh) must install what they need",
            red=True,
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
