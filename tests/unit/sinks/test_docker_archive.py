"""A docker archive is written beside its name and renamed whole, under a partial name of its
own: two builds writing the same archive at once must not write into each other's file."""

from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path

from crossdock.sinks import write_docker_archive
from tests.support.images import image_set


def test_two_writers_of_one_archive_at_once_both_finish_and_leave_a_whole_archive(
    tmp_path, monkeypatch
):
    # The interleaving: this writer has written its partial archive and is about to rename it
    # when another build writes the same archive, whole. With one fixed partial name, the
    # other truncated this one's file, wrote into it, renamed it away, and this writer's
    # rename failed (No such file or directory).
    images = image_set(tmp_path / "built")
    dest = tmp_path / "out" / "image.tar"
    real_replace = os.replace
    other: list[list[str]] = []

    def replace_after_another_writer(src, dst, *args, **kwargs):
        if not other and Path(dst) == dest:
            other.append([])
            other[0] += write_docker_archive(images, dest, repository="svc", tag="dev")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace_after_another_writer)
    tags = write_docker_archive(images, dest, repository="svc", tag="dev")
    assert other == [tags]
    with tarfile.open(dest) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert [entry["RepoTags"] for entry in manifest] == [[tag] for tag in tags]
    assert sorted(p.name for p in dest.parent.iterdir()) == ["image.tar"]  # no partial left
