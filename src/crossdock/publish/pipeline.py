"""The release as a library: where it goes (``prepare_release``), then plan, check and push
(``release``). ``crossdock build``, ``crossdock push`` and the buildx route all call these two;
the CLI only parses options and renders the result. From Python::

    from crossdock import NativeBackend, build, load_config, make_plan, prepare_release, release

    config = load_config(project_dir=Path("."), service="api")
    config, publishing = prepare_release(config, to="registry.example:5000/team/api:1.0")
    outcome = build(make_plan(config), NativeBackend(), progress)
    result = release(publishing, outcome.image_set, checked=True)

Where a release goes: an environment from config (``env``: its repository, the tag templates)
or an explicit ``REPO[:TAG]`` (``to``: TAG and TAG-ARCH, or the environment's tags when ``env``
is given too). Git and the destination are asked in ``prepare_release``, so a refused dirty
tree, an unreachable or untrusted registry and missing or refused credentials fail before the
build starts, and prod narrows the config's platforms to the production architecture.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from crossdock.backends.base import Progress
from crossdock.errors import ConfigError, CrossdockError, NotFoundError
from crossdock.image.artifact import ImageSet
from crossdock.image.document import checked, require
from crossdock.platform import ARM64, Platform
from crossdock.progress import NO_PROGRESS, step
from crossdock.publish.release import (
    ReleasePlan,
    ReleaseRequest,
    ReleaseResult,
    environment_platforms,
    plan_release,
    release_git_state,
    release_tags,
    run_release,
)
from crossdock.publish.tags import DEFAULT_TEMPLATES, TagAssignment
from crossdock.registry.reference import Reference, check_tag
from crossdock.sinks.registry import PushEvent, PushReport
from crossdock.targets import target_spec

if TYPE_CHECKING:
    from crossdock.config import Config
    from crossdock.registry.access import RegistryAccess
    from crossdock.registry.client import RegistryClient

__all__ = [
    "Publishing",
    "ReleaseSettings",
    "check_destination",
    "prepare_release",
    "release",
    "release_if_present",
]


@dataclass(frozen=True)
class Publishing:
    """Where a release goes, resolved from options and config before anything is built."""

    request: ReleaseRequest  # repository, tag scheme, git state, production architecture
    create_repository: bool = False
    dry_run: bool = False
    target: str | None = None  # whose output rules apply (None: no config, no check)

    @property
    def where(self) -> str:
        return f"{self.request.repository.registry}/{self.request.repository.repository}"

    def planned_tags(
        self, platforms: Sequence[Platform], *, notes: list[str]
    ) -> list[TagAssignment]:
        """The tags a release of ``platforms`` writes, before any digest exists (the buildx
        dry run): an index is tagged only over several platforms of a target that takes one."""
        single = self.request.single_manifests or len(platforms) < 2
        return release_tags(self.request, platforms, single_manifests=single, notes=notes)


# A release without a project (``crossdock push --to REPO``) has no config to narrow.
MaybeConfig = TypeVar("MaybeConfig", bound="Config | None")


def prepare_release(
    config: MaybeConfig,
    *,
    env: str | None = None,
    to: str | None = None,
    tag: str = "latest",
    git_sha: str | None = None,
    dry_run: bool = False,
    create_repository: bool = False,
    progress: Progress | None = None,
    target: str | None = None,
    check_access: bool = True,
) -> tuple[MaybeConfig, Publishing | None]:
    """Resolve the destination (None: not publishing) and, for prod, narrow the config's
    platforms to the production architecture. ``to`` is ``REGISTRY/REPO[:TAG]`` or
    ``docker://REF``. ``target``: whose rules apply to a release without a config (with one,
    the config's target). With ``check_access`` (unless a dry run) the destination is asked
    whether it would take the push (``check_destination``), so an unreachable or untrusted
    registry and missing or refused credentials fail before anything is built."""
    if env is None and to is None:
        if dry_run:
            raise ConfigError("--dry-run needs somewhere to push", hint="add --env or --push")
        return config, None
    repository, tag = _destination(config, env, to, tag)
    if config is not None and env is not None:
        create_repository = create_repository or config.environment(env).create_repository
        production_arch = Platform.parse(config.production_arch)
        kept = environment_platforms(env, config.platforms, production_arch)
        if kept != config.platforms:
            dropped = ", ".join(str(p) for p in config.platforms if p not in kept)
            if progress is not None:
                progress(None, f"{env} is always {production_arch.short}: not building {dropped}")
            # A copy of the same model: a Config stays a Config.
            config = cast("MaybeConfig", config.model_copy(update={"platforms": kept}))
    publishing = _publishing(
        config,
        repository,
        env=env,
        tag=tag,
        git_sha=git_sha,
        dry_run=dry_run,
        create_repository=create_repository,
        target=target,
    )
    if check_access and not dry_run:
        check_destination(publishing)
    return config, publishing


def check_destination(publishing: Publishing, *, client: RegistryClient | None = None) -> None:
    """Ask the destination what a push would meet first, before the build it waits for: the
    registry's ``/v2/`` (name, network, TLS) and whether the credentials a push sends may push
    to the repository (``RegistryClient.check_push_access``; nothing is written). A missing
    ECR repository is left to the release when it may create one (``--create-repository``)."""
    from crossdock.registry.client import RegistryClient  # not loaded by the light release

    repository = publishing.request.repository
    active = client or RegistryClient(repository.registry)
    try:
        active.check_push_access(repository)
    except NotFoundError:
        if not (publishing.create_repository and active.ecr is not None):
            raise
    finally:
        if client is None:
            active.close()


@dataclass(frozen=True)
class ReleaseSettings:
    """What a release takes from the configuration (none: a release without a project, under
    ``target``'s rules). Kept as data by a build answered from its record
    (``crossdock.cli.build_shortcut``), which validates no configuration."""

    target: str | None
    refuse_dirty: bool = False
    project_root: Path = Path()
    production_arch: Platform = ARM64
    templates: tuple[str, ...] = DEFAULT_TEMPLATES

    @classmethod
    def of(cls, config: Config | None, target: str | None = None) -> ReleaseSettings:
        if config is None:
            return cls(target=target)
        return cls(
            target=config.target,
            refuse_dirty=config.refuse_dirty,
            project_root=config.project_root,
            production_arch=Platform.parse(config.production_arch),
            templates=config.tag_templates or DEFAULT_TEMPLATES,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "refuse_dirty": self.refuse_dirty,
            "project_root": str(self.project_root),
            "production_arch": str(self.production_arch),
            "templates": list(self.templates),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReleaseSettings:
        """What ``to_json`` wrote, each field of its type (a remembered release); anything
        else raises."""
        what = "a release's settings"
        target = data["target"]
        return cls(
            target=None if target is None else checked(target, str, what),
            refuse_dirty=require(data, "refuse_dirty", bool, what),
            project_root=Path(require(data, "project_root", str, what)),
            production_arch=Platform.parse(require(data, "production_arch", str, what)),
            templates=tuple(
                checked(template, str, what) for template in require(data, "templates", list, what)
            ),
        )

    def publishing(
        self,
        repository: Reference,
        *,
        env: str | None,
        tag: str,
        git_sha: str | None,
        dry_run: bool,
        create_repository: bool,
    ) -> Publishing:
        """The release's settings; git is asked here, so a refused dirty tree fails first."""
        git = release_git_state(
            self.project_root, env=env, sha_override=git_sha, refuse_dirty=self.refuse_dirty
        )
        request = ReleaseRequest(
            repository=repository,
            env=env,
            tag=tag,
            production_arch=self.production_arch,
            single_manifests=target_spec(self.target).single_manifests if self.target else False,
            git=git,
            refuse_dirty=self.refuse_dirty,
            templates=self.templates,
        )
        return Publishing(
            request=request,
            create_repository=create_repository,
            dry_run=dry_run,
            target=self.target,
        )


def _publishing(
    config: Config | None,
    repository: Reference,
    *,
    env: str | None,
    tag: str,
    git_sha: str | None,
    dry_run: bool,
    create_repository: bool,
    target: str | None,
) -> Publishing:
    return ReleaseSettings.of(config, target).publishing(
        repository,
        env=env,
        tag=tag,
        git_sha=git_sha,
        dry_run=dry_run,
        create_repository=create_repository,
    )


def _destination(
    config: Config | None, env: str | None, to: str | None, tag: str
) -> tuple[Reference, str]:
    """The repository (without tag) and the explicit tag: ``to`` wins over the environment's."""
    # Imported here: a release answered from the record (release_if_present) needs no parser.
    from crossdock.transports import registry_destination

    check_tag(tag)
    if to is not None:
        repository = Reference.parse(registry_destination(to), default_tag=None)
        if repository.digest is not None:
            raise ConfigError(f"{to}: push to a repository (and tag), not to a digest")
        return Reference(repository.registry, repository.repository), repository.tag or tag
    if config is None or env is None:
        raise ConfigError(f"--env {env} needs the project's config", hint="pass --service")
    configured = config.environment(env).repository
    if not configured:
        raise ConfigError(
            f"environment {env!r} has no repository",
            hint=f'set [environments.{env}] repository = "REGISTRY/REPO" in crossdock.toml',
        )
    repository = Reference.parse(configured, default_tag=None)
    if repository.tag is not None or repository.digest is not None:
        raise ConfigError(
            f"environments.{env}.repository {configured!r} names a tag or digest; the tags "
            "come from the tag scheme",
            hint="write it as REGISTRY/REPOSITORY",
        )
    return repository, tag


def release(
    publishing: Publishing,
    image_set: ImageSet,
    *,
    checked: bool = False,
    progress: Progress | None = None,
    on_note: Callable[[str], None] | None = None,
    on_push_event: Callable[[PushEvent], None] | None = None,
    client: RegistryAccess | None = None,
) -> ReleaseResult:
    """Plan the release, check it against the target, and push it (unless a dry run): blobs,
    manifests by digest, the index, tags last.

    ``checked``: ``image_set`` already passed the target's ``check_output`` (``build`` runs it
    before writing anything; a release publishes that set or a part of it), so it is not read
    again. ``client`` pushes through an open client (tests, a registry crossdock cannot name).
    """
    plan = _checked_plan(publishing, image_set, checked=checked)
    for note in plan.notes:
        if on_note is not None:
            on_note(note)
    if publishing.dry_run:
        if progress is not None:
            progress(None, f"dry run: nothing pushed to {plan.where}")
        return ReleaseResult(plan, None)
    # The push is one step of ``progress``: the bytes of the blobs the registry lacks, as sent.
    sizes = {str(blob.descriptor.digest): blob.descriptor.size for blob in image_set.blobs()}
    sending: set[str] = set()
    with step(progress or NO_PROGRESS, None, "push") as pushing:

        def on_event(event: PushEvent) -> None:
            if event.kind == "bytes":
                if event.name not in sending:  # counted once its first bytes go
                    sending.add(event.name)
                    pushing.add_total(sizes.get(event.name, 0))
                pushing.advance(event.size)
            if on_push_event is not None:
                on_push_event(event)

        result = run_release(
            plan,
            create_repository=publishing.create_repository,
            client=client,
            on_progress=on_event,
        )
        report = result.report
        if report is not None:
            pushing.describe(_pushed(report))
    return result


def release_if_present(
    publishing: Publishing,
    image_set: ImageSet,
    *,
    checked: bool = False,
    progress: Progress | None = None,
    on_note: Callable[[str], None] | None = None,
) -> ReleaseResult | None:
    """The release of ``image_set`` when its registry already holds all of it, reported as
    ``release`` reports a push; None when anything would be written, or the light client
    declines (then ``release`` pushes). Decided by ``push_image_set`` itself, over the light
    client (``crossdock.registry.light``, no HTTP stack), which refuses every write, and the
    reads that show the release held, made at once (``sinks.held.HeldReads``: each tag, each
    manifest no tag names, each referrer and where it is listed; a held manifest's blobs are
    held) (issue 14)."""
    from crossdock.registry.light import LightClient
    from crossdock.sinks.held import HeldReads

    if publishing.dry_run:
        return None
    plan = _checked_plan(publishing, image_set, checked=checked)
    try:
        with LightClient(plan.repository.registry) as client:
            held = HeldReads.read(client, plan.image_set, plan.repository, plan.tag_digests)
            result = run_release(plan, create_repository=publishing.create_repository, client=held)
    except CrossdockError:
        return None  # something to write, or to handle: the full release does it
    for note in plan.notes:
        if on_note is not None:
            on_note(note)
    report = result.report
    with step(progress or NO_PROGRESS, None, "push") as pushing:
        if report is not None:
            pushing.describe(_pushed(report))
    return result


def _checked_plan(publishing: Publishing, image_set: ImageSet, *, checked: bool) -> ReleasePlan:
    plan = plan_release(image_set, publishing.request)
    if publishing.target is not None and not checked:
        # What the target cannot run is refused before anything leaves the machine.
        target_spec(publishing.target).check_output(plan.image_set)
    return plan


def _pushed(report: PushReport) -> str:
    """The push step's line: mounted and present blobs are in the release report; it fits 80
    columns."""
    moved = len(report.tags) - len(report.tags_unchanged)
    return f"{report.blobs_uploaded} blobs pushed, {moved} tags"
