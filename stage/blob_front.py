"""The HTTPS front of the stage's token-auth registry, and the storage origin blobs move to.

Public registries seldom serve blob bytes themselves: Docker Hub, ECR and GHCR answer
``GET /v2/<name>/blobs/<digest>`` with a redirect to a CDN or to a presigned object-storage URL
on another host. distribution 2.8 redirects only with cloud storage drivers, so this program
stands in for that part (stage/https.sh runs it as a daemon):

* the front (``--front-port``, HTTPS under the registry's host name) passes every request to
  the registry (distribution, plain HTTP on loopback, token auth) and its answer back, except
  blob GETs: when the registry says the caller may read the blob (a HEAD with the caller's
  ``Authorization`` answers 200), the front answers ``307`` with a signed URL on the storage
  origin;
* the storage origin (``--storage-port``, HTTPS under another host name) serves blob bytes from
  the registry's storage folder for URLs the front signed (HMAC, expiring). Like S3 with a
  presigned URL, it refuses a request that also carries an ``Authorization`` header (400), and
  it appends every request to ``--log`` as a JSON line (method, path, whether
  ``Authorization`` came, status, user agent, the Host asked for), so tests can prove that
  clients drop the registry's credentials on the cross-origin redirect;
* with ``--front-log`` the front appends every request to that file the same way (the kind of
  ``Authorization`` only: ``Bearer``, ``Basic`` or none, never its value).

Both listen on 127.0.0.1 unless ``--address`` / ``--storage-address`` say otherwise (the Docker
Hub stand-in gives each host a loopback address of its own, on port 443); a storage URL names
its port only when it is not HTTPS's 443.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import json
import re
import secrets
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from tls_server import TLSThreadingHTTPServer

_BLOB_PATH = re.compile(r"^/v2/.+/blobs/(sha256:[0-9a-f]{64})$")
_STORAGE_PATH = re.compile(r"^/blobs/sha256/([0-9a-f]{64})$")
# Headers that belong to one connection, never forwarded (RFC 9110 section 7.6.1).
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
_URL_SECONDS = 300
_PIECE = 1024 * 1024


@dataclass(frozen=True)
class Options:
    front_port: int
    upstream: str  # host:port of the registry, plain HTTP
    storage_port: int
    storage_host: str  # host name in the signed URLs
    registry_root: Path  # distribution's filesystem rootdirectory
    tls: tuple[Path, Path]
    log: Path
    front_log: Path | None = None
    address: str = "127.0.0.1"
    storage_address: str = "127.0.0.1"


def _sign(secret: bytes, digest_hex: str, expires: int) -> str:
    return hmac.new(secret, f"{digest_hex}:{expires}".encode(), hashlib.sha256).hexdigest()


def _append(log: Path, lock: threading.Lock, entry: Mapping[str, object]) -> None:
    with lock, log.open("a", encoding="utf-8") as out:
        out.write(json.dumps(entry) + "\n")


def _read_body(handler: BaseHTTPRequestHandler) -> Iterator[bytes]:
    """The request body in pieces (Content-Length or chunked)."""
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip(), 16)
            if size == 0:
                handler.rfile.readline()
                return
            yield handler.rfile.read(size)
            handler.rfile.readline()
    remaining = int(handler.headers.get("Content-Length") or 0)
    while remaining > 0:
        piece = handler.rfile.read(min(_PIECE, remaining))
        if not piece:
            return
        remaining -= len(piece)
        yield piece


def front_handler(options: Options, secret: bytes) -> type[BaseHTTPRequestHandler]:
    upstream_host, _, upstream_port = options.upstream.rpartition(":")
    log_lock = threading.Lock()
    storage_origin = (
        options.storage_host
        if options.storage_port == 443
        else f"{options.storage_host}:{options.storage_port}"
    )

    class Front(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: ARG002
            return

        def send_response(self, code: int, message: str | None = None) -> None:
            if options.front_log is not None:
                authorization = self.headers.get("Authorization")
                entry = {
                    "method": self.command,
                    "path": urlsplit(self.path).path,
                    "host": self.headers.get("Host", ""),
                    "authorization": authorization.split(" ", 1)[0] if authorization else None,
                    "status": code,
                    "user_agent": self.headers.get("User-Agent", ""),
                }
                _append(options.front_log, log_lock, entry)
            super().send_response(code, message)

        def _handle(self) -> None:
            blob = _BLOB_PATH.match(urlsplit(self.path).path)
            if self.command == "GET" and blob and self._may_read():
                self._redirect(blob.group(1))
                return
            self._forward()

        do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle  # noqa: N815

        def _connection(self) -> http.client.HTTPConnection:
            return http.client.HTTPConnection(upstream_host, int(upstream_port), timeout=300)

        def _upstream_headers(self) -> list[tuple[str, str]]:
            headers = [(k, v) for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP]
            # distribution builds absolute URLs (upload Locations) from these.
            return [*headers, ("X-Forwarded-Proto", "https")]

        def _may_read(self) -> bool:
            connection = self._connection()
            try:
                connection.putrequest("HEAD", self.path, skip_host=True)
                for key, value in self._upstream_headers():
                    connection.putheader(key, value)
                connection.endheaders()
                return connection.getresponse().status == 200
            finally:
                connection.close()

        def _redirect(self, digest: str) -> None:
            digest_hex = digest.removeprefix("sha256:")
            expires = int(time.time()) + _URL_SECONDS
            signature = _sign(secret, digest_hex, expires)
            location = (
                f"https://{storage_origin}/blobs/sha256/{digest_hex}"
                f"?expires={expires}&signature={signature}"
            )
            self.send_response(307)
            self.send_header("Location", location)
            self.send_header("Docker-Distribution-API-Version", "registry/2.0")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _forward(self) -> None:
            connection = self._connection()
            try:
                connection.putrequest(
                    self.command, self.path, skip_host=True, skip_accept_encoding=True
                )
                chunked = self.headers.get("Transfer-Encoding", "").lower() == "chunked"
                for key, value in self._upstream_headers():
                    connection.putheader(key, value)
                if chunked:
                    connection.putheader("Transfer-Encoding", "chunked")
                connection.endheaders()
                for piece in _read_body(self):
                    connection.send(b"%x\r\n%b\r\n" % (len(piece), piece) if chunked else piece)
                if chunked:
                    connection.send(b"0\r\n\r\n")
                self._relay(connection.getresponse())
            finally:
                connection.close()

        def _relay(self, response: http.client.HTTPResponse) -> None:
            headers = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP]
            length = response.getheader("Content-Length")
            body = b""
            if length is None and self.command != "HEAD":
                body = response.read()
                headers.append(("Content-Length", str(len(body))))
            self.send_response(response.status, response.reason)
            for key, value in headers:
                self.send_header(key, value)
            self.end_headers()
            if self.command == "HEAD":
                return
            if length is None:
                self.wfile.write(body)
                return
            while piece := response.read(_PIECE):
                self.wfile.write(piece)

    return Front


def storage_handler(options: Options, secret: bytes) -> type[BaseHTTPRequestHandler]:
    log_lock = threading.Lock()

    class Storage(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: ARG002
            return

        def _record(self, status: int) -> None:
            entry = {
                "method": self.command,
                "path": urlsplit(self.path).path,
                "authorization": "Authorization" in self.headers,
                "status": status,
                "user_agent": self.headers.get("User-Agent", ""),
                "host": self.headers.get("Host", ""),
            }
            _append(options.log, log_lock, entry)

        def _refuse(self, status: int, code: str, message: str) -> None:
            self._record(status)
            body = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            match = _STORAGE_PATH.match(url.path)
            if match is None:
                self._refuse(404, "NoSuchKey", "not a blob")
                return
            if "Authorization" in self.headers:
                self._refuse(400, "InvalidArgument", "Only one auth mechanism allowed")
                return
            digest_hex = match.group(1)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            expires = int(query.get("expires", "0")) if query.get("expires", "").isdigit() else 0
            expected = _sign(secret, digest_hex, expires)
            if expires < time.time() or not hmac.compare_digest(
                expected, query.get("signature", "")
            ):
                self._refuse(403, "AccessDenied", "bad or expired signature")
                return
            data = (
                options.registry_root
                / f"docker/registry/v2/blobs/sha256/{digest_hex[:2]}/{digest_hex}/data"
            )
            if not data.is_file():
                self._refuse(404, "NoSuchKey", "no such blob")
                return
            self._send_file(data)

        do_HEAD = do_GET  # noqa: N815

        def _send_file(self, data: Path) -> None:
            size = data.stat().st_size
            start, end = 0, size - 1
            wanted = re.match(r"bytes=(\d+)-(\d*)$", self.headers.get("Range", ""))
            status = 200
            if wanted:
                start = int(wanted.group(1))
                end = min(int(wanted.group(2)), size - 1) if wanted.group(2) else size - 1
                status = 206
            self._record(status)
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(end - start + 1))
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            self.end_headers()
            if self.command == "HEAD":
                return
            with data.open("rb") as handle:
                handle.seek(start)
                remaining = end - start + 1
                while remaining > 0 and (piece := handle.read(min(_PIECE, remaining))):
                    remaining -= len(piece)
                    self.wfile.write(piece)

    return Storage


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--front-port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--storage-port", type=int, required=True)
    parser.add_argument("--storage-host", required=True)
    parser.add_argument("--registry-root", type=Path, required=True)
    parser.add_argument("--tls-cert", type=Path, required=True)
    parser.add_argument("--tls-key", type=Path, required=True)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--front-log", type=Path)
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--storage-address", default="127.0.0.1")
    args = parser.parse_args()
    options = Options(
        args.front_port,
        args.upstream,
        args.storage_port,
        args.storage_host,
        args.registry_root,
        (args.tls_cert, args.tls_key),
        args.log,
        front_log=args.front_log,
        address=args.address,
        storage_address=args.storage_address,
    )
    secret = secrets.token_bytes(32)  # new per start: URLs signed before a restart expire
    storage = TLSThreadingHTTPServer(
        (options.storage_address, options.storage_port),
        storage_handler(options, secret),
        options.tls,
    )
    threading.Thread(target=storage.serve_forever, daemon=True).start()
    front = TLSThreadingHTTPServer(
        (options.address, options.front_port), front_handler(options, secret), options.tls
    )
    print("ready", flush=True)  # noqa: T201 - the stage waits for this line
    front.serve_forever()


if __name__ == "__main__":
    main()
