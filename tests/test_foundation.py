"""End to end: glmeval's client and CLI against the local GLM server, through the real SDK."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from glmeval.cli import main
from glmeval.run.client import CallError, GLMClient
from glmeval.store import Store

ROOT = Path(__file__).resolve().parent.parent
HELLO_GLM4 = "你好👋！我是人工智能助手智谱清言，可以叫我小智🤖，很高兴见到你，欢迎问我任何问题。"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "查询城市天气",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture(scope="module")
def client(local_server):  # type: ignore[no-untyped-def]
    c = GLMClient(local_server.api_key, local_server.base_url, timeout=10, poll_timeout=10)
    yield c
    c.close()


@pytest.mark.parametrize("mode", ["sync", "stream", "async"])
def test_hello_in_every_mode(client: GLMClient, mode: str) -> None:
    c = client.attempt("glm-4", mode, [{"role": "user", "content": "你好"}], {})
    assert c.text == HELLO_GLM4
    assert c.finish_reason == "stop"
    assert c.prompt_tokens > 0 and c.completion_tokens > 0
    assert c.total_tokens == c.prompt_tokens + c.completion_tokens
    assert c.latency_ms is not None and c.latency_ms > 0
    assert c.request_id
    if mode == "stream":
        assert c.ttft_ms is not None and 0 < c.ttft_ms < c.latency_ms
    else:
        assert c.ttft_ms is None


@pytest.mark.parametrize("mode", ["sync", "stream", "async"])
def test_tool_call_in_every_mode(client: GLMClient, mode: str) -> None:
    c = client.attempt("glm-4", mode, [{"role": "user", "content": "北京今天天气怎么样？"}], {"tools": [WEATHER_TOOL]})
    assert c.finish_reason == "tool_calls"
    assert [t.name for t in c.tool_calls] == ["get_weather"]
    assert json.loads(c.tool_calls[0].arguments) == {"city": "北京"}


def test_unknown_model_is_a_400_with_zhipu_code(client: GLMClient) -> None:
    with pytest.raises(CallError) as info:
        client.attempt("glm-999", "sync", [{"role": "user", "content": "你好"}], {})
    assert info.value.info.status == 400
    assert info.value.info.code == "1211"
    assert info.value.info.kind == "bad_request"


def test_bad_key_is_401_and_never_echoes_the_key(local_server) -> None:  # type: ignore[no-untyped-def]
    secret = "wrongid.supersecretvalue123"
    bad = GLMClient(secret, local_server.base_url, timeout=10)
    try:
        with pytest.raises(CallError) as info:
            bad.attempt("glm-4", "sync", [{"role": "user", "content": "你好"}], {})
    finally:
        bad.close()
    assert info.value.info.status == 401
    assert info.value.info.kind == "auth"
    assert "supersecretvalue123" not in str(info.value.info)


def _run(args: list[str], tmp_path: Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, [*args, "--db", str(tmp_path / "r.db"), "--out", str(tmp_path / "reports")])
    return result.exit_code, result.output


@pytest.mark.parametrize("suite", sorted(p.name for p in (ROOT / "suites").glob("*.yaml")))
def test_example_suites_pass_against_local_server(suite: str, tmp_path: Path) -> None:
    code, out = _run(["run", str(ROOT / "suites" / suite), "--local", "--local-speed", "0.01", "-q"], tmp_path)
    assert code == 0, out
    assert "0 failed, 0 errors" in out
    store = Store(tmp_path / "r.db")
    run = store.list_runs()[0]
    assert run.status == "complete" and run.local
    rows = store.conn.execute("SELECT COUNT(*) FROM results WHERE run_id = ?", (run.id,)).fetchone()[0]
    assert rows == run.total_jobs
    report = next((tmp_path / "reports").rglob("report.md")).read_text(encoding="utf-8")
    assert "Simulated" in report and "Summary by variant" in report


def test_greeting_summary_shows_every_variant(tmp_path: Path) -> None:
    code, out = _run(["run", str(ROOT / "suites" / "greeting.yaml"), "--local", "--local-speed", "0", "-q"], tmp_path)
    assert code == 0, out
    for variant in ("glm-4 temperature=0.2", "glm-4 temperature=0.9", "glm-3-turbo temperature=0.2", "glm-3-turbo temperature=0.9"):
        assert variant in out
    assert "36 passed" in out


def test_failing_check_exits_1_and_names_the_reason(tmp_path: Path) -> None:
    suite = tmp_path / "fail.yaml"
    suite.write_text(
        "name: fail\nmessages: [{role: user, content: 中国的首都是哪里？}]\ncases:\n  - id: wrong\n    checks: [{contains: 上海}]\n",
        encoding="utf-8",
    )
    code, out = _run(["run", str(suite), "--local", "--local-speed", "0", "-q"], tmp_path)
    assert code == 1, out
    assert "0 passed, 1 failed" in out
    report = next((tmp_path / "reports").rglob("report.md")).read_text(encoding="utf-8")
    assert "expected to contain '上海'" in report


def test_no_key_gives_one_clear_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("ZHIPUAI_API_KEY", "ZHIPU_API_KEY")}
    proc = subprocess.run(
        [sys.executable, "-m", "glmeval", "run", str(ROOT / "suites" / "greeting.yaml"), "--db", str(tmp_path / "r.db")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "error: no API key: set ZHIPUAI_API_KEY (or ZHIPU_API_KEY), or pass --local to use the local GLM server"
    ]


def test_unreachable_server_stops_with_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "ZHIPUAI_API_KEY": "id.secretsecret"}
    proc = subprocess.run(
        [
            sys.executable, "-m", "glmeval", "run", str(ROOT / "suites" / "multi-turn.yaml"),
            "--base-url", "http://127.0.0.1:9/api/paas/v4", "--retries", "0", "--db", str(tmp_path / "r.db"),
            "--out", str(tmp_path / "rep"), "-q",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error")]
    assert len(errors) == 1
    assert errors[0].startswith("error: run stopped: cannot reach http://127.0.0.1:9/api/paas/v4")
    assert "secretsecret" not in proc.stdout + proc.stderr
    store = Store(tmp_path / "r.db")
    assert store.list_runs()[0].status == "aborted"


def test_checks_and_models_listings() -> None:
    runner = CliRunner()
    checks = runner.invoke(main, ["checks"])
    assert checks.exit_code == 0
    assert "contains" in checks.output and "llm-rubric" in checks.output
    models = runner.invoke(main, ["models"])
    assert models.exit_code == 0
    assert "glm-4-flash" in models.output and "glm-3-turbo" in models.output


def test_bad_flag_is_one_line_exit_2() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "glmeval", "run", "--bogus", "x.yaml"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "No such option '--bogus'" in proc.stderr


def test_run_reports_problems_of_every_suite_before_running_any(tmp_path: Path) -> None:
    good = ROOT / "suites" / "multi-turn.yaml"
    bad_a = tmp_path / "a.yaml"
    bad_a.write_text("name: a\ncases: [{id: x, mesages: []}]\n", encoding="utf-8")
    bad_b = tmp_path / "b.yaml"
    bad_b.write_text("name: b\nmessages: [{role: user, content: hi}]\ncases: 5\n", encoding="utf-8")
    code, out = _run(["run", str(good), str(bad_a), str(bad_b), "--local"], tmp_path)
    assert code == 2
    assert f"{bad_a}:2: unknown key 'mesages'" in out
    assert f"{bad_b}:3: cases must be a list" in out
    assert not (tmp_path / "r.db").exists() or not Store(tmp_path / "r.db").list_runs()


def test_suite_limits_reach_the_run_settings(tmp_path: Path) -> None:
    suite = tmp_path / "lim.yaml"
    suite.write_text(
        "name: lim\nsettings: {limits: {glm-4: {concurrency: 1, rpm: 6000}}}\n"
        "messages: [{role: user, content: 你好}]\ncases: [{id: a, checks: [{contains: 你好}]}, {id: b, checks: [{contains: 你好}]}]\n",
        encoding="utf-8",
    )
    code, out = _run(["run", str(suite), "--local", "--local-speed", "0", "-q", "--tpm", "glm-4=50000"], tmp_path)
    assert code == 0, out
    run = Store(tmp_path / "r.db").list_runs()[0]
    assert run.settings["limits"]["glm-4"] == {"concurrency": 1, "rpm": 6000, "tpm": 50000}


def test_judge_spend_is_stored_apart_from_the_answer_cost(tmp_path: Path) -> None:
    suite = tmp_path / "judge.yaml"
    suite.write_text(
        "name: judge\nmodel: glm-3-turbo\nmessages: [{role: user, content: 中国的首都是哪里？}]\n"
        "cases: [{id: a, checks: [{llm-rubric: 回答提到北京}]}]\n",
        encoding="utf-8",
    )
    code, out = _run(["run", str(suite), "--local", "--local-speed", "0", "-q"], tmp_path)
    assert code == 0, out
    store = Store(tmp_path / "r.db")
    row = store.conn.execute("SELECT cost, judge_tokens, judge_cost FROM results").fetchone()
    assert row["judge_tokens"] > 0
    assert row["judge_cost"] > 0  # glm-4 judges by default, priced apart from the glm-3-turbo answer
    assert row["cost"] > 0 and row["cost"] != row["judge_cost"]


def test_key_with_trailing_newline_is_stripped_and_never_leaks(tmp_path: Path) -> None:
    from glmeval.simulator import LocalServer

    secret = "myid.MYSECRETVALUE42"
    with LocalServer(speed=0, api_key=secret) as srv:
        env = {**os.environ, "ZHIPUAI_API_KEY": secret + "\r\n"}
        proc = subprocess.run(
            [sys.executable, "-m", "glmeval", "run", str(ROOT / "suites" / "multi-turn.yaml"), "--base-url", srv.base_url,
             "--db", str(tmp_path / "r.db"), "--out", str(tmp_path / "rep"), "-q"],
            capture_output=True, text=True, env=env, timeout=60,
        )
    assert proc.returncode == 0, proc.stderr
    dump = "\n".join(Store(tmp_path / "r.db").conn.iterdump())
    reports = "".join(p.read_text(encoding="utf-8") for p in (tmp_path / "rep").rglob("*.*"))
    for text in (proc.stdout, proc.stderr, dump, reports):
        assert "MYSECRETVALUE42" not in text


@pytest.mark.parametrize("key, words", [("id.秘密secret", "non-ASCII"), ("id.sec ret", "a space"), ("id.sec\x00ret", "control")])
def test_unsendable_key_is_one_line_exit_2(tmp_path: Path, key: str, words: str) -> None:
    env = {**os.environ, "ZHIPUAI_API_KEY": key.replace("\x00", "\x01")}
    proc = subprocess.run(
        [sys.executable, "-m", "glmeval", "run", str(ROOT / "suites" / "multi-turn.yaml"), "--db", str(tmp_path / "r.db")],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert proc.returncode == 2
    [line] = proc.stderr.strip().splitlines()
    assert words in line and "secret" not in line.replace("id.secret", "")


def test_suite_name_cannot_steer_reports_out_of_the_folder(tmp_path: Path) -> None:
    suite = tmp_path / "s.yaml"
    suite.write_text(
        "name: ../../escaped\nmessages: [{role: user, content: 你好}]\ncases: [{id: a, checks: [{contains: 你好}]}]\n",
        encoding="utf-8",
    )
    out = tmp_path / "deep" / "reports"
    result = CliRunner().invoke(
        main, ["run", str(suite), "--local", "--local-speed", "0", "-q", "--db", str(tmp_path / "r.db"), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    written = list(tmp_path.rglob("report.md"))
    assert written and all(out in p.parents for p in written)
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "deep" / "escaped").exists()


def test_run_prints_why_cases_failed(tmp_path: Path) -> None:
    suite = tmp_path / "why.yaml"
    suite.write_text(
        "name: why\nmessages: [{role: user, content: 中国的首都是哪里？}]\ncases:\n"
        "  - {id: wrong-city, checks: [{contains: 上海}]}\n  - {id: right-city, checks: [{contains: 北京}]}\n",
        encoding="utf-8",
    )
    code, out = _run(["run", str(suite), "--local", "--local-speed", "0"], tmp_path)
    assert code == 1
    [line] = [l for l in out.splitlines() if "wrong-city" in l]
    assert "expected to contain '上海'" in line
    assert not any("right-city" in l for l in out.splitlines())


def test_empty_model_name_is_rejected() -> None:
    result = CliRunner().invoke(main, ["run", str(ROOT / "suites" / "greeting.yaml"), "--local", "--model", " "])
    assert result.exit_code == 2
    assert "a model name cannot be empty" in result.output


def test_a_run_sent_to_glmeval_serve_is_marked_simulated_and_cached_apart(tmp_path: Path) -> None:
    from glmeval.simulator import LocalServer

    with LocalServer(speed=0) as srv:
        env = {**os.environ, "ZHIPUAI_API_KEY": srv.api_key}
        base = [sys.executable, "-m", "glmeval", "run", str(ROOT / "suites" / "multi-turn.yaml"), "--db", str(tmp_path / "r.db"),
                "--out", str(tmp_path / "rep"), "-q"]
        first = subprocess.run([*base, "--base-url", srv.base_url], capture_output=True, text=True, env=env, timeout=60)
        assert first.returncode == 0, first.stderr
        replay = subprocess.run(
            [*base, "--replay"], capture_output=True, text=True, env={**env, "ZHIPUAI_API_KEY": "real.keykeykey"}, timeout=60
        )
        same_endpoint = subprocess.run(
            [*base, "--replay", "--base-url", srv.base_url], capture_output=True, text=True, env=env, timeout=60
        )
    run = Store(tmp_path / "r.db").list_runs()[-1]
    assert run.local, "a run answered by the local server must be marked simulated"
    assert "Simulated" in (tmp_path / "rep" / "multi-turn" / run.id / "report.md").read_text(encoding="utf-8")
    assert replay.returncode == 2 and "nothing to replay" in replay.stderr  # never replayed as real answers
    assert same_endpoint.returncode == 0, same_endpoint.stderr  # the same endpoint replays them


def test_contradicting_cache_flags_are_one_line_exit_2() -> None:
    result = CliRunner().invoke(main, ["run", str(ROOT / "suites" / "greeting.yaml"), "--local", "--cache", "--replay"])
    assert result.exit_code == 2
    assert "--cache and --replay contradict each other" in result.output


@pytest.mark.parametrize("damage", ["duplicate-result", "string-check", "object-output"])
def test_a_damaged_export_is_one_line_and_imports_nothing(tmp_path: Path, damage: str) -> None:
    code, out = _run(["run", str(ROOT / "suites" / "multi-turn.yaml"), "--local", "--local-speed", "0", "-q", "--no-report"], tmp_path)
    assert code == 0, out
    exported = CliRunner().invoke(main, ["export", "latest", "--db", str(tmp_path / "r.db"), "--format", "json"])
    data = json.loads(exported.output)
    first = data["results"][0]
    if damage == "duplicate-result":
        data["results"].append(dict(first))
    elif damage == "string-check":
        first["checks"] = ["x"]
    else:
        first["output"] = {"a": 1}
    path = tmp_path / "run.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    other = tmp_path / "other.db"
    proc = subprocess.run(
        [sys.executable, "-m", "glmeval", "import", str(path), "--db", str(other)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert Store(other).list_runs() == []


def test_run_with_baseline_writes_the_comparison_into_its_report(tmp_path: Path) -> None:
    args = ["run", str(ROOT / "suites" / "multi-turn.yaml"), "--local", "--local-speed", "0", "-q"]
    assert _run(args, tmp_path)[0] == 0
    code, out = _run([*args, "--baseline", "latest"], tmp_path)
    assert code == 0, out
    head = Store(tmp_path / "r.db").list_runs()[0]
    report = (tmp_path / "reports" / "multi-turn" / head.id / "report.md").read_text(encoding="utf-8")
    assert "## Against baseline" in report


def test_unwritable_report_folder_is_one_line_and_keeps_the_results(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    result = CliRunner().invoke(
        main,
        ["run", str(ROOT / "suites" / "multi-turn.yaml"), "--local", "--local-speed", "0", "-q",
         "--db", str(tmp_path / "r.db"), "--out", str(blocker)],
    )
    assert result.exit_code == 2
    assert "cannot write the report" in result.output and "Traceback" not in result.output
    assert Store(tmp_path / "r.db").list_runs()[0].status == "complete"


def test_odd_check_file_path_and_negative_prices_are_suite_errors(tmp_path: Path) -> None:
    suite = tmp_path / "s.yaml"
    suite.write_text(
        'name: x\ncheck-files: ["a\\0.py"]\nprices: {glm-4: [-1, .nan]}\nmessages: [{role: user, content: hi}]\ncases: [{id: a}]\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(main, ["validate", str(suite)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"{suite}:2: check file" in result.output
    assert f"{suite}:3: price of 'glm-4': prices must be numbers >= 0" in result.output


def test_debug_shows_the_traceback_and_keeps_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nmessages: [{role: user, content: 你好}]\ncases: [{id: c, checks: [{contain: x}]}]\n", encoding="utf-8")
    plain = subprocess.run([sys.executable, "-m", "glmeval", "validate", str(bad)], capture_output=True, text=True, timeout=60)
    debug = subprocess.run([sys.executable, "-m", "glmeval", "--debug", "validate", str(bad)], capture_output=True, text=True, timeout=60)
    assert plain.returncode == debug.returncode == 2
    assert "Traceback" not in plain.stderr and "Traceback" in debug.stderr
    assert plain.stderr.strip().splitlines()[-1] == debug.stderr.strip().splitlines()[-1]
