"""Readable output: `show` says why each failing case failed, counts read as English, the
report header gives the budget in words, and `compare --variants A B` names them in order."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from glmeval.cli import main
from glmeval.report.markdown import plural, settings_text

SUITE = """\
name: readable
model: glm-4
params: {do_sample: false}
cases:
  - id: capital
    messages: [{role: user, content: 中国的首都是哪里？}]
    checks:
      - contains: 北京
  - id: wrong
    messages: [{role: user, content: 中国的首都是哪里？}]
    checks:
      - contains: 上海
      - not-contains: 北京
"""


def _run(tmp_path: Path, text: str, *args: str) -> tuple[Path, Path, str]:
    suite, db, out = tmp_path / "suite.yaml", tmp_path / "r.db", tmp_path / "reports"
    suite.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(
        main, ["run", str(suite), "--local", "--local-speed", "0", "--db", str(db), "--out", str(out), *args]
    )
    assert result.exit_code in (0, 1), result.output
    return db, out, result.output


def test_show_gives_each_failing_case_its_reasons(tmp_path: Path) -> None:
    db, _, _ = _run(tmp_path, SUITE)
    out = CliRunner().invoke(main, ["show", "--db", str(db)]).output
    assert "failing cases (1):" in out
    lines = out.splitlines()
    at = lines.index("  wrong  [glm-4]  0/1 repeat passed")
    reasons = lines[at + 1 : at + 3]
    assert reasons[0].strip().startswith("- contains 上海: expected to contain '上海'"), reasons
    assert reasons[1].strip().startswith("- not-contains 北京: "), reasons
    assert "capital  [" not in out


def test_show_lists_the_first_failing_cases_and_counts_the_rest(tmp_path: Path) -> None:
    """A big run can fail tens of thousands of cases: ``show`` lists ``--failures`` of them."""
    many = SUITE.split("cases:")[0] + "cases:\n" + "".join(
        f"  - id: w{i}\n    messages: [{{role: user, content: 中国的首都是哪里？}}]\n    checks: [{{contains: 上海}}]\n" for i in range(7)
    )
    db, _, _ = _run(tmp_path, many)
    out = CliRunner().invoke(main, ["show", "--db", str(db), "--failures", "3"]).output
    assert "failing cases (7):" in out
    listed = [line for line in out.splitlines() if line.startswith("  w")]
    assert len(listed) == 3 and len({line.split()[0] for line in listed}) == 3  # in the order the run wrote them
    assert "  … and 4 more; every result: glmeval report " in out and "--format csv" in out
    everything = CliRunner().invoke(main, ["show", "--db", str(db)]).output
    assert "… and" not in everything and len([line for line in everything.splitlines() if line.startswith("  w")]) == 7


def test_plurals_and_the_budget_in_words(tmp_path: Path) -> None:
    db, out, terminal = _run(tmp_path, SUITE, "--max-cost", "0.05")
    assert "readable: 2 jobs, 1 variant against the local GLM server" in terminal
    assert "1 passed, 1 failed, 0 errors of 2 jobs" in terminal
    markdown = next(out.rglob("report.md")).read_text(encoding="utf-8")
    assert "2 cases × 1 variant: " in markdown and "1 variants" not in markdown
    assert "budget: ¥0.0500 max cost" in markdown
    assert "max\\_cost" not in markdown and "{" not in next(line for line in markdown.splitlines() if "**Settings**" in line)
    shown = CliRunner().invoke(main, ["show", "--db", str(db)]).output
    assert "budget: ¥0.0500 max cost" in shown


def test_plural_and_settings_helpers() -> None:
    assert [plural(n, "variant") for n in (0, 1, 2)] == ["0 variants", "1 variant", "2 variants"]
    assert plural(1, "fix", "fixes") == "1 fix" and plural(3, "fix", "fixes") == "3 fixes"
    assert settings_text({"budget": {"max_cost": 0.05, "max_tokens": None}}) == "budget: ¥0.0500 max cost"
    assert settings_text({"budget": {"max_cost": None, "max_tokens": 20000}, "retries": 3}) == "budget: 20,000 max tokens, retries=3"
    assert settings_text({"limits": {"glm-4": {"rpm": 60}}}) == "limits: glm-4 rpm 60"
    assert settings_text({}) == "defaults"


def test_compare_variants_header_in_the_order_given(tmp_path: Path) -> None:
    two = SUITE.replace("model: glm-4\n", "grid:\n  model: [glm-4, glm-3-turbo]\n")
    db, _, _ = _run(tmp_path, two)
    for a, b in (("glm-4", "glm-3-turbo"), ("glm-3-turbo", "glm-4")):
        result = CliRunner().invoke(main, ["compare", "latest", "--variants", a, b, "--db", str(db)])
        assert result.exit_code == 0, result.output
        assert f"== {a} vs {b} ==" in result.output, result.output
        header = next(line.split() for line in result.output.splitlines() if line.strip().startswith("metric"))
        assert header[1:3] == [a, b]
