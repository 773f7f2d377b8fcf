"""A base image read once for everything a build needs of it.

Three readers want a base's files: its profile (Python, paths, glibc: ``rootfs.baseprofile``),
the verification of its own files (``verify.verify_base``: every file observed) and the SBOM's
OS packages (``sbom.ospackages``: the package databases). Each used to decompress and walk every
base layer again (about 0.3 s each for python:3.13-slim). Now the walk that indexes a layer for
the profile also observes each of its files for verification and keeps the package databases'
bytes for the SBOM; the profile's glibc comes from libc's observation. What the walk learnt is
kept where each reader looks for it, keyed by the bytes it describes (the layer index and the
observations by layer digest, checked on pull; the OS packages and the profile by the base's
manifest digest), so verifying the base and writing the SBOM decompress nothing.
"""

from __future__ import annotations

from pathlib import Path

from crossdock.image.artifact import PlatformImage
from crossdock.rootfs.baseprofile import BaseProfile, cached_base_profile, profile_from_fs
from crossdock.rootfs.fsview import DEFAULT_READ_LIMIT, LayerFS
from crossdock.sbom.attach import base_os_packages
from crossdock.sbom.ospackages import is_package_file
from crossdock.verify.observe import LayerObserver, ObservationCache

__all__ = ["base_profile", "read_base_once"]


def base_profile(base: PlatformImage, cache_dir: Path, *, in_child: bool = False) -> BaseProfile:
    """The profile of ``base`` (cached by its manifest digest, as ``cached_base_profile``);
    when it has to be read, the same pass leaves the base's observations and OS packages in
    crossdock's cache folder ``cache_dir``. ``in_child``: that pass runs in a child process
    when it can (a build of several platforms reads their bases at the same time:
    ``crossdock.backends.inchild``)."""

    def read() -> BaseProfile:
        if in_child:
            from crossdock.backends.inchild import profile_in_child

            profile = profile_in_child(base, cache_dir)
            if profile is not None:
                return profile
        return read_base_once(base, cache_dir)

    return cached_base_profile(base, cache_dir, read=read)


def read_base_once(base: PlatformImage, cache_dir: Path) -> BaseProfile:
    """Read ``base``'s layers once: its profile, and its observations and OS packages kept in
    crossdock's cache folder ``cache_dir``."""
    # The limit is the one verification observes with, so its cache finds these observations.
    observer = LayerObserver(ObservationCache(cache_dir, limit=DEFAULT_READ_LIMIT))
    paths = [blob.path for blob in base.layers]
    digests = [blob.descriptor.digest for blob in base.layers]
    fs = LayerFS(paths, digests, index_cache=cache_dir, on_file=observer, keep=is_package_file)
    profile = profile_from_fs(base.config, fs, elf_facts=observer.facts)
    observer.save()
    base_os_packages(base, cache_dir, fs=fs)
    return profile
