"""Talking to OCI registries: references, credentials, auth and the client (reading an image is
``crossdock.sources``'s job, pushing one ``crossdock.sinks``')."""

from crossdock.cache import BlobCache
from crossdock.registry.client import RegistryClient, UploadOutcome
from crossdock.registry.credentials import Credentials, find_credentials
from crossdock.registry.ecr import EcrRegistry, ensure_repository, parse_ecr_host
from crossdock.registry.reference import DOCKER_HUB, Mirrors, Reference, is_loopback_registry
from crossdock.registry.responses import ImmutableTagError
from crossdock.registry.transport import TransientRegistryError
from crossdock.registry.upload import UploadMode

__all__ = [
    "DOCKER_HUB",
    "BlobCache",
    "Credentials",
    "EcrRegistry",
    "ImmutableTagError",
    "Mirrors",
    "Reference",
    "RegistryClient",
    "TransientRegistryError",
    "UploadMode",
    "UploadOutcome",
    "ensure_repository",
    "find_credentials",
    "is_loopback_registry",
    "parse_ecr_host",
]
