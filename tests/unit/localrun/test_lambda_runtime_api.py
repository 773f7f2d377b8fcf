"""The local Runtime API, driven the way awslambdaric drives it: over HTTP on loopback."""

import http.client
import json
import threading
import time

import pytest

from crossdock.errors import TargetError
from crossdock.localrun.lambda_runtime_api import MAX_PAYLOAD_BYTES, LambdaRuntimeApi

PREFIX = "/2018-06-01/runtime"


def _request(api, method, path, body=None, headers=None, *, timeout=10):
    host, port = api.address.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


class FakeRuntime(threading.Thread):
    """A runtime client: takes the next event and answers it with ``answer(event)``."""

    def __init__(self, api, answer):
        super().__init__(daemon=True)
        self.api = api
        self.answer = answer
        self.headers = None
        self.event = None

    def run(self):
        status, headers, body = _request(self.api, "GET", f"{PREFIX}/invocation/next")
        assert status == 200
        self.headers, self.event = headers, body
        request_id = headers["Lambda-Runtime-Aws-Request-Id"]
        kind, payload, extra = self.answer(json.loads(body))
        _request(self.api, "POST", f"{PREFIX}/invocation/{request_id}/{kind}", payload, extra)


def test_an_event_goes_out_with_lambdas_headers_and_the_response_comes_back():
    with LambdaRuntimeApi(function_name="fn", region="eu-west-1", timeout_s=30) as api:
        runtime = FakeRuntime(api, lambda event: ("response", json.dumps({"got": event}), {}))
        runtime.start()
        invocation = api.submit(b'{"n": 3}')
        result = api.wait(invocation, timeout_s=10)
        runtime.join(5)
    assert result.succeeded
    assert result.response is not None
    assert json.loads(result.response) == {"got": {"n": 3}}
    headers = runtime.headers
    assert headers is not None
    assert headers["Lambda-Runtime-Aws-Request-Id"] == invocation.request_id
    assert headers["Lambda-Runtime-Invoked-Function-Arn"] == (
        "arn:aws:lambda:eu-west-1:000000000000:function:fn"
    )
    assert headers["Lambda-Runtime-Trace-Id"].startswith("Root=1-")
    deadline = int(headers["Lambda-Runtime-Deadline-Ms"])
    assert 25_000 < deadline - time.time() * 1000 <= 30_000


def test_a_handler_error_is_reported_with_type_message_and_trace():
    error = {
        "errorMessage": "division by zero",
        "errorType": "ZeroDivisionError",
        "stackTrace": ['  File "/var/task/app.py", line 3, in handler\n', "    1 / 0\n"],
        "requestId": "x",
    }
    with LambdaRuntimeApi() as api:
        runtime = FakeRuntime(
            api,
            lambda _e: (
                "error",
                json.dumps(error),
                {"Lambda-Runtime-Function-Error-Type": "Unhandled"},
            ),
        )
        runtime.start()
        result = api.wait(api.submit(b"{}"), timeout_s=10)
    assert not result.succeeded
    assert result.error is not None
    assert result.error.phase == "invocation"
    assert result.error.error_type == "ZeroDivisionError"
    assert result.error.message == "division by zero"
    assert result.error.stack_trace[-1] == "    1 / 0"
    assert result.error.render().startswith("ZeroDivisionError: division by zero\n")


def test_an_init_error_ends_the_wait_with_its_message():
    with LambdaRuntimeApi() as api:
        invocation = api.submit(b"{}")
        body = json.dumps(
            {"errorMessage": "No module named 'app'", "errorType": "Runtime.ImportModuleError"}
        )
        status, _, _ = _request(api, "POST", f"{PREFIX}/init/error", body)
        assert status == 202
        with pytest.raises(TargetError, match=r"Runtime.ImportModuleError: No module named 'app'"):
            api.wait(invocation, timeout_s=10)


def test_unknown_request_ids_paths_and_oversized_bodies_are_refused():
    with LambdaRuntimeApi() as api:
        status, _, body = _request(api, "POST", f"{PREFIX}/invocation/nope/response", b"{}")
        assert status == 400
        assert json.loads(body)["errorType"] == "InvalidRequestID"
        status, _, _ = _request(api, "GET", "/2018-06-01/runtime/other")
        assert status == 404
        big = b"x" * (MAX_PAYLOAD_BYTES + 1)
        status, _, _ = _request(api, "POST", f"{PREFIX}/init/error", big)
        assert status == 413


def test_the_wait_ends_when_the_function_dies_or_time_runs_out():
    with LambdaRuntimeApi() as api:
        with pytest.raises(TargetError, match="exited before answering"):
            api.wait(api.submit(b"{}"), timeout_s=10, alive=lambda: False, poll_s=0.05)
        started = time.monotonic()
        with pytest.raises(TargetError, match="has not asked for it"):
            api.wait(api.submit(b"{}"), timeout_s=0.3, poll_s=0.05)
        assert time.monotonic() - started < 2


def test_stop_releases_a_runtime_blocked_on_next():
    api = LambdaRuntimeApi().start()
    answers = []
    waiter = threading.Thread(
        target=lambda: answers.append(_request(api, "GET", f"{PREFIX}/invocation/next")[0]),
        daemon=True,
    )
    waiter.start()
    time.sleep(0.3)
    api.stop()
    waiter.join(5)
    assert answers == [503]


def test_function_env_points_awslambdaric_at_the_server():
    with LambdaRuntimeApi(function_name="api") as api:
        env = api.function_env()
        assert env["AWS_LAMBDA_RUNTIME_API"] == api.address
        assert api.address.startswith("127.0.0.1:")
        assert env["AWS_LAMBDA_FUNCTION_NAME"] == "api"
        assert not any("SECRET" in key or "TOKEN" in key for key in env)


def test_an_init_error_of_many_lines_and_escapes_is_one_safe_line():
    """The function's own words (its error message and stack trace) are outside text: the
    error says them on one line, control characters escaped."""
    with LambdaRuntimeApi() as api:
        invocation = api.submit(b"{}")
        body = json.dumps(
            {
                "errorMessage": "cannot start\n\x1b]0;owned\x07",
                "errorType": "Runtime.UserCodeSyntaxError",
                "stackTrace": ['  File "/var/task/app.py", line 1\r', "    x = (\n"],
            }
        )
        status, _, _ = _request(api, "POST", f"{PREFIX}/init/error", body)
        assert status == 202
        with pytest.raises(TargetError) as caught:
            api.wait(invocation, timeout_s=10)
    message = caught.value.message
    assert "\n" not in message and "\r" not in message and message.isprintable(), message
    assert message == (
        "the function failed to initialize: Runtime.UserCodeSyntaxError: cannot start | "
        '\\x1b]0;owned\\x07 | File "/var/task/app.py", line 1 | x = ('
    )
    assert caught.value.hint
