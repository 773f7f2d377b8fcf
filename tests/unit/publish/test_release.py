"""Releases without a registry: the tag plan and the digests it pushes, prod's architecture rule,
dirty trees (real git), the OCI layout reader, and the CLI's dry runs (offline: the unit
conftest fails any network connection, so a dry run that touched the registry would fail)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crossdock.cli import _register_commands, app
from crossdock.errors import ConfigError, UnsafeContentError
from crossdock.image import (
    ImageSet,
)
from crossdock.platform import AMD64, ARM64, Platform
from crossdock.publish.git import GitState
from crossdock.publish.release import (
    ReleaseRequest,
    environment_platforms,
    plan_release,
    release_git_state,
)
from crossdock.registry.reference import Reference
from crossdock.sinks import write_oci_layout
from crossdock.sources.oci_layout import read_oci_build
from tests.support.images import image_set
from tests.support.prerequisites import needs_tools

needs_git = needs_tools("git")
REPO = Reference.parse("127.0.0.1:5555/team/api:ignored")
STAMP = "20250102-030405"
GIT = GitState("abc1234", dirty=False)


def digest_of(images: ImageSet, platform: Platform) -> str:
    return str(images.image_for(platform).digest)


# -- the tag plan and what it pushes -----------------------------------------------------------


def test_dev_multi_arch_tags_point_at_index_and_per_platform_manifests(tmp_path):
    images = image_set(tmp_path)
    plan = plan_release(images, ReleaseRequest(REPO, "dev", git=GIT, timestamp=STAMP))
    assert images.index is not None
    index, arm, amd = str(images.index.digest), digest_of(images, ARM64), digest_of(images, AMD64)
    assert {t.tag: str(d) for t, d in zip(plan.tags, plan.tag_digests.values(), strict=True)} == {
        f"dev-{STAMP}": index,
        f"dev-{STAMP}-arm64": arm,
        f"dev-{STAMP}-amd64": amd,
        "dev-arm64-latest": arm,
        "dev-amd64-latest": amd,
        "dev-latest": index,
        "abc1234-arm64": arm,
        "abc1234-amd64": amd,
        "abc1234": index,
    }
    assert plan.where == "127.0.0.1:5555/team/api"  # the tag of the reference is not used
    assert plan.repository.tag is None
    assert plan.notes == ()
    blobs, size = plan.blob_totals()
    assert blobs == 4  # one layer and one config per platform
    assert size == sum(b.descriptor.size for b in images.blobs()) + sum(
        len(i.config.raw) for i in images.images
    )


def test_lambda_tags_all_point_at_single_manifests(tmp_path):
    images = image_set(tmp_path, with_index=False)
    plan = plan_release(
        images, ReleaseRequest(REPO, "dev", git=GIT, timestamp=STAMP, single_manifests=True)
    )
    manifests = {str(i.digest) for i in images.images}
    assert {str(d) for d in plan.tag_digests.values()} == manifests
    assert plan.tag_digests["dev-latest"] == images.image_for(ARM64).digest
    assert plan.tag_digests["abc1234"] == images.image_for(ARM64).digest
    assert "index" not in {t.points_to for t in plan.tags}


def test_single_manifest_target_never_tags_an_index_even_when_one_was_built(tmp_path):
    images = image_set(tmp_path)
    plan = plan_release(
        images, ReleaseRequest(REPO, "dev", git=GIT, timestamp=STAMP, single_manifests=True)
    )
    assert images.index is not None
    assert images.index.digest not in plan.tag_digests.values()


def test_prod_publishes_only_the_production_architecture(tmp_path):
    images = image_set(tmp_path)
    plan = plan_release(images, ReleaseRequest(REPO, "prod", git=GIT, timestamp=STAMP))
    arm = images.image_for(ARM64).digest
    assert [t.tag for t in plan.tags] == [
        f"prod-{STAMP}",
        f"prod-{STAMP}-arm64",
        "prod-arm64-latest",
        "prod-latest",
        "abc1234-arm64",
        "abc1234",
    ]
    assert set(plan.tag_digests.values()) == {arm}
    assert [i.platform for i in plan.image_set.images] == [ARM64]
    assert plan.image_set.index is None  # the index names amd64 too: not pushed to prod
    assert any("not pushing linux/amd64" in note for note in plan.notes)


def test_prod_without_the_production_architecture_is_refused(tmp_path):
    images = image_set(tmp_path, platforms=(AMD64,))
    with pytest.raises(ConfigError, match="prod always runs linux/arm64"):
        plan_release(images, ReleaseRequest(REPO, "prod", git=GIT, timestamp=STAMP))
    with pytest.raises(ConfigError, match="--platform linux/arm64"):
        environment_platforms("prod", (AMD64,), ARM64)
    assert environment_platforms("prod", (AMD64, ARM64), ARM64) == (ARM64,)
    assert environment_platforms("dev", (AMD64,), ARM64) == (AMD64,)


def test_production_architecture_comes_from_the_request(tmp_path):
    images = image_set(tmp_path)
    plan = plan_release(
        images, ReleaseRequest(REPO, "prod", git=GIT, timestamp=STAMP, production_arch=AMD64)
    )
    assert set(plan.tag_digests.values()) == {images.image_for(AMD64).digest}


def test_explicit_tag_names_the_index_and_each_architecture(tmp_path):
    images = image_set(tmp_path)
    plan = plan_release(images, ReleaseRequest(REPO, None, tag="v1"))
    assert images.index is not None
    assert {t: str(d) for t, d in plan.tag_digests.items()} == {
        "v1": str(images.index.digest),
        "v1-arm64": digest_of(images, ARM64),
        "v1-amd64": digest_of(images, AMD64),
    }
    amd_only = image_set(tmp_path / "amd", platforms=(AMD64,))
    plan = plan_release(amd_only, ReleaseRequest(REPO, None, tag="v1"))
    assert plan.tag_digests == {
        "v1": amd_only.images[0].digest,
        "v1-amd64": amd_only.images[0].digest,
    }


def test_an_environment_release_needs_a_commit(tmp_path):
    with pytest.raises(ConfigError, match="--git-sha"):
        plan_release(image_set(tmp_path), ReleaseRequest(REPO, "dev", timestamp=STAMP))


# -- dirty trees, with a real git repository ---------------------------------------------------


def git(folder: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path):
    folder = tmp_path / "repo"
    folder.mkdir()
    git(folder, "init", "-q")
    (folder / "app.py").write_text("print(1)\n")
    git(folder, "add", "app.py")
    git(folder, "commit", "-q", "-m", "one")
    return folder


@needs_git
def test_dirty_tree_is_noted_and_refused_when_configured(repo, tmp_path):
    sha = git(repo, "rev-parse", "--short=7", "HEAD")
    clean = release_git_state(repo, env="dev", sha_override=None, refuse_dirty=True)
    assert clean == GitState(sha, dirty=False)
    images = image_set(tmp_path / "blobs")
    assert plan_release(images, ReleaseRequest(REPO, "dev", git=clean, timestamp=STAMP)).notes == ()

    (repo / "app.py").write_text("print(2)\n")
    with pytest.raises(ConfigError, match="uncommitted changes, and refuse-dirty is set"):
        release_git_state(repo, env="dev", sha_override=None, refuse_dirty=True)
    dirty = release_git_state(repo, env="dev", sha_override=None, refuse_dirty=False)
    assert dirty == GitState(sha, dirty=True)
    plan = plan_release(images, ReleaseRequest(REPO, "dev", git=dirty, timestamp=STAMP))
    assert any("dirty" in note and sha in note for note in plan.notes)
    with pytest.raises(ConfigError, match="refuse-dirty"):
        plan_release(
            images, ReleaseRequest(REPO, "dev", git=dirty, timestamp=STAMP, refuse_dirty=True)
        )
    # --git-sha names the commit without asking git; the tree state is then unknown.
    given = release_git_state(repo, env="dev", sha_override="DEADBEEF00", refuse_dirty=True)
    assert given == GitState("deadbee", dirty=None)
    # Without an environment there are no SHA tags, so git is not asked at all.
    assert release_git_state(tmp_path, env=None, sha_override=None, refuse_dirty=True) is None


# -- OCI layouts written by the build, read back for `crossdock push` ---------------------------


def test_layout_round_trip_keeps_every_digest(tmp_path):
    images = image_set(tmp_path / "blobs")
    write_oci_layout(images, tmp_path / "layout", tag="v1")
    loaded = read_oci_build(tmp_path / "layout")
    assert loaded.index is not None and images.index is not None
    assert loaded.index.raw == images.index.raw
    assert [(i.platform, i.digest, i.config.raw) for i in loaded.images] == [
        (i.platform, i.digest, i.config.raw) for i in images.images
    ]
    assert [b.descriptor for b in loaded.blobs()] == [b.descriptor for b in images.blobs()]


def test_lambda_layout_has_no_index_and_tags_select_images(tmp_path):
    images = image_set(tmp_path / "blobs", with_index=False)
    write_oci_layout(images, tmp_path / "layout", tag="v1")
    loaded = read_oci_build(tmp_path / "layout")
    assert loaded.index is None
    assert {i.digest for i in loaded.images} == {i.digest for i in images.images}
    assert len(read_oci_build(tmp_path / "layout", tag="v1").images) == 2
    with pytest.raises(ConfigError, match="no image tagged 'v2'"):
        read_oci_build(tmp_path / "layout", tag="v2")


def test_a_changed_layer_in_the_layout_is_refused(tmp_path):
    images = image_set(tmp_path / "blobs")
    layout = write_oci_layout(images, tmp_path / "layout")
    layer = images.images[0].layers[0].descriptor.digest
    path = layout / "blobs" / "sha256" / layer.hex
    damaged = bytearray(path.read_bytes())
    damaged[0] ^= 1  # same size, different bytes: only the digest can tell
    path.write_bytes(bytes(damaged))
    with pytest.raises(UnsafeContentError, match="does not match"):
        read_oci_build(layout)


def test_a_folder_that_is_not_a_layout_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="not an OCI image layout"):
        read_oci_build(tmp_path)


# -- the CLI: dry runs print the plan and push nothing (the network is off here) --------------

runner = CliRunner()
_register_commands()


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "project"
    service = root / "backend" / "api"
    service.mkdir(parents=True)
    (service / "pyproject.toml").write_text('[project]\nname = "api"\nversion = "0"\n')
    (root / "crossdock.toml").write_text(
        '[environments.dev]\nrepository = "127.0.0.1:9/team/api-dev"\n'
        '[environments.prod]\nrepository = "127.0.0.1:9/team/api"\n'
    )
    return root


def test_push_dry_run_json_lists_tags_and_digests(tmp_path):
    images = image_set(tmp_path / "blobs")
    layout = write_oci_layout(images, tmp_path / "layout")
    result = runner.invoke(
        app, ["push", str(layout), "--to", "127.0.0.1:9/x/y:v1", "--dry-run", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert images.index is not None
    assert data["dry_run"] is True
    assert data["repository"] == "127.0.0.1:9/x/y"
    assert "pushed" not in data
    assert {t["tag"]: (t["digest"], t["status"]) for t in data["tags"]} == {
        "v1": (str(images.index.digest), "planned"),
        "v1-arm64": (digest_of(images, ARM64), "planned"),
        "v1-amd64": (digest_of(images, AMD64), "planned"),
    }


def _commit_and_dry_run(tmp_path, project, env):
    """Commit the project, write a two-platform layout, and `push --env ENV --dry-run` it."""
    git(project, "init", "-q")
    git(project, "add", ".")
    git(project, "commit", "-q", "-m", "one")
    sha = git(project, "rev-parse", "--short=7", "HEAD")
    images = image_set(tmp_path / "blobs")
    layout = write_oci_layout(images, tmp_path / "layout")
    result = runner.invoke(
        app,
        ["push", str(layout), "-C", str(project), "-s", "api", "--env", env, "--dry-run"],
        env={"CROSSDOCK_REGISTRY_MIRRORS": ""},
    )
    return sha, images, result


@needs_git
def test_push_env_prod_dry_run_prints_the_arm64_tags_only(tmp_path, project):
    sha, images, result = _commit_and_dry_run(tmp_path, project, "prod")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "DRY RUN: would push to 127.0.0.1:9/team/api  env prod" in out
    assert f"commit {sha}" in out and "dirty" not in out.split("\n")[0]
    arm = digest_of(images, ARM64)
    # The digest once ("arm64  sha256:..."), then every tag pointing to it, one per line.
    lines = out.splitlines()
    (header,) = [i for i, line in enumerate(lines) if line.split() == ["arm64", arm]]
    tags_below = [line.split()[0] for line in lines[header + 1 :] if line.startswith("      ")]
    assert {"prod-arm64-latest", "prod-latest", f"{sha}-arm64", sha} <= set(tags_below)
    assert max(len(line) for line in lines[1:]) <= 80  # fits the narrowest terminal
    assert "amd64" not in out.replace("not pushing linux/amd64", "")
    assert "nothing pushed" in out


@needs_git
def test_tag_templates_from_config_replace_the_seed_scheme(tmp_path, project):
    text = (project / "crossdock.toml").read_text()
    (project / "crossdock.toml").write_text(
        'tag-templates = ["{env}-{sha}-{arch}", "{env}-stable"]\n' + text
    )
    sha, _images, result = _commit_and_dry_run(tmp_path, project, "dev")
    assert result.exit_code == 0, result.output
    # Tags are listed under the digest they point to, indented, with their status.
    tags = {line.split()[0] for line in result.stdout.splitlines() if line.startswith("      ")}
    assert tags == {f"dev-{sha}-arm64", f"dev-{sha}-amd64", "dev-stable"}


@needs_git
def test_push_refuses_a_dirty_tree_when_configured(tmp_path, project):
    text = (project / "crossdock.toml").read_text()
    (project / "crossdock.toml").write_text("refuse-dirty = true\n" + text)
    git(project, "init", "-q")
    git(project, "add", ".")
    git(project, "commit", "-q", "-m", "one")
    (project / "backend" / "api" / "new.py").write_text("x = 1\n")
    layout = write_oci_layout(image_set(tmp_path / "blobs"), tmp_path / "layout")
    result = runner.invoke(
        app, ["push", str(layout), "-C", str(project), "-s", "api", "--env", "dev", "--dry-run"]
    )
    assert isinstance(result.exception, ConfigError)
    assert "refuse-dirty" in str(result.exception)


def test_push_needs_a_destination(tmp_path):
    layout = write_oci_layout(image_set(tmp_path / "blobs"), tmp_path / "layout")
    result = runner.invoke(app, ["push", str(layout)])
    assert isinstance(result.exception, ConfigError)
    assert "--env" in str(result.exception)
