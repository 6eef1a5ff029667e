"""Reports of big runs: the same numbers from the lean path, a capped matrix, the full data exported.

A run with more results than ``full_limit`` is loaded without its text (every result's
numbers, the text of the worst cases only). The tests set the limits low, so a few hundred
synthesised results (``Store.add_result``, as a user's history holds them) take the big-run
path, and compare it with the ordinary load of the very same run: everything a reader counts
must agree; only the matrix and the failure list show fewer rows, and say so.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from glmeval.cli import main
from glmeval.report import load as report_load
from glmeval.report import load_report_data, views, write_reports
from glmeval.report.demo import synth_run
from glmeval.report.export import EXPORT_COLUMNS, write_csv, write_jsonl
from glmeval.report.html import render_html
from glmeval.report.markdown import render_markdown
from glmeval.store import Store

CAP_CELLS = 20  # 5 cases of 4 variants


@pytest.fixture(autouse=True)
def no_step_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "results.db")
    yield s
    s.close()


def _pair(store: Store, run: str) -> tuple[views.ReportData, views.ReportData]:
    """The run loaded whole and loaded as a big run (lean, capped at CAP_CELLS cells)."""
    whole = load_report_data(store, run)
    big = load_report_data(store, run, full_limit=10, matrix_cells=CAP_CELLS)
    assert whole.scale is None and big.scale is not None
    return whole, big


def test_a_big_run_counts_what_the_whole_load_counts(store: Store) -> None:
    run = synth_run(store, cases=40, repeats=3, error_rate=0.1, seed=3)  # 480 results, 4 variants
    whole, big = _pair(store, run)
    pd.testing.assert_frame_equal(whole.summary.reset_index(drop=True), big.summary.reset_index(drop=True),
                                  check_dtype=False, check_exact=False)
    assert views.totals(big) == views.totals(whole)
    assert views.outcome(big) == views.outcome(whole)
    assert views.failure_items(big)[1] == views.failure_items(whole)[1]
    assert views.best_variants(big.summary) == views.best_variants(whole.summary)
    w_eff, b_eff = views.effects(whole), views.effects(big)
    assert [e.axis for e in b_eff] == [e.axis for e in w_eff] == ["temperature"]
    for we, be in zip(w_eff, b_eff):
        assert be.values == we.values and be.models == we.models
        for key in we.tables:
            pd.testing.assert_frame_equal(we.tables[key], be.tables[key], check_exact=False)


def test_the_capped_matrix_shows_the_worst_cases_and_says_how_many_are_left_out(store: Store) -> None:
    run = synth_run(store, cases=40, repeats=3, error_rate=0.1, seed=3)
    whole, big = _pair(store, run)
    m = views.matrix(big)
    assert len(m.cases) == CAP_CELLS // 4 == len(big.scale.shown)
    assert big.scale.hidden == 40 - len(m.cases)
    full = views.matrix(whole)
    failing = [c for c in full.cases if not full.case_passed(c)]
    assert failing, "the synthesised run must have failing cases"
    assert all(not m.case_passed(c) for c in m.cases[: min(len(failing), len(m.cases))])
    for case in m.cases:  # a shown cell is the whole load's cell, repeat for repeat
        for vid in m.variants:
            a, b = full.cells[(case, vid)], m.cells[(case, vid)]
            assert [x.output for x in b.attempts] == [x.output for x in a.attempts]
            assert b.why() == a.why() and b.label == a.label

    html = render_html(big)
    assert html.count('<details class="case"') == len(m.cases)
    assert f"Showing the {len(m.cases)} worst of 40 cases" in html
    assert f"{big.scale.hidden} are not shown here" in html
    assert f"glmeval report {run} --format csv" in html  # no export written yet: how to make one
    items, total = views.failure_items(big)
    assert total == views.totals(whole)["cells_failed"]
    if total > len(items):
        assert f"and {total - len(items):,} more failing case × variants" in html

    md = render_markdown(big)
    assert f"{40 - 5:,} more cases, worst first above" in md
    assert len(md) < 65_536


def test_small_runs_render_as_before(store: Store) -> None:
    run = synth_run(store, cases=6, repeats=2, seed=1)
    data = load_report_data(store, run)
    assert data.scale is None and data.detail is None
    html = render_html(data)
    assert "scale-note" not in html and "results.csv" not in html
    assert "worst first above" not in render_markdown(load_report_data(store, run))


def test_write_reports_of_a_big_run_links_exports_of_every_result(store: Store, tmp_path: Path) -> None:
    run = synth_run(store, cases=30, repeats=2, error_rate=0.1, seed=5, outputs={"c1": "=HYPERLINK(\"http://x\")"})
    data = load_report_data(store, run, full_limit=10, matrix_cells=CAP_CELLS)
    out = tmp_path / "out"
    written = write_reports(store, run, out, ("md", "html"), data=data)
    assert [p.name for p in written] == ["results.csv", "results.jsonl", "report.md", "report.html"]
    html = (out / "report.html").read_text(encoding="utf-8")
    assert '<a href="results.csv" download>results.csv</a>' in html
    assert "[results.csv](results.csv)" in (out / "report.md").read_text(encoding="utf-8")
    assert not list(out.glob("*.part"))

    stored = store.conn.execute("SELECT COUNT(*) FROM results WHERE run_id = ?", (run,)).fetchone()[0]
    with (out / "results.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == stored == 30 * 4 * 2 and list(rows[0]) == EXPORT_COLUMNS
    lines = (out / "results.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == stored
    assert [r["job_id"] for r in records] == [r["job_id"] for r in rows]
    # Every failing answer says why, in the words the report uses.
    whole = views.matrix(load_report_data(store, run))
    why = {a.job_id: a.why() for cell in whole.cells.values() for a in cell.attempts}
    for r in records:
        assert r["why"] == why[r["job_id"]], r["job_id"]
        assert (r["status"] == "pass") == (r["why"] == "") or r["status"] == "fail"
    assert sum(r["status"] != "pass" for r in records) == sum(r["status"] != "pass" for r in rows)
    # A spreadsheet must not run model output as a formula; JSON Lines keeps it as written.
    c1 = [r for r in rows if r["case_id"] == "c1"]
    assert c1 and all(r["output"].startswith("'=HYPERLINK") for r in c1)
    assert all(r["output"].startswith("=HYPERLINK") for r in records if r["case_id"] == "c1")


def test_exports_stream_in_pages(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages of 7 rows: every result once, in the order the run wrote them."""
    import glmeval.analysis.lean as lean

    run = synth_run(store, cases=5, repeats=3, seed=2)
    monkeypatch.setattr(lean, "PAGE_ROWS", 7)
    order = [r[0] for r in store.conn.execute("SELECT job_id FROM results WHERE run_id = ? ORDER BY rowid", (run,))]
    buf = io.StringIO()
    from glmeval.report import export

    monkeypatch.setattr(export, "PAGE_ROWS", 7)
    assert write_jsonl(store, run, buf) == len(order)
    assert [json.loads(line)["job_id"] for line in buf.getvalue().splitlines()] == order
    pages = list(lean.pages(store, "job_id", run, page=7))
    assert [len(p) for p in pages] == [7] * (len(order) // 7) + ([len(order) % 7] if len(order) % 7 else [])
    other = synth_run(store, cases=2, repeats=1, seed=9)  # another run's rows never leak in
    assert write_csv(store, other, io.StringIO()) == 2 * 4


def test_report_command_exports_and_caps_a_big_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "h.db"
    with Store(db) as s:
        run = synth_run(s, cases=30, repeats=1, seed=4)
    runner = CliRunner()
    res = runner.invoke(main, ["report", run, "--db", str(db), "--format", "csv"])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert len(rows) == 30 * 4

    monkeypatch.setattr(report_load, "FULL_RESULTS", 10)
    monkeypatch.setattr(report_load, "MATRIX_CELLS", CAP_CELLS)
    out = tmp_path / "site"
    res = runner.invoke(main, ["report", run, "--db", str(db), "--format", "html", "--format", "jsonl", "--out", f"{out}/"])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "results.csv", "results.jsonl"]
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Showing the 5 worst of 30 cases" in html and 'href="results.jsonl"' in html
    assert len((out / "results.jsonl").read_text(encoding="utf-8").splitlines()) == 30 * 4


def test_both_engines_give_a_big_run_the_same_report(store_db: Path | str, tmp_path: Path) -> None:
    """The lean path's SQL (pages by rowid, GROUP BY, the job fields) on SQLite and PostgreSQL."""
    with Store(store_db) as s:
        run = synth_run(s, cases=12, repeats=2, error_rate=0.1, seed=8)
        whole = load_report_data(s, run)
        big = load_report_data(s, run, full_limit=10, matrix_cells=CAP_CELLS)
        assert big.scale is not None
        pd.testing.assert_frame_equal(whole.summary, big.summary, check_dtype=False, check_exact=False)
        assert views.totals(big) == views.totals(whole)
        assert views.failure_items(big)[1] == views.failure_items(whole)[1]
        written = write_reports(s, run, tmp_path / "r", ("html",), data=big)
        assert [p.name for p in written] == ["results.csv", "results.jsonl", "report.html"]
        assert len((tmp_path / "r" / "results.jsonl").read_text(encoding="utf-8").splitlines()) == 12 * 4 * 2


def test_the_json_report_of_a_big_run_says_what_it_holds(store: Store) -> None:
    from glmeval.report.jsonreport import report_dict

    run = synth_run(store, cases=30, repeats=1, seed=6)
    whole, big = _pair(store, run)
    out = report_dict(big)
    assert "scale" not in report_dict(whole)
    assert out["scale"]["results"] == 30 * 4 and out["scale"]["hidden_cases"] == 30 - 5
    assert {r["case_id"] for r in out["results"]} == set(big.scale.shown)
    assert all(r["output"] for r in out["results"] if r["status"] != "error")
    assert out["totals"] == report_dict(whole)["totals"]


def test_show_reads_a_big_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``glmeval show`` loads the report data too: a big run's lean frame must serve it."""
    db = tmp_path / "h.db"
    with Store(db) as s:
        run = synth_run(s, cases=30, repeats=2, error_rate=0.1, seed=4)
    runner = CliRunner()
    whole = runner.invoke(main, ["show", run, "--db", str(db)])
    monkeypatch.setattr(report_load, "FULL_RESULTS", 10)
    big = runner.invoke(main, ["show", run, "--db", str(db)])
    assert whole.exit_code == big.exit_code == 0, big.output
    assert big.output.split("failing cases")[0] == whole.output.split("failing cases")[0]
    assert "failing cases (" in big.output
