"""A small, real token server for distribution's ``auth: token`` (the stage and tests only).

Run as a program::

    python token_server.py --port P --folder DIR --user U --password-file F [--user ...] \
        [--anonymous-pull] [--namespaced] [--tls-cert C --tls-key K] [--address A] \
        [--service S --issuer I] [--log FILE]

It keeps a P-256 signing key and a self-signed certificate in DIR (``key.pem``, ``cert.pem``:
the registry's ``rootcertbundle``; made once and reused, so a restarted token server still
matches a running registry), prints ``ready`` once listening on 127.0.0.1, and answers
``GET /token?service=..&scope=..`` with an ES256 JWT carrying the requested ``access`` claims.
The users it knows (HTTP basic auth; one ``--password-file`` per ``--user``) get every action
asked for; with ``--namespaced`` a user gets more than ``pull`` only on repositories under its
own name (``U/...``), as on Docker Hub, where pushing to another account's repository (or to
``library/``, the official images') gets a token without ``push`` and the registry refuses the
push. With ``--anonymous-pull`` a request without credentials gets the ``pull`` actions only (as
Docker Hub's auth.docker.io gives anonymous pull tokens); wrong credentials get 401. The JWT
names its key with an ``x5c`` header, which distribution 2.8 verifies against the root bundle.
With ``--tls-cert`` it serves HTTPS (the stage's realm on a host of its own); with ``--address``
it listens there instead of 127.0.0.1 (the Docker Hub stand-in's realm, auth.docker.io, has a
loopback address of its own).
``--service`` and ``--issuer`` name the registry the tokens are for (Docker Hub's:
``registry.docker.io`` and ``auth.docker.io``); a request for another service is refused (400).
With ``--log`` every request is appended to FILE as a JSON line (the Host asked for, the
service, the scopes asked and granted, whether credentials came and whether they were right,
the status): what tests check a client asked for. Never the credentials themselves.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from tls_server import TLSThreadingHTTPServer

ISSUER = "crossdock-test-issuer"
SERVICE = "crossdock-test-registry"
TOKEN_SECONDS = 300


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_key_and_cert(folder: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """The signing key and certificate in ``folder``, made on first use."""
    key_file, cert_file = folder / "key.pem", folder / "cert.pem"
    if key_file.is_file() and cert_file.is_file():
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
        if isinstance(key, ec.EllipticCurvePrivateKey):
            return key, x509.load_pem_x509_certificate(cert_file.read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "crossdock test token signer")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_file.touch(mode=0o600)
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert


def make_token(
    key: ec.EllipticCurvePrivateKey,
    cert: x509.Certificate,
    subject: str,
    scopes: list[str],
    *,
    service: str = SERVICE,
    issuer: str = ISSUER,
) -> str:
    access = []
    for scope in scopes:
        kind, _, rest = scope.partition(":")
        name, _, actions = rest.rpartition(":")
        access.append({"type": kind, "name": name, "actions": actions.split(",")})
    now = int(time.time())
    header = {
        "typ": "JWT",
        "alg": "ES256",
        "x5c": [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()],
    }
    claims = {
        "iss": issuer,
        "sub": subject,
        "aud": service,
        "exp": now + TOKEN_SECONDS,
        "nbf": now - 10,
        "iat": now,
        "jti": secrets.token_hex(8),
        "access": access,
    }
    signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
    der = key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return f"{signing_input}.{_b64url(signature)}"


def granted(scopes: list[str], user: str | None, *, namespaced: bool = False) -> list[str]:
    """The scopes to sign: as asked for a known user (with ``namespaced``, on repositories under
    its name only), pull actions only for anonymous (``user`` None) and elsewhere."""
    out = []
    for scope in scopes:
        head, _, actions = scope.rpartition(":")
        name = head.partition(":")[2]
        if user is not None and (not namespaced or name.startswith(f"{user}/")):
            out.append(scope)
        elif "pull" in actions.split(","):
            out.append(f"{head}:pull")
    return out


@dataclass(frozen=True)
class Options:
    port: int
    folder: Path
    logins: Mapping[str, str]  # user -> password
    anonymous_pull: bool = False
    namespaced: bool = False
    tls: tuple[Path, Path] | None = None
    address: str = "127.0.0.1"
    service: str = SERVICE
    issuer: str = ISSUER
    log: Path | None = None


def serve(options: Options) -> None:
    key, cert = make_key_and_cert(options.folder)
    users = {
        "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode(): user
        for user, password in options.logins.items()
    }
    log_lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def _record(self, status: int, asked: list[str], given: list[str]) -> None:
            if options.log is None:
                return
            authorization = self.headers.get("Authorization")
            entry = {
                "host": self.headers.get("Host", ""),
                "path": urlsplit(self.path).path,
                "service": parse_qs(urlsplit(self.path).query).get("service", []),
                "scopes": asked,
                "granted": given,
                # The kind of credentials only ("Basic"), and whether they were a user's.
                "authorization": authorization.split(" ", 1)[0] if authorization else None,
                "authenticated": authorization in users,
                "status": status,
                "user_agent": self.headers.get("User-Agent", ""),
            }
            with log_lock, options.log.open("a", encoding="utf-8") as out:
                out.write(json.dumps(entry) + "\n")

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            asked = query.get("scope", [])
            if url.path != "/token":
                self._record(404, asked, [])
                self.send_error(404)
                return
            authorization = self.headers.get("Authorization")
            anonymous = authorization is None and options.anonymous_pull
            if authorization not in users and not anonymous:
                self._record(401, asked, [])
                self.send_response(401)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if query.get("service") != [options.service]:
                self._record(400, asked, [])
                self.send_error(400, "wrong service")
                return
            user = None if authorization is None else users[authorization]
            scopes = granted(asked, user, namespaced=options.namespaced)
            subject = user or ""
            token = make_token(
                key, cert, subject, scopes, service=options.service, issuer=options.issuer
            )
            self._record(200, asked, scopes)
            body = json.dumps({"token": token, "expires_in": TOKEN_SECONDS}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: ARG002
            return  # quiet: the test's output is what the test checks

    address = (options.address, options.port)
    server = (
        ThreadingHTTPServer(address, Handler)
        if options.tls is None
        else TLSThreadingHTTPServer(address, Handler, options.tls)
    )
    print("ready", flush=True)  # noqa: T201 - the parent waits for this line
    server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--folder", type=Path, required=True)
    parser.add_argument("--user", action="append", required=True)
    parser.add_argument("--password-file", type=Path, action="append", required=True)
    parser.add_argument("--anonymous-pull", action="store_true")
    parser.add_argument("--namespaced", action="store_true")
    parser.add_argument("--tls-cert", type=Path)
    parser.add_argument("--tls-key", type=Path)
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--service", default=SERVICE)
    parser.add_argument("--issuer", default=ISSUER)
    parser.add_argument("--log", type=Path)
    args = parser.parse_args()
    tls = (args.tls_cert, args.tls_key) if args.tls_cert and args.tls_key else None
    if len(args.user) != len(args.password_file):
        parser.error("give one --password-file per --user")
    passwords = [file.read_text().strip() for file in args.password_file]
    options = Options(
        args.port,
        args.folder,
        dict(zip(args.user, passwords, strict=True)),
        anonymous_pull=args.anonymous_pull,
        namespaced=args.namespaced,
        tls=tls,
        address=args.address,
        service=args.service,
        issuer=args.issuer,
        log=args.log,
    )
    serve(options)


if __name__ == "__main__":
    main()
