"""'Distinct answers' in the report (issue 14 item 3): what temperature does to variety, shown."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from glmeval.cli import main
from glmeval.report.load import load_report_data
from glmeval.report.summary import distinct_answers
from glmeval.store import Store

SUITE = """\
name: variety
model: glm-4-flash
grid:
  temperature: [0.01, 0.9]
repeat: 8
messages:
  - {role: user, content: "{{ q }}"}
cases:
  - id: joke
    vars: {q: 讲个笑话}
    checks: [{type: max-chars, value: 200}]
  - id: capital
    vars: {q: 中国的首都是哪里？}
    checks: [{contains: 北京}]
"""


def test_distinct_answers_per_variant_in_summary_effects_and_both_reports(tmp_path: Path) -> None:
    suite = tmp_path / "variety.yaml"
    suite.write_text(SUITE, encoding="utf-8")
    db, out = tmp_path / "r.db", tmp_path / "reports"
    result = CliRunner().invoke(main, ["run", str(suite), "--local", "--local-seed", "5", "--db", str(db), "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    store = Store(db)
    try:
        data = load_report_data(store, store.list_runs("variety")[0].id)
    finally:
        store.close()
    by_temperature = {data.variants[v]["temperature"]: d for v, d in distinct_answers(data.results).items()}
    assert by_temperature[0.01] == 1.0  # greedy: every repeat the same
    assert by_temperature[0.9] >= 2.0  # the joke gets >= 3 phrasings, the capital >= 1
    markdown = next(out.rglob("report.md")).read_text(encoding="utf-8")
    html = next(out.rglob("report.html")).read_text(encoding="utf-8")
    assert "distinct answers" in markdown and "distinct answers" in html
    summary_row = next(line for line in markdown.splitlines() if "temperature=0.01" in line and line.startswith("|"))
    assert "| 1 " in summary_row or "| 1.0 " in summary_row, summary_row
    assert markdown.count("distinct answers") >= 2  # the summary column and the parameter effects
