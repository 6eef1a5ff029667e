"""Every malformed suite in tests/bad_suites/ gives one clear message: file, line, exit code 2.

Each corpus file states on its first line what the user must see:
``# expect: LINE: fragment`` (a line of the suite itself) or
``# expect: cases/file.csv:LINE: fragment`` (a line of a case file the suite reads).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from glmeval.cli import main
from glmeval.errors import SuiteError
from glmeval.plan import build_plan
from glmeval.suite import load_suite

BAD = Path(__file__).parent / "bad_suites"
CORPUS = sorted(BAD.glob("*.yaml"))
EXPECT = re.compile(r"^# expect: (?:(?P<file>[^:\s]+\.\w+):)?(?P<line>\d+): (?P<fragment>.+)$")


def expectation(path: Path) -> tuple[Path, int, str]:
    """(file the message must name, its line, the fragment) from the corpus file's first line."""
    first = path.read_text(encoding="utf-8").splitlines()[0]
    match = EXPECT.match(first)
    assert match, f"{path.name}: first line must be '# expect: [file:]LINE: fragment', got {first!r}"
    target = path.parent / match["file"] if match["file"] else path
    return target, int(match["line"]), match["fragment"]


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("error:")]


def test_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 30


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_validate_names_file_line_and_problem(path: Path) -> None:
    target, line, fragment = expectation(path)
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "internal error" not in result.output
    assert f"{target}:{line}:" in result.output, result.output
    assert fragment in result.output, result.output
    assert len(error_lines(result.stderr)) == 1, f"expected one clear message, got:\n{result.stderr}"


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_run_reports_the_same_problem(path: Path, tmp_path: Path) -> None:
    target, line, fragment = expectation(path)
    result = CliRunner().invoke(
        main, ["run", str(path), "--local", "--db", str(tmp_path / "r.db"), "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert f"{target}:{line}:" in result.output and fragment in result.output, result.output


@pytest.mark.parametrize("name", ["unknown_top_key.yaml", "case_file_bad_row.yaml", "sandbox_escape.yaml"])
def test_no_traceback_reaches_the_terminal(name: str) -> None:
    path = BAD / name
    target, line, fragment = expectation(path)
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    proc = subprocess.run(
        [sys.executable, "-m", "glmeval", "validate", str(path)], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr + proc.stdout
    assert f"{target}:{line}:" in proc.stderr and fragment in proc.stderr


def test_validate_reports_every_problem_of_every_file(tmp_path: Path) -> None:
    many = tmp_path / "many.yaml"
    many.write_text(
        "name: many\n"
        "mesages: []\n"
        "params: {temperature: 3, max_token: 5}\n"
        "grid: {model: [glm-4], top_p: [2]}\n"
        "messages: [{role: user, content: hi}]\n"
        "checks: [{contain: x}]\n"
        "cases:\n"
        "  - {id: a, repeat: 0}\n"
        "  - {id: a}\n",
        encoding="utf-8",
    )
    good = tmp_path / "good.yaml"
    good.write_text("name: good\nmessages: [{role: user, content: hi}]\ncases: [{id: a}]\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["validate", str(many), str(BAD / "bad_role.yaml"), str(good)])
    assert result.exit_code == 2
    errors = error_lines(result.stderr)
    for fragment in (
        f"{many}:2: unknown key 'mesages'",
        f"{many}:3: temperature must be a number from 0 to 1",
        f"{many}:3: unknown request parameter 'max_token'",
        f"{many}:4: top_p must be a number from 0 to 1",
        f"{many}:6: unknown check type 'contain'",
        f"{many}:8: cases[0].repeat must be at least 1",
        f"{many}:9: duplicate case id 'a'",
        f"{BAD / 'bad_role.yaml'}:6: messages[1].role",
    ):
        assert any(fragment in e for e in errors), (fragment, errors)
    assert f"{good}: ok (1 job, 1 variant)" in result.stdout


def test_problems_are_ordered_by_line(tmp_path: Path) -> None:
    path = tmp_path / "order.yaml"
    path.write_text(
        "name: order\nmessages: [{role: user, content: hi}]\ncheck: []\nparams: {top_p: 9}\ncases: [{id: a, skip: [1]}]\n",
        encoding="utf-8",
    )
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    lines = [int(p.split(":")[1]) for p in info.value.problems]
    assert lines == sorted(lines) and len(lines) == 3


def test_missing_suite_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["validate", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "nope.yaml: file not found" in result.stderr


def test_case_file_problems_name_the_case_file(tmp_path: Path) -> None:
    (tmp_path / "rows.jsonl").write_text('{"id": "a", "q": "x"}\n[1, 2]\n{"id": "b", "repeat": "x"}\n', encoding="utf-8")
    suite = tmp_path / "s.yaml"
    suite.write_text("name: s\nmessages: [{role: user, content: '{{ q }}'}]\ncases: rows.jsonl\n", encoding="utf-8")
    with pytest.raises(SuiteError) as info:
        load_suite(suite)
    assert info.value.problems == [f"{tmp_path / 'rows.jsonl'}:2: each line must be a JSON object; got list"]


def test_template_problems_of_every_case_are_reported_together(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(
        "name: t\n"
        "messages:\n"
        "  - {role: user, content: '{{ a }} {{ b }}'}\n"
        "cases:\n"
        "  - {id: one, vars: {a: 1}}\n"
        "  - {id: two, vars: {b: 2}}\n"
        "  - {id: three, vars: {a: 1, b: 2}, checks: [{contains: '{{ c }}'}]}\n",
        encoding="utf-8",
    )
    with pytest.raises(SuiteError) as info:
        build_plan(load_suite(path))
    problems = info.value.problems
    assert f"{path}:3: case 'one': message 1 (user): undefined variable 'b'; defined here: a" in problems
    assert f"{path}:3: case 'two': message 1 (user): undefined variable 'a'; defined here: b" in problems
    assert any(p.startswith(f"{path}:7: case 'three': check contains: undefined variable 'c'") for p in problems)
