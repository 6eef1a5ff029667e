"""A suite's check files are its own: two suites in one process never see each other's checks.

The first suite's check file replaces the built-in ``contains`` with one that always fails and
adds ``polite``; the second suite, loaded and run in the same process after it, must still get
the built-in ``contains`` (its answers, its argument validation) and must not know ``polite``.
Checked through the CLI (one ``glmeval run`` / ``validate`` with both files) and through one
pytest session that collects both.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

import glmeval.checks
from glmeval.cli import main

glmeval.checks.load_builtin()

MINE_PY = '''
from glmeval.checks import register


@register("contains")
def mine(completion, spec, ctx):
    return False, "mine always fails"


@register("polite")
def polite(completion, spec, ctx):
    """The answer uses the polite 您."""
    return "您" in completion.text, "looked for 您"
'''

FIRST = """\
name: first
check-files: [mine.py]
messages: [{role: user, content: 你好}]
cases:
  - id: greet
    checks: [{contains: 你好}]
"""

SECOND = """\
name: second
messages: [{role: user, content: 你好}]
cases:
  - id: greet
    checks: [{contains: 你好}]
"""

# The built-in contains takes value and ignore_case only; polite exists only in the first suite.
SECOND_BAD = """\
name: second-bad
messages: [{role: user, content: 你好}]
cases:
  - id: greet
    checks:
      - {contains: 你好, bogus: 1}
      - {polite: true}
"""


def _write(folder: Path, **files: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")


def _cli(args: list[str], tmp_path: Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, [*args, "--db", str(tmp_path / "h.db")] if args[0] == "run" else args)
    return result.exit_code, result.output


def test_cli_run_second_suite_keeps_builtin_contains(tmp_path: Path) -> None:
    _write(tmp_path / "a", **{"first.yaml": FIRST, "mine.py": MINE_PY})
    _write(tmp_path / "b", **{"second.yaml": SECOND})
    code, out = _cli(
        ["run", str(tmp_path / "a" / "first.yaml"), str(tmp_path / "b" / "second.yaml"),
         "--local", "--local-speed", "0", "--out", str(tmp_path / "rep")],
        tmp_path,
    )
    assert code == 1, out
    first = next((tmp_path / "rep").glob("first/*/report.md")).read_text(encoding="utf-8")
    second = next((tmp_path / "rep").glob("second/*/report.md")).read_text(encoding="utf-8")
    assert "mine always fails" in first
    assert "mine always fails" not in second
    assert "1/1" in second or "100%" in second, second


def test_cli_run_order_reversed_is_the_same(tmp_path: Path) -> None:
    _write(tmp_path / "a", **{"first.yaml": FIRST, "mine.py": MINE_PY})
    _write(tmp_path / "b", **{"second.yaml": SECOND})
    code, out = _cli(
        ["run", str(tmp_path / "b" / "second.yaml"), str(tmp_path / "a" / "first.yaml"),
         "--local", "--local-speed", "0", "--out", str(tmp_path / "rep")],
        tmp_path,
    )
    assert code == 1, out
    second = next((tmp_path / "rep").glob("second/*/report.md")).read_text(encoding="utf-8")
    assert "mine always fails" not in second


def test_cli_validate_second_suite_keeps_builtin_validation(tmp_path: Path) -> None:
    _write(tmp_path / "a", **{"first.yaml": FIRST, "mine.py": MINE_PY})
    _write(tmp_path / "b", **{"second-bad.yaml": SECOND_BAD})
    second = tmp_path / "b" / "second-bad.yaml"
    code, out = _cli(["validate", str(tmp_path / "a" / "first.yaml"), str(second)], tmp_path)
    assert code == 2, out
    assert f"{second}:6: check contains: unknown argument 'bogus'" in out
    assert f"{second}:7: unknown check type 'polite'" in out
    alone_code, alone = _cli(["validate", str(second)], tmp_path)
    assert alone_code == 2
    assert sorted(line for line in alone.splitlines() if str(second) in line) == sorted(
        line for line in out.splitlines() if str(second) in line
    )


def test_loading_a_suite_leaves_the_builtin_registry_alone(tmp_path: Path) -> None:
    from glmeval.suite import load_suite

    _write(tmp_path, **{"first.yaml": FIRST, "mine.py": MINE_PY})
    before = glmeval.checks.REGISTRY["contains"]
    suite = load_suite(tmp_path / "first.yaml")
    assert suite.check_registry["contains"].fn.__name__ == "mine"
    assert "polite" in suite.check_registry
    assert glmeval.checks.REGISTRY["contains"] is before
    assert "polite" not in glmeval.checks.REGISTRY


def test_pytest_session_with_both_suites(pytester: pytest.Pytester) -> None:
    pytester.makefile(".glmeval.yaml", first=FIRST, second=SECOND)
    pytester.makefile(".py", mine=MINE_PY)
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:benchmark", "--glmeval-local", "--glmeval-local-speed", "0", "-v")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*first.glmeval.yaml::greet* FAILED*", "*second.glmeval.yaml::greet* PASSED*"])
    assert "mine always fails" in result.stdout.str()
