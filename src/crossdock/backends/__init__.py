"""Backends turn a BuildPlan into images: ``native`` (daemonless, no emulation) and ``buildx``
(drives ``docker buildx build`` with the project's Dockerfiles)."""

from crossdock.backends.base import Backend, BuildOutcome, BuildReport, Progress, WheelInfo

__all__ = ["Backend", "BuildOutcome", "BuildReport", "Progress", "WheelInfo"]
