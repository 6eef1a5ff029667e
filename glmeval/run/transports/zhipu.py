"""The Zhipu v4 wire through the official ``zhipuai`` SDK: sync, stream and async tasks.

zai-sdk is the same wire and nearly the same code (:mod:`.zai` subclasses this with its own
client class and exceptions). The SDK's own retries are off (``max_retries=0``): glmeval owns
retries so it can count attempts, honour ``Retry-After`` and stop at once on a bad key or an
empty balance. The key never appears in any message.
"""

from __future__ import annotations

import os
import time
from typing import Any

import httpx

from glmeval.errors import GlmevalError
from glmeval.records import Completion, ErrorInfo, Mode
from glmeval.run.callerrors import CallError, SdkErrors, check_api_key, classify, redact, zhipuai_errors
from glmeval.run.transports import Endpoint, dialect_params
from glmeval.run.transports.common import call_args, from_response, read_stream, sync_call

__all__ = ["DEFAULT_BASE_URL", "ZhipuTransport", "task_failed"]

DEFAULT_BASE_URL = "https://open.bigmodel.cn/api/paas/v4"


def task_failed(task_id: str, result: Any) -> CallError:
    """An async task that ended in FAIL: a content-filter refusal is final; a server-side
    failure (code 500 or no code) is worth a new task."""
    err = getattr(result, "error", None)
    if err is None and hasattr(result, "model_extra"):
        err = (result.model_extra or {}).get("error")
    code = message = None
    if isinstance(err, dict):
        code = str(err["code"]) if err.get("code") is not None else None
        message = str(err.get("message") or "") or None
    elif err is not None:
        code = str(getattr(err, "code", "") or "") or None
        message = str(getattr(err, "message", "") or "") or None
    text = f"async task {task_id} ended with FAIL" + (f": {message}" if message else "")
    if code == "1301":
        return CallError(ErrorInfo("content_filter", text, None, code))
    return CallError(ErrorInfo("task_failed", text, None, code), retryable=code in (None, "500"))


class ZhipuTransport:
    """A configured Zhipu-wire SDK client plus the three ways of calling it.

    One instance is shared by all worker threads: the SDK's httpx client is thread-safe and
    keeps a connection pool, which is what makes high concurrency cheap.
    """

    sdk_label = "zhipuai"

    def __init__(
        self, endpoint: Endpoint, timeout: float = 60.0, poll_timeout: float = 300.0, poll_interval: float = 0.05,
        max_connections: int = 64,
    ) -> None:
        self.endpoint = endpoint
        self.base_url = endpoint.base_url or self.default_base_url()
        self.timeout = timeout
        self.poll_timeout = poll_timeout
        self.poll_interval = poll_interval
        # True once any response carried the local server's X-Glmeval-Simulator header, so a
        # run sent to `glmeval serve` by --base-url is marked simulated like a --local one.
        self.simulated = False
        api_key = check_api_key(endpoint.api_key, f"the key of provider {endpoint.name} ({endpoint.key_env})", endpoint.key_env)
        self._secret = api_key
        self._errors = self.errors()
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self._http = httpx.Client(
            limits=limits,
            timeout=httpx.Timeout(timeout, connect=min(8.0, timeout)),
            event_hooks={"response": [self._note_simulator]},
        )
        try:
            self.sdk = self.make_sdk(api_key, httpx.Timeout(timeout, connect=min(8.0, timeout)))
        except Exception as exc:
            self._http.close()
            raise GlmevalError(f"cannot create the {self.sdk_label} client: {redact(str(exc), api_key)}") from None

    def default_base_url(self) -> str:
        return os.environ.get("ZHIPUAI_BASE_URL") or DEFAULT_BASE_URL

    def errors(self) -> SdkErrors:
        return zhipuai_errors()

    def make_sdk(self, api_key: str, timeout: httpx.Timeout) -> Any:
        import zhipuai

        return zhipuai.ZhipuAI(api_key=api_key, base_url=self.base_url, max_retries=0, timeout=timeout, http_client=self._http)

    def _note_simulator(self, response: httpx.Response) -> None:
        if not self.simulated and response.headers.get("x-glmeval-simulator") == "1":
            self.simulated = True

    def close(self) -> None:
        self._http.close()

    def classify(self, exc: BaseException) -> CallError:
        return classify(exc, self._secret, self._errors)

    def attempt(self, model: str, mode: Mode, messages: list[dict[str, Any]], params: dict[str, Any]) -> Completion:
        """One attempt. Returns a Completion on success; raises CallError otherwise."""
        start = time.perf_counter()
        host_model = self.endpoint.host_model(model)
        params = dialect_params(params, self.endpoint.dialect)
        try:
            if mode == "stream":
                completion = self._stream(host_model, messages, params, start)
            elif mode == "async":
                completion = self._async(host_model, messages, params, start)
            else:
                create = self.sdk.chat.completions.create
                completion = sync_call(create, host_model, messages, params)
        except CallError:
            raise
        except Exception as exc:
            raise self.classify(exc) from None
        completion.latency_ms = (time.perf_counter() - start) * 1000
        completion.model = completion.model or host_model
        return completion

    def _stream(self, model: str, messages: list[dict[str, Any]], params: dict[str, Any], start: float) -> Completion:
        create = self.sdk.chat.completions.create
        stream = create(model=model, messages=messages, stream=True, **call_args(create, params))
        try:
            return read_stream(stream, start, self.timeout)
        finally:
            # The SDK stops reading at [DONE] and never closes the response; closing it here
            # hands the connection back to the pool at once (and drops a cut one).
            response = getattr(stream, "response", None)
            if response is not None:
                response.close()

    def _async(self, model: str, messages: list[dict[str, Any]], params: dict[str, Any], start: float) -> Completion:
        create = self.sdk.chat.asyncCompletions.create
        task = create(model=model, messages=messages, **call_args(create, params))
        task_id = task.id
        deadline = start + self.poll_timeout
        delay = self.poll_interval
        poll_failures = 0
        while True:
            try:
                result = self.sdk.chat.asyncCompletions.retrieve_completion_result(id=task_id)
            except Exception as exc:
                # A failed poll does not mean a failed task: poll again rather than resubmit
                # (a new task would be paid for again). Give up after a few in a row.
                err = self.classify(exc)
                poll_failures += 1
                if not err.should_retry or poll_failures > 5 or time.perf_counter() + delay > deadline:
                    raise err from None
                time.sleep(max(delay, err.retry_after or 0.0))
                delay = min(delay * 1.5, 2.0)
                continue
            poll_failures = 0
            status = getattr(result, "task_status", None)
            if status == "SUCCESS":
                completion = from_response(result)
                completion.request_id = completion.request_id or task_id
                return completion
            if status == "FAIL":
                raise task_failed(task_id, result)
            if time.perf_counter() + delay > deadline:
                raise CallError(
                    ErrorInfo("timeout", f"async task {task_id} still {status} after {self.poll_timeout:g} s (poll timeout)"),
                    retryable=False,
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 2.0)

    def embed(self, model: str, texts: list[str]) -> list[list[float]]:
        try:
            resp = self.sdk.embeddings.create(model=self.endpoint.host_model(model), input=texts)
        except Exception as exc:
            raise self.classify(exc) from None
        return [list(item.embedding) for item in sorted(resp.data, key=lambda d: d.index)]
