"""The HTML report at 24 variants: short codes with a key, no label cut, capped lists, the
conversation's tool calls drawn as calls, and axis charts without the variants that do not set
the axis. Checked in the HTML, then in headless Chromium at desktop (1280 px) and phone (390 px)
widths: a probe script in the page reports every label box whose content overflows it and
every chart label wider than the room the chart gave it, and screenshots are kept under tmp_path.

Headless Chromium will not make a window narrower than 500 px, so the phone page is the report
in a 390 px ``<iframe srcdoc>`` (same origin, so the parent page can read the probe's answer).
"""

from __future__ import annotations

import html as htmllib
import json
import re
import struct
from pathlib import Path

import pytest

from glmeval.report import load_report_data, render_html
from glmeval.report.charts import text_width, wrap_lines
from glmeval.report.demo import synth_run
from glmeval.store import Store
from tests.test_report_browser import _browser, _chromium

MODELS = ("glm-4", "glm-4-plus", "glm-4.7", "glm-4.5-flash")
AXES = {"top_p": (None, 0.7, 0.95), "style": ("简洁", "详细解释每一步再给出结论")}

PROBE = """
(function () {
  var sel = ".vchip, .vlegend li, .vlegend code, table.matrix thead th, .kpi, .kpi .v, .legend .key, "
          + "figure.chart figcaption, ol.chart-key li, table.summary tbody th, .col-head, .case-title, ul.fails li, nav.tabs a";
  var bad = [], checked = 0, texts = 0;
  document.querySelectorAll(sel).forEach(function (el) {
    if (!el.getClientRects().length) return;
    checked++;
    if (el.scrollWidth > el.clientWidth + 1) bad.push(el.className + ": " + el.textContent.slice(0, 80));
  });
  document.querySelectorAll("svg text.label").forEach(function (t) {
    if (!t.getClientRects().length) return;
    texts++;
    var room = parseFloat(t.getAttribute("data-room")), w = t.getBBox().width;
    if (w > room + 0.5) bad.push("svg text " + t.textContent.slice(0, 80) + ": " + w.toFixed(1) + " > " + room);
  });
  var out = document.createElement("pre");
  out.id = "overflow-probe";
  out.textContent = JSON.stringify({width: window.innerWidth, page: document.documentElement.scrollWidth,
                                    checked: checked, texts: texts, bad: bad});
  document.body.appendChild(out);
})();
"""


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[str]]:
    tmp = tmp_path_factory.mktemp("many")
    with Store(tmp / "results.db") as store:
        run = synth_run(store, cases=9, repeats=1, models=MODELS, temperatures=(0.2,), axes=AXES, tool_turns=True, seed=3)
        data = load_report_data(store, run)
        return render_html(data), list(data.variants)


def _section(html: str, ident: str) -> str:
    m = re.search(rf'<details class="vlegend[^"]*" id="{ident}".*?</details>', html, re.S)
    assert m, ident
    return m.group(0)


def test_every_label_whole_in_the_key(report: tuple[str, list[str]]) -> None:
    html, labels = report
    assert len(labels) == 24
    assert any("top_p" not in lab for lab in labels) and any("详细" in lab for lab in labels)
    key = _section(html, "variant-key")
    shown = [htmllib.unescape(x) for x in re.findall(r'<code class="vlabel">(.*?)</code>', key)]
    assert shown == labels, "the key lists every variant, in matrix order, its label whole"
    assert re.findall(r'<b class="vcode">(V\d+)</b>', key) == [f"V{i + 1}" for i in range(24)]
    chart = re.search(r'<figure class="chart"><figcaption>Pass rate by variant.*?</figure>', html, re.S)
    assert chart, "the pass-rate chart"
    chart_key = [htmllib.unescape(x) for x in re.findall(r'<span class="klabel">(.*?)</span>', chart.group(0))]
    assert chart_key == labels, "the chart draws codes and keys them to the full labels"
    heads = re.search(r'<table class="matrix compact" id="matrix-table">\s*<thead>(.*?)</thead>', html, re.S)
    assert heads and re.findall(r'<span class="vm">(V\d+)</span>', heads.group(1)) == [f"V{i + 1}" for i in range(24)]


def test_no_svg_text_is_cut(report: tuple[str, list[str]]) -> None:
    html, _ = report
    texts = re.findall(r"<text\b[^>]*>(.*?)</text>", html, re.S)
    assert texts
    for t in texts:
        assert "…" not in re.sub(r"<title>.*?</title>", "", t), t


def test_best_card_is_capped(report: tuple[str, list[str]]) -> None:
    html, _ = report
    card = re.search(r'<div class="kpi good wide best-card">.*?</div></div>', html, re.S)
    assert card
    names = re.findall(r"<code>(.*?)</code>", card.group(0))
    more = re.search(r"\+(\d+) more", card.group(0))
    assert 1 <= len(names) <= 3
    assert more and int(more.group(1)) >= 1, "this run has more than three variants tied for best"


def test_conversation_tool_calls_are_calls(report: tuple[str, list[str]]) -> None:
    html, _ = report
    convo = re.search(r'<div class="msg role-assistant">.*?</div>\s*</div>', html, re.S)
    assert convo, "the stored conversation has an assistant turn"
    block = convo.group(0)
    assert "ƒ get_weather" in block and "call_prev_4" in block
    assert "&#34;city&#34;: &#34;北京&#34;" in block, "arguments as pretty JSON, escaped"
    assert "&#34;function&#34;" not in html, "no raw API JSON of the call"


def test_axis_charts_skip_variants_without_the_axis(report: tuple[str, list[str]]) -> None:
    html, _ = report
    charts = re.findall(r'<figure class="chart"><figcaption>[^<]* by top_p</figcaption>.*?</figure>', html, re.S)
    assert charts
    for chart in charts:
        labels = re.findall(r'<tspan[^>]*>(.*?)</tspan>', chart)
        assert labels == ["0.7", "0.95"], labels
    assert "do not set top_p" in html


def test_labels_wrap_without_losing_text() -> None:
    text = "glm-4.5-flash temperature=0.2 style=详细解释每一步再给出结论"
    lines = wrap_lines(text, 90)
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")
    assert all(text_width(line) <= 90 for line in lines if len(line) > 1)
    assert text_width("北京") > text_width("ab") * 1.5, "CJK counts a full em"


def _probe(dom: str) -> dict[str, object]:
    m = re.search(r'<pre id="overflow-probe">(.*?)</pre>', dom, re.S)
    assert m, "the probe ran"
    return json.loads(htmllib.unescape(m.group(1)))


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_in_chromium_no_label_overflows(report: tuple[str, list[str]], tmp_path: Path) -> None:
    binary = _chromium()
    if binary is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    html, _ = report
    page = tmp_path / "report.html"
    page.write_text(html.replace("</body>", f"<script>{PROBE}</script></body>"), encoding="utf-8")
    phone = tmp_path / "phone.html"
    phone.write_text(
        '<!doctype html><html><body style="margin:0">'
        f'<iframe id="f" style="border:0;display:block" width="390" height="9000" srcdoc="{htmllib.escape(page.read_text())}"></iframe>'
        '<script>window.addEventListener("load", function () {'
        ' var p = document.getElementById("f").contentDocument.getElementById("overflow-probe");'
        ' var o = document.createElement("pre"); o.id = "overflow-probe"; o.textContent = p ? p.textContent : "{}";'
        " document.body.appendChild(o); });</script></body></html>",
        encoding="utf-8",
    )
    for name, url, size, width in (("desktop", page, "1280,6000", 1280), ("phone", phone, "500,9000", 390)):
        proc = _browser(binary, tmp_path / "profile", "--dump-dom", f"--window-size={size}", url.as_uri())
        assert proc.returncode == 0, proc.stderr[-2000:]
        result = _probe(proc.stdout)
        assert result["width"] == width, result
        assert result["page"] == width, f"{name}: the page scrolls sideways: {result}"
        assert result["checked"] and result["texts"], result
        assert result["bad"] == [], f"{name}: labels overflow their boxes: {result['bad']}"
        shot = tmp_path / f"{name}.png"
        proc = _browser(binary, tmp_path / "profile", f"--screenshot={shot}", f"--window-size={size}", url.as_uri())
        assert shot.exists(), proc.stderr[-2000:]
        assert _png_size(shot) == tuple(int(x) for x in size.split(","))
        assert shot.stat().st_size > 50_000, "a blank page compresses to a few kB; the report does not"
