import pytest

from crossdock.build import make_plan
from crossdock.config import load_config
from crossdock.errors import TargetError
from crossdock.image.artifact import ImageSet
from crossdock.image.config import HistoryEntry
from crossdock.image.mediatypes import MediaType
from crossdock.plan import PYTHON_PLACEHOLDER
from crossdock.platform import AMD64, ARM64, Platform
from crossdock.targets import TARGETS, target_spec
from tests.support.images import index_over, layer, platform_image

LAMBDA_BASE_ENV = {"LAMBDA_TASK_ROOT": "/var/task", "PATH": "/var/lang/bin:/usr/bin"}
PLAIN_BASE_ENV = {"PATH": "/usr/local/bin:/usr/bin", "LANG": "C.UTF-8"}


@pytest.fixture
def config(tmp_path):
    service = tmp_path / "backend" / "api"
    service.mkdir(parents=True)
    (service / "pyproject.toml").write_text(
        '[project]\nname = "api"\nversion = "0"\n'
        '[tool.crossdock]\nlambda-handler = "app.fn.handle"\nport = 9000\n'
        'health-path = "/ready"\n'
    )
    return load_config(project_dir=tmp_path, service="api", environ={})


def lambda_plan(config):
    return make_plan(config.model_copy(update={"target": "lambda"}))


def test_lambda_on_lambda_base_keeps_the_base_entrypoint_and_runs_the_handler(config):
    runtime = lambda_plan(config).runtime_for_base(LAMBDA_BASE_ENV, ["numpy"])
    assert runtime.entrypoint is None  # the base's /lambda-entrypoint.sh stays
    assert runtime.cmd == ("app.fn.handle",)
    assert runtime.working_dir == "/var/task"


def test_lambda_on_plain_base_runs_awslambdaric_when_it_is_locked(config):
    runtime = lambda_plan(config).runtime_for_base(PLAIN_BASE_ENV, ["numpy", "AwsLambdaRIC"])
    assert runtime.entrypoint == (PYTHON_PLACEHOLDER, "-m", "awslambdaric")
    assert runtime.cmd == ("app.fn.handle",)
    assert runtime.env["PYTHONPATH"] == "/var/task"
    assert runtime.env["LAMBDA_TASK_ROOT"] == "/var/task"
    assert runtime.with_python("/usr/bin/python3.13").entrypoint == (
        "/usr/bin/python3.13",
        "-m",
        "awslambdaric",
    )


def test_lambda_on_plain_base_without_awslambdaric_fails_with_what_to_do(config):
    with pytest.raises(TargetError) as caught:
        lambda_plan(config).runtime_for_base(PLAIN_BASE_ENV, ["numpy", "fastapi"])
    text = str(caught.value)
    assert "awslambdaric" in text
    assert "add awslambdaric to the service's dependencies" in text
    assert "or use the Lambda base" in text


def test_the_plan_carries_the_base_dependent_choice(config):
    lambda_config = config.model_copy(update={"target": "lambda"})
    plan = make_plan(lambda_config)
    assert plan.base_dependent_runtime is not None
    assert plan.runtime_for_base(LAMBDA_BASE_ENV, ()).cmd == ("app.fn.handle",)
    with pytest.raises(TargetError):
        plan.runtime_for_base(PLAIN_BASE_ENV, ("numpy",))
    eks_plan = make_plan(config.model_copy(update={"target": "eks"}))
    assert eks_plan.base_dependent_runtime is None
    # Targets whose runtime does not depend on the base ignore the lock.
    assert eks_plan.runtime_for_base(PLAIN_BASE_ENV, ()) == eks_plan.runtime


@pytest.mark.parametrize("name", ["apprunner", "eks"])
def test_web_targets_serve_uvicorn_on_all_interfaces_and_the_configured_port(config, name):
    runtime = target_spec(name).runtime(config)
    assert runtime.entrypoint == ()  # drops the base's (a Lambda base's, for instance)
    assert runtime.cmd is not None
    assert runtime.cmd[:3] == (PYTHON_PLACEHOLDER, "-m", "uvicorn")
    assert runtime.cmd[-4:] == ("--host", "0.0.0.0", "--port", "9000")  # noqa: S104
    assert runtime.exposed_ports == (9000,)
    assert runtime.user == "65534:65534"


def test_targets_record_what_they_accept():
    assert TARGETS["lambda"].accepts_index is False
    assert TARGETS["eks"].accepts_index is True
    assert MediaType.OCI_LAYER_ZSTD not in TARGETS["lambda"].layer_media_types
    for spec in TARGETS.values():
        assert spec.architectures == {"amd64", "arm64"}


def test_apprunner_arm64_is_a_warning_not_an_error():
    assert target_spec("apprunner").check_platforms((AMD64,)) == ()
    warnings = target_spec("apprunner").check_platforms((ARM64, AMD64))
    assert len(warnings) == 1
    assert "linux/arm64" in warnings[0]
    assert "not documented" in warnings[0]
    assert target_spec("eks").check_platforms((ARM64, AMD64)) == ()


def test_a_platform_the_target_cannot_run_is_refused():
    with pytest.raises(TargetError, match="does not run linux/s390x"):
        target_spec("lambda").check_platforms((Platform("linux", "s390x"),))


# -- output checks --------------------------------------------------------------------------


def _image(tmp_path, platform, *, layer_type=MediaType.OCI_LAYER_GZIP, history_entries=2):
    # Real layers: the Lambda preflight reads their entries.
    layers = [
        layer(tmp_path, {f"opt/{platform.architecture}/layer{n}.txt": b"x"}, media_type=layer_type)
        for n in range(2)
    ]
    history = [HistoryEntry(f"step {n}").to_json() for n in range(history_entries)]
    return platform_image(
        platform, layers, history=[*history, HistoryEntry("ENV X=1", empty_layer=True).to_json()]
    )


def test_single_manifests_with_gzip_layers_and_history_are_fine_for_lambda(tmp_path):
    images = (_image(tmp_path, ARM64), _image(tmp_path, AMD64))
    assert target_spec("lambda").output_problems(ImageSet(images, None)) == ()
    target_spec("lambda").check_output(ImageSet(images, None))


def test_an_index_is_refused_for_lambda_and_fine_for_eks(tmp_path):
    images = (_image(tmp_path, ARM64), _image(tmp_path, AMD64))
    image_set = ImageSet(images, index_over(images))
    with pytest.raises(TargetError, match="accepts only single-architecture manifests"):
        target_spec("lambda").check_output(image_set)
    target_spec("eks").check_output(image_set)


def test_zstd_layers_and_missing_history_are_refused_for_lambda(tmp_path):
    zstd = _image(tmp_path, ARM64, layer_type=MediaType.OCI_LAYER_ZSTD)
    problems = target_spec("lambda").output_problems(ImageSet((zstd,), None))
    assert len(problems) == 2
    assert all("tar+zstd" in p and "lambda-media-type" in p for p in problems)
    no_history = _image(tmp_path, AMD64, history_entries=1)
    problems = target_spec("lambda").output_problems(ImageSet((no_history,), None))
    expected = (
        f"linux/amd64 image {no_history.digest}: 2 layers but 1 history entries for them "
        "(Lambda refuses such images: UnsupportedImageLayerDetected)"
    )
    assert problems == (expected,)
