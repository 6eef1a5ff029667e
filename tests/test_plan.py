"""Planning: grid expansion (GitHub Actions semantics), rendering in the sandbox, parameters
as sent, precedence, overrides, skip/only, and stable ids."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from glmeval.errors import GlmevalError, SuiteError
from glmeval.plan import TemplateProblem, build_plan, expand_grid, render, variant_label
from glmeval.suite import Suite, load_suite


def suite_at(tmp_path: Path, text: str) -> Suite:
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    return load_suite(path)


# ---------------------------------------------------------------------------- expand_grid


def test_product_in_axis_order() -> None:
    assert expand_grid({"model": ["a", "b"], "temperature": [0.1, 0.2]}) == [
        {"model": "a", "temperature": 0.1},
        {"model": "a", "temperature": 0.2},
        {"model": "b", "temperature": 0.1},
        {"model": "b", "temperature": 0.2},
    ]


def test_scalar_axis_is_one_value_and_empty_grid_is_one_variant() -> None:
    assert expand_grid({"model": "a"}) == [{"model": "a"}]
    assert expand_grid({}) == [{}]


def test_github_actions_documented_example() -> None:
    """The example of docs.github.com "Expanding or adding matrix configurations"."""
    grid = {
        "fruit": ["apple", "pear"],
        "animal": ["cat", "dog"],
        "include": [
            {"color": "green"},
            {"color": "pink", "animal": "cat"},
            {"fruit": "apple", "shape": "circle"},
            {"fruit": "banana"},
            {"fruit": "banana", "animal": "cat"},
        ],
    }
    assert expand_grid(grid) == [
        {"fruit": "apple", "animal": "cat", "color": "pink", "shape": "circle"},
        {"fruit": "apple", "animal": "dog", "color": "green", "shape": "circle"},
        {"fruit": "pear", "animal": "cat", "color": "pink"},
        {"fruit": "pear", "animal": "dog", "color": "green"},
        {"fruit": "banana"},
        {"fruit": "banana", "animal": "cat"},
    ]


def test_exclude_matches_partially_and_runs_before_include() -> None:
    grid = {
        "model": ["a", "b"],
        "mode": ["sync", "stream"],
        "exclude": [{"model": "a", "mode": "stream"}],
        "include": [{"model": "a", "mode": "stream", "seed": 1}],
    }
    assert expand_grid(grid) == [
        {"model": "a", "mode": "sync"},
        {"model": "b", "mode": "sync"},
        {"model": "b", "mode": "stream"},
        {"model": "a", "mode": "stream", "seed": 1},
    ]


def test_include_only_grid_and_duplicates() -> None:
    assert expand_grid({"include": [{"model": "a"}, {"model": "b", "temperature": 0.5}, {"model": "a"}]}) == [
        {"model": "a"},
        {"model": "b", "temperature": 0.5},
    ]


def test_true_never_matches_one() -> None:
    grid = {"do_sample": [True, False], "exclude": [{"do_sample": 1}]}
    assert expand_grid(grid) == [{"do_sample": True}, {"do_sample": False}]


def test_values_that_are_lists_and_mappings() -> None:
    grid = {"stop": [["a"], ["b", "c"]], "response_format": [{"type": "text"}], "exclude": [{"stop": ["a"]}]}
    assert expand_grid(grid) == [{"stop": ["b", "c"], "response_format": {"type": "text"}}]


def test_too_many_combinations_is_a_clear_error() -> None:
    with pytest.raises(GlmevalError, match="combinations; the limit is"):
        expand_grid({f"a{i}": list(range(10)) for i in range(6)})


def test_variant_label() -> None:
    assert variant_label({"temperature": 0.2, "model": "glm-4", "prompt": "terse"}) == "glm-4 temperature=0.2 prompt=terse"
    assert variant_label({"model": "m", "stop": ["。"], "response_format": {"type": "json_object"}}) == (
        'm stop=["。"] response_format={"type": "json_object"}'
    )
    assert variant_label({}) == "default"


# ---------------------------------------------------------------------------- rendering and the sandbox


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__.os }}",
        "{{ lipsum.__globals__['os'].popen('id').read() }}",
        "{{ self._TemplateReference__context }}",
        "{{ ''.format.__self__ }}",
        "{{ '{0.__class__}'.format(1) }}",
        "{{ [].append }}",
        "{{ x.__dict__ }}",
        "{% set t = namespace() %}{{ t.__init__ }}",
        "{{ 'a' * 100000000 }}",
        "{{ 9 ** 99999999 }}",
        "{{ range(10**9) | list }}",
    ],
)
def test_templates_cannot_reach_python_internals(template: str) -> None:
    with pytest.raises(TemplateProblem) as info:
        render(template, {"x": {"a": 1}})
    message = str(info.value)
    assert "<" not in message or "unsafe" in message or "forbids" in message
    assert "0x" not in message


def test_undefined_variable_names_it_and_lists_what_is_defined() -> None:
    with pytest.raises(TemplateProblem, match=r"undefined variable 'city'; defined here: country, lang"):
        render("{{ city }}", {"lang": "zh", "country": "中国"})
    with pytest.raises(TemplateProblem, match=r"undefined value: 'dict object' has no attribute 'b'"):
        render("{{ d.b }}", {"d": {}})


def test_literal_braces() -> None:
    assert render('{"a": {"b": 1}}', {}) == '{"a": {"b": 1}}'
    assert render("{{ '{{' }} name }}", {}) == "{{ name }}"
    assert render("{% raw %}{{ name }}{% endraw %}", {}) == "{{ name }}"
    assert render("x {{ n }}\n", {"n": 1}) == "x 1\n"


PLAN_SUITE = """
name: plan
mode: stream
grid:
  model: [glm-4, glm-4-flash]
  temperature: [0, 0.7]
params: {max_tokens: 100, top_p: 1}
tags: [suite-tag]
min-score: 0.5
vars: {who: 世界, shared: suite}
messages:
  - {role: system, content: "{{ shared }}"}
  - {role: user, content: "你好，{{ who }}"}
checks:
  - {contains: "{{ who }}"}
  - {python: "'{{' not in output"}
  - {type: llm-rubric, value: "提到{{ who }}", prompt: "{{ output }} {{ rubric }}"}
cases:
  - id: a
    vars: {who: 北京}
    params: {temperature: 0.3, seed: 7}
    tags: [case-tag, suite-tag]
    threshold: 0.6
    repeat: 2
  - id: b
    template: null
    messages:
      - {role: user, content: "{{ literally }}", template: false}
"""


def test_jobs_render_vars_checks_and_record_sent_params(tmp_path: Path) -> None:
    suite = suite_at(tmp_path, PLAN_SUITE.replace("    template: null\n", ""))
    plan = build_plan(suite)
    assert plan.variants == [
        "glm-4 temperature=0",
        "glm-4 temperature=0.7",
        "glm-4-flash temperature=0",
        "glm-4-flash temperature=0.7",
    ]
    assert len(plan.jobs) == 4 * 2 + 4 * 1
    job = next(j for j in plan.jobs if j.case_id == "a" and j.variant_id == "glm-4 temperature=0")
    assert job.messages == [{"role": "system", "content": "suite"}, {"role": "user", "content": "你好，北京"}]
    assert job.mode == "stream" and job.model == "glm-4"
    assert job.variant == {"model": "glm-4", "temperature": 0}
    assert job.params == {"max_tokens": 100, "top_p": 0.99, "temperature": 0.01, "do_sample": False, "seed": 7}
    assert [c.args for c in job.checks] == [
        {"value": "北京"},
        {"value": "'{{' not in output"},
        {"value": "提到北京", "prompt": "{{ output }} {{ rubric }}"},
    ]
    assert job.tags == ["suite-tag", "case-tag"] and job.threshold == 0.6 and job.min_score == 0.5
    assert job.vars == {"who": "北京", "shared": "suite"}
    b = next(j for j in plan.jobs if j.case_id == "b")
    assert b.messages == [{"role": "user", "content": "{{ literally }}"}]
    assert b.threshold is None and b.repeat == 0
    assert any("temperature 0 is sent as 0.01" in w for w in plan.warnings)
    assert any("top_p 1 is sent as 0.99" in w for w in plan.warnings)
    assert any("case 'a' sets temperature, which is a grid axis" in w for w in plan.warnings)


def test_job_ids_and_cache_keys(tmp_path: Path) -> None:
    text = PLAN_SUITE.replace("    template: null\n", "")
    first = build_plan(suite_at(tmp_path, text))
    again = build_plan(suite_at(tmp_path, text))
    assert [j.id for j in first.jobs] == [j.id for j in again.jobs]
    assert [j.cache_key for j in first.jobs] == [j.cache_key for j in again.jobs]
    assert len({j.id for j in first.jobs}) == len(first.jobs)
    assert len({j.cache_key for j in first.jobs}) == len(first.jobs)


def test_jobs_do_not_share_message_lists(tmp_path: Path) -> None:
    plan = build_plan(suite_at(tmp_path, "name: x\nrepeat: 2\nmessages: [{role: user, content: hi}]\ncases: [{id: a}]\n"))
    plan.jobs[0].messages[0]["content"] = "changed"
    assert plan.jobs[1].messages[0]["content"] == "hi"


def test_suite_templating_off(tmp_path: Path) -> None:
    suite = suite_at(
        tmp_path,
        "name: x\ntemplating: false\nmessages: [{role: user, content: '{{ a }} {% if %}'}]\n"
        "checks: [{contains: '{{ b }}'}]\ncases: [{id: a}]\n",
    )
    job = build_plan(suite).jobs[0]
    assert job.messages[0]["content"] == "{{ a }} {% if %}"
    assert job.checks[0].args["value"] == "{{ b }}"


def test_check_values_render_inside_lists_and_mappings(tmp_path: Path) -> None:
    suite = suite_at(
        tmp_path,
        "name: x\nvars: {city: 北京}\nmessages: [{role: user, content: hi}]\n"
        "tools: [{type: function, function: {name: get_weather, parameters: {type: object}}}]\n"
        "checks:\n  - contains-any: ['{{ city }}', 上海]\n  - {type: tool-call, name: get_weather, arguments: {city: '{{ city }}'}}\n"
        "cases: [{id: a}]\n",
    )
    checks = build_plan(suite).jobs[0].checks
    assert checks[0].args["value"] == ["北京", "上海"]
    assert checks[1].args["arguments"] == {"city": "北京"}


# ---------------------------------------------------------------------------- precedence and overrides


def test_tools_precedence(tmp_path: Path) -> None:
    tool = "{type: function, function: {name: %s}}"
    suite = suite_at(
        tmp_path,
        f"name: t\ntools: [{tool % 'suite_tool'}]\nmessages: [{{role: user, content: hi}}]\n"
        f"cases:\n  - id: a\n  - {{id: b, tools: [{tool % 'case_tool'}]}}\n  - {{id: c, tools: []}}\n",
    )
    params = {j.case_id: j.params for j in build_plan(suite).jobs}
    assert params["a"]["tools"][0]["function"]["name"] == "suite_tool"
    assert params["b"]["tools"][0]["function"]["name"] == "case_tool"
    assert params["c"]["tools"] == []


def test_tools_as_a_grid_axis(tmp_path: Path) -> None:
    suite = suite_at(
        tmp_path,
        "name: t\ngrid:\n  tools:\n    - []\n    - [{type: function, function: {name: f}}]\n"
        "messages: [{role: user, content: hi}]\ncases: [{id: a}]\n",
    )
    plan = build_plan(suite)
    assert [j.params["tools"] for j in plan.jobs] == [[], [{"type": "function", "function": {"name": "f"}}]]


def test_model_and_mode_overrides(tmp_path: Path) -> None:
    suite = suite_at(
        tmp_path,
        "name: o\ngrid:\n  model: [glm-4, glm-3-turbo]\n  mode: [sync, async]\n"
        "  include: [{model: glm-4-plus, mode: sync}, {model: glm-4-flash, temperature: 0.5}]\n"
        "messages: [{role: user, content: hi}]\ncases: [{id: a}]\n",
    )
    full = build_plan(suite)
    assert len(full.variants) == 6
    only = build_plan(suite, model_override=["glm-4-flash"], mode_override="stream")
    assert only.variants == ["glm-4-flash temperature=0.5"]
    assert {j.mode for j in only.jobs} == {"stream"}
    same = build_plan(suite, model_override=["glm-4"])
    assert same.variants == ["glm-4 mode=sync", "glm-4 mode=async"]
    new = build_plan(suite, model_override=["glm-4-air", "glm-4"], mode_override="stream")
    assert new.variants == ["glm-4 mode=stream", "glm-4-air mode=stream"]
    assert {j.model for j in new.jobs} == {"glm-4", "glm-4-air"}


def test_model_override_still_checks_max_output(tmp_path: Path) -> None:
    suite = suite_at(tmp_path, "name: o\nmodel: glm-4-flash\nparams: {max_tokens: 20000}\nmessages: [{role: user, content: hi}]\ncases: [{id: a}]\n")
    assert build_plan(suite).jobs[0].params["max_tokens"] == 20000
    with pytest.raises(SuiteError, match=r"max_tokens 20000 is more than glm-4 can write \(at most 4095 tokens\)"):
        build_plan(suite, model_override=["glm-4"])


def test_max_tokens_limit_follows_the_include_model(tmp_path: Path) -> None:
    text = "name: o\ngrid:\n  model: [glm-4-flash]\n  include: [{model: glm-4, max_tokens: 5000}]\nmessages: [{role: user, content: hi}]\ncases: [{id: a}]\n"
    with pytest.raises(SuiteError, match=r"s.yaml:4: max_tokens 5000 is more than glm-4 can write"):
        suite_at(tmp_path, text)


def test_default_mode_and_model(tmp_path: Path) -> None:
    plan = build_plan(suite_at(tmp_path, "name: d\nmode: async\nmodel: glm-4-air\nmessages: [{role: user, content: hi}]\ncases: [{id: a}]\n"))
    assert (plan.jobs[0].model, plan.jobs[0].mode, plan.variants) == ("glm-4-air", "async", ["glm-4-air"])


# ---------------------------------------------------------------------------- skip, only, repeat


def test_only_and_skip(tmp_path: Path) -> None:
    plan = build_plan(
        suite_at(
            tmp_path,
            "name: s\nmessages: [{role: user, content: hi}]\n"
            "cases:\n  - {id: a, only: true}\n  - {id: b}\n  - {id: c, only: true, skip: flaky}\n",
        )
    )
    assert {j.case_id for j in plan.jobs} == {"a"}
    assert plan.skipped == [("b", "not marked only"), ("c", "flaky")]


def test_skipped_cases_are_not_rendered(tmp_path: Path) -> None:
    plan = build_plan(suite_at(tmp_path, "name: s\nmessages: [{role: user, content: '{{ missing }}'}]\ncases: [{id: a, skip: true}]\n"))
    assert plan.jobs == [] and plan.skipped == [("a", "skip: true")]


def test_too_many_jobs_is_a_clear_error(tmp_path: Path) -> None:
    suite = suite_at(
        tmp_path,
        "name: big\nrepeat: 1000\ngrid: {temperature: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]}\n"
        "matrix: {n: [" + ", ".join(str(i) for i in range(60)) + "]}\n"
        "messages: [{role: user, content: hi}]\ncases: [{id: a}]\n",
    )
    with pytest.raises(SuiteError, match="expands to 600,000 jobs"):
        build_plan(suite)


def test_unmatched_exclude_warns(tmp_path: Path) -> None:
    plan = build_plan(
        suite_at(
            tmp_path,
            "name: e\ngrid:\n  model: [glm-4]\n  exclude: [{model: glm-3-turbo}]\nmessages: [{role: user, content: hi}]\ncases: [{id: a}]\n",
        )
    )
    assert any(":4: grid.exclude entry {'model': 'glm-3-turbo'} matches no variant" in w for w in plan.warnings)


@pytest.mark.parametrize(
    "value,sent",
    [
        ({"temperature": 1}, {"temperature": 0.99}),
        ({"temperature": 0, "do_sample": True}, {"temperature": 0.01, "do_sample": False}),
        ({"top_p": 0}, {"top_p": 0.01}),
        ({"top_p": 0.95, "temperature": 0.95}, {"top_p": 0.95, "temperature": 0.95}),
    ],
)
def test_params_record_what_the_sdk_sends(tmp_path: Path, value: dict[str, Any], sent: dict[str, Any]) -> None:
    import json

    suite = suite_at(tmp_path, f"name: c\nparams: {json.dumps(value)}\nmessages: [{{role: user, content: hi}}]\ncases: [{{id: a}}]\n")
    assert build_plan(suite).jobs[0].params == sent
