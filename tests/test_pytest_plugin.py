"""The pytest plugin, end to end: suite files become test items run against the local server.

Each test builds a small project with ``pytester`` (copies of the example suites named
``*.glmeval.yaml`` plus one deliberately failing suite) and runs pytest on it, in-process or,
for pytest-xdist, in a subprocess, then checks what a CI user would look at: the outcome
counts, the test ids, the failure text, the JUnit XML and the stored run.
"""

from __future__ import annotations

import sqlite3
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

# Import what the plugin loads lazily once, here: pytester's in-process runs drop modules first
# imported inside them, so each run would otherwise re-import (and assertion-rewrite) them all.
import glmeval.checks
import glmeval.plan
import glmeval.pytest_plugin.fixture
import glmeval.report
import glmeval.run.runner
import glmeval.session
import glmeval.simulator
import glmeval.suite

glmeval.checks.load_builtin()
try:  # hypothesis's pytest plugin imports this at every session end
    import hypothesis.internal.observability  # noqa: F401
except ImportError:  # pragma: no cover
    pass

ROOT = Path(__file__).resolve().parent.parent
SUITES = ROOT / "suites"

# Fast, offline, and independent of the caller's key or database.
# (pytest-benchmark, when installed, warns about xdist in every inner session.)
BASE = ["-p", "no:cacheprovider", "-p", "no:benchmark"]
LOCAL = [*BASE, "--glmeval-local", "--glmeval-local-speed", "0"]

# One case whose check fails (the answer says 北京).
FAILING_SUITE = """\
name: failing
tags: [smoke]
grid:
  model: [glm-4]
messages:
  - role: user
    content: "{{ question }}"
cases:
  - id: wrong-capital
    tags: [geo]
    vars: {question: 中国的首都是哪里？}
    checks:
      - contains: 上海
"""

# An unknown model gets HTTP 400 from the local server: an *error* (no answer), not a failure.
ERROR_SUITE = """\
name: broken-model
grid:
  model: [glm-no-such-model]
messages:
  - role: user
    content: 你好
cases:
  - id: hello
    checks:
      - contains: 你好
"""

GREETING_IDS = [
    f"greeting.glmeval.yaml::{case}[{model}-temperature={t}]"
    for case in ("hello", "capital", "weather-tool")
    for model in ("glm-4", "glm-3-turbo")
    for t in ("0.2", "0.9")
]
MULTI_IDS = [
    f"multi-turn.glmeval.yml::{case}[{model}]"
    for case in ("remembers-name", "capital-follow-up")
    for model in ("glm-4", "glm-4-flash")
]


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A project with two example suites, one failing case, one erroring case and a YAML
    file that is not a suite (and must be left alone)."""
    monkeypatch.delenv("GLMEVAL_DB", raising=False)
    pytester.makefile(".glmeval.yaml", greeting=(SUITES / "greeting.yaml").read_text(encoding="utf-8"))
    pytester.makefile(".glmeval.yml", **{"multi-turn": (SUITES / "multi-turn.yaml").read_text(encoding="utf-8")})
    pytester.makefile(".glmeval.yaml", failing=FAILING_SUITE, errors=ERROR_SUITE)
    pytester.makefile(".yaml", other=(SUITES / "tool-result.yaml").read_text(encoding="utf-8"))
    return pytester


def _runs(db: Path) -> list[tuple[str, str, str, int]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT id, suite, status, total_jobs FROM runs").fetchall()


def _result_count(db: Path, run_id: str) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT count(*) FROM results WHERE run_id = ?", (run_id,)).fetchone()[0]


def _junit(path: Path) -> dict[str, ET.Element]:
    root = ET.parse(path).getroot()
    return {f"{tc.get('classname')}::{tc.get('name')}": tc for tc in root.iter("testcase")}


# 12 greeting + 4 multi-turn pass; failing::wrong-capital fails; broken-model::hello errors.
EXPECTED = {"passed": 16, "failed": 1, "errors": 1}
TOTAL_JOBS = 12 * 3 + 4 + 1 + 1


def _check_junit(path: Path) -> None:
    cases = _junit(path)
    assert "greeting.glmeval.yaml::capital[glm-4-temperature=0.2]" in cases
    assert "multi-turn.glmeval.yml::remembers-name[glm-4-flash]" in cases
    assert not any(k.startswith("other") for k in cases)
    failure = cases["failing.glmeval.yaml::wrong-capital[glm-4]"].find("failure")
    assert failure is not None
    assert "contains 上海" in failure.get("message", "")
    assert "北京" in failure.get("message", "")  # the answer excerpt
    error = cases["errors.glmeval.yaml::hello[glm-no-such-model]"].find("error")
    assert error is not None
    assert "got no answer" in error.get("message", "")
    assert "HTTP 400" in error.get("message", "")
    passed = cases["greeting.glmeval.yaml::hello[glm-3-turbo-temperature=0.9]"]
    assert passed.find("failure") is None and passed.find("error") is None
    props = {p.get("name"): p.get("value") for p in passed.iter("property")}
    assert props["glmeval_passed"] == "3/3"


def test_collects_only_suite_files_with_stable_ids(project: pytest.Pytester) -> None:
    result = project.runpytest(*BASE, "--collect-only", "-q")
    ids = [line for line in result.outlines if "::" in line]
    assert ids == [
        "errors.glmeval.yaml::hello[glm-no-such-model]",
        "failing.glmeval.yaml::wrong-capital[glm-4]",
        *GREETING_IDS,
        *MULTI_IDS,
    ]
    assert not any("other.yaml" in line for line in result.outlines)
    # Collecting runs nothing: no server, no database.
    assert not (project.path / ".glmeval").exists()


def test_runs_suites_against_the_local_server(project: pytest.Pytester) -> None:
    result = project.runpytest(*LOCAL, "--junitxml=junit.xml")
    result.assert_outcomes(**EXPECTED)
    result.stdout.fnmatch_lines(
        [
            "*_ wrong-capital[[]glm-4[]] _*",
            "wrong-capital [[]glm-4[]]: failed: contains 上海",
            "FAILED contains 上海: expected to contain '上海'*",
            "answer: '中国的首都是北京*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of hello[[]glm-no-such-model[]]*",
            "hello [[]glm-no-such-model[]]: 1 of 1 repeat(s) got no answer*",
            "*HTTP 400*",
        ]
    )
    assert "Traceback" not in result.stdout.str()
    assert "glmeval/pytest_plugin.py" not in result.stdout.str()
    _check_junit(project.path / "junit.xml")
    runs = _runs(project.path / ".glmeval" / "results.db")
    assert len(runs) == 1
    run_id, suite, status, total = runs[0]
    assert (suite, status, total) == ("broken-model+failing+greeting+multi-turn", "complete", TOTAL_JOBS)
    assert _result_count(project.path / ".glmeval" / "results.db", run_id) == TOTAL_JOBS
    result.stdout.fnmatch_lines([f"run {run_id} (complete): {TOTAL_JOBS} jobs stored in *results.db"])


def test_xdist_workers_join_one_run(project: pytest.Pytester) -> None:
    db = project.path / "ci.db"
    result = project.runpytest_subprocess(*LOCAL, "-n", "2", "--junitxml=junit.xml", f"--glmeval-db={db}")
    result.assert_outcomes(**EXPECTED)
    result.stdout.fnmatch_lines(["*FAILED contains 上海*"])
    result.stdout.fnmatch_lines(["*got no answer*"])
    _check_junit(project.path / "junit.xml")
    runs = _runs(db)
    assert len(runs) == 1, runs
    run_id, suite, status, total = runs[0]
    assert (suite, status, total) == ("broken-model+failing+greeting+multi-turn", "complete", TOTAL_JOBS)
    assert _result_count(db, run_id) == TOTAL_JOBS
    result.stdout.fnmatch_lines([f"run {run_id} (complete): {TOTAL_JOBS} jobs from 2 workers stored in *ci.db"])


def test_bad_suite_is_one_collection_error(pytester: pytest.Pytester) -> None:
    pytester.makefile(
        ".glmeval.yaml",
        bad="name: bad\nmessages:\n  - role: usr\n    content: hi\ncases:\n  - id: a\n",
    )
    result = pytester.runpytest(*BASE, "--glmeval-local")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*ERROR collecting bad.glmeval.yaml*", "bad.glmeval.yaml:3: *role must be one of*"])
    assert "Traceback" not in result.stdout.str()


def test_without_key_or_local_each_item_fails_with_one_message(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ZHIPUAI_API_KEY", raising=False)
    monkeypatch.delenv("ZHIPU_API_KEY", raising=False)
    result = project.runpytest(*BASE, "failing.glmeval.yaml", "multi-turn.glmeval.yml")
    result.assert_outcomes(failed=5)
    result.stdout.fnmatch_lines(["*set ZHIPUAI_API_KEY*or pass --glmeval-local*"])
    assert "Traceback" not in result.stdout.str()
    assert not (project.path / ".glmeval").exists()


def test_markers_keywords_and_selection(project: pytest.Pytester) -> None:
    # Tags are registered markers: --strict-markers accepts them and -m selects by them.
    result = project.runpytest(*BASE, "--collect-only", "-q", "--strict-markers", "-m", "geo")
    assert [line for line in result.outlines if "::" in line] == ["failing.glmeval.yaml::wrong-capital[glm-4]"]
    # -k deselection: only the selected items' jobs run.
    result = project.runpytest(*LOCAL, "-k", "capital and glm-3-turbo")
    result.assert_outcomes(passed=2, deselected=16)
    runs = _runs(project.path / ".glmeval" / "results.db")
    assert runs[-1][3] == 6  # 2 items x 3 repeats
    assert _result_count(project.path / ".glmeval" / "results.db", runs[-1][0]) == 6


def test_model_override_and_exitfirst(project: pytest.Pytester) -> None:
    result = project.runpytest(
        *BASE, "--collect-only", "-q", "--glmeval-model", "glm-4-flash", "multi-turn.glmeval.yml"
    )
    assert [line for line in result.outlines if "::" in line] == [
        "multi-turn.glmeval.yml::remembers-name[glm-4-flash]",
        "multi-turn.glmeval.yml::capital-follow-up[glm-4-flash]",
    ]
    result = project.runpytest(*LOCAL, "-x", "failing.glmeval.yaml", "multi-turn.glmeval.yml")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*stopping after 1 failures*"])


def test_repeats_aggregate_by_threshold(pytester: pytest.Pytester) -> None:
    # A check that fails on the first repeat only: 2 of 3 pass.
    body = """\
name: flaky
model: glm-4
repeat: 3
messages:
  - {role: user, content: 你好}
cases:
  - id: strict
    checks:
      - python: "job.repeat != 0"
  - id: tolerant
    threshold: 0.6
    checks:
      - python: "job.repeat != 0"
  - id: later
    skip: not ready yet
"""
    pytester.makefile(".glmeval.yaml", flaky=body)
    result = pytester.runpytest(*LOCAL, "-rs")
    result.assert_outcomes(passed=1, failed=1, skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED *flaky.glmeval.yaml*not ready yet"])
    result.stdout.fnmatch_lines(["strict [[]glm-4[]]: 2 of 3 repeats passed (every repeat must pass)*", "repeat 1:"])


def test_glmeval_suites_ini_and_testpaths(pytester: pytest.Pytester) -> None:
    pytester.mkdir("suites")
    (pytester.path / "suites" / "multi-turn.yaml").write_text(
        (SUITES / "multi-turn.yaml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    (pytester.path / "suites" / "greeting.yaml").write_text("not: a suite\n", encoding="utf-8")
    pytester.mkdir("tests")
    (pytester.path / "tests" / "test_code.py").write_text("def test_code():\n    pass\n", encoding="utf-8")
    pytester.makeini("[pytest]\ntestpaths = tests\nglmeval_suites = suites/multi-turn.yaml\n")
    # Plain `pytest`: testpaths plus the listed suite (and not the other YAML beside it).
    result = pytester.runpytest(*BASE, "--collect-only", "-q")
    assert [line for line in result.outlines if "::" in line] == [
        "tests/test_code.py::test_code",
        "suites/multi-turn.yaml::remembers-name[glm-4]",
        "suites/multi-turn.yaml::remembers-name[glm-4-flash]",
        "suites/multi-turn.yaml::capital-follow-up[glm-4]",
        "suites/multi-turn.yaml::capital-follow-up[glm-4-flash]",
    ]
    # Paths on the command line win, as for Python tests.
    result = pytester.runpytest(*BASE, "--collect-only", "-q", "tests")
    assert [line for line in result.outlines if "::" in line] == ["tests/test_code.py::test_code"]


def test_glm_fixture_and_report(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    monkeypatch.delenv("GLMEVAL_DB", raising=False)
    pytester.makepyfile(
        test_prompts="""
        def test_capital(glm):
            answer = glm.chat("中国的首都是哪里？", model="glm-4", temperature=0.2)
            results = glm.check(answer, {"contains": "北京"}, {"type": "max-chars", "value": 200})
            assert [r.passed for r in results] == [True, True]

        def test_wrong(glm):
            answer = glm.chat([{"role": "user", "content": "中国的首都是哪里？"}], mode="stream")
            glm.check(answer, {"contains": "上海"})

        def test_plain_text_needs_no_server(glm):
            glm.check('{"a": 1}', "is-json")

        def test_bad_check_arguments(glm):
            glm.check("北京", {"max-chars": "many"})
        """
    )
    result = pytester.runpytest(*LOCAL, "--glmeval-report", "out")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(["*ValueError: glm.check argument 1: check max-chars:*"])
    result.stdout.fnmatch_lines(
        ["*AssertionError: glm.check: 1 of 1 check(s) failed", "*FAILED contains 上海*", "*answer: '中国的首都是北京*"]
    )
    db = pytester.path / ".glmeval" / "results.db"
    (run_id, suite, status, _total), = _runs(db)
    assert (suite, status) == ("pytest", "complete")
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT case_id, status FROM results ORDER BY case_id").fetchall()
    assert rows == [("test_prompts.py::test_capital", "pass"), ("test_prompts.py::test_wrong", "fail")]
    assert (pytester.path / "out" / "report.md").is_file()
    result.stdout.fnmatch_lines(["report: *report.md"])


def test_plugin_is_inert_without_suites(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="def test_ok():\n    pass\n")
    pytester.makefile(".yaml", config="name: not-a-suite\ncases: []\n")
    result = pytester.runpytest(*BASE, "--glmeval-report", "out")
    result.assert_outcomes(passed=1)
    assert " glmeval -" not in result.stdout.str()  # no summary section
    assert not (pytester.path / ".glmeval").exists()
    assert not (pytester.path / "out").exists()


def test_replay_and_baseline_report(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    db = project.path / ".glmeval" / "results.db"
    project.runpytest(*LOCAL, "multi-turn.glmeval.yml").assert_outcomes(passed=4)
    (first, *_), = _runs(db)
    # Replay answers from the cache (the local server's answers stay in its own namespace).
    result = project.runpytest(
        *LOCAL, "--glmeval-replay", "--glmeval-report", "out", "--glmeval-baseline", first, "multi-turn.glmeval.yml"
    )
    result.assert_outcomes(passed=4)
    second = _runs(db)[-1][0]
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT sum(cached) FROM results WHERE run_id = ?", (second,)).fetchone()[0] == 4
    report = (project.path / "out" / "report.md").read_text(encoding="utf-8")
    assert second in report and f"Against baseline `{first}`" in report


def test_baseline_latest_means_the_run_before_this_session(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    db = project.path / ".glmeval" / "results.db"
    project.runpytest(*LOCAL, "multi-turn.glmeval.yml").assert_outcomes(passed=4)
    (first, *_), = _runs(db)
    result = project.runpytest(*LOCAL, "--glmeval-report", "out", "--glmeval-baseline", "latest", "multi-turn.glmeval.yml")
    result.assert_outcomes(passed=4)
    report = (project.path / "out" / "report.md").read_text(encoding="utf-8")
    assert f"Against baseline `{first}`" in report
