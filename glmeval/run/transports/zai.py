"""The Zhipu v4 wire through zai-sdk (``ZaiClient``, api.z.ai): the zhipuai transport with
zai-sdk's client class and exception family (``zai.core._errors``), which mirror zhipuai's."""

from __future__ import annotations

import functools
from typing import Any

import httpx

from glmeval.run.callerrors import SdkErrors
from glmeval.run.transports.zhipu import ZhipuTransport

__all__ = ["ZAI_BASE_URL", "ZaiTransport", "zai_errors"]

ZAI_BASE_URL = "https://api.z.ai/api/paas/v4"


@functools.lru_cache(maxsize=1)
def zai_errors() -> SdkErrors:
    from zai.core import _errors as errors

    return SdkErrors(
        errors.APIStatusError, (errors.APITimeoutError, httpx.TimeoutException), errors.APIConnectionError,
        errors.APIResponseError, errors.ZaiError, (httpx.RemoteProtocolError, httpx.ReadError, httpx.NetworkError),
    )


class ZaiTransport(ZhipuTransport):
    """zai-sdk's ``ZaiClient``; its retries off, its key the provider's own (ZAI_API_KEY by
    default), never the JWT form (``disable_token_cache=True`` sends the raw key, as 0.0.3+ does)."""

    sdk_label = "zai-sdk"

    def default_base_url(self) -> str:
        return ZAI_BASE_URL

    def errors(self) -> SdkErrors:
        return zai_errors()

    def make_sdk(self, api_key: str, timeout: httpx.Timeout) -> Any:
        from zai import ZaiClient

        return ZaiClient(api_key=api_key, base_url=self.base_url, max_retries=0, timeout=timeout, http_client=self._http)
