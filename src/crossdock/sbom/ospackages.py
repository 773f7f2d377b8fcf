"""The base image's OS packages, read from its package database inside the layers.

* Debian and Ubuntu: dpkg's ``/var/lib/dpkg/status`` (and distroless' ``status.d/`` files): every
  stanza whose Status says installed.
* Amazon Linux 2023, Fedora, RHEL 9: rpm's SQLite database (``/var/lib/rpm/rpmdb.sqlite``), each
  row an rpm header blob, parsed here for name, epoch, version, release, arch, license and source
  rpm. Older rpm databases (Berkeley DB ``Packages``, Amazon Linux 2) are not read: the inventory
  says so in its ``note`` rather than claiming the image has no packages.

Nothing is extracted: files are read through the layer view (whiteouts applied), the SQLite file
through a temporary copy (SQLite needs a file), deleted afterwards.
"""

from __future__ import annotations

import contextlib
import sqlite3
import struct
from collections.abc import Iterator
from pathlib import Path

from crossdock import scratch
from crossdock.rootfs.fsview import LayerFS
from crossdock.sbom.inventory import OsInventory, OsPackage

__all__ = ["is_package_file", "parse_dpkg_status", "parse_rpm_header", "read_os_packages"]

_DPKG_STATUS = "/var/lib/dpkg/status"
_DPKG_STATUS_D = "/var/lib/dpkg/status.d"
_RPM_SQLITE = ("/var/lib/rpm/rpmdb.sqlite", "/usr/lib/sysimage/rpm/rpmdb.sqlite")
_RPM_BDB = ("/var/lib/rpm/Packages", "/usr/lib/sysimage/rpm/Packages")
_OS_RELEASE = ("/etc/os-release", "/usr/lib/os-release")
# Bounds on outside data: a real status file is a few MB, an rpm database tens of MB.
_MAX_STATUS = 64 * 1024 * 1024
_MAX_RPMDB = 512 * 1024 * 1024

# rpm header tags (rpm's lib/rpmtag.h) and types.
_RPMTAG_NAME = 1000
_RPMTAG_VERSION = 1001
_RPMTAG_RELEASE = 1002
_RPMTAG_EPOCH = 1003
_RPMTAG_LICENSE = 1014
_RPMTAG_ARCH = 1022
_RPMTAG_SOURCERPM = 1044
_RPM_INT32 = 4
_RPM_STRING = 6
_ENTRY = struct.Struct(">iiii")  # tag, type, offset, count
_PREAMBLE = struct.Struct(">ii")  # index entries, data length


def is_package_file(path: str) -> bool:
    """Whether ``read_os_packages`` reads the file at ``path`` (a view can keep such files while
    it indexes the layers, ``LayerFS(keep=...)``, so that reading them decompresses nothing)."""
    return (
        path in _OS_RELEASE
        or path == _DPKG_STATUS
        or path.startswith(_DPKG_STATUS_D + "/")
        or path in _RPM_SQLITE
    )


def read_os_packages(fs: LayerFS) -> OsInventory:
    """The OS packages of the image ``fs`` views (its base's, in practice)."""
    distro = _distro(fs)
    if fs.is_file(_DPKG_STATUS) or fs.listdir(_DPKG_STATUS_D):
        return _dpkg(fs, distro)
    for path in _RPM_SQLITE:
        if fs.is_file(path):
            return _rpm_sqlite(fs, path, distro)
    for path in _RPM_BDB:
        if fs.is_file(path):
            return OsInventory(
                "rpm",
                (),
                path,
                distro,
                note=f"{path} is a Berkeley DB rpm database, which crossdock does not read: "
                "the OS packages are not listed",
            )
    return OsInventory("none", (), None, distro, note="no dpkg or rpm database in the image")


def _distro(fs: LayerFS) -> str | None:
    for path in _OS_RELEASE:
        data = fs.read_file(path, limit=64 * 1024)
        if data is None:
            continue
        fields = dict(
            line.split("=", 1)
            for line in data.decode("utf-8", "replace").splitlines()
            if "=" in line
        )
        name = fields.get("ID", "").strip().strip('"')
        version = fields.get("VERSION_ID", "").strip().strip('"')
        return f"{name}-{version}" if name and version else name or None
    return None


# -- dpkg ---------------------------------------------------------------------------------------


def _dpkg(fs: LayerFS, distro: str | None) -> OsInventory:
    paths = [_DPKG_STATUS] if fs.is_file(_DPKG_STATUS) else []
    paths += [
        f"{_DPKG_STATUS_D}/{n}" for n in fs.listdir(_DPKG_STATUS_D) if not n.endswith(".md5sums")
    ]
    texts = fs.read_files(paths, limit=_MAX_STATUS)
    packages: dict[tuple[str, str | None], OsPackage] = {}
    for path in paths:
        for package in parse_dpkg_status(texts.get(path, b"").decode("utf-8", "replace")):
            packages[package.name, package.architecture] = package
    found = tuple(sorted(packages.values(), key=lambda p: (p.name, p.architecture or "")))
    return OsInventory("dpkg", found, ", ".join(paths), distro)


def _stanzas(text: str) -> Iterator[dict[str, str]]:
    fields: dict[str, str] = {}
    key = None
    for line in [*text.splitlines(), ""]:
        if not line.strip():
            if fields:
                yield fields
            fields, key = {}, None
        elif line[0].isspace() and key is not None:
            fields[key] += "\n" + line.strip()
        elif ":" in line:
            name, _, value = line.partition(":")
            key = name.strip().lower()
            fields[key] = value.strip()


def parse_dpkg_status(text: str) -> list[OsPackage]:
    """The installed packages of a dpkg status file (``Status: install ok installed``)."""
    out: list[OsPackage] = []
    for fields in _stanzas(text):
        status = fields.get("status", "install ok installed").split()
        if "package" not in fields or "version" not in fields or status[-1:] != ["installed"]:
            continue
        out.append(
            OsPackage(
                name=fields["package"],
                version=fields["version"],
                architecture=fields.get("architecture"),
                # "Source: glibc (2.41-12)" names the source package, maybe with its version.
                source=fields["source"].split(" ")[0] if fields.get("source") else None,
            )
        )
    return out


# -- rpm ----------------------------------------------------------------------------------------


def _rpm_sqlite(fs: LayerFS, path: str, distro: str | None) -> OsInventory:
    data = fs.read_file(path, limit=_MAX_RPMDB)
    if data is None:
        return OsInventory("rpm", (), path, distro, note=f"{path} could not be read")
    with scratch.temporary_directory(prefix="crossdock-rpmdb-") as tmp:
        copy = Path(tmp) / "rpmdb.sqlite"
        copy.write_bytes(data)
        try:
            with contextlib.closing(sqlite3.connect(f"file:{copy}?mode=ro", uri=True)) as db:
                blobs = [bytes(row[0]) for row in db.execute("SELECT blob FROM Packages")]
        except sqlite3.Error as err:
            return OsInventory("rpm", (), path, distro, note=f"{path} is not readable: {err}")
    packages = [p for p in (parse_rpm_header(blob) for blob in blobs) if p is not None]
    # gpg-pubkey entries are keys rpm imported, not installed software.
    found = tuple(sorted((p for p in packages if p.name != "gpg-pubkey"), key=lambda p: p.name))
    return OsInventory("rpm", found, path, distro)


def parse_rpm_header(blob: bytes) -> OsPackage | None:
    """Name, version (``[epoch:]version-release``), arch, license and source rpm of one rpm
    header blob as rpmdb stores it (no lead, no magic); None when it is not one."""
    try:
        count, size = _PREAMBLE.unpack_from(blob, 0)
        store = _PREAMBLE.size + count * _ENTRY.size
        if count < 0 or size < 0 or store + size > len(blob):
            return None
        data = blob[store : store + size]
        values: dict[int, str | int] = {}
        for number in range(count):
            tag, kind, offset, _ = _ENTRY.unpack_from(blob, _PREAMBLE.size + number * _ENTRY.size)
            if kind == _RPM_STRING and 0 <= offset < size:
                values[tag] = data[offset : data.index(b"\0", offset)].decode("utf-8", "replace")
            elif kind == _RPM_INT32 and 0 <= offset <= size - 4:
                values[tag] = struct.unpack_from(">i", data, offset)[0]
    except (struct.error, ValueError):
        return None
    name, version, release = (
        values.get(t) for t in (_RPMTAG_NAME, _RPMTAG_VERSION, _RPMTAG_RELEASE)
    )
    if not isinstance(name, str) or not isinstance(version, str):
        return None
    full = f"{version}-{release}" if isinstance(release, str) else version
    epoch = values.get(_RPMTAG_EPOCH)
    if isinstance(epoch, int) and epoch:
        full = f"{epoch}:{full}"
    text = {t: v for t, v in values.items() if isinstance(v, str)}
    return OsPackage(
        name=name,
        version=full,
        architecture=text.get(_RPMTAG_ARCH),
        source=text.get(_RPMTAG_SOURCERPM),
        license=text.get(_RPMTAG_LICENSE),
    )
