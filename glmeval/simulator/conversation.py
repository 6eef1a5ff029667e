"""The data that passes between the protocol, the rules and the server.

A request becomes a :class:`Conversation` (text views rules match against) and a
:class:`Sampling` (what decides the phrasing); a rule answers with a :class:`Reply`.
Kept apart from the rules engine so the protocol layer can build requests without
importing rule loading or the built-in actions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from glmeval.catalogue.tokens import content_text

__all__ = ["Conversation", "Reply", "Sampling", "ToolCall"]


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


class Conversation:
    """Text views of a request's messages that rules match against, computed once."""

    __slots__ = ("messages", "tool_names", "last_user", "last_user_index", "system", "text")

    def __init__(self, messages: Sequence[Mapping[str, Any]], tool_names: Iterable[str] = ()) -> None:
        self.messages = messages
        self.tool_names = frozenset(tool_names)
        self.last_user = ""
        self.last_user_index = -1
        systems: list[str] = []
        parts: list[str] = []
        for index, message in enumerate(messages):
            text = content_text(message.get("content"))
            parts.append(text)
            role = message.get("role")
            if role == "user":
                self.last_user, self.last_user_index = text, index
            elif role == "system":
                systems.append(text)
        self.system = "\n".join(systems)
        self.text = "\n".join(parts)

    def view(self, on: str) -> str:
        """The text a rule with ``on: <on>`` is matched against."""
        if on == "user":
            return self.last_user
        if on == "system":
            return self.system
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
