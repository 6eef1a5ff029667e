"""A suite's own Python checks (check-files) join the registry and run like built-ins."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from glmeval.cli import main

CHECKS_PY = '''
from glmeval.checks import register


@register("mentions-capital")
def mentions_capital(completion, spec, ctx):
    """The answer names the capital given in the case's vars."""
    city = ctx.vars["capital"]
    return city in completion.text, f"looked for {city!r}"


def shorter_than(completion, spec, ctx):
    return len(completion.text) < int(spec.value), f"{len(completion.text)} chars"


CHECKS = {"shorter-than": shorter_than}
'''

SUITE = """name: local-checks
check-files: [my_checks.py]
messages: [{role: user, content: 中国的首都是哪里？}]
cases:
  - id: right
    vars: {capital: 北京}
    checks: [{mentions-capital: true}, {shorter-than: 500}]
  - id: wrong
    vars: {capital: 上海}
    checks: [{mentions-capital: true}]
"""


def _invoke(args: list[str], tmp_path: Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, args)
    return result.exit_code, result.output


def test_local_check_file_runs_and_reports_reasons(tmp_path: Path) -> None:
    (tmp_path / "my_checks.py").write_text(CHECKS_PY, encoding="utf-8")
    suite = tmp_path / "s.yaml"
    suite.write_text(SUITE, encoding="utf-8")
    code, out = _invoke(
        ["run", str(suite), "--local", "--local-speed", "0", "-q", "--db", str(tmp_path / "r.db"), "--out", str(tmp_path / "rep")],
        tmp_path,
    )
    assert code == 1, out
    assert "1 passed, 1 failed" in out
    report = next((tmp_path / "rep").rglob("report.md")).read_text(encoding="utf-8")
    assert "looked for '上海'" in report


def test_missing_check_file_names_the_line(tmp_path: Path) -> None:
    suite = tmp_path / "s.yaml"
    suite.write_text(SUITE, encoding="utf-8")
    code, out = _invoke(["validate", str(suite)], tmp_path)
    assert code == 2
    assert f"{suite}:2: check file 'my_checks.py' not found" in out


def test_broken_check_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "my_checks.py").write_text("raise RuntimeError('boom')\n", encoding="utf-8")
    suite = tmp_path / "s.yaml"
    suite.write_text(SUITE, encoding="utf-8")
    code, out = _invoke(["validate", str(suite)], tmp_path)
    assert code == 2
    assert "cannot load check file 'my_checks.py': RuntimeError: boom" in out
    assert "Traceback" not in out
