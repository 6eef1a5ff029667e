"""Costs that add up: a run with model-graded checks reports answer cost + grading cost as its
cost everywhere (show, runs, compare, the reports, the summary frame), with the grading share
shown apart; --max-cost counts (and expects) what the judge spends."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from glmeval.analysis.frames import results_frame, run_cost, summary_frame
from glmeval.cli import main
from glmeval.store import Store

SUITE = """\
name: costs
grid:
  model: [glm-4, glm-3-turbo]
params: {do_sample: false}
cases:
  - id: capital
    messages: [{role: user, content: 中国的首都是哪里？}]
    checks:
      - llm-rubric: 回答提到北京
  - id: wrong
    messages: [{role: user, content: 中国的首都是哪里？}]
    checks:
      - contains: 上海
      - llm-rubric: 回答说首都是上海
"""


def _yuan(text: str) -> float:
    return float(text.lstrip("¥"))


@pytest.fixture(scope="module")
def graded_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """One local run of SUITE: its database, its reports folder and its terminal output."""
    tmp = tmp_path_factory.mktemp("costs")
    suite, db, out = tmp / "suite.yaml", tmp / "r.db", tmp / "reports"
    suite.write_text(SUITE, encoding="utf-8")
    result = CliRunner().invoke(main, ["run", str(suite), "--local", "--local-speed", "0", "--db", str(db), "--out", str(out)])
    assert result.exit_code == 1, result.output  # `wrong` fails on purpose
    assert CliRunner().invoke(main, ["report", "latest", "--db", str(db), "--format", "json", "--out", str(out / "report.json")]).exit_code == 0
    return db, out, result.output


def _stored(db: Path) -> tuple[float, float]:
    with Store(db) as store:
        row = store.conn.execute("SELECT SUM(cost) AS a, SUM(judge_cost) AS j FROM results").fetchone()
    return float(row["a"]), float(row["j"])


def test_the_run_spent_on_grading(graded_run: tuple[Path, Path, str]) -> None:
    answers, grading = _stored(graded_run[0])
    assert answers > 0 and grading > 0


def test_summary_frame_cost_is_answers_plus_grading(graded_run: tuple[Path, Path, str]) -> None:
    db = graded_run[0]
    with Store(db) as store:
        res = results_frame(store)
    summary = summary_frame(res).set_index("variant")
    for variant, g in res.groupby("variant_id"):
        s = summary.loc[variant]
        assert s["answer_cost"] == pytest.approx(g["cost"].sum())
        assert s["grader_cost"] == pytest.approx(g["judge_cost"].sum()) and s["grader_cost"] > 0
        assert s["judge_cost"] == s["grader_cost"]  # the older name stays
        assert s["cost"] == pytest.approx(s["answer_cost"] + s["grader_cost"])
    answers, grading = _stored(db)
    assert summary["cost"].sum() == pytest.approx(answers + grading)


def test_show_runs_and_reports_agree_on_the_total(graded_run: tuple[Path, Path, str]) -> None:
    db, out, run_output = graded_run
    answers, grading = _stored(db)
    total = f"¥{answers + grading:.4f} (¥{grading:.4f} grading)"
    assert total in run_output  # the terminal summary after the run

    shown = CliRunner().invoke(main, ["show", "--db", str(db)]).output
    assert re.search(r"^\s+cost  " + re.escape(total) + "$", shown, re.M), shown
    runs = CliRunner().invoke(main, ["runs", "--db", str(db)]).output
    assert total in runs, runs
    listed = json.loads(CliRunner().invoke(main, ["runs", "--json", "--db", str(db)]).output)[0]
    assert listed["cost"] == pytest.approx(answers + grading) and listed["judge_cost"] == pytest.approx(grading)

    markdown = next(out.rglob("report.md")).read_text(encoding="utf-8")
    header = next(line for line in markdown.splitlines() if "answers passed" in line)
    assert header.endswith(total), header
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    t = report["totals"]
    assert t["cost"] == pytest.approx(answers + grading)
    assert (t["answer_cost"], t["grader_cost"]) == (pytest.approx(answers), pytest.approx(grading))
    assert sum(s["cost"] for s in report["summary"]) == pytest.approx(t["cost"])


def test_history_and_compare_count_grading(graded_run: tuple[Path, Path, str]) -> None:
    db = graded_run[0]
    with Store(db) as store:
        summary = summary_frame(results_frame(store)).set_index("variant")
    glm4 = summary.loc["glm-4"]
    history = CliRunner().invoke(main, ["history", "costs", "--variant", "glm-4", "--db", str(db)]).output
    assert f"¥{glm4['cost']:.4f} (¥{glm4['grader_cost']:.4f} grading)" in history, history
    compared = CliRunner().invoke(main, ["compare", "latest", "--variants", "glm-4", "glm-3-turbo", "--db", str(db)])
    assert compared.exit_code == 0, compared.output
    cost_row = next(line.split() for line in compared.output.splitlines() if line.strip().startswith("cost "))
    assert _yuan(cost_row[1]) == pytest.approx(glm4["cost"], abs=1e-4)
    grading_row = next(line.split() for line in compared.output.splitlines() if "of it grading" in line)
    assert _yuan(grading_row[3]) == pytest.approx(glm4["grader_cost"], abs=1e-4)


def test_fail_on_cost_counts_grading(graded_run: tuple[Path, Path, str]) -> None:
    """An absolute cost gate on the answers' price alone would pass; with grading it trips."""
    from glmeval.analysis.gate import evaluate, head_metrics, parse_rules

    db = graded_run[0]
    with Store(db) as store:
        metrics = head_metrics(store, store.resolve_run("latest"))
        res = results_frame(store)
    answers = res[res["variant_id"] == "glm-4"]["cost"].sum()
    m = metrics["glm-4"]
    assert m["cost"] == pytest.approx(answers + m["grader_cost"])
    [trip] = [t for t in evaluate(parse_rules([f"cost>{answers * 1.01:.6f}"]), metrics, None) if t.variant == "glm-4"]
    assert "grading" in trip.message


def test_an_unknown_price_stays_unknown_unless_grading_spent() -> None:
    assert math.isnan(run_cost(float("nan"), 0.0))
    assert run_cost(float("nan"), 0.02) == 0.02
    assert run_cost(0.01, 0.02) == pytest.approx(0.03)
    res = pd.DataFrame(
        {
            "variant_id": ["a", "a", "b"], "case_id": ["x", "y", "x"], "model": ["m", "m", "n"],
            "status": ["pass", "fail", "pass"], "cached": [False, False, False], "latency_ms": [1, 2, 3],
            "ttft_ms": [None] * 3, "prompt_tokens": [1, 1, 1], "completion_tokens": [1, 1, 1], "total_tokens": [2, 2, 2],
            "cost": [None, None, None], "judge_cost": [0.0, 0.0, 0.5],
        }
    )
    summary = summary_frame(res).set_index("variant")
    assert math.isnan(summary.at["a", "cost"]) and math.isnan(summary.at["a", "answer_cost"])
    assert summary.at["b", "cost"] == 0.5 and summary.at["b", "grader_cost"] == 0.5


ONE = """\
name: one
model: glm-4
params: {do_sample: false}
repeat: 4
cases:
  - id: capital
    messages: [{role: user, content: 中国的首都是哪里？}]
    checks:
      - llm-rubric: 回答提到北京
"""


def test_max_cost_counts_and_expects_the_grading(tmp_path: Path) -> None:
    """Each answer costs far less than its grading: a budget that counted answers alone would
    let every job run; one that did not expect the grading would overshoot by a judge call."""
    suite, db = tmp_path / "one.yaml", tmp_path / "r.db"
    suite.write_text(ONE, encoding="utf-8")
    free = CliRunner().invoke(main, ["run", str(suite), "--local", "--local-speed", "0", "--db", str(tmp_path / "free.db"), "--no-report"])
    assert free.exit_code == 0, free.output
    answers, grading = _stored(tmp_path / "free.db")
    assert grading > 3 * answers
    budget = (answers + grading) / 4 * 2.5  # room for two graded jobs, not three
    result = CliRunner().invoke(
        main,
        ["run", str(suite), "--local", "--local-speed", "0", "--db", str(db), "--no-report", "-j", "1", "--max-cost", f"{budget:.6f}"],
    )
    assert result.exit_code == 1, result.output
    [run] = Store(db).list_runs()
    spent_answers, spent_grading = _stored(db)
    assert run.status == "budget"
    assert 0 < spent_answers + spent_grading <= budget
    assert "budget reached after 2 of 4 jobs" in result.output


def test_python_runs_frame_cost_is_answers_plus_grading(graded_run: tuple[Path, Path, str]) -> None:
    import glmeval

    db = graded_run[0]
    [row] = glmeval.runs(db=db).to_dict("records")
    answers, grading = _stored(db)
    assert row["answer_cost"] == pytest.approx(answers)
    assert row["judge_cost"] == pytest.approx(grading)
    assert row["cost"] == pytest.approx(answers + grading)
