"""Built-in actions: replies computed from the request rather than written out in a rule.

A rule names one with ``action:`` (judge, translate, summarize, arithmetic). Each is a small
pure function of the match, the conversation, the model and the sampling; it may decline
(return None) so the next rule gets its turn. The judge heuristic (:func:`grade`) is what
makes graded checks pass or fail for understandable reasons against the simulator.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable

from glmeval.catalogue.tokens import content_text

from .conversation import Conversation, Sampling
from .models import ModelSpec
from .phrasing import CJK

__all__ = ["ACTIONS", "ActionFn", "grade"]

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
    if CJK.match(term):
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
    to_english = wants_english or (not wants_chinese and CJK.search(source) is not None)
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
    if CJK.search(source) is None:
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
