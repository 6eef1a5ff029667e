"""What went wrong in one call, in kinds the runner acts on, whichever SDK made it.

The three SDKs (``zhipuai``, ``zai-sdk``, ``openai``) raise look-alike exception families
over two HTTP libraries (``httpx``; ``httpx2`` for openai 3.x); :func:`classify` maps each
family to the same :class:`ErrorInfo` kinds, so retries, aborts and reports never depend on
the provider. No key ever reaches a message: :func:`redact` removes it, and
:func:`check_api_key` refuses a key that httpx would quote in its own error.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Any

import httpx

from glmeval.errors import GlmevalError
from glmeval.records import ErrorInfo, ErrorKind
from glmeval.redact import redact as redact_text
from glmeval.redact import remove_secret

__all__ = [
    "FATAL_KINDS",
    "RETRYABLE_KINDS",
    "CallError",
    "SdkErrors",
    "check_api_key",
    "classify",
    "redact",
    "redact_all",
    "retry_after",
    "zhipuai_errors",
]

# Retryable error kinds; everything else is final for the job (or the whole run: FATAL_KINDS).
RETRYABLE_KINDS: frozenset[ErrorKind] = frozenset({"rate_limit", "server", "timeout", "connection", "stream_cut"})
FATAL_KINDS: frozenset[ErrorKind] = frozenset({"auth", "balance"})


def check_api_key(key: str, where: str = "the API key", env: str = "ZHIPUAI_API_KEY") -> str:
    """The key, stripped; a GlmevalError (that never quotes the key) when it cannot be sent.

    httpx rejects a header with a control or non-ASCII character and puts the whole header,
    key included, into its error message; refusing such a key up front keeps it out of every
    message, log and stored error.
    """
    key = key.strip()
    if not key:
        raise GlmevalError(f"{where} is empty; set {env}, or pass --local")
    bad = next((c for c in key if not (33 <= ord(c) <= 126)), None)
    if bad is not None:
        kind = "a space" if bad == " " else "a control character" if ord(bad) < 32 or ord(bad) == 127 else "a non-ASCII character"
        raise GlmevalError(
            f"{where} contains {kind}, which an HTTP header cannot carry; copy the key again (ASCII only)"
        )
    return key


def redact(text: str, secret: str | None) -> str:
    """Remove the key (and its halves, also escaped) and every credential in a URL from any
    text that may reach a user or the store (see :mod:`glmeval.redact`)."""
    return redact_text(remove_secret(text, secret))


def redact_all(text: str, secrets: list[str]) -> str:
    """``text`` with every one of ``secrets`` removed (one run may hold several providers' keys),
    and every URL credential and registered key (:mod:`glmeval.redact`)."""
    for secret in secrets:
        text = remove_secret(text, secret)
    return redact_text(text)


@dataclass
class CallError(Exception):
    """Raised inside one attempt; carries the classified error and the server's Retry-After.

    ``retryable`` overrides the kind's default (:data:`RETRYABLE_KINDS`) where the kind alone
    does not decide: an async task that failed on a server error is worth resubmitting, an
    async task that never finished within the poll timeout is not (it already waited long).
    """

    info: ErrorInfo
    retry_after: float | None = None
    retryable: bool | None = None

    @property
    def should_retry(self) -> bool:
        """Whether another attempt may succeed (fatal kinds never)."""
        if self.info.kind in FATAL_KINDS:
            return False
        return self.retryable if self.retryable is not None else self.info.kind in RETRYABLE_KINDS


def retry_after(headers: Any) -> float | None:
    """Seconds from a Retry-After header (a number or an HTTP date), or None."""
    if headers is None:
        return None
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


@dataclass(frozen=True)
class SdkErrors:
    """One SDK's exception family, and the HTTP library's errors it lets through."""

    status: type[BaseException]
    timeout: tuple[type[BaseException], ...]
    connection: type[BaseException]
    response: type[BaseException] | None
    base: type[BaseException]
    cut: tuple[type[BaseException], ...]


_HTTPX_CUT = (httpx.RemoteProtocolError, httpx.ReadError, httpx.NetworkError)


@functools.lru_cache(maxsize=1)
def zhipuai_errors() -> SdkErrors:
    import zhipuai

    return SdkErrors(
        zhipuai.APIStatusError, (zhipuai.APITimeoutError, httpx.TimeoutException), zhipuai.APIConnectionError,
        zhipuai.APIResponseError, zhipuai.ZhipuAIError, _HTTPX_CUT,
    )


def _error_body(response: Any) -> tuple[str | None, str]:
    """``(code, message)`` of an error response: Zhipu's ``{"error": {code, message}}``, the
    OpenAI-style envelope, or vLLM's bare ``{"message", "code"}``."""
    try:
        body = response.json()
    except (ValueError, AttributeError):
        return None, (response.text[:300] if response is not None else "")
    err = body.get("error", body) if isinstance(body, dict) else {}
    if not isinstance(err, dict):
        return None, str(err)[:300]
    code = str(err.get("code")) if err.get("code") is not None else None
    return code, str(err.get("message", ""))


def _status_kind(status: int, code: str | None) -> ErrorKind:
    if status == 401:
        return "auth"
    if (status == 429 and code == "1113") or status == 402:
        return "balance"
    if status == 429:
        return "rate_limit"
    if status == 408:
        return "timeout"
    if status >= 500:
        return "server"
    if code == "1301":
        return "content_filter"
    return "bad_request"


def classify(exc: BaseException, secret: str | None = None, errors: SdkErrors | None = None) -> CallError:
    """Map an SDK or HTTP-library exception to an error kind the runner understands."""
    if isinstance(exc, CallError):
        return exc
    sdk = errors or zhipuai_errors()
    if isinstance(exc, sdk.status):
        response = getattr(exc, "response", None)
        status = int(getattr(exc, "status_code", 0) or 0)
        code, message = _error_body(response)
        after = retry_after(response.headers if response is not None else None)
        info = ErrorInfo(_status_kind(status, code), redact(message or f"HTTP {status}", secret), status, code)
        return CallError(info, after)
    if isinstance(exc, sdk.timeout):
        return CallError(ErrorInfo("timeout", "the call timed out"))
    if isinstance(exc, sdk.connection):
        return CallError(ErrorInfo("connection", redact(f"connection error: {exc.__cause__ or exc}", secret)))
    if isinstance(exc, sdk.cut):
        return CallError(ErrorInfo("stream_cut", redact(f"stream cut: {type(exc).__name__}: {exc}", secret)))
    if sdk.response is not None and isinstance(exc, sdk.response):
        data = getattr(exc, "json_data", None) or getattr(exc, "body", None) or {}
        code = str(data.get("code")) if isinstance(data, dict) and data.get("code") is not None else None
        message = str(data.get("message")) if isinstance(data, dict) and data.get("message") else str(exc)
        return CallError(ErrorInfo("server", redact(f"error in stream: {message}", secret), None, code))
    if isinstance(exc, sdk.base):
        return CallError(ErrorInfo("unknown", redact(str(exc), secret)))
    return CallError(ErrorInfo("unknown", redact(f"{type(exc).__name__}: {exc}", secret)))
