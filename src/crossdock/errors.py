"""Every error crossdock raises on purpose, in one tree, each with its exit code.

Messages say what happened, where (file, package, reference), and what to do next. Code that
catches an underlying exception re-raises one of these ``from`` it, so the cause stays visible.

Hierarchy (exit code in brackets)::

    CrossdockError [1]
    ├── ConfigError [2]          bad configuration or command-line input
    ├── LockError [3]            uv.lock missing, stale, or unusable
    ├── ResolveError [4]         no wheel for the target platform, or uv failed
    ├── BaseImageError [5]       the base image is not usable (no python, no glibc, no platform)
    ├── VerificationError [6]    an image failed verification (see its report)
    ├── RegistryError [7]        registry protocol or transport failure
    │   ├── AuthError [8]        credentials missing or refused
    │   └── NotFoundError [9]    a manifest, blob or repository does not exist
    ├── TargetError [10]         a deployment target cannot run what was asked for
    ├── ToolError [11]           an external tool (docker, skopeo, uv) is missing or failed
    └── UnsafeContentError [12]  outside data (a layer, a wheel) tried to escape its folder
        └── MalformedError [12]  outside data (a manifest, a config, an archive) is malformed
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "BaseImageError",
    "ConfigError",
    "CrossdockError",
    "LockError",
    "MalformedError",
    "NotFoundError",
    "RegistryError",
    "ResolveError",
    "TargetError",
    "ToolError",
    "UnsafeContentError",
    "VerificationError",
]


class CrossdockError(Exception):
    """Base of every error crossdock raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class ConfigError(CrossdockError):
    """Configuration or command-line input is invalid."""

    exit_code = 2


class LockError(CrossdockError):
    """The project's uv.lock is missing, stale, or cannot be exported."""

    exit_code = 3


class ResolveError(CrossdockError):
    """Dependencies cannot be installed for a target platform without compiling native code."""

    exit_code = 4


class BaseImageError(CrossdockError):
    """The base image lacks what a build needs (the platform, a Python, a glibc)."""

    exit_code = 5


class VerificationError(CrossdockError):
    """An image failed verification; ``report`` holds the details."""

    exit_code = 6

    def __init__(
        self, message: str, *, report: object | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.report = report


class RegistryError(CrossdockError):
    """The registry refused a request or could not be reached."""

    exit_code = 7


class AuthError(RegistryError):
    """Credentials are missing or were refused by the registry."""

    exit_code = 8


class NotFoundError(RegistryError):
    """A manifest, blob or repository does not exist."""

    exit_code = 9


class TargetError(CrossdockError):
    """A deployment target cannot run the image that was asked for."""

    exit_code = 10


class ToolError(CrossdockError):
    """An external tool (docker, skopeo, uv) is missing or failed."""

    exit_code = 11


class UnsafeContentError(CrossdockError):
    """Outside data tried to write outside its folder or break a bound."""

    exit_code = 12


class MalformedError(UnsafeContentError):
    """Outside data (a manifest, an index, a config, an archive, a registry's answer) is not
    what it claims to be: not JSON, wrong types, missing fields, bad digests."""

    exit_code = 12
