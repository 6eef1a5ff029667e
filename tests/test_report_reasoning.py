"""Reports of thinking models, vision and web search: reasoning collapsed beside each answer
(always escaped), reasoning tokens and TTFR in the summary only when some variant has them,
the thinking axis in parameter effects, image parts as thumbnails, search results under the
answer. Runs are stored in a real Store (``glmeval.report.demo`` or hand-built records)."""

from __future__ import annotations

import base64
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from glmeval.records import CheckResult, Completion, Job, Result
from glmeval.report import load_report_data, views
from glmeval.report.demo import synth_run
from glmeval.report.html import render_html
from glmeval.report.jsonreport import report_dict
from glmeval.report.junit import render_junit
from glmeval.report.markdown import render_markdown, summary_table
from glmeval.store import Store

EVIL = "<script>alert(1)</script>\x00\x1b<img src=x onerror=alert(2)>思考"
# a 1×1 PNG, repeated so it is big enough that its base64 leaking into text would show
PNG = base64.b64encode(base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==") * 40).decode()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "results.db")
    yield s
    s.close()


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _tags(html: str) -> list[tuple[str, dict[str, str | None]]]:
    p = _Tags()
    p.feed(html)
    return p.tags


def _thinking_run(store: Store, **kw: Any) -> str:
    """glm-4.7 (a thinking model) and glm-4 (not one) × thinking on/off, no errors."""
    args: dict[str, Any] = {"cases": 6, "repeats": 2, "models": ("glm-4.7", "glm-4"), "temperatures": (0.2,),
                            "thinking": ("on", "off"), "error_rate": 0.0}
    return synth_run(store, **{**args, **kw})


def test_reasoning_is_collapsed_beside_each_answer_and_escaped(store: Store) -> None:
    run = _thinking_run(store, reasoning_outputs={"evil": EVIL})
    data = load_report_data(store, run)
    html = render_html(data)
    thinking_on = [a for c in views.matrix(data).cells.values() if c.variant_id == "glm-4.7 temperature=0.2 thinking=on"
                   for a in c.attempts]
    assert thinking_on and all(a.reasoning and a.reasoning_tokens for a in thinking_on)
    blocks = re.findall(r'<details class="reasoning"><summary>(reasoning · [\d,]+ tokens(?: \(estimated\))?)</summary><pre>(.*?)</pre>'
                        r'</details>\s*<pre class="answer">', html, re.S)
    assert len(blocks) == len(thinking_on), "one collapsed reasoning per thinking-on answer, right above it"
    assert any(label.endswith("(estimated)") for label, _ in blocks) and any("estimated" not in label for label, _ in blocks)
    evil = [body for _, body in blocks if "思考" in body]
    assert len(evil) == 2, "the planted reasoning of both repeats"
    assert evil[0].startswith("&lt;script&gt;alert(1)&lt;/script&gt;\ufffd\ufffd&lt;img src=x onerror=alert(2)&gt;")
    assert "\x00" not in html and "\x1b" not in html, "control characters never reach the page"
    tags = _tags(html)
    assert [t for t, _ in tags if t == "script"] == ["script"], "only the report's own script"
    assert not any(t == "img" for t, _ in tags) and not any(k.startswith("on") for _, a in tags for k in a)
    answers = re.findall(r'<pre class="answer">(.*?)</pre>', html, re.S)
    assert answers and not any("思考" in a or "alert" in a for a in answers), "the answer is the answer alone"


def test_summary_has_reasoning_and_ttfr_columns_only_with_reasoning(store: Store) -> None:
    data = load_report_data(store, _thinking_run(store))
    html = render_html(data)
    head = re.search(r'<table class="summary sortable" id="summary-table">(.*?)</table>', html, re.S)
    assert head
    headers = re.findall(r'<th data-sort="num" scope="col" title="[^"]*">([^<]*)</th>', head.group(1))
    # "distinct" (answers per repeated case) is issue 14's column: the synthetic run repeats its cases.
    assert headers == ["pass rate", "cases", "checks", "p50 ms", "p95 ms", "TTFT p50", "TTFR p50", "prompt tok", "compl. tok",
                       "reason. tok", "distinct", "cost", "errors"]
    row = re.search(r'<th scope="row" data-v="glm-4.7 temperature=0.2 thinking=on">.*?</tr>', head.group(1), re.S)
    assert row and row.group(0).count("<td") == len(headers), "every row has a cell per header"
    assert data.summary.set_index("variant").at["glm-4.7 temperature=0.2 thinking=on", "reasoning_tokens_mean"] > 0
    md = render_markdown(data)
    assert "| reasoning tok" in md and "TTFR p50 ms" in md and "Reasoning tok:" in md
    assert "reasoning tok" in summary_table(data.summary, tablefmt="simple"), "the terminal summary too"


def test_glm4_only_report_has_no_reasoning_column(store: Store) -> None:
    run = synth_run(store, cases=4, repeats=2)
    data = load_report_data(store, run)
    html = render_html(data)
    # The columns as before, plus issue 14's "distinct" (answers per repeated case): the run repeats.
    assert html.count('<th data-sort="num"') == 11, "the summary's columns as before, plus distinct answers"
    assert "reason. tok" not in html and "TTFR" not in html and '<details class="reasoning"' not in html
    assert "reasoning tokens (mean)" not in html, "no reasoning chart in the effects"
    assert all("reasoning_tokens" not in dict(e.metrics) for e in views.effects(data))
    md = render_markdown(data)
    assert "reasoning" not in md.lower() and "TTFR" not in md
    assert not views.has_reasoning(data.results)


def test_thinking_axis_in_parameter_effects(store: Store) -> None:
    data = load_report_data(store, _thinking_run(store))
    effects = {e.axis: e for e in views.effects(data)}
    assert list(effects) == ["thinking"]
    eff = effects["thinking"]
    assert eff.values == ["on", "off"] and eff.models == ["glm-4.7", "glm-4"]
    assert [k for k, _ in eff.metrics] == ["pass_rate", "latency_p50_ms", "completion_tokens", "reasoning_tokens", "cost",
                                           "distinct_answers"]  # issue 14: the run repeats its cases
    tokens = eff.tables["reasoning_tokens"]
    assert tokens.at["on", "glm-4.7"] > 100 and tokens.at["off", "glm-4.7"] == 0
    assert eff.tables["completion_tokens"].at["on", "glm-4.7"] > eff.tables["completion_tokens"].at["off", "glm-4.7"] + 100
    assert eff.tables["latency_p50_ms"].at["on", "glm-4.7"] > eff.tables["latency_p50_ms"].at["off", "glm-4.7"]
    assert eff.tables["cost"].at["on", "glm-4.7"] > eff.tables["cost"].at["off", "glm-4.7"], "reasoning is billed as output"
    contrast = {r["model"]: r for r in eff.contrast()}
    low, high, change = contrast["glm-4.7"]["reasoning_tokens"]
    assert low == 0 and high > 100 and change == pytest.approx(high)
    html = render_html(data)
    assert "<h3>thinking</h3>" in html and "thinking off → on, per model" in html
    for title in ("pass rate by thinking", "latency p50 (ms) by thinking", "completion tokens (mean) by thinking",
                  "reasoning tokens (mean) by thinking", "cost per call (¥) by thinking"):
        assert title in html, title
    md = render_markdown(data)
    assert "### thinking" in md and "Thinking off → on, per model:" in md and "| `glm-4.7` |" in md


def test_thinking_axis_reads_on_off_from_booleans_and_the_wire_form() -> None:
    assert views.axis_value_label("thinking", True) == "on"
    assert views.axis_value_label("thinking", {"type": "disabled"}) == "off"
    assert views.axis_value_label("thinking", "auto") == "auto"
    assert views.axis_value_label("temperature", True) == "True"


def _vision_run(store: Store, web_search: list[dict[str, object]] | None = None) -> str:
    run = store.start_run("vision", variants=["glm-4.6v"])
    content = [
        {"type": "text", "text": "描述这张图 <b>bold</b>"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        {"type": "image_url", "image_url": {"url": "https://example.invalid/cat.jpg"}},
        {"type": "image_url", "image_url": {"url": "javascript:alert(1)"}},
    ]
    job = Job(id="j1", suite="vision", case_id="colour", variant_id="glm-4.6v", variant={"model": "glm-4.6v"}, repeat=0,
              model="glm-4.6v", mode="sync", messages=[{"role": "user", "content": content}], params={}, checks=[])
    completion = Completion(text="一张红色的图片 [ref_1]", latency_ms=10.0, prompt_tokens=80, completion_tokens=12, total_tokens=92,
                            web_search=web_search or [])
    check = CheckResult("contains", True, 1.0, "found 红", label="contains 红")
    store.add_result(run, Result(job, completion, [check], True, 1.0, 0.0))
    return run


def test_data_image_renders_as_a_thumbnail_and_http_images_as_links(store: Store) -> None:
    data = load_report_data(store, _vision_run(store))
    html = render_html(data)
    tags = _tags(html)
    imgs = [a for t, a in tags if t == "img"]
    assert len(imgs) == 1 and (imgs[0].get("src") or "").startswith("data:image/png;base64,") and imgs[0].get("class") == "thumb"
    hrefs = [a.get("href") or "" for t, a in tags if t == "a"]
    assert "https://example.invalid/cat.jpg" in hrefs, "an http image is a link to follow, never fetched"
    assert not any(h.strip().lower().startswith("javascript") for h in hrefs)
    for _, attrs in tags:
        assert not re.match(r"\s*(https?:)?//", attrs.get("src") or ""), "nothing is fetched"
    assert "描述这张图 &lt;b&gt;bold&lt;/b&gt;" in html, "text parts as text, escaped"
    assert "img.thumb" in html and "max-width" in html.split("img.thumb", 1)[1][:80], "width-limited"
    text = views.message_text(data.jobs["j1"]["messages"][0])
    assert PNG[:40] not in text and "[image: image/png," in text, "flattened text names the image, not its base64"


def test_web_search_results_are_shown_under_the_answer(store: Store) -> None:
    results: list[dict[str, object]] = [
        {"title": "红色 <i>wiki</i>", "link": "https://example.invalid/red", "refer": "ref_1", "media": "百科",
         "content": "红色是一种颜色。" * 80},
        {"title": "bad", "link": "javascript:alert(1)", "refer": "ref_2"},
    ]
    data = load_report_data(store, _vision_run(store, results))
    html = render_html(data)
    block = re.search(r'<pre class="answer">[^<]*</pre>\s*<div class="web">(.*?)</div>\s*<ul class="checks">', html, re.S)
    assert block, "search results sit right under the answer"
    assert '<a href="https://example.invalid/red" rel="noopener noreferrer nofollow" target="_blank">红色 &lt;i&gt;wiki&lt;/i&gt;</a>' \
        in block.group(1)
    assert "<code>ref_1</code>" in block.group(1) and "<code>ref_2</code>" in block.group(1)
    assert "javascript" not in block.group(1), "a link that is not http(s) is not a link"
    assert "2 results" in block.group(1) and "…" in block.group(1), "long snippets are cut"
    doc = report_dict(data)
    assert [r["refer"] for r in doc["results"][0]["web_search"]] == ["ref_1", "ref_2"]


def test_json_and_junit_carry_reasoning(store: Store) -> None:
    run = _thinking_run(store, outputs={"evil": "我不知道"}, reasoning_outputs={"evil": EVIL})
    data = load_report_data(store, run)
    doc = json.loads(json.dumps(report_dict(data)))
    on = [r for r in doc["results"] if r["variant_id"] == "glm-4.7 temperature=0.2 thinking=on"]
    assert on and all(r["reasoning"] and r["reasoning_tokens"] > 0 and r["ttfr_ms"] < r["ttft_ms"] for r in on)
    assert all(r["thinking"] == "on" and r["web_search"] == [] for r in on)
    assert any(r["reasoning"] == EVIL for r in on), "the JSON holds the reasoning as stored"
    assert all(r["reasoning"] == "" for r in doc["results"] if r["model"] == "glm-4")
    root = ET.fromstring(render_junit(data).encode("utf-8"))
    outs = [el.text or "" for el in root.iter("system-out")]
    assert any("--- reasoning of repeat 1" in t and "<script>alert(1)</script>" in t for t in outs)
    md = render_markdown(data)
    assert "思考" not in md and "alert" not in md, "the Markdown failures show answers, not reasoning"


def test_json_of_an_old_style_run_has_empty_reasoning_fields(store: Store) -> None:
    doc = report_dict(load_report_data(store, synth_run(store, cases=2, repeats=1)))
    for r in doc["results"]:
        assert r["reasoning"] == "" and r["reasoning_tokens"] is None and r["ttfr_ms"] is None and r["web_search"] == []


def test_message_parts_in_every_form_a_suite_or_the_wire_gives() -> None:
    parts = views.message_parts([
        "plain", {"type": "text", "text": "wire"}, {"type": "image_url", "image_url": {"url": PNG}},
        {"image_url": "http://example.invalid/a.png"}, {"type": "video_url", "video_url": {"url": "https://example.invalid/v.mp4"}},
        {"type": "image_url", "image_url": {"url": "javascript:alert(1)"}},
    ])
    assert [p.kind for p in parts] == ["text", "text", "image", "link", "link", "other"]
    assert parts[2].url == f"data:image/png;base64,{PNG}", "bare base64 (the API takes it) is sniffed as a PNG"
    assert parts[4].text == "video" and "javascript" not in parts[5].url
