"""Checks on the answer's text, written for Chinese as well as English.

Counting rules, shared by every check here:

- **characters** are Unicode code points of the answer with surrounding whitespace removed, so
  ``北京`` is 2 characters (not 6 UTF-8 bytes);
- **words**: each CJK character (Han ideograph, hiragana, katakana) is one word, and each run
  of other letters and digits is one word (``don't``, ``state-of-the-art`` and ``3.14`` are one
  word each), so ``我用Python写代码`` is 6 words: 我 用 Python 写 代 码;
- **sentences** end at ``。！？!?``, at a ``.`` followed by whitespace or the end (so ``3.14``
  does not split), and at line breaks; a run of terminators ends one sentence, and a piece with
  no letter or digit in it (a stray quote, a bullet) is not a sentence.
"""

from __future__ import annotations

import difflib
import functools
import re
import unicodedata
from pathlib import Path
from typing import Any

from glmeval.checks.args import did_you_mean, flag_problem, got, is_template, number_problem, unknown_args
from glmeval.checks.context import CheckContext
from glmeval.checks.registry import register
from glmeval.percent import percent
from glmeval.records import CheckResult, CheckSpec, Completion

_CJK_CHARS = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f"
_HAN = "[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f]"
_WORD = f"[{_CJK_CHARS}]|[^\\W_{_CJK_CHARS}]+(?:['’.\\-][^\\W_{_CJK_CHARS}]+)*"
_LATIN_WORD = f"[^\\W\\d_{_CJK_CHARS}]+"
_SENTENCE_END = re.compile(r"[。！？!?]+|\.+(?=\s|$)|\n+")
_HAS_WORD = re.compile(r"[^\W_]")


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    """``pattern`` compiled on first use: the character classes above, with the CJK planes in
    them, take tens of milliseconds to compile, which a suite without word-count or language
    checks would pay before its first call."""
    return re.compile(pattern)


def _excerpt(text: str, limit: int = 80) -> str:
    text = text.replace("\n", " ")
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def _values(spec: CheckSpec) -> list[str]:
    value: Any = spec.args.get("value", spec.args.get("values"))
    if value is None:
        raise ValueError(f"{spec.type} needs a value")
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]


def _ignore_case(spec: CheckSpec) -> bool:
    return bool(spec.args.get("ignore_case", spec.args.get("icase", False)))


def _fold(text: str, ignore_case: bool) -> str:
    return text.casefold() if ignore_case else text


def _quoted(values: list[str]) -> str:
    return ", ".join(map(repr, values))


def _limit(spec: CheckSpec) -> int:
    value = spec.args.get("value")
    if value is None or isinstance(value, bool):
        raise ValueError(f"{spec.type} needs a number, e.g. `{spec.type}: 100`")
    return int(value)


def count_words(text: str) -> int:
    """Words by the module's rule: one per CJK character, one per run of other letters/digits."""
    return len(_compiled(_WORD).findall(text))


def split_sentences(text: str) -> list[str]:
    """Sentences by the module's rule (terminators ``。！？!?``, ``. `` and line breaks)."""
    return [p.strip() for p in _SENTENCE_END.split(text) if _HAS_WORD.search(p)]


def levenshtein_distance(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions), by the two-row dynamic programme."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


# -- argument validators (run when a suite loads; see glmeval.checks.Validator) --------------

_CASE_ARGS = ("ignore_case", "icase")
_VALUES_ARGS = ("value", "values", *_CASE_ARGS)


def _text_problem(value: Any, what: str) -> str | None:
    """Why ``value`` is not usable as one text to look for, or None."""
    if isinstance(value, bool):
        return f"{what} must be text; {got(value)} (put it in quotes)"
    if isinstance(value, (dict, list, tuple)) or value is None:
        return f"{what} must be text; {got(value)}"
    if value == "":
        return f"{what} is empty text; give the text to look for"
    return None


def validate_text_values(spec: CheckSpec, suite_dir: Path, tools: list[Any] | None) -> list[str]:
    """``contains`` and kin: ``value`` (or ``values``) is text or a non-empty list of text."""
    problems = unknown_args(spec, _VALUES_ARGS) + flag_problem(spec, *_CASE_ARGS)
    if "value" in spec.args and "values" in spec.args:
        problems.append("give value or values, not both")
    value = spec.args.get("value", spec.args.get("values"))
    example = f"`{spec.type}: 北京` or `{spec.type}: [北京, 首都]`"
    if value is None:
        return problems + [f"needs a value, e.g. {example}"]
    if isinstance(value, (list, tuple)):
        if not value:
            problems.append(f"the list of values is empty; give at least one, e.g. {example}")
        for i, item in enumerate(value):
            problem = _text_problem(item, f"value {i + 1} of the list")
            if problem:
                problems.append(problem)
        return problems
    problem = _text_problem(value, "value")
    return problems + ([problem] if problem else [])


def _validate_equals(spec: CheckSpec, suite_dir: Path, tools: list[Any] | None) -> list[str]:
    problems = unknown_args(spec, ("value", *_CASE_ARGS)) + flag_problem(spec, *_CASE_ARGS)
    value = spec.args.get("value")
    if value is None:
        return problems + ["needs a value, e.g. `equals: 北京`"]
    if isinstance(value, (dict, list, tuple)):
        problems.append(f"value must be text (or a number); {got(value)}")
    return problems


def _validate_regex(spec: CheckSpec, suite_dir: Path, tools: list[Any] | None) -> list[str]:
    problems = unknown_args(spec, ("value", "dotall", *_CASE_ARGS)) + flag_problem(spec, "dotall", *_CASE_ARGS)
    value = spec.args.get("value")
    if value is None:
        return problems + ["needs a pattern, e.g. `regex: '^\\d{6}$'`"]
    if isinstance(value, (dict, list, tuple)) or isinstance(value, bool):
        return problems + [f"value must be a regular expression (text); {got(value)}"]
    if not is_template(value):
        try:
            re.compile(str(value))
        except re.error as exc:
            problems.append(f"invalid regular expression /{value}/: {exc}")
    return problems


def _validate_limit(spec: CheckSpec, suite_dir: Path, tools: list[Any] | None) -> list[str]:
    problems = unknown_args(spec, ("value",))
    value = spec.args.get("value")
    if value is None:
        return problems + [f"needs a number, e.g. `{spec.type}: 100`"]
    problem = number_problem(value, "value", whole=True, example=f"{spec.type}: 100")
    return problems + ([problem] if problem else [])


def _validate_levenshtein(spec: CheckSpec, suite_dir: Path, tools: list[Any] | None) -> list[str]:
    problems = unknown_args(spec, ("value", "max_distance", "max", *_CASE_ARGS)) + flag_problem(spec, *_CASE_ARGS)
    value = spec.args.get("value")
    if value is None:
        problems.append("needs a value to compare with, e.g. `{type: levenshtein, value: 北京市, max_distance: 1}`")
    elif isinstance(value, (dict, list, tuple)) or isinstance(value, bool):
        problems.append(f"value must be text; {got(value)}")
    if "max_distance" in spec.args and "max" in spec.args:
        problems.append("give max_distance or max, not both")
    for key in ("max_distance", "max"):
        if key in spec.args:
            problem = number_problem(spec.args[key], key, whole=True, example="max_distance: 2")
            if problem:
                problems.append(problem)
    return problems


def _validate_language(spec: CheckSpec, suite_dir: Path, tools: list[Any] | None) -> list[str]:
    problems = unknown_args(spec, ("value",))
    value = spec.args.get("value")
    if value is None:
        return problems + ["needs a language, e.g. `language: zh` (zh or en)"]
    if is_template(value):
        return problems
    if str(value).strip().lower() not in _LANGUAGES:
        problems.append(f"language must be zh or en; {got(value)}{did_you_mean(str(value).strip().lower(), _LANGUAGES)}")
    return problems


@register("equals", validate=_validate_equals)
def equals(completion: Completion, spec: CheckSpec, ctx: CheckContext) -> tuple[bool, str]:
    """The answer, stripped, equals the value exactly (optionally ignoring case)."""
    expected = str(spec.value).strip()
    got = completion.text.strip()
    icase = _ignore_case(spec)
    if _fold(got, icase) == _fold(expected, icase):
        return True, f"{ctx.subject} equals {_excerpt(expected)}"
    return False, f"expected exactly {_excerpt(expected)}; {ctx.subject} was {_excerpt(got)}"


def _contains_all(completion: Completion, spec: CheckSpec, ignore_case: bool, subject: str) -> tuple[bool, str]:
    values = _values(spec)
    text = _fold(completion.text, ignore_case)
    missing = [v for v in values if _fold(v, ignore_case) not in text]
    how = " (ignoring case)" if ignore_case else ""
    if not missing:
        return True, f"found {_quoted(values)}{how}"
    if len(values) == 1:
        return False, f"expected to contain {_quoted(missing)}{how}; {subject} was {_excerpt(completion.text)}"
    return False, (
        f"expected to contain all of {_quoted(values)}{how}, missing {_quoted(missing)}; "
        f"{subject} was {_excerpt(completion.text)}"
    )


def _contains_any(completion: Completion, spec: CheckSpec, ignore_case: bool, subject: str) -> tuple[bool, str]:
    values = _values(spec)
    text = _fold(completion.text, ignore_case)
    how = " (ignoring case)" if ignore_case else ""
    found = [v for v in values if _fold(v, ignore_case) in text]
    if found:
        return True, f"found {found[0]!r}{how}"
    return False, f"expected any of {_quoted(values)}{how}; {subject} was {_excerpt(completion.text)}"


@register("contains", validate=validate_text_values)
def contains(completion: Completion, spec: CheckSpec, ctx: CheckContext) -> tuple[bool, str]:
    """The answer contains the value (every value, when given a list)."""
    return _contains_all(completion, spec, _ignore_case(spec), ctx.subject)


@register("contains-all", validate=validate_text_values)
def contains_all(completion: Completion, spec: CheckSpec, ctx: CheckContext) -> tuple[bool, str]:
    """The answer contains every one of the values."""
    return _contains_all(completion, spec, _ignore_case(spec), ctx.subject)


@register("icontains", "icontains-all", validate=validate_text_values)
def icontains(completion: Completion, spec: CheckSpec, ctx: CheckContext) -> tuple[bool, str]:
    """The answer contains the value (every value, when a list), ignoring upper/lower case."""
    return _contains_all(completion, spec, True, ctx.subject)


@register("contains-any", validate=validate_text_values)
def contains_any(completion: Completion, spec: CheckSpec, ctx: CheckContext) -> tuple[bool, str]:
    """The answer contains at least one of the values."""
    return _contains_any(completion, spec, _ignore_case(spec), ctx.subject)


@register("icontains-any", validate=validate_text_values)
def icontains_any(completion: Completion, spec: CheckSpec, ctx: CheckContext) -> tuple[bool, str]:
    """The answer contains at least one of the values, ignoring upper/lower case."""
    return _contains_any(completion, spec, True, ctx.subject)


@register("not-contains", validate=validate_text_values)
def not_contains(completion: Completion, spec: CheckSpec, ctx: CheckContext) -> tuple[bool, str]:
    """The answer contains none of the values (a forbidden word list)."""
    icase = _ignore_case(spec)
    text = _fold(completion.text, icase)
    found = [v for v in _values(spec) if _fold(v, icase) in text]
    if not found:
        return True, f"does not contain {_quoted(_values(spec))}"
    return False, f"expected not to contain {_quoted(found)}; {ctx.subject} was {_excerpt(completion.text)}"


@register("starts-with", validate=validate_text_values)
def starts_with(completion: Completion, spec: CheckSpec, ctx: CheckContext) -> tuple[bool, str]:
    """The answer, leading whitespace removed, starts with the value (or one of a list)."""
    icase = _ignore_case(spec)
    text = _fold(completion.text.lstrip(), icase)
    values = _values(spec)
    for v in values:
        if text.startswith(_fold(v, icase)):
            return True, f"starts with {v!r}"
    return False, f"expected to start with {' or '.join(map(repr, values))}; {ctx.subject} was {_excerpt(completion.text.lstrip())}"


@register("ends-with", validate=validate_text_values)
def ends_with(completion: Completion, spec: CheckSpec, ctx: CheckContext) -> tuple[bool, str]:
    """The answer, trailing whitespace removed, ends with the value (or one of a list)."""
    icase = _ignore_case(spec)
    stripped = completion.text.rstrip()
    text = _fold(stripped, icase)
    values = _values(spec)
    for v in values:
        if text.endswith(_fold(v, icase)):
            return True, f"ends with {v!r}"
    tail = stripped[-60:]
    return False, f"expected to end with {' or '.join(map(repr, values))}; {ctx.subject} ended with {_excerpt(tail)}"


@register("regex", validate=_validate_regex)
def regex(completion: Completion, spec: CheckSpec, ctx: CheckContext) -> tuple[bool, str]:
    """The answer matches the regular expression (Python syntax, searched anywhere, ^/$ per line)."""
    pattern = str(spec.value)
    flags = re.MULTILINE | (re.IGNORECASE if _ignore_case(spec) else 0)
    if spec.args.get("dotall"):
        flags |= re.DOTALL
    try:
        match = re.search(pattern, completion.text, flags)
    except re.error as exc:
        raise ValueError(f"invalid regular expression /{pattern}/: {exc}") from None
    if match:
        return True, f"matched /{pattern}/ at {_excerpt(match.group(0), 40)}"
    return False, f"expected to match /{pattern}/; {ctx.subject} was {_excerpt(completion.text)}"


def _counted(n: int, unit: str) -> str:
    return f"{n} {unit if n == 1 else unit + 's'}"


def _length_check(spec: CheckSpec, unit: str, count: int, text: str, is_max: bool, subject: str) -> tuple[bool, str]:
    limit = _limit(spec)
    ok = count <= limit if is_max else count >= limit
    bound = "at most" if is_max else "at least"
    if ok:
        return True, f"{_counted(count, unit)} ({bound} {limit})"
    return False, f"expected {bound} {_counted(limit, unit)}, got {count}; {subject} was {_excerpt(text)}"


@register("min-chars", "min-length", validate=_validate_limit)
def min_chars(completion: Completion, spec: CheckSpec, ctx: CheckContext) -> tuple[bool, str]:
    """The answer has at least N characters (a Chinese character counts 1, not 3 bytes)."""
    text = completion.text.strip()
    return _length_check(spec, "character", len(text), text, is_max=False, subject=ctx.subject)


@register("max-chars", "max-length", validate=_validate_limit)
def max_chars(completion: Completion, spec: CheckSpec, ctx: CheckContext) -> tuple[bool, str]:
    """The answer has at most N characters (a Chinese character counts 1, not 3 bytes)."""
    text = completion.text.strip()
    return _length_check(spec, "character", len(text), text, is_max=True, subject=ctx.subject)


@register("min-words", validate=_validate_limit)
def min_words(completion: Completion, spec: CheckSpec, ctx: CheckContext) -> tuple[bool, str]:
    """The answer has at least N words (each Chinese character counts as one word)."""
    return _length_check(spec, "word", count_words(completion.text), completion.text, is_max=False, subject=ctx.subject)


@register("max-words", validate=_validate_limit)
def max_words(completion: Completion, spec: CheckSpec, ctx: CheckContext) -> tuple[bool, str]:
    """The answer has at most N words (each Chinese character counts as one word)."""
    return _length_check(spec, "word", count_words(completion.text), completion.text, is_max=True, subject=ctx.subject)


@register("min-sentences", validate=_validate_limit)
def min_sentences(completion: Completion, spec: CheckSpec, ctx: CheckContext) -> tuple[bool, str]:
    """The answer has at least N sentences (ended by 。！？!?, a full stop or a line break)."""
    return _length_check(spec, "sentence", len(split_sentences(completion.text)), completion.text, is_max=False, subject=ctx.subject)


@register("max-sentences", validate=_validate_limit)
def max_sentences(completion: Completion, spec: CheckSpec, ctx: CheckContext) -> tuple[bool, str]:
    """The answer has at most N sentences (ended by 。！？!?, a full stop or a line break)."""
    return _length_check(spec, "sentence", len(split_sentences(completion.text)), completion.text, is_max=True, subject=ctx.subject)


@register("levenshtein", validate=_validate_levenshtein)
def levenshtein(completion: Completion, spec: CheckSpec, ctx: CheckContext) -> CheckResult:
    """The answer is within max_distance edits (Levenshtein distance) of the value."""
    expected = str(spec.value).strip()
    got = completion.text.strip()
    limit = int(spec.args.get("max_distance", spec.args.get("max", 0)))
    icase = _ignore_case(spec)
    distance = levenshtein_distance(_fold(got, icase), _fold(expected, icase))
    longest = max(len(got), len(expected)) or 1
    score = 1.0 - distance / longest
    ok = distance <= limit
    reason = f"edit distance {distance} {'<=' if ok else '>'} {limit} from {_excerpt(expected, 40)}"
    if not ok:
        reason += f"; {ctx.subject} was {_excerpt(got)}"
    return CheckResult(spec.type, ok, score, reason)


@register("similarity", validate=validate_text_values)
def similarity(completion: Completion, spec: CheckSpec, ctx: CheckContext) -> CheckResult:
    """The answer's character-level similarity ratio (difflib) to the value reaches the threshold (0.8)."""
    references = _values(spec)
    threshold = spec.threshold if spec.threshold is not None else 0.8
    icase = _ignore_case(spec)
    got = _fold(completion.text.strip(), icase)
    best, best_ref = -1.0, references[0]
    for ref in references:
        ratio = difflib.SequenceMatcher(None, got, _fold(ref.strip(), icase), autojunk=False).ratio()
        if ratio > best:
            best, best_ref = ratio, ref
    ok = best >= threshold
    reason = f"similarity {best:.2f} {'>=' if ok else '<'} {threshold:g} to {_excerpt(best_ref, 40)}"
    if not ok:
        reason += f"; {ctx.subject} was {_excerpt(completion.text)}"
    return CheckResult(spec.type, ok, best, reason)


_LANGUAGES = {"zh": "zh", "zh-cn": "zh", "zh-hans": "zh", "chinese": "zh", "中文": "zh", "en": "en", "english": "en", "英文": "en"}


def _is_latin(word: str) -> bool:
    return all(unicodedata.name(ch, "").startswith("LATIN") for ch in word)


def script_units(text: str) -> tuple[int, int]:
    """``(cjk, latin)``: Han characters and Latin-letter words, the units language shares use."""
    cjk = len(_compiled(_HAN).findall(text))
    latin = sum(1 for w in _compiled(_LATIN_WORD).findall(text) if _is_latin(w))
    return cjk, latin


@register("language", validate=_validate_language)
def language(completion: Completion, spec: CheckSpec, ctx: CheckContext) -> CheckResult:
    """The answer is mostly in the given language (zh or en), by its share of Chinese vs Latin script."""
    wanted = _LANGUAGES.get(str(spec.value).strip().lower())
    if wanted is None:
        raise ValueError(f"language: value must be zh or en, got {spec.value!r}")
    threshold = spec.threshold if spec.threshold is not None else 0.5
    cjk, latin = script_units(completion.text)
    total = cjk + latin
    counts = f"{_counted(cjk, 'Chinese character')}, {_counted(latin, 'Latin word')}"
    if total == 0:
        return CheckResult(spec.type, False, 0.0, f"expected {wanted}; {ctx.subject} has no letters ({_excerpt(completion.text)})")
    share = (cjk if wanted == "zh" else latin) / total
    ok = share >= threshold
    reason = f"{percent(share)} {wanted} ({counts}), {'>=' if ok else '<'} {percent(threshold)}"
    if not ok:
        reason = f"expected {wanted}: {reason}; {ctx.subject} was {_excerpt(completion.text)}"
    return CheckResult(spec.type, ok, share, reason)
