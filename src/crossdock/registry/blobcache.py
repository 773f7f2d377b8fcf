"""A folder of blobs by digest, so base layers are downloaded once for every build.

Layout: ``<root>/<algorithm>/<hex>`` (the OCI image-layout ``blobs/`` layout). A blob is written
to a temporary file in the same folder, verified, and renamed into place (``os.replace`` is
atomic on one file system), so two processes filling the same cache at once both end with the
same complete file and a reader never sees a partial one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from crossdock.image.descriptor import Descriptor
from crossdock.image.digest import Digest

__all__ = ["BlobCache"]


class BlobCache:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, digest: Digest) -> Path:
        """Where the blob with ``digest`` lives (whether or not it is there yet)."""
        return self.root / digest.algorithm / digest.hex

    def has(self, descriptor: Descriptor) -> bool:
        """Whether the blob is cached (complete files only ever appear, by rename)."""
        path = self.path_for(descriptor.digest)
        try:
            return path.stat().st_size == descriptor.size
        except FileNotFoundError:
            return False

    def ensure(
        self, descriptor: Descriptor, download: Callable[[Descriptor, Path], object]
    ) -> Path:
        """The cached file for ``descriptor``, calling ``download(descriptor, dest)`` if missing.

        ``download`` must write ``dest`` atomically and verified, as
        ``RegistryClient.fetch_blob`` does.
        """
        path = self.path_for(descriptor.digest)
        if not self.has(descriptor):
            path.parent.mkdir(parents=True, exist_ok=True)
            download(descriptor, path)
        return path
