"""A local implementation of the AWS Lambda Runtime API: what awslambdaric talks to.

The runtime interface client in a Lambda image long-polls ``GET .../invocation/next`` for an
event, runs the handler, and posts the result to ``.../invocation/{id}/response`` or
``.../invocation/{id}/error`` (or ``.../init/error`` when the handler cannot even be loaded).
This server speaks that protocol (version 2018-06-01, as documented in the Lambda developer
guide, "Using the Lambda runtime API for custom runtimes") on loopback, so a Lambda image can be
invoked on a laptop, for either architecture, with nothing from AWS.

It serves one function, one invocation at a time, like one Lambda execution environment.
"""

from __future__ import annotations

import json
import queue
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

from crossdock.errors import TargetError
from crossdock.text import excerpt

__all__ = ["Invocation", "InvocationResult", "LambdaError", "LambdaRuntimeApi"]

API_VERSION = "2018-06-01"
_PREFIX = f"/{API_VERSION}/runtime"
_RESULT_PATH = re.compile(rf"^{_PREFIX}/invocation/(?P<id>[^/]+)/(?P<kind>response|error)$")
# Lambda's limit for a synchronous response payload (6 MB); larger bodies get 413, like Lambda.
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
# Of a function's init error (its message and stack trace), this much is quoted in the error.
_QUOTED_ERROR_CHARS = 3000
_MAX_DRAIN_BYTES = 4 * MAX_PAYLOAD_BYTES
# How often a blocked /next wakes up to see whether the server is stopping.
_POLL_S = 0.2
_ACCOUNT = "000000000000"  # a placeholder account id: nothing here reaches AWS


@dataclass(frozen=True)
class Invocation:
    """One event handed to the function, with the headers Lambda sends along with it."""

    request_id: str
    event: bytes
    deadline_ms: int
    function_arn: str
    trace_id: str

    def headers(self) -> dict[str, str]:
        return {
            "Lambda-Runtime-Aws-Request-Id": self.request_id,
            "Lambda-Runtime-Deadline-Ms": str(self.deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn": self.function_arn,
            "Lambda-Runtime-Trace-Id": self.trace_id,
        }


@dataclass(frozen=True)
class LambdaError:
    """An error the runtime reported: the handler raised, or the function failed to start."""

    phase: Literal["invocation", "init"]
    error_type: str
    message: str
    stack_trace: tuple[str, ...]
    raw: bytes

    @classmethod
    def parse(
        cls, phase: Literal["invocation", "init"], raw: bytes, header_type: str | None
    ) -> LambdaError:
        try:
            data: Any = json.loads(raw or b"{}")
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        trace = data.get("stackTrace") or []
        if isinstance(trace, str):
            trace = trace.splitlines()
        return cls(
            phase=phase,
            error_type=str(data.get("errorType") or header_type or "Unknown"),
            message=str(data.get("errorMessage") or raw.decode("utf-8", "replace")),
            stack_trace=tuple(str(line).rstrip("\n") for line in trace),
            raw=raw,
        )

    def render(self) -> str:
        lines = [f"{self.error_type}: {self.message}"]
        lines += [f"  {line}" for line in self.stack_trace]
        return "\n".join(lines)


@dataclass(frozen=True)
class InvocationResult:
    request_id: str
    response: bytes | None = None
    error: LambdaError | None = None

    @property
    def succeeded(self) -> bool:
        return self.error is None


@dataclass
class _State:
    function_name: str
    region: str
    timeout_s: float
    pending: queue.Queue[Invocation] = field(default_factory=queue.Queue)
    # Request ids handed out and not answered yet, and the answers.
    in_flight: dict[str, Invocation] = field(default_factory=dict)
    results: dict[str, InvocationResult] = field(default_factory=dict)
    init_error: LambdaError | None = None
    changed: threading.Condition = field(default_factory=threading.Condition)
    stopping: threading.Event = field(default_factory=threading.Event)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    # HTTP/1.1 with Content-Length on every answer: the runtime client keeps its connection.
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: ARG002
        # Quiet: the CLI prints the outcome; request logs would drown the container's output.
        return

    def _answer(
        self,
        status: HTTPStatus,
        body: Mapping[str, object] | bytes,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            # The runtime went away (its container was stopped while it waited on /next).
            self.close_connection = True

    def _body(self) -> bytes | None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_PAYLOAD_BYTES:
            # Read (and drop) a bounded amount so the client sees the 413 rather than a broken
            # pipe; beyond that the connection is simply closed.
            remaining = min(length, _MAX_DRAIN_BYTES)
            while remaining > 0:
                chunk = self.rfile.read(min(remaining, 1 << 16))
                if not chunk:
                    break
                remaining -= len(chunk)
            self._answer(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                {
                    "errorMessage": f"payload over {MAX_PAYLOAD_BYTES} bytes",
                    "errorType": "RequestEntityTooLarge",
                },
            )
            self.close_connection = True
            return None
        return self.rfile.read(length) if length else b""

    def do_GET(self) -> None:
        if self.path != f"{_PREFIX}/invocation/next":
            self._answer(HTTPStatus.NOT_FOUND, {"errorMessage": f"no such endpoint {self.path}"})
            return
        state = self.server.state
        while not state.stopping.is_set():
            try:
                invocation = state.pending.get(timeout=_POLL_S)
            except queue.Empty:
                continue
            with state.changed:
                state.in_flight[invocation.request_id] = invocation
                state.changed.notify_all()
            self._answer(HTTPStatus.OK, invocation.event, invocation.headers())
            return
        self._answer(
            HTTPStatus.SERVICE_UNAVAILABLE, {"errorMessage": "the runtime API is stopping"}
        )

    def do_POST(self) -> None:
        state = self.server.state
        if self.path == f"{_PREFIX}/init/error":
            body = self._body()
            if body is None:
                return
            with state.changed:
                state.init_error = LambdaError.parse(
                    "init", body, self.headers.get("Lambda-Runtime-Function-Error-Type")
                )
                state.changed.notify_all()
            self._answer(HTTPStatus.ACCEPTED, {"status": "OK"})
            return
        match = _RESULT_PATH.match(self.path)
        if match is None:
            self._answer(HTTPStatus.NOT_FOUND, {"errorMessage": f"no such endpoint {self.path}"})
            return
        body = self._body()
        if body is None:
            return
        request_id = match["id"]
        with state.changed:
            if request_id not in state.in_flight:
                self._answer(
                    HTTPStatus.BAD_REQUEST,
                    {
                        "errorMessage": f"unknown request id {request_id}",
                        "errorType": "InvalidRequestID",
                    },
                )
                return
            del state.in_flight[request_id]
            if match["kind"] == "response":
                result = InvocationResult(request_id, response=body)
            else:
                error = LambdaError.parse(
                    "invocation", body, self.headers.get("Lambda-Runtime-Function-Error-Type")
                )
                result = InvocationResult(request_id, error=error)
            state.results[request_id] = result
            state.changed.notify_all()
        self._answer(HTTPStatus.ACCEPTED, {"status": "OK"})


class _Server(ThreadingHTTPServer):
    # A blocked /next must not keep the process alive after stop().
    daemon_threads = True

    def __init__(self, address: tuple[str, int], state: _State) -> None:
        super().__init__(address, _Handler)
        self.state = state


class LambdaRuntimeApi:
    """The Runtime API on ``host`` (loopback) and a free port, serving in a thread.

    Use as a context manager; ``submit`` queues an event, ``wait`` returns its result.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        function_name: str = "crossdock-local",
        region: str = "us-east-1",
        timeout_s: float = 300.0,
    ) -> None:
        self._state = _State(function_name, region, timeout_s)
        self._server = _Server((host, port), self._state)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="lambda-runtime-api", daemon=True
        )

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> LambdaRuntimeApi:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._state.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> LambdaRuntimeApi:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def address(self) -> str:
        """``host:port``, the value of AWS_LAMBDA_RUNTIME_API."""
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    @property
    def function_arn(self) -> str:
        state = self._state
        return f"arn:aws:lambda:{state.region}:{_ACCOUNT}:function:{state.function_name}"

    def function_env(self, *, memory_mb: int = 512) -> dict[str, str]:
        """The environment Lambda gives a function, as awslambdaric and handlers read it."""
        state = self._state
        return {
            "AWS_LAMBDA_RUNTIME_API": self.address,
            "AWS_LAMBDA_FUNCTION_NAME": state.function_name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(int(state.timeout_s)),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{state.function_name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": "crossdock-local",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_REGION": state.region,
            "AWS_DEFAULT_REGION": state.region,
            "AWS_EXECUTION_ENV": "AWS_Lambda_crossdock_local",
        }

    # -- invocations ------------------------------------------------------------------------

    def submit(self, event: bytes) -> Invocation:
        """Queue ``event`` for the next ``GET .../invocation/next``."""
        invocation = Invocation(
            request_id=str(uuid.uuid4()),
            event=event,
            deadline_ms=int((time.time() + self._state.timeout_s) * 1000),
            function_arn=self.function_arn,
            trace_id=_trace_id(),
        )
        self._state.pending.put(invocation)
        return invocation

    @property
    def init_error(self) -> LambdaError | None:
        return self._state.init_error

    def wait(
        self,
        invocation: Invocation,
        *,
        timeout_s: float,
        alive: Callable[[], bool] | None = None,
        poll_s: float = 1.0,
    ) -> InvocationResult:
        """The result of ``invocation``. Raises TargetError when the function reports an init
        error, when ``alive()`` turns false (its container exited), or after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        state = self._state
        while True:
            with state.changed:
                result = state.results.get(invocation.request_id)
                if result is not None:
                    return result
                if state.init_error is not None:
                    # The function's own words: outside text, quoted on one line.
                    raise TargetError(
                        "the function failed to initialize: "
                        + excerpt(state.init_error.render(), _QUOTED_ERROR_CHARS),
                        hint="run the handler's import yourself (python -c 'import MODULE') "
                        "in the image to see the whole error",
                    )
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    why = (
                        ""
                        if invocation.request_id in state.in_flight
                        else " (the runtime has not asked for it: still importing the handler, "
                        "or not a Lambda runtime)"
                    )
                    raise TargetError(
                        f"no answer to invocation {invocation.request_id} within "
                        f"{timeout_s:.0f}s{why}"
                    )
                state.changed.wait(timeout=min(poll_s, remaining))
                if invocation.request_id in state.results or state.init_error is not None:
                    continue
            # Outside the lock: asking docker takes a while, and the server must keep answering.
            if alive is not None and not alive():
                with state.changed:
                    if invocation.request_id in state.results or state.init_error is not None:
                        continue
                raise TargetError(
                    f"the function exited before answering invocation {invocation.request_id}"
                )


def _trace_id() -> str:
    # X-Ray's format: Root=1-<8 hex epoch seconds>-<24 hex random>.
    root = f"1-{int(time.time()):08x}-{secrets.token_hex(12)}"
    return f"Root={root};Parent={secrets.token_hex(8)};Sampled=0"
