"""Loading suites: conversations, prompts, case files, fan-out, ids, warnings, docs and schema."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from glmeval.cli import main
from glmeval.errors import SuiteError
from glmeval.plan import build_plan
from glmeval.suite import Suite, load_suite, parse_check, sdk_params, suite_json_schema

ROOT = Path(__file__).resolve().parent.parent
SUITES = ROOT / "suites"
DOCS = ROOT / "docs" / "suites.md"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def suite_at(tmp_path: Path, text: str, name: str = "s.yaml") -> Suite:
    return load_suite(write(tmp_path / name, text))


# ---------------------------------------------------------------------------- examples and docs


@pytest.mark.parametrize("path", sorted(SUITES.glob("*.yaml")), ids=lambda p: p.stem)
def test_example_suites_load_and_plan(path: Path) -> None:
    plan = build_plan(load_suite(path))
    assert plan.jobs and plan.variants


def doc_examples() -> list[tuple[int, str]]:
    text = DOCS.read_text(encoding="utf-8")
    return [(i, block) for i, block in enumerate(re.findall(r"```yaml\n(.*?)```", text, re.S))]


def doc_suite_text(index: int, block: str) -> str:
    """A docs block as a whole suite: fragments go into a minimal suite."""
    if not block.startswith("# fragment"):
        return block
    base: dict[str, Any] = {"name": f"fragment-{index}", "messages": [{"role": "user", "content": "你好"}], "cases": [{"id": "a"}]}
    base.update(yaml.safe_load(block))
    return yaml.safe_dump(base, allow_unicode=True, sort_keys=False)


@pytest.fixture
def docs_dir(tmp_path: Path) -> Path:
    """A suites folder with the example case files and images, so docs examples can name them."""
    shutil.copytree(SUITES / "cases", tmp_path / "suites" / "cases")
    shutil.copytree(SUITES / "images", tmp_path / "suites" / "images")
    return tmp_path / "suites"


def test_docs_have_many_examples() -> None:
    assert len(doc_examples()) >= 15


@pytest.mark.parametrize("index,block", doc_examples(), ids=lambda x: str(x) if isinstance(x, int) else "")
def test_docs_examples_load_plan_and_match_the_schema(index: int, block: str, docs_dir: Path) -> None:
    text = doc_suite_text(index, block)
    path = write(docs_dir / f"example-{index}.yaml", text)
    plan = build_plan(load_suite(path))
    assert plan.jobs
    jsonschema.Draft202012Validator(suite_json_schema()).validate(yaml.safe_load(text))


def test_docs_describe_every_top_level_key() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for key, info in Suite.model_fields.items():
        if info.exclude:
            continue
        assert f"`{info.alias or key}`" in text, key


# ---------------------------------------------------------------------------- schema


def test_schema_is_valid_and_describes_keys() -> None:
    schema = suite_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    props = schema["properties"]
    assert "path" not in props and "check_specs" not in props and "warnings" not in props
    for key, prop in props.items():
        assert prop.get("description"), key
    assert "contains" in json.dumps(schema["$defs"]["Check"])
    assert schema["$defs"]["Grid"]["properties"]["temperature"]["anyOf"][0]["maximum"] == 1
    assert schema["$defs"]["RequestParams"]["additionalProperties"] is False


@pytest.mark.parametrize("path", sorted(SUITES.glob("*.yaml")), ids=lambda p: p.stem)
def test_example_suites_match_the_schema(path: Path) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(suite_json_schema()).validate(data)


def test_schema_rejects_what_the_loader_rejects() -> None:
    validator = jsonschema.Draft202012Validator(suite_json_schema())
    assert not validator.is_valid({"name": "x", "mesages": []})
    assert not validator.is_valid({"name": "x", "params": {"temperature": 2}})
    assert not validator.is_valid({"name": "x", "grid": {"temprature": [0.1]}})
    assert not validator.is_valid({"name": "x", "messages": [{"role": "bot", "content": "x"}]})


def test_schema_command_prints_json() -> None:
    result = CliRunner().invoke(main, ["schema"])
    assert result.exit_code == 0
    assert json.loads(result.output)["title"] == "Suite"


# ---------------------------------------------------------------------------- conversations


def test_every_role_and_tool_round_trip(tmp_path: Path) -> None:
    suite = suite_at(
        tmp_path,
        """
name: roles
messages:
  - {role: system, content: 你是助手。}
  - {role: user, content: 北京天气？, name: alice}
  - role: assistant
    tool_calls:
      - {id: c1, function: {name: get_weather, arguments: {city: 北京}}}
  - {role: tool, tool_call_id: c1, content: 晴}
  - {role: assistant, content: 北京今天晴。}
  - {role: user, content: 谢谢}
cases: [{id: a}]
""",
    )
    messages = build_plan(suite).jobs[0].messages
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool", "assistant", "user"]
    assert messages[1]["name"] == "alice"
    assert messages[2]["tool_calls"][0] == {
        "id": "c1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "北京"}'},
    }
    assert "content" not in messages[2]
    assert messages[3] == {"role": "tool", "content": "晴", "tool_call_id": "c1"}
    assert suite.warnings == []


def test_tool_message_answering_an_unknown_call_warns(tmp_path: Path) -> None:
    suite = suite_at(
        tmp_path,
        """
name: t
messages:
  - {role: user, content: hi}
  - {role: tool, tool_call_id: nope, content: x}
cases: [{id: a}]
""",
    )
    assert any("tool_call_id 'nope'" in w and ":5:" in w for w in suite.warnings)


def test_case_messages_replace_the_suite_conversation(tmp_path: Path) -> None:
    suite = suite_at(
        tmp_path,
        """
name: t
messages: [{role: user, content: suite}]
cases:
  - id: a
  - {id: b, messages: [{role: user, content: own}]}
""",
    )
    jobs = {j.case_id: j for j in build_plan(suite).jobs}
    assert jobs["a"].messages == [{"role": "user", "content": "suite"}]
    assert jobs["b"].messages == [{"role": "user", "content": "own"}]


def test_vision_content_parts_render_their_text(tmp_path: Path) -> None:
    suite = suite_at(
        tmp_path,
        """
name: t
model: glm-4.6v
vars: {thing: 猫}
messages:
  - role: user
    content:
      - {type: text, text: "图里有{{ thing }}吗？"}
      - {type: image_url, image_url: {url: "https://example.com/a.png"}}
cases: [{id: a}]
""",
    )
    content = build_plan(suite).jobs[0].messages[0]["content"]
    assert content[0]["text"] == "图里有猫吗？"
    assert content[1]["image_url"]["url"].endswith("a.png")


# ---------------------------------------------------------------------------- prompts


PROMPTS = """
name: p
prompts:
  terse: 简洁。
  chat:
    - {role: system, content: 聊天。}
    - {role: user, content: "chat {{ q }}"}
messages:
  - {role: system, content: 原来的系统消息}
  - {role: user, content: "{{ q }}"}
cases:
  - {id: a, vars: {q: 你好}}
  - {id: pinned, prompt: terse, vars: {q: 嗨}}
  - id: own
    messages: [{role: user, content: 自己的}]
"""


def test_prompts_form_an_axis_and_text_prompts_replace_the_system_message(tmp_path: Path) -> None:
    plan = build_plan(suite_at(tmp_path, PROMPTS))
    assert plan.variants == ["glm-4 prompt=terse", "glm-4 prompt=chat"]
    by = {(j.case_id, j.variant["prompt"]): j.messages for j in plan.jobs}
    assert by[("a", "terse")] == [{"role": "system", "content": "简洁。"}, {"role": "user", "content": "你好"}]
    assert by[("a", "chat")] == [{"role": "system", "content": "聊天。"}, {"role": "user", "content": "chat 你好"}]
    assert ("pinned", "chat") not in by and ("pinned", "terse") in by
    assert by[("own", "terse")] == [{"role": "system", "content": "简洁。"}, {"role": "user", "content": "自己的"}]
    assert by[("own", "chat")] == [{"role": "user", "content": "自己的"}]


def test_grid_prompt_axis_selects_prompts_and_a_pinned_case_gets_its_own_variants(tmp_path: Path) -> None:
    text = PROMPTS.replace("name: p\n", "name: p\ngrid:\n  prompt: [chat]\n")
    plan = build_plan(suite_at(tmp_path, text))
    assert plan.variants == ["glm-4 prompt=chat", "glm-4 prompt=terse"]
    assert {j.variant_id for j in plan.jobs if j.case_id == "pinned"} == {"glm-4 prompt=terse"}
    assert {j.variant_id for j in plan.jobs if j.case_id == "a"} == {"glm-4 prompt=chat"}


def test_unused_messages_warn_when_every_prompt_is_a_conversation(tmp_path: Path) -> None:
    suite = suite_at(
        tmp_path,
        """
name: p
prompts:
  one: [{role: user, content: a}]
messages: [{role: user, content: unused}]
cases: [{id: a}]
""",
    )
    assert any("messages: is unused" in w for w in suite.warnings)


# ---------------------------------------------------------------------------- fan-out and ids


def test_matrix_mapping_list_and_suite_level(tmp_path: Path) -> None:
    suite = suite_at(
        tmp_path,
        """
name: m
matrix: {lang: [zh, en]}
messages: [{role: user, content: "{{ lang }} {{ city | default('') }} {{ a | default('') }}"}]
cases:
  - id: capital
    matrix: {city: [北京, 上海]}
    vars: {city: ignored}
    checks: [{contains: "{{ city }}"}]
  - id: pairs
    matrix: [{a: 1, b: x}, {a: 2, b: y}]
  - id: pinned
    vars: {lang: fr}
""",
    )
    ids = [c.id for c in suite.cases]
    assert ids == [
        "capital[city=北京,lang=zh]",
        "capital[city=北京,lang=en]",
        "capital[city=上海,lang=zh]",
        "capital[city=上海,lang=en]",
        "pairs[a=1,b=x,lang=zh]",
        "pairs[a=1,b=x,lang=en]",
        "pairs[a=2,b=y,lang=zh]",
        "pairs[a=2,b=y,lang=en]",
        "pinned",
    ]
    jobs = {j.case_id: j for j in build_plan(suite).jobs}
    assert jobs["capital[city=上海,lang=en]"].messages[0]["content"] == "en 上海 "
    assert jobs["capital[city=上海,lang=en]"].checks[0].args["value"] == "上海"
    assert jobs["pinned"].messages[0]["content"] == "fr  "


def test_ids_are_stable_across_loads_and_defaults_are_positional(tmp_path: Path) -> None:
    text = """
name: ids
messages: [{role: user, content: hi}]
cases:
  - {}
  - {id: named}
  - {id: 7}
  - {}
"""
    first = build_plan(suite_at(tmp_path, text))
    second = build_plan(suite_at(tmp_path, text))
    assert [c.id for c in first.suite.cases] == ["case-1", "named", "7", "case-4"]
    assert [j.id for j in first.jobs] == [j.id for j in second.jobs]
    assert len({j.id for j in first.jobs}) == len(first.jobs)


def test_default_id_colliding_with_a_given_id_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SuiteError, match="duplicate case id 'case-2'"):
        suite_at(tmp_path, "name: x\nmessages: [{role: user, content: hi}]\ncases: [{id: case-2}, {}]\n")


# ---------------------------------------------------------------------------- case files


def test_csv_reserved_columns(tmp_path: Path) -> None:
    write(
        tmp_path / "cases" / "c.csv",
        "\ufeffid,question,tags,skip,only,checks,params,repeat,threshold,min-score,description\n"
        'a,你好,"x, y",,false,"[{contains: 你}]","{temperature: 0.3}",3,0.5,0.7,第一个\n'
        "b,再见,,not ready,,,,,,,\n"
        ',"多行\n问题",,yes,,{max-chars: 10},,,,,\n',
    )
    suite = suite_at(tmp_path, "name: c\nmessages: [{role: user, content: '{{ question }}'}]\ncases: cases/c.csv\n")
    a, b, c = suite.cases
    assert (a.id, a.tags, a.skip, a.only, a.repeat, a.threshold, a.min_score, a.description) == (
        "a", ["x", "y"], False, False, 3, 0.5, 0.7, "第一个"
    )
    assert a.vars == {"question": "你好"} and a.params == {"temperature": 0.3}
    assert suite.check_specs["a"][0].args == {"value": "你"}
    assert b.skip == "not ready"
    assert c.id == "c-3" and c.vars["question"] == "多行\n问题" and c.skip is True
    assert suite.check_specs["c-3"][0].type == "max-chars"
    plan = build_plan(suite)
    assert {j.case_id for j in plan.jobs} == {"a"} and len(plan.jobs) == 3
    assert ("b", "not ready") in plan.skipped and ("c-3", "skip: true") in plan.skipped


def test_jsonl_and_yaml_case_files_with_entry_defaults(tmp_path: Path) -> None:
    write(tmp_path / "cases" / "a.jsonl", '{"id": "j1", "q": "x", "n": 3, "tags": "t1"}\n\n{"id": "j2", "q": "y", "vars": {"extra": 1}}\n')
    write(tmp_path / "cases" / "b.yaml", "cases:\n  - {id: y1, q: z, checks: [{contains: z}]}\n")
    write(tmp_path / "cases" / "c.json", '[{"id": "js1", "q": "w"}]')
    suite = suite_at(
        tmp_path,
        """
name: files
messages: [{role: user, content: "{{ q }}"}]
cases:
  - file: cases/a.jsonl
    tags: [from-file]
    vars: {lang: zh}
    checks: [{max-chars: 100}]
  - {file: cases/b.yaml, repeat: 2}
  - {file: cases/c.json}
  - {id: inline, vars: {q: hi}}
""",
    )
    cases = {c.id: c for c in suite.cases}
    assert list(cases) == ["j1", "j2", "y1", "js1", "inline"]
    assert cases["j1"].vars == {"lang": "zh", "q": "x", "n": 3}
    assert cases["j1"].tags == ["from-file", "t1"]
    assert cases["j2"].vars == {"lang": "zh", "q": "y", "extra": 1}
    assert [s.type for s in suite.check_specs["j1"]] == ["max-chars"]
    assert cases["y1"].repeat == 2 and [s.type for s in suite.check_specs["y1"]] == ["contains"]


def test_case_file_changes_change_the_suite_hash(tmp_path: Path) -> None:
    write(tmp_path / "c.csv", "id,q\na,1\n")
    text = "name: h\nmessages: [{role: user, content: '{{ q }}'}]\ncases: c.csv\n"
    before = suite_at(tmp_path, text).content_hash
    write(tmp_path / "c.csv", "id,q\na,2\n")
    assert suite_at(tmp_path, text).content_hash != before


def test_case_file_errors_and_warnings(tmp_path: Path) -> None:
    write(tmp_path / "dup.csv", "id,id\na,b\n")
    with pytest.raises(SuiteError) as info:
        suite_at(tmp_path, "name: x\nmessages: [{role: user, content: hi}]\ncases: dup.csv\n")
    assert info.value.problems == [f"{tmp_path / 'dup.csv'}:1: duplicate column 'id' in the header"]
    write(tmp_path / "empty.csv", "")
    with pytest.raises(SuiteError, match="the CSV file is empty"):
        suite_at(tmp_path, "name: x\nmessages: [{role: user, content: hi}]\ncases: empty.csv\n")
    write(tmp_path / "typo.csv", "id,tgas\na,x\n")
    suite = suite_at(tmp_path, "name: x\nmessages: [{role: user, content: hi}]\ncases: typo.csv\n")
    assert any("'tgas' is used as a template variable (did you mean 'tags'?)" in w for w in suite.warnings)
    with pytest.raises(SuiteError, match="unsupported case file type '.txt'"):
        write(tmp_path / "x.txt", "a")
        suite_at(tmp_path, "name: x\nmessages: [{role: user, content: hi}]\ncases: x.txt\n")
    with pytest.raises(SuiteError, match=r"unknown key 'id' in a case file entry \(each case from a file has its own id\)"):
        suite_at(tmp_path, "name: x\nmessages: [{role: user, content: hi}]\ncases: [{file: typo.csv, id: z}]\n")


def test_duplicate_ids_across_files_name_both_places(tmp_path: Path) -> None:
    write(tmp_path / "c.csv", "id,q\nsame,1\n")
    with pytest.raises(SuiteError) as info:
        suite_at(tmp_path, "name: x\nmessages: [{role: user, content: hi}]\ncases:\n  - id: same\n  - file: c.csv\n")
    assert info.value.problems == [f"{tmp_path / 'c.csv'}:2: duplicate case id 'same' (first at {tmp_path / 's.yaml'}:4); ids must be unique"]


# ---------------------------------------------------------------------------- settings, checks, warnings


def test_settings_defaults_and_values(tmp_path: Path) -> None:
    suite = suite_at(
        tmp_path,
        "name: s\nsettings: {concurrency: 3, judge_model: glm-4-plus, poll_timeout: 9}\n"
        "messages: [{role: user, content: hi}]\ncases: [{id: a}]\n",
    )
    assert (suite.settings.concurrency, suite.settings.judge_model, suite.settings.poll_timeout) == (3, "glm-4-plus", 9)
    # No retry count by default (issue 16): a per-job retry budget in time decides (None: glmeval's 600 s).
    assert (suite.settings.timeout, suite.settings.retries, suite.settings.embedding_model) == (60.0, None, "embedding-3")
    assert suite.settings.retry_budget is None


def test_run_accepts_setting_overrides_in_dry_run() -> None:
    result = CliRunner().invoke(
        main,
        ["run", str(SUITES / "greeting.yaml"), "--dry-run", "--judge-model", "glm-4-plus", "--poll-timeout", "5", "--embedding-model", "embedding-2"],
    )
    assert result.exit_code == 0, result.output
    assert "glm-4 temperature=0.2" in result.output


@pytest.mark.parametrize(
    "item,expected",
    [
        ({"contains": "x"}, ("contains", {"value": "x"}, False)),
        ({"type": "max-chars", "value": 5}, ("max-chars", {"value": 5}, False)),
        ("is-json", ("is-json", {}, False)),
        ({"not-regex": "a"}, ("regex", {"value": "a"}, True)),
        ({"tool-call": {"name": "f"}}, ("tool-call", {"name": "f"}, False)),
        ({"contains": "x", "not": True, "weight": 2}, ("contains", {"value": "x"}, True)),
    ],
)
def test_parse_check_shapes(item: Any, expected: tuple[str, dict[str, Any], bool]) -> None:
    spec = parse_check(item, "f.yaml:1", 1)
    assert (spec.type, spec.args, spec.negate) == expected


def test_model_name_typo_warns(tmp_path: Path) -> None:
    suite = suite_at(tmp_path, "name: m\ngrid: {model: [glm4]}\nmessages: [{role: user, content: hi}]\ncases: [{id: a}]\n")
    assert any("model 'glm4' is not in glmeval's model table (did you mean 'glm-4'?)" in w for w in suite.warnings)


def test_clamped_values_warn_once_with_the_line(tmp_path: Path) -> None:
    suite = suite_at(
        tmp_path,
        "name: c\nparams: {top_p: 1}\ngrid:\n  temperature: [0, 0.5]\n  include: [{temperature: 0}]\n"
        "messages: [{role: user, content: hi}]\ncases: [{id: a, params: {top_p: 1}}, {id: b}]\n",
    )
    assert suite.warnings == [
        f"{tmp_path / 's.yaml'}:2: top_p 1 is sent as 0.99: the zhipuai SDK keeps temperature and top_p inside (0, 1); glmeval records the value sent",
        f"{tmp_path / 's.yaml'}:4: temperature 0 is sent as 0.01 with do_sample=false: the zhipuai SDK keeps temperature and top_p inside (0, 1); glmeval records the value sent",
    ]


def test_sdk_params_mirrors_the_sdk() -> None:
    assert sdk_params({"temperature": 0, "do_sample": True}) == (
        {"temperature": 0.01, "do_sample": False},
        ["temperature 0 is sent as 0.01 with do_sample=false (overriding do_sample: true)"],
    )
    assert sdk_params({"temperature": 1, "top_p": 0})[0] == {"temperature": 0.99, "top_p": 0.01}
    assert sdk_params({"temperature": 0.5, "top_p": 0.5}) == ({"temperature": 0.5, "top_p": 0.5}, [])


def test_validate_and_plan_print_warnings_on_stderr(tmp_path: Path) -> None:
    path = write(tmp_path / "w.yaml", "name: w\ngrid: {temperature: [1]}\nmessages: [{role: user, content: hi}]\ncases: [{id: a}]\n")
    for args in (["validate", str(path)], ["plan", str(path)], ["run", str(path), "--dry-run"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        assert f"warning: {path}:2: temperature 1 is sent as 0.99" in result.stderr
        assert "warning" not in result.stdout


def test_plan_command_lists_variants_tokens_cost_and_skips(tmp_path: Path) -> None:
    path = write(
        tmp_path / "p.yaml",
        "name: p\ngrid: {model: [glm-4, glm-4-flash]}\nrepeat: 2\nmessages: [{role: user, content: 你好}]\n"
        "cases: [{id: a}, {id: b, skip: later}]\n",
    )
    result = CliRunner().invoke(main, ["plan", str(path)])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "p: 4 jobs" in out
    # prompt tokens, then answer tokens as the budget estimates them (4 x 7 + 64 each), then cost
    assert re.search(r"glm-4\s+2\s+14\s+184\s+¥0\.0198", out), out  # the calibrated estimate (issue 14): 7 prompt tokens for 你好
    assert re.search(r"glm-4-flash\s+2\s+14\s+184\s+¥0\.0000", out), out
    assert "skipped: b (later)" in out


def test_load_suite_never_leaks_other_exceptions_for_odd_paths(tmp_path: Path) -> None:
    for target in ("\x00bad", "/", "a" * 5000 + ".csv", "../" * 50 + "x.csv"):
        with pytest.raises(SuiteError):
            suite_at(tmp_path, f"name: x\nmessages: [{{role: user, content: hi}}]\ncases: {json.dumps(target)}\n")
    with pytest.raises(SuiteError, match="is a directory"):
        load_suite(tmp_path)


# ---------------------------------------------------------------------------- end to end


def test_prompt_variants_suite_runs_all_twelve_variants(tmp_path: Path) -> None:
    pytest.importorskip("glmeval.simulator", reason="the local GLM server is not available")
    result = CliRunner().invoke(
        main,
        ["run", str(SUITES / "prompt-variants.yaml"), "--local", "--db", str(tmp_path / "r.db"), "--out", str(tmp_path / "out"), "-q"],
    )
    assert result.exit_code in (0, 1), result.output
    assert "Traceback" not in result.output
    labels = [
        f"{model} prompt={prompt} temperature={t}"
        for model in ("glm-4", "glm-4-flash")
        for prompt in ("terse", "friendly")
        for t in (0.2, 0.6, 0.9)
    ]
    assert len(labels) == 12
    summary = result.stdout
    for label in labels:
        assert re.search(rf"^{re.escape(label)}\s", summary, re.M), (label, summary)
