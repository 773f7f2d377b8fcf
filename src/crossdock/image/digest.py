"""Content digests (``sha256:<hex>``), as the OCI image spec defines them."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

__all__ = ["Digest", "sha256_of"]

# OCI image-spec descriptor.md: algorithm ":" encoded; we accept only sha256 and sha512,
# the two registered algorithms, with their exact hex lengths.
_DIGEST_RE = re.compile(r"^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$")


@dataclass(frozen=True, order=True)
class Digest:
    value: str

    def __post_init__(self) -> None:
        if not _DIGEST_RE.match(self.value):
            raise ValueError(f"not a valid OCI digest: {self.value!r}")

    @property
    def algorithm(self) -> str:
        return self.value.split(":", 1)[0]

    @property
    def hex(self) -> str:
        return self.value.split(":", 1)[1]

    @property
    def dashed(self) -> str:
        """``sha256-<hex>``: the digest as a file or record name, and as the referrers tag
        schema spells it (a colon is not allowed in either)."""
        return f"{self.algorithm}-{self.hex}"

    def __str__(self) -> str:
        return self.value

    def matches(self, data: bytes) -> bool:
        """Whether ``data`` has this digest."""
        return hashlib.new(self.algorithm, data).hexdigest() == self.hex


def sha256_of(data: bytes) -> Digest:
    return Digest("sha256:" + hashlib.sha256(data).hexdigest())
