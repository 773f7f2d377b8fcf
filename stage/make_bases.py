#!/usr/bin/env python3
"""Build the stage's multi-arch base images and publish them to the local registry.

Python 3.11 standard library only: this runs before crossdock (or any virtualenv) exists.

Subcommands:
  publish       build root filesystems (mmdebstrap, no emulation), turn them into OCI images
                and an OCI image index per base (stage/bases.toml), write them as an OCI image
                layout and push them with skopeo; skip what is cached or already in the registry.
  fixup-rootfs  mmdebstrap --extract-hook: do what maintainer scripts would have done.
  summary       print what was published and whether the registry still serves it.

Called by stage/stage.sh; see ARCHITECTURE.md section 7.
"""

# ruff: noqa: T201 - the summary subcommand prints its table

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import datetime
import gzip
import hashlib
import inspect
import io
import json
import os
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

# Bump when the way layers/images are assembled changes, so caches keyed on it are rebuilt.
SCRIPT_VERSION = "1"

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
REF_ANNOTATION = "org.opencontainers.image.ref.name"
# gzip -1: 5 s instead of 13 s per 140 MB root filesystem, for 10% more bytes on loopback.
GZIP_LEVEL = 1

HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


def log(msg: str) -> None:
    # One write per line: the two platforms are built in threads. Prefixed with the script that
    # runs (base_updates.py shares this module's layout and push).
    sys.stderr.write(f"{Path(sys.argv[0]).stem}: {msg}\n")
    sys.stderr.flush()


# --------------------------------------------------------------------------------------------
# bases.toml
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Platform:
    key: str  # the name used in bases.toml (amd64, arm64)
    debian_arch: str
    os: str
    architecture: str
    variant: str | None
    uv_platform: str

    def oci(self) -> dict[str, str]:
        out = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            out["variant"] = self.variant
        return out

    def slug(self) -> str:
        return "/".join(v for v in (self.os, self.architecture, self.variant) if v)


@dataclasses.dataclass(frozen=True)
class Base:
    name: str
    stands_in_for: str
    repository: str
    tags: list[str]
    platforms: list[str]
    platform_tags: dict[str, str]
    config: dict[str, Any]
    facts: dict[str, Any]
    layer: dict[str, Any] | None
    rootfs: str | None = None  # a [rootfs_variants.NAME] table; None: the default [rootfs]


@dataclasses.dataclass(frozen=True)
class Rootfs:
    """One root filesystem recipe: the default [rootfs] (name None) or a named variant."""

    name: str | None
    recipe: dict[str, Any]

    def slug(self, plat: Platform) -> str:
        """Names its tars and logs; the default keeps the plain arch, as before variants."""
        return plat.debian_arch if self.name is None else f"{self.name}-{plat.debian_arch}"

    @property
    def source_date_epoch(self) -> int:
        return int(self.recipe["source_date_epoch"])


@dataclasses.dataclass(frozen=True)
class Config:
    rootfs: dict[str, Any]
    platforms: dict[str, Platform]
    bases: list[Base]
    rootfs_variants: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)

    @property
    def source_date_epoch(self) -> int:
        return int(self.rootfs["source_date_epoch"])

    def rootfs_of(self, base: Base) -> Rootfs:
        if base.rootfs is None:
            return Rootfs(None, self.rootfs)
        return Rootfs(base.rootfs, self.rootfs_variants[base.rootfs])


def load_config(path: Path) -> Config:
    with path.open("rb") as f:
        raw = tomllib.load(f)
    if raw.get("schema") != 1:
        raise SystemExit(f"{path}: unsupported schema {raw.get('schema')!r}")
    platforms = {
        key: Platform(
            key=key,
            debian_arch=p["debian_arch"],
            os=p["os"],
            architecture=p["architecture"],
            variant=p.get("variant"),
            uv_platform=p["uv_platform"],
        )
        for key, p in raw["platforms"].items()
    }
    variants = dict(raw.get("rootfs_variants", {}))
    bases = []
    for b in raw["bases"]:
        for p in b["platforms"]:
            if p not in platforms:
                raise SystemExit(f"{path}: base {b['name']}: unknown platform {p}")
        if b.get("rootfs") is not None and b["rootfs"] not in variants:
            raise SystemExit(f"{path}: base {b['name']}: unknown rootfs variant {b['rootfs']}")
        bases.append(
            Base(
                name=b["name"],
                stands_in_for=b["stands_in_for"],
                repository=b["repository"],
                tags=list(b["tags"]),
                platforms=list(b["platforms"]),
                platform_tags=dict(b.get("platform_tags", {})),
                config=dict(b.get("config", {})),
                facts=dict(b.get("facts", {})),
                layer=b.get("layer"),
                rootfs=b.get("rootfs"),
            )
        )
    return Config(rootfs=raw["rootfs"], platforms=platforms, bases=bases, rootfs_variants=variants)


def sha256_json(obj: object) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def iso_time(epoch: int) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------------------------
# The extract hook: runs on the host with the unpacked (not configured) root filesystem.
# --------------------------------------------------------------------------------------------


def fixup_rootfs(root: Path, ca_bundle: Path, python_root: Path | None) -> None:
    """Do what the skipped maintainer scripts (and docker's python image) would have done.

    python_root: a root filesystem of the host's architecture whose python3 can byte-compile
    this one (may be `root` itself); None skips byte-compiling.
    """
    etc = root / "etc"
    # base-passwd's postinst creates these from its master files; without them `id`, pip's
    # and getpass' user lookups see only numbers.
    for name in ("passwd", "group"):
        target = etc / name
        if not target.exists():
            shutil.copyfile(root / "usr/share/base-passwd" / f"{name}.master", target)
            target.chmod(0o644)
    # glibc falls back to sane defaults without it, but tools that read it expect it.
    nsswitch = etc / "nsswitch.conf"
    if not nsswitch.exists():
        nsswitch.write_text(
            "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n"
            "networks: files\nprotocols: files\nservices: files\n"
        )
    # dash's postinst makes /bin/sh; trixie's dash ships it, older ones did not.
    sh = root / "usr/bin/sh"
    if not sh.exists() and not sh.is_symlink():
        sh.symlink_to("dash")
    # ca-certificates' postinst builds the bundle. Use the host's: it also trusts the HTTPS
    # proxy this machine goes through, so pip/uv inside containers reach PyPI.
    certs = etc / "ssl/certs"
    certs.mkdir(parents=True, exist_ok=True)
    bundle = certs / "ca-certificates.crt"
    if ca_bundle.is_file():
        shutil.copyfile(ca_bundle, bundle)
    else:  # no host bundle: the Mozilla set the package ships
        pems = sorted((root / "usr/share/ca-certificates/mozilla").glob("*.crt"))
        bundle.write_bytes(b"".join(p.read_bytes().rstrip(b"\n") + b"\n" for p in pems))
    bundle.chmod(0o644)
    # The official python image has no PEP 668 marker: `pip install` into it just works.
    for marker in (root / "usr/lib").glob("python3*/EXTERNALLY-MANAGED"):
        marker.unlink()
    write_dpkg_status(root)
    if python_root is not None:
        byte_compile(root, python_root)
    else:
        log(f"{root}: no native python3 to byte-compile with; the image will compile at run time")


def write_dpkg_status(root: Path) -> None:
    """Record the unpacked packages in /var/lib/dpkg/status, as an installed system has them.

    Scanners (and `dpkg -l` where dpkg exists) read it. The .debs are still in apt's cache
    while the extract hook runs.
    """
    debs = sorted((root / "var/cache/apt/archives").glob("*.deb"))
    stanzas = []
    for deb in debs:
        control = subprocess.run(
            ["dpkg-deb", "--field", str(deb)], check=True, capture_output=True, text=True
        ).stdout.rstrip("\n")
        lines = control.splitlines()
        # "Status" goes right after "Package", as dpkg writes it. "installed", not "unpacked":
        # the files are all there and fixup_rootfs did what the postinsts that matter do.
        stanzas.append("\n".join(lines[:1] + ["Status: install ok installed"] + lines[1:]))
    status = root / "var/lib/dpkg/status"
    status.parent.mkdir(parents=True, exist_ok=True)
    status.write_text("\n\n".join(stanzas) + "\n")


def byte_compile(root: Path, python_root: Path, subdirs: list[str] | None = None) -> None:
    """Byte-compile root's Python modules, as python3.13's postinst (py3compile) would.

    subdirs: folders under root to compile; default: the stdlib and dist-packages.

    Without .pyc files every arm64 container compiles the stdlib again under QEMU (12 s instead
    of 3 s for `import ssl, sqlite3, ctypes`). The compiler is the host-architecture Python of
    python_root, run through its own dynamic loader (the host's glibc is older): no emulation.
    .pyc files do not depend on the CPU. They are checked-hash pycs (PEP 552): mmdebstrap
    clamps every mtime to SOURCE_DATE_EPOCH when it writes the tar, which would invalidate
    the default timestamp-based ones.
    """
    version = os.readlink(python_root / "usr/bin/python3")  # "python3.13"
    loaders = sorted((python_root / "usr/lib").glob("*-linux-gnu/ld-linux*.so.[0-9]"))
    if not loaders:
        raise SystemExit(f"{python_root}: no dynamic loader under usr/lib/*-linux-gnu")
    loader = loaders[0]
    if subdirs is None:
        subdirs = [f"usr/lib/{version}", "usr/lib/python3/dist-packages"]
    dirs = [root / d for d in subdirs]
    argv = [
        str(loader), "--library-path", str(loader.parent),
        str(python_root / "usr/bin" / version),
        "-B",  # the compiler's own imports must not leave timestamp pycs in python_root
        "-m", "compileall", "-q",  # no -j: its workers would exec python3.13 without the loader
        "-f", "--invalidation-mode", "checked-hash",
        "-s", str(root), "-p", "/",  # record /usr/lib/... (not the build folder) in tracebacks
        *[str(d) for d in dirs if d.is_dir()],
    ]  # fmt: skip
    env = {"PYTHONHOME": str(python_root / "usr"), "PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"}
    result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"byte-compiling {root} failed:\n{result.stdout}{result.stderr}")


# --------------------------------------------------------------------------------------------
# Root filesystems (mmdebstrap, cached by recipe)
# --------------------------------------------------------------------------------------------


def rootfs_recipe(rootfs: Rootfs, plat: Platform, ca_bundle: Path) -> dict[str, Any]:
    """Everything that determines the root filesystem tar; its hash is the cache key."""
    return {
        "script_version": SCRIPT_VERSION,
        "rootfs": rootfs.recipe,
        "arch": plat.debian_arch,
        "hook": "".join(
            inspect.getsource(f) for f in (fixup_rootfs, write_dpkg_status, byte_compile)
        ),
        "ca_bundle": sha256_file(ca_bundle) if ca_bundle.is_file() else None,
    }


def mmdebstrap_argv(rootfs: Rootfs, plat: Platform, hook: str | None, out: str) -> list[str]:
    recipe = rootfs.recipe
    argv = [
        "mmdebstrap",
        "--variant=extract",
        "--format=tar",  # not guessed from the (temporary) output name
        f"--arch={plat.debian_arch}",
        "--include=" + ",".join(recipe["packages"]),
        "--components=" + ",".join(recipe["components"]),
    ]
    # Setup hooks run before anything is unpacked (bookworm's merged-/usr symlinks).
    argv += [f"--setup-hook={h}" for h in recipe.get("setup_hooks", [])]
    if hook:
        argv.append(f"--extract-hook={hook}")
    return [*argv, recipe["suite"], out]


def host_debian_arch() -> str:
    return subprocess.run(
        ["dpkg", "--print-architecture"], check=True, capture_output=True, text=True
    ).stdout.strip()


def build_rootfs(
    rootfs: Rootfs, plat: Platform, cache: Path, ca_bundle: Path, native_tar: Path | None
) -> Path:
    """The cached root filesystem tar of `plat`; built with mmdebstrap if missing.

    native_tar: the host architecture's root filesystem of the same recipe (already built),
    whose python3 byte-compiles a foreign one; None for the host architecture itself (it
    compiles itself).
    """
    key = sha256_json(rootfs_recipe(rootfs, plat, ca_bundle))[:16]
    slug = rootfs.slug(plat)
    out = cache / "rootfs" / f"{slug}-{key}.tar"
    if out.exists():
        log(f"rootfs {slug}: cached ({out.name})")
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    (cache / "tmp").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache / "tmp") as native_dir:
        if native_tar is None:
            python_root = '"$1"'  # the rootfs being built runs on this host
        else:
            python_root = shlex.quote(str(extract_python(native_tar, Path(native_dir))))
        hook = " ".join(
            [
                shlex.quote(sys.executable),
                shlex.quote(str(Path(__file__).resolve())),
                "fixup-rootfs",
                "--ca-bundle",
                shlex.quote(str(ca_bundle)),
                "--python-root",
                python_root,
                '"$1"',
            ]
        )
        run_mmdebstrap(rootfs, plat, cache, hook, out)
    # Old recipes' tars are dead weight (~150 MB each); "amd64-*" never matches a variant's
    # "bookworm-amd64-*".
    for stale in out.parent.glob(f"{slug}-*.tar"):
        if stale != out:
            stale.unlink()
    return out


def run_mmdebstrap(rootfs: Rootfs, plat: Platform, cache: Path, hook: str, out: Path) -> None:
    tmp = out.with_suffix(".tar.part")
    slug = rootfs.slug(plat)
    logfile = cache / "run" / f"mmdebstrap-{slug}.log"
    logfile.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, SOURCE_DATE_EPOCH=str(rootfs.source_date_epoch))
    log(f"rootfs {slug}: mmdebstrap (log: {logfile})")
    with logfile.open("w") as lf:
        rc = subprocess.run(
            mmdebstrap_argv(rootfs, plat, hook, str(tmp)),
            stdout=lf,
            stderr=subprocess.STDOUT,
            env=env,
            check=False,
        ).returncode
    if rc != 0:
        sys.stderr.write(logfile.read_text()[-4000:])
        raise SystemExit(f"mmdebstrap for {slug} failed (exit {rc}), see {logfile}")
    tmp.rename(out)


# --------------------------------------------------------------------------------------------
# OCI layout
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Layer:
    digest: str  # sha256:... of the gzip blob
    size: int
    diff_id: str  # sha256:... of the uncompressed tar
    created_by: str
    comment: str

    def descriptor(self) -> dict[str, Any]:
        return {"mediaType": OCI_LAYER_GZIP, "digest": self.digest, "size": self.size}


class Writable(Protocol):
    def write(self, data: bytes, /) -> int: ...


class HashingWriter(io.RawIOBase):
    """A write-only stream that hashes and counts what passes through it to `inner`."""

    def __init__(self, inner: Writable | None) -> None:
        self.inner = inner
        self.sha = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, b: ReadableBuffer, /) -> int:
        data = bytes(b)
        self.sha.update(data)
        self.size += len(data)
        if self.inner is not None:
            self.inner.write(data)
        return len(data)


class Layout:
    """An OCI image layout directory (oci-layout, index.json, blobs/sha256/)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.blobs = path / "blobs" / "sha256"
        self.blobs.mkdir(parents=True, exist_ok=True)
        (path / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
        self.refs: list[dict[str, Any]] = []

    def blob_path(self, digest: str) -> Path:
        return self.blobs / digest.removeprefix("sha256:")

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).exists()

    def put(self, media_type: str, data: bytes) -> dict[str, Any]:
        """Store ``data`` as a blob; its descriptor."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        path = self.blob_path(digest)
        if not path.exists():
            path.write_bytes(data)
        return {"mediaType": media_type, "digest": digest, "size": len(data)}

    def put_json(self, media_type: str, obj: object) -> dict[str, Any]:
        data = json.dumps(obj, indent=None, separators=(",", ":"), sort_keys=True).encode()
        return self.put(media_type, data)

    def read_json(self, digest: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.blob_path(digest).read_bytes())
        return data

    def link_from(self, source: Layout, digest: str) -> None:
        """Make ``source``'s blob ``digest`` one of this layout's too (a hard link, no copy)."""
        target = self.blob_path(digest)
        if not target.exists():
            os.link(source.blob_path(digest), target)

    def write_layer(
        self, members: Iterator[tuple[tarfile.TarInfo, IO[bytes] | None]]
    ) -> tuple[str, int, str]:
        """Write a gzip tar layer from (TarInfo, file) pairs; return (digest, size, diff_id)."""
        with tempfile.NamedTemporaryFile(dir=self.blobs, prefix=".layer-", delete=False) as tmp:
            tmp_path = Path(tmp.name)
            try:
                compressed = HashingWriter(tmp)
                # mtime=0 and no file name in the gzip header: the same tar gives the same blob.
                gz = gzip.GzipFile(
                    filename="", mode="wb", fileobj=compressed, mtime=0, compresslevel=GZIP_LEVEL
                )
                uncompressed = HashingWriter(gz)
                with tarfile.open(
                    fileobj=uncompressed, mode="w|", format=tarfile.PAX_FORMAT
                ) as out:
                    for info, fileobj in members:
                        out.addfile(info, fileobj)
                gz.close()
            except BaseException:
                tmp_path.unlink()
                raise
        try:
            tmp_path.chmod(0o644)
            digest = "sha256:" + compressed.sha.hexdigest()
            tmp_path.replace(self.blob_path(digest))
        except BaseException:
            tmp_path.unlink(missing_ok=True)
            raise
        return digest, compressed.size, "sha256:" + uncompressed.sha.hexdigest()

    def add_ref(self, name: str, descriptor: dict[str, Any]) -> None:
        self.refs.append(dict(descriptor, annotations={REF_ANNOTATION: name}))

    def write_index(self) -> None:
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": self.refs}
        tmp = self.path / "index.json.part"
        tmp.write_text(json.dumps(index, indent=2))
        tmp.replace(self.path / "index.json")

    def prune(self) -> None:
        """Delete blobs that no ref reaches (left over from older recipes)."""
        keep: set[str] = set()
        todo = [r["digest"] for r in self.refs]
        while todo:
            digest = todo.pop()
            if digest in keep:
                continue
            keep.add(digest)
            path = self.blob_path(digest)
            try:
                doc = json.loads(path.read_bytes()) if path.stat().st_size < 1 << 20 else {}
            except (ValueError, UnicodeDecodeError):
                continue  # a layer
            if not isinstance(doc, dict) or doc.get("mediaType") not in (OCI_INDEX, OCI_MANIFEST):
                continue  # an image config: no descriptors in it
            todo.extend(d["digest"] for d in [*doc.get("manifests", []), *doc.get("layers", [])])
            if "config" in doc:
                todo.append(doc["config"]["digest"])
        for blob in self.blobs.iterdir():
            if not blob.name.startswith(".") and "sha256:" + blob.name not in keep:
                blob.unlink()


def cached_layer(
    layout: Layout, cache: Path, key: str, build: Callable[[], tuple[str, int, str]]
) -> tuple[str, int, str]:
    """Reuse a layer blob built earlier from the same inputs (the sidecar maps key -> blob)."""
    sidecar = cache / "layers" / f"{key}-gz{GZIP_LEVEL}.json"
    if sidecar.exists():
        meta = json.loads(sidecar.read_text())
        if layout.has_blob(meta["digest"]):
            return meta["digest"], meta["size"], meta["diff_id"]
    digest, size, diff_id = build()
    sidecar.parent.mkdir(parents=True, exist_ok=True)
    sidecar.write_text(json.dumps({"digest": digest, "size": size, "diff_id": diff_id}))
    return digest, size, diff_id


def rootfs_members(tar_path: Path, sde: int) -> Iterator[tuple[tarfile.TarInfo, IO[bytes] | None]]:
    """The rootfs tar as layer entries: relative names, no /dev nodes, clamped mtimes."""
    with tarfile.open(tar_path, mode="r|") as src:
        for info in src:
            name = info.name.removeprefix("./").rstrip("/")
            if not name or name == ".":
                continue
            # The runtime mounts /dev; device nodes in a layer only break rootless extraction.
            if name.startswith("dev/"):
                continue
            info.name = name
            if info.islnk():
                info.linkname = info.linkname.removeprefix("./")
            # pax headers win over TarInfo fields when written: drop the ones we rewrite.
            info.pax_headers = {
                k: v
                for k, v in info.pax_headers.items()
                if k not in ("path", "linkpath", "mtime", "atime", "ctime")
            }
            info.mtime = min(int(info.mtime), sde)
            yield info, (src.extractfile(info) if info.isreg() else None)


def rootfs_layer(
    rootfs: Rootfs, plat: Platform, tar_path: Path, layout: Layout, cache: Path
) -> Layer:
    key = sha256_json(
        {
            "v": SCRIPT_VERSION,
            "kind": "rootfs",
            "tar": tar_path.name,  # carries the rootfs recipe's hash
            "code": inspect.getsource(rootfs_members),
        }
    )
    digest, size, diff_id = cached_layer(
        layout,
        cache,
        key,
        lambda: layout.write_layer(rootfs_members(tar_path, rootfs.source_date_epoch)),
    )
    created_by = shlex.join(mmdebstrap_argv(rootfs, plat, None, "rootfs.tar"))
    comment = (
        "crossdock stage: Debian root filesystem, unpacked without maintainer scripts; "
        "extract hook added /etc/passwd, /etc/group, the host's CA bundle, dpkg status, "
        ".pyc files (compiled by the host-architecture python3) and removed EXTERNALLY-MANAGED"
    )
    return Layer(digest, size, diff_id, created_by, comment)


def run_uv(uv: str, plat: Platform, spec: dict[str, Any], target: Path) -> None:
    argv = [
        uv, "pip", "install", "--quiet",
        "--python-platform", plat.uv_platform,
        "--python-version", str(spec["python_version"]),
        "--only-binary", ":all:",
        "--target", str(target),
        *spec["requirements"],
    ]  # fmt: skip
    log(f"{shlex.join(argv)}")
    subprocess.run(argv, check=True)
    (target / ".lock").unlink(missing_ok=True)  # uv's lock file, not content


def extra_layer_members(
    spec: dict[str, Any], staging: Path, sde: int
) -> Iterator[tuple[tarfile.TarInfo, IO[bytes] | None]]:
    """Entries of a base's extra layer: directories, symlinks, inline files, pip trees."""
    entries: dict[str, tarfile.TarInfo] = {}
    files: dict[str, Path] = {}

    def add(info: tarfile.TarInfo) -> None:
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        info.mtime = sde
        entries[info.name] = info

    def add_dir(name: str) -> None:
        parts = name.strip("/").split("/")
        for i in range(1, len(parts) + 1):  # parents first, as docker writes layers
            d = "/".join(parts[:i])
            if d not in entries:
                info = tarfile.TarInfo(d)
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                add(info)

    for d in spec.get("directories", []):
        add_dir(d)
    for link, target in sorted(spec.get("symlinks", {}).items()):
        add_dir(os.path.dirname(link))
        info = tarfile.TarInfo(link.strip("/"))
        info.type, info.linkname, info.mode = tarfile.SYMTYPE, target, 0o777
        add(info)
    for f in spec.get("files", []):
        name = f["path"].strip("/")
        if "/" in name:
            add_dir(os.path.dirname(name))
        path = staging / "inline" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f["content"])
        info = tarfile.TarInfo(name)
        info.size, info.mode = path.stat().st_size, int(f.get("mode", 0o644))
        add(info)
        files[name] = path
    for pip in spec.get("pip", []):
        root = staging / "pip" / pip["target"].strip("/")
        add_dir(pip["target"])
        for path in sorted(root.rglob("*")):
            name = str(Path(pip["target"].strip("/")) / path.relative_to(root))
            info = tarfile.TarInfo(name)
            if path.is_symlink():
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, os.readlink(path), 0o777
            elif path.is_dir():
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            else:
                info.size = path.stat().st_size
                info.mode = 0o755 if os.access(path, os.X_OK) else 0o644
                files[name] = path
            add(info)
    for name in sorted(entries):
        info = entries[name]
        if name in files:
            with files[name].open("rb") as f:
                yield info, f
        else:
            yield info, None


def extract_python(native_tar: Path, dest: Path) -> Path:
    """Unpack the host-architecture rootfs' usr/ (python3.13, stdlib, libraries, ld.so)."""
    subprocess.run(["tar", "-C", str(dest), "-xf", str(native_tar), "./usr"], check=True)
    return dest


def extra_layer(
    base: Base,
    plat: Platform,
    cfg: Config,
    uv: str,
    layout: Layout,
    *,
    cache: Path,
    native_tar: Path | None,
) -> Layer:
    spec = base.layer or {}
    key = sha256_json(
        {
            "v": SCRIPT_VERSION,
            "kind": "extra",
            "spec": spec,
            "platform": dataclasses.asdict(plat),
            "sde": cfg.source_date_epoch,
            "code": inspect.getsource(extra_layer_members) + inspect.getsource(byte_compile),
            "compiled": native_tar is not None,
        }
    )

    def build() -> tuple[str, int, str]:
        (cache / "tmp").mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache / "tmp") as tmp:
            staging = Path(tmp)
            for pip in spec.get("pip", []):
                run_uv(uv, plat, pip, staging / "pip" / pip["target"].strip("/"))
            if native_tar is not None and spec.get("pip"):
                # Like the stdlib: no recompiling awslambdaric & co. in every arm64 container.
                (staging / "native").mkdir()
                python_root = extract_python(native_tar, staging / "native")
                targets = [pip["target"].strip("/") for pip in spec["pip"]]
                byte_compile(staging / "pip", python_root, targets)
            return layout.write_layer(extra_layer_members(spec, staging, cfg.source_date_epoch))

    digest, size, diff_id = cached_layer(layout, cache, key, build)
    reqs = [r for pip in spec.get("pip", []) for r in pip["requirements"]]
    comment = "crossdock stage layer" + (
        f"; pip: {' '.join(reqs)} ({plat.uv_platform})" if reqs else ""
    )
    return Layer(digest, size, diff_id, spec.get("created_by", "crossdock stage layer"), comment)


def image_config(cfg: Config, base: Base, plat: Platform, layers: list[Layer]) -> dict[str, Any]:
    created = iso_time(cfg.source_date_epoch)
    container_config: dict[str, Any] = {
        k: v
        for k, v in base.config.items()
        if k in ("Env", "Cmd", "Entrypoint", "WorkingDir", "User")
    }
    container_config["Labels"] = {
        "org.opencontainers.image.description": "crossdock stage stand-in for "
        + base.stands_in_for,
        "dev.crossdock.stage.stands-in-for": base.stands_in_for,
    }
    return {
        "created": created,
        **plat.oci(),
        "config": container_config,
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        "history": [
            {"created": created, "created_by": layer.created_by, "comment": layer.comment}
            for layer in layers
        ],
    }


# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------

# The registry is on loopback: never go through an HTTP proxy from the environment.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def registry_digest(registry: str, repository: str, tag: str) -> str | None:
    """The digest the registry serves for repository:tag, or None if it has no such tag."""
    req = urllib.request.Request(
        f"http://{registry}/v2/{repository}/manifests/{tag}",
        method="HEAD",
        headers={"Accept": ", ".join([OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST])},
    )
    try:
        with _opener.open(req, timeout=10) as resp:
            digest = resp.headers.get("Docker-Content-Digest")
            return str(digest) if digest else None
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return None
        raise


def push(layout: Layout, ref: str, dest: str, all_images: bool) -> None:
    argv = ["skopeo", "copy", "--quiet", "--preserve-digests", "--dest-tls-verify=false"]
    if all_images:
        argv.append("--all")
    argv += [f"oci:{layout.path}:{ref}", f"docker://{dest}"]
    log(shlex.join(argv))
    subprocess.run(argv, check=True)


# --------------------------------------------------------------------------------------------
# publish
# --------------------------------------------------------------------------------------------


def publish(cfg: Config, cache: Path, registry: str, uv: str, ca_bundle: Path) -> dict[str, Any]:
    layout = Layout(cache / "oci")
    # (rootfs variant, platform key) pairs the bases need; the default rootfs is variant None.
    recipes = {cfg.rootfs_of(b).name: cfg.rootfs_of(b) for b in cfg.bases}
    needed = sorted({(cfg.rootfs_of(b).name or "", p) for b in cfg.bases for p in b.platforms})

    # Per recipe, the host architecture's root filesystem first: its python3 byte-compiles the
    # others of the same recipe (the same Python version).
    host = host_debian_arch()
    native = [(v, k) for v, k in needed if cfg.platforms[k].debian_arch == host]
    foreign = [pair for pair in needed if pair not in native]
    tars: dict[tuple[str, str], Path] = {}
    native_tars: dict[str, Path] = {}
    for variant, key in native:
        tars[variant, key] = build_rootfs(
            recipes[variant or None], cfg.platforms[key], cache, ca_bundle, None
        )
        native_tars.setdefault(variant, tars[variant, key])
    if not native:
        log(f"no platform matches the host ({host}): root filesystems are not byte-compiled")

    # Then the others and every layer at once: mmdebstrap mostly waits on the network, gzip
    # runs in zlib without the GIL.
    def rootfs_for(pair: tuple[str, str]) -> Layer:
        variant, key = pair
        plat = cfg.platforms[key]
        rootfs = recipes[variant or None]
        if pair not in tars:
            tars[pair] = build_rootfs(rootfs, plat, cache, ca_bundle, native_tars.get(variant))
        return rootfs_layer(rootfs, plat, tars[pair], layout, cache)

    order = native + foreign
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(order)) as pool:
        base_layers = dict(zip(order, pool.map(rootfs_for, order), strict=True))

    summary: dict[str, Any] = {"registry": registry, "images": []}
    to_push: list[tuple[str, str, bool]] = []
    for base in cfg.bases:
        children = []
        child_refs: dict[str, str] = {}
        for key in base.platforms:
            plat = cfg.platforms[key]
            variant = cfg.rootfs_of(base).name or ""
            layers = [base_layers[variant, key]]
            if base.layer:
                layers.append(
                    extra_layer(
                        base,
                        plat,
                        cfg,
                        uv,
                        layout,
                        cache=cache,
                        native_tar=native_tars.get(variant),
                    )
                )
            config = layout.put_json(OCI_CONFIG, image_config(cfg, base, plat, layers))
            manifest = layout.put_json(
                OCI_MANIFEST,
                {
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "config": config,
                    "layers": [layer.descriptor() for layer in layers],
                },
            )
            children.append(
                {
                    "platform": plat.slug(),
                    "digest": manifest["digest"],
                    "config_digest": config["digest"],
                    "layers": [layer.digest for layer in layers],
                    "descriptor": dict(manifest, platform=plat.oci()),
                }
            )
            if key in base.platform_tags:
                ref = f"{base.name}.{key}"
                layout.add_ref(ref, manifest)
                child_refs[key] = ref
        index = layout.put_json(
            OCI_INDEX,
            {
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": [c.pop("descriptor") for c in children],
            },
        )
        layout.add_ref(base.name, index)

        entry: dict[str, Any] = {
            "name": base.name,
            "stands_in_for": base.stands_in_for,
            "refs": [f"{registry}/{base.repository}:{t}" for t in base.tags],
            "index_digest": index["digest"],
            "platforms": children,
            "platform_tags": {},
            "facts": base.facts,
        }
        to_push.extend((base.name, f"{base.repository}:{tag}", True) for tag in base.tags)
        for key, tag in base.platform_tags.items():
            entry["platform_tags"][f"{registry}/{base.repository}:{tag}"] = next(
                c["digest"] for c in children if c["platform"] == cfg.platforms[key].slug()
            )
            to_push.append((child_refs[key], f"{base.repository}:{tag}", False))
        summary["images"].append(entry)

    layout.write_index()
    layout.prune()
    push_missing(layout, registry, to_push)
    return summary


def push_missing(layout: Layout, registry: str, to_push: list[tuple[str, str, bool]]) -> None:
    """Push only what the registry does not already serve with the same digest."""
    expected = {r["annotations"][REF_ANNOTATION]: r["digest"] for r in layout.refs}
    for ref, repo_tag, all_images in to_push:
        repository, tag = repo_tag.rsplit(":", 1)
        want = expected[ref]
        have = registry_digest(registry, repository, tag)
        if have == want:
            log(f"{registry}/{repo_tag}: up to date ({want[:19]})")
            continue
        push(layout, ref, f"{registry}/{repo_tag}", all_images)
        have = registry_digest(registry, repository, tag)
        if have != want:
            raise SystemExit(f"{registry}/{repo_tag}: pushed {want} but registry serves {have}")
        log(f"{registry}/{repo_tag}: pushed {want}")


def print_summary(cache: Path) -> int:
    path = cache / "published.json"
    if not path.exists():
        print("bases: none published yet (run: stage/stage.sh up)")
        return 1
    summary = json.loads(path.read_text())
    registry = summary["registry"]
    status = 0
    for image in summary["images"]:
        tags = {r.removeprefix(f"{registry}/"): image["index_digest"] for r in image["refs"]}
        tags.update({r.removeprefix(f"{registry}/"): d for r, d in image["platform_tags"].items()})
        for repo_tag, want in tags.items():
            repository, tag = repo_tag.rsplit(":", 1)
            try:
                have = registry_digest(registry, repository, tag)
            except OSError as e:
                have = f"unreachable ({e})"
            state = "ok" if have == want else f"MISMATCH: registry has {have}"
            status |= have != want
            print(f"  {registry}/{repo_tag}  {want}  [{state}]")
        for child in image["platforms"]:
            print(f"      {child['platform']:<16} {child['digest']}")
    return status


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("publish")
    p.add_argument("--config", type=Path, default=Path(__file__).resolve().parent / "bases.toml")
    p.add_argument("--cache", type=Path, required=True)
    p.add_argument("--registry", required=True, help="host:port of the local registry")
    p.add_argument("--uv", default="uv")
    p.add_argument("--ca-bundle", type=Path, default=HOST_CA_BUNDLE)
    f = sub.add_parser("fixup-rootfs")
    f.add_argument("--ca-bundle", type=Path, default=HOST_CA_BUNDLE)
    f.add_argument("--python-root", type=Path, help="host-architecture rootfs to byte-compile with")
    f.add_argument("root", type=Path)
    s = sub.add_parser("summary")
    s.add_argument("--cache", type=Path, required=True)
    args = parser.parse_args(argv)

    if args.cmd == "fixup-rootfs":
        fixup_rootfs(args.root, args.ca_bundle, args.python_root)
        return 0
    if args.cmd == "summary":
        return print_summary(args.cache)
    cfg = load_config(args.config)
    summary = publish(cfg, args.cache, args.registry, args.uv, args.ca_bundle)
    out = args.cache / "published.json"
    out.write_text(json.dumps(summary, indent=2) + "\n")
    log(f"summary: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
