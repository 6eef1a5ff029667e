"""OpenAI-compatible hosts through the official ``openai`` SDK: vLLM, SGLang, OpenRouter,
DashScope, or Zhipu's own endpoint used the OpenAI way.

Sync and stream only (the OpenAI wire has no async tasks). The SDK's retries are off;
Zhipu-only parameters and the dialect's thinking switch travel in ``extra_body``; a stream
asks for its usage (``stream_options.include_usage``) from hosts that send none unasked. The
SDK's HTTP library is ``httpx`` up to openai 2.x and ``httpx2`` from 3.x: the transport uses
whichever the installed SDK does, so its connection pool and timeouts are the SDK's own.
"""

from __future__ import annotations

import functools
import importlib
import time
from types import ModuleType
from typing import Any

from glmeval.errors import GlmevalError
from glmeval.records import Completion, ErrorInfo, Mode
from glmeval.run.callerrors import CallError, SdkErrors, check_api_key, classify, redact
from glmeval.run.transports import Endpoint, dialect_params
from glmeval.run.transports.common import call_args, read_stream, sync_call

__all__ = ["OpenAITransport", "openai_errors"]


@functools.lru_cache(maxsize=1)
def _http_library() -> ModuleType:
    """``httpx2`` for openai 3.x, ``httpx`` before: the library the SDK's own default client
    (``openai.DefaultHttpxClient``, since openai 1.17) subclasses."""
    import openai

    for base in openai.DefaultHttpxClient.__mro__[1:]:
        root = base.__module__.split(".")[0]
        if root in ("httpx", "httpx2"):
            return importlib.import_module(root)
    return importlib.import_module("httpx")


@functools.lru_cache(maxsize=1)
def openai_errors() -> SdkErrors:
    import openai

    http = _http_library()
    return SdkErrors(
        openai.APIStatusError, (openai.APITimeoutError, http.TimeoutException), openai.APIConnectionError,
        openai.APIError, openai.OpenAIError, (http.RemoteProtocolError, http.ReadError, http.NetworkError),
    )


class OpenAITransport:
    """One OpenAI-compatible provider; shared by all worker threads like the Zhipu transports."""

    def __init__(self, endpoint: Endpoint, timeout: float = 60.0, max_connections: int = 64) -> None:
        import openai

        if not endpoint.base_url:
            raise GlmevalError(f"provider {endpoint.name} (sdk openai) needs a base_url")
        self.endpoint = endpoint
        self.base_url = endpoint.base_url
        self.timeout = timeout
        self.simulated = False
        api_key = check_api_key(endpoint.api_key, f"the key of provider {endpoint.name} ({endpoint.key_env})", endpoint.key_env)
        self._secret = api_key
        self._errors = openai_errors()
        http = _http_library()
        limits = http.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self._http = http.Client(
            limits=limits,
            timeout=http.Timeout(timeout, connect=min(8.0, timeout)),
            event_hooks={"response": [self._note_simulator]},
        )
        try:
            self.sdk = openai.OpenAI(
                api_key=api_key,
                base_url=self.base_url,
                max_retries=0,
                timeout=http.Timeout(timeout, connect=min(8.0, timeout)),
                http_client=self._http,
            )
        except Exception as exc:
            self._http.close()
            raise GlmevalError(f"cannot create the openai client for provider {endpoint.name}: {redact(str(exc), api_key)}") from None

    def _note_simulator(self, response: Any) -> None:
        if not self.simulated and response.headers.get("x-glmeval-simulator") == "1":
            self.simulated = True

    def close(self) -> None:
        self._http.close()

    def classify(self, exc: BaseException) -> CallError:
        return classify(exc, self._secret, self._errors)

    def attempt(self, model: str, mode: Mode, messages: list[dict[str, Any]], params: dict[str, Any]) -> Completion:
        """One attempt. Returns a Completion on success; raises CallError otherwise."""
        if mode == "async":
            raise CallError(ErrorInfo("bad_request", f"provider {self.endpoint.name} speaks the OpenAI wire, which has no async mode; use sync or stream"))
        start = time.perf_counter()
        host_model = self.endpoint.host_model(model)
        params = dialect_params(params, self.endpoint.dialect)
        create: Any = self.sdk.chat.completions.create
        try:
            if mode == "stream":
                if self.endpoint.dialect != "zhipu":
                    params.setdefault("stream_options", {"include_usage": True})
                completion = self._stream(create(model=host_model, messages=messages, stream=True, **call_args(create, params)), start)
            else:
                completion = sync_call(create, host_model, messages, params)
        except CallError:
            raise
        except Exception as exc:
            raise self.classify(exc) from None
        completion.latency_ms = (time.perf_counter() - start) * 1000
        completion.model = completion.model or host_model
        return completion

    def _stream(self, stream: Any, start: float) -> Completion:
        """Read a stream; the SDK wraps a connection lost mid-stream in APIConnectionError,
        which after the response began is a cut stream, not an unreachable host."""
        import openai

        try:
            return read_stream(stream, start, self.timeout)
        except openai.APITimeoutError:
            raise CallError(ErrorInfo("timeout", "the call timed out")) from None
        except openai.APIConnectionError as exc:
            cause = exc.__cause__ or exc
            raise CallError(ErrorInfo("stream_cut", redact(f"stream cut: {type(cause).__name__}: {cause}", self._secret))) from None
        finally:
            stream.response.close()

    def embed(self, model: str, texts: list[str]) -> list[list[float]]:
        try:
            resp = self.sdk.embeddings.create(model=self.endpoint.host_model(model), input=texts)
        except Exception as exc:
            raise self.classify(exc) from None
        return [list(item.embedding) for item in sorted(resp.data, key=lambda d: d.index)]
