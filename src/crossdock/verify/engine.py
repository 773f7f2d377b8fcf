"""Verify an image: one streaming pass over the files that can matter, then the pure checks.

Only files whose first bytes are ELF, Mach-O or PE magic, or whose names are ``*.pyc`` or
``*.dist-info/WHEEL``, are parsed; everything else costs a 64-byte peek. Layers below
``first_layer`` (a base image already trusted) are not read at all, except for the few files the
checks need from them (libc, libstdc++, the entrypoint).

With ``cache_dir``, both costly reads are cached by layer digest: each layer's member index
(``layerindex``) and what was observed in each member's bytes (``verify.observe``); and so are
the per-file checks' verdicts on a layer's files, for this platform and Python, as long as the
view shows them under the same names (``verify.judged``): a code-only rebuild judges the files of
its new layer only. The image-wide checks always run in full, over the whole view, against this
verification's platform, Python, glibc and allow rules; only work on bytes already judged in the
same context is skipped.
"""

from __future__ import annotations

import hashlib
import posixpath
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from crossdock.cache import CacheLayout, in_use_if_any
from crossdock.image.artifact import ImageSet, PlatformImage
from crossdock.image.config import ImageConfig
from crossdock.image.digest import Digest
from crossdock.platform import Platform
from crossdock.rootfs.baseprofile import (
    DEFAULT_PATH,
    BaseProfile,
    find_python,
    libc_path_in,
    libstdcxx_path_in,
)
from crossdock.rootfs.elf import ElfFacts, ElfIdentity, elf_identity_for
from crossdock.rootfs.fsview import DEFAULT_READ_LIMIT, EntryKind, FsEntry, LayerFS
from crossdock.verify import checks
from crossdock.verify.judged import JudgedLayers, LayerVerdict, visible_files
from crossdock.verify.magic import BinaryKind, describe_macho
from crossdock.verify.observe import Observation, ObservationCache, observe
from crossdock.verify.pyabi import parse_extension_suffix, parse_wheel_tags
from crossdock.verify.report import (
    AllowRule,
    Check,
    FileRef,
    Finding,
    PlatformReport,
    Requirement,
    apply_allow,
)
from crossdock.verify.startup import check_startup
from crossdock.wheeltags import WheelTarget

__all__ = [
    "verify_base",
    "verify_fs",
    "verify_image",
    "verify_image_set",
    "verify_platform_image",
]


def verify_image(
    config: ImageConfig,
    layer_paths: Sequence[Path],
    *,
    profile: BaseProfile | None = None,
    allow: Iterable[str | AllowRule] = (),
    layer_digests: Sequence[Digest | None] | None = None,
    first_layer: int = 0,
    declared_platform: Platform | None = None,
    image_name: str | None = None,
    cache_dir: Path | None = None,
    startup: bool = True,
) -> PlatformReport:
    """Verify one single-platform image given its config and layer files (bottom first).

    Without ``profile``, the Python and glibc are read from the image itself.
    ``declared_platform`` is what an index says the manifest is for, checked against the config.
    ``cache_dir`` (crossdock's cache folder, see crossdock.cache) keeps what was read from
    layers by their digests: pass it only with ``layer_digests`` computed from, or checked
    against, the blobs' bytes (a layer without a digest is always read). ``startup``: check
    that what the config runs exists in the image (``verify.startup``); off for a base whose
    command the build replaces. A ``cache_dir`` is held in use while it is read and written
    (``CacheLayout.in_use``: a ``crossdock cache prune`` waits).
    """
    with in_use_if_any(cache_dir):
        fs = LayerFS(
            layer_paths,
            layer_digests,
            index_cache=cache_dir,
        )
        return verify_fs(
            config,
            fs,
            profile=profile,
            allow=allow,
            first_layer=first_layer,
            declared_platform=declared_platform,
            image_name=image_name,
            startup=startup,
            observations=(
                ObservationCache(cache_dir, limit=DEFAULT_READ_LIMIT)
                if cache_dir is not None
                else None
            ),
            verdicts=cache_dir,
        )


def verify_platform_image(
    image: PlatformImage,
    *,
    declared_platform: Platform | None,
    profile: BaseProfile | None = None,
    allow: Iterable[str | AllowRule] = (),
    first_layer: int = 0,
    image_name: str | None = None,
    cache_dir: Path | None = None,
    startup: bool = True,
) -> PlatformReport:
    """``verify_image`` for the one image model: its config and layer blobs, each known by its
    descriptor's digest (which every source and build checked against the bytes)."""
    return verify_image(
        image.config,
        [blob.path for blob in image.layers],
        layer_digests=[blob.descriptor.digest for blob in image.layers],
        profile=profile,
        allow=allow,
        first_layer=first_layer,
        declared_platform=declared_platform,
        image_name=image_name,
        cache_dir=cache_dir,
        startup=startup,
    )


def verify_base(
    base: PlatformImage,
    *,
    profile: BaseProfile,
    platform: Platform,
    allow: Sequence[str],
    image_name: str,
    cache_dir: Path,
) -> PlatformReport | None:
    """Verify a base image's own files once per base manifest digest, platform and allow rules:
    a base is immutable, so a pass recorded in crossdock's cache folder holds for every later
    build (the native backend) and rebase onto it. Returns the report when it fails, None when
    it passes (now or before). What the base's config runs is not checked: an image built on
    it replaces the command, and that is checked on the image."""
    records = CacheLayout(cache_dir).records("base-verified", version=1)
    text = "\0".join([str(base.digest), str(platform), *allow])
    key = hashlib.sha256(text.encode()).hexdigest()[:32]
    if records.load(key, _passed):
        return None
    report = verify_platform_image(
        base,
        declared_platform=platform,
        profile=profile,
        allow=allow,
        image_name=image_name,
        cache_dir=cache_dir,
        startup=False,
    )
    if not report.passed:
        return report
    records.store(key, value=True)
    return None


def _passed(payload: object) -> bool:
    """A base-verified record says ``true`` and nothing else: any other payload (``"no"``, 1, a
    list) is damage, never a pass."""
    if payload is not True:
        raise ValueError("a base-verified record is true")
    return True


def verify_image_set(
    image_set: ImageSet,
    *,
    profiles: Mapping[Platform, BaseProfile] | None = None,
    allow: Iterable[str | AllowRule] = (),
    first_layer: int = 0,
    cache_dir: Path | None = None,
) -> tuple[PlatformReport, ...]:
    """Verify every platform image of a build (what ``crossdock build`` does before pushing)."""
    rules = [_rule(a) for a in allow]
    return tuple(
        verify_platform_image(
            image,
            profile=(profiles or {}).get(image.platform),
            allow=rules,
            first_layer=first_layer,
            declared_platform=image.platform,
            image_name=str(image.digest),
            cache_dir=cache_dir,
        )
        for image in image_set.images
    )


def _rule(item: str | AllowRule) -> AllowRule:
    return item if isinstance(item, AllowRule) else AllowRule.parse(item)


@dataclass
class _Scan:
    """The context of one verification and what the streaming pass collected."""

    platform: Platform
    identity: ElfIdentity | None
    python: tuple[int, int] | None
    first_layer: int
    counts: dict[str, int] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    ran: list[Check] = field(default_factory=lambda: [Check.UNSAFE_PATH])
    elves: list[tuple[FileRef, ElfFacts]] = field(default_factory=list)
    facts_by_path: dict[str, ElfFacts] = field(default_factory=dict)
    heads_by_path: dict[str, bytes] = field(default_factory=dict)
    wheels: list[tuple[FileRef, str]] = field(default_factory=list)

    def count(self, kind: str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1

    def for_one_layer(self) -> _Scan:
        """An empty scan in the same context, to collect one layer's verdict."""
        return replace(
            self,
            counts={},
            findings=[],
            notes=[],
            ran=[],
            elves=[],
            facts_by_path={},
            heads_by_path={},
            wheels=[],
        )

    def verdict(self) -> LayerVerdict:
        """What the per-file checks collected (see ``for_one_layer``)."""
        return LayerVerdict(
            self.counts,
            self.findings,
            self.elves,
            self.wheels,
            self.facts_by_path,
            self.heads_by_path,
        )

    def merge(self, verdict: LayerVerdict) -> None:
        """Add one layer's verdict, as if its files had been judged here, in this order."""
        for kind, count in verdict.counts.items():
            self.counts[kind] = self.counts.get(kind, 0) + count
        self.findings.extend(verdict.findings)
        self.elves.extend(verdict.elves)
        self.wheels.extend(verdict.wheels)
        self.facts_by_path.update(verdict.facts_by_path)
        self.heads_by_path.update(verdict.heads_by_path)


def verify_fs(
    config: ImageConfig,
    fs: LayerFS,
    *,
    profile: BaseProfile | None = None,
    allow: Iterable[str | AllowRule] = (),
    first_layer: int = 0,
    declared_platform: Platform | None = None,
    image_name: str | None = None,
    observations: ObservationCache | None = None,
    startup: bool = True,
    verdicts: Path | None = None,
) -> PlatformReport:
    """Verify an image whose filesystem view is already built (see ``verify_image``).
    ``verdicts``: crossdock's cache folder, to keep and reuse layers' verdicts
    (``verify.judged``); only with layer digests computed from, or checked against, the
    layers' bytes, as for ``observations``."""
    started = time.perf_counter()
    platform = config.platform
    path_env = config.env.get("PATH") or DEFAULT_PATH
    if profile is not None and profile.platform.architecture != platform.architecture:
        raise ValueError(f"profile is for {profile.platform}, image config says {platform}")
    scan = _Scan(
        platform, elf_identity_for(platform), _image_python(fs, profile, path_env), first_layer
    )

    # libc and libstdc++ are read in the same pass (from base layers too) when no profile says
    # what they offer; the entrypoint is read wherever it is.
    libc_path = libc_path_in(fs, platform) if profile is None else None
    cxx_path = libstdcxx_path_in(fs, libc_path, platform) if libc_path else None
    command, entrypoint_path = _entrypoint(config, fs, path_env)
    always = {fs.resolve(p) or p for p in (libc_path, cxx_path, entrypoint_path) if p}
    judged = (
        JudgedLayers(verdicts, context=[platform, scan.identity, scan.python, DEFAULT_READ_LIMIT])
        if verdicts is not None
        else None
    )
    _judge_files(
        fs,
        lambda e: e.size >= 4 and (e.layer.index >= first_layer or e.path in always),
        scan,
        observations,
        judged,
    )

    glibc_available = profile.glibc if profile else None
    glibcxx_available = profile.glibcxx if profile else None
    if profile is None and libc_path:
        libc_facts = scan.facts_by_path.get(fs.resolve(libc_path) or libc_path)
        glibc_available = libc_facts.defined("GLIBC") if libc_facts else None
        cxx_facts = scan.facts_by_path.get(fs.resolve(cxx_path) or cxx_path) if cxx_path else None
        glibcxx_available = cxx_facts.defined("GLIBCXX") if cxx_facts else None

    if scan.identity is None:
        scan.notes.append(f"no ELF table entry for {platform}: architecture checks skipped")
    else:
        scan.ran += [Check.ELF_PLATFORM, Check.ELF_READABLE, Check.FOREIGN_BINARY]
        scan.ran += [Check.ENTRYPOINT, Check.EXTENSION_SUFFIX]
    _check_label(scan, declared_platform)
    glibc_req, glibcxx_req = _glibc_checks(scan, glibc_available, glibcxx_available)
    _check_wheels(scan, glibc_available)
    if scan.identity is not None and entrypoint_path is not None:
        _check_entrypoint(fs, scan, command, entrypoint_path, scan.identity, observations)
    elif command and not startup:
        scan.notes.append(f"entrypoint {command!r} was not found in the image")
    if startup:
        started_ok = check_startup(config, fs, profile=profile)
        scan.ran.append(Check.STARTUP)
        scan.findings.extend(started_ok.findings)
        scan.notes.extend(started_ok.notes)
    _check_anomalies(fs, scan)

    failures, allowed = apply_allow(scan.findings, [_rule(a) for a in allow])
    # An image whose layers are not its config's diff_ids cannot be unpacked: no rule allows it.
    failures = [*_check_diff_ids(config, fs, scan), *failures]
    if allowed:
        scan.notes.append(f"{len(allowed)} finding(s) allowed by --allow rules (listed below)")
    return PlatformReport(
        platform=str(platform),
        image=image_name or (str(config.digest) if config.raw else None),
        python_version=checks.dotted(scan.python) if scan.python else None,
        glibc=glibc_req,
        glibcxx=glibcxx_req,
        checks=tuple(dict.fromkeys(str(c) for c in scan.ran)),
        notes=tuple(scan.notes),
        counts=scan.counts,
        failures=tuple(failures),
        allowed=tuple(allowed),
        seconds=time.perf_counter() - started,
    )


def _image_python(
    fs: LayerFS, profile: BaseProfile | None, path_env: str
) -> tuple[int, int] | None:
    if profile is not None:
        return profile.python
    found = find_python(fs, path_env)
    if found is None:
        return None
    major, minor = found.version.split(".")
    return int(major), int(minor)


def _check_label(scan: _Scan, declared: Platform | None) -> None:
    if declared is None:
        return
    scan.ran.append(Check.PLATFORM_LABEL)
    platform = scan.platform
    if not declared.matches(platform.os, platform.architecture, platform.variant):
        scan.findings.append(
            Finding(
                Check.PLATFORM_LABEL,
                FileRef("(image config)"),
                expected=str(declared),
                found=str(platform),
                fix="the index and the image config disagree: rebuild or re-label the image",
            )
        )


def _check_wheels(scan: _Scan, glibc: tuple[int, ...] | None) -> None:
    if scan.python is None:
        scan.notes.append(
            "no python3.N found in the image: wheel, extension and .pyc checks skipped"
        )
        return
    scan.ran += [Check.WHEEL_PYTHON, Check.WHEEL_PLATFORM, Check.WHEEL_GLIBC, Check.PYC_MAGIC]
    if scan.identity is None:
        return
    target = WheelTarget(scan.identity.platform, scan.python, glibc)
    for ref, text in scan.wheels:
        tags = parse_wheel_tags(text)
        tags_text = ", ".join(sorted({str(t) for t in tags}))
        scan.findings.extend(checks.check_wheel(ref, tags_text, tags, target))


def _check_diff_ids(config: ImageConfig, fs: LayerFS, scan: _Scan) -> list[Finding]:
    """Each layer's uncompressed digest against the diff_id the config names for it, and one
    diff_id per layer (containerd and docker refuse a layer whose uncompressed bytes are not its
    diff_id: the image could not be pulled and run). Every layer, the base's too: the facts are
    recorded by the passes that indexed or wrote the layers, so this reads no layer again."""
    scan.ran.append(Check.DIFF_ID)
    platform = scan.platform
    claimed = config.diff_ids
    findings = []
    if len(claimed) != len(fs.layers):
        findings.append(
            Finding(
                Check.DIFF_ID,
                FileRef("(image config) rootfs.diff_ids"),
                expected=f"{len(fs.layers)} diff_ids, one per layer of the manifest",
                found=f"{len(claimed)} in the {platform} config",
                fix="the config does not describe the manifest's layers: rebuild the image",
            )
        )
    for layer, diff_id in zip(fs.layers, claimed, strict=False):
        actual = fs.uncompressed_digest(layer.index, diff_id.algorithm)
        if actual != diff_id:
            findings.append(
                Finding(
                    Check.DIFF_ID,
                    FileRef(
                        f"(image config) rootfs.diff_ids[{layer.index}]",
                        layer.index,
                        str(layer.digest) if layer.digest else None,
                    ),
                    expected=f"{actual}, the uncompressed digest of {layer.label()}",
                    found=f"{diff_id} in the {platform} config",
                    fix="a runtime refuses to unpack this layer: rebuild the image (built by "
                    "crossdock: empty its cache first, crossdock cache prune --max-size 0)",
                )
            )
    return findings


def _check_anomalies(fs: LayerFS, scan: _Scan) -> None:
    for anomaly in fs.anomalies:
        if anomaly.layer.index >= scan.first_layer:
            digest = str(anomaly.layer.digest) if anomaly.layer.digest else None
            scan.findings.append(
                Finding(
                    Check.UNSAFE_PATH,
                    FileRef(anomaly.member, anomaly.layer.index, digest),
                    expected="a path inside the image root",
                    found=anomaly.reason,
                    fix="rebuild the layer; a runtime refuses or ignores such entries",
                )
            )


def _judge_files(
    fs: LayerFS,
    predicate: Callable[[FsEntry], bool],
    scan: _Scan,
    observations: ObservationCache | None,
    judged: JudgedLayers | None,
) -> None:
    """Judge every file ``predicate`` accepts, layer by layer (bottom first, as one pass would):
    a layer in scope whose files were judged before in this context, visible under the same
    names, takes its recorded verdict; the others are observed and judged (and recorded)."""
    by_layer: dict[int, dict[tuple[int, int], list[FsEntry]]] = {}
    for content, entries in fs.file_groups(predicate).items():
        by_layer.setdefault(content[0], {})[content] = entries
    verdicts: dict[int, LayerVerdict] = {}
    fingerprints: dict[int, str] = {}
    to_observe: dict[tuple[int, int], list[FsEntry]] = {}
    for layer_index, groups in by_layer.items():
        if judged is not None and layer_index >= scan.first_layer:
            fingerprints[layer_index] = visible_files(groups)
            verdict = judged.load(fs.layers[layer_index], fingerprints[layer_index])
            if verdict is not None:
                verdicts[layer_index] = verdict
                continue
        to_observe.update(groups)
    observed = _observe_groups(fs, to_observe, observations)
    for layer_index, groups in by_layer.items():
        verdict = verdicts.get(layer_index)
        if verdict is None:
            one_layer = scan.for_one_layer()
            for content, entries in groups.items():
                _judge_file(entries, observed[content], one_layer)
            verdict = one_layer.verdict()
            if judged is not None and layer_index in fingerprints:
                judged.store(fs.layers[layer_index], fingerprints[layer_index], verdict)
        scan.merge(verdict)


def _observe_files(
    fs: LayerFS,
    predicate: Callable[[FsEntry], bool],
    cache: ObservationCache | None,
) -> tuple[dict[tuple[int, int], list[FsEntry]], dict[tuple[int, int], Observation]]:
    """The files ``predicate`` accepts, grouped by their bytes, and what their bytes are."""
    groups = fs.file_groups(predicate)
    return groups, _observe_groups(fs, groups, cache)


def _observe_groups(
    fs: LayerFS,
    groups: dict[tuple[int, int], list[FsEntry]],
    cache: ObservationCache | None,
) -> dict[tuple[int, int], Observation]:
    """What the bytes of ``groups`` (as ``file_groups`` made them) are: from ``cache`` where a
    layer's member was observed before, else read in one pass per layer."""
    observed: dict[tuple[int, int], Observation] = {}
    missing: set[tuple[int, int]] = set()
    for content, entries in groups.items():
        known = cache.get(fs.layers[content[0]], content[1]) if cache else None
        if known is not None and known.fits(entries[0].path):
            observed[content] = known
        else:
            missing.add(content)
    if missing:
        new: dict[int, dict[int, Observation]] = {}
        # These groups as they are (each group's first name is the one judged).
        for file in fs.iter_files(groups={content: groups[content] for content in missing}):
            where = file.entry.content
            if where is None:  # pragma: no cover - iter_files yields files with bytes only
                continue
            observation = observe(file.data, file.entry.path)
            observed[where] = observation
            new.setdefault(where[0], {})[where[1]] = observation
        if cache is not None:
            for layer_index, by_ordinal in new.items():
                cache.add(fs.layers[layer_index], by_ordinal)
    return observed


def _judge_file(entries: Sequence[FsEntry], observation: Observation, scan: _Scan) -> None:
    entry = entries[0]
    layer = entry.layer
    ref = FileRef(entry.path, layer.index, str(layer.digest) if layer.digest else None)
    in_scope = layer.index >= scan.first_layer
    kind = observation.kind
    if in_scope:
        scan.count("files")
    if kind is BinaryKind.ELF:
        if not _judge_elf(entries, observation, scan, ref, in_scope=in_scope):
            return
    elif kind in (BinaryKind.MACHO, BinaryKind.PE) and in_scope:
        scan.count(str(kind))
        description = (
            describe_macho(observation.head) if kind is BinaryKind.MACHO else "PE (Windows)"
        )
        scan.findings.append(checks.check_foreign_binary(ref, description, scan.platform))
    elif observation.shebang is not None:
        scan.heads_by_path[entry.path] = observation.shebang
    if in_scope:
        _judge_python_file(observation, scan, ref)


def _judge_elf(
    entries: Sequence[FsEntry],
    observation: Observation,
    scan: _Scan,
    ref: FileRef,
    *,
    in_scope: bool,
) -> bool:
    facts = observation.facts
    if facts is None:
        if in_scope:
            scan.findings.append(
                Finding(
                    Check.ELF_READABLE,
                    ref,
                    expected="readable ELF headers",
                    found=observation.elf_error or "unreadable ELF headers",
                    fix="the file is truncated or damaged; reinstall its package",
                )
            )
        return False
    for alias in entries:
        scan.facts_by_path[alias.path] = facts
    if in_scope:
        scan.count("elf")
        scan.elves.append((ref, facts))
        if scan.identity is not None:
            finding = checks.check_elf_platform(ref, facts, scan.identity, scan.platform)
            if finding:
                scan.findings.append(finding)
    return True


def _judge_python_file(observation: Observation, scan: _Scan, ref: FileRef) -> None:
    name = posixpath.basename(ref.path)
    kind = observation.kind
    if kind is not BinaryKind.OTHER and (suffix := parse_extension_suffix(name)) is not None:
        scan.count("extension")
        scan.findings.extend(checks.check_extension_suffix(ref, suffix, scan.python, scan.identity))
    if scan.python is not None and name.endswith(".pyc"):
        scan.count("pyc")
        finding = checks.check_pyc(ref, observation.head, scan.python)
        if finding:
            scan.findings.append(finding)
    if scan.python is not None and ref.path.endswith(".dist-info/WHEEL"):
        scan.count("wheel")
        # Judged after the scan: libc's version may only be known once its layer was read.
        scan.wheels.append((ref, observation.wheel_text or ""))


def _glibc_checks(
    scan: _Scan, glibc: tuple[int, ...] | None, glibcxx: tuple[int, ...] | None
) -> tuple[Requirement, Requirement]:
    highest: tuple[tuple[int, ...], str] | None = None
    highest_cxx: tuple[tuple[int, ...], str] | None = None
    for ref, facts in scan.elves:
        needed = facts.required("GLIBC")
        if needed is not None and (highest is None or needed > highest[0]):
            highest = (needed, ref.path)
        needed_cxx = facts.required("GLIBCXX", library_prefix="libstdc++.so")
        if needed_cxx is not None and (highest_cxx is None or needed_cxx > highest_cxx[0]):
            highest_cxx = (needed_cxx, ref.path)
        if glibc is not None:
            finding = checks.check_glibc(ref, facts, glibc)
            if finding:
                scan.findings.append(finding)
            cxx_finding = checks.check_glibcxx(ref, facts, glibcxx)
            if cxx_finding:
                scan.findings.append(cxx_finding)
    if glibc is None:
        scan.notes.append("no glibc (libc.so.6) found in the image: glibc checks skipped")
    else:
        scan.ran += [Check.GLIBC, Check.GLIBCXX]
    return (
        Requirement(
            checks.dotted(glibc) if glibc else None,
            checks.dotted(highest[0]) if highest else None,
            highest[1] if highest else None,
        ),
        Requirement(
            checks.dotted(glibcxx) if glibcxx else None,
            checks.dotted(highest_cxx[0]) if highest_cxx else None,
            highest_cxx[1] if highest_cxx else None,
        ),
    )


def _entrypoint(config: ImageConfig, fs: LayerFS, path_env: str) -> tuple[str, str | None]:
    """The program the container starts, and where it is in the image (symlinks resolved)."""
    runtime = config.runtime
    argv = list(runtime.get("Entrypoint") or []) + list(runtime.get("Cmd") or [])
    if not argv:
        return "", None
    program = str(argv[0])
    if "/" in program:
        base = str(runtime.get("WorkingDir") or "/")
        candidates = [posixpath.join(base, program)]
    else:
        candidates = [posixpath.join(d, program) for d in path_env.split(":") if d]
    for candidate in candidates:
        entry = fs.get(candidate)
        if entry is not None and entry.kind is EntryKind.FILE:
            return " ".join(str(a) for a in argv), entry.path
    return " ".join(str(a) for a in argv), None


def _check_entrypoint(  # noqa: PLR0917 - private, called once
    fs: LayerFS,
    scan: _Scan,
    command: str,
    path: str,
    identity: ElfIdentity,
    observations: ObservationCache | None,
) -> None:
    target = path
    facts = scan.facts_by_path.get(path)
    head = scan.heads_by_path.get(path)
    if facts is None and head is not None:
        # A script: what executes is its interpreter (``#!/usr/bin/python3.13``).
        interpreter = head[2:].split(b"\n", 1)[0].strip().split(b" ")[0].decode("utf-8", "replace")
        entry = fs.get(interpreter)
        if entry is None:
            return
        target = entry.path
        facts = scan.facts_by_path.get(target)
        if facts is None and entry.kind is EntryKind.FILE:
            _, observed = _observe_files(fs, lambda e: e.path == target, observations)
            facts = next((o.facts for o in observed.values()), None)
    if facts is None:
        return
    node = fs.get(target)
    layer = node.layer if node else None
    ref = FileRef(
        target,
        layer.index if layer else None,
        str(layer.digest) if layer and layer.digest else None,
    )
    finding = checks.check_entrypoint(command, ref, facts, identity, scan.platform)
    if finding:
        scan.findings.append(finding)
