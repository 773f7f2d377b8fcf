import pytest

from crossdock.image.digest import Digest
from crossdock.registry.upload import file_body, with_digest_query

DIGEST = Digest("sha256:" + "0123456789abcdef" * 4)
ENCODED = "sha256%3A" + "0123456789abcdef" * 4


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("/v2/r/blobs/uploads/u1", f"/v2/r/blobs/uploads/u1?digest={ENCODED}"),
        (
            "/v2/r/blobs/uploads/u1?_state=ab%3D%3D&x=1",
            f"/v2/r/blobs/uploads/u1?_state=ab%3D%3D&x=1&digest={ENCODED}",
        ),
        (
            "https://upload.example.com/v2/r/blobs/uploads/u1?uploadId=Q+w",
            f"https://upload.example.com/v2/r/blobs/uploads/u1?uploadId=Q+w&digest={ENCODED}",
        ),
    ],
)
def test_digest_is_merged_into_the_existing_query(location, expected):
    assert with_digest_query(location, DIGEST) == expected


def test_file_body_streams_a_slice_and_can_be_restarted(tmp_path):
    path = tmp_path / "blob"
    path.write_bytes(bytes(range(256)) * 10_000)
    body = file_body(path, offset=1000, length=1_500_000)
    first = b"".join(body())
    assert first == path.read_bytes()[1000:1_501_000]
    assert b"".join(body()) == first
    assert b"".join(file_body(path)()) == path.read_bytes()
