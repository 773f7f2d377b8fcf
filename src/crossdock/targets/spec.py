"""What each deployment target accepts and how images for it are laid out.

Facts (with their sources) rather than code paths: adding a target is adding a ``TargetSpec``.

Two moments use these facts:

* before a build: ``check_platforms`` refuses architectures a target cannot run and warns about
  those whose support is undocumented (App Runner arm64);
* after a build, before anything is written or pushed: ``check_output`` refuses an image set the
  target cannot run (an index behind a Lambda tag, a zstd layer, a missing history entry).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from crossdock.errors import ConfigError, TargetError
from crossdock.image.artifact import ImageSet, PlatformImage
from crossdock.image.mediatypes import MediaType
from crossdock.plan import PYTHON_PLACEHOLDER, BaseDependentRuntime, RuntimeSettings
from crossdock.platform import Platform
from crossdock.project import Command, ServedApp, choose_entrypoint

if TYPE_CHECKING:
    from crossdock.config.model import Config

__all__ = ["LAMBDA_BASE_MARKER", "RUNTIME_INTERFACE_CLIENT", "TARGETS", "TargetSpec", "target_spec"]

# The Lambda base images set this in their config's Env; a plain Python base does not.
LAMBDA_BASE_MARKER = "LAMBDA_TASK_ROOT"
# The runtime interface client: on a plain Python base it is the entrypoint and must be locked.
RUNTIME_INTERFACE_CLIENT = "awslambdaric"

_GZIP_LAYERS = frozenset({MediaType.OCI_LAYER_GZIP, MediaType.DOCKER_LAYER_GZIP})
_IMAGE_MANIFESTS = frozenset({MediaType.OCI_MANIFEST, MediaType.DOCKER_MANIFEST})


@dataclass(frozen=True)
class TargetSpec:
    name: str
    default_base: str
    # Where the service's own code goes, and where its dependencies go.
    app_dir: str
    deps_dir: str
    # Lambda rejects image indexes (docker/buildx#1533, aws/aws-lambda-roadmap#82).
    single_manifests: bool
    # Architectures the runtime runs (OCI names, which are also kubernetes.io/arch values).
    architectures: frozenset[str]
    serves_http: bool
    # Run as an unprivileged user when the base has one (numeric: no passwd lookup needed).
    user: str | None
    note: str
    # What a registry reference handed to the runtime may name: an index, or only an image.
    accepts_index: bool = True
    manifest_media_types: frozenset[str] = _IMAGE_MANIFESTS
    # Layer media types the runtime can unpack (Lambda: gzip only, rules_oci#645/#777).
    layer_media_types: frozenset[str] = _GZIP_LAYERS
    # Lambda refuses layers without a history entry (UnsupportedImageLayerDetected).
    needs_history_per_layer: bool = False
    # Architectures accepted but not documented as supported: a warning, not an error.
    undocumented_architectures: frozenset[str] = frozenset()
    # Run the Lambda preflight (verify/lambda_preflight.py) on every image before it is written.
    lambda_preflight: bool = False
    # The image runs a function handler through the Lambda runtime interface (the Lambda base's
    # entrypoint, or awslambdaric on a plain Python base) instead of a server command.
    runs_handler: bool = False

    # -- runtime settings -------------------------------------------------------------------

    def runtime(self, config: Config) -> RuntimeSettings:
        """How an image of this target starts; ``{python}`` is the base's interpreter.

        For Lambda this is the Lambda base's way; ``base_dependent_runtime`` holds the plain
        Python base's alternative, chosen once the base's config is read.
        """
        if self.runs_handler:
            # The Lambda base's entrypoint runs the runtime interface client; CMD is the handler.
            return RuntimeSettings(
                cmd=(config.lambda_handler,),
                working_dir=self.app_dir,
                env={LAMBDA_BASE_MARKER: self.app_dir},
            )
        command = self._command(config)
        # CMD, not ENTRYPOINT: `docker run IMAGE other command` then works as people expect;
        # the empty entrypoint drops any the base had (a Lambda base's, for instance).
        return RuntimeSettings(
            entrypoint=(),
            cmd=command,
            working_dir=self.app_dir,
            env={
                "PYTHONPATH": f"{self.app_dir}:{self.deps_dir}",
                "PYTHONUNBUFFERED": "1",
                "PORT": str(config.port),
            },
            user=self.user,
            exposed_ports=(config.port,),
            path_prepend=(f"{self.deps_dir}/bin",),
        )

    def _command(self, config: Config) -> tuple[str, ...]:
        """The argv a web service's image runs, from what its project says (the order is
        crossdock.project.entrypoint's)."""
        entry = choose_entrypoint(
            service=config.service,
            command=config.command,
            app=config.app,
            server=config.server,
            scripts=config.project.scripts,
            packaged=config.project.packaged,
        )
        if isinstance(entry, Command):
            return entry.argv
        if isinstance(entry, ServedApp):
            return (PYTHON_PLACEHOLDER, *entry.server.argv(entry.app, config.port))
        # A console script, installed from the project's wheel with the image's Python in its
        # shebang; named by its absolute path so that no PATH lookup is involved.
        return (f"{self.deps_dir}/bin/{entry.name}",)

    def base_dependent_runtime(self, config: Config) -> BaseDependentRuntime | None:
        """The runtime choice a backend makes once it knows the base (None: ``runtime`` holds).

        Lambda on a plain Python base (no ``LAMBDA_TASK_ROOT`` in its env): nothing in the base
        sets PYTHONPATH or runs the handler, so the image runs ``python -m awslambdaric HANDLER``
        itself, with the task root on PYTHONPATH; awslambdaric must then be a locked dependency
        so that it is installed for the target platform like the others.
        """
        if not self.runs_handler:
            return None
        plain = RuntimeSettings(
            entrypoint=(PYTHON_PLACEHOLDER, "-m", RUNTIME_INTERFACE_CLIENT),
            cmd=(config.lambda_handler,),
            working_dir=self.app_dir,
            env={
                LAMBDA_BASE_MARKER: self.app_dir,
                "PYTHONPATH": self.app_dir
                if self.app_dir == self.deps_dir
                else f"{self.app_dir}:{self.deps_dir}",
                "PYTHONUNBUFFERED": "1",
            },
            path_prepend=(f"{self.deps_dir}/bin",),
        )
        return BaseDependentRuntime(
            marker_env=LAMBDA_BASE_MARKER,
            when_marked=self.runtime(config),
            otherwise=plain,
            otherwise_requires=(RUNTIME_INTERFACE_CLIENT,),
            otherwise_hint=f"add {RUNTIME_INTERFACE_CLIENT} to the service's dependencies "
            f"(`uv add {RUNTIME_INTERFACE_CLIENT}` in {config.service_dir}), or use the Lambda "
            f"base ({self.default_base})",
        )

    # -- what the target accepts ------------------------------------------------------------

    def check_platforms(self, platforms: tuple[Platform, ...]) -> tuple[str, ...]:
        """Refuse platforms the target cannot run; return warnings for undocumented ones."""
        refused = [p for p in platforms if p.architecture not in self.architectures]
        if refused:
            raise TargetError(
                f"target {self.name} does not run {', '.join(str(p) for p in refused)}",
                hint=f"{self.name} runs {', '.join(sorted(self.architectures))}",
            )
        return tuple(
            f"target {self.name}: {p} is not documented as supported; {self.note}"
            for p in platforms
            if p.architecture in self.undocumented_architectures
        )

    def output_problems(
        self, image_set: ImageSet, *, cache_dir: Path | None = None
    ) -> tuple[str, ...]:
        """Everything in ``image_set`` this target cannot run, as sentences (empty: fine).
        ``cache_dir`` (crossdock's cache folder) keeps layer member indexes by digest."""
        problems: list[str] = []
        if image_set.index is not None and not self.accepts_index:
            problems.append(
                f"an image index {image_set.index.digest}: {self.name} accepts only "
                "single-architecture manifests (one per platform, each with its own tag)"
            )
        for image in image_set.images:
            where = f"{image.platform} image {image.digest}"
            if self.lambda_preflight:
                # The preflight covers architecture and media types, naming Lambda's errors.
                problems.extend(self._preflight_problems(image, where, cache_dir))
            else:
                problems.extend(self._generic_problems(image, where))
            if self.needs_history_per_layer:
                history = image.config.data.get("history") or []
                real = [h for h in history if not h.get("empty_layer")]
                if len(real) != len(image.layers):
                    problems.append(
                        f"{where}: {len(image.layers)} layers but {len(real)} history entries "
                        "for them (Lambda refuses such images: UnsupportedImageLayerDetected)"
                    )
        return tuple(problems)

    def _generic_problems(self, image: PlatformImage, where: str) -> list[str]:
        problems: list[str] = []
        if image.platform.architecture not in self.architectures:
            problems.append(f"{where}: {self.name} does not run {image.platform.architecture}")
        if image.manifest.media_type not in self.manifest_media_types:
            problems.append(f"{where}: manifest media type {image.manifest.media_type}")
        accepted = ", ".join(sorted(self.layer_media_types))
        problems.extend(
            f"{where}: layer {layer.descriptor.digest} has media type "
            f"{layer.descriptor.media_type} (accepted: {accepted})"
            for layer in image.layers
            if layer.descriptor.media_type not in self.layer_media_types
        )
        return problems

    @staticmethod
    def _preflight_problems(image: PlatformImage, where: str, cache_dir: Path | None) -> list[str]:
        # Imported here: the verifier is not needed to plan a build or to check other targets.
        from crossdock.verify.lambda_preflight import (
            PreflightImage,
            PreflightLayer,
            lambda_preflight,
        )

        findings, _ = lambda_preflight(
            PreflightImage(
                manifest_media_type=image.manifest.media_type,
                config_media_type=image.manifest.config.media_type,
                config=image.config,
                layers=tuple(
                    PreflightLayer(b.descriptor.media_type, b.descriptor.digest, b.path)
                    for b in image.layers
                ),
                behind_index=False,  # the index, if any, is reported once above
            ),
            index_cache=cache_dir,
        )
        return [
            f"{where}: {f.check} {f.file.path}"
            + (f" (layer {f.file.layer_index})" if f.file.layer_index is not None else "")
            + f": expected {f.expected}, found {f.found}"
            for f in findings
        ]

    def check_output(self, image_set: ImageSet, *, cache_dir: Path | None = None) -> None:
        """Raise TargetError when ``image_set`` is not something this target can run; call it
        before anything is written or pushed."""
        problems = self.output_problems(image_set, cache_dir=cache_dir)
        if problems:
            raise TargetError(
                f"target {self.name} cannot run this build; nothing was pushed:\n  "
                + "\n  ".join(problems),
                hint=self.note,
            )


# What the web-service targets (App Runner, EKS) share: a server on a port, as a non-root user.
_WEB_SERVICE = TargetSpec(
    name="web",
    default_base="python:3.13-slim",
    app_dir="/app",
    deps_dir="/opt/crossdock/packages",
    single_manifests=False,
    architectures=frozenset({"amd64", "arm64"}),
    serves_http=True,
    user="65534:65534",
    note="",
)

TARGETS: dict[str, TargetSpec] = {
    "lambda": TargetSpec(
        name="lambda",
        default_base="public.ecr.aws/lambda/python:3.13",
        app_dir="/var/task",
        deps_dir="/var/task",
        single_manifests=True,
        architectures=frozenset({"amd64", "arm64"}),
        serves_http=False,
        user=None,
        note="Lambda needs one single-architecture manifest per function; code and "
        "dependencies live in LAMBDA_TASK_ROOT=/var/task; CMD is the handler.",
        accepts_index=False,
        needs_history_per_layer=True,
        lambda_preflight=True,
        runs_handler=True,
    ),
    "apprunner": replace(
        _WEB_SERVICE,
        name="apprunner",
        note="App Runner runs a web server on a port. Its arm64 (Graviton) support is not "
        "documented for image-based services as of this writing: check before relying on it.",
        undocumented_architectures=frozenset({"arm64"}),
    ),
    "eks": replace(
        _WEB_SERVICE,
        name="eks",
        note="EKS with mixed Graviton/x86 node groups needs a multi-arch index or node "
        "affinity on kubernetes.io/arch.",
    ),
}


def target_spec(name: str) -> TargetSpec:
    try:
        return TARGETS[name]
    except KeyError:
        raise ConfigError(
            f"unknown target {name!r}", hint=f"choose from {', '.join(sorted(TARGETS))}"
        ) from None
