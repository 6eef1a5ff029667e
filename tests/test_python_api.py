"""The Python API across runs: ``glmeval.results(suite=..., runs=...)``, ``glmeval.runs()``, their
dtypes, and the example code of docs/python.md run against a database built here."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import glmeval
from glmeval.analysis.frames import results_frame
from glmeval.cli import main
from glmeval.errors import GlmevalError
from glmeval.store import Store

ROOT = Path(__file__).resolve().parent.parent
SUITES = ROOT / "suites"


def _run(runner: CliRunner, suite: Path, db: Path) -> None:
    result = runner.invoke(main, ["run", str(suite), "--local", "--local-speed", "0", "--db", str(db), "--no-report", "-q"])
    assert result.exit_code in (0, 1), result.output


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two runs of ``greeting`` and one of ``thinking`` (last), in one database."""
    path = tmp_path_factory.mktemp("api") / "api.db"
    runner = CliRunner()
    for name in ("greeting", "greeting", "thinking"):
        _run(runner, SUITES / f"{name}.yaml", path)
    return path


def _stored(db: Path, sql: str, *args: object) -> list[tuple[object, ...]]:
    with Store(db) as store:
        return [tuple(row) for row in store.conn.execute(sql, args)]


def _greeting_runs(db: Path) -> list[str]:
    with Store(db) as store:
        return [info.id for info in store.list_runs(suite="greeting", limit=None, oldest_first=True)]


# -- which runs -------------------------------------------------------------------------------


def test_suite_alone_is_every_run_of_that_suite(db: Path) -> None:
    first, second = _greeting_runs(db)
    df = glmeval.results(db=db, suite="greeting")
    counts = dict(_stored(db, "SELECT run_id, COUNT(*) FROM results GROUP BY run_id"))
    assert len(df) == counts[first] + counts[second] == 72
    assert list(df["run_id"].cat.categories) == [first, second]
    assert df["run_id"].astype(str).drop_duplicates().tolist() == [first, second]  # oldest run first
    assert set(df["suite"]) == {"greeting"}
    assert df["run_started"].is_monotonic_increasing
    assert df.groupby("run_id", observed=True).size().to_dict() == {first: 36, second: 36}


def test_runs_picks_the_last_n_or_the_runs_named(db: Path) -> None:
    first, second = _greeting_runs(db)
    latest = glmeval.results(db=db, suite="greeting", runs=1)
    assert set(latest["run_id"]) == {second} and len(latest) == 36
    assert set(glmeval.results(db=db, suite="greeting", runs=5)["run_id"]) == {first, second}
    assert set(glmeval.results(db=db, suite="greeting", runs=["latest~1"])["run_id"]) == {first}
    named = glmeval.results(db=db, runs=[second, first[:-2]])  # an unambiguous prefix
    assert named["run_id"].astype(str).drop_duplicates().tolist() == [first, second]
    # Without a suite, runs=N is the last N runs of any suite.
    assert set(glmeval.results(db=db, runs=2)["suite"]) == {"greeting", "thinking"}


def test_run_keeps_its_meaning(db: Path) -> None:
    first, second = _greeting_runs(db)
    assert set(glmeval.results(db=db)["suite"]) == {"thinking"}  # the latest run of any suite
    assert set(glmeval.results(db=db, run="latest~1")["run_id"]) == {second}
    assert set(glmeval.results(db=str(db), suite="greeting", run="latest")["run_id"]) == {second}
    assert set(glmeval.results(db=db, run=first)["run_id"]) == {first}


def test_bad_selections_say_what_to_do(db: Path) -> None:
    with pytest.raises(ValueError, match="not both"):
        glmeval.results(db=db, run="latest", runs=2)
    with pytest.raises(ValueError, match="1 or more"):
        glmeval.results(db=db, suite="greeting", runs=0)
    with pytest.raises(GlmevalError, match="did you mean 'greeting'"):
        glmeval.results(db=db, suite="greting")
    with pytest.raises(GlmevalError, match="did you mean 'greeting'"):
        glmeval.runs(db=db, suite="greting")


# -- dtypes -----------------------------------------------------------------------------------


def test_results_have_analysis_dtypes(db: Path) -> None:
    df = glmeval.results(db=db, suite="greeting")
    assert isinstance(df["run_started"].dtype, pd.DatetimeTZDtype) and str(df["run_started"].dt.tz) == "UTC"
    for column in ("run_id", "suite", "model", "variant_id", "mode", "status", "temperature"):
        assert isinstance(df[column].dtype, pd.CategoricalDtype), column
    assert list(df["temperature"].cat.categories) == [0.2, 0.9] and df["temperature"].cat.ordered
    assert set(df[df["temperature"] > 0.2]["temperature"]) == {0.9} and df["temperature"].max() == 0.9
    assert (df["temperature"].astype(float) > 0.5).sum() == 36
    with Store(db) as store:
        variants = store.require_run(_greeting_runs(db)[0]).variants
    assert list(df["variant_id"].cat.categories) == variants  # the grid's order, not completion order
    for column in (
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "latency_ms",
        "ttft_ms",
        "cost",
        "judge_cost",
        "reasoning_tokens",
        "ttfr_ms",
    ):
        assert df[column].dtype == float, column
    assert df["passed"].dtype == bool and df["cached"].dtype == bool
    assert df["max_tokens"].tolist() == [512] * len(df)
    rates = df.groupby(["run_id", "temperature"], observed=True)["passed"].mean()
    assert len(rates) == 4


def test_unknown_numbers_are_nan(db: Path) -> None:
    think = glmeval.results(db=db, suite="thinking")
    # glm-4.7 has no price in the catalogue: its cost is unknown, never ¥0.
    assert think.loc[think["model"] == "glm-4.7", "cost"].isna().all()
    assert think.loc[think["model"] == "glm-5.1", "cost"].notna().all()
    off = think["thinking"] == "off"
    assert off.any() and think.loc[off, "ttfr_ms"].isna().all()
    assert (think.loc[think["thinking"] == "on", "reasoning_tokens"] > 0).all()
    assert isinstance(think["thinking"].dtype, pd.CategoricalDtype)


def test_reports_keep_reading_plain_values(db: Path) -> None:
    """Reports and comparisons read the frame without the analysis dtypes."""
    with Store(db) as store:
        plain = results_frame(store, "latest")
    assert "run_started" not in plain.columns
    assert not isinstance(plain["model"].dtype, pd.CategoricalDtype)
    typed = glmeval.results(db=db)
    assert list(typed.columns.drop("run_started")) == list(plain.columns)
    assert typed["job_id"].tolist() == plain["job_id"].tolist()


# -- glmeval.runs() ---------------------------------------------------------------------------


def test_runs_has_one_row_per_run_with_the_stores_totals(db: Path) -> None:
    runs = glmeval.runs(db=db)
    stored = _stored(db, "SELECT id, suite, status, total_jobs FROM runs ORDER BY started_at")
    assert runs["run_id"].tolist() == [row[0] for row in stored]
    assert runs["suite"].astype(str).tolist() == ["greeting", "greeting", "thinking"]
    totals = {
        row[0]: row[1:]
        for row in _stored(
            db,
            """SELECT run_id, COUNT(*), SUM(status = 'pass'), SUM(status = 'fail'), SUM(status = 'error'),
                      SUM(total_tokens), SUM(cost), SUM(judge_cost) FROM results GROUP BY run_id""",
        )
    }
    for row in runs.itertuples():
        results, passed, failed, errors, tokens, answer_cost, judge_cost = totals[row.run_id]
        assert (row.results, row.passed, row.failed, row.errors) == (results, passed, failed, errors)
        assert row.tokens == tokens
        assert row.answer_cost == pytest.approx(answer_cost)
        assert row.judge_cost == pytest.approx(judge_cost)
        assert row.cost == pytest.approx(row.answer_cost + row.judge_cost)
        assert row.pass_rate == pytest.approx(passed / results)
        assert row.total_jobs == results  # every planned job ran
    assert runs["variants"].tolist() == [4, 4, 5]
    assert runs["local"].all() and not runs["replay"].any()
    assert (runs["status"] == "complete").all()


def test_runs_dtypes(db: Path) -> None:
    runs = glmeval.runs(db=db)
    for column in ("started", "finished"):
        assert isinstance(runs[column].dtype, pd.DatetimeTZDtype), column
    assert (runs["finished"] >= runs["started"]).all()
    assert runs["duration_s"].dtype == float and (runs["duration_s"] >= 0).all()
    assert isinstance(runs["suite"].dtype, pd.CategoricalDtype) and isinstance(runs["status"].dtype, pd.CategoricalDtype)
    assert runs["local"].dtype == bool and runs["replay"].dtype == bool
    for column in ("results", "passed", "failed", "errors", "variants"):
        assert runs[column].dtype == "int64", column
    for column in ("pass_rate", "tokens", "judge_tokens", "answer_cost", "judge_cost", "cost"):
        assert runs[column].dtype == float, column
    assert str(runs["total_jobs"].dtype) == "Int64"


def test_runs_by_suite_and_limit(db: Path) -> None:
    first, second = _greeting_runs(db)
    assert glmeval.runs(db=db, suite="greeting")["run_id"].tolist() == [first, second]
    assert glmeval.runs(db=db, suite="greeting", limit=1)["run_id"].tolist() == [second]
    assert glmeval.runs(db=db, limit=1)["suite"].tolist() == ["thinking"]
    with pytest.raises(ValueError, match="limit"):
        glmeval.runs(db=db, limit=0)


def test_an_empty_database_has_no_runs(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    Store(path).close()
    runs = glmeval.runs(db=path)
    assert runs.empty and "cost" in runs.columns
    with pytest.raises(GlmevalError, match="no runs"):
        glmeval.results(db=path, runs=3)
    with Store(path) as store:
        store.start_run("started", variants=["glm-4"])  # nothing recorded yet
    assert glmeval.results(db=path).empty
    row = glmeval.runs(db=path).iloc[0]
    assert (row["results"], row["cost"], row["status"]) == (0, 0.0, "running")
    assert pd.isna(row["finished"]) and pd.isna(row["pass_rate"])


def test_checks_is_still_callable(db: Path) -> None:
    checks = glmeval.checks(db=str(db), run="latest")
    assert set(checks["job_id"]) == set(glmeval.results(db=db)["job_id"])


# -- docs and import weight -------------------------------------------------------------------


def test_the_docs_example_runs(db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ```python block of docs/python.md, in order, against this database."""
    text = (ROOT / "docs" / "python.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks
    monkeypatch.setenv("GLMEVAL_DB", str(db))
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile("\n".join(blocks), "docs/python.md", "exec"), namespace)
    by_temp = namespace["by_temp"]
    assert isinstance(by_temp, pd.DataFrame)
    assert list(by_temp.columns) == [0.2, 0.9] and len(by_temp) == 2
    history = namespace["history"]
    assert isinstance(history, pd.DataFrame) and len(history) == 2


def test_import_glmeval_loads_no_pandas() -> None:
    code = "import sys, glmeval; glmeval.results; glmeval.runs; print('pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"
