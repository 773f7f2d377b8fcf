"""Which TLS certificates crossdock trusts: the system's, like pip and uv (``--native-tls``).

The operating system's trust store (truststore: the Keychain on macOS, the Windows store, the
system bundle on Linux) rather than a CA bundle shipped with a library: a corporate proxy's CA
that IT installed in the system store then just works, and so does a private registry's CA
added there. On Linux ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` replace the system bundle, as they do
for OpenSSL, curl and pip.

On Linux the system store *is* a bundle that OpenSSL reads, and truststore's context reads it
again for every connection it opens, one connection at a time (under its lock): ~40 ms of CPU
each with OpenSSL 3 and a distribution's ~150 certificates. A push opens a connection per
upload thread and per token realm, so it spent more time loading certificates than sending a
code-only change (issue 14). There crossdock configures one context the way truststore does
(the same locations, the same checks) and shares it, per trust setting, for the process; an
``ssl.SSLContext`` is safe to share between threads and connections.
"""

from __future__ import annotations

import functools
import os
import re
import ssl
import sys
from pathlib import Path

__all__ = ["system_ssl_context"]

# Where distributions keep their bundle, in the order truststore looks (truststore._openssl,
# after certifi-system-store), for an OpenSSL built with a default path this system lacks
# (a Python from python-build-standalone on Debian, say).
_DISTRIBUTION_BUNDLES = (
    "/etc/ssl/cert.pem",  # Alpine, Arch, Fedora 34-43, RHEL 9-10, BSD
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",  # Fedora 44+, RHEL 11+
    "/etc/pki/tls/cert.pem",  # Fedora <= 34, RHEL <= 9
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu
    "/etc/ssl/ca-bundle.pem",  # SUSE
)
_HASHED_CERTIFICATE = re.compile(r"^[0-9a-fA-F]{8}\.[0-9]$")
_ON_LINUX = sys.platform.startswith("linux")


def system_ssl_context() -> ssl.SSLContext:
    """A client context verifying servers (certificate and host name) against the system trust
    store. On Linux one context per trust setting (``SSL_CERT_FILE``, ``SSL_CERT_DIR``), shared:
    callers must not change it."""
    if _ON_LINUX:
        return _openssl_context(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
    import truststore  # the platform's own verifier: nothing to load per connection

    return truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


@functools.cache
def _openssl_context(cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    """What truststore's context holds on Linux, loaded once: OpenSSL's default locations
    (``SSL_CERT_FILE`` / ``SSL_CERT_DIR``, else the ones it was built with) when they hold
    certificates, else the first distribution bundle that exists. The arguments are the cache's
    key: another trust setting is another context."""
    del cert_file, cert_dir  # read by OpenSSL itself (get_default_verify_paths)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # host names checked, certificates required
    defaults = ssl.get_default_verify_paths()
    if defaults.cafile or (defaults.capath and _holds_certificates(defaults.capath)):
        context.set_default_verify_paths()
    else:
        for bundle in _DISTRIBUTION_BUNDLES:
            if Path(bundle).is_file():
                context.load_verify_locations(cafile=bundle)
                break
    return context


def _holds_certificates(folder: str) -> bool:
    """Whether ``folder`` is an OpenSSL hashed certificate folder (``c_rehash``'s names)."""
    try:
        return any(_HASHED_CERTIFICATE.match(child.name) for child in Path(folder).iterdir())
    except OSError:
        return False
