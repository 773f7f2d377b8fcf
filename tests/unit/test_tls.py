"""crossdock.tls: which certificates crossdock trusts, checked with real TLS handshakes (a CA and
a server certificate made here, the two ends of a socket pair: no network)."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from crossdock.tls import system_ssl_context

HOST = "registry.crossdock-unit.test"


class _Authority:
    """A CA, and a server certificate it signed for ``HOST``."""

    def __init__(self, folder: Path, name: str) -> None:
        now = dt.datetime.now(dt.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        ca = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        server = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(HOST)]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        pem = serialization.Encoding.PEM
        self.bundle = folder / f"{name}.pem"
        self.bundle.write_bytes(ca.public_bytes(pem))
        self.chain = folder / f"{name}-server.pem"
        self.chain.write_bytes(server.public_bytes(pem))
        self.key = folder / f"{name}-server.key"
        self.key.write_bytes(
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )


def _handshake(client: ssl.SSLContext, authority: _Authority, server_hostname: str) -> None:
    """A TLS handshake of ``client`` with a server presenting ``authority``'s certificate;
    raises what the client's verification raises."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(authority.chain, authority.key)
    ours, theirs = socket.socketpair()

    def serve() -> None:
        try:
            with server.wrap_socket(theirs, server_side=True) as tls:
                tls.recv(1)
        except (OSError, ssl.SSLError):
            pass  # the client refused the certificate, or closed

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        ours.settimeout(10)
        with client.wrap_socket(ours, server_hostname=server_hostname):
            pass
    finally:
        ours.close()
        thread.join(10)
        theirs.close()


@pytest.fixture
def authorities(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[_Authority, _Authority]:
    """Two CAs; the first is the trust setting (SSL_CERT_FILE)."""
    first, second = _Authority(tmp_path, "first-ca"), _Authority(tmp_path, "second-ca")
    monkeypatch.setenv("SSL_CERT_FILE", str(first.bundle))
    return first, second


def test_the_ca_named_by_ssl_cert_file_is_trusted_for_its_host_name_only(
    authorities: tuple[_Authority, _Authority],
) -> None:
    first, second = authorities
    context = system_ssl_context()
    _handshake(context, first, HOST)
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        _handshake(context, first, "another.crossdock-unit.test")
    # A server whose CA is not in the trust setting.
    with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer"):
        _handshake(context, second, HOST)


def test_one_context_is_shared_per_trust_setting_and_another_setting_gets_its_own(
    authorities: tuple[_Authority, _Authority], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = authorities
    shared = system_ssl_context()
    assert system_ssl_context() is shared  # loaded once: not per connection, not per client
    monkeypatch.setenv("SSL_CERT_FILE", str(second.bundle))
    other = system_ssl_context()
    assert other is not shared
    _handshake(other, second, HOST)  # the new setting is the one trusted, not a stale context
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(other, first, HOST)


def test_without_openssls_default_locations_the_distributions_bundle_is_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # OpenSSL's own locations missing (an OpenSSL built for another distribution's paths).
    empty = tmp_path / "no-certificates"
    empty.mkdir()
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "absent.pem"))
    monkeypatch.setenv("SSL_CERT_DIR", str(empty))
    assert ssl.get_default_verify_paths().cafile is None
    context = system_ssl_context()
    # This machine kind's bundle (Debian's ca-certificates): dozens of public CAs.
    assert len(context.get_ca_certs()) > 20
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
