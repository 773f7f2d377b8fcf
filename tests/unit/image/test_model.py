import hashlib
import json

import pytest

from crossdock.errors import MalformedError
from crossdock.image import (
    Descriptor,
    Digest,
    HistoryEntry,
    ImageConfig,
    Index,
    Manifest,
    MediaType,
    family_of,
    parse_manifest_or_index,
    sha256_of,
)
from crossdock.platform import AMD64, ARM64

CONFIG = Descriptor(MediaType.OCI_CONFIG, sha256_of(b"{}"), 2)
LAYER = Descriptor(MediaType.OCI_LAYER_GZIP, sha256_of(b"layer"), 5)


def test_digest_validation():
    assert Digest("sha256:" + "a" * 64).hex == "a" * 64
    for bad in ["sha256:xyz", "md5:" + "a" * 32, "sha256:" + "A" * 64, ""]:
        with pytest.raises(ValueError, match="not a valid OCI digest"):
            Digest(bad)


def test_manifest_digest_is_of_exact_bytes():
    manifest = Manifest.build(MediaType.OCI_MANIFEST, CONFIG, [LAYER], {"a": "b"})
    assert manifest.digest.hex == hashlib.sha256(manifest.raw).hexdigest()
    reparsed = Manifest.parse(manifest.raw)
    assert reparsed.digest == manifest.digest
    assert reparsed.layers == (LAYER,)
    assert reparsed.annotations == {"a": "b"}


def test_parsed_manifest_keeps_foreign_formatting():
    # Whitespace that a re-serialization would lose must not change the digest.
    body = {
        "schemaVersion": 2,
        "mediaType": MediaType.OCI_MANIFEST,
        "config": CONFIG.to_json(),
        "layers": [LAYER.to_json()],
    }
    raw = json.dumps(body, indent=3).encode()
    assert Manifest.parse(raw).digest == sha256_of(raw)


def test_docker_manifest_has_no_annotations():
    manifest = Manifest.build(MediaType.DOCKER_MANIFEST, CONFIG, [LAYER], {"a": "b"})
    assert "annotations" not in json.loads(manifest.raw)


def test_index_find_by_platform_skips_attestations():
    arm = Descriptor(MediaType.OCI_MANIFEST, sha256_of(b"arm"), 3, ARM64)
    amd = Descriptor(MediaType.OCI_MANIFEST, sha256_of(b"amd"), 3, AMD64)
    att = Descriptor(
        MediaType.OCI_MANIFEST, sha256_of(b"att"), 3, type(AMD64)("unknown", "unknown")
    )
    index = Index.build(MediaType.OCI_INDEX, [att, amd, arm])
    assert index.find(ARM64) == arm
    assert index.find(AMD64) == amd
    assert index.platforms() == (AMD64, ARM64)
    parsed = parse_manifest_or_index(index.raw)
    assert isinstance(parsed, Index)
    found = parsed.find(ARM64)
    assert found is not None
    assert found.platform is not None
    assert found.platform.variant == "v8"


def test_parse_manifest_or_index_by_shape_without_media_type():
    raw = json.dumps({"schemaVersion": 2, "config": CONFIG.to_json(), "layers": []}).encode()
    assert isinstance(parse_manifest_or_index(raw), Manifest)
    with pytest.raises(MalformedError, match="unsupported manifest media type 'text/plain'"):
        parse_manifest_or_index(b'{"mediaType": "text/plain"}')


def test_family_of():
    assert family_of(MediaType.DOCKER_MANIFEST_LIST).layer_gzip == MediaType.DOCKER_LAYER_GZIP
    assert family_of(MediaType.OCI_INDEX).config == MediaType.OCI_CONFIG


def test_config_with_changes_returns_new_value_and_keeps_unknown_fields():
    base = ImageConfig.from_data(
        {
            "architecture": "amd64",
            "os": "linux",
            "x-unknown": 1,
            "config": {"Env": ["PATH=/usr/bin", "LANG=C.UTF-8"], "Cmd": ["python3"]},
            "rootfs": {"type": "layers", "diff_ids": [str(sha256_of(b"base"))]},
            "history": [{"created_by": "base"}],
        }
    )
    changed = base.with_changes(
        platform=ARM64,
        env={"PATH": "/x:/usr/bin"},
        entrypoint=["/app/run"],
        working_dir="/app",
        exposed_ports=[8080],
        append_layers=[(sha256_of(b"new"), HistoryEntry("crossdock: app"))],
    )
    assert base.platform == AMD64  # untouched
    assert changed.platform == ARM64
    assert changed.data["x-unknown"] == 1
    assert changed.env == {"PATH": "/x:/usr/bin", "LANG": "C.UTF-8"}
    # Docker's rule: a new entrypoint resets the base's Cmd.
    assert "Cmd" not in changed.runtime
    assert changed.runtime["ExposedPorts"] == {"8080/tcp": {}}
    assert changed.diff_ids == (sha256_of(b"base"), sha256_of(b"new"))
    assert len(changed.data["history"]) == 2
    assert changed.digest == sha256_of(changed.raw)
