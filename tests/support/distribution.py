"""A registry of a test's own: distribution (Debian's ``docker-registry``, 2.8) on a free
127.0.0.1 port, its storage in the test's folder, so a test may change what the registry holds
beneath it (a tag deleted: distribution 2.8 deletes a tag only with its manifest) without
touching the shared stage registry."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

from tests.support.stage import free_port

__all__ = ["Registry", "wait_for"]


def wait_for(url: str, ok: tuple[int, ...] = (200, 401)) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code in ok:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


class Registry:
    """``docker-registry serve`` with ``auth`` (none: anonymous) until ``stop``; ``delete``:
    manifests may be deleted by digest (``storage.delete.enabled``)."""

    def __init__(
        self, folder: Path, auth: Mapping[str, object] | None = None, *, delete: bool = False
    ) -> None:
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        folder.mkdir(parents=True, exist_ok=True)
        self.storage = folder / "data"
        storage: dict[str, object] = {"filesystem": {"rootdirectory": str(self.storage)}}
        if delete:
            storage["delete"] = {"enabled": True}
        config: dict[str, object] = {
            "version": 0.1,
            "log": {"level": "warn"},
            "storage": storage,
            "http": {"addr": self.host},
        }
        if auth:
            config["auth"] = auth
        # JSON is YAML, and needs no YAML library here.
        (folder / "config.yml").write_text(json.dumps(config))
        self.log = (folder / "registry.log").open("wb")
        self.process = subprocess.Popen(
            ["docker-registry", "serve", str(folder / "config.yml")],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_for(f"http://{self.host}/v2/")

    def remove_tag(self, repository: str, tag: str) -> None:
        """The tag gone from storage, its manifest left (as a registry that deletes tags alone,
        distribution-spec 1.1, leaves it)."""
        folder = self.storage / "docker/registry/v2/repositories" / repository
        tag_folder = folder / "_manifests/tags" / tag
        assert tag_folder.is_dir(), f"no tag {tag} in {folder}"
        shutil.rmtree(tag_folder)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        self.log.close()
