"""Caches make builds fast and never change what is built (issue 14): the record of the last
build answers an unchanged build with the same digests, a changed input (a code edit) is built
again, and a damaged record is detected and the build runs in full, to the same digest."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.distribution import Registry
from tests.support.prerequisites import needs_tools
from tests.support.stage import (
    REGISTRY,
    REPO_ROOT,
    STAGE_BASE,
    Built,
    Run,
    build_into,
    build_json,
    build_service,
    copy_example,
    crossdock_probed,
    layout_index_digest,
    stage_environment,
)

pytestmark = pytest.mark.integration

FROM_RECORD = "nothing changed since the last build"


def test_the_last_build_record_never_changes_a_digest(host_python: str, tmp_path: Path) -> None:
    env = stage_environment(host_python, CROSSDOCK_CACHE_DIR=str(tmp_path / "cache"))
    project = copy_example(tmp_path / "example", env)
    main = project / "backend" / "api" / "app" / "main.py"
    original = main.read_text()

    def build(name: str) -> Built:
        return build_into(env, project, "linux/arm64", tmp_path / name)

    first = build("first")
    assert FROM_RECORD not in first.run.stderr
    again = build("again")
    assert FROM_RECORD in again.run.stderr
    assert again.index_digest == first.index_digest
    assert sorted(p.name for p in (again.layout / "blobs" / "sha256").iterdir()) == sorted(
        p.name for p in (first.layout / "blobs" / "sha256").iterdir()
    )

    # A code edit is a change: built again (dependencies from their cache), another digest.
    main.write_text(original + "\n# edited\n")
    edited = build("edited")
    assert FROM_RECORD not in edited.run.stderr
    assert edited.index_digest != first.index_digest
    [report] = edited.report["platforms"]
    assert {la["role"]: la["cached"] for la in report["layers"]}["dependencies"] is True

    # The edit undone: the first build's record answers, with the first build's digest.
    main.write_text(original)
    undone = build("undone")
    assert FROM_RECORD in undone.run.stderr
    assert undone.index_digest == first.index_digest

    # A damaged record is detected: the build runs in full and gives the same digest.
    records = list((tmp_path / "cache" / "records" / "last-build").glob("*.rec"))
    assert len(records) == 2  # the first build's inputs and the edited ones
    for record in records:
        record.write_bytes(record.read_bytes().replace(b'"passed":true', b'"passed":false'))
    rebuilt = build("rebuilt")
    assert FROM_RECORD not in rebuilt.run.stderr
    assert rebuilt.index_digest == first.index_digest


def test_warm_caches_skip_no_check_and_change_no_digest(host_python: str, tmp_path: Path) -> None:
    """A code-only change takes the dependency layer's verification verdicts, the lock's recorded
    export and cached bytecode from the caches: a wrong-architecture library in the new code is
    still refused, and with the last-build records removed (every other cache warm) both
    platforms build to the cold build's index digest."""
    env = stage_environment(
        host_python, CROSSDOCK_CACHE_DIR=str(tmp_path / "cache"), SOURCE_DATE_EPOCH="1700000000"
    )
    project = copy_example(tmp_path / "example", env)
    app = project / "backend" / "api" / "app"

    def build(name: str, platforms: str = "linux/arm64,linux/amd64") -> Run:
        return build_service(
            env,
            project,
            platforms,
            "--oci-layout",
            str(tmp_path / name),
            "--json",
        )

    cold = build_json(build("cold"))["index"]
    verdicts = tmp_path / "cache" / "records" / "layer-verdicts"
    assert list(verdicts.glob("*.rec"))  # the dependency layers' verdicts were recorded

    # A code change that brings an x86_64 library into the arm64 image's app folder.
    native = app / "_speedups.cpython-313-aarch64-linux-gnu.so"
    native.write_bytes((REPO_ROOT / "tests" / "data" / "verify" / "x86_64-puts.so").read_bytes())
    refused = build("refused", "linux/arm64")
    assert refused.returncode == 6, refused.output  # VerificationError
    assert "_speedups.cpython-313-aarch64-linux-gnu.so" in refused.output
    assert "elf-platform" in refused.output
    assert not (tmp_path / "refused" / "index.json").exists()

    # Undone, and with no record of a last build: built in full from every other cache.
    native.unlink()
    shutil.rmtree(tmp_path / "cache" / "records" / "last-build")
    warm = build("warm")
    assert FROM_RECORD not in warm.stderr
    assert build_json(warm)["index"] == cold


# -- the same command line answered before the build's stacks are imported ---------------------

_GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]


@dataclass(frozen=True)
class Answer:
    run: Run
    index_digest: str
    # "answered": from the record, before typer and pydantic were imported; "rebuilt": built on
    # the recorded plan, before typer and pydantic were imported; "full": the whole command.
    how: str
    modules: frozenset[str]  # what the process imported
    sent: tuple[str, ...] = ()  # "METHOD /path" of each request of the light client

    @property
    def shortcut(self) -> bool:
        return self.how == "answered"


def _probed(args: list[str], env: dict[str, str]) -> tuple[Run, set[str]]:
    """`crossdock build ARGS`, and the modules the process imported."""
    run, loaded, _ = _probed_and_heard(args, env)
    return run, loaded


def _probed_and_heard(args: list[str], env: dict[str, str]) -> tuple[Run, set[str], list[str]]:
    """`crossdock build ARGS`, the modules the process imported and the light client's
    requests."""
    return crossdock_probed(env, "build", *args)


def _build_probed(args: list[str], env: dict[str, str]) -> Answer:
    """`crossdock build ARGS`, and how it was answered (see ``Answer.how``)."""
    run, loaded, sent = _probed_and_heard(args, env)
    digest = build_json(run)["index"]
    stderr = run.stderr
    how = "full"
    if not {"typer", "pydantic", "crossdock.config.model"} & loaded:
        built = {"crossdock.resolve", "crossdock.verify"} <= loaded
        assert built or FROM_RECORD in stderr
        how = "rebuilt" if built else "answered"
    return Answer(run, digest, how, frozenset(loaded), tuple(sent))


@dataclass(frozen=True)
class Builds:
    """One command line of `crossdock build`, run again and again."""

    env: dict[str, str]
    args: list[str]
    layout: Path

    def build(self, *extra: str, environ: dict[str, str] | None = None) -> Answer:
        answer = _build_probed([*self.args, *extra], environ or self.env)
        # The layout holds what was reported.
        assert layout_index_digest(self.layout) == answer.index_digest
        return answer

    def changed(
        self,
        what: str,
        first: Answer,
        *,
        new_digest: bool,
        environ: dict[str, str] | None = None,
        plan_changed: bool = True,
    ) -> None:
        """After a change of ``what``: the full command runs (``plan_changed``: a setting, the
        epoch, the revision), or the native build runs on the recorded plan (a file the image
        is built from, the base's tag), to a new digest or the same one; and the next identical
        command line is answered early again."""
        answer = self.build(environ=environ)
        assert answer.how == ("full" if plan_changed else "rebuilt"), what
        assert (answer.index_digest != first.index_digest) is new_digest, what
        assert self.build(environ=environ).shortcut, f"{what}: not remembered"


def test_an_unchanged_command_line_is_answered_early_and_every_input_is_checked_again(
    host_python: str, tmp_path: Path
) -> None:
    base = f"{REGISTRY}/tests-{uuid.uuid4().hex[:10]}/base:3.13"
    _copy_image(STAGE_BASE, base)
    env = stage_environment(
        host_python, CROSSDOCK_CACHE_DIR=str(tmp_path / "cache"), SOURCE_DATE_EPOCH="1700000000"
    )
    project = copy_example(tmp_path / "example", env)
    service = project / "backend" / "api"
    for command in (["init", "--quiet"], ["add", "-A"], ["commit", "--quiet", "-m", "example"]):
        subprocess.run([*_GIT, *command], cwd=project, check=True)
    layout = tmp_path / "layout"
    args = ["-C", str(project), "--service", "api", "--platform", "linux/arm64"]
    builds = Builds(env, [*args, "--base", base, "--oci-layout", str(layout), "--json"], layout)

    first = builds.build()
    assert not first.shortcut
    assert FROM_RECORD not in first.run.stderr
    again = builds.build()
    assert again.shortcut
    assert again.index_digest == first.index_digest
    # The base's tag was read through the light client (crossdock.registry.light).
    assert not {"httpx", "stamina"} & again.modules
    # Answered as the full command answers from the record: the same report, the same notes.
    # (`--tag latest` is the default: another command line, so the full command runs.)
    full = builds.build("--tag", "latest")
    assert not full.shortcut
    assert FROM_RECORD in full.run.stderr
    assert again.run.stdout == full.run.stdout
    assert again.run.stderr == full.run.stderr
    # The report for people (no --json), on a pipe as in CI: answered from the record too,
    # printed without importing rich, and the digests it names are the build's.
    people, people_modules = _probed([a for a in builds.args if a != "--json"], env)
    assert people.returncode == 0, people.output
    assert FROM_RECORD in people.stderr
    assert f"index {first.index_digest}" in people.stdout
    assert not {m for m in people_modules if m.split(".")[0] == "rich"}, people_modules

    main = service / "app" / "main.py"
    original = main.read_text()
    main.write_text(original + "\n# edited\n")
    builds.changed("a service file", first, new_digest=True, plan_changed=False)
    main.write_text(original)
    assert builds.build().index_digest == first.index_digest  # the edit undone: the first result

    _edit_and_restore(
        service / "uv.lock",
        lambda: builds.changed("uv.lock", first, new_digest=True, plan_changed=False),
    )
    _edit_and_restore(
        project / "crossdock.toml",
        lambda: builds.changed("crossdock.toml", first, new_digest=False),
        "refuse-dirty = true",
    )
    for variable, value, new_digest in (
        ("CROSSDOCK_PRODUCTION_ARCH", "amd64", False),
        ("SOURCE_DATE_EPOCH", "1700000001", True),
    ):
        builds.changed(variable, first, new_digest=new_digest, environ={**env, variable: value})
    # One command line remembers its last build: back to the first settings, the full command
    # answers from the first build's record, and the command line is remembered again.
    back = builds.build()
    assert not back.shortcut
    assert back.index_digest == first.index_digest
    assert FROM_RECORD in back.run.stderr
    assert builds.build().shortcut

    subprocess.run(
        [*_GIT, "commit", "--quiet", "--allow-empty", "-m", "next"], cwd=project, check=True
    )
    builds.changed("the git revision", first, new_digest=True)

    # The base's tag moved (the same layers under Docker media types): resolved again, built on.
    _copy_image(STAGE_BASE, base, docker_format=True)
    builds.changed("the base's tag", first, new_digest=True, plan_changed=False)


def test_a_plain_push_is_answered_early_and_the_registry_is_still_checked(
    host_python: str, tmp_path: Path
) -> None:
    env = stage_environment(
        host_python, CROSSDOCK_CACHE_DIR=str(tmp_path / "cache"), SOURCE_DATE_EPOCH="1700000000"
    )
    project = copy_example(tmp_path / "example", env)
    for command in (["init", "--quiet"], ["add", "-A"], ["commit", "--quiet", "-m", "example"]):
        subprocess.run([*_GIT, *command], cwd=project, check=True)
    reference = f"{REGISTRY}/tests-{uuid.uuid4().hex[:10]}/pushed:latest"
    args = ["-C", str(project), "--service", "api", "--platform", "linux/arm64"]
    args += ["--push", reference, "--json"]

    def pushed(answer: Answer) -> dict[str, int]:
        counts: dict[str, int] = json.loads(answer.run.stdout)["push"]["pushed"]
        return counts

    first = _build_probed(args, env)
    assert not first.shortcut
    assert pushed(first)["blobs_uploaded"] > 0
    again = _build_probed(args, env)
    assert again.shortcut
    assert again.index_digest == first.index_digest
    assert pushed(again)["blobs_uploaded"] == 0
    assert pushed(again)["tags_set"] == 0
    # Every blob, manifest, referrer and tag was found in place through the light client.
    assert not {"httpx", "stamina"} & again.modules
    release, first_release = (json.loads(a.run.stdout)["push"] for a in (again, first))
    assert {t["tag"]: t["status"] for t in release["tags"]} == {
        t["tag"]: "unchanged" for t in first_release["tags"]
    }
    for key in ("repository", "index", "manifests", "blobs", "bytes"):
        assert release[key] == first_release[key], key
    # The tag moved in the registry (nothing crossdock reads changed): the answer from the record
    # still releases, checking the registry, and points the tag back at the build.
    _copy_image(STAGE_BASE, reference)
    moved = _build_probed(args, env)
    assert moved.shortcut
    assert pushed(moved)["tags_set"] >= 1
    assert "httpx" in moved.modules  # the light client found a tag to write: the full release
    expected = json.loads(first.run.stdout)["push"]["tags"]
    tagged = {t["tag"]: t["digest"] for t in expected}
    raw = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{reference}"],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    assert f"sha256:{hashlib.sha256(raw).hexdigest()}" == tagged["latest"]


@pytest.fixture
def own_registry(tmp_path: Path) -> Iterator[Registry]:
    """A registry of this test's own (distribution, deletes enabled), to change beneath it."""
    registry = Registry(tmp_path / "registry", delete=True)
    yield registry
    registry.stop()


_ACCEPT = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)


@dataclass(frozen=True)
class _Pushed:
    """A repository a build pushed to, read and changed over the registry's API."""

    registry: Registry
    repository: str

    @property
    def api(self) -> str:
        return f"http://{self.registry.host}/v2/{self.repository}"

    def digest(self, reference: str) -> str | None:
        head = httpx.head(f"{self.api}/manifests/{reference}", headers={"Accept": _ACCEPT})
        return head.headers.get("docker-content-digest") if head.status_code == 200 else None

    def referrers(self, subject: str) -> list[str]:
        """The fallback tag's index (distribution 2.8 has no referrers API)."""
        fallback = f"{self.api}/manifests/{subject.replace(':', '-')}"
        index = httpx.get(fallback, headers={"Accept": _ACCEPT})
        return [m["digest"] for m in index.json()["manifests"]]

    def delete(self, digest: str) -> None:
        assert httpx.delete(f"{self.api}/manifests/{digest}").status_code == 202

    def tag(self, tag: str, digest: str) -> None:
        manifest = httpx.get(f"{self.api}/manifests/{digest}", headers={"Accept": _ACCEPT})
        put = httpx.put(
            f"{self.api}/manifests/{tag}",
            content=manifest.content,
            headers={"Content-Type": manifest.headers["content-type"]},
        )
        assert put.status_code == 201


@needs_tools("docker-registry")
def test_a_no_op_push_reads_each_tag_and_referrer_once_and_pushes_back_each_change(
    host_python: str, tmp_path: Path, own_registry: Registry
) -> None:
    """A no-op to a registry that holds the release asks for the base's tag, then each tag, what
    no tag names, the SBOM and where it is listed: no blob, no write (sinks/held.py). Each
    change made at the registry beneath it is found by the next no-op, which pushes it back; the
    one after that is answered with no write again."""
    env = stage_environment(
        host_python, CROSSDOCK_CACHE_DIR=str(tmp_path / "cache"), SOURCE_DATE_EPOCH="1700000000"
    )
    project = copy_example(tmp_path / "example", env)
    pushed = _Pushed(own_registry, "tests/pushed")
    args = ["-C", str(project), "--service", "api", "--platform", "linux/arm64"]
    args += ["--push", f"{own_registry.host}/{pushed.repository}:latest", "--json"]
    first = _build_probed(args, env)
    assert first.how == "full"
    release = json.loads(first.run.stdout)["push"]
    tags = {t["tag"]: t["digest"] for t in release["tags"]}
    assert sorted(tags) == ["latest", "latest-arm64"]
    arm64 = tags["latest-arm64"]
    (sbom,) = pushed.referrers(arm64)
    # What no tag names (with one platform, the index) is asked for by its digest.
    untagged = {release["index"], *release["manifests"].values()} - set(tags.values())
    path = f"/v2/{pushed.repository}"
    held = sorted(
        [f"HEAD {path}/manifests/{tag}" for tag in tags]
        + [f"HEAD {path}/manifests/{digest}" for digest in (*untagged, sbom)]
        + [f"GET {path}/referrers/{arm64}", f"GET {path}/manifests/{arm64.replace(':', '-')}"]
    )

    def answered_without_a_write(what: str) -> None:
        answer = _build_probed(args, env)
        assert answer.shortcut, what
        assert "httpx" not in answer.modules, what  # the light client only: nothing written
        base, *rest = answer.sent
        assert base.startswith("GET ") and "/manifests/" in base, what  # the base's tag
        assert sorted(rest) == held, what

    def pushed_back(what: str) -> None:
        answer = _build_probed(args, env)
        assert answer.shortcut, what  # answered from the record, the release pushed
        assert "httpx" in answer.modules, what  # the full client wrote
        assert answer.index_digest == first.index_digest, what
        for tag, digest in tags.items():
            assert pushed.digest(tag) == digest, (what, tag)
        for digest in (arm64, sbom, release["index"]):
            assert pushed.digest(digest) == digest, (what, digest)

    answered_without_a_write("unchanged")
    changes: list[tuple[str, Callable[[], None]]] = [
        ("a tag deleted", lambda: own_registry.remove_tag(pushed.repository, "latest-arm64")),
        (
            "a tag moved to another manifest",
            lambda: pushed.tag("latest", arm64 if tags["latest"] != arm64 else release["index"]),
        ),
        # (distribution deletes the tags on a manifest with it)
        ("the platform's manifest deleted", lambda: pushed.delete(arm64)),
        ("the index deleted", lambda: pushed.delete(release["index"])),
        ("the SBOM deleted", lambda: pushed.delete(sbom)),
    ]
    for what, change in changes:
        change()
        pushed_back(what)
        answered_without_a_write(f"after {what}")


def _edit_and_restore(path: Path, check: Callable[[], None], line: str = "# edited") -> None:
    text = path.read_text()
    path.write_text(f"{line}\n{text}")  # first: above any table
    try:
        check()
    finally:
        path.write_text(text)


def _copy_image(source: str, destination: str, *, docker_format: bool = False) -> None:
    command = ["skopeo", "copy", "--all", "--src-tls-verify=false", "--dest-tls-verify=false"]
    if docker_format:
        command += ["--format", "v2s2"]
    subprocess.run(
        [*command, f"docker://{source}", f"docker://{destination}"],
        check=True,
        capture_output=True,
        timeout=300,
    )


def test_a_code_edit_is_rebuilt_early_to_the_digests_of_a_cold_build(
    host_python: str, tmp_path: Path
) -> None:
    """A code-only change is rebuilt on the recorded plan before typer and pydantic are imported
    (issue 14), written to another folder by the same command line: the dependency layers come
    from the cache, every manifest digest is the one a cold build of the same edited source
    gives, and every check still runs: a wrong-architecture library brought in by the edit is
    refused on that path too."""
    env = stage_environment(
        host_python, CROSSDOCK_CACHE_DIR=str(tmp_path / "cache"), SOURCE_DATE_EPOCH="1700000000"
    )
    project = copy_example(tmp_path / "example", env)
    app = project / "backend" / "api" / "app"
    main = app / "main.py"

    def manifests(layout: Path) -> list[str]:
        index = json.loads((layout / "index.json").read_text())
        return [m["digest"] for m in index["manifests"]]

    for number, platforms in enumerate(("linux/arm64,linux/amd64", "linux/amd64")):
        args = ["-C", str(project), "--service", "api", "--platform", platforms, "--json"]

        def into(name: str, args: list[str] = args, number: int = number) -> list[str]:
            return [*args, "--oci-layout", str(tmp_path / f"{name}-{number}")]

        assert _build_probed(into("first"), env).how == "full"
        main.write_text(main.read_text() + f"\n# edited for {platforms}\n")
        edited = _build_probed(into("edited"), env)
        assert edited.how == "rebuilt"
        # The base's tag read over the standard library, its documents and layers from the
        # cache, the trees cached: no HTTP stack imported.
        assert not {"httpx", "stamina", "crossdock.registry.client"} & edited.modules
        assert FROM_RECORD not in edited.run.stderr
        for report in json.loads(edited.run.stdout)["platforms"]:
            assert {la["role"]: la["cached"] for la in report["layers"]}["dependencies"] is True
        cold = _build_probed(
            into("cold"), {**env, "CROSSDOCK_CACHE_DIR": str(tmp_path / f"cold-cache-{number}")}
        )
        assert cold.how == "full"
        assert cold.index_digest == edited.index_digest
        assert manifests(tmp_path / f"cold-{number}") == manifests(tmp_path / f"edited-{number}")

    args = ["-C", str(project), "--service", "api", "--platform", "linux/arm64", "--json"]
    assert _build_probed([*args, "--oci-layout", str(tmp_path / "arm64")], env).how == "full"
    native = app / "_speedups.cpython-313-aarch64-linux-gnu.so"
    native.write_bytes((REPO_ROOT / "tests" / "data" / "verify" / "x86_64-puts.so").read_bytes())
    refused, loaded = _probed([*args, "--oci-layout", str(tmp_path / "refused")], env)
    # Built on the recorded plan (no configuration loaded; printing the error imports typer).
    assert "crossdock.config.model" not in loaded
    assert "crossdock.verify" in loaded
    assert refused.returncode == 6, refused.output  # VerificationError
    assert "_speedups.cpython-313-aarch64-linux-gnu.so" in refused.output
    assert not (tmp_path / "refused" / "index.json").exists()
