"""The OCI image model: pure values, no I/O (checked by import-linter)."""

from crossdock.image.artifact import BlobSource, ImageSet, PlatformImage
from crossdock.image.config import HistoryEntry, ImageConfig
from crossdock.image.descriptor import Descriptor
from crossdock.image.digest import Digest, sha256_of
from crossdock.image.manifest import Index, Manifest, canonical_json, parse_manifest_or_index
from crossdock.image.mediatypes import MediaType, family_of
from crossdock.image.referrer import Referrer, make_referrer

__all__ = [
    "BlobSource",
    "Descriptor",
    "Digest",
    "HistoryEntry",
    "ImageConfig",
    "ImageSet",
    "Index",
    "Manifest",
    "MediaType",
    "PlatformImage",
    "Referrer",
    "canonical_json",
    "family_of",
    "make_referrer",
    "parse_manifest_or_index",
    "sha256_of",
]
