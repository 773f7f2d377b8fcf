"""The native backend: images for any platform, on the host, with no daemon and no emulation.

Per platform (platforms run in parallel):
  base = pull the base's child manifest, config and layers (digests verified, cached by digest)
  profile = read the base's Python and glibc from its layers (cached by base manifest digest)
  deps = install the locked dependencies as the target platform's wheels (uv, binary-only)
  code = the service's files (a project that is not a package) and its own packages (the
         project, the workspace members it needs) built into pure wheels and installed
  layers = [dependencies, service code], deterministic tar + gzip
  verify the finished image's binaries against its platform, glibc and Python; refuse on failure
  image = base config + layers + runtime settings, typed like the base (OCI or Docker)
Then an index over the platforms, unless the target wants single manifests (Lambda).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from crossdock import scratch
from crossdock._version import __version__
from crossdock.backends import lastbuild
from crossdock.backends.base import BuildOutcome, BuildReport, LayerInfo, Progress, WheelInfo
from crossdock.cache import BlobCache, CacheLayout, Records
from crossdock.errors import CrossdockError, VerificationError
from crossdock.image.artifact import BlobSource, ImageSet, PlatformImage
from crossdock.image.config import HistoryEntry, ImageConfig
from crossdock.image.document import digest_value, require
from crossdock.image.manifest import Index, Manifest
from crossdock.image.mediatypes import MediaType
from crossdock.image.mutate import Addendum, append_layers, index_of, with_annotations, with_config
from crossdock.layers import LayerBlob, LayerEntry, entries_from_tree
from crossdock.plan import BuildPlan, RuntimeSettings
from crossdock.platform import Platform
from crossdock.progress import Step, step

if TYPE_CHECKING:
    from crossdock.registry.client import RegistryClient
    from crossdock.resolve import InstalledDistribution, Resolution
    from crossdock.resolve.cache import OnInstalled
    from crossdock.rootfs.baseprofile import BaseProfile
    from crossdock.rootfs.layerindex import IndexCache

# Installing, compiling, profiling and verifying (crossdock.resolve, .baseprofile, .verify) are
# imported where they run: a build answered from the record of the last one needs none of them.

__all__ = ["NativeBackend"]

# Bump when the layout of what this backend writes changes, so cached layers are not reused.
_LAYOUT_VERSION = "1"


class NativeBackend:
    name = "native"

    def __init__(
        self,
        client_for: Callable[[str], RegistryClient] | None = None,
        *,
        allow: tuple[str, ...] = (),
    ) -> None:
        # The base registry's client, made at its first use. By default the full client, and
        # the base's tag is read first over the standard library's HTTP (_base_top); a client
        # given here (a test's) reads everything.
        self._client_for = client_for
        self._allow = allow

    def build(self, plan: BuildPlan, progress: Progress) -> BuildOutcome:
        made = _ClientOnFirstUse(plan.base_pull.registry, self._client_for or _full_client)
        # Typed as the client it stands for: it hands every use on to it.
        self._client = cast("RegistryClient", made)
        try:
            return self._build(plan, progress)
        finally:
            # Its connections close with the build (a library caller builds many times).
            made.close()

    def _base_top(self, plan: BuildPlan) -> Manifest | Index:
        """The base's tag, resolved now (a moved tag is a change). With the default client,
        over the standard library's HTTP first (crossdock.registry.light): a warm build, whose
        base's platform manifests, configs and layers are all in the blob cache
        (sources.registry), then makes no full client and imports no httpx (a code-only
        rebuild, issue 14). Whatever the light client declines or fails at, the full client
        does again, and says what is wrong."""
        if self._client_for is None:
            from crossdock.registry.light import LightClient

            try:
                with LightClient(plan.base_pull.registry) as light:
                    return light.get_manifest(plan.base_pull)
            except (CrossdockError, OSError):
                pass
        return self._client.get_manifest(plan.base_pull)

    def _build(self, plan: BuildPlan, progress: Progress) -> BuildOutcome:
        cache = CacheLayout(plan.cache_dir).blobs
        base_top = self._base_top(plan)
        # Nothing changed since the last build (lock, service files, base digest, config,
        # crossdock): answer from its record, checked (lastbuild.py).
        inputs = lastbuild.RecordInputs.of(plan, self._allow)
        record_key = inputs.key(base_top.digest)
        recorded = lastbuild.load_outcome(plan.cache_dir, record_key)
        if recorded is not None:
            progress(None, "nothing changed since the last build: its verified result reused")
            return recorded
        workers = max(1, min(len(plan.platforms), os.cpu_count() or 1))
        with (
            ThreadPoolExecutor(1, thread_name_prefix="lock-check") as ahead,
            ThreadPoolExecutor(max_workers=workers) as pool,
        ):
            # uv checks the lock (a child process) while the platforms pull and read their
            # bases: its answer needs no platform, and is recorded where each platform's
            # install then reads it (once for all platforms).
            self._lock_checked = ahead.submit(self._check_lock_ahead, plan)
            futures = [
                pool.submit(self._build_platform, plan, base_top, platform, cache, progress)
                for platform in plan.platforms
            ]
            results = [f.result() for f in futures]
        images = tuple(image for image, _ in results)
        reports = tuple(report for _, report in results)
        index = None if plan.single_manifests else index_of(images, plan.annotations)
        outcome = BuildOutcome(ImageSet(images, index), reports)
        # The layers read the service's files after the key was made: one saved meanwhile (an
        # editor, a checkout) is in the image as the layer read it, so the build is recorded
        # only if the files are still those of the key (else a later build of those files
        # would be answered with this image).
        if inputs.key(base_top.digest) == record_key:
            lastbuild.store_outcome(plan.cache_dir, record_key, outcome)
        return outcome

    # -- one platform -----------------------------------------------------------------------

    def _build_platform(
        self,
        plan: BuildPlan,
        base_top: Manifest | Index,
        platform: Platform,
        cache: BlobCache,
        progress: Progress,
    ) -> tuple[PlatformImage, BuildReport]:
        timings: dict[str, float] = {}
        started = time.perf_counter()
        with step(progress, platform, "pull base", total=0) as pulling:
            base = self._pull_base(plan, base_top, platform, cache, pulling)
            timings["pull_base"] = time.perf_counter() - started
            mark = time.perf_counter()
            profile = self._profile(plan, base)
            timings["profile"] = time.perf_counter() - mark
            pulling.describe(f"python {profile.python_version}, glibc {profile.glibc_version}")
        # The base's own files are checked on a side thread once uv's install is done (beside
        # the bytecode compile), not during uv's installs; the verify step waits for the answer.
        # On an error the side thread is waited for, never left behind.
        with ThreadPoolExecutor(1, thread_name_prefix=f"verify-base-{platform}") as side:

            def verify_base_aside(installed_now: bool) -> Future[None]:
                checked = side.submit(self._verify_base, plan, base, platform, profile)
                if installed_now:
                    # A new dependency tree has no SBOM template yet: the SBOM's document
                    # writer is imported there then (cyclonedx, ~0.2 s), so that the SBOM
                    # step, last on the path, does not wait for it.
                    side.submit(_import_sbom_writer)
                return checked

            return self._build_on_base(
                plan, platform, base, profile, cache, progress, verify_base_aside, timings, started
            )

    def _build_on_base(  # noqa: PLR0917 - the one continuation of _build_platform
        self,
        plan: BuildPlan,
        platform: Platform,
        base: PlatformImage,
        profile: BaseProfile,
        cache: BlobCache,
        progress: Progress,
        verify_base_aside: Callable[[bool], Future[None]],
        timings: dict[str, float],
        started: float,
    ) -> tuple[PlatformImage, BuildReport]:
        from crossdock.verify import verify_image

        mark = time.perf_counter()
        bytecode_python = self._bytecode_python(plan, platform, profile, progress)
        if bytecode_python is not None:
            from crossdock.resolve import prepare_compiler

            # Its interpreter starts while the dependencies are checked and packed.
            prepare_compiler(bytecode_python)
        # Started once uv's install is done: the compile's work is done by other processes,
        # and this process only waits for them. Not beside uv's installs: measured on the
        # data-science set (both platforms, cold), checking the base beside the two uv
        # installs (about 100 MiB each) raised this process by some 30 MiB at the tree's peak.
        base_checks: list[Future[None]] = []
        self._lock_checked.result()
        resolution = self._installed_dependencies(
            plan,
            platform,
            profile,
            bytecode_python,
            progress=progress,
            on_installed=lambda *, installed_now: base_checks.append(
                verify_base_aside(installed_now)
            ),
        )

        def app_layer() -> tuple[LayerBlob, tuple[InstalledDistribution, ...], float]:
            began = time.perf_counter()
            with step(progress, platform, "app layer") as packing:
                app = self._app_layer(plan, bytecode_python, resolution, profile)
                packing.describe(f"{_size(app[0].size)} compressed")
            return (*app, time.perf_counter() - began)

        # The app layer is made beside the dependency layer, not after it: its bytecode is
        # compiled by another process while this thread packs the dependencies (both wait for
        # each other on an error, never leaving one behind).
        with ThreadPoolExecutor(1, thread_name_prefix=f"app-layer-{platform}") as beside:
            app_made = beside.submit(app_layer)
            deps_blob, deps_cached = self._dependencies_layer(
                plan, platform, profile, cache, resolution, progress=progress
            )
            timings["dependencies"] = time.perf_counter() - mark
            app_blob, local, timings["app_layer"] = app_made.result()
        [base_verified] = base_checks

        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(plan.mtime))
        new_layers = [
            (
                deps_blob,
                f"crossdock: dependencies of {plan.service} ({resolution.python_platform})",
            ),
            (app_blob, f"crossdock: {plan.service} code -> {plan.app_dir}"),
        ]
        # Some targets run differently on different bases (Lambda on a plain Python base needs
        # awslambdaric as the entrypoint): decided from the base's env and what was installed.
        installed = {d.name for d in (*resolution.distributions, *local)}
        runtime = plan.runtime_for_base(base.config.env, installed).with_python(profile.python_path)
        # The new layers are typed like the base's (OCI or Docker gzip) by append_layers.
        built = with_config(base, _image_config(base.config, platform, runtime, plan, created))
        built = append_layers(
            built,
            [
                Addendum(
                    BlobSource(blob.descriptor(MediaType.OCI_LAYER_GZIP), blob.path),
                    blob.diff_id,
                    HistoryEntry(created_by, created, comment="crossdock"),
                )
                for blob, created_by in new_layers
            ],
        )
        image = with_annotations(
            built,
            {
                **plan.annotations,
                # OCI annotations.md: the base this image was built on, pinned by digest.
                "org.opencontainers.image.base.name": str(plan.base),
                "org.opencontainers.image.base.digest": str(base.manifest.digest),
            },
        )
        config, layer_sources = image.config, image.layers

        mark = time.perf_counter()
        with step(progress, platform, "verify") as verifying:
            base_verified.result()  # raises the base's VerificationError, if any
            # The base's own files were verified above (once per base digest); here every file
            # the build adds is checked, against the whole filesystem view (whiteouts included).
            report = verify_image(
                config,
                [b.path for b in layer_sources],
                layer_digests=[b.descriptor.digest for b in layer_sources],
                profile=profile,
                allow=self._allow,
                first_layer=len(base.layers),
                declared_platform=platform,
                image_name=f"{plan.service} ({platform})",
                cache_dir=plan.cache_dir,
            )
            timings["verify"] = time.perf_counter() - mark
            if not report.passed:
                raise VerificationError(
                    f"{plan.service} for {platform} failed verification; "
                    "nothing was written or pushed",
                    report=report,
                    hint="see the failures above; --allow PATTERN accepts a known exception",
                )
            verifying.describe(_verified(report.counts, len(report.allowed)))

        # The SBOM of what was installed (imported here: a recorded build needs none of it, and
        # one whose dependencies did not change does not write it again).
        from crossdock.resolve.lockfile import read_lock
        from crossdock.sbom import base_os_packages, sbom_referrer

        mark = time.perf_counter()
        sbom = sbom_referrer(
            image_name=plan.service,
            manifest=image.manifest,
            platform=platform,
            created=str(config.data.get("created")),
            tree=resolution.target_dir,
            distributions=resolution.distributions,
            lock=read_lock(plan.project.lock_dir, _lock_records(plan)),
            # Read with the profile (basepass), unless that was cached and this is not.
            os_packages=base_os_packages(base, plan.cache_dir),
            base_name=str(plan.base),
            base_digest=base.manifest.digest,
            # A code-only change has the last document with its own digest filled in.
            templates=CacheLayout(plan.cache_dir).records("sbom-templates", version=1),
            tree_key=resolution.cache_key,
        )
        image = replace(image, referrers=(sbom,))
        timings["sbom"] = time.perf_counter() - mark
        timings["total"] = time.perf_counter() - started
        platform_report = BuildReport(
            platform=platform,
            base_digest=base.manifest.digest,
            image_digest=image.digest,
            python_version=profile.python_version,
            glibc_version=profile.glibc_version,
            python_platform=resolution.python_platform,
            wheels=tuple(
                WheelInfo(d.name, d.version, tuple(d.tags), d.built_from_sdist)
                for d in resolution.distributions
            ),
            local_packages=tuple(
                WheelInfo(d.name, d.version, tuple(d.tags), built_from_sdist=False) for d in local
            ),
            layers=(
                LayerInfo(
                    "dependencies",
                    deps_blob.digest,
                    deps_blob.diff_id,
                    deps_blob.size,
                    cached=deps_cached,
                ),
                LayerInfo("app", app_blob.digest, app_blob.diff_id, app_blob.size),
            ),
            verification=report,
            timings=timings,
        )
        return image, platform_report

    def _pull_base(
        self,
        plan: BuildPlan,
        top: Manifest | Index,
        platform: Platform,
        cache: BlobCache,
        pulling: Step,
    ) -> PlatformImage:
        from crossdock.sources.registry import pull_platform_image

        return pull_platform_image(
            self._client,
            plan.base_pull,
            top,
            platform,
            cache,
            name=f"base image {plan.base}",
            hint="pick a multi-arch base that includes this platform, or drop the platform "
            "from --platform",
            pulling=pulling,
        )

    def _profile(self, plan: BuildPlan, base: PlatformImage) -> BaseProfile:
        # Read once for the profile, the base's verification and its OS packages (basepass);
        # in a child when several platforms read their bases at the same time (inchild).
        from crossdock.backends.basepass import base_profile

        return base_profile(base, plan.cache_dir, in_child=len(plan.platforms) > 1)

    def _verify_base(
        self, plan: BuildPlan, base: PlatformImage, platform: Platform, profile: BaseProfile
    ) -> None:
        """Verify the base image's own files once per base manifest digest, platform and allow
        rules: a base is immutable, so a pass recorded for them holds for every later build."""
        from crossdock.verify import verify_base

        failed = verify_base(
            base,
            profile=profile,
            platform=platform,
            allow=self._allow,
            image_name=f"base {plan.base} ({platform})",
            cache_dir=plan.cache_dir,
        )
        if failed is not None:
            raise VerificationError(
                f"the base image {plan.base} for {platform} failed verification; "
                "nothing was built on it",
                report=failed,
                hint="pick another base, or --allow PATTERN for a known exception in the base",
            )

    @staticmethod
    def _bytecode_python(
        plan: BuildPlan, platform: Platform, profile: BaseProfile, progress: Progress
    ) -> str | None:
        if not plan.bytecode:
            return None
        from crossdock.resolve import bytecode_python

        python = bytecode_python(profile.python_version, preferred=plan.bytecode_python)
        if python.executable is None:
            progress(
                platform,
                f"warning: {python.how}, so the image ships without bytecode: every start "
                "compiles what it imports (slow cold starts; minutes under emulation). Install "
                f"Python {profile.python_version} or set CROSSDOCK_BYTECODE_PYTHON.",
            )
        else:
            progress(platform, f"bytecode for Python {profile.python_version}: {python.how}")
        return python.executable

    @staticmethod
    def _check_lock_ahead(plan: BuildPlan) -> None:
        """uv's check of the lock, as the install asks for it, recorded for the install. A
        failure is left for the install, which checks again and says what is wrong."""
        from crossdock.resolve import check_lock

        try:
            check_lock(
                plan.project.lock_dir,
                package=plan.project.package,
                records=CacheLayout(plan.cache_dir).records("uv-export", version=1),
                lock_records=_lock_records(plan),
            )
        except (CrossdockError, OSError):
            return

    @staticmethod
    def _installed_dependencies(
        plan: BuildPlan,
        platform: Platform,
        profile: BaseProfile,
        bytecode_python: str | None,
        *,
        progress: Progress,
        on_installed: OnInstalled,
    ) -> Resolution:
        from crossdock.resolve import install_dependencies

        return install_dependencies(
            project_dir=plan.project.lock_dir,
            package=plan.project.package,
            platform=platform,
            python_version=profile.python_version,
            glibc_version=profile.glibc_version,
            python_path=profile.python_path,
            cache_dir=CacheLayout(plan.cache_dir).deps,
            bytecode_python=bytecode_python,
            image_dir=plan.deps_dir,
            bytecode_cache=CacheLayout(plan.cache_dir).bytecode,
            export_records=CacheLayout(plan.cache_dir).records("uv-export", version=1),
            tree_records=CacheLayout(plan.cache_dir).records("installed-trees", version=1),
            lock_records=_lock_records(plan),
            progress=progress,
            on_installed=on_installed,
        )

    def _dependencies_layer(
        self,
        plan: BuildPlan,
        platform: Platform,
        profile: BaseProfile,
        cache: BlobCache,
        resolution: Resolution,
        *,
        progress: Progress,
    ) -> tuple[LayerBlob, bool]:
        key = _key(
            _LAYOUT_VERSION,
            __version__,
            resolution.cache_key,
            plan.deps_dir,
            profile.python_path,
            str(plan.mtime),
        )
        from crossdock.rootfs.layerindex import IndexCache

        records = CacheLayout(plan.cache_dir).records("deps-layer", version=1)
        facts = IndexCache(plan.cache_dir)
        with step(progress, platform, "dependency layer") as packing:
            blob = records.load(key, lambda meta: _blob_from_meta(meta, cache, facts))
            if blob is not None:
                packing.describe(f"{_size(blob.size)} (cached)")
                return blob, True
            blob = self._write_dependency_layer(plan, resolution.target_dir)
            packing.describe(f"{_size(blob.size)} compressed")
        records.store(key, _blob_meta(blob))
        return blob, False

    def _app_layer(
        self,
        plan: BuildPlan,
        bytecode_python: str | None,
        resolution: Resolution,
        profile: BaseProfile,
    ) -> tuple[LayerBlob, tuple[InstalledDistribution, ...]]:
        """The layer of the service's own code: its files as they are (a project that is not a
        package), and the wheels of its own packages (the project when it is one, the workspace
        members it needs) installed beside the dependencies."""
        from crossdock.resolve import install_local_projects

        work = CacheLayout(plan.cache_dir).work
        work.mkdir(parents=True, exist_ok=True)
        if bytecode_python is None and not resolution.local_projects:
            entries = entries_from_tree(plan.service_dir, plan.app_dir, exclude=plan.exclude)
            return _write_layer_into_cache(entries, plan), ()
        with scratch.temporary_directory(dir=work) as tmp:
            layer_entries: list[LayerEntry] = []
            if not plan.project.packaged:
                # Compile in a copy: the service folder is the user's, and its own __pycache__
                # (from the developer's Python) is left out either way.
                copy = Path(tmp) / "app"
                for entry in entries_from_tree(plan.service_dir, "", exclude=plan.exclude):
                    target = copy / entry.path
                    target.parent.mkdir(parents=True, exist_ok=True)
                    if entry.symlink is not None:
                        target.symlink_to(entry.symlink)
                    elif entry.source is not None:
                        shutil.copy2(entry.source, target)
                copy.mkdir(exist_ok=True)
                layer_entries += _compiled_entries(plan, copy, plan.app_dir, bytecode_python)
            local: tuple[InstalledDistribution, ...] = ()
            if resolution.local_projects:
                packages = Path(tmp) / "packages"
                local = install_local_projects(
                    resolution.local_projects,
                    resolution.target,
                    packages,
                    lock_dir=plan.project.lock_dir,
                    work_dir=Path(tmp) / "wheels",
                    image_python=profile.python_path,
                    source_date_epoch=plan.mtime,
                )
                layer_entries += _compiled_entries(plan, packages, plan.deps_dir, bytecode_python)
            blob = _write_layer_into_cache(layer_entries, plan)
            return blob, local

    @staticmethod
    def _write_dependency_layer(plan: BuildPlan, tree: Path) -> LayerBlob:
        """The dependency tree's layer, written in a child when several platforms write
        theirs at the same time and the tree is large enough to pay for the child's start
        (``crossdock.backends.inchild``), else here."""
        from crossdock.backends.inchild import dependency_layer_in_child, worth_a_child

        if len(plan.platforms) > 1 and worth_a_child(tree):
            blob = dependency_layer_in_child(tree, plan.deps_dir, plan.cache_dir, mtime=plan.mtime)
            if blob is not None:
                return blob
        return _write_layer_into_cache(
            entries_from_tree(tree, plan.deps_dir, keep_bytecode=True), plan
        )


def _write_layer_into_cache(entries: Iterable[LayerEntry], plan: BuildPlan) -> LayerBlob:
    from crossdock.backends.layerwrite import write_layer_into_cache

    return write_layer_into_cache(entries, plan.cache_dir, mtime=plan.mtime)


def _compiled_entries(
    plan: BuildPlan, tree: Path, image_dir: str, bytecode_python: str | None
) -> list[LayerEntry]:
    """The layer entries of ``tree`` (to stand at ``image_dir`` in the image), with its bytecode
    compiled first when the build writes bytecode."""
    from crossdock.resolve import compile_bytecode

    if bytecode_python is not None:
        compile_bytecode(
            tree,
            bytecode_python,
            image_dir=image_dir,
            cache_dir=CacheLayout(plan.cache_dir).bytecode,
        )
    return list(entries_from_tree(tree, image_dir, keep_bytecode=True))


def _import_sbom_writer() -> None:
    import crossdock.sbom.document  # noqa: F401 - imported ahead of its use


def _image_config(
    base: ImageConfig,
    platform: Platform,
    runtime: RuntimeSettings,
    plan: BuildPlan,
    created: str,
) -> ImageConfig:
    """The base's config with how the service runs (its layers are appended apart)."""
    env = dict(runtime.env)
    if runtime.path_prepend:
        base_path = base.env.get(
            "PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        )
        env["PATH"] = ":".join([*runtime.path_prepend, base_path])
    return base.with_changes(
        platform=platform,
        env=env,
        entrypoint=runtime.entrypoint,
        cmd=runtime.cmd,
        working_dir=runtime.working_dir,
        # A numeric user needs no passwd entry, so every base "allows" it.
        user=runtime.user,
        exposed_ports=runtime.exposed_ports,
        labels=dict(plan.annotations),
        created=created,
    )


def _size(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB" if size >= 1024 * 1024 else f"{size / 1024:.1f} KiB"


def _verified(counts: dict[str, int], allowed: int) -> str:
    """The verify step's summary: what was checked, in a few words."""
    files = counts.get("files", sum(counts.values()))
    return f"{files} files checked, passed" + (f", {allowed} allowed" if allowed else "")


def _key(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def _blob_meta(blob: LayerBlob) -> dict[str, object]:
    return {"digest": str(blob.digest), "diff_id": str(blob.diff_id), "size": blob.size}


def _blob_from_meta(
    meta: dict[str, object], cache: BlobCache, facts: IndexCache
) -> LayerBlob | None:
    """The layer a deps-layer record names, if its blob is still in the cache, unchanged, and
    its diff_id is not other than what the blob's bytes were found to hold."""
    what = "a deps-layer record"
    digest = digest_value(meta["digest"], what)
    size = require(meta, "size", int, what)
    diff_id = digest_value(meta["diff_id"], what)
    if size < 0:
        raise ValueError(f"{what}: a negative size")
    path = cache.verified(digest, size)
    if path is None:
        return None
    # The diff_id goes into the image's config as it is: one that is not the blob's uncompressed
    # digest (recorded by the verified digest when the layer was written) is damage, and the
    # layer is written again. Without that fact, the build's verification hashes the blob.
    known = facts.uncompressed(digest)
    if known is not None and known != diff_id:
        raise ValueError(f"{what}: its diff_id is not its blob's")
    return LayerBlob(path, digest, diff_id, size)


def _lock_records(plan: BuildPlan) -> Records:
    """The lock's packages, kept by its text (``read_lock``)."""
    return CacheLayout(plan.cache_dir).records("parsed-locks", version=1)


def _full_client(registry: str) -> RegistryClient:
    from crossdock.registry.client import RegistryClient

    return RegistryClient(registry)


class _ClientOnFirstUse:
    """A registry client made when it is first used (by either platform's thread), so that a
    build that reads nothing through it imports no HTTP stack; every use is handed on to it."""

    def __init__(self, registry: str, make: Callable[[str], RegistryClient]) -> None:
        self._registry = registry
        self._make = make
        self._made: RegistryClient | None = None
        self._lock = threading.Lock()

    def _client(self) -> RegistryClient:
        with self._lock:
            if self._made is None:
                self._made = self._make(self._registry)
            return self._made

    def __getattr__(self, name: str) -> Any:  # noqa: ANN401 - the client's own attributes
        return getattr(self._client(), name)

    def close(self) -> None:
        with self._lock:
            if self._made is not None:
                self._made.close()
