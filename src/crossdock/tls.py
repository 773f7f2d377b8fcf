"""Which TLS certificates crossdock trusts: the system's, like pip and uv (``--native-tls``).

The operating system's trust store (truststore: the Keychain on macOS, the Windows store, the
system bundle on Linux) rather than a CA bundle shipped with a library: a corporate proxy's CA
that IT installed in the system store then just works, and so does a private registry's CA
added there. On Linux ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` replace the system bundle, as they do
for OpenSSL, curl and pip.
"""

from __future__ import annotations

import ssl

import truststore

__all__ = ["system_ssl_context"]


def system_ssl_context() -> ssl.SSLContext:
    """A client context verifying servers against the system trust store (new per call)."""
    return truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
