"""Rule files: YAML parsing and validation into compiled :class:`Rule` objects.

Every problem names the file and 1-based line, because rule files are written by hand and a
wrong key should point at itself; and every bad rule of a file (of every file given) is
reported in one pass, one :class:`RulesError` carrying them all, so a user fixes them in one
go. The file format is documented at the top of ``builtin_rules.yaml``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from os import PathLike, fspath
from pathlib import Path
from typing import Any

import yaml

from .actions import ACTIONS
from .conversation import VIEWS
from .models import MODELS, STYLES
from .phrasing import LANGUAGE_KEYS

__all__ = [
    "BUILTIN_RULES_PATH",
    "Rule",
    "RulesError",
    "ToolCallSpec",
    "builtin_rules",
    "load_rules",
    "parse_rules",
]

BUILTIN_RULES_PATH = Path(__file__).with_name("builtin_rules.yaml")

_RULE_KEYS = (
    "name", "description", "match", "on", "ignore_case", "reply", "reply_without_tool",
    "tool_call", "models", "providers", "when", "finish_reason", "action",
)
_ON_VALUES = VIEWS
_REPLY_KEYS = ("default", *STYLES, *LANGUAGE_KEYS.values())
_PROVIDER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_FINISH_REASONS = ("stop", "length", "sensitive", "network_error")


class RulesError(ValueError):
    """A rules file that cannot be used: the file and 1-based line of the (first) problem.

    ``problems`` holds every problem found (this one first); ``str()`` is one line each.
    """

    def __init__(self, message: str, path: str | None = None, line: int | None = None) -> None:
        self.message = message
        self.path = path
        self.line = line
        self.problems: list[RulesError] = [self]
        where = path or "<rules>"
        if line is not None:
            where = f"{where}:{line}"
        self.where = f"{where}: {message}"
        super().__init__(self.where)

    @classmethod
    def combine(cls, problems: list[RulesError]) -> RulesError:
        """One error standing for ``problems`` (its path and line are the first one's)."""
        first = problems[0]
        combined = cls(first.message, first.path, first.line)
        combined.problems = [p for problem in problems for p in problem.problems]
        combined.args = ("\n".join(p.where for p in combined.problems),)
        return combined

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else self.where


@dataclass(frozen=True, slots=True)
class ToolCallSpec:
    """The function call a rule makes when the request offers that function."""

    name: str
    arguments: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Rule:
    """One compiled rule. ``replies`` maps a model name, a style or ``default`` to phrasings."""

    name: str
    pattern: re.Pattern[str]
    on: str = "user"
    replies: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    reply_without_tool: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    tool_call: ToolCallSpec | None = None
    models: frozenset[str] | None = None
    finish_reason: str | None = None
    action: str | None = None
    source: str = ""
    providers: frozenset[str] | None = None
    when: Mapping[str, re.Pattern[str]] = field(default_factory=dict)



def _mark_line(node: yaml.Node | None) -> int | None:
    return node.start_mark.line + 1 if node is not None and node.start_mark is not None else None


class _Reader:
    """Turns YAML nodes into values while keeping their line numbers for error messages."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.constructor = yaml.constructor.SafeConstructor()

    def fail(self, message: str, node: yaml.Node | None) -> RulesError:
        return RulesError(message, self.path, _mark_line(node))

    def value(self, node: yaml.Node) -> Any:
        try:
            return self.constructor.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            raise self.fail(f"cannot read value: {exc}", node) from None

    def compose(self, text: str) -> yaml.Node | None:
        try:
            loader = yaml.SafeLoader(text)
            try:
                return loader.get_single_node()
            finally:
                loader.dispose()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            problem = exc.problem or exc.context or "invalid YAML"
            raise RulesError(f"YAML syntax error: {problem}", self.path, mark.line + 1 if mark else None) from None
        except yaml.YAMLError as exc:
            raise RulesError(f"YAML error: {exc}", self.path) from None

    def phrasings(self, node: yaml.Node, key: str) -> dict[str, tuple[str, ...]]:
        def texts(sub: yaml.Node, label: str) -> tuple[str, ...]:
            value = self.value(sub)
            if isinstance(value, (str, int, float)) and not isinstance(value, bool):
                return (str(value),)
            if isinstance(value, list) and value and all(isinstance(v, (str, int, float)) for v in value):
                return tuple(str(v) for v in value)
            raise self.fail(f"{label} must be a string or a non-empty list of strings", sub)

        if isinstance(node, yaml.MappingNode):
            table: dict[str, tuple[str, ...]] = {}
            for key_node, value_node in node.value:
                name = str(self.value(key_node))
                if name not in _REPLY_KEYS and name not in MODELS:
                    raise self.fail(
                        f"{key} key {name!r} is not a model, a style ({', '.join(STYLES)}), a language "
                        f"({', '.join(LANGUAGE_KEYS.values())}) or 'default'",
                        key_node,
                    )
                table[name] = texts(value_node, f"{key}.{name}")
            if not table:
                raise self.fail(f"{key} must not be empty", node)
            return table
        return {"default": texts(node, key)}

    def rule(self, node: yaml.Node) -> Rule:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail("each rule must be a mapping with at least 'name' and 'match'", node)
        fields_: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            key = self.value(key_node)
            if key is True and key_node.value.lower() == "on":
                key = "on"  # YAML 1.1 reads a bare `on` key as boolean true
            if key not in _RULE_KEYS:
                raise self.fail(f"unknown key {key!r}; expected one of: {', '.join(_RULE_KEYS)}", key_node)
            if key in fields_:
                raise self.fail(f"duplicate key {key!r}", key_node)
            fields_[key] = (key_node, value_node)

        def get(key: str) -> tuple[Any, yaml.Node | None]:
            if key not in fields_:
                return None, None
            value_node = fields_[key][1]
            return self.value(value_node), value_node

        name, name_node = get("name")
        if not isinstance(name, str) or not name.strip():
            raise self.fail("rule needs a non-empty string 'name'", name_node or node)
        label = f"rule {name!r}"
        pattern_text, pattern_node = get("match")
        if not isinstance(pattern_text, str) or not pattern_text:
            raise self.fail(f"{label}: 'match' must be a non-empty regex string", pattern_node or node)
        ignore_case, ic_node = get("ignore_case")
        if ignore_case is not None and not isinstance(ignore_case, bool):
            raise self.fail(f"{label}: 'ignore_case' must be true or false", ic_node)
        flags = re.DOTALL | (0 if ignore_case is False else re.IGNORECASE)
        try:
            pattern = re.compile(pattern_text, flags)
        except re.error as exc:
            raise self.fail(f"{label}: invalid regex in 'match': {exc.msg}", pattern_node) from None
        when: dict[str, re.Pattern[str]] = {}
        when_spec, when_node = get("when")
        if when_spec is not None:
            if not isinstance(when_spec, dict) or not when_spec:
                raise self.fail(f"{label}: 'when' maps roles ({', '.join(_ON_VALUES)}) to regexes", when_node)
            for role, regex in when_spec.items():
                if role not in _ON_VALUES:
                    raise self.fail(f"{label}: 'when' key {role!r} is not one of {', '.join(_ON_VALUES)}", when_node)
                if not isinstance(regex, str) or not regex:
                    raise self.fail(f"{label}: 'when.{role}' must be a non-empty regex string", when_node)
                try:
                    when[role] = re.compile(regex, flags)
                except re.error as exc:
                    raise self.fail(f"{label}: invalid regex in 'when.{role}': {exc.msg}", when_node) from None
        providers, providers_node = get("providers")
        if providers is not None:
            if isinstance(providers, str):
                providers = [providers]
            if not isinstance(providers, list) or not providers or not all(
                isinstance(p, str) and _PROVIDER.fullmatch(p) for p in providers
            ):
                raise self.fail(f"{label}: 'providers' must be a list of provider names (such as zhipu)", providers_node)
            providers = frozenset(providers)
        on, on_node = get("on")
        on = on if on is not None else "user"
        if on == "last_user":
            on = "user"
        if on not in _ON_VALUES:
            raise self.fail(f"{label}: 'on' must be one of {', '.join(_ON_VALUES)}", on_node)
        replies = self.phrasings(fields_["reply"][1], "reply") if "reply" in fields_ else {}
        without = (
            self.phrasings(fields_["reply_without_tool"][1], "reply_without_tool")
            if "reply_without_tool" in fields_ else {}
        )
        tool_call = None
        if "tool_call" in fields_:
            spec, spec_node = get("tool_call")
            if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or not spec["name"]:
                raise self.fail(f"{label}: 'tool_call' needs a function 'name' and optional 'arguments' mapping", spec_node)
            arguments = spec.get("arguments", {})
            extra = set(spec) - {"name", "arguments"}
            if not isinstance(arguments, dict) or extra:
                raise self.fail(f"{label}: 'tool_call' takes only 'name' and an 'arguments' mapping", spec_node)
            tool_call = ToolCallSpec(spec["name"], arguments)
        models, models_node = get("models")
        if models is not None:
            if isinstance(models, str):
                models = [models]
            if not isinstance(models, list) or not models:
                raise self.fail(f"{label}: 'models' must be a list of model names", models_node)
            unknown = [m for m in models if m not in MODELS]
            if unknown:
                raise self.fail(f"{label}: unknown model(s) in 'models': {', '.join(map(str, unknown))}", models_node)
            models = frozenset(models)
        finish, finish_node = get("finish_reason")
        if finish is not None and finish not in _FINISH_REASONS:
            raise self.fail(f"{label}: 'finish_reason' must be one of {', '.join(_FINISH_REASONS)}", finish_node)
        action, action_node = get("action")
        if action is not None and action not in ACTIONS:
            raise self.fail(f"{label}: unknown action {action!r}; known: {', '.join(ACTIONS)}", action_node)
        if not replies and action is None and tool_call is None:
            raise self.fail(f"{label}: needs 'reply', 'action' or 'tool_call'", node)
        return Rule(
            name=name,
            pattern=pattern,
            on=on,
            replies=replies,
            reply_without_tool=without,
            tool_call=tool_call,
            models=models,
            finish_reason=finish,
            action=action,
            source=f"{self.path}:{_mark_line(node)}",
            providers=providers,
            when=when,
        )


def parse_rules(text: str, path: str = "<rules>") -> list[Rule]:
    """Parse rules from YAML text (a list, or a mapping with a ``rules`` list)."""
    reader = _Reader(path)
    root = reader.compose(text)
    if root is None:
        return []
    items: yaml.Node | None = root
    if isinstance(root, yaml.MappingNode):
        items = None
        for key_node, value_node in root.value:
            key = reader.value(key_node)
            if key == "rules":
                items = value_node
            else:
                raise reader.fail(f"unknown top-level key {key!r}; expected 'rules'", key_node)
        if items is None:
            raise reader.fail("expected a 'rules' list", root)
    if not isinstance(items, yaml.SequenceNode):
        raise reader.fail("expected a list of rules (or a mapping with a 'rules' list)", items)
    rules: list[Rule] = []
    problems: list[RulesError] = []
    seen: set[str] = set()
    for item in items.value:
        try:
            rule = reader.rule(item)
            if rule.name in seen:
                raise reader.fail(f"duplicate rule name {rule.name!r}", item)
        except RulesError as problem:
            problems.append(problem)
            continue
        seen.add(rule.name)
        rules.append(rule)
    if problems:
        raise RulesError.combine(problems)
    return rules


def load_rules(path: str | PathLike[str]) -> list[Rule]:
    """Read a rules file; problems raise :class:`RulesError` naming the file and line."""
    name = fspath(path)
    try:
        text = Path(name).read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesError(f"cannot read rules file: {exc.strerror or exc}", name) from None
    except UnicodeDecodeError:
        raise RulesError("rules file is not UTF-8 text", name) from None
    return parse_rules(text, name)


@lru_cache(maxsize=1)
def builtin_rules() -> tuple[Rule, ...]:
    """The rules shipped in ``builtin_rules.yaml`` (parsed once per process)."""
    return tuple(load_rules(BUILTIN_RULES_PATH))
