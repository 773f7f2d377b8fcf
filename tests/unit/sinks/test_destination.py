"""Two crossdock processes may write into one output folder at once (several services built
into one OCI layout by ``make -j``): checking that the folder is writable must not trip over
the other's check."""

from __future__ import annotations

import os

from crossdock.sinks import check_writable


def test_two_checks_of_one_folder_at_once_both_pass(tmp_path, monkeypatch):
    # The interleaving: this check has made its probe file and is about to remove it when
    # another process's whole check runs. With one fixed probe name the other removed this
    # one's probe and this one's removal failed (a ConfigError "cannot write ...").
    folder = tmp_path / "layout"
    real_unlink = os.unlink
    others: list[str] = []

    def unlink_after_another_check(path, *args, **kwargs):
        if not others:
            others.append(str(path))
            monkeypatch.setattr(os, "unlink", real_unlink)
            check_writable(folder, "OCI layout", folder=True)  # the other process, whole
        real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", unlink_after_another_check)
    check_writable(folder, "OCI layout", folder=True)
    assert others  # the other check ran between this one's probe and its removal
    assert list(folder.iterdir()) == []  # neither left a probe behind
