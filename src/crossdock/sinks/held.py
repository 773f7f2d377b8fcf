"""A push that the registry already holds, shown with a few reads made at once (issue 14: a build
answered from its record and pushed again to an up-to-date registry).

``push_image_set`` asks about every blob, manifest, referrer and tag of a push before it writes.
When the registry holds all of it already, a few of those answers imply the others:

- a registry answers a tag only with a manifest it holds in that repository, so a tag that
  resolves to the digest the push gives it shows that manifest (or index) held;
- a registry takes a manifest only when it holds every blob the manifest references (it refuses
  the manifest otherwise: ``MANIFEST_BLOB_UNKNOWN``, distribution-spec "Pushing Manifests"), so
  a held image manifest shows its config and layers held, and a held artifact manifest (an
  SBOM) its blobs. An index shows nothing of its manifests: each is shown by its own tag, or
  asked for by digest.

``HeldReads.read`` makes, at once (on several connections when the client has them), the reads
that show a release held: each tag (HEAD), each manifest or index of the set that no tag names
(HEAD by digest), each referrer's manifest (HEAD by digest), and where each subject's referrers
are listed (the referrers API, and the fallback tag that a registry without it keeps). Then
``push_image_set`` runs over ``HeldReads`` as over any registry: the reads made are answered
again, the blobs of a held manifest are present, and everything else goes to the client (the
light client reads, and declines every write, so the full release then runs). What to push
is still decided by the push's own code: a moved or deleted tag, a manifest or referrer gone, a
referrer no longer listed are each something it writes.

Not looked for here: a blob deleted from the repository (the blob API's DELETE) beneath a
manifest that stays, which breaks that image for every pull. The full push, which asks about
every blob, uploads it again.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING

from crossdock.errors import NotFoundError
from crossdock.image.descriptor import Descriptor
from crossdock.image.digest import Digest, sha256_of
from crossdock.image.referrer import fallback_tag
from crossdock.registry.reference import Reference
from crossdock.sinks.registry import DEFAULT_CONCURRENCY

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path

    from crossdock.image.artifact import ImageSet
    from crossdock.image.manifest import Index, Manifest
    from crossdock.registry.access import RegistryAccess, UploadOutcome
    from crossdock.registry.ecr import EcrRegistry

__all__ = ["HeldReads"]


class HeldReads:
    """A ``RegistryAccess`` over ``client`` for pushing ``image_set`` to ``repository`` with
    ``tags``, answering from the reads made ahead (``read``) and from what they show held."""

    def __init__(
        self,
        client: RegistryAccess,
        image_set: ImageSet,
        repository: Reference,
        tags: Mapping[str, Digest],
    ) -> None:
        self._client = client
        self._set = image_set
        self._repository = Reference(repository.registry, repository.repository)
        self._tags = dict(tags)
        self._heads: dict[str, Descriptor | None] = {}
        self._referrers: dict[Digest, Index | None] = {}
        self._fallbacks: dict[str, Manifest | Index | None] = {}
        self._held_manifests: dict[Digest, Descriptor] = {}
        self._held_blobs: set[Digest] = set()

    @classmethod
    def read(
        cls,
        client: RegistryAccess,
        image_set: ImageSet,
        repository: Reference,
        tags: Mapping[str, Digest],
    ) -> HeldReads:
        """The reads made, all at once; a read that fails raises (the client's error)."""
        held = cls(client, image_set, repository, tags)
        held._read_ahead()
        return held

    # -- the reads made ahead, and what they show ------------------------------------------

    def _read_ahead(self) -> None:
        repository = self._repository
        documents = self._documents()
        named = set(self._tags.values())
        heads = [repository.with_tag(tag) for tag in self._tags]
        heads += [repository.with_digest(d) for d in documents if d not in named]
        referrers = [r for image in self._set.images for r in image.referrers]
        heads += [repository.with_digest(r.digest) for r in referrers]
        subjects = list(dict.fromkeys(r.subject.digest for r in referrers))

        def head(ref: Reference) -> None:
            self._heads[str(ref)] = self._client.head_manifest(ref)

        def listed(subject: Digest) -> None:
            self._referrers[subject] = self._client.referrers(repository, subject)

        def fallback(subject: Digest) -> None:
            # Read with the API's answer, not after it (one round trip less): a registry that
            # has the API answers this tag "not found", or with what older pushes left there.
            ref = repository.with_tag(fallback_tag(subject))
            try:
                self._fallbacks[str(ref)] = self._client.get_manifest(ref)
            except NotFoundError:
                self._fallbacks[str(ref)] = None

        reads: list[Callable[[], None]] = [partial(head, ref) for ref in heads]
        reads += [partial(listed, subject) for subject in subjects]
        reads += [partial(fallback, subject) for subject in subjects]
        # As many at once as a push's transfers: a remote registry's round trips overlap (on a
        # loaded machine with the registry on it, several at once cost about what one by one
        # does).
        with ThreadPoolExecutor(max_workers=min(DEFAULT_CONCURRENCY, len(reads) or 1)) as pool:
            for future in [pool.submit(read) for read in reads]:
                future.result()  # the first failure, raised here

        def answered(ref: Reference, digest: Digest) -> bool:
            current = self._heads.get(str(ref))
            return current is not None and current.digest == digest

        for digest, descriptor in documents.items():
            tagged = (repository.with_tag(t) for t, d in self._tags.items() if d == digest)
            if answered(repository.with_digest(digest), digest) or any(
                answered(ref, digest) for ref in tagged
            ):
                self._held_manifests[digest] = descriptor
        for image in self._set.images:
            if image.manifest.digest in self._held_manifests:
                self._held_blobs.add(image.manifest.config.digest)
                self._held_blobs.update(layer.digest for layer in image.manifest.layers)
        for referrer in referrers:
            if answered(repository.with_digest(referrer.digest), referrer.digest):
                self._held_manifests[referrer.digest] = referrer.manifest.descriptor()
                self._held_blobs.update(descriptor.digest for descriptor, _ in referrer.blobs)

    def _documents(self) -> dict[Digest, Descriptor]:
        """The set's manifests and its index, by digest."""
        out = {image.manifest.digest: image.manifest.descriptor() for image in self._set.images}
        if self._set.index is not None:
            out[self._set.index.digest] = self._set.index.descriptor()
        return out

    # -- RegistryAccess ----------------------------------------------------------------------

    @property
    def registry(self) -> str:
        return self._client.registry

    @property
    def ecr(self) -> EcrRegistry | None:
        return self._client.ecr

    def head_manifest(self, ref: Reference) -> Descriptor | None:
        if ref.digest is not None and ref.digest in self._held_manifests and self._here(ref):
            return self._held_manifests[ref.digest]
        key = str(ref)
        if key in self._heads:
            return self._heads[key]
        return self._client.head_manifest(ref)

    def get_manifest(self, ref: Reference) -> Manifest | Index:
        key = str(ref)
        if key in self._fallbacks:
            document = self._fallbacks[key]
            if document is None:
                raise NotFoundError(f"{ref} is not in {self.registry}")
            return document
        return self._client.get_manifest(ref)

    def referrers(self, repository: Reference, subject: Digest) -> Index | None:
        if self._here(repository) and subject in self._referrers:
            return self._referrers[subject]
        return self._client.referrers(repository, subject)

    def upload_blob(
        self,
        repository: Reference,
        descriptor: Descriptor,
        path: Path,
        *,
        mount_from: str | None = None,
        on_bytes: Callable[[int], object] | None = None,
    ) -> UploadOutcome:
        if self._held(repository, descriptor.digest):
            return "present"
        return self._client.upload_blob(
            repository, descriptor, path, mount_from=mount_from, on_bytes=on_bytes
        )

    def upload_blob_bytes(self, repository: Reference, data: bytes) -> UploadOutcome:
        if self._held(repository, sha256_of(data)):
            return "present"
        return self._client.upload_blob_bytes(repository, data)

    def put_manifest(
        self, repository: Reference, raw: bytes, media_type: str, reference: str | Digest
    ) -> Digest:
        return self._client.put_manifest(repository, raw, media_type, reference)

    def close(self) -> None:
        """The client is its owner's to close."""

    def _held(self, repository: Reference, digest: Digest) -> bool:
        return self._here(repository) and digest in self._held_blobs

    def _here(self, ref: Reference) -> bool:
        return (ref.registry, ref.repository) == (
            self._repository.registry,
            self._repository.repository,
        )
