"""Reading JSON documents that come from outside (manifests, indexes, configs, descriptors):
every shape error becomes a one-line ``MalformedError`` naming the field, never a KeyError or a
TypeError deep in the code that uses the value.

``reading(source)`` adds where the document came from (a file, a registry reference) to the
message, so the model's parsers need not know.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from crossdock.errors import MalformedError
from crossdock.image.digest import Digest

__all__ = [
    "MAX_ARTIFACT_BYTES",
    "MAX_DOCUMENT_BYTES",
    "MAX_MANIFESTS",
    "checked",
    "digest_value",
    "load_list",
    "load_object",
    "optional",
    "reading",
    "require",
    "string_map",
    "text_or_none",
    "texts",
]

T = TypeVar("T")

# The one set of limits for what crossdock reads from any source (registry, OCI layout, docker
# archive). Manifests, indexes and configs are small: registries refuse manifests over 4 MiB
# (distribution's limit), and the bound stops a hostile document from filling memory.
MAX_DOCUMENT_BYTES = 4 * 1024 * 1024
# An artifact attached to an image (a referrer's content: an SBOM), read into memory whole. No
# registry limit applies (it is a blob, not a manifest), and a large image's SBOM may pass 4 MiB
# (crossdock's are ~100 KB a platform for the example): this bounds a hostile one instead.
MAX_ARTIFACT_BYTES = 64 * 1024 * 1024
# Real multi-arch images list a handful of manifests (platforms + attestations).
MAX_MANIFESTS = 256

_HINT = "the document is damaged or was not written by an OCI/Docker image tool"


def _load(raw: bytes, what: str) -> object:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as err:  # JSONDecodeError, UnicodeDecodeError
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise MalformedError(f"{what} is not valid JSON: {reason}", hint=_HINT) from err


def load_object(raw: bytes, what: str) -> dict[str, Any]:
    """``raw`` parsed as one JSON object."""
    data = _load(raw, what)
    if not isinstance(data, dict):
        raise MalformedError(f"{what} is a JSON {type(data).__name__}, not an object", hint=_HINT)
    return data


def load_list(raw: bytes, what: str) -> list[Any]:
    """``raw`` parsed as one JSON list (docker save's manifest.json)."""
    data = _load(raw, what)
    if not isinstance(data, list):
        raise MalformedError(f"{what} is a JSON {type(data).__name__}, not a list", hint=_HINT)
    return data


def _type_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {
        str: "a string",
        int: "an integer",
        list: "a list",
        dict: "an object",
        bool: "a boolean",
    }
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def checked(value: object, kind: type[T] | tuple[type, ...], what: str) -> T:
    """``value``, which must be of ``kind`` (``what`` names it in the error): how a document's
    or a cache record's parser checks a value it did not look up by key (a list's items)."""
    # bool is an int in Python, never in JSON documents.
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise MalformedError(
            f"{what} must be {_type_name(kind)}, not {type(value).__name__}", hint=_HINT
        )
    return value  # type: ignore[return-value]


def texts(value: object, what: str) -> tuple[str, ...]:
    """``value``, a list of strings (a string itself would pass as its characters)."""
    return tuple(checked(item, str, what) for item in checked(value, list, what))


def text_or_none(value: object, what: str) -> str | None:
    """``value``, a string or null."""
    return None if value is None else checked(value, str, what)


def require(data: Mapping[str, Any], key: str, kind: type[T], what: str) -> T:
    """``data[key]``, which must be there and of ``kind``."""
    if key not in data:
        raise MalformedError(f"{what} has no {key!r}", hint=_HINT)
    return checked(data[key], kind, f"{what}: {key!r}")


def optional(data: Mapping[str, Any], key: str, kind: type[T], what: str) -> T | None:
    """``data[key]`` when present and not null, which must then be of ``kind``."""
    value = data.get(key)
    if value is None:
        return None
    return checked(value, kind, f"{what}: {key!r}")


def string_map(data: Mapping[str, Any], key: str, what: str) -> dict[str, str]:
    """An optional object of strings (annotations, labels)."""
    value = optional(data, key, dict, what) or {}
    for name, item in value.items():
        checked(item, str, f"{what}: {key}[{name!r}]")
    return dict(value)


def digest_value(value: object, what: str) -> Digest:
    """A digest (``sha256:`` and 64 hex digits, or sha512) from a document."""
    text = checked(value, str, what)
    try:
        return Digest(text)
    except ValueError as err:
        raise MalformedError(f"{what} is not a valid digest: {text[:80]!r}", hint=_HINT) from err


@contextmanager
def reading(source: str) -> Iterator[None]:
    """Prefix any ``MalformedError`` raised inside with ``source`` (where the document is)."""
    try:
        yield
    except MalformedError as err:
        raise MalformedError(f"{source}: {err.message}", hint=err.hint) from err
