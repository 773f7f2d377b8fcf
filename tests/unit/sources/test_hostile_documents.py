"""Generated hostile input thrown at every reader of outside data (issue 13, point 4): JSON
documents of any shape (and near-valid ones with one field wrong), tar headers with any bytes,
crossdock.toml values of any type. Whatever they are, the readers either accept them or raise a
``CrossdockError`` (one line, an exit code, a hint): nothing else may escape."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crossdock.config import load_config
from crossdock.errors import CrossdockError, MalformedError, UnsafeContentError
from crossdock.image.config import ImageConfig
from crossdock.image.descriptor import Descriptor
from crossdock.image.manifest import Index, Manifest, parse_manifest_or_index
from crossdock.rootfs.fsview import LayerFS
from crossdock.rootfs.layerindex import read_index
from crossdock.sources.docker_archive import read_docker_archive
from crossdock.sources.oci_layout import read_oci_build, read_oci_layout
from tests.hostile import sha256

# CI runs a fixed sequence of examples (a red CI is then reproducible); a developer's run
# explores new ones each time. No example database is written into the work tree.
FAST = settings(
    max_examples=150,
    deadline=None,
    database=None,
    derandomize=os.environ.get("CI") == "true",
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)

CONFIG = {
    "architecture": "amd64",
    "os": "linux",
    "config": {"Env": ["A=b"], "Cmd": ["python3"], "Labels": {"a": "b"}},
    "rootfs": {"type": "layers", "diff_ids": [sha256(b"layer")]},
    "history": [{"created_by": "x"}],
}
DESCRIPTOR = {
    "mediaType": "application/vnd.oci.image.layer.v1.tar",
    "digest": sha256(b"layer"),
    "size": 5,
    "platform": {"os": "linux", "architecture": "amd64"},
    "annotations": {"k": "v"},
}
MANIFEST = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {**DESCRIPTOR, "mediaType": "application/vnd.oci.image.config.v1+json"},
    "layers": [DESCRIPTOR],
}
INDEX = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.index.v1+json",
    "manifests": [{**DESCRIPTOR, "mediaType": "application/vnd.oci.image.manifest.v1+json"}],
}


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out += _paths(item, (*prefix, i))
    return out


@st.composite
def near_valid(draw: st.DrawFn, valid: dict[str, Any]) -> bytes:
    """A valid document with one node replaced by any JSON value, or deleted."""
    document = json.loads(json.dumps(valid))
    path = draw(st.sampled_from(_paths(document)[1:]))
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    if draw(st.booleans()):
        parent[path[-1]] = draw(JSON)
    elif isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent.pop(path[-1])
    return json.dumps(document).encode()


def any_document(valid: dict[str, Any]) -> st.SearchStrategy[bytes]:
    return near_valid(valid) | JSON.map(lambda v: json.dumps(v).encode()) | st.binary(max_size=40)


def _only_crossdock_errors(read: Callable[[], object]) -> None:
    try:
        read()
    except CrossdockError as err:
        assert err.message.strip(), "an error without a message"
        assert "\n" not in err.message, f"a multi-line message: {err.message!r}"


@FAST
@given(any_document(MANIFEST), any_document(INDEX), any_document(CONFIG))
def test_the_image_model_raises_only_crossdock_errors(manifest, index, config):
    _only_crossdock_errors(lambda: Manifest.parse(manifest))
    _only_crossdock_errors(lambda: parse_manifest_or_index(manifest))
    _only_crossdock_errors(lambda: Index.parse(index))
    _only_crossdock_errors(lambda: parse_manifest_or_index(index))

    def read_config() -> object:
        parsed = ImageConfig.parse(config)
        # What the build and verify read from a config must then work.
        return (parsed.platform, parsed.env, parsed.diff_ids, parsed.runtime)

    _only_crossdock_errors(read_config)


def test_documents_nested_deep_enough_for_a_recursion_error_are_malformed():
    deep = b'{"a":' * 100_000
    for read in (Manifest.parse, Index.parse, ImageConfig.parse, parse_manifest_or_index):
        with pytest.raises(MalformedError, match="not valid JSON"):
            read(deep)


@FAST
@given(JSON)
def test_descriptors_raise_only_crossdock_errors(value):
    _only_crossdock_errors(lambda: Descriptor.from_json(value))


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _blob(root: Path, data: bytes) -> dict[str, Any]:
    path = root / "blobs" / "sha256" / sha256(data).split(":")[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return {"digest": sha256(data), "size": len(data)}


@FAST
@given(any_document(INDEX), any_document(MANIFEST), any_document(CONFIG))
def test_oci_layouts_raise_only_crossdock_errors(index, manifest, config):
    """index.json, the manifest and the config of a layout, each possibly hostile; the blobs
    they name exist (so the documents, not missing files, are what is tested)."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
        layer = _blob(root, b"layer")
        config_desc = _blob(root, config)
        body = _json_or_none(manifest)
        if isinstance(body, dict) and isinstance(body.get("config"), dict):
            body["config"].update(config_desc)
            manifest = json.dumps(body).encode()
        manifest_desc = _blob(root, manifest)
        top = _json_or_none(index)
        if isinstance(top, dict) and isinstance(top.get("manifests"), list):
            for entry in top["manifests"]:
                if isinstance(entry, dict):
                    entry.update(manifest_desc)
            index = json.dumps(top).encode()
        (root / "index.json").write_bytes(index)
        assert layer
        _only_crossdock_errors(lambda: read_oci_layout(root))
        _only_crossdock_errors(lambda: read_oci_build(root))


def _header(name: bytes, fields: dict[str, bytes]) -> bytes:
    """A tar header with ``fields`` overwritten with any bytes, then a right checksum (so the
    reader gets past the checksum and reads the hostile fields)."""
    info = tarfile.TarInfo("x")
    info.size = 0
    block = bytearray(info.tobuf(format=tarfile.USTAR_FORMAT))
    offsets = {"name": (0, 100), "mode": (100, 8), "size": (124, 12), "mtime": (136, 12)}
    offsets |= {"type": (156, 1), "linkname": (157, 100), "prefix": (345, 155)}
    fields = {"name": name, **fields}
    for field, value in fields.items():
        start, length = offsets[field]
        block[start : start + length] = value[:length].ljust(length, b"\0")
    block[148:156] = b"        "
    block[148:156] = b"%06o\0 " % sum(block[:512])
    return bytes(block[:512])


HEADERS = st.builds(
    _header,
    st.binary(min_size=1, max_size=100),
    st.dictionaries(
        st.sampled_from(["mode", "size", "mtime", "type", "linkname", "prefix"]),
        st.binary(max_size=12) | st.sampled_from([b"0", b"1", b"2", b"5", b"L", b"x", b"g"]),
        max_size=3,
    ),
)


@FAST
@given(st.lists(HEADERS, min_size=1, max_size=4), st.binary(max_size=600))
def test_layers_with_any_tar_headers_raise_only_crossdock_errors(headers, tail):
    with tempfile.TemporaryDirectory() as tmp:
        layer = Path(tmp) / "layer.tar"
        layer.write_bytes(b"".join(headers) + tail + b"\0" * 1024)
        _only_crossdock_errors(lambda: read_index(layer).members)

        def view() -> object:
            fs = LayerFS([layer])
            return [c.data.read() for c in fs.iter_files()]

        _only_crossdock_errors(view)


@FAST
@given(any_document({"list": [{"Config": "c", "Layers": ["l"], "RepoTags": ["t"]}]}), HEADERS)
def test_docker_archives_raise_only_crossdock_errors(document, header):
    body = _json_or_none(document)
    if isinstance(body, dict) and "list" in body:  # the near-valid list, unwrapped
        document = json.dumps(body["list"]).encode()
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "image.tar"
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            for name, data in (("manifest.json", document), ("c", json.dumps(CONFIG).encode())):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        archive.write_bytes(header + buffer.getvalue())
        _only_crossdock_errors(lambda: read_docker_archive(archive, Path(tmp) / "work"))
        archive.write_bytes(buffer.getvalue())
        _only_crossdock_errors(lambda: read_docker_archive(archive, Path(tmp) / "work"))


TOML_VALUES = st.sampled_from(
    ["5", "true", '"x"', '"../../.."', "[1, 2]", '["linux/arm64", 5]', "{a = 1}", "1.5", '""']
)
SETTINGS = st.sampled_from(
    [
        "platforms",
        "service",
        "services-dir",
        "port",
        "target",
        "registry-mirrors",
        "tag-templates",
        "exclude",
        "environments",
        "cache-dir",
        "bytecode",
        "command",
        "base",
        "health-path",
    ]
)


@FAST
@given(st.dictionaries(SETTINGS, TOML_VALUES, min_size=1, max_size=3))
def test_crossdock_toml_values_of_any_type_raise_only_config_errors(values):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "backend" / "api").mkdir(parents=True)
        (root / "backend" / "api" / "pyproject.toml").write_text('[project]\nname = "api"\n')
        text = "".join(f'"{key}" = {value}\n' for key, value in values.items())
        (root / "crossdock.toml").write_text(text)
        _only_crossdock_errors(lambda: load_config(project_dir=root, service="api", environ={}))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("platforms = 5\n", "platforms must be"),
        ('[registry-mirrors]\n"docker.io" = 5\n', "registry-mirrors"),
    ],
)
def test_named_bad_values_are_config_errors(tmp_path, text, message):
    (tmp_path / "backend" / "api").mkdir(parents=True)
    (tmp_path / "backend" / "api" / "pyproject.toml").write_text('[project]\nname = "api"\n')
    (tmp_path / "crossdock.toml").write_text(text)
    with pytest.raises(CrossdockError, match=message) as caught:
        load_config(project_dir=tmp_path, service="api", environ={})
    assert caught.value.exit_code == 2


def test_a_member_larger_than_its_layer_ends_the_pass_instead_of_reading_nothing_for_ever():
    # A base-256 size field holds 2**88: tarfile skips data by reading it, and past the end of
    # the stream every read returned nothing, so the pass never ended (found by the example
    # above, randomised outside CI). Run on a thread: a hang fails the test instead of CI.
    block = bytearray(tarfile.TarInfo("big").tobuf(format=tarfile.USTAR_FORMAT)[:512])
    block[124:136] = b"\x80" + b"\xff" * 11
    block[148:156] = b"        "
    block[148:156] = b"%06o\0 " % sum(block[:512])
    outcome: list[BaseException | None] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, compress in (("layer.tar", bytes), ("layer.tar.gz", gzip.compress)):
            layer = Path(tmp) / name
            layer.write_bytes(compress(bytes(block) + b"\0" * 1024))

            def read(layer: Path = layer) -> None:
                try:
                    read_index(layer)
                    outcome.append(None)
                except BaseException as err:  # noqa: BLE001 - reported below
                    outcome.append(err)

            reader = threading.Thread(target=read, daemon=True)
            reader.start()
            reader.join(120)
            assert not reader.is_alive(), f"{name}: the pass over the layer did not end"
            error = outcome.pop()
            assert isinstance(error, UnsafeContentError), error
            assert "ends inside a member's data" in str(error)
