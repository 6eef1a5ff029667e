"""Templates shared by many cases, checked once so that each case needs only a glance.

Every row of a case file sends the suite's conversation and checks with its own variables.
When all of those templates are text and ``{{ name }}`` (most are), rendering them for a
case cannot fail as long as each name holds text or a number: the validating pass of a
100,000-case plan looks at the names instead of building 200,000 strings. Anything else
(a filter, a loop, a missing name, a list value) goes the long way, so the problems found
and their wording are those of rendering.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from glmeval.suite.model import Message, Suite
from glmeval.suite.templating import MAX_TEMPLATE_OUTPUT, renders_simply, simple_names, template_strings, templated_check_args

__all__ = ["SharedTemplates"]


class SharedTemplates:
    """The simple templates of a conversation and its checks; ``sound`` says whether a
    case's variables render them all without the engine."""

    def __init__(self, parts: list[tuple[tuple[bool, str], ...]]) -> None:
        self.parts = [p for p in parts if any(is_name for is_name, _ in p)]
        self.names = sorted({text for p in self.parts for is_name, text in p if is_name})
        # Text values of at most this many characters in all fit every template, however
        # often a name is repeated in one.
        self.budget = min(
            ((MAX_TEMPLATE_OUTPUT - sum(len(t) for n, t in p if not n)) // sum(n for n, _ in p) for p in self.parts),
            default=MAX_TEMPLATE_OUTPUT,
        )

    @classmethod
    def of(cls, texts: Iterable[str]) -> SharedTemplates | None:
        """None when any of the texts needs the engine (or does not compile)."""
        parts = []
        for text in texts:
            found = simple_names(text)
            if found is None:
                return None
            parts.append(found)
        return cls(parts)

    @classmethod
    def for_plain(cls, suite: Suite, conversations: Iterable[list[Message] | None]) -> SharedTemplates | None:
        """The templates a case without keys of its own renders: its conversations' (one per
        prompt it runs with) and the suite's checks'."""
        if not suite.templating:
            return cls([])
        texts: list[str] = []
        for conversation in conversations:
            for message in conversation or []:
                if not message.template:
                    continue
                if isinstance(message.content, list):
                    return None  # image parts: a path that renders may still name no file
                calls = [(c.get("function") or {}).get("arguments") for c in message.tool_calls or []]
                texts += template_strings([message.content, *calls])
        for spec in suite.check_specs.get("*", []):
            texts += template_strings([spec.args[k] for k in templated_check_args(spec)])
        return cls.of(texts)

    def sound(self, variables: dict[str, Any]) -> bool:
        get = variables.get
        size = 0
        for name in self.names:
            value = get(name)
            if type(value) is not str:
                return all(renders_simply(p, variables) for p in self.parts)
            size += len(value)
        return size <= self.budget or all(renders_simply(p, variables) for p in self.parts)
