"""What the per-file checks concluded about one layer's files, kept by the layer's digest and
everything those checks depend on, so that a rebuild that changed one layer (a code-only change)
judges that layer's files and takes the others' verdicts from the cache.

The per-file checks (ELF platform and readability, foreign binaries, extension suffixes, .pyc
magic numbers) and what they collect for the image-wide checks (each ELF file's facts for the
glibc and entrypoint checks, each WHEEL file's text, each script's shebang) depend on:

- the file's bytes: a member of the layer, named by the layer's digest (computed from the
  blob's bytes) and its ordinal;
- the names and layers under which the view shows those bytes (a file's name decides which
  checks apply; reports name the layer): the layer's *visible files*, fingerprinted in order;
- the verification's context: the platform (and its ELF identity), the image's Python, the
  layer's position in the image, the parse limit, and the checking code itself (crossdock's
  version and a hash of the verify package's sources).

A ``LayerVerdict`` is stored only after this process judged those files from their bytes (their
observations), under a key of all of the above but the visible files, whose fingerprint is
stored in the record and compared on read: an upper layer that hides or renames one file makes
the record unusable for that image, and the layer is judged again. Records are checksummed
(crossdock.cache.Records): a damaged, foreign or malformed one is ignored. Every image-wide check
(glibc, GLIBCXX, wheel tags, the entrypoint, start-up, unsafe paths) still runs on every
verification, over the whole view, from these verdicts and the new layer's.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crossdock._version import __version__
from crossdock.cache import CacheLayout, Records
from crossdock.image.document import checked, optional, require, text_or_none
from crossdock.rootfs.elf import ElfFacts
from crossdock.rootfs.fsview import FsEntry, Layer
from crossdock.verify.observe import facts_from_json, facts_to_json
from crossdock.verify.report import Check, FileRef, Finding

__all__ = ["JudgedLayers", "LayerVerdict", "visible_files"]

# Bump when what a verdict holds, or how it is judged, changes.
_KIND = "layer-verdicts"
_VERSION = 1


@dataclass
class LayerVerdict:
    """The per-file checks' results for one layer's visible files, in the order they were
    judged (the image's verification merges them in layer order, as if judged in one pass)."""

    counts: dict[str, int] = field(default_factory=dict)  # in first-counted order
    findings: list[Finding] = field(default_factory=list)
    elves: list[tuple[FileRef, ElfFacts]] = field(default_factory=list)
    wheels: list[tuple[FileRef, str]] = field(default_factory=list)
    facts_by_path: dict[str, ElfFacts] = field(default_factory=dict)
    heads_by_path: dict[str, bytes] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        facts_rows: list[list[object]] = []
        facts_index: dict[int, int] = {}  # id(facts) -> row: an ELF's aliases share one row
        for facts in [f for _, f in self.elves] + list(self.facts_by_path.values()):
            if id(facts) not in facts_index:
                facts_index[id(facts)] = len(facts_rows)
                facts_rows.append(facts_to_json(facts))
        return {
            "counts": [[name, count] for name, count in self.counts.items()],
            "findings": [finding.to_json() for finding in self.findings],
            "facts": facts_rows,
            "elves": [[_ref_json(ref), facts_index[id(f)]] for ref, f in self.elves],
            "wheels": [[_ref_json(ref), text] for ref, text in self.wheels],
            "facts_by_path": [[path, facts_index[id(f)]] for path, f in self.facts_by_path.items()],
            "heads_by_path": [
                [path, base64.b64encode(head).decode()] for path, head in self.heads_by_path.items()
            ],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LayerVerdict:
        """What ``to_json`` wrote, of its types exactly (a layer-verdicts record); anything
        else raises, and the layer is judged again."""
        facts = [facts_from_json(row) for row in require(data, "facts", list, _WHAT)]

        def facts_at(index: object) -> ElfFacts:
            at = checked(index, int, _WHAT)
            if not 0 <= at < len(facts):
                raise IndexError(f"{_WHAT}: no ELF facts {at}")
            return facts[at]

        return cls(
            counts={_text(name): _count(count) for name, count in _pairs(data, "counts")},
            findings=[_finding(item) for item in require(data, "findings", list, _WHAT)],
            elves=[(_ref(ref), facts_at(i)) for ref, i in _pairs(data, "elves")],
            wheels=[(_ref(ref), _text(text)) for ref, text in _pairs(data, "wheels")],
            facts_by_path={_text(path): facts_at(i) for path, i in _pairs(data, "facts_by_path")},
            heads_by_path={
                _text(path): base64.b64decode(_text(head), validate=True)
                for path, head in _pairs(data, "heads_by_path")
            },
        )


def visible_files(groups: Mapping[tuple[int, int], Sequence[FsEntry]]) -> str:
    """The fingerprint of one layer's visible files: each member's ordinal and every name (and
    layer) the view shows it under, in order."""
    # NUL cannot occur in a path (a tar member name ends at one), so the text is unambiguous.
    text = "\n".join(
        f"{ordinal}\0" + "\0".join(f"{e.path}\0{e.layer.index}\0{e.layer.digest}" for e in entries)
        for (_, ordinal), entries in groups.items()
    )
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


class JudgedLayers:
    """Layer verdicts in the cache folder, one record per (layer digest, context)."""

    def __init__(self, cache_root: Path, *, context: Sequence[object]) -> None:
        """``context``: what the per-file checks depend on besides the files (platform, ELF
        identity, Python, parse limit), as plain values."""
        self._records: Records = CacheLayout(cache_root).records(_KIND, version=_VERSION)
        self._context = json.dumps([__version__, _checks_source_hash(), *map(str, context)])

    def load(self, layer: Layer, fingerprint: str) -> LayerVerdict | None:
        """The verdict on ``layer``'s files when they are visible exactly as ``fingerprint``
        says, else None (judge them)."""
        key = self._key(layer)
        if key is None:
            return None
        return self._records.load(key, lambda payload: _verdict_if(payload, fingerprint))

    def store(self, layer: Layer, fingerprint: str, verdict: LayerVerdict) -> None:
        """Keep a verdict this process judged from ``layer``'s bytes."""
        key = self._key(layer)
        if key is not None:
            self._records.store(key, {"visible": fingerprint, "verdict": verdict.to_json()})

    def _key(self, layer: Layer) -> str | None:
        if layer.digest is None:
            return None  # bytes not named by a digest: always judged
        material = f"{self._context}\0{layer.index}\0{layer.digest}"
        return hashlib.sha256(material.encode()).hexdigest()


def _verdict_if(payload: Mapping[str, Any], fingerprint: str) -> LayerVerdict | None:
    if payload["visible"] != fingerprint:
        return None
    return LayerVerdict.from_json(payload["verdict"])


@functools.cache
def _checks_source_hash() -> str:
    """The checking code: the verify package, the ELF reader and the wheel-tag table (a changed
    check is another key, even at the same version number)."""
    package = Path(__file__).resolve().parent
    root = package.parent
    files = [*sorted(package.glob("*.py")), root / "rootfs" / "elf.py", root / "wheeltags.py"]
    h = hashlib.sha256()
    for path in files:
        h.update(path.name.encode() + b"\0")
        h.update(path.read_bytes())
    return h.hexdigest()


def _ref_json(ref: FileRef) -> list[object]:
    return [ref.path, ref.layer_index, ref.layer_digest]


_WHAT = "a layer-verdicts record"


def _text(value: object) -> str:
    return checked(value, str, _WHAT)


def _count(value: object) -> int:
    count = checked(value, int, _WHAT)
    if count < 0:
        raise ValueError(f"{_WHAT}: a negative count")
    return count


def _pairs(data: Mapping[str, Any], key: str) -> list[list[Any]]:
    """``data[key]``, a list of two-item lists (a string or an object would unpack as
    characters or keys)."""
    pairs = require(data, key, list, _WHAT)
    for pair in pairs:
        if len(checked(pair, list, _WHAT)) != 2:
            raise ValueError(f"{_WHAT}: {key} holds a list of {len(pair)}")
    return pairs


def _layer_index(value: object) -> int | None:
    if value is None:
        return None
    index = checked(value, int, _WHAT)
    if index < 0:
        raise ValueError(f"{_WHAT}: a negative layer index")
    return index


def _ref(row: object) -> FileRef:
    path, index, digest = checked(row, list, _WHAT)
    return FileRef(_text(path), _layer_index(index), text_or_none(digest, _WHAT))


def _finding(item: Mapping[str, Any]) -> Finding:
    return Finding(
        Check(require(item, "check", str, _WHAT)),
        FileRef(
            require(item, "path", str, _WHAT),
            _layer_index(item["layer_index"]),
            optional(item, "layer_digest", str, _WHAT),
        ),
        expected=require(item, "expected", str, _WHAT),
        found=require(item, "found", str, _WHAT),
        fix=require(item, "fix", str, _WHAT),
        allowed_by=optional(item, "allowed_by", str, _WHAT),
    )
