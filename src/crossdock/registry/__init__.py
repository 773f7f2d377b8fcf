"""Talking to OCI registries: references, credentials, auth and the client (reading an image is
``crossdock.sources``'s job, pushing one ``crossdock.sinks``').

Names are loaded on first use (PEP 562, as in ``crossdock``): a module that needs a reference
(``crossdock.registry.reference``, imported by the plan) does not import the HTTP client, whose
stack (httpx, stamina) is a third of a no-op build's start-up (issue 14).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crossdock.lazy import lazy_names

if TYPE_CHECKING:
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

_WHERE = {
    "DOCKER_HUB": "crossdock.registry.reference",
    "BlobCache": "crossdock.cache",
    "Credentials": "crossdock.registry.credentials",
    "EcrRegistry": "crossdock.registry.ecr",
    "ImmutableTagError": "crossdock.registry.responses",
    "Mirrors": "crossdock.registry.reference",
    "Reference": "crossdock.registry.reference",
    "RegistryClient": "crossdock.registry.client",
    "TransientRegistryError": "crossdock.registry.transport",
    "UploadMode": "crossdock.registry.upload",
    "UploadOutcome": "crossdock.registry.client",
    "ensure_repository": "crossdock.registry.ecr",
    "find_credentials": "crossdock.registry.credentials",
    "is_loopback_registry": "crossdock.registry.reference",
    "parse_ecr_host": "crossdock.registry.ecr",
}


__getattr__ = lazy_names(__name__, _WHERE)
