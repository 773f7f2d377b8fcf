"""The `worker` console script: the shared library's greeting over HTTP on $PORT."""

import json
import os
from http.server import BaseHTTPRequestHandler, HTTPServer

from greeting import answer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps(answer("worker")).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main():
    # A server in a container listens on every interface.
    HTTPServer(("0.0.0.0", int(os.environ["PORT"])), Handler).serve_forever()  # noqa: S104
