"""A small, real token server for distribution's ``auth: token`` (tests only, loopback only).

Run as a program: ``python token_server.py --port P --folder DIR --user U --password-file F``.
It makes a self-signed P-256 key and certificate in DIR (``cert.pem``, the registry's
``rootcertbundle``), prints ``ready`` once listening, and answers ``GET /token?service=..&scope=..``
with an ES256 JWT carrying the requested ``access`` claims, to the one user it knows (HTTP basic
auth). Anyone else gets 401. The JWT names its key with an ``x5c`` header, which distribution 2.8
verifies against the root bundle.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import secrets
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

ISSUER = "crossdock-test-issuer"
SERVICE = "crossdock-test-registry"
TOKEN_SECONDS = 300


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_key_and_cert(folder: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
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
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert


def make_token(
    key: ec.EllipticCurvePrivateKey, cert: x509.Certificate, subject: str, scopes: list[str]
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
        "iss": ISSUER,
        "sub": subject,
        "aud": SERVICE,
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


def serve(port: int, folder: Path, user: str, password: str) -> None:
    key, cert = make_key_and_cert(folder)
    expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path != "/token":
                self.send_error(404)
                return
            if self.headers.get("Authorization") != expected:
                self.send_response(401)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            query = parse_qs(url.query)
            if query.get("service") != [SERVICE]:
                self.send_error(400, "wrong service")
                return
            token = make_token(key, cert, user, query.get("scope", []))
            body = json.dumps({"token": token, "expires_in": TOKEN_SECONDS}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: ARG002
            return  # quiet: the test's output is what the test checks

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print("ready", flush=True)
    server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--folder", type=Path, required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password-file", type=Path, required=True)
    args = parser.parse_args()
    password = args.password_file.read_text().strip()
    serve(args.port, args.folder, args.user, password)


if __name__ == "__main__":
    main()
