"""Checks for thinking models and web search: text checks judge the answer alone, the reasoning
checks judge the reasoning, ``on: reasoning`` points any text check at it, and web search checks
look at the response's ``web_search`` results.

Completions are built directly (they are plain data); ``llm-rubric`` on the reasoning is graded by
the local GLM server through the real zhipuai SDK; suites are loaded and validated through the CLI.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from glmeval.checks import CheckContext, evaluate
from glmeval.cli import main
from glmeval.plan import build_plan
from glmeval.records import CheckResult, CheckSpec, Completion, Job, ToolCall
from glmeval.suite import load_suite, parse_check

REASONING = "用户问中国的首都。我记得是北京，不是上海。答案要简短。"
THINKING = Completion(text="中国的首都是北京。", reasoning=REASONING, reasoning_tokens=42, finish_reason="stop")

RESULTS = [
    {"title": "北京市人民政府门户网站", "link": "https://www.beijing.gov.cn/", "content": "北京是中国的首都", "refer": "ref_1",
     "media": "北京市政府", "icon": "", "publish_date": "2026-01-05"},
    {"title": "China's capital - Wikipedia", "link": "https://en.wikipedia.org/wiki/Beijing", "content": "Beijing",
     "refer": "ref_2", "media": "Wikipedia", "icon": "", "publish_date": ""},
]
SEARCH_TOOL = {"type": "web_search", "web_search": {"enable": "True", "search_result": "True"}}


def make_job(tools: list[dict[str, Any]] | None = None, **kw: Any) -> Job:
    defaults: dict[str, Any] = dict(
        id="j1", suite="s", case_id="c", variant_id="v", variant={}, repeat=0, model="glm-4.7", mode="sync",
        messages=[{"role": "user", "content": "中国的首都是哪里？"}], params={"tools": tools} if tools else {}, checks=[],
    )
    defaults.update(kw)
    return Job(**defaults)


def check(ctype: str, completion: Completion, ctx: CheckContext | None = None, on: str = "answer",
          negate: bool = False, **args: Any) -> CheckResult:
    spec = CheckSpec(ctype, args, negate=negate, on=on)  # type: ignore[arg-type]
    return evaluate(completion, spec, ctx or CheckContext(job=make_job()))


# ------------------------------------------------------------------ text checks judge the answer


def test_contains_does_not_look_in_the_reasoning() -> None:
    result = check("contains", THINKING, value="上海")
    assert not result.passed and not result.error
    assert result.reason == "expected to contain '上海'; answer was '中国的首都是北京。'"
    assert check("contains", THINKING, value="北京").passed


@pytest.mark.parametrize("ctype,args", [
    ("icontains", {"value": "简短"}), ("contains-any", {"value": ["上海", "简短"]}), ("regex", {"value": "用户问"}),
    ("min-chars", {"value": 20}), ("language", {"value": "zh", "threshold": 0.99}),
])
def test_other_text_checks_ignore_the_reasoning(ctype: str, args: dict[str, Any]) -> None:
    answer_only = Completion(text="Beijing.", reasoning=REASONING * 3, reasoning_tokens=99)
    result = check(ctype, answer_only, **args)
    assert not result.passed, result.reason
    assert "answer" in result.reason or ctype == "language"


# ------------------------------------------------------------------ reasoning-contains


def test_reasoning_contains_passes_on_a_word_of_the_reasoning() -> None:
    result = check("reasoning-contains", THINKING, value=["北京", "上海"])
    assert result.passed and result.reason == "reasoning contains '北京', '上海'"
    assert check("reasoning-contains", Completion(text="x", reasoning="Think: BEIJING"), value="beijing", ignore_case=True).passed


def test_reasoning_contains_fails_on_a_word_only_in_the_answer() -> None:
    result = check("reasoning-contains", Completion(text="首都是北京", reasoning="想一想首都。"), value="北京")
    assert not result.passed and not result.error
    assert result.reason == "expected the reasoning to contain '北京'; reasoning was '想一想首都。'"


def test_reasoning_contains_fails_when_there_is_no_reasoning() -> None:
    result = check("reasoning-contains", Completion(text="北京"), value="北京")
    assert not result.passed
    assert result.reason == (
        "expected the reasoning to contain '北京'; there is no reasoning (thinking was off, or the model does not think)"
    )


# ------------------------------------------------------------------ max-reasoning-tokens


def test_max_reasoning_tokens_passes_and_fails_on_the_reported_count() -> None:
    ok = check("max-reasoning-tokens", THINKING, value=42)
    assert ok.passed and ok.reason == "reasoning tokens 42 <= 42"
    bad = check("max-reasoning-tokens", THINKING, value=10)
    assert not bad.passed and bad.reason == "reasoning tokens 42 > 10"


def test_max_reasoning_tokens_says_when_the_count_was_estimated() -> None:
    flagged = Completion(text="x", reasoning=REASONING, reasoning_tokens=30, reasoning_estimated=True)
    result = check("max-reasoning-tokens", flagged, value=5)
    assert not result.passed
    assert result.reason == "reasoning tokens 30 > 5 (estimated from the reasoning text; the API reported none)"
    unreported = check("max-reasoning-tokens", Completion(text="x", reasoning=REASONING), value=1000)
    assert unreported.passed and "(estimated from the reasoning text" in unreported.reason
    assert check("max-reasoning-tokens", Completion(text="x"), value=0).reason == "reasoning tokens 0 <= 0"


# ------------------------------------------------------------------ no-reasoning


def test_no_reasoning_passes_without_reasoning() -> None:
    for completion in (Completion(text="北京"), Completion(text="北京", reasoning_tokens=0), Completion(text="北京", reasoning=" \n")):
        result = check("no-reasoning", completion)
        assert result.passed and result.reason == "no reasoning"


def test_no_reasoning_fails_on_reasoning_text_or_reasoning_tokens() -> None:
    result = check("no-reasoning", THINKING)
    assert not result.passed
    assert result.reason == f"expected no reasoning; the model reasoned for 42 tokens: {REASONING!r}"
    hidden = check("no-reasoning", Completion(text="北京", reasoning_tokens=17))
    assert not hidden.passed
    assert hidden.reason == "expected no reasoning; the reasoning text is empty but usage reports 17 reasoning tokens"


# ------------------------------------------------------------------ web-search-used


def test_web_search_used_passes_with_results() -> None:
    result = check("web-search-used", Completion(text="北京", web_search=RESULTS))
    assert result.passed
    assert result.reason == "2 web search results (at least 1): '北京市人民政府门户网站', \"China's capital - Wikipedia\""
    assert check("web-search-used", Completion(text="北京", web_search=RESULTS), min=2).passed


def test_web_search_used_fails_without_results_or_with_too_few() -> None:
    none = check("web-search-used", Completion(text="北京"))
    assert not none.passed
    assert none.reason == "expected web search results; the response has none (the request declared no web_search tool)"
    declared = check("web-search-used", Completion(text="北京"), CheckContext(job=make_job(tools=[SEARCH_TOOL])))
    assert declared.reason == "expected web search results; the response has none"
    few = check("web-search-used", Completion(text="北京", web_search=RESULTS[:1]), min=3)
    assert not few.passed
    assert few.reason == "expected at least 3 web search results, got 1 web search result: '北京市人民政府门户网站'"


# ------------------------------------------------------------------ cites-search


@pytest.mark.parametrize("answer,cited", [
    ("中国的首都是北京[ref_1]。", "[ref_1] ('北京市人民政府门户网站')"),
    ("中国的首都是北京【ref_2】。", "[ref_2] (\"China's capital - Wikipedia\")"),
    ("据北京市人民政府门户网站，首都是北京。", "the title '北京市人民政府门户网站'"),
    ("See https://en.wikipedia.org/wiki/Beijing for more.", "the link https://en.wikipedia.org/wiki/Beijing"),
])
def test_cites_search_passes_naming_what_was_cited(answer: str, cited: str) -> None:
    result = check("cites-search", Completion(text=answer, web_search=RESULTS))
    assert result.passed, result.reason
    assert result.reason == f"answer cites {cited}"


def test_cites_search_fails_when_nothing_is_cited() -> None:
    result = check("cites-search", Completion(text="中国的首都是北京[ref_7]。", web_search=RESULTS))
    assert not result.passed and not result.error
    assert result.reason == (
        "the answer cites none of the 2 web search results (refers: ref_1, ref_2): no [ref_N] marker, title or link of one; "
        "its markers [ref_7] match no result's refer; answer was '中国的首都是北京[ref_7]。'"
    )
    bare = check("cites-search", Completion(text="首都是北京[ref_1]"))
    assert not bare.passed
    assert bare.reason == "expected the answer to cite a web search result; the response has no web_search results"


def test_cites_search_does_not_count_a_citation_in_the_reasoning_only() -> None:
    completion = Completion(text="首都是北京。", reasoning="参考[ref_1]", web_search=RESULTS)
    assert not check("cites-search", completion).passed
    result = check("cites-search", completion, on="reasoning")
    assert result.passed and result.reason == "reasoning cites [ref_1] ('北京市人民政府门户网站')"


# ------------------------------------------------------------------ on: reasoning


def test_on_reasoning_points_contains_at_the_reasoning() -> None:
    result = check("contains", THINKING, on="reasoning", value="上海")
    assert result.passed and result.reason == "found '上海'"
    assert result.label == "contains 上海 on reasoning"
    bad = check("contains", THINKING, on="reasoning", value="广州")
    assert not bad.passed
    assert bad.reason == f"expected to contain '广州'; reasoning was {REASONING!r}"


@pytest.mark.parametrize("ctype,args,fragment", [
    ("regex", {"value": "^用户"}, "matched /^用户/"),
    ("starts-with", {"value": "用户"}, "starts with '用户'"),
    ("max-chars", {"value": 100}, "characters (at most 100)"),
    ("min-words", {"value": 10}, "words (at least 10)"),
    ("language", {"value": "zh"}, "zh"),
    ("not-contains", {"value": "广州"}, "does not contain '广州'"),
    ("similarity", {"value": REASONING}, "similarity 1.00"),
    ("levenshtein", {"value": REASONING}, "edit distance 0"),
])
def test_on_reasoning_works_for_every_kind_of_text_check(ctype: str, args: dict[str, Any], fragment: str) -> None:
    result = check(ctype, Completion(text="Beijing", reasoning=REASONING), on="reasoning", **args)
    assert result.passed, result.reason
    assert fragment in result.reason


def test_on_reasoning_names_the_reasoning_in_failures() -> None:
    completion = Completion(text='{"city": "北京"}', reasoning="先想想，再输出 JSON。")
    assert check("is-json", completion).passed
    result = check("is-json", completion, on="reasoning", strict=True)
    assert not result.passed
    assert result.reason.startswith("expected the whole reasoning to be JSON; none parsed (")
    assert result.reason.endswith("reasoning was '先想想，再输出 JSON。'")
    field = check("json-field", completion, on="reasoning", path="city", equals="北京")
    assert not field.passed and field.reason.endswith("reasoning was '先想想，再输出 JSON。'")
    short = check("max-chars", completion, on="reasoning", value=3)
    assert short.reason == "expected at most 3 characters, got 13; reasoning was '先想想，再输出 JSON。'"
    json_thought = Completion(text="好的", reasoning='{"plan": 1}')
    assert check("is-json", json_thought, on="reasoning").reason == "valid JSON object in the whole reasoning"


def test_on_reasoning_with_no_reasoning_judges_empty_text() -> None:
    result = check("contains", Completion(text="北京"), on="reasoning", value="北京")
    assert not result.passed and result.reason == "expected to contain '北京'; reasoning was ''"
    assert check("not-contains", Completion(text="北京"), on="reasoning", value="北京").passed


def test_on_reasoning_combines_with_not() -> None:
    result = check("contains", THINKING, on="reasoning", negate=True, value="上海")
    assert not result.passed
    assert result.reason == "not contains: expected the check to fail, but it passed (found '上海')"
    assert check("contains", THINKING, on="reasoning", negate=True, value="广州").passed


def test_on_reasoning_python_sees_the_reasoning_as_output() -> None:
    completion = Completion(text="答案", reasoning="思考过程", tool_calls=[ToolCall("get_weather", "{}")])
    result = check("python", completion, on="reasoning", value="output == '思考过程' and not tool_calls")
    assert result.passed, result.reason
    assert check("python", completion, value="output == '答案' and len(tool_calls) == 1").passed


def test_on_reasoning_on_a_check_that_is_not_about_text_is_an_error() -> None:
    completion = Completion(text="x", reasoning="y", latency_ms=5.0)
    result = check("max-latency-ms", completion, on="reasoning", value=100)
    assert result.error and not result.passed
    assert result.reason == "on: reasoning applies to text checks only; max-latency-ms does not judge the text"


# ------------------------------------------------------------------ the record


def test_check_spec_keeps_on_out_of_stored_rows_and_labels_by_default() -> None:
    plain = CheckSpec("contains", {"value": "北京"})
    assert "on" not in plain.to_dict() and plain.label() == "contains 北京"
    assert CheckSpec.from_dict(plain.to_dict()) == plain
    pointed = CheckSpec("contains", {"value": "北京"}, negate=True, on="reasoning")
    assert pointed.to_dict()["on"] == "reasoning"
    assert CheckSpec.from_dict(pointed.to_dict()) == pointed
    assert pointed.label() == "not contains 北京 on reasoning"
    long = CheckSpec("contains", {"value": "很长" * 40}, on="reasoning").label()
    assert len(long) == 60 and long.endswith("... on reasoning")
    assert CheckSpec("contains", {"value": "北京"}, metric="capital", on="reasoning").label() == "capital"


# ------------------------------------------------------------------ suites


def test_parse_check_reads_on_and_its_spellings() -> None:
    assert parse_check({"contains": "北京", "on": "reasoning"}, "s.yaml:3", 3).on == "reasoning"
    assert parse_check({True: "reasoning", "contains": "北京"}, "s.yaml:3", 3).on == "reasoning"  # YAML's bare on
    assert parse_check({"type": "regex", "value": "x", "target": "Reasoning"}, "s.yaml:3", 3).on == "reasoning"
    assert parse_check({"contains": "北京", "on": "answer"}, "s.yaml:3", 3).on == "answer"
    spec = parse_check({"contains": "北京", "on": "reasoning"}, "s.yaml:3", 3)
    assert spec.args == {"value": "北京"}
    with pytest.raises(ValueError, match="give on or target, not both"):
        parse_check({"contains": "北京", "on": "reasoning", "target": "answer"}, "s.yaml:3", 3)


HEAD = "name: on-reasoning\nmodel: glm-4.7\nmessages:\n  - {role: user, content: 中国的首都是哪里？}\ncases:\n  - id: a\n    checks:\n"
CHECK_LINE = 8


def write_suite(tmp_path: Path, *checks: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(HEAD + "".join(f"      - {c}\n" for c in checks), encoding="utf-8")
    return path


def validate(path: Path) -> Any:
    return CliRunner().invoke(main, ["validate", str(path)])


def errors(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("error:")]


@pytest.mark.parametrize("entry,ctype", [
    ("{max-latency-ms: 1000, on: reasoning}", "max-latency-ms"),
    ("{type: tool-call, name: f, target: reasoning}", "tool-call"),
    ("{max-completion-tokens: 10, on: reasoning}", "max-completion-tokens"),
    ("{no-reasoning: true, on: reasoning}", "no-reasoning"),
])
def test_on_reasoning_on_a_non_text_check_stops_the_suite(tmp_path: Path, entry: str, ctype: str) -> None:
    path = write_suite(tmp_path, entry)
    result = validate(path)
    assert result.exit_code == 2, result.output
    [line] = errors(result.stderr)
    assert line.startswith(f"error: {path}:{CHECK_LINE}: check {ctype} does not judge text, so on: reasoning does not apply"), line
    assert "reasoning-contains, max-reasoning-tokens and no-reasoning" in line


def test_an_unknown_on_value_stops_the_suite_with_a_did_you_mean(tmp_path: Path) -> None:
    path = write_suite(tmp_path, "{contains: 北京}", "{contains: 北京, on: reasonig}")
    result = validate(path)
    assert result.exit_code == 2, result.output
    [line] = errors(result.stderr)
    assert line == f"error: {path}:{CHECK_LINE + 1}: on must be answer or reasoning; got str 'reasonig' (did you mean 'reasoning'?)"
    bad_target = validate(write_suite(tmp_path, "{regex: x, target: [reasoning]}"))
    assert "target must be answer or reasoning; got list ['reasoning']" in bad_target.stderr


def test_a_suite_with_on_reasoning_validates_and_plans_it(tmp_path: Path) -> None:
    path = write_suite(
        tmp_path,
        "{contains: '{{ city }}', on: reasoning}",
        "{type: max-chars, value: 2000, target: reasoning}",
        "{llm-rubric: 推理过程考虑了北京, on: reasoning}",
        "{reasoning-contains: 北京}",
        "{max-reasoning-tokens: 4000}",
        "{web-search-used: {min: 1}, not: true}",
    )
    path.write_text(path.read_text(encoding="utf-8").replace("  - id: a\n", "  - id: a\n    vars: {city: 北京}\n"), encoding="utf-8")
    result = validate(path)
    assert result.exit_code == 0, result.output
    [job] = build_plan(load_suite(path)).jobs
    assert [c.on for c in job.checks] == ["reasoning", "reasoning", "reasoning", "answer", "answer", "answer"]
    assert job.checks[0].args == {"value": "北京"}
    assert job.checks[0].label() == "contains 北京 on reasoning"


def test_search_checks_refuse_a_case_that_turns_search_off(tmp_path: Path) -> None:
    head = HEAD.replace("cases:\n", "tools: [{type: web_search, web_search: {enable: 'False'}}]\ncases:\n")
    path = tmp_path / "off.yaml"
    path.write_text(head + "      - web-search-used\n      - cites-search\n      - {web-search-used: true, not: true}\n", encoding="utf-8")
    result = validate(path)
    assert result.exit_code == 2, result.output
    lines = errors(result.stderr)
    assert len(lines) == 2, lines
    fragment = "the case turns web search off (web_search: {enable: false}), so no search results can come back"
    assert lines[0] == f"error: {path}:{CHECK_LINE + 1}: check web-search-used: {fragment}"
    assert lines[1] == f"error: {path}:{CHECK_LINE + 2}: check cites-search: {fragment}"


# ------------------------------------------------------------------ a judge reads the reasoning


class SDKGrader:
    """The runner's part, reduced to the real SDK against the local server."""

    def __init__(self, base_url: str, api_key: str) -> None:
        import zhipuai

        self.client = zhipuai.ZhipuAI(api_key=api_key, base_url=base_url, max_retries=0, timeout=10)
        self.calls: list[dict[str, Any]] = []

    def chat(self, model: str, messages: list[dict[str, Any]], **params: Any) -> Completion:
        self.calls.append({"model": model, "messages": messages, **params})
        response = self.client.chat.completions.create(model=model, messages=messages, **params)
        usage = response.usage
        return Completion(
            text=response.choices[0].message.content or "",
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
        )

    def embed(self, model: str, texts: list[str]) -> list[list[float]]:
        response = self.client.embeddings.create(model=model, input=texts)
        return [item.embedding for item in sorted(response.data, key=lambda d: d.index)]


@pytest.fixture(scope="module")
def grader() -> Iterator[SDKGrader]:
    from glmeval.simulator import LocalServer

    srv = LocalServer(speed=0.0).start()
    try:
        yield SDKGrader(srv.base_url, srv.api_key)
    finally:
        srv.stop()


def test_llm_rubric_on_reasoning_sends_the_judge_the_reasoning(grader: SDKGrader) -> None:
    ctx = CheckContext(job=make_job(), grader=grader)
    result = check("llm-rubric", Completion(text="首都是上海。", reasoning="中国的首都是北京。"), ctx, on="reasoning",
                   value='回答必须提到 "北京"')
    assert result.passed, result.reason
    prompt = grader.calls[-1]["messages"][0]["content"]
    assert "<output>\n中国的首都是北京。\n</output>" in prompt and "上海" not in prompt
    assert ctx.grader_usage and ctx.grader_usage[-1]["check"] == "llm-rubric"


def test_similar_on_reasoning_names_the_reasoning(grader: SDKGrader) -> None:
    ctx = CheckContext(job=make_job(), grader=grader)
    empty = check("similar", Completion(text="北京"), ctx, on="reasoning", value="北京")
    assert not empty.passed and empty.reason == "similar: the reasoning is empty; nothing to compare"


def test_docs_name_every_new_check_and_the_on_option() -> None:
    docs = (Path(__file__).parent.parent / "docs" / "checks.md").read_text(encoding="utf-8")
    for name in ("reasoning-contains", "max-reasoning-tokens", "no-reasoning", "web-search-used", "cites-search", "`on`"):
        assert name in docs, name
    assert "Text checks judge the answer" in docs
