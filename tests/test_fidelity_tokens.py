"""Token estimates against every real usage figure with known text (issue 14, item 2).

``tests/data/token_captures.json`` holds each capture's messages, tools, answer, reasoning and
tool calls with the usage the real API reported, and where it comes from (the API references
cite the recordings; the text is copied from the recordings themselves). The same estimator
bills the local server and the harness's plan and budget estimates.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from zhipuai import ZhipuAI

from glmeval.catalogue.tokens import (
    count_prompt_tokens,
    count_tokens,
    count_tool_call_tokens,
    split_tokens,
    truncate_to_tokens,
)
from glmeval.simulator import LocalServer

CAPTURES: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "data" / "token_captures.json").read_text(encoding="utf-8")
)
TOLERANCE = 0.15
HELLO = "你好👋！我是人工智能助手智谱清言，可以叫我小智🤖，很高兴见到你，欢迎问我任何问题。"


def _within(estimate: int, real: int) -> bool:
    return abs(estimate - real) <= TOLERANCE * real


def _completion(capture: dict[str, Any]) -> int:
    calls = sum(count_tool_call_tokens(name, arguments) for name, arguments in capture["tool_calls"])
    return count_tokens(capture["reasoning"]) + count_tokens(capture["content"]) + calls


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda c: c["source"][:60])
def test_every_captured_usage_figure_is_within_15_percent(capture: dict[str, Any]) -> None:
    if capture["prompt_tokens"] is not None:
        estimate = count_prompt_tokens(capture["messages"], capture["tools"])
        assert _within(estimate, capture["prompt_tokens"]), (estimate, capture["prompt_tokens"], capture["source"])
    completion = _completion(capture)
    assert _within(completion, capture["completion_tokens"]), (completion, capture["completion_tokens"], capture["source"])
    if capture["reasoning_tokens"] is not None:
        reasoning = count_tokens(capture["reasoning"])
        assert _within(reasoning, capture["reasoning_tokens"]), (reasoning, capture["reasoning_tokens"], capture["source"])


def test_the_table_covers_chinese_english_and_mixed_text() -> None:
    sources = " ".join(c["source"] for c in CAPTURES)
    for cited in ("zhipu-api.md §1.3", "zhipu-api.md §1.4", "zhipu-api.md §1.5", "zhipu-api-2026.md §2.2",
                  "zhipu-api-2026.md §4", "zhipu-api-2026.md §9", "issue 14"):
        assert cited in sources
    assert any(c["content"] == HELLO for c in CAPTURES)  # Chinese
    assert any("北京南站" in json.dumps(c["tool_calls"], ensure_ascii=False) for c in CAPTURES)  # mixed


def test_ratios_chinese_about_1_6_characters_english_about_a_word_per_token() -> None:
    chinese = "我是人工智能助手智谱清言很高兴见到你欢迎问我任何问题可以叫我小智"
    assert 1.4 <= len(chinese) / count_tokens(chinese) <= 1.8
    english = "The user is asking for the weather in Florence and I have access to a weather function"
    assert count_tokens(english) == len(english.split())


@pytest.mark.parametrize("text", [HELLO, "Olá! (Oh-lah)", "  *   **Analyze:**\n\n    *   x", "e\u0301 👍🏽 2024-01-01", " a ", ""])
def test_pieces_rebuild_the_text_and_are_one_token_each(text: str) -> None:
    pieces = split_tokens(text)
    assert "".join(pieces) == text
    assert all(count_tokens(piece) <= 1 for piece in pieces)
    assert sum(count_tokens(piece) for piece in pieces) == count_tokens(text)
    if text:
        assert count_tokens(truncate_to_tokens(text, 3)) <= 3


def test_the_hello_reply_bills_like_the_real_glm_4(tmp_path: Path) -> None:
    with LocalServer(speed=0) as server:
        client = ZhipuAI(api_key="any.key", base_url=server.base_url, max_retries=0)
        reply = client.chat.completions.create(model="glm-4", messages=[{"role": "user", "content": "你好"}])
    assert reply.choices[0].message.content == HELLO
    assert _within(reply.usage.prompt_tokens, 7) and _within(reply.usage.completion_tokens, 32)
