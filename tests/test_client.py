"""GLMClient against the real local server: one attempt per call, every failure classified.

The runner's retry policy acts on the kinds found here, so each fault the simulator can inject
is checked in each call mode it applies to, through the real SDK over loopback HTTP.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from glmeval.run.client import FATAL_KINDS, RETRYABLE_KINDS, CallError, GLMClient, _retry_after, classify, redact
from glmeval.simulator import DEFAULT_API_KEY, FaultConfig, LocalServer

MESSAGES = [{"role": "user", "content": "你好"}]


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer(speed=0, api_key=DEFAULT_API_KEY) as srv:
        yield srv


def _attempt(srv: LocalServer, mode: str, faults: FaultConfig | None, **client_args: float) -> CallError | None:
    srv.faults = faults
    client = GLMClient(srv.api_key, srv.base_url, **client_args)  # type: ignore[arg-type]
    try:
        client.attempt("glm-4", mode, MESSAGES, {})
    except CallError as exc:
        return exc
    finally:
        client.close()
        srv.faults = None
    return None


@pytest.mark.parametrize("mode", ["sync", "stream", "async"])
def test_success_in_every_mode(server: LocalServer, mode: str) -> None:
    client = GLMClient(server.api_key, server.base_url)
    try:
        completion = client.attempt("glm-4", mode, MESSAGES, {"temperature": 0.2})
    finally:
        client.close()
    assert completion.ok and completion.text and completion.finish_reason == "stop"
    assert completion.total_tokens > 0 and completion.latency_ms is not None
    if mode == "stream":
        assert completion.ttft_ms is not None and completion.ttft_ms <= completion.latency_ms


@pytest.mark.parametrize(
    "fault, mode, kind, status, code",
    [
        ("rate_limit", "sync", "rate_limit", 429, "1302"),
        ("rate_limit", "stream", "rate_limit", 429, "1302"),
        ("rate_limit", "async", "rate_limit", 429, "1302"),
        ("server_error", "sync", "server", 500, "500"),
        ("server_error", "stream", "server", 500, "500"),
        ("reset", "sync", "connection", None, None),
        ("reset", "stream", "connection", None, None),
        ("cut_stream", "stream", "stream_cut", None, None),
        ("cut_stream", "sync", "connection", None, None),
        ("content_filter", "sync", "content_filter", 400, "1301"),
        ("content_filter", "async", "content_filter", None, "1301"),
        ("balance", "sync", "balance", 429, "1113"),
        ("balance", "stream", "balance", 429, "1113"),
    ],
)
def test_faults_are_classified(
    server: LocalServer, fault: str, mode: str, kind: str, status: int | None, code: str | None
) -> None:
    exc = _attempt(server, mode, FaultConfig(**{fault: 1.0}, retry_after=0.25))
    assert exc is not None, f"{fault} in {mode} mode did not fail"
    assert exc.info.kind == kind
    assert exc.info.status == status
    assert exc.info.code == code
    assert exc.info.message
    if fault == "rate_limit":
        assert exc.retry_after == pytest.approx(0.25)
    assert exc.should_retry == (kind in RETRYABLE_KINDS)
    if kind in FATAL_KINDS:
        assert not exc.should_retry


def test_cut_stream_is_httpx_own_exception_unwrapped_by_the_sdk(server: LocalServer) -> None:
    """The SDK does not wrap errors raised while iterating a stream: glmeval must catch httpx's."""
    server.faults = FaultConfig(cut_stream=1.0)
    client = GLMClient(server.api_key, server.base_url)
    try:
        with pytest.raises(httpx.RemoteProtocolError):
            for _ in client.sdk.chat.completions.create(model="glm-4", messages=MESSAGES, stream=True):
                pass
    finally:
        client.close()
        server.faults = None


def test_async_server_failure_is_retryable_task_failed(server: LocalServer) -> None:
    # server_error on async create: half the draws answer 500, half create a task that FAILs.
    kinds = set()
    for seed in range(12):
        exc = _attempt(server, "async", FaultConfig(server_error=1.0, seed=seed))
        assert exc is not None
        kinds.add(exc.info.kind)
        assert exc.should_retry
    assert kinds <= {"server", "task_failed"} and "task_failed" in kinds


def test_bad_key_is_auth_and_fatal(server: LocalServer) -> None:
    client = GLMClient("wrong.key-123456", server.base_url)
    try:
        with pytest.raises(CallError) as info:
            client.attempt("glm-4", "sync", MESSAGES, {})
    finally:
        client.close()
    assert info.value.info.kind == "auth" and info.value.info.status == 401
    assert not info.value.should_retry
    assert "key-123456" not in str(info.value.info)


def test_unknown_model_is_bad_request_not_retried(server: LocalServer) -> None:
    client = GLMClient(server.api_key, server.base_url)
    try:
        with pytest.raises(CallError) as info:
            client.attempt("no-such-model", "sync", MESSAGES, {})
    finally:
        client.close()
    assert info.value.info.kind == "bad_request" and info.value.info.status == 400
    assert not info.value.should_retry


def test_per_call_timeout() -> None:
    with LocalServer(fixed_latency_ms=2000) as srv:
        client = GLMClient(srv.api_key, srv.base_url, timeout=0.3)
        try:
            for mode in ("sync", "stream"):
                with pytest.raises(CallError) as info:
                    client.attempt("glm-4", mode, MESSAGES, {})
                assert info.value.info.kind == "timeout"
                assert info.value.should_retry
        finally:
            client.close()


def test_async_poll_timeout_is_not_retried() -> None:
    """A task that is still running after the poll timeout is not resubmitted (and paid) again."""
    with LocalServer(fixed_latency_ms=3000) as srv:
        client = GLMClient(srv.api_key, srv.base_url, poll_timeout=0.3)
        try:
            with pytest.raises(CallError) as info:
                client.attempt("glm-4", "async", MESSAGES, {})
        finally:
            client.close()
    assert info.value.info.kind == "timeout" and "poll timeout" in info.value.info.message
    assert not info.value.should_retry


def test_retry_after_header_forms() -> None:
    assert _retry_after(httpx.Headers({"Retry-After": "2"})) == 2.0
    assert _retry_after(httpx.Headers({"Retry-After": "0.01"})) == pytest.approx(0.01)
    assert _retry_after(httpx.Headers({})) is None
    assert _retry_after(httpx.Headers({"Retry-After": "soon"})) is None
    http_date = _retry_after(httpx.Headers({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}))
    assert http_date == 0.0  # a date in the past: retry now


def test_classify_plain_httpx_errors() -> None:
    assert classify(httpx.ReadTimeout("slow")).info.kind == "timeout"
    assert classify(httpx.RemoteProtocolError("peer closed")).info.kind == "stream_cut"
    assert classify(httpx.ReadError("reset")).info.kind == "stream_cut"
    assert classify(ValueError("odd")).info.kind == "unknown"


def test_redact_hides_both_halves_of_the_key() -> None:
    text = redact("key abcdef123.secret456789 and secret456789", "abcdef123.secret456789")
    assert "secret456789" not in text and "abcdef123" not in text


@pytest.mark.parametrize("sdk", ["zhipuai", "openai"])
def test_a_200_that_is_not_json_is_a_server_error_naming_the_body(sdk: str) -> None:
    """The SDKs hand back the raw response (glmeval reads the JSON itself): a proxy's HTML page
    with status 200 must still be one clear retryable error, in both SDK families."""
    import http.server
    import threading

    class Proxy(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = b"<html><body>502 upstream gateway</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}/" + ("api/paas/v4" if sdk == "zhipuai" else "v1")
    if sdk == "zhipuai":
        client = GLMClient("proxy.test-key", base, timeout=5)
    else:
        from glmeval.run.transports import Endpoint
        from glmeval.run.transports.openai import OpenAITransport

        client = OpenAITransport(Endpoint("p", "openai", base, "proxy-test-key", "vllm", key_env="P_KEY"), timeout=5)
    try:
        with pytest.raises(CallError) as info:
            client.attempt("glm-4", "sync", MESSAGES, {})
    finally:
        client.close()
        httpd.shutdown()
    assert info.value.info.kind == "server"
    assert "non-JSON" in info.value.info.message and "502 upstream gateway" in info.value.info.message
    assert info.value.should_retry
