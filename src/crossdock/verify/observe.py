"""What the checks need to know about one file's bytes, and a cache of it by layer digest.

An ``Observation`` is read from a file's bytes alone: which kind of binary it is (by magic, never
by name), its ELF facts or why they cannot be read, the shebang line, a .pyc header, a WHEEL
file's text. The checks (platform, glibc, Python...) are then judged from observations in the
context of each verification: the image's platform, Python, glibc and ``--allow`` rules.

Why caching observations is sound: an observation is a pure function of a tar member's bytes
(plus the two name-derived flags below and the parse limit, both part of the key). Members are
keyed by (layer digest, member ordinal), and the layer digest is the digest of verified blob
bytes, so a cached observation describes exactly the bytes it is used for. Nothing that depends
on the verification's context is cached: every check, in every layer, is judged anew on each
run, so a cache hit can never hide a failure, and a different platform, base, Python or allow
rule sees the same observations judged differently.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from crossdock.cache import CacheLayout
from crossdock.errors import MalformedError, UnsafeContentError
from crossdock.image.digest import Digest
from crossdock.image.document import checked, require, text_or_none, texts
from crossdock.rootfs.elf import ElfFacts, ElfParseError, parse_elf
from crossdock.rootfs.fsview import FsEntry, Layer, LazyBuffer
from crossdock.rootfs.layerindex import Member
from crossdock.verify.magic import HEAD_SIZE, BinaryKind, classify

__all__ = [
    "LayerObserver",
    "Observation",
    "ObservationCache",
    "facts_from_json",
    "facts_to_json",
    "observe",
]

_PE_HEAD = 4096  # a DOS stub's e_lfanew points within the first few hundred bytes
_WHEEL_LIMIT = 64 * 1024  # WHEEL metadata is a few lines
SHEBANG_LIMIT = 512
# Files this small are never read by the checks (verify.engine judges files of 4 bytes or more).
_MIN_OBSERVED = 4
# Bump when what an observation records, or how, changes: old records are then ignored.
_KIND = "observations"
_VERSION = 2


@dataclass(frozen=True)
class Observation:
    kind: BinaryKind
    wants_pyc: bool  # read for a name ending in .pyc: ``head`` is kept for the magic check
    wants_wheel: bool  # read for a name ending in .dist-info/WHEEL: ``wheel_text`` is kept
    head: bytes = b""  # the first HEAD_SIZE bytes, kept for Mach-O and .pyc files only
    shebang: bytes | None = None  # the first SHEBANG_LIMIT bytes of a "#!" script
    facts: ElfFacts | None = None
    elf_error: str | None = None  # ELF magic but unreadable headers: why
    wheel_text: str | None = None

    def fits(self, path: str) -> bool:
        """Whether this observation has what the checks need for a file named ``path``."""
        return (self.wants_pyc, self.wants_wheel) == _name_flags(path)

    def to_json(self) -> int | dict[str, object]:
        if self == _PLAIN[(self.wants_pyc, self.wants_wheel)]:
            return int(self.wants_pyc) | int(self.wants_wheel) << 1  # most files: one number
        facts = self.facts
        return {
            "k": str(self.kind),
            "p": self.wants_pyc,
            "w": self.wants_wheel,
            "h": base64.b64encode(self.head).decode(),
            "s": base64.b64encode(self.shebang).decode() if self.shebang is not None else None,
            "f": facts_to_json(facts) if facts is not None else None,
            "e": self.elf_error,
            "t": self.wheel_text,
        }

    @classmethod
    def from_json(cls, data: Any) -> Observation:  # noqa: ANN401 - parsed JSON, checked here
        """What ``to_json`` wrote, of its types exactly; anything else raises (the file is
        observed again)."""
        if type(data) is int:
            if not 0 <= data <= _PLAIN_MAX:
                raise ValueError(f"{_WHAT}: {data} is not a plain file's flags")
            return _PLAIN[(bool(data & 1), bool(data & 2))]
        f = data["f"]  # every key is written, null or not: a missing one is damage
        shebang = text_or_none(data["s"], _WHAT)
        return cls(
            kind=BinaryKind(require(data, "k", str, _WHAT)),
            wants_pyc=require(data, "p", bool, _WHAT),
            wants_wheel=require(data, "w", bool, _WHAT),
            head=base64.b64decode(require(data, "h", str, _WHAT), validate=True),
            shebang=base64.b64decode(shebang, validate=True) if shebang is not None else None,
            facts=facts_from_json(f) if f is not None else None,
            elf_error=text_or_none(data["e"], _WHAT),
            wheel_text=text_or_none(data["t"], _WHAT),
        )


def facts_to_json(facts: ElfFacts) -> list[object]:
    return [
        facts.machine,
        facts.elf_class,
        facts.little_endian,
        facts.elf_type,
        facts.soname,
        list(facts.needed),
        [list(pair) for pair in facts.version_needs],
        list(facts.version_defs),
    ]


def facts_from_json(row: Any) -> ElfFacts:  # noqa: ANN401 - parsed JSON, checked here
    """What ``facts_to_json`` wrote, of its types exactly; anything else raises."""
    what = "an ELF facts record"
    machine, elf_class, little, elf_type, soname, needed, needs, defs = checked(row, list, what)
    return ElfFacts(
        machine=checked(machine, str, what),
        elf_class=checked(elf_class, int, what),
        little_endian=checked(little, bool, what),
        elf_type=checked(elf_type, str, what),
        soname=text_or_none(soname, _WHAT),
        needed=texts(needed, what),
        version_needs=tuple(_text_pair(pair, what) for pair in checked(needs, list, what)),
        version_defs=texts(defs, what),
    )


def _text_pair(value: object, what: str) -> tuple[str, str]:
    first, second = checked(value, list, what)
    return checked(first, str, what), checked(second, str, what)


_PLAIN = {
    (pyc, wheel): Observation(BinaryKind.OTHER, pyc, wheel)
    for pyc in (False, True)
    for wheel in (False, True)
}
_PLAIN_MAX = 3  # both flags
_WHAT = "an observation record"


def _name_flags(path: str) -> tuple[bool, bool]:
    return path.endswith(".pyc"), path.endswith(".dist-info/WHEEL")


def observe(data: LazyBuffer, path: str) -> Observation:
    """Read what the checks need from one file's bytes (``path`` says which name checks apply)."""
    wants_pyc, wants_wheel = _name_flags(path)
    head = data.head(HEAD_SIZE)
    if head.startswith(b"MZ"):
        head = data.head(_PE_HEAD)
    kind = classify(head)
    facts = None
    error = None
    if kind is BinaryKind.ELF:
        try:
            facts = parse_elf(data)
        except (ElfParseError, UnsafeContentError) as err:
            error = str(err).splitlines()[0]
    shebang = None
    if kind is BinaryKind.OTHER and head.startswith(b"#!"):
        shebang = data.head(SHEBANG_LIMIT)
    wheel_text = None
    if wants_wheel:
        data.seek(0)
        wheel_text = data.read(_WHEEL_LIMIT).decode("utf-8", "replace")
    keep_head = kind is BinaryKind.MACHO or wants_pyc
    return Observation(
        kind,
        wants_pyc,
        wants_wheel,
        head=head[:HEAD_SIZE] if keep_head else b"",
        shebang=shebang,
        facts=facts,
        elf_error=error,
        wheel_text=wheel_text,
    )


class ObservationCache:
    """Observations of layer members in the cache folder, one record per (layer digest, parse
    limit).

    A layer's record grows as more of its members are observed (a later image may uncover
    members an upper layer hid before); two writers at once may drop each other's additions,
    which costs a re-read later and nothing else.
    """

    def __init__(self, cache_root: Path, *, limit: int) -> None:
        self._records = CacheLayout(cache_root).records(_KIND, version=_VERSION)
        self.limit = limit
        # Per layer digest: members as stored (JSON values, decoded when asked for).
        self._loaded: dict[Digest, dict[str, Any]] = {}

    def path_for(self, digest: Digest) -> Path:
        return self._records.path_for(self._key(digest))

    def get(self, layer: Layer, ordinal: int) -> Observation | None:
        """What was observed in ``layer``'s member ``ordinal``, if it was (never for a layer
        without a digest)."""
        if layer.digest is None:
            return None
        known = self._loaded.get(layer.digest)
        if known is None:
            known = self._read(layer.digest)
            self._loaded[layer.digest] = known
        stored = known.get(str(ordinal))
        if stored is None:
            return None
        try:
            return Observation.from_json(stored)
        except (ValueError, TypeError, KeyError, AttributeError, IndexError, MalformedError):
            return None  # damaged in a way the checksum could not see: observed again

    def add(self, layer: Layer, new: dict[int, Observation]) -> None:
        if layer.digest is not None:
            self.add_for(layer.digest, new)

    def add_for(self, digest: Digest, new: dict[int, Observation]) -> None:
        """Keep what was observed in the members (by ordinal) of the layer whose blob has
        ``digest``: only for observations made from those members' bytes (read from the blob,
        or by the writer that wrote them into it, as crossdock.layers.write_layer shows them)."""
        if not new:
            return
        merged = {
            **self._read(digest),
            **self._loaded.get(digest, {}),
            **{str(ordinal): obs.to_json() for ordinal, obs in new.items()},
        }
        self._loaded[digest] = merged
        self._records.store(self._key(digest), merged)

    def _key(self, digest: Digest) -> str:
        return f"{digest.dashed}-{self.limit}"

    def _read(self, digest: Digest) -> dict[str, Any]:
        rows = self._records.load(self._key(digest), _as_dict)
        return rows if rows is not None else {}


def _as_dict(payload: Any) -> dict[str, Any]:  # noqa: ANN401 - parsed JSON, checked here
    if not isinstance(payload, dict):
        raise TypeError("observations are a JSON object")
    return payload


class LayerObserver:
    """Observes every file of the layers a ``LayerFS`` reads to index them, in that same pass
    (``LayerFS(on_file=...)``), so that verifying them later decompresses nothing: ``save``
    adds what was observed to the cache, keyed by each layer's digest (layers without one are
    not kept), exactly as verifying would have observed it."""

    def __init__(self, cache: ObservationCache) -> None:
        self._cache = cache
        self._seen: dict[int, dict[int, Observation]] = {}
        self._layers: dict[int, Layer] = {}

    def __call__(self, layer: Layer, member: Member, data: IO[bytes]) -> None:
        if member.path is None or member.size < _MIN_OBSERVED:
            return
        buffer = LazyBuffer(data, member.size, self._cache.limit)
        try:
            observation = observe(buffer, member.path)
        finally:
            buffer.close()
        self._layers[layer.index] = layer
        self._seen.setdefault(layer.index, {})[member.ordinal] = observation

    def facts(self, entry: FsEntry) -> ElfFacts | None:
        """The ELF facts of a view's file observed here, or None (not observed, or not ELF)."""
        if entry.content is None:
            return None
        layer_index, ordinal = entry.content
        observation = self._seen.get(layer_index, {}).get(ordinal)
        return observation.facts if observation is not None else None

    def save(self) -> None:
        for layer_index, by_ordinal in self._seen.items():
            self._cache.add(self._layers[layer_index], by_ordinal)
