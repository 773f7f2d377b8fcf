"""The buildx backend: the seed's Dockerfiles, built by ``docker buildx build``, then checked by
crossdock's verifier (which reads the binaries, not the labels).

For people who keep Dockerfiles. It is slower than the native backend (the builder stage runs the
target's CPU, so arm64 on an x86_64 host runs under QEMU) and needs a Docker daemon, but it builds
exactly what the Dockerfile says.

Per build:
  read the Dockerfile: which ARGs name base images (``ARG BASE_IMAGE=...`` before ``FROM``)
  map those bases through registry-mirrors and pass the mirrored names as build arguments
  per platform, or all at once when the builder can export several platforms:
      docker buildx build --platform P --build-arg SERVICE_FOLDER=S ... --load | --push
  with several platforms on a ``docker`` driver builder: each platform is pushed as TAG-ARCH and
  the index is assembled from the pushed manifests (the docker driver cannot export a
  multi-platform result: neither ``--load`` nor ``--push``)
  verify every built image (from the registry, or from ``docker save`` for local loads)

For a release (``--env``), ``stage=True``: each platform is pushed under a temporary tag
(``crossdock-staging-TOKEN-ARCH``; the docker driver cannot push by digest alone), verified, and
returned as an ``ImageSet`` whose blobs are the verified copies in the blob cache. No other tag
is written here: the release code tags that set as it tags a native build (tags last). Registries
cannot delete a tag without its manifest, so the staging tag stays behind.

The Dockerfile is read by ``backends.dockerfile`` and the arguments rendered by
``backends.buildx_args`` (both pure, so tests check them); docker runs through
``crossdock.dockercli``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crossdock import scratch
from crossdock.backends.base import Progress
from crossdock.backends.buildx_args import BuildxInvocation, builder_driver, render_buildx_args
from crossdock.backends.dockerfile import mirrored_base_args, read_dockerfile
from crossdock.cache import CacheLayout
from crossdock.dockercli import Docker, find_docker
from crossdock.errors import ConfigError, ToolError, VerificationError
from crossdock.image.artifact import ImageSet, PlatformImage
from crossdock.image.config import ImageConfig
from crossdock.image.digest import Digest
from crossdock.image.mutate import index_of
from crossdock.plan import BuildPlan
from crossdock.platform import Platform
from crossdock.registry.client import RegistryClient
from crossdock.registry.reference import Mirrors, Reference
from crossdock.sinks.registry import push_image_set
from crossdock.sources import image_label
from crossdock.sources.docker_archive import read_docker_archive
from crossdock.sources.registry import pull_platform_image
from crossdock.transports import DockerArchive
from crossdock.verify import PlatformReport, verify_image

__all__ = ["BuildxBackend", "BuildxResult", "BuiltImage", "buildx_image_set"]


@dataclass(frozen=True)
class BuiltImage:
    platform: Platform
    # Where the image can be found: a local docker tag, or a pushed reference by digest.
    reference: str
    verification: PlatformReport
    seconds: float


@dataclass(frozen=True)
class BuildxResult:
    images: tuple[BuiltImage, ...]
    index: str | None = None
    notes: tuple[str, ...] = ()
    commands: tuple[tuple[str, ...], ...] = field(default_factory=tuple)
    # With ``stage=True``: the verified images (pushed under a staging tag), not yet tagged.
    staged: ImageSet | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "backend": "buildx",
            "images": [
                {
                    "platform": str(i.platform),
                    "reference": i.reference,
                    "seconds": round(i.seconds, 1),
                    "verification": i.verification.to_json(),
                }
                for i in self.images
            ],
            "index": self.index,
            "notes": list(self.notes),
        }


class BuildxBackend:
    """Build a plan's service with a Dockerfile through ``docker buildx build``.

    ``push`` is ``REGISTRY/REPO:TAG``; without it, images are loaded into the daemon as
    ``crossdock/SERVICE:TAG-ARCH`` (the native backend's ``docker load`` names).
    """

    name = "buildx"

    def __init__(
        self,
        dockerfile: Path,
        *,
        mirrors: Mirrors,
        docker: str = "docker",
        builder: str | None = None,
        allow: tuple[str, ...] = (),
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.dockerfile = dockerfile
        self.mirrors = mirrors
        self.docker = docker
        self.builder = builder
        self.allow = allow
        self._environ = environ
        self._driver: Docker | None = None

    def build(
        self,
        plan: BuildPlan,
        progress: Progress,
        *,
        push: str | None = None,
        tag: str = "latest",
        stage: bool = False,
    ) -> BuildxResult:
        if plan.project.layout != "seed":
            # The seed's Dockerfiles take backend/ as their context and SERVICE_FOLDER under it.
            raise ConfigError(
                f"the buildx backend builds the seed's Dockerfiles (backend/<service>/), and "
                f"{plan.project.root} is a {plan.project.layout} uv project",
                hint="build it with the native backend (crossdock build, no --backend), which "
                "knows every project shape",
            )
        docker = find_docker(self.docker, environ=self._environ)
        if docker is None:
            raise ToolError(
                f"{self.docker} is not on PATH: the buildx backend drives docker buildx",
                hint="install docker and the buildx plugin, or build without Docker: "
                "crossdock build (the native backend needs no daemon and no QEMU)",
            )
        self._driver = Docker(docker, environ=self._environ)
        if not self.dockerfile.is_file():
            raise ConfigError(f"no Dockerfile at {self.dockerfile}")
        facts = read_dockerfile(self.dockerfile.read_text())
        context = plan.service_dir.parent
        self._check_lock(plan)
        base_args = mirrored_base_args(facts, self.mirrors)
        driver = builder_driver(self._run(["buildx", "inspect", *self._builder_opt()]))
        lambda_target = plan.single_manifests
        target_ref = Reference.parse(push, default_tag=tag) if push else None
        if stage:
            if target_ref is None:
                raise ConfigError("staging a buildx release needs the repository to push to")
            target_ref = target_ref.with_tag(f"crossdock-staging-{secrets.token_hex(4)}")
        # One build per platform unless the builder exports multi-platform results (not the
        # docker driver) and one index is what we want (not Lambda: it refuses indexes).
        together = (
            len(plan.platforms) > 1
            and driver not in (None, "docker")
            and target_ref is not None
            and not lambda_target
            # A staged release needs each platform's own manifest; its index is crossdock's.
            and not stage
        )
        notes: list[str] = []
        if len(plan.platforms) > 1 and not together:
            notes.append(_one_platform_at_a_time_note(driver, target_ref, lambda_target))
            progress(None, notes[-1])
        groups = [plan.platforms] if together else [(p,) for p in plan.platforms]
        commands: list[tuple[str, ...]] = []
        built: list[tuple[Platform, str, float]] = []
        for group in groups:
            args = {"SERVICE_FOLDER": plan.service, **base_args}
            if len(group) == 1 and facts.declares_targetplatform:
                # dockerd 20.10's built-in frontend (BuildKit 0.8) empties TARGETPLATFORM when a
                # Dockerfile redeclares it with `ARG TARGETPLATFORM` (as the seed's do); passing
                # the value explicitly is what newer BuildKit does implicitly.
                args["TARGETPLATFORM"] = group[0].short
            tags = self._buildx_tags(plan, group, target_ref, tag, together=together)
            invocation = BuildxInvocation(
                context=context,
                dockerfile=self.dockerfile,
                platforms=group,
                build_args=args,
                tags=tags,
                output="push" if target_ref else "load",
                attestations=False,
                builder=self.builder,
            )
            command = (docker, *render_buildx_args(invocation))
            commands.append(command)
            where = ", ".join(p.short for p in group)
            progress(group[0] if len(group) == 1 else None, f"docker buildx build ({where})")
            started = time.monotonic()
            self._run(command[1:], stream=True)
            seconds = time.monotonic() - started
            progress(group[0] if len(group) == 1 else None, f"built in {seconds:.1f}s")
            built.extend((p, tags[0], seconds) for p in group)
        return self._verify_all(
            plan,
            built=built,
            target_ref=target_ref,
            tag=tag,
            together=together,
            lambda_target=lambda_target,
            stage=stage,
            notes=notes,
            commands=commands,
            progress=progress,
        )

    # -- steps -----------------------------------------------------------------------------

    def _builder_opt(self) -> list[str]:
        return [self.builder] if self.builder else []

    def _check_lock(self, plan: BuildPlan) -> None:
        if not (plan.service_dir / "uv.lock").is_file():
            raise ConfigError(
                f"no uv.lock in {plan.service_dir}: the Dockerfile runs `uv sync --frozen`",
                hint=f"run `uv lock --project {plan.service_dir}` (and commit the lock)",
            )

    def _buildx_tags(
        self,
        plan: BuildPlan,
        group: tuple[Platform, ...],
        target_ref: Reference | None,
        tag: str,
        *,
        together: bool,
    ) -> tuple[str, ...]:
        """What ``--tag`` names: the platform's TAG-ARCH (in docker as ``crossdock/SERVICE``,
        as the native backend's archives name it), or TAG when buildx pushes all together."""
        if target_ref is None:
            return (f"crossdock/{plan.service}:{group[0].tag(tag)}",)
        base = f"{target_ref.registry}/{target_ref.repository}"
        tag = target_ref.tag or tag
        if together:
            return (f"{base}:{tag}",)
        return (f"{base}:{group[0].tag(tag)}",)

    def _verify_all(
        self,
        plan: BuildPlan,
        *,
        built: Sequence[tuple[Platform, str, float]],
        target_ref: Reference | None,
        tag: str,
        together: bool,
        lambda_target: bool,
        stage: bool,
        notes: list[str],
        commands: list[tuple[str, ...]],
        progress: Progress,
    ) -> BuildxResult:
        images: list[BuiltImage] = []
        index: str | None = None
        if target_ref is None:
            for platform, local_tag, seconds in built:
                report = self._verify_loaded(local_tag, platform)
                images.append(BuiltImage(platform, local_tag, report, seconds))
            _check_verified(images, progress)
            return BuildxResult(tuple(images), None, tuple(notes), tuple(commands))
        with RegistryClient(target_ref.registry, environ=self._environ) as client:
            cache = CacheLayout(plan.cache_dir).blobs
            verified: list[PlatformImage] = []
            for platform, pushed, seconds in built:
                # What buildx pushed (a builder that adds attestations wraps the image in an
                # index): its manifest, config and layers, the one image model.
                pushed_ref = Reference.parse(pushed)
                image = pull_platform_image(
                    client,
                    pushed_ref,
                    client.get_manifest(pushed_ref),
                    platform,
                    cache,
                    name=pushed,
                    hint="check the builder's output (docker buildx imagetools inspect)",
                    error=VerificationError,
                )
                ref = f"{target_ref.registry}/{target_ref.repository}@{image.digest}"
                report = self._verify(
                    image.config,
                    [blob.path for blob in image.layers],
                    [blob.descriptor.digest for blob in image.layers],
                    name=ref,
                    platform=platform,
                )
                images.append(BuiltImage(platform, ref, report, seconds))
                verified.append(image)
            # buildx has already written TAG-ARCH (or TAG, pushing together); TAG is written
            # by crossdock only once every platform passed.
            _check_verified(images, progress)
            if stage:
                staged = buildx_image_set(verified, single_manifests=lambda_target)
                return BuildxResult(tuple(images), None, tuple(notes), tuple(commands), staged)
            final_tag = target_ref.tag or tag
            if not together and not lambda_target and len(verified) > 1:
                assembled = index_of(verified)
                where = f"{target_ref.registry}/{target_ref.repository}"
                index = f"{where}:{final_tag}@{assembled.digest}"
                notes.append(f"index {index} assembled from the pushed manifests")
                progress(None, notes[-1])
                # Blobs and manifests are there (HEADed, not sent): the index by digest, TAG last.
                complete = ImageSet(tuple(verified), assembled)
                push_image_set(client, complete, target_ref, {final_tag: assembled.digest})
            elif not together and len(verified) == 1:
                # One platform: TAG names its manifest too, as a one-platform build would.
                complete = ImageSet(tuple(verified), None)
                push_image_set(client, complete, target_ref, {final_tag: verified[0].digest})
        return BuildxResult(tuple(images), index, tuple(notes), tuple(commands))

    def _verify_loaded(self, local_tag: str, platform: Platform) -> PlatformReport:
        with scratch.temporary_directory(prefix="crossdock-save-") as tmp:
            archive = Path(tmp) / "image.tar"
            self._run(["save", "-o", str(archive), local_tag])
            (image,) = read_docker_archive(archive, Path(tmp) / "layers").images
            return self._verify(
                image.config,
                [blob.path for blob in image.layers],
                [blob.descriptor.digest for blob in image.layers],
                name=image_label(DockerArchive(archive), image),
                platform=platform,
            )

    def _verify(
        self,
        config: ImageConfig,
        layer_paths: Sequence[Path],
        layer_digests: Sequence[Digest | None],
        *,
        name: str,
        platform: Platform,
    ) -> PlatformReport:
        # The platform we asked buildx for is checked against the config and every binary.
        return verify_image(
            config,
            layer_paths,
            allow=self.allow,
            layer_digests=layer_digests,
            declared_platform=platform,
            image_name=name,
        )

    def _run(self, args: Sequence[str], *, stream: bool = False) -> str:
        """``docker ARGS`` through the driver, without a time limit (a cold build under QEMU
        takes long); a failure is a ToolError with the command's last lines and a hint."""
        if self._driver is None:  # unreachable: build() makes the driver first
            raise ToolError("the buildx backend ran docker before finding it")
        done = self._driver.call(args, stream=stream, timeout=None)
        if done.returncode != 0:
            detail = (done.stderr or "").strip().splitlines()[-5:] if not stream else []
            raise ToolError(
                f"`docker {' '.join(args[:3])} ...` failed with exit code {done.returncode}"
                + (": " + " | ".join(detail) if detail else ""),
                hint=_failure_hint(" ".join(detail)),
            )
        return done.stdout or ""


def buildx_image_set(images: Sequence[PlatformImage], *, single_manifests: bool) -> ImageSet:
    """The verified platform images of a staged buildx build, as the release code takes them:
    with an index over them when there are several and the target accepts one (not Lambda)."""
    if single_manifests or len(images) < 2:
        return ImageSet(tuple(images), None)
    return ImageSet(tuple(images), index_of(images))


def _check_verified(images: Sequence[BuiltImage], progress: Progress) -> None:
    for image in images:
        state = "passed" if image.verification.passed else "FAILED"
        progress(image.platform, f"verification {state}: {image.reference}")
    failed = [i for i in images if not i.verification.passed]
    if failed:
        raise VerificationError(
            "buildx built image(s) that fail verification: "
            + ", ".join(f"{i.platform} ({i.reference})" for i in failed),
            report=failed[0].verification,
        )


def _one_platform_at_a_time_note(
    driver: str | None, target_ref: Reference | None, lambda_target: bool
) -> str:
    if lambda_target:
        return (
            "building one platform at a time: Lambda refuses image indexes, so each platform "
            "gets its own single-architecture manifest (tag TAG-ARCH)"
        )
    if target_ref is None:
        return (
            "building one platform at a time: the docker image store holds one platform per tag, "
            "so each is loaded as TAG-ARCH"
        )
    return (
        f"building one platform at a time: the {driver or 'current'} driver cannot export a "
        "multi-platform result; crossdock pushes each platform as TAG-ARCH and assembles the "
        "index from the pushed manifests (or use a docker-container builder: "
        "`docker buildx create --name multiarch --driver docker-container --use`)"
    )


def _failure_hint(detail: str) -> str:
    if "exec format error" in detail:
        return (
            "the builder cannot run the target's binaries: register QEMU (binfmt_misc), "
            "see `crossdock doctor`; the native backend needs no emulation"
        )
    if "does not match the specified platform" in detail:
        return "pass --platform (the Makefile does); see `crossdock doctor`"
    return "see the build output above; `crossdock doctor` checks docker, buildx and QEMU"
