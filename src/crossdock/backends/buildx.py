"""The buildx backend: the seed's Dockerfiles, built by ``docker buildx build``, then checked by
crossdock's verifier (which reads the binaries, not the labels). It implements ``Backend`` as the
native backend does: a plan in, an ``ImageSet`` and a report per platform out; the release (tags)
is ``crossdock.publish``'s, the same for both backends.

For people who keep Dockerfiles. It is slower than the native backend (the builder stage runs the
target's CPU, so arm64 on an x86_64 host runs under QEMU) and needs a Docker daemon, but it builds
exactly what the Dockerfile says.

Per build:
  read the Dockerfile: which ARGs name base images (``ARG BASE_IMAGE=...`` before ``FROM``)
  map those bases through registry-mirrors and pass the mirrored names as build arguments
  per platform, or all at once when the builder can export several platforms:
      docker buildx build --platform P --build-arg SERVICE_FOLDER=S ... --load | --push
  read each built image back and verify it; the ``ImageSet`` is what was read.

buildx hands its result to docker or to a registry, never to crossdock directly, so where it goes
is the backend's setting (``output``), from which it reads the result back:

* ``DockerStore`` (a local build): ``--load`` each platform as ``crossdock/SERVICE:TAG-ARCH`` (the
  native backend's ``docker load`` names; docker's image store holds one platform per tag), read
  back with ``docker save``; its layers, uncompressed there, are gzipped into the blob cache as
  ``docker push`` would send them (a Docker manifest per platform).
* ``StagingRepository`` (a release): ``--push`` under a temporary tag
  (``crossdock-staging-TOKEN-ARCH``; the docker driver cannot push by digest alone), read back
  from the registry. No other tag is written here: the release tags the verified manifests, tags
  last. Then ``remove_staging_tags`` deletes the staging tags where the registry deletes a tag
  alone (distribution-spec 1.1); many refuse (distribution 2.8 deletes by digest only, which
  would take the release's manifests along), and the tags stay, said once.

From Python, a release of a Dockerfile build is the native one's with another backend::

    config, publishing = prepare_release(config, env="dev")
    backend = BuildxBackend(dockerfile, mirrors=Mirrors(config.registry_mirrors),
                            output=StagingRepository(publishing.request.repository))
    outcome = build(make_plan(config), backend, progress)
    result = release(publishing, outcome.image_set, checked=True)
    backend.remove_staging_tags(result.plan.image_set, result.plan.tag_digests)

The Dockerfile is read by ``backends.dockerfile`` and the arguments rendered by
``backends.buildx_args`` (both pure, so tests check them); docker runs through
``crossdock.dockercli``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from crossdock import scratch
from crossdock.backends.base import BuildOutcome, BuildReport, LayerInfo, Progress
from crossdock.backends.buildx_args import BuildxInvocation, builder_driver, render_buildx_args
from crossdock.backends.dockerfile import mirrored_base_args, read_dockerfile
from crossdock.cache import BlobCache, CacheLayout
from crossdock.dockercli import Docker, find_docker
from crossdock.errors import ConfigError, RegistryError, ToolError, VerificationError
from crossdock.image.artifact import BlobSource, ImageSet, PlatformImage
from crossdock.image.descriptor import Descriptor
from crossdock.image.digest import Digest
from crossdock.image.manifest import Manifest
from crossdock.image.mediatypes import MediaType
from crossdock.image.mutate import index_of
from crossdock.layers import compress_layer
from crossdock.plan import BuildPlan
from crossdock.platform import Platform
from crossdock.registry.client import RegistryClient
from crossdock.registry.reference import Mirrors, Reference, check_tag
from crossdock.sinks.registry import push_image_set
from crossdock.sources import image_label
from crossdock.sources.docker_archive import read_docker_archive
from crossdock.sources.registry import pull_platform_image
from crossdock.text import excerpt
from crossdock.transports import DockerArchive
from crossdock.verify import PlatformReport, verify_image

__all__ = [
    "BuildxBackend",
    "BuildxOutput",
    "DockerStore",
    "StagingCleanup",
    "StagingRepository",
    "buildx_image_set",
    "remove_staging_tags",
]

# Of docker's last lines on a failed command, this many characters are quoted in the error.
_QUOTED_OUTPUT_CHARS = 500


@dataclass(frozen=True)
class DockerStore:
    """buildx loads each platform into docker as ``crossdock/SERVICE:TAG-ARCH``."""

    tag: str = "latest"

    def __post_init__(self) -> None:
        check_tag(self.tag)

    def name(self, service: str, platform: Platform) -> str:
        return f"crossdock/{service}:{platform.tag(self.tag)}"


@dataclass(frozen=True)
class StagingRepository:
    """buildx pushes to ``repository`` under a staging tag; the release writes the real tags."""

    repository: Reference


BuildxOutput = DockerStore | StagingRepository


@dataclass(frozen=True)
class StagingCleanup:
    """What became of the staging tags once the release's tags were written."""

    removed: tuple[str, ...] = ()
    left: tuple[str, ...] = ()
    note: str | None = None  # why they were left, or what had to be written again

    def to_json(self) -> dict[str, object]:
        return {"removed": list(self.removed), "left": list(self.left), "note": self.note}


@dataclass(frozen=True)
class _Built:
    """One platform as buildx left it: where (a docker tag or a pushed tag) and how long."""

    platform: Platform
    where: str
    seconds: float


class BuildxBackend:
    """Build a plan's service with a Dockerfile through ``docker buildx build``."""

    name = "buildx"

    def __init__(
        self,
        dockerfile: Path,
        *,
        mirrors: Mirrors,
        output: BuildxOutput | None = None,
        docker: str = "docker",
        builder: str | None = None,
        allow: tuple[str, ...] = (),
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.dockerfile = dockerfile
        self.mirrors = mirrors
        self.output = output or DockerStore()
        self.docker = docker
        self.builder = builder
        self.allow = allow
        self._environ = environ
        self._driver: Docker | None = None
        self._staged: list[Reference] = []  # the staging tags buildx pushed

    def build(self, plan: BuildPlan, progress: Progress) -> BuildOutcome:
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
        staging = (
            self.output.repository.with_tag(f"crossdock-staging-{secrets.token_hex(4)}")
            if isinstance(self.output, StagingRepository)
            else None
        )
        # One build per platform unless the builder exports multi-platform results (not the
        # docker driver) and one index is what we want (not Lambda: it refuses indexes).
        together = (
            len(plan.platforms) > 1
            and driver not in (None, "docker")
            and staging is not None
            and not lambda_target
        )
        notes: list[str] = []
        if len(plan.platforms) > 1 and not together:
            notes.append(_one_platform_at_a_time_note(driver, staging, lambda_target))
            progress(None, notes[-1])
        groups = [plan.platforms] if together else [(p,) for p in plan.platforms]
        built: list[_Built] = []
        for group in groups:
            args = {"SERVICE_FOLDER": plan.service, **base_args}
            if len(group) == 1 and facts.declares_targetplatform:
                # dockerd 20.10's built-in frontend (BuildKit 0.8) empties TARGETPLATFORM when a
                # Dockerfile redeclares it with `ARG TARGETPLATFORM` (as the seed's do); passing
                # the value explicitly is what newer BuildKit does implicitly.
                args["TARGETPLATFORM"] = group[0].short
            where = self._buildx_tag(plan, group, staging, together=together)
            invocation = BuildxInvocation(
                context=context,
                dockerfile=self.dockerfile,
                platforms=group,
                build_args=args,
                tags=(where,),
                output="push" if staging else "load",
                attestations=False,
                builder=self.builder,
            )
            shown = ", ".join(p.short for p in group)
            progress(group[0] if len(group) == 1 else None, f"docker buildx build ({shown})")
            started = time.monotonic()
            if staging is not None:
                self._staged.append(Reference.parse(where))
            self._run(render_buildx_args(invocation), stream=True)
            seconds = time.monotonic() - started
            progress(group[0] if len(group) == 1 else None, f"built in {seconds:.1f}s")
            built.extend(_Built(p, where, seconds) for p in group)
        blobs = CacheLayout(plan.cache_dir).blobs
        if staging is None:
            read = [self._read_loaded(b, blobs) for b in built]
        else:
            read = self._read_pushed(staging, built, blobs)
        _check_verified(read, progress)
        image_set = buildx_image_set(
            [image for image, _, _ in read], single_manifests=lambda_target
        )
        reports = tuple(
            _build_report(image, verification, where, one.seconds)
            for (image, verification, where), one in zip(read, built, strict=True)
        )
        return BuildOutcome(image_set, reports, tuple(notes))

    def remove_staging_tags(self, released: ImageSet, tags: Mapping[str, Digest]) -> StagingCleanup:
        """Delete the staging tags of the last build (``remove_staging_tags``) once its release
        wrote ``tags``."""
        staged, self._staged = self._staged, []
        if not staged:
            return StagingCleanup()
        with RegistryClient(staged[0].registry, environ=self._environ) as client:
            return remove_staging_tags(client, staged, released, tags)

    # -- steps -----------------------------------------------------------------------------

    def _builder_opt(self) -> list[str]:
        return [self.builder] if self.builder else []

    def _check_lock(self, plan: BuildPlan) -> None:
        if not (plan.service_dir / "uv.lock").is_file():
            raise ConfigError(
                f"no uv.lock in {plan.service_dir}: the Dockerfile runs `uv sync --frozen`",
                hint=f"run `uv lock --project {plan.service_dir}` (and commit the lock)",
            )

    def _buildx_tag(
        self,
        plan: BuildPlan,
        group: tuple[Platform, ...],
        staging: Reference | None,
        *,
        together: bool,
    ) -> str:
        """What ``--tag`` names: the platform's TAG-ARCH in docker (``crossdock/SERVICE``, as
        the native backend's archives name it), or the staging tag (-ARCH unless together)."""
        if staging is None:
            store = self.output if isinstance(self.output, DockerStore) else DockerStore()
            return store.name(plan.service, group[0])
        tag = staging.tag or "crossdock-staging"
        base = f"{staging.registry}/{staging.repository}"
        return f"{base}:{tag}" if together else f"{base}:{group[0].tag(tag)}"

    def _read_pushed(
        self, staging: Reference, built: Sequence[_Built], blobs: BlobCache
    ) -> list[tuple[PlatformImage, PlatformReport, str]]:
        """Each pushed platform image, read back from the registry (the one image model) and
        verified; the third item names it as ``REPOSITORY@DIGEST``."""
        out = []
        with RegistryClient(staging.registry, environ=self._environ) as client:
            for one in built:
                # What buildx pushed (a builder that adds attestations wraps the image in an
                # index): its manifest, config and layers.
                pushed = Reference.parse(one.where)
                image = pull_platform_image(
                    client,
                    pushed,
                    client.get_manifest(pushed),
                    one.platform,
                    blobs,
                    name=one.where,
                    hint="check the builder's output (docker buildx imagetools inspect)",
                    error=VerificationError,
                )
                ref = f"{staging.registry}/{staging.repository}@{image.digest}"
                report = self._verify(
                    image, [blob.path for blob in image.layers], name=ref, platform=one.platform
                )
                out.append((image, report, ref))
        return out

    def _read_loaded(
        self, built: _Built, blobs: BlobCache
    ) -> tuple[PlatformImage, PlatformReport, str]:
        """The image docker holds under ``built.where`` (``docker save``), verified, as the
        one image model: its config as docker has it, each layer gzipped into the blob cache as
        ``docker push`` would send it (a Docker manifest)."""
        with scratch.temporary_directory(prefix="crossdock-save-") as tmp:
            archive = Path(tmp) / "image.tar"
            self._run(["save", "-o", str(archive), built.where])
            (saved,) = read_docker_archive(archive, Path(tmp) / "layers").images
            # Verified on the layers docker saved (uncompressed, known by their diff_ids).
            report = self._verify(
                saved,
                [blob.path for blob in saved.layers],
                name=image_label(DockerArchive(archive), saved),
                platform=built.platform,
            )
            layers = []
            for number, (saved_layer, diff_id) in enumerate(
                zip(saved.layers, saved.config.diff_ids, strict=True)
            ):
                blob = compress_layer(saved_layer.path, Path(tmp) / f"{number}.tar.gz")
                if blob.diff_id != diff_id:  # unreachable: read_docker_archive checked them
                    raise VerificationError(f"{built.where}: layer {number} is not its diff_id")
                descriptor = blob.descriptor(MediaType.DOCKER_LAYER_GZIP)
                layers.append(BlobSource(descriptor, blobs.adopt(blob.path, blob.digest)))
        config = saved.config
        manifest = Manifest.build(
            MediaType.DOCKER_MANIFEST,
            Descriptor(MediaType.DOCKER_CONFIG, config.digest, len(config.raw)),
            [layer.descriptor for layer in layers],
        )
        return PlatformImage(built.platform, manifest, config, tuple(layers)), report, built.where

    def _verify(
        self, image: PlatformImage, layer_paths: Sequence[Path], *, name: str, platform: Platform
    ) -> PlatformReport:
        # The platform we asked buildx for is checked against the config and every binary.
        return verify_image(
            image.config,
            layer_paths,
            allow=self.allow,
            layer_digests=[blob.descriptor.digest for blob in image.layers],
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
            # docker's words are outside text: quoted on one line, control characters escaped.
            quoted = excerpt(" | ".join(detail), _QUOTED_OUTPUT_CHARS, end=True)
            raise ToolError(
                f"`docker {' '.join(args[:3])} ...` failed with exit code {done.returncode}"
                + (": " + quoted if quoted else ""),
                hint=_failure_hint(" ".join(detail)),
            )
        return done.stdout or ""


def buildx_image_set(images: Sequence[PlatformImage], *, single_manifests: bool) -> ImageSet:
    """The verified platform images of a staged buildx build, as the release code takes them:
    with an index over them when there are several and the target accepts one (not Lambda)."""
    if single_manifests or len(images) < 2:
        return ImageSet(tuple(images), None)
    return ImageSet(tuple(images), index_of(images))


def remove_staging_tags(
    client: RegistryClient,
    staged: Sequence[Reference],
    released: ImageSet,
    tags: Mapping[str, Digest],
) -> StagingCleanup:
    """Delete the tags buildx pushed to stage a build (``staged``, all in one repository) once
    its release wrote ``tags`` (each to its digest in ``released``). Only tags are deleted,
    never a manifest: the release's tags name the same manifests. At the first refusal the rest
    are left too (the registry would refuse them alike), said in one note. A registry that
    deletes the manifest with its tag (not what the spec says) took the release's tags along:
    they are written again, and said so."""
    if not staged:
        return StagingCleanup()
    repository = Reference(staged[0].registry, staged[0].repository)
    where = f"{repository.registry}/{repository.repository}"
    removed: list[str] = []
    for number, ref in enumerate(staged):
        try:
            client.delete_tag(ref)
        except RegistryError as refused:
            left = tuple(str(each.tag) for each in staged[number:])
            note = (
                f"left the staging tag(s) {', '.join(left)} in {where}: {refused.message} "
                "(remove them with the registry's own tools)"
            )
            return StagingCleanup(tuple(removed), left, note)
        removed.append(str(ref.tag))
    lost = [
        tag
        for tag, digest in tags.items()
        if (now := client.head_manifest(repository.with_tag(tag))) is None or now.digest != digest
    ]
    if not lost:
        return StagingCleanup(tuple(removed))
    push_image_set(client, released, repository, tags)
    note = (
        f"{where} deleted the manifests with their staging tags; the release's tag(s) "
        f"{', '.join(lost)} were written again"
    )
    return StagingCleanup(tuple(removed), (), note)


def _check_verified(
    read: Sequence[tuple[PlatformImage, PlatformReport, str]], progress: Progress
) -> None:
    for image, verification, where in read:
        state = "passed" if verification.passed else "FAILED"
        progress(image.platform, f"verification {state}: {where}")
    failed = [(image, report, where) for image, report, where in read if not report.passed]
    if failed:
        raise VerificationError(
            "buildx built image(s) that fail verification: "
            + ", ".join(f"{image.platform} ({where})" for image, _, where in failed),
            report=failed[0][1],
        )


def _build_report(
    image: PlatformImage, verification: PlatformReport, where: str, seconds: float
) -> BuildReport:
    """What is known of a buildx build: the image read back, what the verifier read in it, and
    how long buildx took (one figure for the platforms it built together)."""
    layers = tuple(
        LayerInfo("dockerfile", blob.descriptor.digest, diff_id, blob.descriptor.size)
        for blob, diff_id in zip(image.layers, image.config.diff_ids, strict=True)
    )
    return BuildReport(
        platform=image.platform,
        base_digest=None,
        image_digest=image.digest,
        python_version=verification.python_version or "",
        glibc_version=verification.glibc.available or "",
        python_platform="",
        wheels=(),
        layers=layers,
        verification=verification,
        timings={"total": seconds},
        location=where,
    )


def _one_platform_at_a_time_note(
    driver: str | None, staging: Reference | None, lambda_target: bool
) -> str:
    if lambda_target:
        return (
            "building one platform at a time: Lambda refuses image indexes, so each platform "
            "gets its own single-architecture manifest (tag TAG-ARCH)"
        )
    if staging is None:
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
