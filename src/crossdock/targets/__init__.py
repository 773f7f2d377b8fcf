"""Deployment targets as data: what each AWS runtime accepts, and how an image for it runs."""

from crossdock.targets.spec import TARGETS, TargetSpec, target_spec

__all__ = ["TARGETS", "TargetSpec", "target_spec"]
