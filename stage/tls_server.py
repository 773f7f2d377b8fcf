"""An HTTPS server for the stage's daemons that shakes hands in each connection's own thread.

Wrapping the listening socket (the usual recipe) runs every TLS handshake inside ``accept``, in
the one thread that accepts connections: one slow or silent client then stalls every other
client until it gives up. Here ``accept`` only accepts; the handshake happens in the worker
thread, with a timeout.
"""

from __future__ import annotations

import socket
import ssl
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

_HANDSHAKE_SECONDS = 30.0
# A kept-alive connection that stays silent this long is closed (and its thread ends).
_IDLE_SECONDS = 300.0


class TLSThreadingHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # a burst of parallel uploads must not overflow the backlog

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        tls: tuple[Path, Path],
    ) -> None:
        super().__init__(address, handler)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(*tls)

    def finish_request(self, request: Any, client_address: Any) -> None:  # noqa: ANN401 - socketserver's signature
        # Runs in the connection's thread (ThreadingMixIn.process_request_thread).
        raw: socket.socket = request
        # Without it a response's body waits for the client's ACK of its headers (Nagle), which
        # Linux delays up to 40 ms: every small request took ~40 ms more than on a real registry
        # (Go's servers set TCP_NODELAY on every connection).
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        raw.settimeout(_HANDSHAKE_SECONDS)
        try:
            secure = self.context.wrap_socket(raw, server_side=True)
        except (OSError, ssl.SSLError):
            return  # a client that gave up, or did not trust us: nothing to answer
        secure.settimeout(_IDLE_SECONDS)
        try:
            super().finish_request(secure, client_address)
        finally:
            secure.close()
