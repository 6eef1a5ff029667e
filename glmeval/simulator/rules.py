"""Deterministic replies for the local server: the rules engine.

Why rules: a suite run against the simulator has to produce answers that pass or fail checks
for understandable reasons, vary with model and temperature so comparisons mean something,
and stay identical run after run so CI is stable. A rule is a regex plus replies; the file
format is documented at the top of ``builtin_rules.yaml``.

The parts live beside this module: :mod:`.rulefile` (loading and validation), :mod:`.actions`
(computed replies), :mod:`.phrasing` (wording and the fallback), :mod:`.conversation` (the
data). Their public names are re-exported here, where callers have always found them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import replace
from os import PathLike

from .actions import ACTIONS
from .conversation import Conversation, Reply, Sampling, ToolCall
from .models import ModelSpec
from .phrasing import (
    Sampler,
    choice_index,
    digest,
    fallback_reply,
    first_sentence,
    phrasings_for,
    reasoning_for,
    render_tool_result,
    substitute,
    substitute_data,
)
from .rulefile import Rule, RulesError, builtin_rules, load_rules, parse_rules

__all__ = [
    "ACTIONS",
    "Conversation",
    "Reply",
    "Rule",
    "RuleSet",
    "RulesError",
    "Sampling",
    "ToolCall",
    "builtin_rules",
    "fallback_reply",
    "load_rules",
    "parse_rules",
    "reasoning_for",
]

_FIRST_BUILTINS = frozenset({"judge"})


class RuleSet:
    """User rules first, then the built-ins they do not replace (same ``name`` replaces).

    Exception: the built-in ``judge`` rule goes before user rules (unless a user rule named
    ``judge`` replaces it), because a grading prompt quotes the answer under test, and a user
    rule matching some word of that answer must not hijack the grading call.
    """

    def __init__(self, user_rules: Sequence[Rule] = (), include_builtins: bool = True, seed: int = 0) -> None:
        self.sampler = Sampler(seed)
        names = {rule.name for rule in user_rules}
        builtins = [r for r in builtin_rules() if r.name not in names] if include_builtins else []
        first = [r for r in builtins if r.name in _FIRST_BUILTINS]
        rest = [r for r in builtins if r.name not in _FIRST_BUILTINS]
        self.rules: tuple[Rule, ...] = tuple(first) + tuple(user_rules) + tuple(rest)

    @classmethod
    def from_paths(
        cls, paths: str | PathLike[str] | Sequence[str | PathLike[str]] | None, seed: int = 0
    ) -> RuleSet:
        """Load user rules from zero or more files; a later file's rule replaces an earlier one of the same name.

        ``seed`` seeds the sampler that picks phrasings (see :mod:`.phrasing`).
        """
        if paths is None:
            return cls(seed=seed)
        if isinstance(paths, (str, PathLike)):
            paths = [paths]
        merged: dict[str, Rule] = {}
        problems: list[RulesError] = []
        for path in paths:
            try:
                loaded = load_rules(path)
            except RulesError as problem:
                problems.append(problem)  # every file's problems in one report
                continue
            for rule in loaded:
                merged.pop(rule.name, None)
                merged[rule.name] = rule
        if problems:
            raise RulesError.combine(problems)
        return cls(list(merged.values()), seed=seed)

    def respond(
        self,
        conv: Conversation,
        model: ModelSpec,
        sampling: Sampling,
        provider: str | None = None,
        request_key: str = "",
    ) -> Reply:
        """The reply of the first rule that matches and accepts, else the fallback.

        A rule is tried when its ``models`` and ``providers`` (if any) name this request's,
        its ``match`` finds its ``on`` text and every ``when`` pattern finds its role's text.
        One sampler draw per call picks the phrasing (``request_key``, the rest of the request,
        keeps its own count of sightings, so the first sync and the first stream call of one
        prompt answer alike); "in one sentence" cuts a worded reply (not a computed one) to
        its first sentence.
        """
        draw = self.sampler.draw(model.name, sampling, conv.text, request_key)
        for rule in self.rules:
            if rule.models is not None and model.name not in rule.models:
                continue
            if rule.providers is not None and (provider or "zhipu") not in rule.providers:
                continue
            match = rule.pattern.search(conv.view(rule.on))
            if match is None or not all(p.search(conv.view(role)) for role, p in rule.when.items()):
                continue
            reply = self._apply(rule, match, conv, model, sampling, draw)
            if reply is not None:
                return self._fit_length(reply, conv)
        return self._fit_length(Reply(fallback_reply(conv, model, sampling, draw), rule=None), conv)

    @staticmethod
    def _fit_length(reply: Reply, conv: Conversation) -> Reply:
        if conv.instructions.length != "short" or reply.action is not None or not reply.content:
            return reply
        return replace(reply, content=first_sentence(reply.content))

    def _apply(
        self, rule: Rule, match: re.Match[str], conv: Conversation, model: ModelSpec, sampling: Sampling, draw: int
    ) -> Reply | None:
        context = {"model": model.name, "last_user": conv.last_user}
        table = rule.replies
        if rule.tool_call is not None:
            result = conv.tool_result_for(rule.tool_call.name)
            if result is None and rule.tool_call.name in conv.tool_names:
                arguments = substitute_data(dict(rule.tool_call.arguments), match, context)
                call_id = "call_%019d" % (digest("call", model.name, conv.text, rule.tool_call.name) % 10**19)
                call = ToolCall(call_id, rule.tool_call.name, json.dumps(arguments, ensure_ascii=False))
                return Reply(None, (call,), "tool_calls", rule.name, rule.action)
            if result is None:
                table = rule.reply_without_tool
            else:
                context["tool_result"] = render_tool_result(result)
                context["tool_result_raw"] = result
            if not table and rule.action is None:
                return None
        if rule.action is not None:
            content = ACTIONS[rule.action](match, conv, model, sampling)
            if content is None:
                return None
        else:
            phrasings = phrasings_for(table, model, conv.instructions)
            if not phrasings:
                return None
            template = phrasings[choice_index(len(phrasings), sampling, draw)]
            content = substitute(template, match, context)
        return Reply(content, (), rule.finish_reason or "stop", rule.name, rule.action)
