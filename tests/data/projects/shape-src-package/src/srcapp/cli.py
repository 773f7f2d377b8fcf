"""The `srcapp` console script: answers every GET with where it runs, on $PORT."""

import json
import os
import platform
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps(
            {
                "shape": "src-package",
                "machine": platform.machine(),
                "script": sys.argv[0],
                "module": __file__,
            }
        ).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main():
    # A server in a container listens on every interface.
    HTTPServer(("0.0.0.0", int(os.environ["PORT"])), Handler).serve_forever()  # noqa: S104
