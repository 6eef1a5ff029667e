"""Prompt tests written in Python with the ``glm`` fixture (run: ``pytest examples --glmeval-local``).

Suites cover most prompts; Python is for what YAML cannot say: a follow-up turn built from
the first answer, an expectation computed in code. Calls go through glmeval's client,
retries and store, so they show up in the session's run and report next to suite cases.
"""

from __future__ import annotations

from typing import Any


def test_capital(glm: Any) -> None:
    answer = glm.chat("中国的首都是哪里？", model="glm-4", temperature=0.2)
    glm.check(answer, {"contains": "北京"}, {"type": "max-chars", "value": 200})


def test_models_agree(glm: Any) -> None:
    answers = [glm.chat("中国的首都是哪里？", model=m) for m in ("glm-4", "glm-4-flash")]
    for answer in answers:
        glm.check(answer, {"contains": "北京"})


def test_remembers_earlier_turn(glm: Any) -> None:
    messages = [
        {"role": "system", "content": "你是一个记性很好的助手。"},
        {"role": "user", "content": "你好，我叫小明。"},
    ]
    first = glm.chat(messages, model="glm-4", mode="stream")
    assert first.ok, first.error
    messages += [{"role": "assistant", "content": first.text}, {"role": "user", "content": "我叫什么名字？"}]
    second = glm.chat(messages, model="glm-4")
    glm.check(second, {"contains": "小明"})
