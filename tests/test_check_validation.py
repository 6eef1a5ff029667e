"""Bad check arguments stop a suite at load time: one ``file:line: check <type>: …`` line each,
exit 2, before anything is sent (QA A3, B7, B9).

Every built-in check type has at least one bad-argument suite here; templated values (``{{ }}``)
are left to run time, and a check that still errors at run time is labelled ``check error:``
in reports so it is not read as the model's failure.
"""

from __future__ import annotations

import importlib
import textwrap
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from glmeval.checks import REGISTRY, load_builtin, register, validate_check, validator
from glmeval.cli import main
from glmeval.records import CheckSpec
from glmeval.report.views import CheckRow, shown_reason

checks_pkg = importlib.import_module("glmeval.checks")

WEATHER = "{type: function, function: {name: get_weather, parameters: {type: object, properties: {city: {type: string}}}}}"
HEAD = "name: bad-args\nmessages:\n  - {role: user, content: 中国的首都是哪里？}\ncases:\n  - id: a\n    checks:\n"
CHECK_LINE = 7  # the first check of HEAD's case sits on line 7


def suite_with(tmp_path: Path, check: str, head: str = HEAD, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(head + f"      - {check}\n", encoding="utf-8")
    return path


def validate(path: Path) -> Any:
    return CliRunner().invoke(main, ["validate", str(path)])


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("error:")]


# (check type, the check as written, a fragment of the message). Each must give exactly one error.
BAD: list[tuple[str, str, str]] = [
    ("equals", "{equals: [北京, 上海]}", "value must be text (or a number); got list"),
    ("equals", "{type: equals}", "needs a value"),
    ("contains", "{type: contains}", "needs a value, e.g. `contains: 北京`"),
    ("contains-all", "{contains-all: []}", "the list of values is empty"),
    ("contains-any", "{contains-any: [北京, {a: 1}]}", "value 2 of the list must be text; got dict"),
    ("icontains", "{icontains: ''}", "value is empty text"),
    ("icontains-all", "{icontains-all: beijing, icase: maybe}", "icase must be true or false; got str 'maybe'"),
    ("icontains-any", "{icontains-any: [hello], ignore_cse: true}", "unknown argument 'ignore_cse' (did you mean 'ignore_case'?)"),
    ("not-contains", "{not-contains: yes}", "value must be text; got bool True (put it in quotes)"),
    ("starts-with", "{type: starts-with, value: 你好, values: [您好]}", "give value or values, not both"),
    ("ends-with", "{ends-with: null}", "needs a value"),
    ("regex", "{regex: '[unclosed'}", "invalid regular expression /[unclosed/: unterminated character set"),
    ("regex", "{type: regex, value: '(a', not: true}", "invalid regular expression /(a/"),
    ("regex", "{regex: '\\d', dotall: 'yes please'}", "dotall must be true or false"),
    ("min-chars", "{min-chars: -1}", "value must be at least 0; got int -1"),
    ("max-chars", "{max-chars: abc}", "value must be a whole number, e.g. `max-chars: 100`; got str 'abc'"),
    ("min-length", "{min-length: true}", "value must be a whole number"),
    ("max-length", "{max-length: 1.5}", "value must be a whole number"),
    ("min-words", "{min-words: ten}", "value must be a whole number"),
    ("max-words", "{max-words: [50]}", "value must be a whole number"),
    ("min-sentences", "{type: min-sentences}", "needs a number, e.g. `min-sentences: 100`"),
    ("max-sentences", "{max-sentences: 3, limit: 4}", "unknown argument 'limit'; max-sentences takes value"),
    ("levenshtein", "{type: levenshtein, value: x, max_distance: -3}", "max_distance must be at least 0; got int -3"),
    ("levenshtein", "{type: levenshtein, max_distance: 1}", "needs a value to compare with"),
    ("similarity", "{type: similarity, value: [北京, null]}", "value 2 of the list must be text; got NoneType None"),
    ("language", "{language: chinese-ish}", "language must be zh or en; got str 'chinese-ish'"),
    ("is-json", "{is-json: {strict: maybe}}", "strict must be true or false"),
    ("is-json", "{is-json: strict}", "is-json takes no value"),
    ("json-schema", "{json-schema: missing.json}", "schema file 'missing.json' not found"),
    ("json-schema", "{type: json-schema, value: {type: objekt}}", "invalid JSON Schema at $.type"),
    ("json-schema", "{type: json-schema}", "needs a schema"),
    ("json-schema", "{json-schema: '{\"type\": '}", "the schema is not valid JSON"),
    ("json-field", "{type: json-field}", "needs a path to the field"),
    ("json-field", "{type: json-field, equals: 张三}", "needs a path to the field"),
    ("json-field", "{type: json-field, path: 'a..b'}", "cannot read JSON path 'a..b'"),
    ("json-field", "{type: json-field, path: a, matches: '('}", "matches: invalid regular expression /(/"),
    ("json-field", "{type: json-field, path: a, one_of: x}", "one_of must be a list of allowed values"),
    ("json-field", "{type: json-field, path: a, equal: 1}", "unknown argument 'equal' (did you mean 'equals'?)"),
    ("tool-call", "{type: tool-call, name: get_weather, validate: false, arguments: '{\"city\": \"北京\"}'}", "arguments must be a mapping"),
    ("tool-call", "{type: tool-call, name: get_weather, validate: false, index: first}", "index must be a whole number"),
    ("tool-call", "{type: tool-call, nmae: get_weather}", "unknown argument 'nmae' (did you mean 'name'?)"),
    ("no-tool-call", "{no-tool-call: get_weather}", "no-tool-call takes no value"),
    ("finish-reason", "{finish-reason: stpo}", "finish reason must be one of stop, length, tool_calls, sensitive, network_error; got str 'stpo' (did you mean 'stop'?)"),
    ("finish-reason", "{type: finish-reason}", "needs a value"),
    ("max-latency-ms", "{max-latency-ms: fast}", "value must be a number, e.g. `max-latency-ms: 10000`"),
    ("max-ttft-ms", "{max-ttft-ms: -5}", "value must be at least 0"),
    ("max-completion-tokens", "{max-completion-tokens: 10.5}", "value must be a whole number"),
    ("max-total-tokens", "{type: max-total-tokens}", "needs a number"),
    ("max-cost", "{max-cost: '¥0.01'}", "value must be a number"),
    ("max-cost", "{max-cost: .nan}", "value must be a finite number"),
    ("python", "{python: 'def ('}", "the expression is not valid Python: invalid syntax"),
    ("python", "{python: \"x = 1\\nreturn x +\"}", "the code is not valid Python"),
    ("python", "{python: nope.py:check}", "python check file 'nope.py' not found"),
    ("python", "{type: python}", "needs an expression"),
    ("llm-rubric", "{type: llm-rubric}", "needs a rubric"),
    ("llm-rubric", "{llm-rubric: 回答礼貌, prompt: '{% if %}'}", "the judge prompt is not a valid template"),
    ("llm-rubric", "{llm-rubric: 回答礼貌, prompt: 'file://judge.j2'}", "judge prompt file 'file://judge.j2' not found"),
    ("llm-rubric", "{llm-rubric: 回答礼貌, temperature: 3}", "temperature must be a number from 0 to 1"),
    ("llm-rubric", "{llm-rubric: 回答礼貌, max_tokens: 0}", "max_tokens must be at least 1"),
    ("similar", "{type: similar}", "needs a reference text"),
    ("similar", "{similar: 北京是中国的首都, modle: embedding-3}", "unknown argument 'modle' (did you mean 'model'?)"),
    ("reasoning-contains", "{type: reasoning-contains}", "needs a value, e.g. `reasoning-contains: 北京`"),
    ("max-reasoning-tokens", "{max-reasoning-tokens: -1}", "value must be at least 0"),
    ("no-reasoning", "{no-reasoning: 5}", "no-reasoning takes no value"),
    ("web-search-used", "{web-search-used: {min: 0}}", "min must be at least 1"),
    ("cites-search", "{cites-search: ref_1}", "cites-search takes no value"),
]


def test_every_builtin_type_has_a_bad_argument_case() -> None:
    load_builtin()
    builtin = {name for name, d in REGISTRY.items() if d.fn.__module__.startswith("glmeval.checks.")}
    assert builtin - {t for t, _, _ in BAD} == set()


def test_every_builtin_type_has_a_validator() -> None:
    load_builtin()
    missing = [name for name, d in REGISTRY.items() if d.fn.__module__.startswith("glmeval.checks.") and d.validate is None]
    assert missing == []


@pytest.mark.parametrize("ctype,check,fragment", BAD, ids=[f"{t}-{i}" for i, (t, _, _) in enumerate(BAD)])
def test_validate_rejects_bad_arguments(tmp_path: Path, ctype: str, check: str, fragment: str) -> None:
    path = suite_with(tmp_path, check)
    result = validate(path)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "internal error" not in result.output
    [line] = error_lines(result.stderr)
    assert line.startswith(f"error: {path}:{CHECK_LINE}: check {ctype}: "), line
    assert fragment in line, line


# ---------------------------------------------------------------------------- files beside the suite


def test_python_file_must_define_the_function(tmp_path: Path) -> None:
    (tmp_path / "checks.py").write_text("def is_polite(output, context):\n    return '您' in output\n", encoding="utf-8")
    good = suite_with(tmp_path, "{python: checks.py:is_polite}", name="good.yaml")
    assert validate(good).exit_code == 0
    path = suite_with(tmp_path, "{python: checks.py:is_polit}")
    result = validate(path)
    assert result.exit_code == 2
    assert f"{path}:{CHECK_LINE}: check python: checks.py defines no function 'is_polit' (did you mean 'is_polite'?)" in result.stderr


def test_python_file_with_a_syntax_error(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("def f(output, context):\n    return (\n", encoding="utf-8")
    path = suite_with(tmp_path, "{python: broken.py:f}")
    result = validate(path)
    assert result.exit_code == 2
    assert f"{path}:{CHECK_LINE}: check python: broken.py is not valid Python" in result.stderr


def test_python_file_is_parsed_not_imported(tmp_path: Path) -> None:
    marker = tmp_path / "imported"
    (tmp_path / "side.py").write_text(
        f"open({str(marker)!r}, 'w').close()\ndef f(output, context):\n    return True\n", encoding="utf-8"
    )
    assert validate(suite_with(tmp_path, "{python: side.py:f}")).exit_code == 0
    assert not marker.exists()


def test_python_names_bound_by_import_or_assignment_count(tmp_path: Path) -> None:
    (tmp_path / "more.py").write_text(
        "from os.path import exists as f\ng = lambda output, context: True\ntry:\n    import json as h\nexcept ImportError:\n    pass\n",
        encoding="utf-8",
    )
    for func in ("f", "g", "h"):
        assert validate(suite_with(tmp_path, f"{{python: more.py:{func}}}", name=f"{func}.yaml")).exit_code == 0


def test_python_inline_body_with_return_compiles(tmp_path: Path) -> None:
    check = "{python: \"n = len(output)\\nreturn n > 2\"}"
    assert validate(suite_with(tmp_path, check)).exit_code == 0


def test_json_schema_file_that_is_not_a_valid_schema(tmp_path: Path) -> None:
    (tmp_path / "person.yaml").write_text("type: object\nrequired: name\n", encoding="utf-8")
    path = suite_with(tmp_path, "{json-schema: person.yaml}")
    result = validate(path)
    assert result.exit_code == 2
    assert f"{path}:{CHECK_LINE}: check json-schema: invalid JSON Schema at $.required" in result.stderr
    (tmp_path / "person.yaml").write_text("type: object\nrequired: [name]\n", encoding="utf-8")
    assert validate(path).exit_code == 0


def test_json_schema_file_not_a_mapping(tmp_path: Path) -> None:
    (tmp_path / "list.json").write_text("[1, 2]", encoding="utf-8")
    result = validate(suite_with(tmp_path, "{json-schema: list.json}"))
    assert result.exit_code == 2 and "does not hold a JSON Schema object" in result.stderr


def test_judge_prompt_file_that_exists_and_parses(tmp_path: Path) -> None:
    (tmp_path / "judge.j2").write_text("Rubric: {{ rubric }}\nAnswer: {{ output }}\n", encoding="utf-8")
    assert validate(suite_with(tmp_path, "{llm-rubric: 回答礼貌, prompt: 'file://judge.j2'}")).exit_code == 0
    (tmp_path / "judge.j2").write_text("{% for x in %}", encoding="utf-8")
    result = validate(suite_with(tmp_path, "{llm-rubric: 回答礼貌, prompt: 'file://judge.j2'}"))
    assert result.exit_code == 2 and "the judge prompt is not a valid template" in result.stderr


# ---------------------------------------------------------------------------- tools a case offers


def test_tool_call_names_a_function_the_suite_declares(tmp_path: Path) -> None:
    head = f"name: t\ntools: [{WEATHER}]\nmessages:\n  - {{role: user, content: 北京天气？}}\ncases:\n  - id: a\n    checks:\n"
    path = suite_with(tmp_path, "{type: tool-call, name: get_wether}", head=head)
    result = validate(path)
    assert result.exit_code == 2
    [line] = error_lines(result.stderr)
    assert line == (
        f"error: {path}:8: check tool-call: names function 'get_wether', which the case's tools do not declare "
        "(declared: get_weather) (did you mean 'get_weather'?); the model cannot call it"
    )
    assert validate(suite_with(tmp_path, "{type: tool-call, name: get_weather}", head=head, name="ok.yaml")).exit_code == 0


@pytest.mark.parametrize(
    "where",
    [
        "suite-params",  # params.tools of the suite
        "case-tools",  # the case's own tools
        "case-params",  # the case's params.tools
        "grid",  # a tools axis of the grid
    ],
)
def test_tool_call_sees_every_place_tools_are_declared(tmp_path: Path, where: str) -> None:
    suite_part = {"suite-params": f"params: {{tools: [{WEATHER}]}}\n", "grid": f"grid: {{tools: [[{WEATHER}]]}}\n"}.get(where, "")
    case_part = {"case-tools": f"    tools: [{WEATHER}]\n", "case-params": f"    params: {{tools: [{WEATHER}]}}\n"}.get(where, "")
    text = (
        f"name: t\n{suite_part}messages:\n  - {{role: user, content: 北京天气？}}\ncases:\n  - id: a\n{case_part}"
        "    checks:\n      - {type: tool-call, name: get_weather}\n"
    )
    good = tmp_path / "good.yaml"
    good.write_text(text, encoding="utf-8")
    assert validate(good).exit_code == 0, validate(good).output
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("name: get_weather}\n", "name: search_web}\n"), encoding="utf-8")
    result = validate(bad)
    assert result.exit_code == 2 and "names function 'search_web'" in result.stderr


def test_case_tools_replace_the_suites(tmp_path: Path) -> None:
    other = WEATHER.replace("get_weather", "search_web")
    text = (
        f"name: t\ntools: [{WEATHER}]\nmessages:\n  - {{role: user, content: hi}}\ncases:\n"
        f"  - id: a\n    tools: [{other}]\n    checks:\n      - {{type: tool-call, name: get_weather}}\n"
    )
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    result = validate(path)
    assert result.exit_code == 2 and "(declared: search_web)" in result.stderr


def test_case_with_empty_tools_offers_no_function(tmp_path: Path) -> None:
    text = (
        f"name: t\ntools: [{WEATHER}]\nmessages:\n  - {{role: user, content: hi}}\ncases:\n"
        "  - id: a\n    tools: []\n    checks:\n      - {type: tool-call, name: get_weather}\n"
    )
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    result = validate(path)
    assert result.exit_code == 2 and "offers the model no functions" in result.stderr


def test_suite_level_check_is_validated_once(tmp_path: Path) -> None:
    text = (
        f"name: t\ntools: [{WEATHER}]\nmessages:\n  - {{role: user, content: hi}}\n"
        "checks:\n  - {type: tool-call, name: nofn}\n  - {max-chars: many}\n"
        "cases:\n" + "".join(f"  - id: c{i}\n" for i in range(5))
    )
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    result = validate(path)
    assert result.exit_code == 2
    lines = error_lines(result.stderr)
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"error: {path}:6: check tool-call: names function 'nofn'")
    assert lines[1].startswith(f"error: {path}:7: check max-chars: value must be a whole number")


def test_negated_or_unvalidated_tool_call_may_name_any_function(tmp_path: Path) -> None:
    head = f"name: t\ntools: [{WEATHER}]\nmessages:\n  - {{role: user, content: hi}}\ncases:\n  - id: a\n    checks:\n"
    assert validate(suite_with(tmp_path, "{type: tool-call, name: delete_all, not: true}", head=head)).exit_code == 0
    assert validate(suite_with(tmp_path, "{type: tool-call, name: x, validate: false}", head=head, name="v.yaml")).exit_code == 0


def test_tool_call_without_declared_tools_is_an_error(tmp_path: Path) -> None:
    """With no tools anywhere the model cannot make the call, so the check could only fail."""
    result = validate(suite_with(tmp_path, "{tool-call: {name: get_weather}}"))
    assert result.exit_code == 2
    assert "expects a call to 'get_weather', but the case offers the model no functions" in result.output


# ---------------------------------------------------------------------------- templates and good suites


@pytest.mark.parametrize(
    "check",
    [
        "{max-chars: '{{ n }}'}",
        "{regex: '{{ pattern }}'}",
        "{json-schema: '{{ schema_file }}'}",
        "{type: json-field, path: '{{ field }}', matches: '{{ pattern }}'}",
        "{type: levenshtein, value: '{{ city }}', max_distance: '{{ n }}'}",
        "{language: '{{ lang }}'}",
        "{finish-reason: '{{ reason }}'}",
        "{max-cost: '{{ n }}'}",
    ],
)
def test_templated_values_are_left_to_run_time(tmp_path: Path, check: str) -> None:
    head = (
        "name: t\nvars: {n: 100, pattern: 北京, schema_file: s.json, field: a, city: 北京, lang: zh, reason: stop}\n"
        "messages:\n  - {role: user, content: hi}\ncases:\n  - id: a\n    checks:\n"
    )
    result = validate(suite_with(tmp_path, check, head=head))
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    "check",
    [
        "{contains: 北京}",
        "{contains-any: [你好, 您好, 42]}",
        "{max-chars: 200}",
        "{max-chars: '200'}",
        "{type: regex, value: '^\\d{6}$', ignore_case: true, dotall: true}",
        "{type: levenshtein, value: 北京市, max_distance: 1}",
        "{type: similarity, value: 北京是中国的首都, threshold: 0.7}",
        "{language: EN}",
        "is-json",
        "{is-json: {strict: true}}",
        "{type: json-schema, value: {type: object, required: [name]}}",
        "{type: json-schema, schema: {type: object}, strict: true}",
        "{type: json-schema, properties: {name: {type: string}}, required: [name]}",
        "{json-schema: '{\"type\": \"object\"}'}",
        "{type: json-field, path: 'user.tags[0]', equals: vip}",
        "{type: json-field, path: user.age}",
        "{json-field: {user.name: 张三, user.age: 30}}",
        "{json-field: {path: '$.a', one_of: [1, 2]}}",
        "{type: json-field, path: a, matches: '^\\d+$', contains: x}",
        "no-tool-call",
        "{no-tool-call: true}",
        "{finish-reason: [stop, length]}",
        "{max-latency-ms: 10000}",
        "{max-cost: 0.01}",
        "{python: \"'北京' in output\"}",
        "{llm-rubric: 回答礼貌, model: glm-4-flash, temperature: 0.1, top_p: 0.7, max_tokens: 256}",
        "{similar: [北京是首都, 首都是北京], model: embedding-3}",
    ],
)
def test_good_arguments_still_validate(tmp_path: Path, check: str) -> None:
    result = validate(suite_with(tmp_path, check))
    assert result.exit_code == 0, result.output


def test_case_file_check_problem_names_the_row(tmp_path: Path) -> None:
    (tmp_path / "cases.csv").write_text('id,question,checks\nok,hi,"{contains: hi}"\nbad,hi,"{max-chars: abc}"\n', encoding="utf-8")
    path = tmp_path / "s.yaml"
    path.write_text("name: t\nmessages:\n  - {role: user, content: '{{ question }}'}\ncases: cases.csv\n", encoding="utf-8")
    result = validate(path)
    assert result.exit_code == 2
    [line] = error_lines(result.stderr)
    assert line.startswith(f"error: {tmp_path / 'cases.csv'}:3: check max-chars: value must be a whole number"), line


def test_every_problem_of_a_suite_is_listed(tmp_path: Path) -> None:
    text = HEAD + "      - {regex: '[x'}\n      - {max-chars: abc}\n  - id: b\n    checks:\n      - {type: json-field}\n"
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    lines = error_lines(validate(path).stderr)
    assert [l.split(": check ")[0] for l in lines] == [f"error: {path}:7", f"error: {path}:8", f"error: {path}:11"]


# ---------------------------------------------------------------------------- nothing is sent


@pytest.fixture
def server_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every request the local server handles, and every start of it."""
    from glmeval.simulator import httpd, server

    calls: list[str] = []
    dispatch = httpd.Handler._dispatch
    start = server.LocalServer.start

    def counting_dispatch(self: Any, method: str) -> None:
        calls.append(f"{method} {self.path}")
        dispatch(self, method)

    def counting_start(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append("start")
        return start(self, *args, **kwargs)

    monkeypatch.setattr(httpd.Handler, "_dispatch", counting_dispatch)
    monkeypatch.setattr(server.LocalServer, "start", counting_start)
    return calls


def run_local(path: Path, tmp_path: Path, *extra: str) -> Any:
    return CliRunner().invoke(
        main,
        ["run", str(path), "--local", "--local-speed", "0", "--db", str(tmp_path / "r.db"), "--out", str(tmp_path / "out"), *extra],
    )


def test_run_sends_nothing_for_bad_check_arguments(tmp_path: Path, server_calls: list[str]) -> None:
    text = (
        HEAD
        + "      - {regex: '[unclosed'}\n"
        + "  - {id: b, checks: [{max-chars: abc}]}\n"
        + "  - {id: c, checks: [{json-schema: missing.json}]}\n"
        + "  - {id: d, checks: [{python: 'def ('}]}\n"
    )
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    result = run_local(path, tmp_path)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert f"{path}:7: check regex: invalid regular expression" in result.output
    assert f"{path}:8: check max-chars:" in result.output
    assert f"{path}:9: check json-schema: schema file 'missing.json' not found" in result.output
    assert f"{path}:10: check python:" in result.output
    assert server_calls == []
    assert not (tmp_path / "out").exists()


def test_the_request_counter_sees_a_good_run(tmp_path: Path, server_calls: list[str]) -> None:
    """The counter above is live: a good suite reaches the server."""
    path = suite_with(tmp_path, "{contains: 北京}")
    result = run_local(path, tmp_path, "-q", "--no-report")
    assert result.exit_code in (0, 1), result.output
    assert "start" in server_calls and any(c.startswith("POST") for c in server_calls)


# ---------------------------------------------------------------------------- errors at run time (B7, B9)


def test_a_check_that_errors_at_run_time_is_labelled_check_error(tmp_path: Path) -> None:
    (tmp_path / "checks.py").write_text("def boom(output, context):\n    raise RuntimeError('no database')\n", encoding="utf-8")
    path = suite_with(tmp_path, "{python: checks.py:boom}")
    result = run_local(path, tmp_path)
    assert result.exit_code == 1, result.output
    [line] = [l for l in result.output.splitlines() if l.startswith("❌ a ")]
    assert line.endswith("check error: python checks.py:boom: raised RuntimeError: no database"), line
    [report] = list((tmp_path / "out").rglob("report.md"))
    assert "check error: python checks.py:boom" in report.read_text(encoding="utf-8")


def test_reason_does_not_repeat_the_check_type() -> None:
    row = CheckRow("tool-call", "tool-call", False, 0.0, "tool-call get_weather: city: expected '北京', got '上海'", False)
    assert shown_reason(row) == "tool-call: get_weather: city: expected '北京', got '上海'"
    row = CheckRow("json-schema person.yaml", "json-schema", False, 0.0, "json-schema: $.age: 'x' is not of type 'integer'", False)
    assert shown_reason(row) == "json-schema person.yaml: $.age: 'x' is not of type 'integer'"
    row = CheckRow("not contains 北京", "contains", False, 0.0, "not contains: expected the check to fail, but it passed", False)
    assert shown_reason(row) == "not contains 北京: expected the check to fail, but it passed"
    # a metric name does not show the type, so the reason keeps it
    row = CheckRow("capital", "json-field", False, 0.0, "json-field $.city: expected 北京", False)
    assert shown_reason(row) == "capital: json-field $.city: expected 北京"


# ---------------------------------------------------------------------------- the mechanism


def test_register_with_a_validator_and_the_decorator(tmp_path: Path) -> None:
    saved = dict(REGISTRY)
    try:

        def needs_word(spec: CheckSpec, suite_dir: Path, tools: list[Any] | None) -> list[str]:
            return [] if spec.args.get("value") else ["needs a word"]

        @register("test-word", validate=needs_word)
        def word(completion: Any, spec: CheckSpec, ctx: Any) -> bool:
            return True

        assert validate_check(CheckSpec("test-word")) == ["needs a word"]
        assert validate_check(CheckSpec("test-word", {"value": "x"})) == []

        @validator("test-later")
        def later(spec: CheckSpec, suite_dir: Path, tools: list[Any] | None) -> list[str]:
            return ["later problem"]

        @register("test-later")
        def later_check(completion: Any, spec: CheckSpec, ctx: Any) -> bool:
            return True

        assert validate_check(CheckSpec("test-later")) == ["later problem"]

        @validator("test-later")
        def replaced(spec: CheckSpec, suite_dir: Path, tools: list[Any] | None) -> list[str]:
            raise KeyError("oops")

        [problem] = validate_check(CheckSpec("test-later"))
        assert problem.startswith("cannot check its arguments (KeyError")
    finally:
        REGISTRY.clear()
        REGISTRY.update(saved)
        REGISTRY.pending_validators.clear()


def test_local_check_files_may_declare_validators(tmp_path: Path) -> None:
    (tmp_path / "mychecks.py").write_text(
        textwrap.dedent(
            """
            from glmeval.checks import register, unknown_args

            def _needs_word(spec, suite_dir, tools):
                problems = unknown_args(spec, ("value",))
                if not spec.args.get("value"):
                    problems.append("needs a word, e.g. `polite-word: 您`")
                return problems

            @register("polite-word", validate=_needs_word)
            def polite_word(completion, spec, ctx):
                return spec.args["value"] in completion.text
            """
        ),
        encoding="utf-8",
    )
    head = "name: t\ncheck-files: [mychecks.py]\nmessages:\n  - {role: user, content: hi}\ncases:\n  - id: a\n    checks:\n"
    saved = dict(REGISTRY)
    try:
        path = suite_with(tmp_path, "{type: polite-word, valu: 您}", head=head)
        result = validate(path)
        assert result.exit_code == 2
        lines = error_lines(result.stderr)
        assert f"error: {path}:8: check polite-word: unknown argument 'valu' (did you mean 'value'?); polite-word takes value" in lines
        assert f"error: {path}:8: check polite-word: needs a word, e.g. `polite-word: 您`" in lines
    finally:
        REGISTRY.clear()
        REGISTRY.update(saved)


def test_a_local_override_of_a_builtin_does_not_inherit_its_validator() -> None:
    saved = dict(REGISTRY)
    try:
        load_builtin()

        @register("max-chars")
        def anything(completion: Any, spec: CheckSpec, ctx: Any) -> bool:
            return True

        assert validate_check(CheckSpec("max-chars", {"value": "abc"})) == []
    finally:
        REGISTRY.clear()
        REGISTRY.update(saved)
