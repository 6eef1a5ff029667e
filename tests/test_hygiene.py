"""Hostile and careless input, and what users see: an honest headline, no credential in
anything glmeval writes, no raw control or bidi character in a report or on the terminal, and
``validate`` reporting every problem in one pass.

Runs go through the real CLI against the local server over loopback; reports, the database
file and the terminal are read back as a user (or an attacker reading a PR comment) would.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

import glmeval
from glmeval.cli import main
from glmeval.percent import percent
from glmeval.redact import forget_secrets, redact, redact_url, register_secret
from glmeval.report.markdown import fmt_ci, fmt_pct
from glmeval.sanitize import visible


@pytest.fixture(autouse=True)
def no_step_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


# ---------------------------------------------------------------------------- honest headline


@pytest.mark.parametrize(
    ("passed", "total", "shown"),
    [(997, 1000, "99.7%"), (1, 1000, "0.1%"), (1000, 1000, "100%"), (0, 1000, "0%"), (999_999, 1_000_000, ">99.999%"),
     (1, 3, "33%"), (9999, 10000, "99.99%"), (1, 10**7, "<0.001%"), (10**7 - 1, 10**7, ">99.999%")],
)
def test_a_rate_never_rounds_to_all_or_nothing(passed: int, total: int, shown: str) -> None:
    assert percent(passed / total) == shown
    assert fmt_pct(passed / total) == shown


def test_interval_bounds_are_honest_too() -> None:
    assert fmt_ci(0.991, 0.9989) == "99–99.9%"
    assert fmt_ci(0.996, 1.0) == "99.6–100%"
    assert fmt_ci(0.0, 0.004) == "0–0.4%"
    assert fmt_pct(None) == "–" and fmt_pct(float("nan")) == "–"


def _suite(path: Path, passing: int, failing: int) -> Path:
    """``passing`` cases asking for the capital (answered 北京) and ``failing`` ones that
    want 上海 in the same answer."""
    numbers = ", ".join(str(n) for n in range(passing))
    text = (
        "name: headline\nmodel: glm-4-flash\nmode: sync\n"
        "cases:\n"
        f"  - id: ok\n    matrix: {{n: [{numbers}]}}\n"
        "    messages: [{role: user, content: '{{ n }} 中国的首都是哪里？'}]\n    checks: [{contains: 北京}]\n"
    )
    if failing:
        bad = ", ".join(str(n) for n in range(failing))
        text += (
            f"  - id: bad\n    matrix: {{n: [{bad}]}}\n"
            "    messages: [{role: user, content: '{{ n }} 中国的首都是哪里？'}]\n    checks: [{contains: 上海}]\n"
        )
    path.write_text(text, encoding="utf-8")
    return path


def _run(tmp_path: Path, suite: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_STEP_SUMMARY", "ZHIPUAI_BASE_URL")}
    return subprocess.run(
        [sys.executable, "-m", "glmeval", "run", str(suite), "--db", str(tmp_path / "r.db"), "--out", str(tmp_path / "out"), *extra],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path,
    )


def _reports(tmp_path: Path, suite: str) -> tuple[str, str]:
    [folder] = list((tmp_path / "out" / suite).iterdir())
    return (folder / "report.md").read_text(encoding="utf-8"), (folder / "report.html").read_text(encoding="utf-8")


def test_399_of_400_never_reads_100_percent(tmp_path: Path) -> None:
    proc = _run(tmp_path, _suite(tmp_path / "h.glmeval.yaml", 399, 1), "--local", "--local-speed", "0")
    assert proc.returncode == 1, proc.stderr
    md, html = _reports(tmp_path, "headline")
    assert "399/400 answers passed (99.8%)" in md, md[:1500]
    assert "(100%)" not in md and "| 100%" not in md
    assert re.search(r'answers passed</div><div class="v">99\.8%</div>', html), "the HTML headline card"
    ticks = re.compile(r'fill="#57606a">100%</text>')  # a chart's axis may end at 100%; no value may read so
    assert ">100%<" not in ticks.sub("", html) and "(100%" not in html
    assert re.search(r"glm-4-flash\s+99\.8% \(9\d(\.\d+)?–99\.9\d*%\)", proc.stdout), proc.stdout  # the summary after a run
    runner = CliRunner()
    show = runner.invoke(main, ["show", "--db", str(tmp_path / "r.db")])
    assert show.exit_code == 0 and "99.8% [" in show.output and "100%" not in show.output, show.output
    runs = runner.invoke(main, ["runs", "--db", str(tmp_path / "r.db")])
    assert "99.8%" in runs.output and "100%" not in runs.output


def test_all_passed_is_100_percent(tmp_path: Path) -> None:
    proc = _run(tmp_path, _suite(tmp_path / "h.glmeval.yaml", 5, 0), "--local", "--local-speed", "0")
    assert proc.returncode == 0, proc.stderr
    md, html = _reports(tmp_path, "headline")
    assert "5/5 answers passed (100%)" in md
    assert re.search(r'answers passed</div><div class="v">100%</div>', html)


# ---------------------------------------------------------------------------- secrets


def test_redact_url_and_text() -> None:
    assert redact_url("http://user:PASS@host:8080/api/paas/v4?token=abc&model=x") == "http://***@host:8080/api/paas/v4?token=***&model=x"
    for name in ("api_key", "key", "access_token", "sig", "X-Amz-Signature", "password"):
        assert redact_url(f"https://h/v1?{name}=s3cr3t") == f"https://h/v1?{name}=***"
    assert redact_url("https://h/p?v=" + "a1" * 20) == "https://h/p?v=***", "a token-looking value whatever its name"
    plain = "https://open.bigmodel.cn/api/paas/v4/"
    assert redact_url(plain) == plain
    register_secret("abcdef123456.ZYXWVU987654")
    try:
        text = redact("failed: https://u:pw@h/x?token=t with abcdef123456.ZYXWVU987654 (half ZYXWVU987654), Bearer eyJ0eXAiOiJKV1Q")
        assert text == "failed: https://***@h/x?token=*** with *** (half ***), Bearer ***"
    finally:
        forget_secrets()


@pytest.fixture
def server() -> Iterator[object]:
    from glmeval.simulator import LocalServer

    with LocalServer(speed=0) as srv:
        yield srv


def test_credentials_in_base_url_reach_nothing_written(tmp_path: Path, server: object) -> None:
    port = str(server.base_url).split(":")[2].split("/")[0]  # type: ignore[attr-defined]
    suite = _suite(tmp_path / "h.glmeval.yaml", 2, 0)
    env = {**os.environ, "ZHIPUAI_API_KEY": server.api_key}  # type: ignore[attr-defined]
    env.pop("GITHUB_STEP_SUMMARY", None)
    outputs = []
    for url in (
        f"http://user:secret@127.0.0.1:{port}/api/paas/v4?token=abc",
        f"http://user:secret@127.0.0.1:{port}/api/paas/v4?api_key=abc&access_token=abc&sig=abc",
        "http://user:secret@127.0.0.1:1/api/paas/v4?token=abc",  # nothing listens: the error line
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "glmeval", "run", str(suite), "--base-url", url, "--db", str(tmp_path / "r.db"),
             "--out", str(tmp_path / "out"), "--retries", "0"],
            capture_output=True, text=True, timeout=180, env=env, cwd=tmp_path,
        )
        assert "Traceback" not in proc.stderr
        outputs += [proc.stdout, proc.stderr]
    assert "cannot reach http://***@127.0.0.1:1/api/paas/v4?token=***" in outputs[-1], outputs[-1]
    for name in ("show", "runs"):
        outputs.append(CliRunner().invoke(main, [name, "--db", str(tmp_path / "r.db")]).output)
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix in (".md", ".html", ".db", ".db-wal", ".json", ".xml")]
    assert any(p.suffix == ".html" for p in written) and any(p.suffix == ".db" for p in written)
    blobs = [p.read_bytes() for p in tmp_path.rglob("r.db*")] + [p.read_bytes() for p in written]
    for blob in blobs + [o.encode() for o in outputs]:
        assert b"secret" not in blob and b"abc" not in blob
    md = "".join(p.read_text(encoding="utf-8") for p in written if p.suffix == ".md")
    assert f"base\\_url=http://\\*\\*\\*&#64;127.0.0.1:{port}/api/paas/v4?token=\\*\\*\\*" in md, "where the run went stays readable"


# ---------------------------------------------------------------------------- controls and bidi

HOSTILE = "北京\x1bc\x07\x08X\u202eevil\u2066iso\u2069"
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def test_visible_escapes() -> None:
    assert visible(HOSTILE) == "北京\\x1bc\\x07\\x08X\\u202eevil\\u2066iso\\u2069"
    assert visible("line\n\ttab") == "line\n\ttab"
    assert visible("\x85\x7f\r") == "\\x85\\x7f\\x0d"


def test_control_characters_are_shown_escaped_everywhere(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        'rules:\n  - name: hostile\n    match: hostile please\n    reply: "北京\\ec\\a\\bX\\u202eevil\\u2066iso\\u2069"\n',
        encoding="utf-8",
    )
    suite = tmp_path / "ctl.glmeval.yaml"
    suite.write_text(
        "name: ctl\nmodel: glm-4-flash\nmode: sync\ncases:\n"
        '  - id: "bad\\u202eid"\n    messages: [{role: user, content: hostile please}]\n'
        "    checks: [{contains: 上海}]\n",
        encoding="utf-8",
    )
    proc = _run(tmp_path, suite, "--local", "--local-speed", "0", "--rules", str(rules))
    assert proc.returncode == 1, proc.stderr
    md, html = _reports(tmp_path, "ctl")
    db = str(tmp_path / "r.db")
    runner = CliRunner()
    junit = runner.invoke(main, ["report", "latest", "--db", db, "--format", "junit", "--out", "-"]).output
    report_md = runner.invoke(main, ["report", "latest", "--db", db]).output
    show = runner.invoke(main, ["show", "--db", db]).output
    for name, text in {"report.md": md, "report.html": html, "junit": junit, "report stdout": report_md, "show": show,
                       "run stdout": proc.stdout, "run stderr": proc.stderr}.items():
        assert not RAW.search(text), f"{name} has a raw control: {RAW.findall(text)}"
    for name, text in {"report.md": md, "report stdout": report_md}.items():
        assert "\\\\x1bc\\\\x07\\\\x08X\\\\u202eevil\\\\u2066iso\\\\u2069" in text, name  # Markdown doubles the backslash
        assert "bad\\\\u202eid" in text, name
    for name, text in {"report.html": html, "junit": junit}.items():
        assert "\\x1bc\\x07\\x08X\\u202eevil\\u2066iso\\u2069" in text, name
        assert "bad\\u202eid" in text, name
    assert "bad\\u202eid" in show and "bad\\u202eid" in proc.stdout
    frame = glmeval.results(db)
    assert frame["output"].tolist() == [HOSTILE], "the store keeps the original answer"
    assert frame["case_id"].tolist() == ["bad\u202eid"]


# ---------------------------------------------------------------------------- validate in one pass


def _validate(path: Path) -> list[str]:
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def test_a_syntax_error_does_not_hide_undefined_variables(tmp_path: Path) -> None:
    path = tmp_path / "a.glmeval.yaml"
    path.write_text(
        "name: a\nmodel: glm-4-flash\nmessages:\n"
        '  - {role: system, content: "You are {% if %}broken"}\n'
        '  - {role: user, content: "Tell me about {{ cty }}"}\n'
        "cases:\n  - id: one\n    vars: {city: 北京}\n    checks:\n      - contains: '{{ citty }}'\n",
        encoding="utf-8",
    )
    errors = _validate(path)
    assert len(errors) == 3, errors
    assert errors[0].startswith(f"error: {path}:4: message 1: template syntax error")
    assert errors[1] == f"error: {path}:5: case 'one': message 2 (user): undefined variable 'cty'; defined here: city"
    assert errors[2] == f"error: {path}:10: case 'one': check contains: undefined variable 'citty'; defined here: city"


def test_a_bad_param_does_not_hide_max_tokens_over_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "b.glmeval.yaml"
    path.write_text(
        "name: b\nmodel: glm-4-flash\nparams:\n  temperature: hot\n  max_tokens: 999999\n"
        "messages: [{role: user, content: hi}]\ncases:\n  - id: one\n",
        encoding="utf-8",
    )
    errors = _validate(path)
    assert errors == [
        f"error: {path}:4: temperature must be a number from 0 to 1; got str 'hot'",
        f"error: {path}:5: max_tokens 999999 is more than glm-4-flash can write (at most 32768 tokens)",
    ]


def test_a_pytest_failure_shows_what_the_model_wrote_escaped() -> None:
    """A failing case's message goes to the terminal: the model's tool call and the check
    reasons quoting it must not carry raw escape or bidi characters."""
    from glmeval.pytest_plugin.verdict import describe_failures, excerpt
    from glmeval.records import CheckResult, Completion, Job, Result, ToolCall

    evil = "\x1b[2J\u202eoops\x9b"
    completion = Completion(text=f"answer {evil}", tool_calls=[ToolCall(name=f"f{evil}", arguments=f'{{"a": "{evil}"}}')])
    job = Job(id="j", suite="s", case_id="c", variant_id="v", variant={}, repeat=0, model="glm-4", mode="sync",
              messages=[], params={}, checks=[])
    check = CheckResult(type="contains", label="", passed=False, score=0.0, reason=f"did not find x in {evil}")
    lines = describe_failures([Result(job, completion, [check], False, 0.0)], 1) + excerpt(completion).splitlines()
    text = "\n".join(lines)
    for raw in ("\x1b", "\u202e", "\x9b"):
        assert raw not in text
    assert "\\x1b[2J" in text and "\\u202e" in text
