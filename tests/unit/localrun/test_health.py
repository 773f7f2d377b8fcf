import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from crossdock.localrun.health import HealthTimeoutError, port_is_taken, wait_for_health
from crossdock.localrun.service import image_port


class _Server:
    """A loopback HTTP server whose /health answers 503 until ``healthy_after`` seconds."""

    def __init__(self, healthy_after=0.0):
        started = time.monotonic()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                ready = time.monotonic() - started >= healthy_after
                status = 200 if ready and self.path == "/health" else 503
                body = b'{"status":"ok"}' if status == 200 else b"starting"
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_waits_until_the_health_path_answers_2xx():
    server = _Server(healthy_after=0.6)
    try:
        answer = wait_for_health(server.port, "/health", timeout_s=10, interval_s=0.1)
    finally:
        server.close()
    assert answer.status == 200
    assert answer.body == '{"status":"ok"}'
    assert answer.elapsed_s >= 0.5


def test_a_non_2xx_until_the_end_times_out_with_the_last_answer():
    server = _Server(healthy_after=0)
    try:
        with pytest.raises(HealthTimeoutError, match="last answer: HTTP 503") as caught:
            wait_for_health(server.port, "/other", timeout_s=0.5, interval_s=0.1)
    finally:
        server.close()
    assert caught.value.last is not None
    assert caught.value.last.body == "starting"


def test_a_dead_container_ends_the_wait_early():
    server = _Server()
    port = server.port
    server.close()  # nothing listens any more
    started = time.monotonic()
    with pytest.raises(HealthTimeoutError, match="container stopped"):
        wait_for_health(port, "/health", timeout_s=30, alive=lambda: False, interval_s=0.1)
    assert time.monotonic() - started < 5


def test_port_is_taken_sees_a_listener():
    server = _Server()
    try:
        assert port_is_taken(server.port)
    finally:
        server.close()
    assert not port_is_taken(server.port)


def test_image_port_reads_exposed_ports_then_env():
    assert image_port({"ExposedPorts": {"8080/tcp": {}}, "Env": ["PORT=9000"]}) == 8080
    assert image_port({"ExposedPorts": {"53/udp": {}}, "Env": ["PORT=9000"]}) == 9000
    assert image_port({"Env": ["PATH=/bin"]}) is None
