"""History commands (runs, show, compare, history, export, import) and the pandas API."""

from __future__ import annotations

import csv
import io
import json
import os
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import glmeval
from glmeval.analysis.compare import compare_runs
from glmeval.analysis.frames import summary_frame
from glmeval.cli import main
from glmeval.store import Store
from glmeval.store.transfer import export_run, import_run

SUITE = textwrap.dedent(
    """\
    name: hist
    mode: sync
    grid:
      model: [glm-4, glm-3-turbo]
      temperature: [0.2]
    params: {max_tokens: 256}
    repeat: 2
    messages:
      - {role: user, content: "{{ question }}"}
    cases:
      - id: hello
        tags: [smoke]
        vars: {question: 你好}
        checks:
          - contains-any: [你好, 您好]
      - id: capital
        vars: {question: 中国的首都是哪里？}
        checks:
          - contains: 北京
          - {type: max-chars, value: 200}
    """
)


def run_suite(runner: CliRunner, tmp_path: Path, db: Path, text: str = SUITE) -> str:
    suite = tmp_path / "hist.yaml"
    suite.write_text(text, encoding="utf-8")
    result = runner.invoke(main, ["run", str(suite), "--local", "--local-speed", "0", "--db", str(db), "--no-report", "-q"])
    assert result.exit_code in (0, 1), result.output
    with Store(db) as store:
        return store.resolve_run("latest")


@pytest.fixture(scope="module")
def history_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two runs of the same suite in one database (module-scoped: the local server is not free)."""
    tmp = tmp_path_factory.mktemp("hist")
    runner = CliRunner()
    db = tmp / "h.db"
    run_suite(runner, tmp, db)
    run_suite(runner, tmp, db, SUITE.replace("contains: 北京", "contains: 上海"))
    return db


# -- pandas API -------------------------------------------------------------------------------


def test_results_frame_is_tidy(history_db: Path) -> None:
    df = glmeval.results(db=str(history_db), run="latest~1")
    assert len(df) == 8  # 2 cases x 2 variants x 2 repeats: one row per result
    assert df["job_id"].is_unique
    for col in ("case_id", "variant_id", "repeat", "model", "status", "passed", "output", "latency_ms", "cost", "temperature", "max_tokens", "tags", "threshold"):
        assert col in df.columns, col
    assert set(df["temperature"]) == {0.2}
    assert set(df["max_tokens"]) == {256}
    assert df["passed"].dtype == bool
    assert set(df.loc[df["case_id"] == "hello", "tags"]) == {"smoke"}
    assert df.groupby("model")["passed"].mean().to_dict() == {"glm-3-turbo": 1.0, "glm-4": 1.0}


def test_checks_frame_one_row_per_check(history_db: Path) -> None:
    checks = glmeval.checks(db=str(history_db), run="latest")
    results = glmeval.results(db=str(history_db), run="latest")
    # hello has 1 check, capital 2; per variant and repeat.
    assert len(checks) == 2 * 2 * (1 + 2)
    assert set(checks["job_id"]) == set(results["job_id"])
    failed = checks[~checks["passed"]]
    assert set(failed["case_id"]) == {"capital"} and set(failed["label"]) == {"contains 上海"}


def test_summary_frame_has_wilson_interval_and_case_counts(history_db: Path) -> None:
    summary = summary_frame(glmeval.results(db=str(history_db), run="latest"))
    row = summary.iloc[0]
    assert row["pass_rate"] == 0.5 and row["jobs"] == 4
    assert 0.0 < row["pass_rate_lo"] < 0.5 < row["pass_rate_hi"] < 1.0
    assert (row["cases"], row["cases_passed"], row["case_pass_rate"]) == (2, 1, 0.5)
    assert summary_frame(pd.DataFrame()).columns.tolist()[-5:] == ["pass_rate_lo", "pass_rate_hi", "cases", "cases_passed", "case_pass_rate"]


def test_frames_of_a_missing_database_say_so(tmp_path: Path) -> None:
    from glmeval.errors import GlmevalError

    with pytest.raises(GlmevalError, match="no results database"):
        glmeval.results(db=str(tmp_path / "none.db"))


# -- commands ---------------------------------------------------------------------------------


def test_runs_lists_newest_first_and_filters(history_db: Path) -> None:
    runner = CliRunner()
    out = runner.invoke(main, ["runs", "--db", str(history_db)])
    assert out.exit_code == 0, out.output
    with Store(history_db) as store:
        newest, oldest = [r.id for r in store.list_runs()]
    assert out.output.index(newest) < out.output.index(oldest)
    assert "8/8" in out.output and "4/8" in out.output and "simulated" in out.output
    limited = runner.invoke(main, ["runs", "--db", str(history_db), "--limit", "1"])
    assert newest in limited.output and oldest not in limited.output
    other = runner.invoke(main, ["runs", "--db", str(history_db), "--suite", "nope"])
    assert other.exit_code == 0 and "no runs of suite 'nope'" in other.output and "suites: hist" in other.output
    as_json = json.loads(runner.invoke(main, ["runs", "--db", str(history_db), "--json"]).output)
    assert [r["id"] for r in as_json] == [newest, oldest]


def test_show_prints_summary_with_intervals(history_db: Path) -> None:
    runner = CliRunner()
    out = runner.invoke(main, ["show", "latest", "--db", str(history_db)])
    assert out.exit_code == 0, out.output
    assert "pass rate [95% CI]" in out.output
    assert "50% [15%–85%]" in out.output  # 2 of 4 answers
    assert "failing cases (2):" in out.output and "capital  [glm-4 temperature=0.2]  0/2 repeats passed" in out.output
    assert "local GLM server" in out.output
    by_env = CliRunner(env={"GLMEVAL_DB": str(history_db)}).invoke(main, ["show"])
    assert by_env.exit_code == 0 and "hist" in by_env.output


def test_compare_command_and_variants(history_db: Path) -> None:
    runner = CliRunner()
    out = runner.invoke(main, ["compare", "latest~1", "latest", "--db", str(history_db)])
    assert out.exit_code == 0, out.output
    assert "2 regressed, 0 fixed across 2 variants" in out.output
    assert "HEAD passes 1 fewer case of 2; p = 1.00 (could be chance)" in out.output
    data = json.loads(runner.invoke(main, ["compare", "latest~1", "--db", str(history_db), "--json"]).output)
    assert sorted(data["regressions"]) == [["glm-3-turbo temperature=0.2", "capital"], ["glm-4 temperature=0.2", "capital"]]
    same = runner.invoke(main, ["compare", "latest", "latest", "--db", str(history_db)])
    assert same.exit_code == 2 and "same run" in same.output
    variants = runner.invoke(main, ["compare", "latest~1", "--variants", "glm-3-turbo", "glm-4", "--db", str(history_db)])
    assert variants.exit_code == 0, variants.output
    assert "glm-4 temperature=0.2 and glm-3-turbo temperature=0.2 pass the same 2 of 2 cases" in variants.output
    gated = runner.invoke(main, ["compare", "latest~1", "latest", "--db", str(history_db), "--fail-on", "pass-rate<-10%"])
    assert gated.exit_code == 1 and "fail-on pass-rate<-10%: glm-4 temperature=0.2 pass rate 50% vs 100% (-50.0 pts)" in gated.output


def test_history_shows_each_variant_run_after_run(history_db: Path) -> None:
    runner = CliRunner()
    out = runner.invoke(main, ["history", "hist", "--db", str(history_db)])
    assert out.exit_code == 0, out.output
    assert "== glm-4 temperature=0.2 ==" in out.output and "== glm-3-turbo temperature=0.2 ==" in out.output
    block = out.output.split("== glm-4 temperature=0.2 ==")[1].split("==")[0]
    lines = [line for line in block.splitlines() if line.startswith("2")]
    assert len(lines) == 2
    assert "100% [34%–100%] (2/2)" in lines[0] and "50% [9%–91%] (1/2)" in lines[1] and "-50 pts" in lines[1]
    one = runner.invoke(main, ["history", "hist", "--db", str(history_db), "--variant", "glm-4", "--json"])
    rows = json.loads(one.output)
    assert [r["case_pass_rate"] for r in rows] == [1.0, 0.5]
    missing = runner.invoke(main, ["history", "nope", "--db", str(history_db)])
    assert missing.exit_code == 2 and "no runs of suite 'nope'" in missing.output


def test_export_csv_and_jsonl(history_db: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = runner.invoke(main, ["export", "latest", "--format", "csv", "--db", str(history_db)])
    assert out.exit_code == 0, out.output
    rows = list(csv.DictReader(io.StringIO(out.output)))
    assert len(rows) == 8 and rows[0]["temperature"] == "0.2"
    target = tmp_path / "out" / "r.jsonl"
    written = runner.invoke(main, ["export", "latest", "--format", "jsonl", "--out", str(target), "--db", str(history_db)])
    assert written.exit_code == 0, written.output
    records = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert len(records) == 8
    capital = next(r for r in records if r["case_id"] == "capital")
    assert [c["label"] for c in capital["checks"]] == ["contains 上海", "max-chars 200"]
    assert capital["passed"] is False


def test_export_import_between_databases_and_compare(history_db: Path, tmp_path: Path) -> None:
    """The issue's CI story: run into A, export, import into B, compare A's run in B with a new run."""
    runner = CliRunner()
    with Store(history_db) as store:
        base_id = store.resolve_run("latest~1")
    export_file = tmp_path / "base.json"
    out = runner.invoke(main, ["export", base_id, "--out", str(export_file), "--db", str(history_db)])
    assert out.exit_code == 0, out.output
    data = json.loads(export_file.read_text(encoding="utf-8"))
    assert data["format"] == "glmeval-run" and data["run"]["id"] == base_id and len(data["results"]) == 8

    db_b = tmp_path / "b.db"
    first = runner.invoke(main, ["import", str(export_file), "--db", str(db_b)])
    assert first.exit_code == 0, first.output
    assert f"run {base_id} (hist, 8 results) imported" in first.output
    again = runner.invoke(main, ["import", str(export_file), "--db", str(db_b)])
    assert again.exit_code == 0 and "already present" in again.output
    replaced = runner.invoke(main, ["import", str(export_file), "--db", str(db_b), "--replace"])
    assert "replaced" in replaced.output
    with Store(db_b) as store:
        assert [r.id for r in store.list_runs()] == [base_id]
        assert store.run_counts([base_id])[base_id]["results"] == 8
        info = store.require_run(base_id)
        assert info.imported_at and info.origin
    # The imported run reads back exactly as it was stored in A.
    a = glmeval.results(db=str(history_db), run=base_id)
    b = glmeval.results(db=str(db_b), run=base_id)
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(glmeval.checks(db=str(history_db), run=base_id), glmeval.checks(db=str(db_b), run=base_id))

    # A new run in B (the prompt broke), gated against the imported baseline.
    suite = tmp_path / "hist.yaml"
    suite.write_text(SUITE.replace("contains: 北京", "contains: 上海"), encoding="utf-8")
    gated = runner.invoke(
        main,
        ["run", str(suite), "--local", "--local-speed", "0", "--db", str(db_b), "--no-report", "-q",
         "--baseline", base_id[:12], "--fail-on", "regression"],
    )
    assert gated.exit_code == 1, gated.output
    assert "fail-on regression: glm-4 temperature=0.2 regressed 1 case: capital" in gated.output
    with Store(db_b) as store:
        cmp = compare_runs(store, base_id, "latest")
        assert sorted(cmp.regressions) == [("glm-3-turbo temperature=0.2", "capital"), ("glm-4 temperature=0.2", "capital")]
        # Exported JSON of the imported run re-imports anywhere: export(import(x)) keeps every result.
        again_data = export_run(store, base_id)
    assert len(again_data["results"]) == 8
    with Store(tmp_path / "c.db") as store_c:
        assert import_run(store_c, again_data)[1] == "imported"


def test_import_rejects_files_that_are_not_exports(tmp_path: Path) -> None:
    runner = CliRunner()
    db = tmp_path / "x.db"
    not_json = tmp_path / "a.json"
    not_json.write_text("{nope", encoding="utf-8")
    other = tmp_path / "b.json"
    other.write_text('{"hello": 1}', encoding="utf-8")
    for path, message in [(not_json, "not JSON"), (other, "not a glmeval run export"), (tmp_path / "missing.json", "no such file")]:
        out = runner.invoke(main, ["import", str(path), "--db", str(db)])
        assert out.exit_code == 2, out.output
        assert message in out.output
        assert len(out.output.strip().splitlines()) == 1


def test_unknown_run_reference_is_one_line(history_db: Path) -> None:
    out = CliRunner().invoke(main, ["show", "zzz", "--db", str(history_db)])
    assert out.exit_code == 2
    assert out.output.strip().splitlines() == [f"error: no run 'zzz' in {history_db}; `glmeval runs` lists them"]


# -- a corrupt database: one clear line and exit 2, for every command ---------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["runs"],
        ["show", "latest"],
        ["compare", "latest~1", "latest"],
        ["history", "hist"],
        ["export", "latest"],
        ["export", "latest", "--format", "csv"],
        ["import", "{export}"],
        ["run", "{suite}", "--local", "--no-report", "-q"],
        ["run", "{suite}", "--local", "--no-report", "-q", "--baseline", "latest", "--fail-on", "regression"],
    ],
)
def test_corrupt_database_is_one_line_and_exit_2(args: list[str], tmp_path: Path) -> None:
    db = tmp_path / "corrupt.db"
    db.write_bytes(b"SQLite format 3\x00" + os.urandom(8192))
    export = tmp_path / "run.json"
    export.write_text(json.dumps({"format": "glmeval-run", "format_version": 1, "run": {}, "results": []}), encoding="utf-8")
    suite = tmp_path / "s.yaml"
    suite.write_text(SUITE, encoding="utf-8")
    argv = [a.format(export=export, suite=suite) for a in args] + ["--db", str(db)]
    out = CliRunner().invoke(main, argv)
    assert out.exit_code == 2, out.output
    lines = out.output.strip().splitlines()
    assert len(lines) == 1, out.output
    assert lines[0].startswith(f"error: {db}: not a usable glmeval database")


def test_random_bytes_database_too(tmp_path: Path) -> None:
    db = tmp_path / "noise.db"
    db.write_bytes(os.urandom(3000))
    out = CliRunner().invoke(main, ["runs", "--db", str(db)])
    assert out.exit_code == 2 and "not a usable glmeval database" in out.output


def test_corrupt_database_through_the_console_entry_point(tmp_path: Path) -> None:
    import subprocess
    import sys

    db = tmp_path / "corrupt.db"
    db.write_bytes(os.urandom(2048))
    proc = subprocess.run(
        [sys.executable, "-m", "glmeval", "runs", "--db", str(db)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        f"error: {db}: not a usable glmeval database (file is not a database); point --db at another file or move this one aside"
    ]
