from datetime import UTC, datetime, timedelta, timezone

import pytest

from crossdock.errors import ConfigError
from crossdock.image import ImageSet
from crossdock.platform import AMD64, ARM64
from crossdock.publish.tags import TagAssignment, format_timestamp, plan_tags, tag_digests
from tests.support.images import index_over, platform_image

TS = datetime(2025, 6, 7, 8, 9, 10, tzinfo=UTC)


def as_pairs(assignments):
    return [(a.tag, a.points_to) for a in assignments]


def test_arm64_only_gets_all_six_tags_on_its_manifest():
    tags = plan_tags("prod", TS, "abc1234", [ARM64], ARM64, single_manifests=False)
    assert as_pairs(tags) == [
        ("prod-20250607-080910", ARM64),
        ("prod-20250607-080910-arm64", ARM64),
        ("prod-arm64-latest", ARM64),
        ("prod-latest", ARM64),
        ("abc1234-arm64", ARM64),
        ("abc1234", ARM64),
    ]


def test_multi_arch_with_index_unsuffixed_tags_point_to_the_index():
    tags = plan_tags("dev", TS, "abc1234", [ARM64, AMD64], ARM64, single_manifests=False)
    assert as_pairs(tags) == [
        ("dev-20250607-080910", "index"),
        ("dev-20250607-080910-arm64", ARM64),
        ("dev-20250607-080910-amd64", AMD64),
        ("dev-arm64-latest", ARM64),
        ("dev-amd64-latest", AMD64),
        ("dev-latest", "index"),
        ("abc1234-arm64", ARM64),
        ("abc1234-amd64", AMD64),
        ("abc1234", "index"),
    ]


def test_lambda_multi_arch_unsuffixed_tags_point_to_the_production_manifest():
    tags = plan_tags("dev", TS, "abc1234", [AMD64, ARM64], ARM64, single_manifests=True)
    unsuffixed = {a.tag: a.points_to for a in tags if "arm64" not in a.tag and "amd64" not in a.tag}
    assert unsuffixed == {"dev-20250607-080910": ARM64, "dev-latest": ARM64, "abc1234": ARM64}
    assert "index" not in {str(a.points_to) for a in tags}


def test_other_architectures_get_only_suffixed_tags():
    tags = plan_tags("dev", TS, "abc1234", [AMD64], ARM64, single_manifests=False)
    assert as_pairs(tags) == [
        ("dev-20250607-080910-amd64", AMD64),
        ("dev-amd64-latest", AMD64),
        ("abc1234-amd64", AMD64),
    ]


def test_custom_templates_and_template_errors():
    tags = plan_tags(
        "prod", "20250101-000000", "deadbee", [ARM64], ARM64,
        single_manifests=True, templates=["release-{sha}", "{arch}-{env}"],
    )  # fmt: skip
    assert as_pairs(tags) == [("release-deadbee", ARM64), ("arm64-prod", ARM64)]
    with pytest.raises(ConfigError, match="unknown field"):
        plan_tags("d", TS, "s", [ARM64], single_manifests=True, templates=["{branch}"])
    with pytest.raises(ConfigError, match="twice"):
        plan_tags("d", TS, "s", [ARM64, AMD64], single_manifests=True, templates=["{env}-x"] * 2)
    with pytest.raises(ConfigError, match="not a valid tag"):
        plan_tags("d", TS, "s", [ARM64], single_manifests=True, templates=["-{env}"])
    with pytest.raises(ConfigError, match="YYYYMMDD"):
        plan_tags("d", "2025-01-01", "s", [ARM64], single_manifests=True)


def test_timestamps_are_utc():
    cest = timezone(timedelta(hours=2))
    assert format_timestamp(datetime(2025, 1, 1, 1, 30, tzinfo=cest)) == "20241231-233000"
    with pytest.raises(ConfigError):
        format_timestamp(datetime(2025, 1, 1))  # noqa: DTZ001 - the point of the test


def image(platform, marker):
    return platform_image(platform, config={"Labels": {"marker": marker}})


def test_tag_digests_resolve_index_and_platforms():
    arm, amd = image(ARM64, "a"), image(AMD64, "b")
    index = index_over([arm, amd])
    image_set = ImageSet((arm, amd), index)
    plan = plan_tags("dev", TS, "abc1234", [ARM64, AMD64], single_manifests=False)
    digests = tag_digests(plan, image_set)
    assert digests["dev-latest"] == index.digest
    assert digests["dev-amd64-latest"] == amd.digest
    assert digests["abc1234-arm64"] == arm.digest
    with pytest.raises(ConfigError, match="has none"):
        tag_digests(plan, ImageSet((arm, amd), None))
    with pytest.raises(ConfigError, match="does not have"):
        tag_digests([TagAssignment("x", AMD64)], ImageSet((arm,), None))


@pytest.mark.parametrize(
    "template",
    ["{env:%}", "{env:{sha}}", "{env:{nope}}", "{sha:>1000000000}", "{env!z}"],
    ids=["bad-spec", "nested-field", "nested-unknown-field", "huge-width", "bad-conversion"],
)
def test_a_template_whose_format_spec_cannot_make_a_tag_is_a_config_error(template):
    # A ValueError or KeyError escaped, and a width of a billion built a gigabyte string
    # before the tag was found invalid.
    with pytest.raises(ConfigError, match="tag template"):
        plan_tags(
            "prod",
            "20260101-000000",
            "abc1234",
            [ARM64],
            single_manifests=False,
            templates=[template],
        )


def test_a_precision_in_a_template_still_shortens_a_field():
    tags = plan_tags(
        "prod",
        "20260101-000000",
        "abc1234ef",
        [ARM64],
        single_manifests=False,
        templates=["{sha:.7}"],
    )
    assert [t.tag for t in tags] == ["abc1234"]
