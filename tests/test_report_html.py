"""The HTML report as a file: escaping, self-containment, structure, charts (no browser needed)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest

from glmeval.report import load_report_data, views
from glmeval.report.charts import bar_chart, hbar_chart, line_chart, nice_ticks, sparkline
from glmeval.report.demo import synth_run
from glmeval.report.html import render_html
from glmeval.store import Store

XSS = '<script>alert(1)</script><img src=x onerror=alert(2)><a href="javascript:alert(3)">x</a>"\'&amp;'


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "results.db")
    yield s
    s.close()


class _Tags(HTMLParser):
    """Collects start tags and their attributes, as a browser's tokenizer would see them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _tags(html: str) -> list[tuple[str, dict[str, str | None]]]:
    p = _Tags()
    p.feed(html)
    return p.tags


def test_model_output_is_escaped(store: Store) -> None:
    run = synth_run(store, cases=3, repeats=2, outputs={"<b>case</b>": XSS})
    html = render_html(load_report_data(store, run))
    assert "<script>alert" not in html and "<img src=x" not in html and 'href="javascript' not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(2)&gt;" in html
    assert "&amp;amp;" in html, "an entity in model output shows as typed, not decoded"
    assert "&lt;b&gt;case&lt;/b&gt;" in html, "case ids are escaped too"
    tags = _tags(html)
    assert [t for t, _ in tags if t == "script"] == ["script"], "only the report's own script"
    assert not any(t == "img" for t, _ in tags)
    assert not any(k.startswith("on") for _, attrs in tags for k in attrs), "no inline event handlers at all"


def test_self_contained(store: Store) -> None:
    run = synth_run(store, cases=3, repeats=1, outputs={"link": "see https://example.invalid/x.png"})
    html = render_html(load_report_data(store, run))
    for _, attrs in _tags(html):
        for key in ("src", "href", "action", "poster", "data"):
            value = attrs.get(key) or ""
            assert not re.match(r"\s*(https?:)?//", value), f"{key}={value!r} would fetch from the network"
    assert "@import" not in html and not re.search(r"url\(\s*['\"]?(https?:)?//", html)
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    assert '<meta name="viewport"' in html, "readable on a phone"


def test_structure(store: Store) -> None:
    base = synth_run(store, cases=5, repeats=2, seed=1)
    head = synth_run(store, cases=5, repeats=2, seed=2, replay=True)
    html = render_html(load_report_data(store, head, baseline=base))
    for marker in ('id="summary-table"', 'id="matrix-table"', 'id="effects"', 'id="trends"', 'id="answers"', "<svg"):
        assert marker in html, marker
    assert "Simulated run." in html and "Replayed from the response cache." in html
    assert 'class="best' in html, "best value per column is marked"
    assert html.count('<th data-sort="num"') >= 9, "sortable summary columns"
    assert 'name="st" value="fail"' in html and 'class="vf"' in html, "pass/fail and variant filters"
    # every matrix cell links to its case block, which exists
    links = set(re.findall(r'href="#(c\d+-v\d+)"', html))
    ids = set(re.findall(r'id="(c\d+-v\d+)"', html))
    assert links and links <= ids
    assert len(links) == 5 * 4
    assert "Against baseline" in html and "Metric deltas" in html


def test_empty_run_renders(store: Store) -> None:
    run = store.start_run("empty", variants=["glm-4"])
    html = render_html(load_report_data(store, run))
    assert "No results stored for this run yet." in html


def _status_badge(html: str) -> tuple[str, str]:
    """(class, text) of the header's status badge."""
    match = re.search(r'<span class="(status [^"]*)">([^<]*)</span>', html)
    assert match, "the header has a status badge"
    return match.group(1), match.group(2)


def _failures_section(html: str) -> str:
    match = re.search(r'<section id="failures">(.*?)</section>', html, re.S)
    assert match, "a Failures and errors section"
    return match.group(1)


def test_all_errors_run_is_not_shown_as_a_green_complete(store: Store) -> None:
    run = synth_run(store, cases=2, repeats=1, error_rate=1.0, local=False)
    html = render_html(load_report_data(store, run))
    cls, text = _status_badge(html)
    assert text == "complete · 8 errors"
    assert "t-bad" in cls.split() and "t-good" not in cls.split()
    section = _failures_section(html)
    assert "Failures and errors" in section and "8 case × variants" in section
    assert section.count("<li>") == 8
    assert "error (rate_limit): HTTP 429" in section, "the error text is on the page, not only behind a click"
    assert 'href="#failures"' in html
    assert html.index('id="failures"') < html.index('id="summary"'), "near the top"


def test_failures_list_names_case_variant_and_reason(store: Store) -> None:
    run = synth_run(store, cases=8, repeats=1, seed=5, error_rate=0.0)
    data = load_report_data(store, run)
    html = render_html(data)
    failing = [c for c in views.matrix(data).cells.values() if not c.passed]
    assert failing, "the synthetic run has failing cells"
    cls, text = _status_badge(html)
    assert text == f"complete · {len(failing)} failing" and "t-warn" in cls.split()
    section = _failures_section(html)
    for cell in failing:
        assert f"<b>{cell.case_id}</b> on <code>{cell.variant_id}</code>" in section
    assert "contains 北京: 北京 not found in the answer" in section


def test_clean_run_keeps_a_green_badge_and_no_failures_list(store: Store) -> None:
    run = synth_run(store, cases=3, repeats=1, error_rate=0.0, quality_shift=1.0)
    html = render_html(load_report_data(store, run))
    cls, text = _status_badge(html)
    assert text == "complete" and "t-good" in cls.split()
    assert 'id="failures"' not in html


def test_charts_escape_and_scale() -> None:
    svg = bar_chart(["<x>", "b"], {"<s>": [0.5, None], "t": [1.0, 0.25]}, title="<t>", y_max=1.0)
    assert "<x>" not in svg and "&lt;x&gt;" in svg and "&lt;t&gt;" in svg and "&lt;s&gt;" in svg
    assert svg.count("<rect") == 3, "a missing value leaves a gap"
    line = line_chart(["r1", "r2", "r3"], {"a": [1, None, 3]}, title="t")
    assert line.count("<polyline") == 0 and line.count("<circle") == 2, "a gap breaks the line"
    assert "<polyline" in line_chart(["r1", "r2"], {"a": [1, 2]})
    h = hbar_chart(["v1", "v2"], [0.5, 0.9], intervals=[(0.3, 0.7), (0.8, 1.0)], x_max=1.0)
    assert h.count("<rect") == 2 and "whisker" in h
    assert "no data" in bar_chart([], {})
    assert nice_ticks(0, 0.97) == [0, 0.25, 0.5, 0.75, 1.0]
    assert sparkline([0, 0.5, 1, None], 0, 1) == "▁▅█ "


def test_prompt_axis_shows_each_variants_conversation(store: Store) -> None:
    """With a prompt axis the conversation differs per variant, so each column carries its own."""
    from glmeval.records import CheckResult, Completion, Job, Result

    run = store.start_run("prompts", variants=["glm-4 prompt=terse", "glm-4 prompt=polite"])
    for prompt, system in (("terse", "Answer in one word."), ("polite", "Answer politely.")):
        job = Job(
            id=f"j-{prompt}", suite="prompts", case_id="capital", variant_id=f"glm-4 prompt={prompt}",
            variant={"model": "glm-4", "prompt": prompt}, repeat=0, model="glm-4", mode="sync",
            messages=[{"role": "system", "content": system}, {"role": "user", "content": "首都？"}], params={},
            checks=[], threshold=None,
        )
        check = CheckResult("contains", True, 1.0, "found", label="contains 北京")
        store.add_result(run, Result(job, Completion(text="北京", latency_ms=10.0), [check], True, 1.0, 0.0))
    data = load_report_data(store, run)
    html = render_html(data)
    assert "The conversation differs between variants" in html
    assert "Answer in one word." in html and "Answer politely." in html
    assert [e.axis for e in views.effects(data)] == ["prompt"]
