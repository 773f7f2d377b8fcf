import pytest

from crossdock.errors import ConfigError
from crossdock.platform import AMD64, ARM64, Platform, parse_platforms


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("linux/arm64", ARM64),
        ("linux/arm64/v8", ARM64),
        ("arm64", ARM64),
        ("aarch64", ARM64),
        ("linux/amd64", AMD64),
        ("x86_64", AMD64),
    ],
)
def test_parse_spellings_to_one_vocabulary(text, expected):
    assert Platform.parse(text) == expected


def test_str_and_short():
    assert str(ARM64) == "linux/arm64/v8"
    assert ARM64.short == "linux/arm64"
    assert str(AMD64) == "linux/amd64"


def test_parse_platforms_dedupes_and_keeps_order():
    assert parse_platforms("linux/amd64, arm64,linux/arm64/v8") == (AMD64, ARM64)


@pytest.mark.parametrize("text", ["", "linux/s390x", "windows/amd64", "a/b/c/d"])
def test_parse_platforms_refuses_unsupported(text):
    with pytest.raises(ConfigError):
        parse_platforms(text)


def test_matches_index_entries():
    assert ARM64.matches("linux", "arm64", None)
    assert ARM64.matches("linux", "arm64", "v8")
    assert not ARM64.matches("linux", "arm64", "v7")
    assert not ARM64.matches("linux", "amd64", None)
    assert AMD64.matches("linux", "amd64", None)
    assert not AMD64.matches("unknown", "unknown", None)
