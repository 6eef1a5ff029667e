"""Deterministic replies for the local server: rule files, built-in actions and the fallback.

Why rules: a suite run against the simulator has to produce answers that pass or fail checks
for understandable reasons, vary with model and temperature so comparisons mean something,
and stay identical run after run so CI is stable. A rule is a regex plus replies; the file
format is documented at the top of ``builtin_rules.yaml``.

Determinism: nothing here uses Python's randomised ``hash()`` or a random generator. Every
choice is a BLAKE2 hash of (model, temperature, top_p, seed, conversation text).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from os import PathLike, fspath
from pathlib import Path
from typing import Any

import yaml

from glmeval.catalogue.tokens import content_text

from .models import MODELS, STYLES, ModelSpec

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
    "load_rules",
]

BUILTIN_RULES_PATH = Path(__file__).with_name("builtin_rules.yaml")

_RULE_KEYS = (
    "name", "description", "match", "on", "ignore_case", "reply", "reply_without_tool",
    "tool_call", "models", "finish_reason", "action",
)
_ON_VALUES = ("user", "conversation", "system")
_FINISH_REASONS = ("stop", "length", "sensitive", "network_error")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


class RulesError(ValueError):
    """A rules file that cannot be used, with the file and 1-based line of the problem."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None) -> None:
        self.message = message
        self.path = path
        self.line = line
        where = path or "<rules>"
        if line is not None:
            where = f"{where}:{line}"
        super().__init__(f"{where}: {message}")


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


def _digest(*parts: object) -> int:
    blob = "\x1f".join(str(p) for p in parts).encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(blob, digest_size=8).digest(), "big")


def choice_index(count: int, model: str, sampling: Sampling, text: str) -> int:
    """Which of ``count`` phrasings to use.

    Greedy requests always get 0. Otherwise the candidates are the first
    ``1 + round(reach * (count - 1))`` phrasings, ``reach = temperature * (0.4 + 0.6 * top_p)``,
    and a hash of the request picks one, so higher temperature reaches further down the list
    while the same request always gets the same phrasing.
    """
    if count <= 1 or sampling.greedy:
        return 0
    reach = min(1.0, sampling.temperature) * (0.4 + 0.6 * min(1.0, sampling.top_p))
    span = 1 + round(reach * (count - 1))
    if span <= 1:
        return 0
    return _digest(model, sampling.temperature, sampling.top_p, sampling.seed, text) % span


def _phrasings(table: Mapping[str, tuple[str, ...]], model: ModelSpec) -> tuple[str, ...]:
    for key in (model.name, model.style, "default"):
        found = table.get(key)
        if found:
            return found
    for found in table.values():
        return found
    return ()


def _render_tool_result(raw: str) -> str:
    """Tool output as prose: JSON objects become their values joined by '，'."""
    text = raw.strip()
    if text[:1] in "{[":
        try:
            data = json.loads(text)
        except ValueError:
            return text
        values = data.values() if isinstance(data, dict) else data if isinstance(data, list) else [data]
        rendered = [str(v) for v in values if isinstance(v, (str, int, float)) and not isinstance(v, bool)]
        if rendered:
            return "，".join(rendered)
    return text


def _substitute(template: str, match: re.Match[str] | None, context: Mapping[str, str]) -> str:
    """Replace ``{1}``, ``{name}`` (regex groups) and ``{tool_result}``-style context names.

    Unknown names are left as written, so literal braces (JSON examples) survive.
    """
    if "{" not in template:
        return template

    def replace(m: re.Match[str]) -> str:
        key = m.group(1)
        if match is not None:
            if key.isdigit():
                number = int(key)
                if number <= (match.re.groups or 0):
                    return match.group(number) or ""
            elif key in match.re.groupindex:
                return match.group(key) or ""
        value = context.get(key)
        return value if value is not None else m.group(0)

    return _PLACEHOLDER.sub(replace, template)


def _substitute_data(value: Any, match: re.Match[str] | None, context: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return _substitute(value, match, context)
    if isinstance(value, Mapping):
        return {k: _substitute_data(v, match, context) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute_data(v, match, context) for v in value]
    return value


# --------------------------------------------------------------------------------------------
# Built-in actions: replies computed from the request rather than written out.

ActionFn = Callable[["re.Match[str]", Conversation, ModelSpec, Sampling], "str | None"]

_QUOTED = re.compile(r'"([^"\n]{1,80})"|“([^”\n]{1,80})”|「([^」\n]{1,80})」|‘([^’\n]{1,80})’')
_RUBRIC_TAG = re.compile(r"<rubric>(.*?)</rubric>", re.S | re.I)
_OUTPUT_TAG = re.compile(r"<output>(.*?)</output>", re.S | re.I)
_SECTION_END = r"(?=\n\s*[\w ]{1,20}\s*[:：]|\Z)"
_RUBRIC_LINE = re.compile(r"(?:^|\n)\s*(?:rubric|criteria|评分标准)\s*[:：]\s*(.+?)" + _SECTION_END, re.S | re.I)
_OUTPUT_LINE = re.compile(r"(?:^|\n)\s*(?:output|response|answer|回答|输出)\s*[:：]\s*(.+?)" + _SECTION_END, re.S | re.I)
_JUDGE_EXPLICIT = re.compile(r"\[\[glmeval-judge\]\]|you are grading", re.I)
_JUDGE_GENERIC = re.compile(r"rubric|评分", re.I)
_PASS_FAIL = re.compile(r"\bPASS\b|\bFAIL\b")
_WORD = re.compile(r"[a-z0-9][a-z0-9'-]*")
_CJK_RUN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
_STOPWORDS = frozenset(
    ["a", "an", "the", "is", "are", "was", "were", "be", "been", "being", "to", "of", "and", "or", "in", "on", "at", "for", "with", "as", "by", "it", "its", "this", "that", "these", "those", "should", "must", "shall", "will", "would", "can", "could", "may", "might", "does", "do", "did", "not", "no", "yes", "answer", "answers", "response", "responses", "output", "outputs", "reply", "replies", "mention", "mentions", "mentioned", "mentioning", "contain", "contains", "containing", "include", "includes", "including", "say", "says", "said", "state", "states", "stated", "correct", "correctly", "model", "assistant", "text", "user", "question", "about", "from", "has", "have", "had", "which", "who", "what", "when", "where", "why", "how", "than", "then", "into", "only", "also", "any", "all", "some", "each", "very", "more", "most", "less", "such", "so", "if", "but", "there", "their", "they", "them", "he", "she", "his", "her", "we", "our", "you", "your", "i", "me", "my", "rubric", "pass", "fail", "score", "grade", "graded", "grading", "criteria", "criterion", "expected", "explain", "explains", "explained", "clearly", "clear", "given", "give", "gives", "use", "uses", "used"]
)
_CJK_META = re.compile(
    r"回答|回复|输出|应该|应当|必须|需要|提到|提及|包含|包括|内容|是否|正确|说明|指出|给出|模型|答案|用户|问题|"
    r"评分|标准|能够|可以|一个|这个|那个|以及|并且|或者|[的了是在和与及或应要有中把被对等并且为其之]"
)


def _rubric_terms(rubric: str) -> list[str]:
    terms: list[str] = []
    for word in _WORD.findall(rubric.lower()):
        word = word.strip("'-")
        if len(word) >= 2 and word not in _STOPWORDS and word not in terms:
            terms.append(word)
    for run in _CJK_RUN.findall(_CJK_META.sub(" ", rubric)):
        grams = [run] if len(run) == 1 else [run[i:i + 2] for i in range(len(run) - 1)]
        terms.extend(g for g in grams if g not in terms)
    return terms


def _term_found(term: str, output_lower: str) -> bool:
    if _CJK.match(term):
        return term in output_lower
    stem = term if len(term) <= 5 else term[:5]
    return stem in output_lower


def grade(rubric: str, output: str) -> tuple[bool, float, str]:
    """The judge heuristic: does ``output`` cover ``rubric``?

    - If the rubric quotes phrases ("…", “…”, 「…」), every quoted phrase must occur in the
      output (case-insensitive); the score is the fraction found.
    - Otherwise the rubric's content terms are taken (English words minus stop and grading
      words such as "mentions", "answer"; Chinese character bigrams after removing grading
      words such as 回答/提到/包含 and particles such as 的/是), and the score is the fraction
      that occur in the output (English words by their first 5 letters). Pass at >= 0.5.
    Negations ("must not mention X") are not understood.
    """
    output_lower = output.lower()
    quoted = [next(g for g in m.groups() if g) for m in _QUOTED.finditer(rubric)]
    if quoted:
        found = [q for q in quoted if q.lower() in output_lower]
        score = len(found) / len(quoted)
        passed = len(found) == len(quoted)
        missing = [q for q in quoted if q not in found]
        detail = f"found {len(found)}/{len(quoted)} required phrases"
        if missing:
            detail += "; missing: " + ", ".join(missing[:5])
        return passed, round(score, 2), detail
    terms = _rubric_terms(rubric)
    if not terms:
        passed = bool(output.strip())
        return passed, 1.0 if passed else 0.0, "rubric has no content terms; output is " + ("non-empty" if passed else "empty")
    found = [t for t in terms if _term_found(t, output_lower)]
    score = len(found) / len(terms)
    passed = score >= 0.5
    detail = f"output covers {len(found)}/{len(terms)} rubric terms"
    if found:
        detail += " (" + ", ".join(found[:6]) + ")"
    missing = [t for t in terms if t not in found]
    if missing and not passed:
        detail += "; missing: " + ", ".join(missing[:6])
    return passed, round(score, 2), detail


def _last(pattern: re.Pattern[str], text: str) -> str | None:
    found = pattern.findall(text)
    return found[-1].strip() if found else None


def _judge(match: re.Match[str], conv: Conversation, model: ModelSpec, sampling: Sampling) -> str | None:
    text = conv.text
    rubric = _last(_RUBRIC_TAG, text)
    output = _last(_OUTPUT_TAG, text)
    if rubric is None:
        rubric = _last(_RUBRIC_LINE, text)
    if output is None:
        output = _last(_OUTPUT_LINE, text)
    explicit = _JUDGE_EXPLICIT.search(text) is not None
    generic = _JUDGE_GENERIC.search(text) is not None and _PASS_FAIL.search(text) is not None
    if rubric is None or output is None:
        if not (explicit or generic):
            return None
        verdict = {"reason": "FAIL: could not find the <rubric> and <output> sections to grade", "pass": False, "score": 0.0}
        return json.dumps(verdict, ensure_ascii=False)
    if not (explicit or generic or "<rubric>" in text.lower()):
        return None
    passed, score, detail = grade(rubric, output)
    verdict = {"reason": ("PASS: " if passed else "FAIL: ") + detail, "pass": passed, "score": score}
    return json.dumps(verdict, ensure_ascii=False)


_TRANSLATIONS = {
    "你好": "Hello", "您好": "Hello", "谢谢": "Thank you", "早上好": "Good morning", "晚安": "Good night",
    "我爱你": "I love you", "再见": "Goodbye", "今天天气很好": "The weather is nice today",
    "我喜欢学习": "I like studying", "人工智能": "Artificial intelligence", "欢迎": "Welcome",
    "对不起": "Sorry", "生日快乐": "Happy birthday", "中国": "China", "北京": "Beijing",
    "很高兴认识你": "Nice to meet you", "新年快乐": "Happy New Year",
}
_REVERSE = {v.lower(): k for k, v in reversed(list(_TRANSLATIONS.items()))}
_TRANSLATE_NOISE = re.compile(
    r"请|帮我|把|将|翻译成?|译成|为|英文|英语|中文|汉语|一下|句话|这|下面的?|translate|into|to|english|chinese|please|the following|"
    r"[:：,，。.!！?？\"“”「」'‘’]",
    re.I,
)


def _translate(match: re.Match[str], conv: Conversation, model: ModelSpec, sampling: Sampling) -> str | None:
    request = conv.last_user
    quoted = _QUOTED.search(request)
    if quoted:
        source = next(g for g in quoted.groups() if g)
    else:
        _, colon, after = request.replace("：", ":").partition(":")
        source = after if colon and after.strip() else _TRANSLATE_NOISE.sub(" ", request)
    source = source.strip().strip("。.!！?？ ")
    if not source:
        return None
    wants_english = re.search(r"英文|英语|english", request, re.I) is not None
    wants_chinese = re.search(r"中文|汉语|chinese", request, re.I) is not None
    to_english = wants_english or (not wants_chinese and _CJK.search(source) is not None)
    if to_english:
        target = _TRANSLATIONS.get(source) or f"[simulated translation of “{source}”]"
        label = "英文"
    else:
        target = _REVERSE.get(source.lower()) or f"（模拟翻译）{source}"
        label = "中文"
    if model.style == "thorough":
        return f"“{source}”翻译成{label}是：{target}"
    return target


_SENTENCE_END = re.compile(r"(?<=[。！？!?])|(?<=\.)\s")


def _summarize(match: re.Match[str], conv: Conversation, model: ModelSpec, sampling: Sampling) -> str | None:
    request = conv.last_user
    _, colon, after = request.replace("：", ":").partition(":")
    source = after.strip() if colon and len(after.strip()) >= 10 else ""
    if not source:
        earlier = [
            content_text(m.get("content"))
            for m in conv.messages[: max(conv.last_user_index, 0)]
            if m.get("role") in ("user", "assistant", "tool")
        ]
        source = max(earlier, key=len, default="").strip()
    if not source:
        return None
    sentences = [s.strip() for s in _SENTENCE_END.split(source) if s and s.strip()]
    first = sentences[0] if sentences else source
    if len(first) > 60:
        first = first[:60] + "…"
    if _CJK.search(source) is None:
        return f"Summary: {first}"
    if model.style == "thorough":
        return f"这段内容的核心要点是：{first}（原文共{len(sentences)}句，以上为主要信息。）"
    if model.style == "terse":
        return first
    return f"总结：{first}"


_OPS = {
    "+": "+", "加": "+", "plus": "+", "-": "-", "减": "-", "minus": "-", "*": "×", "×": "×", "x": "×",
    "乘": "×", "乘以": "×", "times": "×", "/": "÷", "÷": "÷", "除以": "÷", "divided by": "÷",
}


def _number(text: str) -> str:
    value = float(text)
    return str(int(value)) if value.is_integer() else f"{value:.6f}".rstrip("0").rstrip(".")


def _arithmetic(match: re.Match[str], conv: Conversation, model: ModelSpec, sampling: Sampling) -> str | None:
    try:
        a, op_word, b = match.group("a"), match.group("op"), match.group("b")
    except IndexError:
        return None
    op = _OPS.get(op_word.lower())
    if op is None:
        return None
    x, y = float(a), float(b)
    if op == "÷" and y == 0:
        return "除数不能为零，这个算式没有意义。"
    value = {"+": x + y, "-": x - y, "×": x * y, "÷": x / y if y else math.nan}[op]
    result = _number(repr(value))
    expression = f"{_number(a)} {op} {_number(b)}"
    if model.style == "thorough":
        return f"{expression} = {result}。所以答案是 {result}。"
    if model.style == "terse":
        return result
    return f"{expression} = {result}"


ACTIONS: dict[str, ActionFn] = {
    "judge": _judge,
    "translate": _translate,
    "summarize": _summarize,
    "arithmetic": _arithmetic,
}
"""Computed replies a rule can name with ``action:``; an action may decline (return None)."""


# --------------------------------------------------------------------------------------------
# Fallback for requests no rule matches.

_FALLBACK_ZH = (
    "这是一个很好的问题。",
    "从多个角度来看，这个问题需要结合具体情况分析。",
    "一般来说，可以先明确目标，再把问题拆解成几个小步骤。",
    "如果你能提供更多背景信息，我可以给出更具体的建议。",
    "总的来说，保持耐心并持续实践是关键。",
    "我会尽量给出准确且有帮助的回答。",
    "不同的场景下，最合适的做法可能并不相同。",
)
_FALLBACK_EN = (
    "That is a good question.",
    "It depends on the details of your situation.",
    "A good first step is to state the goal clearly and break the problem into smaller parts.",
    "If you share more context, I can give a more specific answer.",
    "In short, steady practice is the key.",
    "I will try to give an accurate and helpful answer.",
    "The best approach can differ from one case to another.",
)
_SENTENCES_BY_STYLE = {"thorough": 3, "balanced": 2, "terse": 1}


def fallback_reply(conv: Conversation, model: ModelSpec, sampling: Sampling) -> str:
    """A deterministic reply for unmatched requests, marked as simulated, differing by model."""
    snippet = " ".join(conv.last_user.split())[:20]
    english = _CJK.search(conv.last_user) is None and bool(snippet)
    pool = _FALLBACK_EN if english else _FALLBACK_ZH
    key: tuple[object, ...] = (model.name, conv.text)
    if not sampling.greedy:
        key += (sampling.temperature, sampling.top_p, sampling.seed)
    h = _digest(*key)
    chosen: list[str] = []
    order = list(range(len(pool)))
    for _ in range(_SENTENCES_BY_STYLE.get(model.style, 2)):
        chosen.append(pool[order.pop(h % len(order))])
        h //= 7
    if english:
        return f"(simulated reply) About \u201c{snippet}\u201d: " + " ".join(chosen)
    return f"（模拟回复）关于“{snippet}”：" + "".join(chosen)


def reasoning_for(conv: Conversation, reply: Reply) -> str:
    """The short ``reasoning_content`` a thinking model shows before answering."""
    snippet = " ".join(conv.last_user.split())[:30]
    if reply.tool_calls:
        names = "、".join(call.name for call in reply.tool_calls)
        return f"用户的问题是“{snippet}”。我需要调用工具 {names} 获取信息后再回答。"
    return f"用户的问题是“{snippet}”。我需要理解问题，然后给出准确、简洁、有帮助的回答。"


# --------------------------------------------------------------------------------------------
# Loading rule files.


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
                if name != "default" and name not in STYLES and name not in MODELS:
                    raise self.fail(
                        f"{key} key {name!r} is not a model, a style ({', '.join(STYLES)}) or 'default'", key_node
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
        )


def parse_rules(text: str, path: str = "<rules>") -> list[Rule]:
    """Parse rules from YAML text (a list, or a mapping with a ``rules`` list)."""
    reader = _Reader(path)
    root = reader.compose(text)
    if root is None:
        return []
    items = root
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
    seen: set[str] = set()
    for item in items.value:
        rule = reader.rule(item)
        if rule.name in seen:
            raise reader.fail(f"duplicate rule name {rule.name!r}", item)
        seen.add(rule.name)
        rules.append(rule)
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


_FIRST_BUILTINS = frozenset({"judge"})


class RuleSet:
    """User rules first, then the built-ins they do not replace (same ``name`` replaces).

    Exception: the built-in ``judge`` rule goes before user rules (unless a user rule named
    ``judge`` replaces it), because a grading prompt quotes the answer under test, and a user
    rule matching some word of that answer must not hijack the grading call.
    """

    def __init__(self, user_rules: Sequence[Rule] = (), include_builtins: bool = True) -> None:
        names = {rule.name for rule in user_rules}
        builtins = [r for r in builtin_rules() if r.name not in names] if include_builtins else []
        first = [r for r in builtins if r.name in _FIRST_BUILTINS]
        rest = [r for r in builtins if r.name not in _FIRST_BUILTINS]
        self.rules: tuple[Rule, ...] = tuple(first) + tuple(user_rules) + tuple(rest)

    @classmethod
    def from_paths(cls, paths: str | PathLike[str] | Sequence[str | PathLike[str]] | None) -> RuleSet:
        """Load user rules from zero or more files; a later file's rule replaces an earlier one of the same name."""
        if paths is None:
            return cls()
        if isinstance(paths, (str, PathLike)):
            paths = [paths]
        merged: dict[str, Rule] = {}
        for path in paths:
            for rule in load_rules(path):
                merged.pop(rule.name, None)
                merged[rule.name] = rule
        return cls(list(merged.values()))

    def respond(self, conv: Conversation, model: ModelSpec, sampling: Sampling) -> Reply:
        """The reply of the first rule that matches and accepts, else the fallback."""
        for rule in self.rules:
            if rule.models is not None and model.name not in rule.models:
                continue
            match = rule.pattern.search(conv.view(rule.on))
            if match is None:
                continue
            reply = self._apply(rule, match, conv, model, sampling)
            if reply is not None:
                return reply
        return Reply(fallback_reply(conv, model, sampling), rule=None)

    def _apply(
        self, rule: Rule, match: re.Match[str], conv: Conversation, model: ModelSpec, sampling: Sampling
    ) -> Reply | None:
        context = {"model": model.name, "last_user": conv.last_user}
        table = rule.replies
        if rule.tool_call is not None:
            result = conv.tool_result_for(rule.tool_call.name)
            if result is None and rule.tool_call.name in conv.tool_names:
                arguments = _substitute_data(dict(rule.tool_call.arguments), match, context)
                call_id = "call_%019d" % (_digest("call", model.name, conv.text, rule.tool_call.name) % 10**19)
                call = ToolCall(call_id, rule.tool_call.name, json.dumps(arguments, ensure_ascii=False))
                return Reply(None, (call,), "tool_calls", rule.name, rule.action)
            if result is None:
                table = rule.reply_without_tool
            else:
                context["tool_result"] = _render_tool_result(result)
                context["tool_result_raw"] = result
            if not table and rule.action is None:
                return None
        if rule.action is not None:
            content = ACTIONS[rule.action](match, conv, model, sampling)
            if content is None:
                return None
        else:
            phrasings = _phrasings(table, model)
            if not phrasings:
                return None
            template = phrasings[choice_index(len(phrasings), model.name, sampling, conv.text)]
            content = _substitute(template, match, context)
        return Reply(content, (), rule.finish_reason or "stop", rule.name, rule.action)
