"""The client the runner and the grader call: one transport per provider, one interface.

:class:`GLMClient` routes each attempt to its provider's transport
(:mod:`glmeval.run.transports`: the zhipuai SDK, zai-sdk or the openai SDK), so retries,
limits, cache and budgets stay in the runner and work the same for every provider. Built with
just a key it is the zhipuai client it always was. Every provider's key is loaded from its
environment variable, checked before it is sent, and removed from every error message.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from glmeval.records import Completion, ErrorInfo, Mode
from glmeval.redact import redact_url, register_secret
from glmeval.run.callerrors import (
    FATAL_KINDS,
    RETRYABLE_KINDS,
    CallError,
    check_api_key,
    classify,
    redact,
    redact_all,
    retry_after,
)
from glmeval.run.transports import Endpoint, Transport
from glmeval.run.transports.zhipu import DEFAULT_BASE_URL

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_PROVIDER",
    "FATAL_KINDS",
    "KEY_VARS",
    "RETRYABLE_KINDS",
    "CallError",
    "Endpoint",
    "GLMClient",
    "check_api_key",
    "classify",
    "endpoint_namespace",
    "find_api_key",
    "find_key",
    "redact",
]

DEFAULT_PROVIDER = "zhipu"
KEY_VARS = ("ZHIPUAI_API_KEY", "ZHIPU_API_KEY")
_retry_after = retry_after


def find_key(names: Sequence[str]) -> str | None:
    """The first of the environment variables ``names`` that holds a key, surrounding
    whitespace removed (a key pasted from a file or a CI secret often ends in a line break,
    which an HTTP header cannot carry)."""
    for name in names:
        value = os.environ.get(name)
        if value and value.strip():
            return value.strip()
    return None


def find_api_key() -> str | None:
    """The zhipu provider's key from the environment."""
    return find_key(KEY_VARS)


def endpoint_namespace(base_url: str | None) -> str:
    """The response-cache namespace of an endpoint: "" for the official API, else its URL."""
    url = (base_url or os.environ.get("ZHIPUAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
    return "" if url == DEFAULT_BASE_URL else f"url:{redact_url(url)}"


def make_transport(endpoint: Endpoint, timeout: float, poll_timeout: float, poll_interval: float, max_connections: int) -> Transport:
    """The transport for ``endpoint``'s SDK (each imports its SDK only when built)."""
    if endpoint.sdk == "openai":
        from glmeval.run.transports.openai import OpenAITransport

        return OpenAITransport(endpoint, timeout, max_connections)
    if endpoint.sdk == "zai":
        from glmeval.run.transports.zai import ZaiTransport

        return ZaiTransport(endpoint, timeout, poll_timeout, poll_interval, max_connections)
    from glmeval.run.transports.zhipu import ZhipuTransport

    return ZhipuTransport(endpoint, timeout, poll_timeout, poll_interval, max_connections)


class GLMClient:
    """The transports of a run, by provider, behind the one-attempt interface.

    ``api_key`` (with ``base_url``) makes the default ``zhipu`` provider's zhipuai client;
    ``endpoints`` add (or replace) providers. One instance is shared by all worker threads.
    """

    def __init__(
        self,
        api_key: str | None,
        base_url: str | None = None,
        timeout: float = 60.0,
        poll_timeout: float = 300.0,
        poll_interval: float = 0.05,
        max_connections: int = 64,
        endpoints: Sequence[Endpoint] = (),
    ) -> None:
        self.timeout = timeout
        self.poll_timeout = poll_timeout
        wanted = list(endpoints)
        if api_key is not None and all(e.name != DEFAULT_PROVIDER for e in wanted):
            wanted.insert(0, Endpoint(DEFAULT_PROVIDER, "zhipuai", base_url or os.environ.get("ZHIPUAI_BASE_URL") or DEFAULT_BASE_URL, api_key))
        self.transports: dict[str, Transport] = {}
        try:
            for endpoint in wanted:
                self.transports[endpoint.name] = make_transport(endpoint, timeout, poll_timeout, poll_interval, max_connections)
        except BaseException:
            self.close()
            raise
        self._secrets = [e.api_key.strip() for e in wanted if e.api_key]
        for secret in self._secrets:
            register_secret(secret)
        default = self.transports.get(DEFAULT_PROVIDER) or next(iter(self.transports.values()), None)
        self.base_url = default.base_url if default is not None else (base_url or DEFAULT_BASE_URL)
        # Answers are cached per endpoint: the official API shares one namespace, any other
        # base URL (a proxy, `glmeval serve`) gets its own, and the session sets "local" for
        # --local, so a simulated answer is never replayed as a real one. Other providers'
        # answers are apart by their cache keys (plan.cache_key).
        self.cache_namespace = endpoint_namespace(self.base_url)

    @property
    def sdk(self) -> Any:
        """The default provider's SDK client (for tests and callers that need the raw SDK)."""
        return getattr(self.transport(DEFAULT_PROVIDER), "sdk", None)

    @property
    def simulated(self) -> bool:
        """Whether any provider's answers came from the local server."""
        return any(t.simulated for t in self.transports.values())

    @property
    def providers(self) -> list[str]:
        return list(self.transports)

    def transport(self, provider: str) -> Transport:
        found = self.transports.get(provider)
        if found is None:
            known = ", ".join(self.transports) or "none"
            raise CallError(ErrorInfo("auth", f"no client for provider {provider!r} (its key is not set; clients: {known})"))
        return found

    def base_url_of(self, provider: str) -> str:
        """Where ``provider``'s calls go (the default's base URL for one without a client)."""
        found = self.transports.get(provider)
        return found.base_url if found is not None else self.base_url

    def from_body(self, body: Mapping[str, Any]) -> Completion:
        """A chat completion body read from elsewhere (a Batch API output line) as a Completion,
        through the zhipuai SDK's own response type, exactly as a sync answer is read."""
        from zhipuai.types.chat.chat_completion import Completion as SdkCompletion

        from glmeval.run.transports.common import from_response

        return from_response(SdkCompletion.model_validate(dict(body)))

    def close(self) -> None:
        for transport in self.transports.values():
            transport.close()

    def attempt(
        self, model: str, mode: Mode, messages: list[dict[str, Any]], params: dict[str, Any], provider: str = DEFAULT_PROVIDER
    ) -> Completion:
        """One attempt through ``provider``'s transport; raises CallError (no key in it)."""
        try:
            return self.transport(provider).attempt(model, mode, messages, params)
        except CallError as exc:
            exc.info.message = redact_all(exc.info.message, self._secrets)
            raise

    def embed(self, model: str, texts: list[str], provider: str = DEFAULT_PROVIDER) -> list[list[float]]:
        try:
            return self.transport(provider).embed(model, texts)
        except CallError as exc:
            exc.info.message = redact_all(exc.info.message, self._secrets)
            raise
