"""Bad input is refused where it enters (issue 13, point 8): service names that are paths,
tags that are not tags, --allow globs that cannot match what was meant, non-hex digests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from crossdock.config import load_config
from crossdock.errors import ConfigError, MalformedError
from crossdock.image.config import ImageConfig
from crossdock.registry.reference import check_tag
from crossdock.verify.report import AllowRule

CROSSDOCK = str(Path(sys.executable).parent / "crossdock")
EXAMPLE = Path(__file__).resolve().parents[2] / "example"


@pytest.mark.parametrize("service", ["../../..", "/etc", "a/b", "..", ".hidden", "a b"])
def test_a_service_must_be_one_folder_name(tmp_path, service):
    (tmp_path / "backend" / "api").mkdir(parents=True)
    with pytest.raises(ConfigError, match="is not a folder name"):
        load_config(project_dir=tmp_path, service=service, environ={})


@pytest.mark.parametrize("services_dir", ["../elsewhere", "/abs"])
def test_services_dir_stays_in_the_project(tmp_path, services_dir):
    (tmp_path / "crossdock.toml").write_text(f'services-dir = "{services_dir}"\n')
    with pytest.raises(ConfigError, match="leaves the project"):
        load_config(project_dir=tmp_path, service="api", environ={})


@pytest.mark.parametrize("tag", ["bad tag!", "", "-x", ".x", "a" * 129, "a/b", "a:b"])
def test_bad_tags_are_refused(tag):
    with pytest.raises(ConfigError, match="is not a valid tag"):
        check_tag(tag)


def test_good_tags_pass():
    for tag in ("latest", "v1.2.3", "dev-latest-arm64", "A_b", "a" * 128):
        assert check_tag(tag) == tag


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("[", "is not closed"),
        ("usr/lib/[abc", "is not closed"),
        ("", "empty"),
        ("elf-platfrom:*.so", "is not a check"),
        ("glibc:", "empty"),
    ],
)
def test_bad_allow_rules_are_refused(rule, message):
    with pytest.raises(ConfigError, match=message):
        AllowRule.parse(rule)


def test_good_allow_rules_parse():
    assert AllowRule.parse("elf-platform:*/x.so").pattern == "*/x.so"
    assert AllowRule.parse("usr/lib/[ab]*.so").pattern == "/usr/lib/[ab]*.so"


def test_non_hex_diff_ids_are_malformed():
    raw = b'{"os":"linux","architecture":"amd64","rootfs":{"diff_ids":["sha256:xyz"]}}'
    with pytest.raises(MalformedError, match=r"rootfs.diff_ids\[0\] is not a valid digest"):
        ImageConfig.parse(raw)


def _crossdock(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CROSSDOCK, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
        timeout=120,
        check=False,
    )


def test_the_cli_refuses_bad_service_tag_and_allow_before_any_work(tmp_path):
    layout = tmp_path / "layout"
    for args, message in [
        (["plan", "-C", str(EXAMPLE), "--service", "../../.."], "is not a folder name"),
        (
            [
                "build",
                "-C",
                str(EXAMPLE),
                "--service",
                "api",
                "--oci-layout",
                str(layout),
                "--tag",
                "bad tag!",
            ],
            "is not a valid tag",
        ),
        (["build", "-C", str(EXAMPLE), "--service", "api", "--allow", "["], "is not closed"),
        (["verify", "--allow", "[", str(tmp_path)], "is not closed"),
    ]:
        run = _crossdock(*args)
        assert run.returncode == 2, run.stderr
        assert message in run.stderr
        assert "Traceback" not in run.stderr
    assert not layout.exists()
