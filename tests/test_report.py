"""Reports from stored runs: Markdown, JSON, JUnit, the views they share, and ``glmeval report``.

Runs are put in a real Store with ``Store.add_result`` (synthesised records from
``glmeval.report.demo``), so every test renders exactly what a user's history would hold.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from glmeval.analysis.compare import Comparison
from glmeval.analysis.frames import results_frame, summary_frame
from glmeval.cli import main
from glmeval.records import CheckResult, CheckSpec, Completion, ErrorInfo, Job, Result
from glmeval.report import FILE_NAMES, load_report_data, views, write_reports
from glmeval.report.demo import synth_run
from glmeval.report.jsonreport import render_json
from glmeval.report.junit import render_junit
from glmeval.report.markdown import MAX_MARKDOWN, md_escape, render_markdown, render_step_summary, summary_table
from glmeval.store import Store

XSS = '<script>alert(1)</script><img src=x onerror=alert(2)> **bold** | pipe @octocat ![i](http://e.invalid/p.png)'


@pytest.fixture(autouse=True)
def no_step_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests must not write into a real GitHub job summary when CI runs them on Actions."""
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "results.db")
    yield s
    s.close()


def _job(case: str, variant: dict, repeat: int = 0, threshold: float | None = None) -> Job:
    from glmeval.plan import variant_label

    label = variant_label(variant)
    return Job(
        id=f"{case}-{label}-{repeat}", suite="hand", case_id=case, variant_id=label, variant=variant, repeat=repeat,
        model=variant["model"], mode="sync", messages=[{"role": "user", "content": f"question {case}"}],
        params={"temperature": variant.get("temperature", 0.5)}, checks=[CheckSpec("contains", {"value": "x"})],
        threshold=threshold,
    )


def _result(job: Job, status: str, text: str = "answer", latency: float = 100.0, cost: float = 0.001) -> Result:
    if status == "error":
        return Result(job, Completion(error=ErrorInfo("server", "boom", 500)), [], False, 0.0, 0.0)
    ok = status == "pass"
    check = CheckResult("contains", ok, 1.0 if ok else 0.0, "found x" if ok else "x not found", label="contains x")
    completion = Completion(text=text, prompt_tokens=10, completion_tokens=20, total_tokens=30, latency_ms=latency, ttft_ms=latency / 4)
    return Result(job, completion, [check], ok, 1.0 if ok else 0.0, cost)


# -- escaping ----------------------------------------------------------------------------------


def test_markdown_escapes_model_output(store: Store) -> None:
    run = synth_run(store, cases=3, repeats=1, outputs={"xss": XSS})
    md = render_markdown(load_report_data(store, run))
    assert "<script" not in md and "<img" not in md
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in md
    assert "@octocat" not in md, "an @mention in model output must not ping anyone from a PR comment"
    assert "![i]" not in md, "model output must not render images in a PR comment"
    # a pipe inside a cell is escaped, so every table row keeps its column count
    import re

    rows = [line for line in md.splitlines() if line.startswith("| xss") and "alert" in line]
    assert rows and all(len(re.findall(r"(?<!\\)\|", r)) == 6 for r in rows), rows


def test_md_escape_truncates_with_note() -> None:
    text = "长" * 500
    out = md_escape(text, 100)
    assert out.startswith("长" * 99) and "(+401 chars)" in out
    assert md_escape("a\nb|c") == "a b\\|c"


def test_junit_and_json_carry_markup_as_text(store: Store) -> None:
    run = synth_run(store, cases=3, repeats=1, outputs={"xss": XSS + "\x00\x1b"})
    data = load_report_data(store, run)
    root = ET.fromstring(render_junit(data).encode("utf-8"))  # well-formed despite control characters
    outs = [el.text or "" for el in root.iter("system-out")]
    assert any("<script>alert(1)</script>" in t for t in outs), "XML escapes the text; parsed back it is intact"
    doc = json.loads(render_json(data))
    assert any(r["output"].startswith("<script>") for r in doc["results"])


# -- markdown content ------------------------------------------------------------------------------


def test_markdown_sections_and_marks(store: Store) -> None:
    run = synth_run(store, cases=6, repeats=2, local=True, replay=True)
    md = render_markdown(load_report_data(store, run))
    for heading in ("# glmeval report: demo", "## Summary by variant", "## Cases × variants", "## Failures", "## Parameter effects"):
        assert heading in md
    assert "**Simulated run**" in md and "**Replayed from the response cache**" in md
    assert "glm-4 temperature=0.2" in md and "`glm-3-turbo`" in md
    assert "concurrency=8" in md, "settings are in the header"
    assert "### temperature" in md
    assert "**" in summary_table(load_report_data(store, run).summary), "best values are bold"
    assert "## Trends" not in md, "one run has no trend"


def test_summary_table_plain_for_terminal(store: Store) -> None:
    run = synth_run(store, cases=4, repeats=2)
    table = summary_table(load_report_data(store, run).summary, tablefmt="simple")
    assert "**" not in table and "pass rate (95% CI)" in table


def test_summary_table_accepts_plain_summary_frame(store: Store) -> None:
    """``glmeval run`` and others pass summary_frame's output straight in."""
    run = synth_run(store, cases=2, repeats=1)
    plain = summary_frame(results_frame(store, run), store.get_run(run).variants)
    assert "glm-4 temperature=0.2" in summary_table(plain)


def test_long_markdown_is_truncated_with_note(store: Store) -> None:
    run = synth_run(store, cases=120, repeats=1, outputs={f"c{i}": "很长的回答" * 60 for i in range(120)})
    md = render_markdown(load_report_data(store, run), limit=8_000)
    assert len(md) <= 8_000 and "report truncated" in md
    full = render_markdown(load_report_data(store, run))
    assert len(full) <= MAX_MARKDOWN
    assert "more cases (all shown in report.html)" in full and "more failing cells" in full


def test_step_summary_appended(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = synth_run(store, cases=3, repeats=1)
    target = tmp_path / "step_summary.md"
    target.write_text("earlier step\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(target))
    write_reports(store, run, tmp_path / "out", ("md",))
    text = target.read_text(encoding="utf-8")
    assert text.startswith("earlier step\n"), "appended, never overwritten"
    assert "## Summary by variant" in text and "## Cases × variants" not in text, "the compact form"
    assert render_step_summary(load_report_data(store, run)) in text


# -- verdicts, effects, trends, baseline ---------------------------------------------------------


def test_cell_verdicts_follow_threshold(store: Store) -> None:
    run = store.start_run("hand", variants=["glm-4"])
    v = {"model": "glm-4"}
    for i, status in enumerate(["pass", "pass", "fail"]):  # 2 of 3 with threshold 0.6: passes
        store.add_result(run, _result(_job("lenient", v, i, threshold=0.6), status))
    for i, status in enumerate(["pass", "pass", "fail"]):  # default: every repeat must pass
        store.add_result(run, _result(_job("strict", v, i), status))
    for i, status in enumerate(["pass", "error"]):
        store.add_result(run, _result(_job("flaky-net", v, i), status))
    data = load_report_data(store, run)
    m = views.matrix(data)
    cells = {c: m.cells[(c, "glm-4")] for c in m.cases}
    assert cells["lenient"].passed and cells["lenient"].kind == "partial" and cells["lenient"].label == "2/3"
    assert not cells["strict"].passed and cells["strict"].kind == "partial"
    assert not cells["flaky-net"].passed and cells["flaky-net"].kind == "error"
    assert "error (server)" in cells["flaky-net"].why()
    # the summary's case counts agree with the cells
    assert data.summary.loc[0, "cases_passed"] == 1 and data.summary.loc[0, "cases"] == 3


def test_summary_case_counts_agree_with_case_frame(store: Store) -> None:
    """The summary's vectorised case verdicts match case_frame's group-by-group ones."""
    from glmeval.analysis.frames import case_frame

    run = synth_run(store, cases=15, repeats=3, error_rate=0.1)
    results = results_frame(store, run)
    summary = summary_frame(results, store.get_run(run).variants).set_index("variant")
    per_case = case_frame(results).groupby("variant_id")["passed"].agg(["size", "sum"])
    for variant, row in per_case.iterrows():
        assert summary.at[variant, "cases"] == row["size"]
        assert summary.at[variant, "cases_passed"] == row["sum"]
    assert summary["jobs"].sum() == len(results)
    assert summary["errors"].sum() == int((results["status"] == "error").sum())


def test_parameter_effects_pivot(store: Store) -> None:
    run = store.start_run("hand")
    for model, temp, statuses, latency in (
        ("glm-4", 0.2, ["pass", "pass"], 100.0),
        ("glm-4", 0.9, ["pass", "fail"], 300.0),
        ("glm-3-turbo", 0.2, ["fail", "fail"], 50.0),
        ("glm-3-turbo", 0.9, ["pass", "fail"], 70.0),
    ):
        for i, status in enumerate(statuses):
            store.add_result(run, _result(_job(f"c{i}", {"model": model, "temperature": temp}), status, latency=latency))
    effects = views.effects(load_report_data(store, run))
    assert [e.axis for e in effects] == ["temperature"]
    eff = effects[0]
    assert eff.values == ["0.2", "0.9"] and eff.numeric
    rate = eff.tables["pass_rate"]
    assert rate.at["0.2", "glm-4"] == 1.0 and rate.at["0.9", "glm-4"] == 0.5 and rate.at["0.2", "glm-3-turbo"] == 0.0
    assert eff.tables["latency_p50_ms"].at["0.9", "glm-4"] == 300.0
    assert eff.tables["cost"].at["0.2", "glm-4"] == pytest.approx(0.001)
    rows = eff.long_rows()
    assert len(rows) == 4 and rows[0]["n"] == 2


def test_trends_across_runs(store: Store) -> None:
    runs = [synth_run(store, cases=4, repeats=1, seed=s, quality_shift=-0.1 * s) for s in range(3)]
    data = load_report_data(store, runs[-1])
    tr = views.trends(data)
    assert tr.runs == runs and tr.enough
    assert set(tr.series) == {"pass_rate", "latency_p50_ms", "cost"}
    assert len(tr.series["pass_rate"]["glm-4 temperature=0.2"]) == 3
    assert "## Trends (last 3 runs" in render_markdown(data)
    # an older run's report does not see the future
    assert views.trends(load_report_data(store, runs[0])).runs == runs[:1]


def test_history_points_are_each_runs_own_figures(store: Store) -> None:
    """The trend points are counted by the database (no run read whole): each must equal
    what the run's own results give: answers, pass rate, median fresh latency, cost."""
    from glmeval.analysis.frames import results_frame
    from glmeval.report.load import load_history

    runs = [synth_run(store, cases=5, repeats=2, seed=s, quality_shift=-0.1 * s) for s in range(3)]
    history = load_history(store, store.require_run(runs[-1]))
    assert list(dict.fromkeys(history["run_id"])) == runs
    for run_id in runs:
        res = results_frame(store, run_id)
        for variant, g in res.groupby("variant_id"):
            point = history[(history["run_id"] == run_id) & (history["variant"] == variant)].iloc[0]
            fresh = g[(~g["cached"].astype(bool)) & (g["status"] != "error")]["latency_ms"]
            assert point["jobs"] == len(g)
            assert point["pass_rate"] == pytest.approx((g["status"] == "pass").mean())
            assert point["latency_p50_ms"] == pytest.approx(fresh.median())
            cost = pd.to_numeric(g["cost"], errors="coerce").fillna(0) + pd.to_numeric(g["judge_cost"], errors="coerce").fillna(0)
            assert point["cost"] == pytest.approx(cost.sum())


def test_baseline_regressions_before_fixes(store: Store) -> None:
    v = {"model": "glm-4"}
    base = store.start_run("hand", variants=["glm-4"])
    store.add_result(base, _result(_job("was-good", v), "pass"))
    store.add_result(base, _result(_job("was-bad", v), "fail"))
    head = store.start_run("hand", variants=["glm-4"])
    store.add_result(head, _result(_job("was-good", v), "fail"))
    store.add_result(head, _result(_job("was-bad", v), "pass"))
    data = load_report_data(store, head, baseline=base)
    assert isinstance(data.comparison, Comparison)
    md = render_markdown(data)
    assert "## Against baseline" in md and "**1 regression** ❌" in md
    i_reg, i_fix, i_delta = md.index("### Regressions"), md.index("### Fixes"), md.index("### Metric deltas")
    assert i_reg < i_fix < i_delta
    assert "was-good" in md[i_reg:i_fix] and "was-bad" in md[i_fix:i_delta]
    doc = json.loads(render_json(data))
    assert doc["baseline"]["base"] == base and doc["baseline"]["variants"][0]["regressed"] == ["was-good"]


def test_recorded_baseline_is_used(store: Store) -> None:
    base = synth_run(store, cases=3, repeats=1, seed=1)
    head = synth_run(store, cases=3, repeats=1, seed=2)
    store.set_baseline(head, base)
    assert load_report_data(store, head).baseline.id == base
    assert load_report_data(store, head, recorded_baseline=False).baseline is None


# -- junit and json ----------------------------------------------------------------------------------


def test_junit_one_testcase_per_case_and_variant(store: Store) -> None:
    run = store.start_run("hand", variants=["glm-4", "glm-3-turbo"])
    for model in ("glm-4", "glm-3-turbo"):
        v = {"model": model}
        store.add_result(run, _result(_job("ok", v), "pass"))
        store.add_result(run, _result(_job("bad", v), "fail"))
        store.add_result(run, _result(_job("down", v), "error"))
    root = ET.fromstring(render_junit(load_report_data(store, run)).encode("utf-8"))
    cases = list(root.iter("testcase"))
    assert len(cases) == 6
    assert root.get("tests") == "6" and root.get("failures") == "2" and root.get("errors") == "2"
    bad = next(c for c in cases if c.get("name") == "bad [glm-4]")
    failure = bad.find("failure")
    assert failure is not None and "contains x: x not found" in failure.get("message", "")
    down = next(c for c in cases if c.get("name") == "down [glm-3-turbo]")
    assert down.find("error") is not None and down.find("error").get("type") == "server"
    assert [s.get("name") for s in root.iter("testsuite")] == ["hand [glm-4]", "hand [glm-3-turbo]"]


def test_json_report_is_the_whole_run(store: Store) -> None:
    run = synth_run(store, cases=4, repeats=2, error_rate=0.3)
    doc = json.loads(render_json(load_report_data(store, run)))
    assert doc["schema"] == "glmeval.report/1" and doc["run"]["id"] == run and doc["simulated"] is True
    assert len(doc["results"]) == 4 * 4 * 2 and len(doc["cells"]) == 16
    assert len(doc["checks"]) == sum(1 for r in doc["results"] if r["status"] != "error") * 3
    errored = [r for r in doc["results"] if r["status"] == "error"]
    assert errored and errored[0]["latency_ms"] is None, "NaN becomes null"
    first = doc["results"][0]
    assert first["request"]["messages"][1]["role"] == "user" and first["variant"]["model"] == "glm-4"
    assert {s["variant"] for s in doc["summary"]} == set(doc["variants"])


# -- write_reports and the CLI -------------------------------------------------------------------


def test_write_reports_every_format(store: Store, tmp_path: Path) -> None:
    run = synth_run(store, cases=3, repeats=1)
    written = write_reports(store, run, tmp_path / "out", ("md", "html", "json", "junit"))
    assert [p.name for p in written] == [FILE_NAMES[f] for f in ("md", "html", "json", "junit")]
    assert all(p.stat().st_size > 500 for p in written)


def test_report_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "h.db"
    with Store(db) as s:
        first = synth_run(s, cases=3, repeats=1, seed=1)
        second = synth_run(s, cases=3, repeats=1, seed=2)
    runner = CliRunner()
    res = runner.invoke(main, ["report", "latest", "--db", str(db)])
    assert res.exit_code == 0, res.output
    assert res.output.startswith("# glmeval report: demo") and second in res.output

    res = runner.invoke(main, ["report", first[:20], "--db", str(db), "--format", "junit"])
    assert res.exit_code == 0 and res.output.startswith("<?xml"), res.output

    out = tmp_path / "site"
    res = runner.invoke(
        main, ["report", "latest", "--baseline", "latest~1", "--db", str(db), "--format", "html", "--format", "json", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert (out / "report.html").exists() and json.loads((out / "report.json").read_text())["run"]["id"] == second

    res = runner.invoke(main, ["report", "latest", "--db", str(db), "--format", "md", "--out", str(tmp_path / "r.md")])
    assert res.exit_code == 0 and (tmp_path / "r.md").read_text().startswith("# glmeval report")

    monkeypatch.chdir(tmp_path)
    res = runner.invoke(main, ["report", "latest", "--db", str(db), "--format", "html"])
    assert res.exit_code == 0 and (tmp_path / "reports" / "demo" / second / "report.html").exists()

    res = runner.invoke(main, ["report", "nope", "--db", str(db)])
    assert res.exit_code == 2 and "no run 'nope'" in res.output
    res = runner.invoke(main, ["report", "latest", "--baseline", "latest", "--db", str(db)])
    assert res.exit_code == 2 and "the run itself" in res.output


def test_run_command_writes_reports_end_to_end(tmp_path: Path) -> None:
    """The real path: local server, real SDK, a reply full of markup, ``glmeval run`` writing md + html."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n  - name: markup\n    match: markup please\n"
        "    reply: \"<script>alert(1)</script><img src=x onerror=alert(2)> | pipe\"\n",
        encoding="utf-8",
    )
    suite = tmp_path / "markup.yaml"
    suite.write_text(
        "name: markup\nmode: sync\ngrid:\n  model: [glm-4, glm-3-turbo]\ncases:\n"
        "  - id: markup\n    messages:\n      - {role: user, content: markup please}\n    checks:\n      - contains: 北京\n"
        "  - id: capital\n    messages:\n      - {role: user, content: 中国的首都是哪里？}\n    checks:\n      - contains: 北京\n",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    res = CliRunner().invoke(
        main, ["run", str(suite), "--local", "--local-speed", "0", "--rules", str(rules), "--db", str(tmp_path / "r.db"),
               "--out", str(out), "-q"]
    )
    assert res.exit_code == 1, res.output  # the markup case fails its check
    [folder] = list((out / "markup").iterdir())
    html = (folder / "report.html").read_text(encoding="utf-8")
    md = (folder / "report.md").read_text(encoding="utf-8")
    for text in (html, md):
        assert "<script>alert" not in text and "<img src=x" not in text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "Simulated run" in html and "Simulated run" in md
