"""SBOM parts on real bytes: dpkg status text, an rpm SQLite database holding real rpm header
blobs, METADATA licenses, the lock's hashes matched to the installed wheel, the CycloneDX
document, and the referrer that carries it (written to an OCI layout and found again)."""

from __future__ import annotations

import contextlib
import datetime
import json
import re
import sqlite3
import struct
from collections.abc import Mapping
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from crossdock.errors import MalformedError
from crossdock.image.digest import sha256_of
from crossdock.image.mediatypes import MediaType
from crossdock.layers import LayerEntry, write_layer
from crossdock.platform import ARM64
from crossdock.resolve.lockfile import parse_lock
from crossdock.resolve.resolution import InstalledDistribution
from crossdock.rootfs.fsview import LayerFS
from crossdock.sbom import (
    OsInventory,
    OsPackage,
    PythonPackage,
    python_packages,
    read_os_packages,
    sbom_document,
)
from crossdock.sbom.document import (
    image_name_of,
    os_components_of,
    python_components_of,
    python_packages_of,
)
from crossdock.sbom.inventory import license_of
from crossdock.sbom.ospackages import parse_dpkg_status, parse_rpm_header

STATUS = """\
Package: libc6
Status: install ok installed
Architecture: arm64
Source: glibc (2.41-12)
Version: 2.41-12
Description: GNU C Library: Shared libraries
 Contains the standard libraries that are used by nearly all programs on
 the system.

Package: removed-thing
Status: deinstall ok config-files
Architecture: arm64
Version: 1.0

Package: zlib1g
Status: install ok installed
Architecture: arm64
Version: 1:1.3.dfsg+really1.3.1-1+b1
"""


def test_dpkg_status_lists_installed_packages_only():
    packages = parse_dpkg_status(STATUS)
    assert packages == [
        OsPackage("libc6", "2.41-12", "arm64", "glibc"),
        OsPackage("zlib1g", "1:1.3.dfsg+really1.3.1-1+b1", "arm64", None),
    ]


def _rpm_header(tags: Mapping[int, str | int]) -> bytes:
    """An rpm header blob as rpmdb.sqlite stores it: counts, index entries, then the data."""
    entries = b""
    data = b""
    for tag, value in tags.items():
        if isinstance(value, int):
            data += b"\0" * (-len(data) % 4)  # INT32 values are 4-byte aligned
            entries += struct.pack(">iiii", tag, 4, len(data), 1)
            data += struct.pack(">i", value)
        else:
            entries += struct.pack(">iiii", tag, 6, len(data), 1)
            data += value.encode() + b"\0"
    return struct.pack(">ii", len(tags), len(data)) + entries + data


OPENSSL: dict[int, str | int] = {
    1000: "openssl-libs",
    1001: "3.0.8",
    1002: "1.amzn2023.0.14",
    1003: 1,
    1014: "Apache-2.0",
    1022: "aarch64",
    1044: "openssl-3.0.8-1.amzn2023.0.14.src.rpm",
}


def test_an_rpm_header_gives_name_epoch_version_release_arch_license_source():
    assert parse_rpm_header(_rpm_header(OPENSSL)) == OsPackage(
        "openssl-libs",
        "1:3.0.8-1.amzn2023.0.14",
        "aarch64",
        "openssl-3.0.8-1.amzn2023.0.14.src.rpm",
        "Apache-2.0",
    )
    assert parse_rpm_header(b"\x00\x00\x00\x05garbage") is None


def _layer(tmp_path: Path, name: str, entries: list[LayerEntry]) -> Path:
    return write_layer(entries, tmp_path / name).path


def test_os_packages_come_from_the_rpm_sqlite_database_of_amazon_linux(tmp_path):
    db_path = tmp_path / "rpmdb.sqlite"
    with contextlib.closing(sqlite3.connect(db_path)) as db:
        db.execute("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, blob BLOB NOT NULL)")
        key = {1000: "gpg-pubkey", 1001: "d832c631", 1002: "5e0f9436"}
        for blob in (_rpm_header(OPENSSL), _rpm_header(key)):
            db.execute("INSERT INTO Packages (blob) VALUES (?)", (blob,))
        db.commit()
    os_release = b'NAME="Amazon Linux"\nID="amzn"\nVERSION_ID="2023"\n'
    layer = _layer(
        tmp_path,
        "al2023.tar.gz",
        [
            LayerEntry("var/lib/rpm/rpmdb.sqlite", source=db_path),
            LayerEntry("etc/os-release", data=os_release),
        ],
    )
    inventory = read_os_packages(LayerFS([layer]))
    assert inventory.kind == "rpm"
    assert inventory.read
    assert inventory.distro == "amzn-2023"
    assert [p.name for p in inventory.packages] == ["openssl-libs"]  # no gpg-pubkey


def test_a_berkeley_db_rpm_database_is_a_clear_not_read_entry(tmp_path):
    layer = _layer(tmp_path, "al2.tar.gz", [LayerEntry("var/lib/rpm/Packages", data=b"\0" * 64)])
    inventory = read_os_packages(LayerFS([layer]))
    assert not inventory.read
    assert "Berkeley DB" in (inventory.note or "")
    document = _document(inventory)
    (base,) = [c for c in json.loads(document)["components"] if c["bom-ref"] == "base-image"]
    os_note = {p["name"]: p["value"] for p in base["properties"]}["crossdock:os-packages"]
    assert os_note.startswith("not read: /var/lib/rpm/Packages is a Berkeley DB")


def test_dpkg_status_is_read_through_whiteouts(tmp_path):
    lower = _layer(
        tmp_path, "lower.tar.gz", [LayerEntry("var/lib/dpkg/status", data=STATUS.encode())]
    )
    assert [p.name for p in read_os_packages(LayerFS([lower])).packages] == ["libc6", "zlib1g"]


def test_licenses_come_from_metadata_expression_name_or_classifiers():
    assert license_of({"license-expression": ["MIT OR Apache-2.0"]}) == "MIT OR Apache-2.0"
    assert license_of({"license": ["BSD-3-Clause"]}) == "BSD-3-Clause"
    full_text = "Copyright (c) 2005\n" + "x" * 200
    classifiers = ["License :: OSI Approved :: MIT License", "Programming Language :: Python"]
    assert license_of({"license": [full_text], "classifier": classifiers}) == "MIT License"
    assert license_of({}) is None


LOCK = """\
version = 1
requires-python = ">=3.13"

[[package]]
name = "orjson"
version = "3.13.0"
source = { registry = "https://example.invalid/simple" }
sdist = { url = "https://example.invalid/orjson-3.13.0.tar.gz", hash = "sha256:%s", size = 1 }
wheels = [
    { url = "https://example.invalid/orjson-3.13.0-cp313-cp313-manylinux_2_17_aarch64.manylinux2014_aarch64.whl", hash = "sha256:%s", size = 1 },
    { url = "https://example.invalid/orjson-3.13.0-cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", hash = "sha256:%s", size = 1 },
]

[[package]]
name = "docopt"
version = "0.6.2"
source = { registry = "https://example.invalid/simple" }
sdist = { url = "https://example.invalid/docopt-0.6.2.tar.gz", hash = "sha256:%s", size = 1 }
""" % ("a" * 64, "b" * 64, "c" * 64, "d" * 64)  # noqa: E501, UP031 - real wheel URLs; TOML braces


def _installed(tmp_path: Path) -> tuple[Path, list[InstalledDistribution]]:
    tree = tmp_path / "tree"
    for name, version, license_line in (
        ("orjson", "3.13.0", "License-Expression: Apache-2.0 OR MIT"),
        ("docopt", "0.6.2", "License: MIT"),
    ):
        info = tree / f"{name}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Name: {name}\nVersion: {version}\n{license_line}\n")
    dists = [
        InstalledDistribution(
            canonicalize_name("docopt"),
            "0.6.2",
            ("py3-none-any",),
            pure=True,
            built_from_sdist=True,
        ),
        InstalledDistribution(
            canonicalize_name("orjson"),
            "3.13.0",
            ("cp313-cp313-manylinux_2_17_aarch64", "cp313-cp313-manylinux2014_aarch64"),
            pure=False,
            built_from_sdist=False,
        ),
    ]
    return tree, dists


def test_each_package_gets_the_locks_hash_of_the_file_that_was_installed(tmp_path):
    tree, dists = _installed(tmp_path)
    packages = python_packages(tree, dists, parse_lock(LOCK, tmp_path / "uv.lock"))
    docopt, orjson = packages
    assert orjson.sha256 == ("b" * 64,)  # the aarch64 wheel, not the x86_64 one or the sdist
    assert orjson.hash_source.startswith("wheel orjson-3.13.0-cp313-cp313-manylinux_2_17_aarch64")
    assert orjson.license == "Apache-2.0 OR MIT"
    assert docopt.sha256 == ("d" * 64,)
    assert docopt.hash_source == "sdist docopt-0.6.2.tar.gz"
    assert docopt.built_from_sdist


def _document(inventory: OsInventory, python=()) -> bytes:
    return sbom_document(
        image_name="api",
        manifest_digest=sha256_of(b"manifest"),
        platform=ARM64,
        created=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
        python=python,
        os_packages=inventory,
        base_name="docker.io/library/python:3.13-slim",
        base_digest=sha256_of(b"base"),
    )


def test_the_cyclonedx_document_is_reproducible_and_complete(tmp_path):
    tree, dists = _installed(tmp_path)
    python = python_packages(tree, dists, parse_lock(LOCK, tmp_path / "uv.lock"))
    inventory = OsInventory(
        "dpkg", tuple(parse_dpkg_status(STATUS)), "/var/lib/dpkg/status", "debian-13"
    )
    first = _document(inventory, python)
    assert first == _document(inventory, python)
    data = json.loads(first)
    assert data["bomFormat"] == "CycloneDX"
    assert data["specVersion"] == "1.6"
    wheels = {c["purl"]: c for c in python_components_of(first)}
    assert set(wheels) == {"pkg:pypi/docopt@0.6.2", "pkg:pypi/orjson@3.13.0"}
    orjson = wheels["pkg:pypi/orjson@3.13.0"]
    assert orjson["hashes"] == [{"alg": "SHA-256", "content": "b" * 64}]
    assert {p["name"]: p["value"] for p in orjson["properties"]}["crossdock:built-from-sdist"] == (
        "false"
    )
    docopt = wheels["pkg:pypi/docopt@0.6.2"]
    assert {p["name"]: p["value"] for p in docopt["properties"]}["crossdock:built-from-sdist"] == (
        "true"
    )
    assert docopt["licenses"] == [{"license": {"id": "MIT"}}]
    assert sorted(c["purl"] for c in os_components_of(first)) == [
        "pkg:deb/debian/libc6@2.41-12?arch=arm64&distro=debian-13",
        "pkg:deb/debian/zlib1g@1:1.3.dfsg%2Breally1.3.1-1%2Bb1?arch=arm64&distro=debian-13",
    ]
    assert data["metadata"]["component"]["version"] == str(sha256_of(b"manifest"))


def test_the_referrer_points_at_its_image_and_is_no_image_itself():
    from crossdock.image.descriptor import Descriptor
    from crossdock.image.referrer import fallback_tag, make_referrer

    subject = Descriptor(MediaType.OCI_MANIFEST, sha256_of(b"image"), 5)
    referrer = make_referrer(subject, MediaType.CYCLONEDX_JSON, MediaType.CYCLONEDX_JSON, b"{}")
    body = json.loads(referrer.manifest.raw)
    assert body["subject"] == {
        "mediaType": subject.media_type,
        "digest": str(subject.digest),
        "size": 5,
    }
    assert body["artifactType"] == "application/vnd.cyclonedx+json"
    assert body["config"]["mediaType"] == "application/vnd.oci.empty.v1+json"
    assert referrer.manifest.descriptor().artifact_type == MediaType.CYCLONEDX_JSON
    assert fallback_tag(subject.digest) == f"sha256-{subject.digest.hex}"


def test_documents_written_from_parallel_threads_are_identical():
    """Platforms build in parallel threads; license-expression's shared parser is not thread
    safe, and unguarded it sometimes wrote an expression as a license name (two SBOMs for the
    same inputs, seen as a flaky reproducibility test)."""
    from concurrent.futures import ThreadPoolExecutor

    licenses = ["Apache-2.0 OR BSD-3-Clause", "MPL-2.0 AND (Apache-2.0 OR MIT)", "MIT"] * 10
    python = tuple(
        PythonPackage(
            canonicalize_name(f"p{i}"),
            "1.0",
            sha256=(),
            license=text,
            built_from_sdist=False,
            wheel_tags=(),
            hash_source="wheel",
        )
        for i, text in enumerate(licenses)
    )
    inventory = OsInventory("dpkg", (), None, None)
    with ThreadPoolExecutor(4) as pool:
        documents = set(pool.map(lambda _: _document(inventory, python), range(16)))
    assert len(documents) == 1
    (document,) = documents
    expressions = [c["licenses"][0] for c in python_components_of(document)]
    assert {"expression": "MPL-2.0 AND (Apache-2.0 OR MIT)"} in expressions


# -- the document's template: a code-only change gets the last document with its digest -------


def _referrer(tmp_path, manifest_digest_seed: bytes, templates, **changes):
    from crossdock.cache import CacheLayout  # noqa: F401 - the records' home, for the reader
    from crossdock.image.descriptor import Descriptor
    from crossdock.image.manifest import Manifest
    from crossdock.sbom import sbom_referrer

    tree, dists = _installed(tmp_path)
    subject = sha256_of(manifest_digest_seed)
    manifest = Manifest.parse(
        json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": MediaType.OCI_MANIFEST,
                "config": Descriptor(MediaType.OCI_CONFIG, subject, 2).to_json(),
                "layers": [],
            }
        ).encode()
    )
    inputs = {
        "image_name": "api",
        "manifest": manifest,
        "platform": ARM64,
        "created": "2026-01-01T00:00:00Z",
        "tree": tree,
        "distributions": dists,
        "lock": parse_lock(LOCK, tmp_path / "uv.lock"),
        "os_packages": OsInventory(
            "dpkg", tuple(parse_dpkg_status(STATUS)), "/var/lib/dpkg/status", "debian-13"
        ),
        "base_name": "docker.io/library/python:3.13-slim",
        "base_digest": sha256_of(b"base"),
        **changes,
    }
    referrer = sbom_referrer(**inputs, templates=templates, tree_key="tree-1")
    direct = sbom_document(
        image_name=inputs["image_name"],
        manifest_digest=manifest.digest,
        platform=inputs["platform"],
        created=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
        python=python_packages(tree, dists, inputs["lock"]),
        os_packages=inputs["os_packages"],
        base_name=inputs["base_name"],
        base_digest=inputs["base_digest"],
    )
    [(_, document)] = [
        (d, data) for d, data in referrer.blobs if d.media_type != MediaType.OCI_EMPTY
    ]
    return document, direct


def test_a_reused_template_gives_the_bytes_the_library_writes_for_each_image(tmp_path):
    from crossdock.cache import CacheLayout

    templates = CacheLayout(tmp_path / "cache").records("sbom-templates", version=1)
    first, first_direct = _referrer(tmp_path / "a", b"image one", templates)
    assert first == first_direct
    [record] = list(templates.folder.glob("*.rec"))
    # A code-only change: another image digest, the template reused.
    for seed in (b"image two", b"image three"):
        stamp = record.stat().st_mtime_ns
        document, direct = _referrer(tmp_path / seed.decode().replace(" ", "-"), seed, templates)
        assert document == direct  # byte for byte what the library writes for this digest
        assert document != first
        assert record.stat().st_mtime_ns == stamp  # reused, not written again
    assert b"sha256:" + b"0" * 64 not in first  # no stand-in is left in a document


def test_a_template_is_not_reused_for_other_inputs_and_a_damaged_one_is_ignored(tmp_path):
    from crossdock.cache import CacheLayout

    templates = CacheLayout(tmp_path / "cache").records("sbom-templates", version=1)
    _referrer(tmp_path / "a", b"one", templates)
    # Another base: another document (and another template).
    document, direct = _referrer(tmp_path / "b", b"one", templates, base_digest=sha256_of(b"x"))
    assert document == direct
    assert len(list(templates.folder.glob("*.rec"))) == 2
    # A damaged template (a package's version changed in it): ignored, written afresh.
    for record in templates.folder.glob("*.rec"):
        record.write_bytes(record.read_bytes().replace(b"2.41-12", b"9.99-99"))
    document, direct = _referrer(tmp_path / "c", b"two", templates)
    assert document == direct
    assert b"9.99-99" not in document


def test_a_document_read_back_gives_what_was_written(tmp_path):
    tree, dists = _installed(tmp_path)
    python = python_packages(tree, dists, parse_lock(LOCK, tmp_path / "uv.lock"))
    inventory = OsInventory("dpkg", (), "/var/lib/dpkg/status", "debian-13")
    document = _document(inventory, python)
    assert image_name_of(document) == json.loads(document)["metadata"]["component"]["name"]
    assert {(p.name, p.version, p.sha256) for p in python_packages_of(document)} == {
        (p.name, p.version, p.sha256) for p in python
    }


def _component(**fields: object) -> dict[str, object]:
    return {"type": "library", "purl": "pkg:pypi/x@1", "name": "x", "version": "1", **fields}


@pytest.mark.parametrize(
    ("document", "words"),
    [
        (b"\x89PNG not json", "the SBOM is not valid JSON"),
        (b"[1, 2]", "the SBOM is a JSON list, not an object"),
        (b'{"bomFormat": "CycloneDX"}', "the SBOM has no 'metadata'"),
        (b'{"metadata": {"component": {"name": 7}}}', "metadata.component: 'name' must be a str"),
    ],
    ids=["not-json", "a-list", "no-metadata", "name-not-a-string"],
)
def test_an_sboms_image_name_that_cannot_be_read_back_is_a_malformed_error(document, words):
    with pytest.raises(MalformedError, match=re.escape(words)) as error:
        image_name_of(document)
    assert error.value.exit_code == MalformedError.exit_code
    assert "\n" not in error.value.message


@pytest.mark.parametrize(
    ("component", "words"),
    [
        (_component(version=None), "has no 'version'"),
        (_component(properties={"a": "b"}), "'properties' must be a list"),
        (_component(properties=["crossdock:wheel-tags"]), "'properties' must list objects only"),
        (_component(properties=[{"name": "n"}]), "has no 'value'"),
        (_component(hashes=[{"alg": "SHA-256"}]), "has no 'content'"),
        (_component(licenses=[{"license": "MIT"}]), "'license' must be an object"),
    ],
    ids=["no-version", "properties-object", "property-string", "no-value", "no-hash", "license"],
)
def test_python_packages_that_cannot_be_read_back_are_a_malformed_error(component, words):
    if component.get("version") is None:
        del component["version"]
    document = json.dumps({"metadata": {}, "components": [component]}).encode()
    with pytest.raises(MalformedError, match=re.escape(words)):
        python_packages_of(document)
