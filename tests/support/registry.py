"""An in-process OCI registry for tests: real HTTP on loopback, storage in memory.

Like go-containerregistry's ``pkg/registry``: a small but real implementation of the OCI
distribution API, so tests can show registry behaviours that distribution 2.8 (the stage's
registry) cannot be made to show on demand. Usage::

    from tests.support.registry import InProcessRegistry, Quirks

    with InProcessRegistry(Quirks(refuse_mounts=True)) as registry:
        client = RegistryClient(registry.host)        # "127.0.0.1:PORT", plain HTTP
        ...
        registry.requests                             # every request: Seen(method, path, headers)
        registry.blobs[digest]                        # what was stored

What it serves (no auth): ``GET /v2/``; manifests GET/HEAD/PUT by tag or digest, DELETE by tag
(``Quirks.tag_deletion``); blobs GET
(with ``Range``)/HEAD; uploads: ``POST`` (with ``?mount=&from=`` and ``?digest=`` for a
monolithic POST), ``PATCH`` (streamed or with ``Content-Range``), ``PUT ?digest=``, and
``GET`` of an upload's location (its ``Range``, for resuming), ``DELETE`` of it (cancelled).
Digests and sizes are checked.

Switches (``Quirks``, all off by default) for the places where registries differ and for faults
(cut uploads, short or altered bodies, manifests rewritten); ``intercept`` answers any request
first (fault injection: return a ``Canned`` answer, or None to go on).

Bearer tokens: ``TokenServer`` is a token realm on loopback (its answers switchable: tokens,
5xx, not JSON) and ``bearer_gate(tokens)`` an ``intercept`` that answers 401 with its challenge
to any request without a live token; ``tokens.expire_all()`` / ``tokens.revoke()`` act mid-push.
HTTPS with a host name is the stage's part (stage/https.sh), not this one's.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING, Self
from urllib.parse import parse_qs, urlsplit

if TYPE_CHECKING:
    from crossdock.image.artifact import ImageSet

__all__ = ["Canned", "InProcessRegistry", "Quirks", "Seen", "TokenServer", "bearer_gate"]

API_VERSION = ("Docker-Distribution-API-Version", "registry/2.0")
_NAME = r"(?P<name>[a-z0-9]+(?:[._/-][a-z0-9]+)*)"
_ROUTES = [
    ("manifest", re.compile(rf"^/v2/{_NAME}/manifests/(?P<ref>[^/]+)$")),
    ("blob", re.compile(rf"^/v2/{_NAME}/blobs/(?P<digest>sha256:[0-9a-f]{{64}})$")),
    ("uploads", re.compile(rf"^/v2/{_NAME}/blobs/uploads/$")),
    ("upload", re.compile(rf"^/v2/{_NAME}/blobs/uploads/(?P<id>[0-9a-f-]+)$")),
]


@dataclass
class Quirks:
    """Registry behaviours that differ in the wild; a test flips what it needs."""

    # Answer cross-repository mounts with 202 and an ordinary session (as registries that do
    # not mount, or that cannot see the source repository, do).
    refuse_mounts: bool = False
    # Announce OCI-Chunk-Min-Length on new sessions and refuse smaller chunks (except the last).
    chunk_min_length: int | None = None
    # Answer the Nth PATCH (1-based, over the registry's life) with 500 after keeping only the
    # first half of its bytes, as a connection cut mid-chunk would leave it.
    break_patch: int | None = None
    # Refuse GET of an upload location (registries that cannot report progress) with 404.
    no_upload_status: bool = False
    # Cut this many blob GETs off after half their bytes (the connection drops mid-body).
    cut_blob_gets: int = 0
    # Answer blob GETs with the whole blob (200) even when a Range is asked for.
    ignore_range: bool = False
    # Blob GETs answer a complete-looking 200 whose body is "short" (the first half, with a
    # matching Content-Length) or "altered" (the right size, one byte changed).
    bad_blob_bodies: str | None = None
    # Cut this many upload requests with a body (PATCH, PUT) off after reading half their bytes:
    # the connection closes without an answer, as a reset mid-upload leaves it.
    cut_uploads: int = 0
    # Hold the first upload request with a body over this many bytes once its first body bytes
    # arrived: ``holding`` is set, and the registry reads on when ``release`` is set (a test
    # kills the client in between).
    hold_upload_over: int | None = None
    # Manifest GET/HEAD answers carry no Docker-Content-Digest.
    no_manifest_digest: bool = False
    # Manifest GETs serve other bytes (a space appended) under the stored digest's header.
    alter_manifest_gets: bool = False
    # Manifests PUT are stored re-serialized (indented), under the digest of those bytes.
    rewrite_manifests: bool = False
    # DELETE of a manifest by tag: "spec" removes the tag only (distribution-spec 1.1);
    # "refused" answers 400 DIGEST_INVALID (distribution 2.8 takes a digest only); "manifest"
    # removes the manifest the tag names with every tag on it (the non-compliant case).
    tag_deletion: str = "spec"


@dataclass(frozen=True)
class Canned:
    """An answer ``intercept`` returns instead of the registry's."""

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Seen:
    method: str
    path: str  # with the query
    headers: Mapping[str, str]


class _LoopbackServer:
    """An HTTP server on ``127.0.0.1`` (a free port), served from a background thread until
    closed (or the ``with`` block ends)."""

    def _serve(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self.host = f"127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class InProcessRegistry(_LoopbackServer):
    """Serves on ``127.0.0.1`` (a free port) in a background thread until closed."""

    def __init__(
        self,
        quirks: Quirks | None = None,
        *,
        intercept: Callable[[Seen], Canned | None] | None = None,
    ) -> None:
        self.quirks = quirks or Quirks()
        self.intercept = intercept
        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[tuple[str, str], tuple[bytes, str]] = {}
        self.links: set[tuple[str, str]] = set()  # (repository, blob digest)
        self.uploads: dict[str, bytearray] = {}
        self.short_chunks: set[str] = set()  # sessions that got a chunk below the minimum
        self.requests: list[Seen] = []
        self.answers: list[int] = []  # the status of every answer, in order
        self.patches = 0
        self.cut_gets = 0
        self.cut_upload_bytes: list[int] = []  # bytes received by each cut upload request
        self.body_sizes: list[tuple[str, int]] = []  # (METHOD path, bytes read) of each body
        self.holding, self.release = threading.Event(), threading.Event()
        self.held: Seen | None = None  # the upload request hold_upload_over held
        self._lock = threading.Lock()
        self._serve(_handler_for(self))

    def put_image_set(self, repository: str, image_set: ImageSet, tag: str) -> None:
        """Store ``image_set`` in ``repository`` as a finished push leaves it: its blobs, its
        manifests and index by digest, ``tag`` naming the index (or, without one, the first
        manifest). Written straight into storage, not through the API: a test of pulling does
        not depend on crossdock's push."""
        with self._lock:
            for image in image_set.images:
                config = image.manifest.config.digest
                self.blobs[str(config)] = image.config.raw
                self.links.add((repository, str(config)))
                for blob in image.layers:
                    self.blobs[str(blob.descriptor.digest)] = blob.path.read_bytes()
                    self.links.add((repository, str(blob.descriptor.digest)))
                stored = (image.manifest.raw, image.manifest.media_type)
                self.manifests[(repository, str(image.manifest.digest))] = stored
            top = image_set.index or image_set.images[0].manifest
            if image_set.index is not None:
                stored = (image_set.index.raw, image_set.index.media_type)
                self.manifests[(repository, str(image_set.index.digest))] = stored
            self.manifests[(repository, tag)] = (top.raw, top.media_type)

    def methods(self, kind: str) -> list[str]:
        """``METHOD path`` of the requests whose path contains ``kind`` (e.g. "/uploads/")."""
        return [f"{r.method} {r.path}" for r in self.requests if kind in r.path]


def _digest(data: bytes | bytearray) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _error(code: str, message: str) -> bytes:
    return json.dumps({"errors": [{"code": code, "message": message}]}).encode()


def _handler_for(registry: InProcessRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: ARG002
            return

        # -- plumbing ----------------------------------------------------------------------

        def _body(self) -> bytes:
            self._hold_if_asked()
            body = self._read_body()
            with registry._lock:
                registry.body_sizes.append((f"{self.command} {self.path}", len(body)))
            return body

        def _hold_if_asked(self) -> None:
            limit = registry.quirks.hold_upload_over
            length = int(self.headers.get("Content-Length") or 0)
            if limit is None or length <= limit or "/blobs/uploads/" not in self.path:
                return
            with registry._lock:
                if registry.held is not None:
                    return
                registry.held = Seen(self.command, self.path, dict(self.headers.items()))
            self.rfile.peek(1)  # type: ignore[attr-defined]  # the body has started to arrive
            registry.holding.set()
            registry.release.wait(60)

        def _read_body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                parts: list[bytes] = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                    if size == 0:
                        self.rfile.readline()
                        return b"".join(parts)
                    parts.append(self.rfile.read(size))
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _answer(
            self, status: int, body: bytes = b"", headers: Mapping[str, str] | None = None
        ) -> None:
            with registry._lock:
                registry.answers.append(status)
            self.send_response(status)
            self.send_header(*API_VERSION)
            sent = {k.lower() for k in (headers or {})}
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            if "content-length" not in sent:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _route(self) -> None:
            url = urlsplit(self.path)
            seen = Seen(self.command, self.path, dict(self.headers.items()))
            with registry._lock:
                registry.requests.append(seen)
            if registry.intercept is not None:
                canned = registry.intercept(seen)
                if canned is not None:
                    self._body()
                    self._answer(canned.status, canned.body, canned.headers)
                    return
            self.query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/v2/":
                self._answer(200, b"{}", {"Content-Type": "application/json"})
                return
            for kind, pattern in _ROUTES:
                match = pattern.match(url.path)
                if match is not None:
                    action = getattr(self, f"_{kind}_{self.command.lower()}", None)
                    if action is None:
                        self._body()
                        self._answer(405, _error("UNSUPPORTED", f"{self.command} {url.path}"))
                    else:
                        action(**match.groupdict())
                    return
            self._answer(404, _error("NAME_UNKNOWN", url.path))

        do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _route  # noqa: N815

        # -- manifests ---------------------------------------------------------------------

        def _manifest_get(self, name: str, ref: str) -> None:
            found = registry.manifests.get((name, ref))
            if found is None:
                self._answer(404, _error("MANIFEST_UNKNOWN", ref))
                return
            raw, media_type = found
            headers = {"Content-Type": media_type, "Docker-Content-Digest": _digest(raw)}
            if registry.quirks.no_manifest_digest:
                del headers["Docker-Content-Digest"]
            if registry.quirks.alter_manifest_gets:
                raw += b" "
            self._answer(200, raw, headers)

        _manifest_head = _manifest_get

        def _manifest_put(self, name: str, ref: str) -> None:
            raw = self._body()
            media_type = self.headers.get("Content-Type", "")
            digest = _digest(raw)
            if ref.startswith("sha256:") and ref != digest:
                self._answer(400, _error("DIGEST_INVALID", ref))
                return
            if registry.quirks.rewrite_manifests:
                raw = json.dumps(json.loads(raw), indent=2).encode()
                digest = _digest(raw)
                ref = digest if ref.startswith("sha256:") else ref
            with registry._lock:
                registry.manifests[(name, ref)] = (raw, media_type)
                registry.manifests[(name, digest)] = (raw, media_type)
            self._answer(201, headers={"Docker-Content-Digest": digest, "Location": self.path})

        def _manifest_delete(self, name: str, ref: str) -> None:
            if ref.startswith("sha256:"):  # crossdock never deletes a manifest by digest
                self._answer(405, _error("UNSUPPORTED", "deleting a manifest by digest"))
                return
            found = registry.manifests.get((name, ref))
            mode = registry.quirks.tag_deletion
            if mode == "refused" or found is None:
                status = (400, "DIGEST_INVALID") if mode == "refused" else (404, "MANIFEST_UNKNOWN")
                self._answer(status[0], _error(status[1], ref))
                return
            with registry._lock:
                if mode == "manifest":
                    same = [k for k, v in registry.manifests.items() if v[0] == found[0]]
                    for key in same:
                        del registry.manifests[key]
                else:
                    del registry.manifests[(name, ref)]
            self._answer(202)

        # -- blobs -------------------------------------------------------------------------

        def _blob_get(self, name: str, digest: str) -> None:
            data = registry.blobs.get(digest)
            if data is None or (name, digest) not in registry.links:
                self._answer(404, _error("BLOB_UNKNOWN", digest))
                return
            headers = {"Content-Type": "application/octet-stream", "Docker-Content-Digest": digest}
            if self.command == "GET" and self._cut_this_get():
                self._answer_cut(data, headers)
                return
            if self.command == "GET" and registry.quirks.bad_blob_bodies == "short":
                data = data[: len(data) // 2]
            elif self.command == "GET" and registry.quirks.bad_blob_bodies == "altered":
                data = data[:-1] + bytes([data[-1] ^ 0xFF])
            wanted = re.match(r"bytes=(\d+)-(\d*)$", self.headers.get("Range", ""))
            if wanted and self.command == "GET" and not registry.quirks.ignore_range:
                start = int(wanted.group(1))
                end = int(wanted.group(2)) if wanted.group(2) else len(data) - 1
                headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
                self._answer(206, data[start : end + 1], headers)
                return
            if self.command == "HEAD":
                headers["Content-Length"] = str(len(data))
            self._answer(200, data, headers)

        _blob_head = _blob_get

        def _cut_this_get(self) -> bool:
            with registry._lock:
                if registry.cut_gets >= registry.quirks.cut_blob_gets:
                    return False
                registry.cut_gets += 1
                return True

        def _answer_cut(self, data: bytes, headers: Mapping[str, str]) -> None:
            """Announce the whole blob, send half of it, and drop the connection."""
            with registry._lock:
                registry.answers.append(200)
            self.send_response(200)
            self.send_header(*API_VERSION)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True

        # -- uploads -----------------------------------------------------------------------

        def _new_session(self, name: str) -> None:
            upload_id = str(uuid.uuid4())
            with registry._lock:
                registry.uploads[upload_id] = bytearray()
            headers = {
                "Location": f"/v2/{name}/blobs/uploads/{upload_id}?_state=opaque%3D%3D",
                "Range": "0-0",
                "Docker-Upload-UUID": upload_id,
            }
            if registry.quirks.chunk_min_length is not None:
                headers["OCI-Chunk-Min-Length"] = str(registry.quirks.chunk_min_length)
            self._answer(202, headers=headers)

        def _uploads_post(self, name: str) -> None:
            body = self._body()
            mount, source = self.query.get("mount"), self.query.get("from")
            mountable = (source, mount) in registry.links
            if mount and source and mountable and not registry.quirks.refuse_mounts:
                with registry._lock:
                    registry.links.add((name, mount))
                self._answer(201, headers={"Location": f"/v2/{name}/blobs/{mount}"})
                return
            if "digest" in self.query:  # monolithic POST
                self._store(name, self.query["digest"], body)
                return
            self._new_session(name)

        def _store(self, name: str, digest: str, data: bytes | bytearray) -> None:
            if _digest(data) != digest:
                self._answer(400, _error("DIGEST_INVALID", f"got {_digest(data)}"))
                return
            with registry._lock:
                registry.blobs[digest] = bytes(data)
                registry.links.add((name, digest))
            self._answer(201, headers={"Location": f"/v2/{name}/blobs/{digest}"})

        def _session(self, upload_id: str) -> bytearray | None:
            session = registry.uploads.get(upload_id)
            if session is None:
                self._body()
                self._answer(404, _error("BLOB_UPLOAD_UNKNOWN", upload_id))
            return session

        def _progress(self, name: str, upload_id: str, session: bytearray) -> dict[str, str]:
            return {
                "Location": f"/v2/{name}/blobs/uploads/{upload_id}?_state=opaque%3D%3D",
                "Range": f"0-{max(len(session) - 1, 0)}",
                "Docker-Upload-UUID": upload_id,
            }

        def _chunk_allowed(self, upload_id: str, data: bytes) -> bool:
            """Only the last chunk may be shorter than OCI-Chunk-Min-Length: a chunk after a
            short one is refused (the registry learns a chunk was not the last only then)."""
            minimum = registry.quirks.chunk_min_length
            if minimum is None:
                return True
            if upload_id in registry.short_chunks:
                self._answer(416, _error("SIZE_INVALID", "a chunk below OCI-Chunk-Min-Length"))
                return False
            if len(data) < minimum:
                with registry._lock:
                    registry.short_chunks.add(upload_id)
            return True

        def _cut_this_upload(self) -> bool:
            """Read half the body, then drop the connection without an answer (quirk)."""
            length = int(self.headers.get("Content-Length") or 0)
            with registry._lock:
                if length == 0 or len(registry.cut_upload_bytes) >= registry.quirks.cut_uploads:
                    return False
                registry.cut_upload_bytes.append(length // 2)
            self.rfile.read(length // 2)
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return True

        def _upload_patch(self, name: str, id: str) -> None:
            session = self._session(id)
            if session is None or self._cut_this_upload():
                return
            data = self._body()
            content_range = self.headers.get("Content-Range")
            if content_range is not None:
                start = int(content_range.split("-")[0])
                if start != len(session):
                    self._answer(416, headers=self._progress(name, id, session))
                    return
            if not self._chunk_allowed(id, data):
                return
            with registry._lock:
                registry.patches += 1
                broken = registry.patches == registry.quirks.break_patch
            if broken:
                session.extend(data[: len(data) // 2])
                self._answer(500, _error("UNKNOWN", "connection lost"))
                return
            session.extend(data)
            self._answer(202, headers=self._progress(name, id, session))

        def _upload_get(self, name: str, id: str) -> None:
            if registry.quirks.no_upload_status:
                self._answer(404, _error("BLOB_UPLOAD_UNKNOWN", id))
                return
            session = self._session(id)
            if session is not None:
                self._answer(204, headers=self._progress(name, id, session))

        def _upload_put(self, name: str, id: str) -> None:
            session = self._session(id)
            if session is None or self._cut_this_upload():
                return
            data = self._body()
            if data and not self._chunk_allowed(id, data):
                return
            session.extend(data)
            with registry._lock:
                registry.uploads.pop(id, None)
            self._store(name, self.query.get("digest", ""), session)

        def _upload_delete(self, name: str, id: str) -> None:  # noqa: ARG002 - the route's
            if self._session(id) is not None:
                with registry._lock:
                    registry.uploads.pop(id, None)
                self._answer(204)

    return Handler


class TokenServer(_LoopbackServer):
    """A bearer-token realm on ``127.0.0.1`` (a free port): ``GET /token`` answers
    ``{"token": ..., "expires_in": ...}``, or what ``mode`` says: "error" (503), "not-json"
    (an HTML page with 200). Tokens are live until ``expire_all`` or ``revoke``; after
    ``revoke`` the account gets no new token either (401), as when credentials are withdrawn."""

    def __init__(self, *, expires_in: int = 300) -> None:
        self.mode = "ok"
        self.expires_in = expires_in
        self.live: set[str] = set()
        self.issued: list[str] = []
        self.refused: list[str] = []  # tokens it issued that the gate turned away (expired)
        self.revoked = False
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # noqa: ARG002
                return

            def do_GET(self) -> None:
                status, body, kind = owner._answer()
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._serve(Handler)
        self.realm = f"{self.url}/token"

    def _answer(self) -> tuple[int, bytes, str]:
        if self.mode == "error":
            return 503, b"token service down", "text/plain"
        if self.mode == "not-json":
            return 200, b"<html><body>Sign in</body></html>", "text/html"
        with self._lock:
            if self.revoked:
                return 401, b'{"details": "access revoked"}', "application/json"
            token = f"token-{len(self.issued)}-{time.monotonic_ns()}"
            self.issued.append(token)
            self.live.add(token)
        body = json.dumps({"token": token, "expires_in": self.expires_in}).encode()
        return 200, body, "application/json"

    def expire_all(self) -> None:
        with self._lock:
            self.live.clear()

    def revoke(self) -> None:
        with self._lock:
            self.live.clear()
            self.revoked = True


def bearer_gate(
    tokens: TokenServer,
    realm: str | None = None,
    then: Callable[[Seen], Canned | None] | None = None,
) -> Callable[[Seen], Canned | None]:
    """An ``intercept``: 401 with a bearer challenge (pointing at ``realm``, by default the
    token server's) unless the request carries a live token; else ``then`` decides."""
    challenge = f'Bearer realm="{realm or tokens.realm}",service="in-process"'

    def gate(seen: Seen) -> Canned | None:
        authorization = {k.lower(): v for k, v in seen.headers.items()}.get("authorization", "")
        token = authorization.removeprefix("Bearer ")
        if not authorization.startswith("Bearer ") or token not in tokens.live:
            if token in tokens.issued:
                tokens.refused.append(token)
            body = _error("UNAUTHORIZED", "authentication required")
            return Canned(401, body, {"WWW-Authenticate": challenge})
        return then(seen) if then is not None else None

    return gate
