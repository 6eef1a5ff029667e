"""The suite language of issue 12: thinking, reasoning_effort, vision parts, web_search, JSON mode.

Each readable value is validated where it is written (one line, file:line), planned into what the
API takes, and labelled so a person reads ``glm-4.7 thinking=on``. Suites that say nothing about
any of it plan exactly as before: the job ids and cache keys pinned below were computed with the
planner as it was before thinking existed (commit feaaab6).
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import zlib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from glmeval.cli import main
from glmeval.errors import SuiteError
from glmeval.plan import build_plan
from glmeval.suite import Suite, load_suite, suite_json_schema
from glmeval.suite.content import vision_models

BASE = "messages: [{role: user, content: hi}]\ncases: [{id: a}]\n"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def suite_at(tmp_path: Path, text: str) -> Suite:
    return load_suite(write(tmp_path / "s.yaml", text))


def problems_of(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(SuiteError) as info:
        build_plan(suite_at(tmp_path, text))
    return info.value.problems


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A real PNG of one colour."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


# ---------------------------------------------------------------------------- thinking


@pytest.mark.parametrize(
    ("written", "state", "sent"),
    [
        ("on", "on", {"type": "enabled"}),  # YAML reads bare on as true
        ("off", "off", {"type": "disabled"}),
        ("true", "on", {"type": "enabled"}),
        ("'on'", "on", {"type": "enabled"}),
        ("'off'", "off", {"type": "disabled"}),
        ("enabled", "on", {"type": "enabled"}),
        ("disabled", "off", {"type": "disabled"}),
        ("auto", "auto", None),
        ("{type: enabled}", "on", {"type": "enabled"}),
        ("{type: disabled, clear_thinking: true}", "off", {"type": "disabled", "clear_thinking": True}),
    ],
)
def test_thinking_values_plan_into_what_the_api_takes(tmp_path: Path, written: str, state: str, sent: Any) -> None:
    job = build_plan(suite_at(tmp_path, f"name: t\nmodel: glm-4.7\nparams: {{thinking: {written}}}\n" + BASE)).jobs[0]
    assert job.params.get("thinking") == sent
    assert ("thinking" in job.params) == (sent is not None)
    assert job.thinking == state


def test_yaml_bare_on_off_is_a_thinking_axis_with_readable_labels(tmp_path: Path) -> None:
    suite = suite_at(tmp_path, "name: t\ngrid:\n  model: [glm-4.7, glm-5.1]\n  thinking: [on, off]\n" + BASE)
    plan = build_plan(suite)
    assert plan.variants == ["glm-4.7 thinking=on", "glm-4.7 thinking=off", "glm-5.1 thinking=on", "glm-5.1 thinking=off"]
    by_label = {j.variant_id: j for j in plan.jobs}
    on, off = by_label["glm-4.7 thinking=on"], by_label["glm-4.7 thinking=off"]
    assert on.variant == {"model": "glm-4.7", "thinking": "on"} and off.variant == {"model": "glm-4.7", "thinking": "off"}
    assert on.params == {"thinking": {"type": "enabled"}} and off.params == {"thinking": {"type": "disabled"}}
    assert (on.thinking, off.thinking) == ("on", "off")
    assert on.cache_key != off.cache_key
    assert plan.warnings == []


def test_spellings_of_one_state_are_one_variant_and_exclude_matches_any_of_them(tmp_path: Path) -> None:
    suite = suite_at(
        tmp_path,
        "name: t\ngrid:\n  model: [glm-4.7, glm-4.6]\n  thinking: [enabled, 'on', true, disabled, auto]\n"
        "  exclude: [{model: glm-4.6, thinking: off}]\n" + BASE,
    )
    plan = build_plan(suite)
    assert plan.variants == ["glm-4.7 thinking=on", "glm-4.7 thinking=off", "glm-4.7 thinking=auto", "glm-4.6 thinking=on", "glm-4.6 thinking=auto"]
    auto = next(j for j in plan.jobs if j.variant_id == "glm-4.7 thinking=auto")
    assert "thinking" not in auto.params and auto.thinking == "auto"
    assert not any("matches no variant" in w for w in plan.warnings)


def test_the_wire_form_with_clear_thinking_keeps_it_as_its_own_label_key(tmp_path: Path) -> None:
    suite = suite_at(tmp_path, "name: t\nmodel: glm-4.7\ngrid:\n  thinking: [{type: enabled, clear_thinking: false}, on]\n" + BASE)
    plan = build_plan(suite)
    assert plan.variants == ["glm-4.7 thinking=on clear_thinking=False", "glm-4.7 thinking=on"]
    assert plan.jobs[0].params == {"thinking": {"type": "enabled", "clear_thinking": False}}
    assert plan.jobs[1].params == {"thinking": {"type": "enabled"}}


@pytest.mark.parametrize(
    ("model", "state"),
    [
        ("glm-4.7", "on"),  # thinking_default enabled
        ("glm-5.1", "on"),
        ("glm-4.7-flash", "on"),
        ("glm-4.6", "auto"),  # the model decides
        ("glm-z1-air", "on"),  # always thinks
        ("glm-4", None),  # cannot think
        ("glm-3-turbo", None),
        ("glm-5.3-flash", None),  # thinking unknown
        ("glm-4.8-preview", None),  # not in the catalogue
    ],
)
def test_job_thinking_defaults_to_the_catalogue(tmp_path: Path, model: str, state: str | None) -> None:
    job = build_plan(suite_at(tmp_path, f"name: t\nmodel: {model}\n" + BASE)).jobs[0]
    assert job.thinking == state
    assert "thinking" not in job.params and job.variant == {"model": model}


def test_a_case_thinking_param_is_sent_and_recorded(tmp_path: Path) -> None:
    plan = build_plan(suite_at(tmp_path, "name: t\nmodel: glm-4.7\nmessages: [{role: user, content: hi}]\ncases: [{id: a, params: {thinking: off}}, {id: b}]\n"))
    a, b = plan.jobs
    assert (a.thinking, a.params) == ("off", {"thinking": {"type": "disabled"}})
    assert (b.thinking, b.params) == ("on", {})
    assert a.variant_id == b.variant_id == "glm-4.7"


@pytest.mark.parametrize(
    ("written", "fragment"),
    [
        ("yes please", "thinking must be on, off or auto (or enabled, disabled, {type: enabled|disabled, clear_thinking: true|false}); got str 'yes please'"),
        ("'On'", "got str 'On' (did you mean 'on'?)"),
        ("On", None),  # YAML reads On as true: thinking on
        ("1", "thinking must be on, off or auto"),
        ("{type: 'on'}", "thinking.type must be one of enabled, disabled; got str 'on'"),
        ("{type: enabled, clear_thinking: 'no'}", "thinking.clear_thinking must be true or false; got str 'no'"),
        ("{type: enabled, budget: 100}", "unknown key 'budget' in thinking"),
    ],
)
def test_bad_thinking_values_are_one_line_each_with_the_line(tmp_path: Path, written: str, fragment: str | None) -> None:
    path = write(tmp_path / "s.yaml", f"name: t\nmodel: glm-4.7\nparams:\n  thinking: {written}\n" + BASE)
    if fragment is None:
        assert build_plan(load_suite(path)).jobs[0].params == {"thinking": {"type": "enabled"}}
        return
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    assert len(info.value.problems) == 1, info.value.problems
    assert info.value.problems[0].startswith(f"{path}:4: ")
    assert fragment in info.value.problems[0]


def test_a_bad_thinking_axis_value_names_its_own_line(tmp_path: Path) -> None:
    path = write(tmp_path / "s.yaml", "name: t\ngrid:\n  thinking:\n    - on\n    - maybe\n" + BASE)
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    assert info.value.problems == [
        f"{path}:5: thinking must be on, off or auto (or enabled, disabled, {{type: enabled|disabled, clear_thinking: true|false}}); got str 'maybe'"
    ]


def test_thinking_on_a_model_that_cannot_think_warns(tmp_path: Path) -> None:
    path = write(tmp_path / "s.yaml", "name: t\ngrid:\n  model: [glm-4, glm-4.7]\n  thinking: [on, off]\n" + BASE)
    plan = build_plan(load_suite(path))
    assert plan.warnings == [f"{path}:4: thinking on for glm-4: the catalogue says it cannot think; it is sent as written"]
    job = next(j for j in plan.jobs if j.variant_id == "glm-4 thinking=on")
    assert job.params == {"thinking": {"type": "enabled"}} and job.thinking == "on"


# ---------------------------------------------------------------------------- reasoning_effort


def test_reasoning_effort_is_a_parameter_and_an_axis(tmp_path: Path) -> None:
    plan = build_plan(suite_at(tmp_path, "name: t\nmodel: glm-5.2\ngrid: {reasoning_effort: [none, high, max]}\n" + BASE))
    assert plan.variants == ["glm-5.2 reasoning_effort=none", "glm-5.2 reasoning_effort=high", "glm-5.2 reasoning_effort=max"]
    assert [j.params for j in plan.jobs] == [{"reasoning_effort": v} for v in ("none", "high", "max")]
    assert plan.warnings == []
    for value in ("minimal", "low", "medium", "xhigh"):
        assert build_plan(suite_at(tmp_path, f"name: t\nmodel: glm-5.3\nparams: {{reasoning_effort: {value}}}\n" + BASE)).jobs[0].params == {"reasoning_effort": value}


def test_a_bad_reasoning_effort_is_one_line(tmp_path: Path) -> None:
    path = write(tmp_path / "s.yaml", "name: t\nmodel: glm-5.2\nparams:\n  reasoning_effort: hihg\n" + BASE)
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    assert info.value.problems == [
        f"{path}:4: reasoning_effort must be one of none, minimal, low, medium, high, xhigh, max; got str 'hihg' (did you mean 'high'?)"
    ]


def test_reasoning_effort_for_a_model_that_does_not_take_it_warns(tmp_path: Path) -> None:
    path = write(tmp_path / "s.yaml", "name: t\ngrid: {model: [glm-4.7, glm-5.2, glm-4.8-preview]}\nparams:\n  reasoning_effort: high\n" + BASE)
    warnings = build_plan(load_suite(path)).warnings
    assert [w for w in warnings if ": reasoning_effort for " in w] == [
        f"{path}:4: reasoning_effort for glm-4.7: the catalogue lists it only for glm-5.3 and glm-5.2; it is sent as written"
    ]


# ---------------------------------------------------------------------------- vision


VISION = """\
name: v
model: {model}
messages:
  - role: user
    content:
      - 这张图片是什么颜色？
      - {{image: {image}}}
cases: [{{id: a}}, {{id: b}}]
"""


def test_an_image_file_is_embedded_as_a_data_url(tmp_path: Path) -> None:
    data = png(4, 3, (255, 0, 0))
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "red.png").write_bytes(data)
    (tmp_path / "blue.JPG").write_bytes(png(2, 2, (0, 0, 255)))
    suite = suite_at(
        tmp_path,
        "name: v\nmodel: glm-4.6v\nmessages:\n  - role: user\n    content:\n"
        "      - 看图\n      - {type: text, text: '{{ q }}'}\n      - {image: photos/red.png}\n      - {image: '{{ pic }}'}\n"
        "      - {image_url: 'https://example.com/{{ n }}.png'}\n"
        "cases: [{id: a, vars: {q: 什么颜色, pic: blue.JPG, n: 7}}]\n",
    )
    content = build_plan(suite).jobs[0].messages[0]["content"]
    assert content[:2] == [{"type": "text", "text": "看图"}, {"type": "text", "text": "什么颜色"}]
    assert content[2] == {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(data).decode()}}
    assert content[3]["image_url"]["url"].startswith("data:image/jpeg;base64,")
    assert content[4] == {"type": "image_url", "image_url": {"url": "https://example.com/7.png"}}


def test_changing_the_image_changes_the_cache_key(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(png(2, 2, (255, 0, 0)))
    first = build_plan(suite_at(tmp_path, VISION.format(model="glm-4.6v", image="a.png"))).jobs[0].cache_key
    (tmp_path / "a.png").write_bytes(png(2, 2, (0, 255, 0)))
    assert build_plan(suite_at(tmp_path, VISION.format(model="glm-4.6v", image="a.png"))).jobs[0].cache_key != first


def test_a_missing_image_file_is_a_suite_error_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path / "s.yaml", VISION.format(model="glm-4.6v", image="photos/cat.jpg"))
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    assert info.value.problems == [f"{path}:7: image file 'photos/cat.jpg' not found (looked for {tmp_path / 'photos' / 'cat.jpg'})"]


def test_a_templated_image_path_is_checked_per_case(tmp_path: Path) -> None:
    (tmp_path / "ok.png").write_bytes(png(1, 1, (1, 2, 3)))
    text = VISION.format(model="glm-4.6v", image="'{{ pic }}'").replace("cases: [{id: a}, {id: b}]", "cases: [{id: a, vars: {pic: ok.png}}, {id: b, vars: {pic: gone.png}}]")
    problems = problems_of(tmp_path, text)
    assert problems == [f"{tmp_path / 's.yaml'}:5: case 'b': message 1 (user): image file 'gone.png' not found (looked for {tmp_path / 'gone.png'})"]


@pytest.mark.parametrize("model", ["glm-4.7", "glm-4"])
def test_an_image_for_a_text_model_is_one_error_naming_the_vision_models(tmp_path: Path, model: str) -> None:
    (tmp_path / "red.png").write_bytes(png(2, 2, (255, 0, 0)))
    path = write(tmp_path / "s.yaml", VISION.format(model=model, image="red.png"))
    problems = problems_of(tmp_path, path.read_text(encoding="utf-8"))
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{path}:5: message 1 (user) sends an image to {model}, which reads text only; use a vision model: ")
    for name in ("glm-4.6v", "glm-5v-turbo", "glm-5.3-flash"):
        assert name in problems[0]
    assert set(vision_models()) >= {"glm-4.6v", "glm-5v-turbo", "glm-5.3-flash"}
    assert "glm-4v-plus" not in vision_models()  # legacy


def test_an_image_for_a_text_model_given_by_model_override_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "red.png").write_bytes(png(2, 2, (255, 0, 0)))
    suite = suite_at(tmp_path, VISION.format(model="glm-4.6v", image="red.png"))
    assert len(build_plan(suite).jobs) == 2
    with pytest.raises(SuiteError, match="sends an image to glm-4.7"):
        build_plan(suite, model_override=["glm-4.7"])


def test_an_unknown_model_may_take_images(tmp_path: Path) -> None:
    (tmp_path / "red.png").write_bytes(png(2, 2, (255, 0, 0)))
    plan = build_plan(suite_at(tmp_path, VISION.format(model="glm-9v-future", image="red.png")))
    assert plan.jobs[0].messages[0]["content"][1]["type"] == "image_url"


def test_a_user_message_with_images_and_no_text_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "red.png").write_bytes(png(2, 2, (255, 0, 0)))
    path = write(tmp_path / "s.yaml", "name: v\nmodel: glm-4.6v\nmessages:\n  - role: user\n    content:\n      - {image: red.png}\n      - {image_url: 'https://e.com/a.png'}\ncases: [{id: a}]\n")
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    assert info.value.problems == [f"{path}:5: a user message with an image needs a text part too (the API answers 400/1213 without one)"]


@pytest.mark.parametrize(
    ("part", "fragment"),
    [
        ("{imag: a.png}", "content part 2 must be text, {type: text, text: ...}, {image: file}, {image_url: URL} or {type: image_url, image_url: {url: ...}}; got dict {'imag': 'a.png'} (did you mean 'image'?)"),
        ("42", "content part 2 must be text"),
        ("{type: vidoe_url}", "content part 2: type must be one of text, image_url, video_url, file_url; got str 'vidoe_url' (did you mean 'video_url'?)"),
        ("{type: image_url, image_url: 'https://e.com/a.png'}", "with type: image_url, image_url is a mapping {url: ...}; or write {image_url: URL} without type"),
        ("{image: a.txt}", "image 'a.txt' is not an image file glmeval can embed (png, jpg, jpeg, gif, webp, bmp)"),
        ("{text: 3}", "content part 2: text must be text; got int 3"),
        ("{type: text, text: hi, extra: 1}", "unknown key 'extra' in content part 2"),
    ],
)
def test_bad_content_parts_are_one_line_each(tmp_path: Path, part: str, fragment: str) -> None:
    path = write(tmp_path / "s.yaml", f"name: v\nmodel: glm-4.6v\nmessages:\n  - role: user\n    content:\n      - 看\n      - {part}\ncases: [{{id: a}}]\n")
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    assert len(info.value.problems) == 1, info.value.problems
    assert info.value.problems[0].startswith(f"{path}:7: ") and fragment in info.value.problems[0]


def test_an_empty_parts_list_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "s.yaml", "name: v\nmodel: glm-4.6v\nmessages:\n  - role: user\n    content: []\ncases: [{id: a}]\n")
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    assert info.value.problems == [f"{path}:5: content must have at least one part"]


def test_template_false_embeds_images_but_renders_nothing(tmp_path: Path) -> None:
    (tmp_path / "red.png").write_bytes(png(2, 2, (255, 0, 0)))
    suite = suite_at(tmp_path, "name: v\nmodel: glm-4.6v\nmessages:\n  - role: user\n    template: false\n    content: ['{{ raw }}', {image: red.png}]\ncases: [{id: a}]\n")
    content = build_plan(suite).jobs[0].messages[0]["content"]
    assert content[0] == {"type": "text", "text": "{{ raw }}"} and content[1]["image_url"]["url"].startswith("data:image/png;base64,")


# ---------------------------------------------------------------------------- web_search, JSON mode


def test_web_search_tool_as_the_sdk_example_writes_it(tmp_path: Path) -> None:
    tool = {
        "type": "web_search",
        "web_search": {
            "enable": "True", "search_engine": "search_pro", "search_result": "True",
            "search_prompt": "用{{search_result}}回答", "count": "5", "search_domain_filter": "www.sohu.com",
            "search_recency_filter": "noLimit", "content_size": "high",
        },
    }
    text = f"name: w\nmodel: glm-4.7\ntemplating: false\ntools: [{json.dumps(tool, ensure_ascii=False)}]\n" + BASE
    job = build_plan(suite_at(tmp_path, text)).jobs[0]
    assert job.params["tools"] == [tool]
    native = {"type": "web_search", "web_search": {"enable": True, "search_result": True, "count": 50}}
    job = build_plan(suite_at(tmp_path, f"name: w\nmodel: glm-4.7\nparams: {{tools: [{json.dumps(native)}]}}\n" + BASE)).jobs[0]
    assert job.params["tools"] == [native]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ('{enable: "yes"}', "web_search.enable must be true or false"),
        ("{count: 51}", "web_search.count must be a whole number from 1 to 50 (or that number as text); got int 51"),
        ('{count: "0"}', "web_search.count must be a whole number from 1 to 50"),
        ("{search_engine: 3}", "web_search.search_engine must be text; got int 3"),
        ("{serach_result: true}", "unknown key 'serach_result' in web_search (did you mean 'search_result'?)"),
        ("5", "a web_search tool needs a web_search: mapping; got int 5"),
    ],
)
def test_bad_web_search_settings_are_one_line(tmp_path: Path, body: str, fragment: str) -> None:
    path = write(tmp_path / "s.yaml", f"name: w\nmodel: glm-4.7\ntools:\n  - {{type: web_search, web_search: {body}}}\n" + BASE)
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    assert len(info.value.problems) == 1, info.value.problems
    assert info.value.problems[0].startswith(f"{path}:4: ") and fragment in info.value.problems[0]


def test_json_mode_is_sent_as_the_api_expects(tmp_path: Path) -> None:
    job = build_plan(suite_at(tmp_path, "name: j\nmodel: glm-4.7\nparams: {response_format: {type: json_object}}\n" + BASE)).jobs[0]
    assert job.params == {"response_format": {"type": "json_object"}}
    path = write(tmp_path / "bad.yaml", "name: j\nparams:\n  response_format: {type: json_schema}\n" + BASE)
    with pytest.raises(SuiteError, match=r"bad.yaml:3: response_format.type must be one of text, json_object"):
        load_suite(path)


# ---------------------------------------------------------------------------- unknown models


def test_an_unknown_model_is_a_warning_and_validate_exits_0(tmp_path: Path) -> None:
    path = write(tmp_path / "s.yaml", "name: n\nmodel: glm-4.8-preview\n" + BASE)
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert f"warning: {path}:2: model 'glm-4.8-preview' is not in glmeval's model table (did you mean " in result.stderr
    assert "the API decides" in result.stderr and "cost shows as unknown" in result.stderr
    far = write(tmp_path / "far.yaml", "name: n\nmodel: zzzz-model\n" + BASE)
    result = CliRunner().invoke(main, ["validate", str(far)])
    assert result.exit_code == 0 and "model 'zzzz-model' is not in glmeval's model table" in result.stderr


def test_an_unknown_model_override_warns(tmp_path: Path) -> None:
    plan = build_plan(suite_at(tmp_path, "name: n\nmodel: glm-4\n" + BASE), model_override=["glm-4.8-preview"])
    assert [j.model for j in plan.jobs] == ["glm-4.8-preview"]
    assert any(w.startswith("--model glm-4.8-preview: model 'glm-4.8-preview' is not in glmeval's model table") for w in plan.warnings)


# ---------------------------------------------------------------------------- schema


def test_the_schema_covers_the_new_values() -> None:
    schema = suite_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    params = schema["$defs"]["RequestParams"]["properties"]
    thinking = json.dumps(params["thinking"])
    assert all(word in thinking for word in ('"on"', '"off"', '"auto"', '"enabled"', '"disabled"', "boolean", "Thinking"))
    assert params["reasoning_effort"]["enum"] == ["none", "minimal", "low", "medium", "high", "xhigh", "max"]
    assert "count" in schema["$defs"]["WebSearch"]["properties"]
    content = json.dumps(schema["$defs"]["Message"]["properties"]["content"])
    assert "ImageFilePart" in content and "TextPart" in content
    validator = jsonschema.Draft202012Validator(schema)
    good = yaml.safe_load(
        "name: s\ngrid: {model: [glm-4.7], thinking: [on, off, auto, enabled], reasoning_effort: [max]}\n"
        "tools: [{type: web_search, web_search: {enable: 'True', count: '5', search_result: true}}]\n"
        "messages: [{role: user, content: [描述, {type: text, text: x}, {image: a.png}, {image_url: 'https://e/a.png'},"
        " {type: image_url, image_url: {url: 'https://e/b.png'}}]}]\ncases: [{id: a, params: {thinking: {type: disabled}}}]\n"
    )
    validator.validate(good)
    for bad in (
        "name: s\nparams: {thinking: maybe}\ncases: [{id: a}]\n",
        "name: s\nparams: {reasoning_effort: huge}\ncases: [{id: a}]\n",
        "name: s\nmessages: [{role: user, content: [{imag: a.png}]}]\ncases: [{id: a}]\n",
        "name: s\ntools: [{type: web_search, web_search: {count: 99}}]\ncases: [{id: a}]\n",
    ):
        assert not validator.is_valid(yaml.safe_load(bad)), bad


# ---------------------------------------------------------------------------- nothing changes for the rest

# Job ids and cache keys of these suites as the planner made them before thinking existed
# (commit feaaab6): count, sha256 of the JSON list of [id, variant_id, cache_key], first triple.
PINNED: dict[str, tuple[str, int, str, list[str]]] = {
    "greeting": (
        """\
# The canonical example: two models at two temperatures, streamed, three samples each.
name: greeting
description: Say hello; compare two models at two temperatures.
mode: stream
grid:
  model: [glm-4, glm-3-turbo]
  temperature: [0.2, 0.9]
params:
  max_tokens: 512
repeat: 3
messages:
  - role: system
    content: 你是一个乐于助人的中文助手。
  - role: user
    content: "{{ question }}"
checks:
  - type: max-latency-ms
    value: 10000
cases:
  - id: hello
    vars: {question: 你好}
    checks:
      - contains-any: [你好, 您好]
  - id: capital
    vars: {question: 中国的首都是哪里？}
    checks:
      - contains: 北京
      - {type: max-chars, value: 200}
  - id: weather-tool
    messages:
      - {role: user, content: 北京今天天气怎么样？}
    tools:
      - type: function
        function:
          name: get_weather
          description: 查询城市天气
          parameters: {type: object, properties: {city: {type: string}}, required: [city]}
    checks:
      - {type: tool-call, name: get_weather, arguments: {city: 北京}}
""",
        36,
        "7f343a5d2d60320578da19f98ecbe41093cd1855811259a5bbf1cc6839cdde42",
        ["10eb30e97d2a5f1d", "glm-4 temperature=0.2", "7c4c8c12e96af8e85a08d8ceede5c420f8e1fe60c6d0f7401651c6ea9c56fd53"],
    ),
    "legacy": (
        """\
name: legacy
grid:
  model: [glm-4, glm-3-turbo]
  mode: [sync, stream]
  include: [{model: glm-4, temperature: 0}]
params: {max_tokens: 256, top_p: 0.5}
repeat: 2
messages:
  - {role: system, content: 简洁。}
  - {role: user, content: "{{ q }}"}
cases:
  - id: a
    vars: {q: 你好}
  - id: b
    vars: {q: 中国的首都是哪里？}
    params: {thinking: {type: enabled}, response_format: {type: json_object}}
""",
        16,
        "34e09d0f0bd2430b231060352a355a68a28e6c5a5928648af5664b47bb046c17",
        ["b7e699d2c1e9f286", "glm-4 mode=sync temperature=0", "27a7a4269b125f3bdf67d4ab8abfb26b10113f4cfbf350ff052262bb4e10b5ff"],
    ),
    "wire_vision": (
        """\
name: wire-vision
model: glm-4.6v
vars: {thing: 猫}
messages:
  - role: user
    content:
      - {type: text, text: "图里有{{ thing }}吗？"}
      - {type: image_url, image_url: {url: "https://example.com/a.png"}}
cases: [{id: a}, {id: b, vars: {thing: 狗}}]
""",
        2,
        "ad4301364bf51317e5fe5d9a9d2af033c84a119f716a8bebfa91ee4f2a78cd08",
        ["2433a99bbfe4bb25", "glm-4.6v", "c4ea1862162bca7b0ec80a48a33409318f78ab8433e6730a9897dae4e372e7de"],
    ),
    "wire_thinking": (
        """\
name: wire-thinking
grid: {model: [glm-4.5, glm-4.7], temperature: [0.3]}
params: {thinking: {type: enabled, clear_thinking: false}}
messages: [{role: user, content: "{{ q }}"}]
cases:
  - {id: a, vars: {q: 你好}}
  - {id: b, vars: {q: 再见}, params: {thinking: {type: disabled}}}
""",
        4,
        "c9c59aa7dab66804a08f2e4c922a8514db8f1b1671b478e5aa4b67b76991337e",
        ["128f62dd6cfef8d1", "glm-4.5 temperature=0.3", "ec84195217d29d7da362b8f1d294b704509b7d6b5bf6bd5201e6ac3f323ebf8d"],
    ),
}


@pytest.mark.parametrize("name", sorted(PINNED))
def test_job_ids_and_cache_keys_are_what_they_were(tmp_path: Path, name: str) -> None:
    text, count, digest, first = PINNED[name]
    plan = build_plan(load_suite(write(tmp_path / f"{name}.yaml", text)))
    rows = [[j.id, j.variant_id, j.cache_key] for j in plan.jobs]
    assert (len(rows), rows[0]) == (count, first)
    assert hashlib.sha256(json.dumps(rows).encode()).hexdigest() == digest


def test_glm4_jobs_record_no_thinking_and_send_nothing_new(tmp_path: Path) -> None:
    plan = build_plan(load_suite(write(tmp_path / "greeting.yaml", PINNED["greeting"][0])))
    assert {j.thinking for j in plan.jobs} == {None}
    assert {json.dumps(j.params, sort_keys=True) for j in plan.jobs} == {
        '{"max_tokens": 512, "temperature": 0.2}',
        '{"max_tokens": 512, "temperature": 0.9}',
        '{"max_tokens": 512, "temperature": 0.2, "tools": [{"function": {"description": "\\u67e5\\u8be2\\u57ce\\u5e02\\u5929\\u6c14", '
        '"name": "get_weather", "parameters": {"properties": {"city": {"type": "string"}}, "required": ["city"], "type": "object"}}, "type": "function"}]}',
        '{"max_tokens": 512, "temperature": 0.9, "tools": [{"function": {"description": "\\u67e5\\u8be2\\u57ce\\u5e02\\u5929\\u6c14", '
        '"name": "get_weather", "parameters": {"properties": {"city": {"type": "string"}}, "required": ["city"], "type": "object"}}, "type": "function"}]}',
    }
    assert plan.warnings == []
