"""A suite using every built-in check runs against the local server; the HTML report shows the
reason of every check that failed, and the Markdown report names every failing case."""

from __future__ import annotations

from pathlib import Path

import yaml
from click.testing import CliRunner
from markupsafe import escape

from glmeval.checks import load_builtin
from glmeval.cli import main
from glmeval.report.views import CheckRow, shown_reason
from glmeval.store import Store

SUITE = Path(__file__).parent / "data" / "every_check" / "suite.yaml"


def test_suite_uses_every_builtin_check() -> None:
    registry = load_builtin()
    canonical = {d.fn for d in registry.values() if d.fn.__module__.startswith("glmeval.checks.")}
    used: set[str] = set()
    for case in yaml.safe_load(SUITE.read_text(encoding="utf-8"))["cases"]:
        for check in case["checks"]:
            used.add(check if isinstance(check, str) else check["type"] if "type" in check else next(iter(check)))
    covered = {registry[name].fn for name in used if name in registry}
    missing = sorted(name for name, d in registry.items() if d.fn in canonical - covered)
    assert not missing, f"checks not exercised by {SUITE.name}: {missing}"


def test_every_check_runs_and_the_reports_give_each_failure_its_reason(tmp_path: Path) -> None:
    db, out = tmp_path / "r.db", tmp_path / "reports"
    result = CliRunner().invoke(
        main, ["run", str(SUITE), "--local", "--local-speed", "0", "-q", "--db", str(db), "--out", str(out)]
    )
    assert result.exit_code == 1, result.output
    assert "3 passed, 3 failed, 0 errors of 6 jobs" in result.output
    store = Store(db)
    rows = store.conn.execute(
        "SELECT r.case_id, c.type, c.label, c.passed, c.reason, c.error FROM checks c JOIN results r USING (run_id, job_id)"
    ).fetchall()
    by_case: dict[str, list[bool]] = {}
    for row in rows:
        by_case.setdefault(row["case_id"], []).append(bool(row["passed"]))
        assert not row["error"], f"{row['case_id']} {row['label']}: {row['reason']}"
    for case, verdicts in by_case.items():
        assert all(verdicts) if case.endswith("-pass") else not any(verdicts), case
    page = next(out.rglob("report.html")).read_text(encoding="utf-8")
    markdown = next(out.rglob("report.md")).read_text(encoding="utf-8")
    failed = [r for r in rows if not r["passed"]]
    assert len(failed) == 39
    for row in failed:
        shown = shown_reason(CheckRow(row["label"], row["type"], False, None, row["reason"], False))
        reason = shown.split(": ", 1)[1] if shown.startswith(f"{row['label']}: ") else shown
        assert str(escape(reason)) in page, reason
    for case in ("capital-fail", "json-fail", "tool-fail"):
        assert case in markdown
    assert "expected to contain '上海'" in markdown
