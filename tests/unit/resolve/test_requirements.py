from __future__ import annotations

import pytest

from crossdock.errors import LockError, ResolveError
from crossdock.platform import AMD64, ARM64
from crossdock.resolve.requirements import marker_environment, parse_export
from crossdock.wheeltags import wheel_target

# As `uv export --no-header --no-annotate --format requirements-txt` writes it.
EXPORT = """\
--index-url https://pypi.example.org/simple
annotated-types==0.8.0 \\
    --hash=sha256:13b2beaad985e05e2d6407ee4c4f35590b11f8d693a258a561055cac8f64cab7 \\
    --hash=sha256:f072f4d804ea359e4eaf198b1af7a8b0943881a87f31bb764f8bf219bb9419e0
colorama==0.4.6 ; sys_platform == 'win32' \\
    --hash=sha256:08695f5cb7ed6e0531a20572697297273c47b8cae5a63ffc6d6ed5c201be6e44
uvloop==0.22.1 ; platform_machine == 'aarch64' and python_full_version >= '3.13' \\
    --hash=sha256:aa
Typing_Extensions==4.16.0 ; python_full_version < '3.13' \\
    --hash=sha256:bb
"""


def test_parse_reads_blocks_names_versions_and_options():
    export = parse_export(EXPORT)
    assert export.options == ("--index-url https://pypi.example.org/simple",)
    names = [(req.name, req.version) for req in export.requirements]
    assert names == [
        ("annotated-types", "0.8.0"),
        ("colorama", "0.4.6"),
        ("uvloop", "0.22.1"),
        ("typing-extensions", "4.16.0"),
    ]
    assert export.requirements[0].text.count("--hash=sha256:") == 2


def test_markers_are_evaluated_for_the_target_not_the_host():
    export = parse_export(EXPORT)
    arm64 = marker_environment(wheel_target(ARM64, "2.41", "3.13"))
    amd64 = marker_environment(wheel_target(AMD64, "2.41", "3.13"))
    on_arm64 = [req.name for req in export.requirements if req.applies_to(arm64)]
    on_amd64 = [req.name for req in export.requirements if req.applies_to(amd64)]
    assert on_arm64 == ["annotated-types", "uvloop"]
    assert on_amd64 == ["annotated-types"]


def test_render_keeps_options_and_hash_lines_of_the_chosen_subset():
    export = parse_export(EXPORT)
    text = export.render(export.requirements[:1])
    assert text == (
        "--index-url https://pypi.example.org/simple\n"
        "annotated-types==0.8.0 \\\n"
        "    --hash=sha256:13b2beaad985e05e2d6407ee4c4f35590b11f8d693a258a561055cac8f64cab7 \\\n"
        "    --hash=sha256:f072f4d804ea359e4eaf198b1af7a8b0943881a87f31bb764f8bf219bb9419e0\n"
    )


def test_editable_dependencies_are_refused():
    with pytest.raises(ResolveError, match=r"editable install .* never reaches an image"):
        parse_export("-e ./libs/shared\nidna==3.20\n")


def test_local_projects_are_set_apart_with_their_markers():
    export = parse_export(
        "./libs/shared\n.\n./libs/linux-only ; sys_platform == 'linux'\nidna==3.20 \\\n"
        "    --hash=sha256:cc\n"
    )
    assert [req.name for req in export.requirements] == ["idna"]
    assert [local.path for local in export.local] == ["./libs/shared", ".", "./libs/linux-only"]
    arm64 = marker_environment(wheel_target(ARM64, "2.41", "3.13"))
    assert all(local.applies_to(arm64) for local in export.local)
    assert export.local[2].marker is not None
    assert not export.local[2].applies_to({**arm64, "sys_platform": "win32"})
    # Local projects never reach the requirements file given to uv (nor its cache key).
    assert "shared" not in export.render()


def test_unpinned_requirement_is_a_lock_error():
    with pytest.raises(LockError, match="not pinned"):
        parse_export("idna>=3\n")
