"""Cassettes end to end: record a run through the real SDK against a server, replay it with
the server gone and no key, and read the file a team would commit.

The "real API" here is the local GLM server with a strict key; the recorder and the replay
server are the production code paths (``glmeval run --record`` / ``--cassette``), and every
call goes through the zhipuai SDK over loopback.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from glmeval.cli import main
from glmeval.simulator import LocalServer

KEY = "4f1c9a7be2d84c06a3b5e9f0d1c2b3a4.Xq7SeCrEt9wLm2Kp"
SUITE = """\
name: tape
grid:
  model: [glm-4-flash, glm-4]
  mode: [sync, stream, async]
settings:
  judge_model: glm-4
repeat: 2
messages:
  - {role: user, content: "{{ question }}"}
cases:
  - id: capital
    vars: {question: 中国的首都是哪里？}
    checks:
      - contains: 北京
      - llm-rubric: 回答提到北京
      - {type: similar, value: 首都是北京, threshold: 0.3}
  - id: arithmetic
    vars: {question: 计算 17 * 23 等于多少？}
    checks:
      - contains: "391"
"""


def _run(args: list[str], db: Path, out: Path | None = None) -> Result:
    extra = ["--out", str(out)] if out is not None else ["--no-report"]
    return CliRunner().invoke(main, ["run", *args, "--db", str(db), *extra], catch_exceptions=False)


def _keyless(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ZHIPUAI_API_KEY", "ZHIPU_API_KEY", "ZHIPUAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def _answers(db: Path, run: str) -> dict[tuple[str, str], list[tuple[Any, ...]]]:
    """Each case × variant's answers and verdicts, as a sorted list (repeats of one request are
    interchangeable: which repeat got which recorded answer may differ under concurrency)."""
    import glmeval

    df = glmeval.results(db, run)
    cells: dict[tuple[str, str], list[tuple[Any, ...]]] = {}
    for row in df.itertuples():
        key = (str(row.case_id), str(row.variant_id))
        cells.setdefault(key, []).append((row.output, bool(row.passed), row.request_id, row.status, row.completion_tokens))
    return {k: sorted(v) for k, v in cells.items()}


@pytest.fixture
def recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A suite recorded against a server that wants ``KEY``; the server is stopped afterwards."""
    suite = tmp_path / "tape.yaml"
    suite.write_text(SUITE, encoding="utf-8")
    cassette = tmp_path / "cassettes" / "tape.yaml"
    db = tmp_path / "rec.db"
    server = LocalServer(speed=0.02, api_key=KEY).start()
    try:
        monkeypatch.setenv("ZHIPUAI_API_KEY", KEY)
        monkeypatch.delenv("ZHIPUAI_BASE_URL", raising=False)
        result = _run([str(suite), "--base-url", server.base_url, "--record", str(cassette)], db)
        assert result.exit_code == 0, result.output
    finally:
        server.stop()
    _keyless(monkeypatch)
    yield {"suite": suite, "cassette": cassette, "db": db, "output": result.output, "tmp": tmp_path}


def test_a_recorded_run_replays_with_no_server_and_no_key(recorded: dict[str, Any]) -> None:
    """Same answers (the recorded request ids too), same verdicts, in sync, stream and async
    mode, judge and embedding calls included; the replayed run says where it came from."""
    db = recorded["tmp"] / "replay.db"
    out = recorded["tmp"] / "reports"
    result = _run([str(recorded["suite"]), "--cassette", str(recorded["cassette"])], db, out)
    assert result.exit_code == 0, result.output
    assert "answered from cassette" in result.output
    original = _answers(recorded["db"], "latest")
    replayed = _answers(db, "latest")
    assert len(original) == 12 and sum(len(v) for v in original.values()) == 24
    assert replayed == original
    assert all(passed for cell in replayed.values() for _, passed, *_ in cell)
    show = CliRunner().invoke(main, ["show", "latest", "--db", str(db)])
    assert f"replayed from cassette {recorded['cassette']}; latency as recorded" in show.output
    report = next(out.rglob("report.md")).read_text(encoding="utf-8")
    assert "replayed from cassette" in report and "latency as recorded" in report
    html = next(out.rglob("report.html")).read_text(encoding="utf-8")
    assert "latency as recorded" in html


def test_replayed_latency_comes_from_the_recording(recorded: dict[str, Any]) -> None:
    """The replay server waits as long as the recording took: no replayed answer arrives
    sooner than it was recorded (upper bounds would only measure this machine's load)."""
    import glmeval
    from glmeval.cassette import load_cassette

    db = recorded["tmp"] / "replay.db"
    assert _run([str(recorded["suite"]), "--cassette", str(recorded["cassette"]), "--mode", "sync"], db).exit_code == 0
    cassette = load_cassette(recorded["cassette"])
    recorded_ms = {item.label: min(r.ms for r in item.responses) for item in cassette.interactions}
    df = glmeval.results(db, "latest")
    assert len(df) == 8
    for row in df.itertuples():
        label = f"case {row.case_id}, variant {row.model} mode=sync (2 answers, in order)"
        assert row.latency_ms >= recorded_ms[label] - 1, (label, row.latency_ms)


def test_the_cassette_holds_no_key_and_reads_as_the_suite(recorded: dict[str, Any]) -> None:
    data = recorded["cassette"].read_bytes()
    id_part, secret_part = KEY.split(".")
    for needle in (KEY, id_part, secret_part, "Bearer ", "authorization:", "Authorization:"):
        assert needle.encode() not in data, needle
    text = data.decode("utf-8")
    # One labelled entry per request, in the suite's order, and the calls no job made itself.
    labels = re.findall(r"^# (case .*)$", text, flags=re.M)
    assert labels[0].startswith("case capital, variant ") and any(label.startswith("case arithmetic") for label in labels)
    assert all("(2 answers, in order)" in label for label in labels)
    assert "# a call no job made itself: a judge or grading call (model glm-4)" in text
    assert "# embeddings for a similarity check" in text
    assert "request: GET /async-result/" in text and "request: POST /async/chat/completions" in text
    # Readable: Chinese as is, bodies as block scalars, a stream one event per line with its time.
    assert "中国的首都是哪里？" in text and "body: |-" in text
    assert re.search(r"^    - \{ms: \d+, sse: 'data: \{", text, flags=re.M)
    assert "sse: 'data: [DONE]'" in text


def test_a_changed_case_names_the_missing_request_and_exits_nonzero(recorded: dict[str, Any]) -> None:
    suite = recorded["tmp"] / "changed.yaml"
    suite.write_text(SUITE.replace("计算 17 * 23", "计算 17 * 24"), encoding="utf-8")
    cassette = recorded["cassette"]
    done = subprocess.run(
        [sys.executable, "-m", "glmeval", "run", str(suite), "--cassette", str(cassette), "--mode", "sync",
         "--db", str(recorded["tmp"] / "miss.db"), "--no-report", "-q"],
        capture_output=True, text=True, timeout=300, env=_env_without_key(),
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    lines = [line for line in done.stderr.splitlines() if "not in cassette" in line]
    assert sorted(lines[:2]) == [
        f"error: case arithmetic, variant glm-4 mode=sync: not in cassette {cassette} (record it with --record)",
        f"error: case arithmetic, variant glm-4-flash mode=sync: not in cassette {cassette} (record it with --record)",
    ]
    assert len(lines) == 3
    assert lines[-1].startswith(f"error: 2 request(s) not in cassette {cassette}: re-record it")


def test_a_changed_rubric_names_the_judge_call(recorded: dict[str, Any]) -> None:
    suite = recorded["tmp"] / "rubric.yaml"
    suite.write_text(SUITE.replace("回答提到北京", "回答提到北京，并且语气友好"), encoding="utf-8")
    result = _run([str(suite), "--cassette", str(recorded["cassette"]), "--mode", "sync", "--model", "glm-4"], recorded["tmp"] / "j.db")
    assert result.exit_code == 2
    assert "case capital, variant glm-4 mode=sync: the llm-rubric check's call is not in cassette" in result.output


def test_misses_can_go_to_the_rules(recorded: dict[str, Any]) -> None:
    suite = recorded["tmp"] / "changed.yaml"
    suite.write_text(SUITE.replace("计算 17 * 23", "计算 17 * 24"), encoding="utf-8")
    db = recorded["tmp"] / "rules.db"
    result = _run([str(suite), "--cassette", str(recorded["cassette"]), "--cassette-miss", "rules"], db)
    assert result.exit_code in (0, 1), result.output  # 1: the simulated 408 fails `contains 391`
    assert "not in cassette" not in result.output
    import glmeval

    df = glmeval.results(db, "latest")
    assert len(df) == 24 and (df["status"] != "error").all()
    # The answers that came from the rules are simulated, and the run says so.
    show = CliRunner().invoke(main, ["show", "latest", "--db", str(db)])
    assert "simulated" in show.output and "answered by the local server's rules" in show.output


def test_a_request_asked_more_often_than_recorded_is_a_miss(recorded: dict[str, Any]) -> None:
    suite = recorded["tmp"] / "more.yaml"
    suite.write_text(SUITE.replace("repeat: 2", "repeat: 3"), encoding="utf-8")
    result = _run([str(suite), "--cassette", str(recorded["cassette"]), "--mode", "sync", "--model", "glm-4"], recorded["tmp"] / "more.db")
    assert result.exit_code == 2
    assert result.output.count("not in cassette") >= 2  # the third repeat of each case, and the summary


def _env_without_key() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k not in ("ZHIPUAI_API_KEY", "ZHIPU_API_KEY", "ZHIPUAI_BASE_URL")}


def test_glmeval_serve_cassette_answers_a_plain_sdk_script(recorded: dict[str, Any]) -> None:
    """``glmeval serve --cassette`` as a process, and a zhipuai script that knows nothing of glmeval."""
    from glmeval.cassette import load_cassette

    cassette = load_cassette(recorded["cassette"])
    sync = next(
        item for item in cassette.interactions
        if item.path == "/chat/completions" and not (item.json_body() or {}).get("stream") and item.label.startswith("case capital")
    )
    body = sync.json_body()
    expected = {r.body.decode("utf-8") for r in sync.responses}
    proc = subprocess.Popen(
        [sys.executable, "-m", "glmeval", "serve", "--port", "0", "--cassette", str(recorded["cassette"])],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env_without_key(),
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        assert "replaying cassette" in banner, banner + (proc.stderr.read() if proc.poll() is not None and proc.stderr else "")
        url = re.search(r"(http://\S+)", banner)
        assert url is not None
        script = (
            "import json, sys, zhipuai\n"
            f"client = zhipuai.ZhipuAI(api_key='glmeval-local.simulator', base_url={url.group(1)!r}, max_retries=0)\n"
            f"body = json.loads({json_dumps(body)!r})\n"
            "for _ in range(3):\n"
            "    r = client.chat.completions.create(model=body['model'], messages=body['messages'])\n"
            "    print(json.dumps({'text': r.choices[0].message.content, 'id': r.id}, ensure_ascii=False))\n"
            "try:\n"
            "    client.chat.completions.create(model=body['model'], messages=[{'role': 'user', 'content': 'never recorded'}])\n"
            "except zhipuai.APIStatusError as exc:\n"
            "    print('MISS', exc.status_code, exc.response.json()['error']['code'])\n"
        )
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=_env_without_key())
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        import json

        answers = [json.loads(line) for line in lines[:3]]
        recorded_texts = {json.loads(e)["choices"][0]["message"]["content"] for e in expected}
        recorded_ids = {json.loads(e)["id"] for e in expected}
        assert {a["text"] for a in answers} <= recorded_texts
        assert {a["id"] for a in answers} == recorded_ids  # two recorded answers, then they cycle
        assert lines[3] == "MISS 404 glmeval-cassette-miss"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def json_dumps(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)
