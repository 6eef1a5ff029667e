"""Every built-in check passes and fails with the reason a person would need.

Records are built directly (they are plain data). Model-graded checks run against the local
GLM server through the real zhipuai SDK, by a small grader defined here.
"""

from __future__ import annotations

import importlib
import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glmeval.checks import REGISTRY, CheckContext, evaluate, evaluate_all, load_local_checks, register
from glmeval.checks.graded import NO_GRADER, judge_messages, parse_verdict
from glmeval.checks.structured import extract_json, parse_path
from glmeval.checks.text import count_words, levenshtein_distance, split_sentences
from glmeval.records import CheckResult, CheckSpec, Completion, ErrorInfo, Job, ToolCall

# ``glmeval.checks`` is also the name of a function in glmeval/__init__.py; take the module itself.
checks_pkg = importlib.import_module("glmeval.checks")

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "查询城市天气",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
            "required": ["city"],
        },
    },
}


def make_job(model: str = "glm-4", mode: str = "sync", tools: list[dict[str, Any]] | None = None, **kw: Any) -> Job:
    params: dict[str, Any] = {"tools": tools} if tools is not None else {}
    defaults: dict[str, Any] = dict(
        id="j1",
        suite="s",
        case_id="c",
        variant_id="v",
        variant={},
        repeat=0,
        model=model,
        mode=mode,
        messages=[{"role": "user", "content": "中国的首都是哪里？"}],
        params=params,
        checks=[],
    )
    defaults.update(kw)
    return Job(**defaults)


def check(
    ctype: str,
    answer: str | Completion = "",
    ctx: CheckContext | None = None,
    negate: bool = False,
    weight: float = 1.0,
    metric: str | None = None,
    threshold: float | None = None,
    **args: Any,
) -> CheckResult:
    completion = answer if isinstance(answer, Completion) else Completion(text=answer)
    spec = CheckSpec(ctype, args, negate=negate, weight=weight, metric=metric, threshold=threshold)
    return evaluate(completion, spec, ctx or CheckContext(job=make_job()))


def called(name: str, arguments: Any) -> Completion:
    raw = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
    return Completion(text="", tool_calls=[ToolCall(name, raw, id="call_1")], finish_reason="tool_calls")


TOOL_CTX = CheckContext(job=make_job(tools=[WEATHER_TOOL]))

# (check type, args, answer, passes, text the reason must contain)
CASES: list[tuple[str, dict[str, Any], str, bool, str]] = [
    ("equals", {"value": "北京"}, "北京\n", True, "answer equals '北京'"),
    ("equals", {"value": "北京"}, "上海", False, "expected exactly '北京'; answer was '上海'"),
    ("equals", {"value": "Beijing", "ignore_case": True}, "BEIJING", True, "answer equals 'Beijing'"),
    ("contains", {"value": "北京"}, "中国的首都是北京。", True, "found '北京'"),
    ("contains", {"value": "北京"}, "上海是中国最大的城市", False, "expected to contain '北京'; answer was '上海是中国最大的城市'"),
    ("contains", {"value": ["北京", "首都"]}, "北京很大", False, "expected to contain all of '北京', '首都', missing '首都'"),
    ("contains-all", {"value": ["北京", "首都"]}, "首都是北京", True, "found '北京', '首都'"),
    ("contains-all", {"value": ["北京", "首都"]}, "北京很大", False, "missing '首都'; answer was '北京很大'"),
    ("icontains", {"value": "beijing"}, "BEIJING is big", True, "found 'beijing' (ignoring case)"),
    ("icontains", {"value": "beijing"}, "Shanghai", False, "expected to contain 'beijing' (ignoring case); answer was 'Shanghai'"),
    ("icontains-all", {"value": ["A", "b"]}, "a B", True, "found 'A', 'b' (ignoring case)"),
    ("icontains-all", {"value": ["A", "c"]}, "a B", False, "expected to contain all of 'A', 'c' (ignoring case), missing 'c'"),
    ("icontains-any", {"value": ["HELLO", "hi"]}, "hello there", True, "found 'HELLO' (ignoring case)"),
    ("icontains-any", {"value": ["HELLO", "hi"]}, "yo", False, "expected any of 'HELLO', 'hi' (ignoring case); answer was 'yo'"),
    ("contains-any", {"value": ["你好", "您好"]}, "您好！", True, "found '您好'"),
    ("contains-any", {"value": ["你好", "您好"]}, "嗨", False, "expected any of '你好', '您好'; answer was '嗨'"),
    ("not-contains", {"value": ["抱歉", "无法"]}, "北京。", True, "does not contain '抱歉', '无法'"),
    ("not-contains", {"value": ["抱歉", "无法"]}, "抱歉，我无法回答", False, "expected not to contain '抱歉', '无法'; answer was '抱歉，我无法回答'"),
    ("starts-with", {"value": "你好"}, "  你好，世界", True, "starts with '你好'"),
    ("starts-with", {"value": "你好"}, "嗨，世界", False, "expected to start with '你好'; answer was '嗨，世界'"),
    ("ends-with", {"value": ["。", "！"]}, "好的。\n", True, "ends with '。'"),
    ("ends-with", {"value": "。"}, "好的!", False, "expected to end with '。'; answer ended with '好的!'"),
    ("regex", {"value": r"^\d{3}$"}, "编号\n123", True, "matched /^\\d{3}$/ at '123'"),
    ("regex", {"value": r"^\d{3}$"}, "12a", False, "expected to match /^\\d{3}$/; answer was '12a'"),
    ("min-chars", {"value": 5}, " 北京欢迎你 ", True, "5 characters (at least 5)"),
    ("min-chars", {"value": 5}, "北京", False, "expected at least 5 characters, got 2; answer was '北京'"),
    ("max-chars", {"value": 3}, "北京", True, "2 characters (at most 3)"),
    ("max-chars", {"value": 3}, "北京欢迎你", False, "expected at most 3 characters, got 5"),
    ("min-length", {"value": 2}, "ab", True, "2 characters (at least 2)"),
    ("min-length", {"value": 3}, "ab", False, "expected at least 3 characters, got 2"),
    ("max-length", {"value": 2}, "ab", True, "2 characters (at most 2)"),
    ("max-length", {"value": 1}, "ab", False, "expected at most 1 character, got 2"),
    ("min-words", {"value": 6}, "我用Python写代码", True, "6 words (at least 6)"),
    ("min-words", {"value": 7}, "我用Python写代码", False, "expected at least 7 words, got 6"),
    ("max-words", {"value": 3}, "Hello, big world", True, "3 words (at most 3)"),
    ("max-words", {"value": 3}, "你好世界", False, "expected at most 3 words, got 4; answer was '你好世界'"),
    ("min-sentences", {"value": 4}, "第一句。第二句！Third one? Pi is 3.14.", True, "4 sentences (at least 4)"),
    ("min-sentences", {"value": 2}, "只有一句话。", False, "expected at least 2 sentences, got 1"),
    ("max-sentences", {"value": 1}, "只有一句话。", True, "1 sentence (at most 1)"),
    ("max-sentences", {"value": 1}, "一。二。\n三", False, "expected at most 1 sentence, got 3"),
    ("levenshtein", {"value": "kitten", "max_distance": 3}, "sitting", True, "edit distance 3 <= 3 from 'kitten'"),
    ("levenshtein", {"value": "kitten", "max_distance": 2}, "sitting", False, "edit distance 3 > 2 from 'kitten'; answer was 'sitting'"),
    ("similarity", {"value": "北京是中国的首都"}, "北京是中国首都", True, "similarity 0.93 >= 0.8 to '北京是中国的首都'"),
    ("similarity", {"value": "北京是中国的首都"}, "上海", False, "similarity 0.00 < 0.8 to '北京是中国的首都'; answer was '上海'"),
    ("language", {"value": "zh"}, "我用 Python 写代码", True, "83% zh (5 Chinese characters, 1 Latin word), >= 50%"),
    ("language", {"value": "zh"}, "I live in Beijing", False, "expected zh: 0% zh (0 Chinese characters, 4 Latin words), < 50%"),
    ("language", {"value": "en"}, "I live in 北京", True, "60% en (2 Chinese characters, 3 Latin words), >= 50%"),
    ("language", {"value": "en"}, "12345", False, "expected en; answer has no letters ('12345')"),
    ("is-json", {}, '好的：\n```json\n{"a": 1}\n```', True, "valid JSON object in a ``` fenced block"),
    ("is-json", {}, 'Sure: {"a": [1, 2]} done', True, "valid JSON object in a {...} block at character 6"),
    ("is-json", {}, "[1, 2]", True, "valid JSON array in the whole answer"),
    ("is-json", {}, "不是 JSON", False, "expected JSON in the answer; none parsed (Expecting value at line 1 column 1)"),
    ("is-json", {"strict": True}, 'x {"a": 1}', False, "expected the whole answer to be JSON; none parsed"),
    ("json-field", {"path": "user.tags[1]", "equals": "b"}, '{"user": {"tags": ["a", "b"]}}', True, "json-field $.user.tags[1] equals \"b\""),
    ("json-field", {"path": "$.user.tags[1]", "equals": "c"}, '{"user": {"tags": ["a", "b"]}}', False, 'json-field $.user.tags[1]: expected "c", got "b"'),
    ("json-field", {"path": "user.name"}, '{"user": {"tags": []}}', False, "json-field $.user.name: no key 'name' in $.user (keys: tags)"),
    ("json-field", {"path": "items[5]"}, '{"items": [1]}', False, "json-field $.items[5]: index 5 out of range in $.items (length 1)"),
    ("json-field", {"path": "ok", "equals": 1}, '{"ok": true}', False, "json-field $.ok: expected 1, got true"),
    ("json-field", {"path": "city", "matches": "^北"}, '{"city": "北京"}', True, "json-field $.city matches /^北/"),
    ("json-field", {"path": "city", "matches": "^北"}, '{"city": "上海"}', False, 'json-field $.city: expected to match /^北/, got "上海"'),
    ("json-field", {"path": "tags", "contains": "x"}, '{"tags": ["x", "y"]}', True, 'json-field $.tags contains "x"'),
    ("json-field", {"path": "tags", "contains": "z"}, '{"tags": ["x", "y"]}', False, 'json-field $.tags: expected to contain "z", got ["x", "y"]'),
    ("json-field", {"path": "level", "one_of": ["low", "high"]}, '{"level": "high"}', True, 'json-field $.level is one of ["low", "high"]'),
    ("json-field", {"path": "level", "one_of": ["low", "high"]}, '{"level": "mid"}', False, 'json-field $.level: expected one of ["low", "high"], got "mid"'),
    ("json-field", {"value": {"a.b": 2, "c": "x"}}, '{"a": {"b": 2}, "c": "x"}', True, 'json-field $.a.b equals 2; json-field $.c equals "x"'),
    ("json-field", {"value": {"path": "a", "equals": 3}}, '{"a": 2}', False, "json-field $.a: expected 3, got 2"),
    ("json-field", {"path": "a"}, "没有 JSON", False, "json-field $.a: expected JSON; none parsed"),
    ("finish-reason", {"value": "stop"}, "", True, "finish reason stop"),
]


@pytest.mark.parametrize(
    "ctype,args,answer,passes,reason", CASES, ids=[f"{c[0]}-{'pass' if c[3] else 'fail'}-{i}" for i, c in enumerate(CASES)]
)
def test_check_table(ctype: str, args: dict[str, Any], answer: str, passes: bool, reason: str) -> None:
    completion = Completion(text=answer, finish_reason="stop")
    result = check(ctype, completion, **args)
    assert result.passed is passes, result.reason
    assert reason in result.reason
    assert not result.error


def test_every_builtin_check_is_covered_by_a_passing_and_a_failing_case() -> None:
    covered_pass = {c[0] for c in CASES if c[3]} | _EXTRA_PASS
    covered_fail = {c[0] for c in CASES if not c[3]} | _EXTRA_FAIL
    builtin = {name for name, d in checks_pkg.load_builtin().items() if d.fn.__module__.startswith("glmeval.checks.")}
    assert builtin - covered_pass == set()
    assert builtin - covered_fail == set()


# Checks whose pass and fail cases need richer records live in their own tests below.
_EXTRA_PASS = {
    "finish-reason", "json-schema", "tool-call", "no-tool-call", "max-latency-ms", "max-ttft-ms",
    "max-completion-tokens", "max-total-tokens", "max-cost", "python", "llm-rubric", "similar",
    # reasoning and web search: tests/test_checks_reasoning.py
    "reasoning-contains", "max-reasoning-tokens", "no-reasoning", "web-search-used", "cites-search",
}
_EXTRA_FAIL = _EXTRA_PASS


def test_finish_reason_fails_naming_both() -> None:
    result = check("finish-reason", Completion(text="…", finish_reason="length"), value="stop")
    assert not result.passed
    assert result.reason == "finish reason: expected stop, got length"
    assert check("finish-reason", Completion(text="x", finish_reason="length"), value=["stop", "length"]).passed


def test_regex_invalid_pattern_is_an_error_not_a_verdict() -> None:
    result = check("regex", "abc", value="(")
    assert result.error and not result.passed
    assert "invalid regular expression /(/" in result.reason


def test_missing_value_names_the_check() -> None:
    result = check("contains", "abc")
    assert result.error
    assert "contains needs a value" in result.reason


# -- json-schema -------------------------------------------------------------------------------

PERSON = {"type": "object", "properties": {"age": {"type": "integer"}, "name": {"type": "string"}}, "required": ["age"]}


def test_json_schema_pass_and_fail_with_path() -> None:
    ok = check("json-schema", '```json\n{"age": 3}\n```', value=PERSON)
    assert ok.passed and ok.reason == "JSON in a ``` fenced block matches the schema"
    bad = check("json-schema", '{"age": "x", "name": 5}', value=PERSON)
    assert not bad.passed
    assert bad.reason.startswith("json-schema: $.age: 'x' is not of type 'integer'") or bad.reason.startswith(
        "json-schema: $.name: 5 is not of type 'string'"
    )
    assert "(and 1 more error)" in bad.reason
    missing = check("json-schema", '{"name": "a"}', value=PERSON)
    assert missing.reason == "json-schema: $: 'age' is a required property"


def test_json_schema_without_json_and_with_bad_schema() -> None:
    none = check("json-schema", "没有", value=PERSON)
    assert not none.passed and none.reason.startswith("json-schema: expected JSON; none parsed")
    broken = check("json-schema", '{"a": 1}', value={"type": "objekt"})
    assert broken.error and "invalid JSON Schema" in broken.reason


def test_json_schema_from_file_and_from_spread_shorthand(tmp_path: Path) -> None:
    (tmp_path / "person.yaml").write_text("type: object\nrequired: [age]\n", encoding="utf-8")
    ctx = CheckContext(job=make_job(), suite_dir=tmp_path)
    assert check("json-schema", '{"age": 1}', ctx, value="person.yaml").passed
    assert check("json-schema", "{}", ctx, value="person.yaml").reason == "json-schema: $: 'age' is a required property"
    missing = check("json-schema", "{}", ctx, value="nope.json")
    assert missing.error and "schema file 'nope.json' not found" in missing.reason
    # ``- json-schema: {type: object, ...}`` may reach the check with the schema spread into args.
    assert not check("json-schema", "[1]", type="object").passed


# -- tool calls --------------------------------------------------------------------------------


def test_tool_call_pass_exact_arguments_and_schema() -> None:
    result = check("tool-call", called("get_weather", {"city": "北京"}), TOOL_CTX, name="get_weather", arguments={"city": "北京"})
    assert result.passed
    assert result.reason == (
        'model called get_weather({"city": "北京"}); arguments match, arguments valid against the declared schema'
    )


def test_tool_call_wrong_function() -> None:
    result = check("tool-call", called("search_web", {"q": "天气"}), TOOL_CTX, name="get_weather")
    assert not result.passed
    assert result.reason == "tool-call: expected get_weather, model called search_web"


def test_tool_call_no_call_quotes_the_text() -> None:
    result = check("tool-call", Completion(text="北京今天晴。"), TOOL_CTX, name="get_weather")
    assert result.reason == "tool-call: expected get_weather, model called no tool; answer was '北京今天晴。'"


def test_tool_call_argument_mismatch_exact_and_partial() -> None:
    wrong = check("tool-call", called("get_weather", {"city": "上海"}), TOOL_CTX, name="get_weather", arguments={"city": "北京"})
    assert wrong.reason == 'tool-call get_weather: city: expected "北京", got "上海"'
    extra = called("get_weather", {"city": "北京", "unit": "c"})
    exact = check("tool-call", extra, TOOL_CTX, name="get_weather", arguments={"city": "北京"})
    assert not exact.passed
    assert 'unexpected argument unit="c" (use partial: true to allow extra arguments)' in exact.reason
    subset = check("tool-call", extra, TOOL_CTX, name="get_weather", arguments={"city": "北京"}, partial=True)
    assert subset.passed and "arguments match (subset)" in subset.reason
    absent = check("tool-call", called("get_weather", {"unit": "c"}), TOOL_CTX, name="get_weather", arguments={"city": "北京"}, validate=False)
    assert absent.reason == 'tool-call get_weather: missing argument city (expected "北京")'


def test_tool_call_arguments_validated_against_declared_schema() -> None:
    result = check("tool-call", called("get_weather", {"city": 123}), TOOL_CTX, name="get_weather")
    assert not result.passed
    assert result.reason == (
        "tool-call get_weather: arguments break the declared parameters schema: $.city: 123 is not of type 'string'"
    )
    enum = check("tool-call", called("get_weather", {"city": "北京", "unit": "k"}), TOOL_CTX, name="get_weather")
    assert "$.unit: 'k' is not one of ['c', 'f']" in enum.reason
    skipped = check("tool-call", called("get_weather", {"city": 123}), TOOL_CTX, name="get_weather", validate=False)
    assert skipped.passed


def test_tool_call_undeclared_tool_and_bad_json() -> None:
    result = check("tool-call", called("delete_all", {}), TOOL_CTX, name="delete_all")
    assert result.reason == "tool-call: model called delete_all, which the job does not declare (declared: get_weather)"
    broken = check("tool-call", called("get_weather", '{"city": 北京}'), TOOL_CTX, name="get_weather")
    assert not broken.passed
    assert broken.reason.startswith("tool-call get_weather: arguments are not valid JSON (Expecting value)")


def test_tool_call_any_of_several_calls_may_match() -> None:
    completion = Completion(
        tool_calls=[ToolCall("get_weather", '{"city": "上海"}'), ToolCall("get_weather", '{"city": "北京"}')]
    )
    assert check("tool-call", completion, TOOL_CTX, name="get_weather", arguments={"city": "北京"}).passed
    second = check("tool-call", completion, TOOL_CTX, name="get_weather", arguments={"city": "北京"}, index=0)
    assert not second.passed and 'expected "北京", got "上海"' in second.reason


def test_no_tool_call() -> None:
    assert check("no-tool-call", "北京今天晴。", TOOL_CTX).reason == "no tool called"
    result = check("no-tool-call", called("get_weather", {"city": "北京"}), TOOL_CTX)
    assert not result.passed
    assert result.reason == 'expected no tool call; model called get_weather({"city": "北京"})'


# -- metrics -----------------------------------------------------------------------------------


def test_max_latency() -> None:
    slow = check("max-latency-ms", Completion(text="x", latency_ms=1250.0), value=1000)
    assert not slow.passed and slow.reason == "latency 1250 ms > 1000 ms"
    fast = check("max-latency-ms", Completion(text="x", latency_ms=80.0), value=1000)
    assert fast.passed and fast.reason == "latency 80 ms <= 1000 ms"
    cached = check("max-latency-ms", Completion(text="x", latency_ms=5000.0, cached=True), value=1000)
    assert cached.passed and "replayed from cache" in cached.reason
    assert check("max-latency-ms", Completion(text="x"), value=1).reason == "no latency was measured"


def test_metrics_run_on_a_failed_call_too() -> None:
    failed = Completion(error=ErrorInfo("timeout", "read timed out"), latency_ms=30000.0)
    latency = check("max-latency-ms", failed, value=1000)
    assert not latency.error and latency.reason == "latency 30000 ms > 1000 ms"
    text = check("contains", failed, value="x")
    assert text.error and text.reason == "no answer to check: timeout: read timed out"


def test_max_ttft() -> None:
    stream = CheckContext(job=make_job(mode="stream"))
    slow = check("max-ttft-ms", Completion(text="x", ttft_ms=300.0), stream, value=200)
    assert not slow.passed and slow.reason == "time to first token 300 ms > 200 ms"
    assert check("max-ttft-ms", Completion(text="x", ttft_ms=120.0), stream, value=200).reason == (
        "time to first token 120 ms <= 200 ms"
    )
    sync = check("max-ttft-ms", Completion(text="x"), value=200)
    assert sync.passed and "not applicable to sync mode" in sync.reason
    missing = check("max-ttft-ms", Completion(text=""), stream, value=200)
    assert not missing.passed and "no time to first token was measured" in missing.reason


def test_token_limits() -> None:
    usage = Completion(text="x", prompt_tokens=100, completion_tokens=812, total_tokens=912)
    over = check("max-completion-tokens", usage, value=500)
    assert not over.passed and over.reason == "completion tokens 812 > 500"
    assert check("max-completion-tokens", usage, value=1000).reason == "completion tokens 812 <= 1000"
    total = check("max-total-tokens", usage, value=900)
    assert not total.passed and total.reason == "total tokens 912 (100 prompt + 812 completion) > 900"
    assert check("max-total-tokens", usage, value=912).passed


def test_max_cost_uses_price_table_and_overrides() -> None:
    usage = Completion(text="x", prompt_tokens=1000, completion_tokens=1000, total_tokens=2000)
    over = check("max-cost", usage, value=0.1)
    assert not over.passed
    assert over.reason == "cost 0.2 yuan > 0.1 yuan (1000 prompt + 1000 completion tokens at 100/100 yuan per 1M)"
    cheap = CheckContext(job=make_job(), prices={"glm-4": {"input": 1, "output": 2}})
    under = check("max-cost", usage, cheap, value=0.1)
    assert under.passed and under.reason.startswith("cost 0.003 yuan <= 0.1 yuan")
    unknown = check("max-cost", usage, CheckContext(job=make_job(model="my-model")), value=0.0)
    assert unknown.passed and "no price known for model 'my-model'" in unknown.reason


# -- python ------------------------------------------------------------------------------------


def test_python_inline_expression() -> None:
    ok = check("python", "首都是北京", value="'北京' in output")
    assert ok.passed and ok.reason == "python `'北京' in output` returned True"
    bad = check("python", "上海", value="'北京' in output")
    assert not bad.passed and bad.reason == "python `'北京' in output` returned False"


def test_python_sees_vars_tool_calls_json_and_re() -> None:
    ctx = CheckContext(job=make_job(tools=[WEATHER_TOOL], vars={"city": "北京"}))
    expr = "tool_calls[0]['arguments']['city'] == vars['city'] and bool(re.match('get', tool_calls[0]['name']))"
    assert check("python", called("get_weather", {"city": "北京"}), ctx, value=expr).passed
    assert check("python", '{"n": 3}', value="json.loads(output)['n'] == 3").passed


def test_python_scores_tuples_dicts_and_bodies() -> None:
    low = check("python", "abc", value="len(output) / 10")
    assert not low.passed and low.score == pytest.approx(0.3)
    assert low.reason == "python `len(output) / 10` returned score 0.30 < threshold 0.5"
    assert check("python", "abc", value="len(output) / 10", threshold=0.2).passed
    tup = check("python", "abc", value="(False, 'too short: ' + output)")
    assert not tup.passed and tup.reason == "too short: abc"
    dct = check("python", "abc", value="{'pass': True, 'score': 0.9, 'reason': 'fine'}")
    assert dct.passed and dct.score == 0.9 and dct.reason == "fine"
    body = textwrap.dedent(
        """
        words = output.split()
        if len(words) < 3:
            return False, f"only {len(words)} words"
        return True
        """
    )
    short = check("python", "one two", value=body)
    assert not short.passed and short.reason == "only 2 words"
    assert check("python", "one two three", value=body).passed


def test_python_errors_are_reported_not_raised() -> None:
    boom = check("python", "x", value="1 / 0")
    assert boom.error and boom.reason == "python `1 / 0` raised ZeroDivisionError: division by zero"
    none = check("python", "x", value="None")
    assert none.error and "returned None; return a bool" in none.reason


def test_python_file_function(tmp_path: Path) -> None:
    (tmp_path / "checks").mkdir()
    (tmp_path / "checks" / "mine.py").write_text(
        textwrap.dedent(
            """
            def polite(output, context):
                if "您" in output:
                    return {"pass": True, "score": 1.0, "reason": "uses 您 for " + context["vars"]["who"]}
                return False, "no 您 in " + repr(output)
            """
        ),
        encoding="utf-8",
    )
    ctx = CheckContext(job=make_job(vars={"who": "客户"}), suite_dir=tmp_path)
    ok = check("python", "您好", ctx, value="checks/mine.py:polite")
    assert ok.passed and ok.reason == "uses 您 for 客户"
    bad = check("python", "你好", ctx, value="checks/mine.py:polite")
    assert not bad.passed and bad.reason == "no 您 in '你好'"
    missing = check("python", "你好", ctx, value="checks/mine.py:nothing")
    assert missing.error and "has no function 'nothing'" in missing.reason
    nofile = check("python", "你好", ctx, value="nope.py:f")
    assert nofile.error and "python check file 'nope.py' not found" in nofile.reason


# -- common options ----------------------------------------------------------------------------


def test_negation_flips_verdict_score_and_says_so() -> None:
    found = check("contains", "北京", value="北京", negate=True)
    assert not found.passed and found.score == 0.0
    assert found.reason == "not contains: expected the check to fail, but it passed (found '北京')"
    absent = check("contains", "上海", value="北京", negate=True)
    assert absent.passed and absent.score == 1.0
    assert absent.reason.startswith("not contains: the check failed, as required (expected to contain '北京'")


def test_negation_never_turns_an_error_into_a_pass() -> None:
    result = check("regex", "abc", value="(", negate=True)
    assert result.error and not result.passed


def test_threshold_decides_from_the_score() -> None:
    strict = check("similarity", "北京是中国首都", value="北京是中国的首都", threshold=0.95)
    assert not strict.passed and strict.reason.startswith("similarity 0.93 < 0.95")
    near = check("levenshtein", "sitting", value="kitten", max_distance=1, threshold=0.5)
    assert near.passed and near.score == pytest.approx(1 - 3 / 7)
    assert near.reason.endswith("; score 0.57 >= threshold 0.5")
    assert check("language", "我用 Python 写代码", value="zh", threshold=0.9).reason.startswith("expected zh: 83% zh")


def test_weight_metric_and_label_are_carried() -> None:
    result = check("contains", "北京", value="北京", weight=2.5, metric="capital")
    assert (result.weight, result.metric, result.label, result.type) == (2.5, "capital", "capital", "contains")
    plain = check("contains", "北京", value="北京", negate=True)
    assert plain.label == "not contains 北京"


def test_unknown_type_suggests_a_name() -> None:
    result = check("contain", "x", value="x")
    assert result.error and result.reason == "unknown check type 'contain'; did you mean 'contains', 'icontains' or 'not-contains'?"


def test_evaluate_all_weighted_score_and_min_score() -> None:
    specs = [
        CheckSpec("contains", {"value": "北京"}, weight=3.0),
        CheckSpec("contains", {"value": "首都"}, weight=1.0),
    ]
    completion = Completion(text="北京")
    ctx = CheckContext(job=make_job())
    results, passed, score = evaluate_all(completion, specs, ctx)
    assert [r.passed for r in results] == [True, False] and not passed and score == 0.75
    assert evaluate_all(completion, specs, ctx, min_score=0.7)[1]
    assert not evaluate_all(completion, specs, ctx, min_score=0.8)[1]
    errored = Completion(error=ErrorInfo("server", "boom", status=500))
    assert evaluate_all(errored, specs, ctx) [1:] == (False, 0.0)
    assert evaluate_all(completion, [], ctx)[1:] == (True, 1.0)


# -- extensibility -----------------------------------------------------------------------------


@pytest.fixture
def registry_snapshot() -> Iterator[None]:
    checks_pkg.load_builtin()
    saved = dict(REGISTRY)
    try:
        yield
    finally:
        REGISTRY.clear()
        REGISTRY.update(saved)


def test_load_local_checks_decorator_and_dict(tmp_path: Path, registry_snapshot: None) -> None:
    local = tmp_path / "my_checks.py"
    local.write_text(
        textwrap.dedent(
            """
            from glmeval.checks import register

            @register("polite")
            def polite(completion, spec, ctx):
                \"\"\"The answer uses the polite 您.\"\"\"
                return "您" in completion.text, "looked for 您"

            def short(completion, spec, ctx):
                return len(completion.text) <= int(spec.value)

            CHECKS = {"short-answer": short, "equals": lambda c, s, x: (True, "overridden")}
            """
        ),
        encoding="utf-8",
    )
    added = load_local_checks(local)
    assert set(added) == {"polite", "short-answer", "equals"}
    assert REGISTRY["polite"].doc == "The answer uses the polite 您."
    assert check("polite", "您好").reason == "looked for 您"
    assert not check("polite", "你好").passed
    assert check("short-answer", "abc", value=3).passed
    assert not check("short-answer", "abcd", value=3).passed
    assert check("equals", "x", value="y").reason == "overridden"
    with pytest.raises(FileNotFoundError, match="local checks file"):
        load_local_checks(tmp_path / "missing.py")


def test_entry_point_plugins(tmp_path: Path, registry_snapshot: None, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "glmeval_demo_plugin.py").write_text(
        textwrap.dedent(
            """
            def shouting(completion, spec, ctx):
                \"\"\"The answer is all upper case.\"\"\"
                return completion.text.isupper(), "checked case"

            MORE = {"has-digit": lambda c, s, x: any(ch.isdigit() for ch in c.text)}
            """
        ),
        encoding="utf-8",
    )
    (tmp_path / "glmeval_demo_module.py").write_text(
        textwrap.dedent(
            """
            from glmeval.checks import register

            @register("regex")
            def hijack(completion, spec, ctx):
                return True

            @register("has-emoji")
            def has_emoji(completion, spec, ctx):
                return any(ord(ch) > 0x1F000 for ch in completion.text)
            """
        ),
        encoding="utf-8",
    )
    dist = tmp_path / "glmeval_demo_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: glmeval-demo-plugin\nVersion: 1.0\n", encoding="utf-8")
    (dist / "entry_points.txt").write_text(
        "[glmeval.checks]\n"
        "shouting = glmeval_demo_plugin:shouting\n"
        "more = glmeval_demo_plugin:MORE\n"
        "module = glmeval_demo_module\n"
        "contains = glmeval_demo_plugin:shouting\n"
        "broken = glmeval_demo_plugin_missing:nothing\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.warns(UserWarning) as caught:
        added = checks_pkg.load_entry_points(REGISTRY)
    messages = [str(w.message) for w in caught]
    assert any("plugin 'broken'" in m and "failed to load" in m for m in messages)
    assert any("tried to replace check 'regex'" in m for m in messages)
    assert set(added) == {"shouting", "has-digit", "has-emoji"}
    assert REGISTRY["regex"].fn.__module__ == "glmeval.checks.text"
    assert check("has-emoji", "好的👍").passed
    assert REGISTRY["shouting"].doc == "The answer is all upper case."
    assert check("shouting", "HELLO").passed
    assert not check("has-digit", "abc").passed
    assert REGISTRY["contains"].fn.__module__ == "glmeval.checks.text"
    sys.modules.pop("glmeval_demo_plugin", None)
    sys.modules.pop("glmeval_demo_module", None)


# -- model-graded ------------------------------------------------------------------------------


class SDKGrader:
    """The runner's part, reduced to the real SDK against the local server."""

    def __init__(self, base_url: str, api_key: str) -> None:
        import zhipuai

        self.client = zhipuai.ZhipuAI(api_key=api_key, base_url=base_url, max_retries=0, timeout=10)
        self.calls: list[dict[str, Any]] = []

    def chat(self, model: str, messages: list[dict[str, Any]], **params: Any) -> Completion:
        self.calls.append({"model": model, "messages": messages, **params})
        response = self.client.chat.completions.create(model=model, messages=messages, **params)
        choice = response.choices[0]
        usage = response.usage
        return Completion(
            text=choice.message.content or "",
            finish_reason=choice.finish_reason,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            total_tokens=usage.total_tokens if usage else 0,
            model=response.model,
        )

    def embed(self, model: str, texts: list[str]) -> list[list[float]]:
        response = self.client.embeddings.create(model=model, input=texts)
        return [item.embedding for item in sorted(response.data, key=lambda d: d.index)]


@pytest.fixture(scope="module")
def grader() -> Iterator[SDKGrader]:
    simulator = pytest.importorskip("glmeval.simulator")
    if not hasattr(simulator, "LocalServer"):
        pytest.skip("glmeval.simulator.LocalServer is not built yet")
    srv = simulator.LocalServer(speed=0.0).start()
    try:
        yield SDKGrader(srv.base_url, srv.api_key)
    finally:
        srv.stop()


def graded_ctx(grader: SDKGrader, **kw: Any) -> CheckContext:
    return CheckContext(job=make_job(**kw), grader=grader)


def test_llm_rubric_passes_and_fails_with_the_judges_reason(grader: SDKGrader) -> None:
    ctx = graded_ctx(grader)
    ok = check("llm-rubric", "中国的首都是北京。", ctx, value='回答必须提到 "北京"')
    assert ok.passed, ok.reason
    assert ok.reason.startswith("judge passed it: ")
    assert "judge glm-4 used" in ok.reason and "tokens" in ok.reason
    bad = check("llm-rubric", "中国的首都是上海。", ctx, value='回答必须提到 "北京"')
    assert not bad.passed and not bad.error
    assert bad.reason.startswith("judge failed it: ") and "北京" in bad.reason
    usage = ctx.grader_usage
    assert len(usage) == 2 and usage[0]["kind"] == "chat" and usage[0]["model"] == "glm-4"
    assert usage[0]["prompt_tokens"] > 0 and usage[0]["cost"] > 0
    sent = grader.calls[-1]
    assert sent["temperature"] == 0.01 and sent["do_sample"] is False
    prompt = sent["messages"][0]["content"]
    assert '<rubric>\n回答必须提到 "北京"\n</rubric>' in prompt and "<output>\n中国的首都是上海。\n</output>" in prompt
    assert "<question>\n中国的首都是哪里？\n</question>" in prompt


def test_llm_rubric_model_and_custom_prompt(grader: SDKGrader) -> None:
    ctx = graded_ctx(grader, vars={"city": "北京"})
    template = "You are grading.\n<rubric>{{ rubric }} {{ vars.city }}</rubric>\n<output>{{ output }}</output>\nReply JSON."
    result = check("llm-rubric", "首都是北京", ctx, value="must mention", prompt=template, model="glm-4-flash")
    assert result.passed, result.reason
    assert grader.calls[-1]["model"] == "glm-4-flash"
    assert grader.calls[-1]["messages"] == [
        {"role": "user", "content": "You are grading.\n<rubric>must mention 北京</rubric>\n<output>首都是北京</output>\nReply JSON."}
    ]


def test_llm_rubric_unreadable_verdict_quotes_the_reply(grader: SDKGrader) -> None:
    ctx = graded_ctx(grader)
    result = check("llm-rubric", "随便", ctx, value="x", prompt="你好")
    assert not result.passed and result.error
    assert result.reason.startswith("llm-rubric: could not read a verdict from the judge (glm-4); it replied '")


def test_similar_passes_and_fails_with_the_similarity(grader: SDKGrader) -> None:
    ctx = graded_ctx(grader)
    same = check("similar", "北京是中国的首都。", ctx, value="北京是中国的首都。")
    assert same.passed and same.reason.startswith("cosine similarity 1.000 >= 0.8 to '北京是中国的首都。' (embedding-3)")
    different = check("similar", "The quick brown fox jumps over the lazy dog", ctx, value="北京是中国的首都。", threshold=0.99)
    assert not different.passed
    assert different.reason.startswith("cosine similarity ") and "< 0.99 to '北京是中国的首都。' (embedding-3)" in different.reason
    assert "answer was 'The quick brown fox" in different.reason
    assert ctx.grader_usage[-1] == {"check": "similar", "kind": "embedding", "model": "embedding-3", "texts": 2}


@pytest.mark.parametrize("ctype,value", [("llm-rubric", "提到北京"), ("similar", "北京")])
def test_graded_checks_without_a_grader(ctype: str, value: str) -> None:
    result = check(ctype, "北京", value=value)
    assert not result.passed and result.error
    assert result.reason == NO_GRADER == "model-graded check needs a runner (no grader available)"
    assert REGISTRY[ctype].graded


def test_judge_prompt_as_a_message_list() -> None:
    template = '[{"role": "system", "content": "grade"}, {"role": "user", "content": "{{ rubric }}|{{ output }}"}]'
    spec = CheckSpec("llm-rubric", {"value": "r", "prompt": template})
    messages = judge_messages("r", Completion(text="o"), spec, CheckContext(job=make_job()))
    assert messages == [{"role": "system", "content": "grade"}, {"role": "user", "content": "r|o"}]


def test_judge_prompt_is_sandboxed() -> None:
    from jinja2.exceptions import SecurityError

    spec = CheckSpec("llm-rubric", {"value": "r", "prompt": "{{ output.__class__.__mro__[1].__subclasses__() }}"})
    with pytest.raises(SecurityError):
        judge_messages("r", Completion(text="o"), spec, CheckContext(job=make_job()))


@pytest.mark.parametrize(
    "reply,passed,score,reason",
    [
        ('{"reason": "提到了北京", "pass": true, "score": 0.9}', True, 0.9, "提到了北京"),
        ('好的。\n```json\n{"pass": "false", "score": 3, "reason": "没提北京"}\n```', False, 0.3, "没提北京"),
        ('<think>PASS?</think>结论如下 {"Score": "85%", "Explanation": "mostly"}', None, 0.85, "mostly"),
        ('{"verdict": "PASS"}', True, None, ""),
        ("评审结论：不通过，缺少城市名。", False, None, "评审结论：不通过，缺少城市名。"),
        ("Overall: PASS", True, None, "Overall: PASS"),
        ("结果FAIL", False, None, "结果FAIL"),
    ],
)
def test_parse_verdict(reply: str, passed: bool | None, score: float | None, reason: str) -> None:
    verdict = parse_verdict(reply)
    assert verdict is not None
    assert (verdict.passed, verdict.score, verdict.reason) == (passed, score, reason)


@pytest.mark.parametrize("reply", ["", "I think it passes", "PASS or FAIL", '{"other": 1}', "通过还是不通过"])
def test_parse_verdict_gives_up_rather_than_guess(reply: str) -> None:
    assert parse_verdict(reply) is None


# -- helpers and properties --------------------------------------------------------------------


def test_counting_rules() -> None:
    assert count_words("I don't like state-of-the-art 3.14 things.") == 6
    assert split_sentences("你好。今天天气很好！Pi is 3.14. Really?\n- item\n”") == [
        "你好", "今天天气很好", "Pi is 3.14", "Really", "- item",
    ]


def test_parse_path_forms() -> None:
    assert parse_path("a.b[0].c") == ["a", "b", 0, "c"]
    assert parse_path("$.a[-1]") == ["a", -1]
    assert parse_path("$['城市'][2]") == ["城市", 2]
    with pytest.raises(ValueError, match="cannot read JSON path"):
        parse_path("a[x")


@given(st.text(max_size=30), st.text(max_size=30), st.text(max_size=30))
@settings(max_examples=150, deadline=None)
def test_levenshtein_is_a_metric(a: str, b: str, c: str) -> None:
    assert (levenshtein_distance(a, b) == 0) == (a == b)
    assert levenshtein_distance(a, b) == levenshtein_distance(b, a)
    assert levenshtein_distance(a, c) <= levenshtein_distance(a, b) + levenshtein_distance(b, c)
    assert levenshtein_distance(a, b) <= max(len(a), len(b))


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=10,
)


@given(st.dictionaries(st.text(max_size=5), _json_values, max_size=4), st.sampled_from(["plain", "fence", "prose"]))
@settings(max_examples=150, deadline=None)
def test_extract_json_finds_an_embedded_object(obj: dict[str, Any], wrapping: str) -> None:
    text = json.dumps(obj, ensure_ascii=False)
    if wrapping == "fence":
        text = f"结果如下：\n```json\n{text}\n```\n希望有帮助。"
    elif wrapping == "prose":
        text = f"Here it is: {text} -- done."
    found, value, _ = extract_json(text)
    assert found and value == obj


def test_register_returns_the_function_and_keeps_the_first_doc_line(registry_snapshot: None) -> None:
    @register("demo-check", "demo-alias")
    def demo(completion: Completion, spec: CheckSpec, ctx: CheckContext) -> bool:
        """First line.

        More detail."""
        return True

    assert REGISTRY["demo-alias"].fn is demo and REGISTRY["demo-check"].doc == "First line."
