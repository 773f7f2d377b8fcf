"""Orchestration: configuration + target -> plan -> backend -> outputs.

Nothing is written to a registry until every platform has been built and verified, so a
failure anywhere leaves the registry as it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from crossdock.backends.base import Backend, BuildOutcome, Progress
from crossdock.cache import CacheLayout
from crossdock.layers import source_date_epoch
from crossdock.plan import BuildPlan
from crossdock.registry.reference import Mirrors, Reference, check_tag
from crossdock.sinks import check_writable, write_docker_archive, write_oci_layout
from crossdock.targets import target_spec

if TYPE_CHECKING:
    from crossdock.config.model import Config

__all__ = ["OutputSpec", "PlanOutputs", "build", "check_outputs", "deliver", "make_plan"]


@dataclass(frozen=True)
class OutputSpec:
    """Where a build goes besides the cache: an OCI layout folder and/or a docker archive."""

    oci_layout: Path | None = None
    docker_archive: Path | None = None
    tag: str = "latest"
    archive_repository: str | None = None


@dataclass(frozen=True)
class PlanOutputs:
    """The fields of a plan that ``deliver`` reads, for a build answered without a plan."""

    target: str
    cache_dir: Path
    service: str


def make_plan(
    config: Config, *, revision: str | None = None, source: str | None = None
) -> BuildPlan:
    """The complete plan for ``config``: no I/O besides what config already resolved."""
    spec = target_spec(config.target)
    warnings = spec.check_platforms(config.platforms)
    base = Reference.parse(config.base or spec.default_base)
    annotations = {"org.opencontainers.image.title": config.service}
    if revision:
        annotations["org.opencontainers.image.revision"] = revision
    if source:
        annotations["org.opencontainers.image.source"] = source
    return BuildPlan(
        service=config.service,
        project=config.project,
        base=base,
        base_pull=Mirrors(config.registry_mirrors).apply(base),
        platforms=config.platforms,
        target=spec.name,
        app_dir=spec.app_dir,
        deps_dir=spec.deps_dir,
        runtime=spec.runtime(config),
        base_dependent_runtime=spec.base_dependent_runtime(config),
        single_manifests=spec.single_manifests,
        exclude=config.exclude,
        annotations=annotations,
        cache_dir=config.cache_dir,
        mtime=source_date_epoch(),
        bytecode=config.bytecode,
        bytecode_python=config.bytecode_python,
        warnings=warnings,
    )


def build(
    plan: BuildPlan,
    backend: Backend,
    progress: Progress,
    output: OutputSpec | None = None,
    *,
    smoke: bool = False,
) -> BuildOutcome:
    """Build every platform of ``plan`` and write the requested local outputs.

    ``smoke``: before anything is written, start each platform's image with docker and import
    its entry modules (``localrun.smoke``); a failure raises and nothing is written or pushed.
    """
    for warning in plan.warnings:
        progress(None, f"warning: {warning}")
    check_outputs(output)
    # The outputs are written from the cache (layers linked from its blobs): a prune waits
    # for both to end.
    with CacheLayout(plan.cache_dir).in_use():
        outcome = backend.build(plan, progress)
        deliver(outcome, plan, progress, output, smoke=smoke)
    return outcome


def check_outputs(output: OutputSpec | None) -> None:
    """Refuse, before any work, a tag or an output path that cannot be written."""
    if output is not None:
        check_tag(output.tag)
    if output is not None and output.oci_layout is not None:
        check_writable(output.oci_layout, "OCI layout", folder=True)
    if output is not None and output.docker_archive is not None:
        check_writable(output.docker_archive, "docker archive", folder=False)


def deliver(
    outcome: BuildOutcome,
    plan: BuildPlan | PlanOutputs,
    progress: Progress,
    output: OutputSpec | None = None,
    *,
    smoke: bool = False,
) -> None:
    """What follows a build, whether it ran or was answered from its record: the target's
    refusals, the smoke test, then the local outputs."""
    # Before anything is written: refuse what the target cannot run (an index for Lambda, ...).
    # The verify cache's layer indexes: the Lambda preflight reads no layer the build's
    # verification already indexed.
    target_spec(plan.target).check_output(outcome.image_set, cache_dir=plan.cache_dir)
    if smoke:
        # Imported here: a build without --smoke never loads the docker driver or the resolver.
        from crossdock.localrun.smoke import smoke_test

        smoke_test(
            outcome.image_set,
            progress,
            work_dir=CacheLayout(plan.cache_dir).work,
            index_cache=plan.cache_dir,
        )
    if output is not None:
        if output.oci_layout is not None:
            write_oci_layout(
                outcome.image_set,
                output.oci_layout,
                tag=output.tag,
                blobs=CacheLayout(plan.cache_dir).blobs,
            )
            progress(None, f"OCI layout written to {output.oci_layout}")
        if output.docker_archive is not None:
            tags = write_docker_archive(
                outcome.image_set,
                output.docker_archive,
                repository=output.archive_repository or f"crossdock/{plan.service}",
                tag=output.tag,
            )
            progress(None, f"docker archive written to {output.docker_archive} ({', '.join(tags)})")
