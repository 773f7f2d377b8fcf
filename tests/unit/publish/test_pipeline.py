"""The release as a library function (offline): where it goes, the target's check, dry runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from crossdock.errors import AuthError, ConfigError, TargetError
from crossdock.publish.pipeline import Publishing, prepare_release, release
from crossdock.publish.release import ReleaseRequest
from crossdock.registry.reference import Reference
from tests.support.images import image_set
from tests.support.registry import Canned, Seen


def test_no_destination_is_no_release_and_a_dry_run_without_one_is_refused() -> None:
    assert prepare_release(None) == (None, None)
    with pytest.raises(ConfigError, match="--dry-run needs somewhere to push"):
        prepare_release(None, dry_run=True)


def test_an_explicit_destination_names_repository_and_tag() -> None:
    # Naming only: the destination is not asked (tests below ask an in-process registry).
    _, publishing = prepare_release(
        None, to="docker://127.0.0.1:5555/team/api:1.0", check_access=False
    )
    assert publishing is not None
    assert publishing.request.repository == Reference("127.0.0.1:5555", "team/api")
    assert publishing.request.tag == "1.0"
    assert publishing.where == "127.0.0.1:5555/team/api"
    _, default = prepare_release(None, to="127.0.0.1:5555/team/api", tag="2.0", check_access=False)
    assert default is not None and default.request.tag == "2.0"
    with pytest.raises(ConfigError, match="not to a digest"):
        prepare_release(None, to="127.0.0.1:5555/team/api@sha256:" + "0" * 64)


def test_a_dry_run_plans_tags_and_opens_no_connection(tmp_path: Path) -> None:
    # The unit conftest fails any connection: a dry run that touched a registry would fail.
    _, publishing = prepare_release(None, to="127.0.0.1:5555/team/api", tag="2.0", dry_run=True)
    assert publishing is not None
    images = image_set(tmp_path)
    messages: list[str] = []
    result = release(publishing, images, progress=lambda _p, m: messages.append(m))
    assert result.report is None
    assert images.index is not None
    assert {t.tag: t.digest for t in result.plan.tags} == {
        "2.0": images.index.digest,
        "2.0-arm64": images.images[0].digest,
        "2.0-amd64": images.images[1].digest,
    }
    assert messages == ["dry run: nothing pushed to 127.0.0.1:5555/team/api"]


def test_the_target_refuses_what_it_cannot_run_unless_the_build_already_checked(
    tmp_path: Path,
) -> None:
    request = ReleaseRequest(Reference.parse("127.0.0.1:5555/team/fn"), None, tag="1.0")
    publishing = Publishing(request, dry_run=True, target="lambda")
    images = image_set(tmp_path)  # an index: Lambda cannot run one
    with pytest.raises(TargetError, match="target lambda cannot run this build"):
        release(publishing, images)
    # build() runs the same check before writing anything; it is not repeated.
    assert release(publishing, images, checked=True).report is None


def test_a_target_without_a_config_still_applies(tmp_path: Path) -> None:
    """`crossdock push LAYOUT --target lambda --to REPO` (no project): Lambda's rules apply, so an
    index is refused before anything is pushed (it was pushed, exit 0, when only a config's
    target counted)."""
    _, publishing = prepare_release(
        None, to="127.0.0.1:5555/team/api:1.0", target="lambda", check_access=False
    )
    assert publishing is not None
    assert publishing.target == "lambda"
    assert publishing.request.single_manifests
    with pytest.raises(TargetError, match="accepts only single-architecture manifests"):
        release(publishing, image_set(tmp_path))
    _, untargeted = prepare_release(None, to="127.0.0.1:5555/team/api:1.0", check_access=False)
    assert untargeted is not None and untargeted.target is None


def test_a_destination_that_refuses_the_push_fails_before_the_build(registry, tmp_path) -> None:
    """prepare_release asks the destination (the build comes after it): credentials the
    registry refuses are the error, and nothing is left there; a dry run asks nothing."""

    def refuse_everyone(_seen: Seen) -> Canned:
        return Canned(401, b"", {"WWW-Authenticate": 'Basic realm="registry"'})

    registry.intercept = refuse_everyone
    with pytest.raises(AuthError, match=f"registry {registry.host} requires credentials"):
        prepare_release(None, to=f"{registry.host}/team/api:1.0")
    assert [(r.method, r.path) for r in registry.requests] == [("GET", "/v2/")] * 2
    registry.requests.clear()
    _, planned = prepare_release(None, to=f"{registry.host}/team/api:1.0", dry_run=True)
    assert planned is not None
    assert registry.requests == []


def test_a_destination_that_takes_the_push_is_released_to(registry, tmp_path) -> None:
    _, publishing = prepare_release(None, to=f"{registry.host}/team/api:1.0")
    assert publishing is not None
    assert registry.uploads == {}  # the probe's session was cancelled
    result = release(publishing, image_set(tmp_path))
    assert result.report is not None
    assert {tag for (_, tag) in registry.manifests} >= {"1.0", "1.0-arm64", "1.0-amd64"}
