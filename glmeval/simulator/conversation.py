"""The data that passes between the protocol, the rules and the server.

A request becomes a :class:`Conversation` (text views rules match against) and a
:class:`Sampling` (what decides the phrasing); a rule answers with a :class:`Reply`.
Kept apart from the rules engine so the protocol layer can build requests without
importing rule loading or the built-in actions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from glmeval.catalogue.tokens import content_text

__all__ = ["Conversation", "Instructions", "Reply", "Sampling", "ToolCall", "VIEWS"]

VIEWS: tuple[str, ...] = ("user", "system", "assistant", "tool", "conversation")
"""The texts a rule can match: the last user message, the system prompt(s), the earlier
assistant turns, the tool results, or every message in order."""

_ENGLISH = re.compile(
    r"\b(?:answer|reply|respond|write|speak|say it)\b[^.\n]{0,24}\bin english\b|\bin english\s*(?:please|only)?\s*[.!]?\s*$"
    r"|用英文|用英语|英文回答|英语回答",
    re.I | re.M,
)
_CHINESE = re.compile(
    r"\b(?:answer|reply|respond|write)\b[^.\n]{0,24}\bin (?:chinese|mandarin)\b|用中文|用汉语|中文回答|汉语回答", re.I
)
_SHORT = re.compile(
    r"\bin (?:one|a single) sentence\b|\bone[- ]sentence\b|\bbriefly\b|\bbe (?:brief|concise)\b|\bshort answer\b"
    r"|一句话|简短|简要|简洁",
    re.I,
)
_LONG = re.compile(r"\bin detail\b|\bdetailed\b|\bthorough(?:ly)?\b|\bstep by step\b|详细|展开|一步一步", re.I)


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A function call in a reply; ``arguments`` is the JSON string the API sends."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class Reply:
    """What the model "says" before stop words and max_tokens are applied."""

    content: str | None
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str = "stop"
    rule: str | None = None
    action: str | None = None


@dataclass(frozen=True, slots=True)
class Sampling:
    """The request parameters that decide which phrasing is chosen."""

    do_sample: bool = True
    temperature: float = 0.95
    top_p: float = 0.7
    seed: int | None = None

    @property
    def greedy(self) -> bool:
        """Greedy decoding always gives a rule's first phrasing."""
        return not self.do_sample or self.temperature <= 0.01


@dataclass(frozen=True, slots=True)
class Instructions:
    """What the system prompt and the last user message ask of the reply's form.

    ``language``: an explicit "answer in English" / "用中文回答" (None: the question's own
    language). ``length``: "in one sentence" / "简短" (short) or "in detail" / "详细" (long).
    """

    language: Literal["en", "zh"] | None = None
    length: Literal["short", "long"] | None = None


def _instructions(system: str, last_user: str) -> Instructions:
    # The user's latest words override the system prompt's.
    language: Literal["en", "zh"] | None = None
    length: Literal["short", "long"] | None = None
    for text in (system, last_user):
        english, chinese = _ENGLISH.search(text), _CHINESE.search(text)
        if english or chinese:
            language = "en" if english and (not chinese or english.start() > chinese.start()) else "zh"
        short, long = _SHORT.search(text), _LONG.search(text)
        if short or long:
            length = "short" if short and (not long or short.start() > long.start()) else "long"
    return Instructions(language, length)


class Conversation:
    """Text views of a request's messages that rules match against, computed once."""

    __slots__ = (
        "messages", "tool_names", "last_user", "last_user_index", "system", "assistant", "tool", "text",
        "instructions",
    )

    def __init__(self, messages: Sequence[Mapping[str, Any]], tool_names: Iterable[str] = ()) -> None:
        self.messages = messages
        self.tool_names = frozenset(tool_names)
        self.last_user = ""
        self.last_user_index = -1
        by_role: dict[str, list[str]] = {"system": [], "assistant": [], "tool": []}
        parts: list[str] = []
        for index, message in enumerate(messages):
            text = content_text(message.get("content"))
            parts.append(text)
            role = message.get("role")
            if role == "user":
                self.last_user, self.last_user_index = text, index
            elif isinstance(role, str) and role in by_role:
                by_role[role].append(text)
        self.system = "\n".join(by_role["system"])
        self.assistant = "\n".join(by_role["assistant"])
        self.tool = "\n".join(by_role["tool"])
        self.text = "\n".join(parts)
        self.instructions = _instructions(self.system, self.last_user)

    def view(self, on: str) -> str:
        """The text a rule with ``on: <on>`` (one of :data:`VIEWS`) is matched against."""
        if on == "user":
            return self.last_user
        if on == "system":
            return self.system
        if on == "assistant":
            return self.assistant
        if on == "tool":
            return self.tool
        return self.text

    def tool_result_for(self, name: str) -> str | None:
        """Content of the tool message answering a call to ``name`` after the last user turn.

        A tool message whose ``tool_call_id`` matches an assistant call to ``name`` wins; a
        tool message with no recognisable id also counts, since hand-written suites often
        omit ids.
        """
        call_names: dict[str, str] = {}
        found: str | None = None
        for message in self.messages[self.last_user_index + 1:]:
            role = message.get("role")
            if role == "assistant":
                for call in message.get("tool_calls") or ():
                    if isinstance(call, Mapping):
                        function = call.get("function") or {}
                        call_names[str(call.get("id"))] = str(function.get("name", ""))
            elif role == "tool":
                called = call_names.get(str(message.get("tool_call_id")))
                if called is None or called == name:
                    found = content_text(message.get("content"))
        return found
