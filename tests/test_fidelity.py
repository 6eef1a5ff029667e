"""The local server as faithful as the captures (issue 14 items 1, 3, 4, 5; issue 16 item 8).

Everything goes through the real zhipuai SDK (or raw HTTP where the wire itself is the point)
against a real loopback server; nothing is mocked.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import zhipuai
from click.testing import CliRunner
from zhipuai import ZhipuAI

from glmeval.catalogue.tokens import count_tokens
from glmeval.cli import main
from glmeval.run.client import GLMClient
from glmeval.simulator import DEFAULT_API_KEY, MODELS, FaultConfig, LocalServer, RulesError, load_rules

ROOT = Path(__file__).resolve().parents[1]
LONG = ("人工智能是计算机科学的一个分支，它试图理解智能的本质，并生产出一种新的能以人类智能相似的方式做出反应的智能机器。"
        "该领域的研究包括机器人、语言识别、图像识别、自然语言处理和专家系统等。Artificial intelligence has grown quickly "
        "since 2012, and large language models such as GLM are used every day.")


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def sdk(server: LocalServer, key: str | None = None) -> ZhipuAI:
    return ZhipuAI(api_key=key or server.api_key, base_url=server.base_url, max_retries=0, timeout=20)


@pytest.fixture(scope="module")
def rules_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rules") / "rules.yaml"
    path.write_text(
        "rules:\n"
        "  - name: long\n"
        "    match: '讲讲人工智能'\n"
        f"    reply: '{LONG}'\n"
        "  - name: support-refund\n"
        "    match: '退款|refund'\n"
        "    when: {system: '客服|customer service'}\n"
        "    reply:\n"
        "      english: ['Refunds arrive within 7 days. Contact us if they do not.']\n"
        "      default: ['退款将在 7 天内到账。如未到账，请联系我们。']\n"
        "  - name: refund-without-role\n"
        "    match: '退款|refund'\n"
        "    reply: '请问您要咨询什么？'\n"
        "  - name: remembers-order\n"
        "    on: assistant\n"
        "    match: '订单号 (\\d+)'\n"
        "    when: {user: '到哪了'}\n"
        "    reply: '订单 {1} 正在派送。'\n"
        "  - name: tool-said-sunny\n"
        "    on: tool\n"
        "    match: 'sunny'\n"
        "    reply: 'It is sunny.'\n"
        "  - name: only-glm-4-flash-on-zhipu\n"
        "    match: 'which provider'\n"
        "    models: [glm-4-flash]\n"
        "    providers: [zhipu]\n"
        "    reply: 'Zhipu, glm-4-flash.'\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture(scope="module")
def server(rules_file: Path) -> Iterator[LocalServer]:
    with LocalServer(speed=0.02, rules_path=rules_file, seed=7) as srv:
        yield srv


# ------------------------------------------------------------------ streams (item 1)


def test_a_200_character_answer_streams_about_one_token_per_chunk(server: LocalServer) -> None:
    assert len(LONG) >= 200
    whole = sdk(server).chat.completions.create(model="glm-4-flash", messages=user("讲讲人工智能")).choices[0].message.content
    assert whole == LONG
    chunks = list(sdk(server).chat.completions.create(model="glm-4-flash", messages=user("讲讲人工智能"), stream=True))
    content = [c.choices[0].delta.content for c in chunks if c.choices[0].delta.content]
    assert "".join(content) == LONG
    assert len(content) >= 50 and len(content) == count_tokens(LONG)
    assert all(count_tokens(piece) == 1 for piece in content)
    assert chunks[-1].usage.completion_tokens == count_tokens(LONG)


def test_streams_are_paced_by_the_model_after_its_first_token_delay(server: LocalServer) -> None:
    spec = MODELS["glm-4"]
    started = time.perf_counter()
    arrivals = []
    for chunk in sdk(server).chat.completions.create(model="glm-4", messages=user("讲讲人工智能"), stream=True):
        if chunk.choices[0].delta.content:
            arrivals.append(time.perf_counter() - started)
    tokens = count_tokens(LONG)
    first_ms, total_ms = spec.latency_ms(8, tokens)
    assert arrivals[0] >= 0.8 * first_ms * server.speed / 1000
    # Spread over the model's pace (tokens x ms per token), not sent in one burst.
    assert arrivals[-1] - arrivals[0] >= 0.7 * (total_ms - first_ms) * server.speed / 1000


def test_load_tests_can_ask_for_coarser_chunks() -> None:
    with LocalServer(speed=0, max_stream_chunks=8, rules_path=None) as coarse:
        chunks = list(sdk(coarse).chat.completions.create(model="glm-4", messages=user("你好"), stream=True))
    assert len([c for c in chunks if c.choices[0].delta.content]) <= 8


# ------------------------------------------------------------------ faults (item 1)


def _error_body(exc: zhipuai.APIStatusError) -> dict[str, Any]:
    return exc.response.json()["error"]


@pytest.mark.parametrize(
    ("kind", "code", "message"),
    [
        ("model_busy", "1305", "该模型当前访问量过大，请您稍后再试"),
        ("concurrency", "1302", "High concurrency usage of this API, please reduce concurrency or contact customer "
                                "service to increase limits"),
    ],
)
def test_busy_faults_are_the_real_429_bodies_and_transient_for_glmeval(kind: str, code: str, message: str) -> None:
    with LocalServer(speed=0, faults=FaultConfig(**{kind: 1.0})) as busy:
        with pytest.raises(zhipuai.APIReachLimitError) as caught:
            sdk(busy).chat.completions.create(model="glm-4", messages=user("你好"))
        assert caught.value.status_code == 429 and _error_body(caught.value) == {"code": code, "message": message}
        assert "retry-after" not in caught.value.response.headers
        client = GLMClient(busy.api_key, busy.base_url)
        try:
            with pytest.raises(Exception) as failed:
                client.attempt("glm-4", "stream", user("你好"), {})
        finally:
            client.close()
    error = failed.value
    assert error.info.kind == "rate_limit" and error.info.code == code and error.should_retry  # type: ignore[attr-defined]


def test_a_stream_cut_mid_json_is_the_2026_defect() -> None:
    body = {"model": "glm-4.7", "messages": user("你好"), "stream": True}
    with LocalServer(speed=0, faults=FaultConfig(cut_json=1.0)) as broken:
        received_bytes = b""
        with httpx.Client(timeout=10) as http:
            with http.stream("POST", broken.base_url + "/chat/completions", json=body,
                             headers={"Authorization": "Bearer any.key"}) as response:
                with pytest.raises(httpx.RemoteProtocolError):  # then the connection closes
                    for part in response.iter_bytes():
                        received_bytes += part
        raw = received_bytes.decode("utf-8")
        lines = [line for line in raw.split("\n\n") if line]
        assert "[DONE]" not in raw
        last = lines[-1]
        assert last.startswith("data: {") and last.count("data: ") == 2  # a cut frame, then the next one
        with pytest.raises(json.JSONDecodeError):
            json.loads(last[len("data: "):])
        received = []
        with pytest.raises(ValueError):  # what the zhipuai SDK raises mid-iteration (json.loads)
            for chunk in sdk(broken).chat.completions.create(**body):
                received.append(chunk)
        assert received  # the chunks before the cut arrived
        with pytest.raises(zhipuai.APIConnectionError):  # a non-stream request is reset instead
            sdk(broken).chat.completions.create(model="glm-4.7", messages=user("你好"))


# ------------------------------------------------------------------ sampling (item 3)


def _answers(server: LocalServer, n: int, **params: Any) -> list[str]:
    client = sdk(server)
    return [client.chat.completions.create(model="glm-4-flash", messages=user("讲个笑话"), **params)
            .choices[0].message.content for _ in range(n)]


def test_sampled_replies_vary_greedy_ones_do_not(server: LocalServer) -> None:
    assert len(set(_answers(server, 8, temperature=0.9))) >= 3
    assert len(set(_answers(server, 8, do_sample=False))) == 1
    assert len(set(_answers(server, 8, temperature=0.01))) == 1  # the SDK's floor for temperature=0
    low, high = (len(set(_answers(server, 24, temperature=t, top_p=p))) for t, p in ((0.2, 0.5), (0.95, 0.99)))
    assert low < high


def test_the_server_seed_makes_the_variation_reproducible() -> None:
    def run(seed: int) -> list[str]:
        with LocalServer(speed=0, seed=seed) as fresh:
            return _answers(fresh, 8, temperature=0.9)

    assert run(3) == run(3)
    assert any(run(3) != run(seed) for seed in (4, 5, 6))


def test_a_request_seed_fixes_the_answer(server: LocalServer) -> None:
    assert len(set(_answers(server, 6, temperature=0.9, seed=42))) == 1


def test_variation_keeps_every_answer_correct(server: LocalServer) -> None:
    client = sdk(server)
    answers = {client.chat.completions.create(model=m, messages=user("中国的首都是哪里？"), temperature=0.95, top_p=0.99)
               .choices[0].message.content for m in ("glm-4", "glm-4-flash", "glm-4-air") for _ in range(6)}
    assert len(answers) >= 3 and all("北京" in a for a in answers)
    greetings = {client.chat.completions.create(model="glm-4-air", messages=user("你好"), temperature=0.95).choices[0].message.content
                 for _ in range(8)}
    assert all("你好" in g or "您好" in g for g in greetings)


# ------------------------------------------------------------------ rules that listen (item 4)


def _say(server: LocalServer, messages: list[dict[str, Any]], model: str = "glm-4-flash") -> str:
    return sdk(server).chat.completions.create(model=model, messages=messages, do_sample=False).choices[0].message.content


def test_rules_match_the_system_prompt_other_roles_the_model_and_the_provider(server: LocalServer) -> None:
    support = [{"role": "system", "content": "你是客服。"}, {"role": "user", "content": "我想退款"}]
    assert _say(server, support) == "退款将在 7 天内到账。如未到账，请联系我们。"
    assert _say(server, user("我想退款")) == "请问您要咨询什么？"  # no system prompt: the next rule
    order = [{"role": "user", "content": "查一下订单"}, {"role": "assistant", "content": "您的订单号 8812 已发货。"},
             {"role": "user", "content": "现在到哪了？"}]
    assert _say(server, order) == "订单 8812 正在派送。"
    tool = [{"role": "user", "content": "weather?"},
            {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "function",
                                                                  "function": {"name": "w", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "sunny, 25C"}]
    assert _say(server, tool) == "It is sunny."
    assert _say(server, user("which provider?")) == "Zhipu, glm-4-flash."
    assert _say(server, user("which provider?"), model="glm-4") != "Zhipu, glm-4-flash."


def test_replies_follow_language_and_length_instructions(server: LocalServer) -> None:
    english = [{"role": "system", "content": "You are a customer service agent. Answer in English."},
               {"role": "user", "content": "我想退款"}]
    assert _say(server, english) == "Refunds arrive within 7 days. Contact us if they do not."
    one = [{"role": "system", "content": "你是客服。请用一句话回答。"}, {"role": "user", "content": "我想退款"}]
    assert _say(server, one) == "退款将在 7 天内到账。"
    assert _say(server, [{"role": "system", "content": "Answer in English."}, *user("中国的首都是哪里？")]) == \
        "The capital of China is Beijing."
    assert _say(server, user("你好，请用英文回答")).startswith("Hello")
    fallback = _say(server, [{"role": "system", "content": "Always answer in English."}, *user("随便聊聊吧")])
    assert fallback.startswith("(simulated reply)")


def test_every_bad_rule_is_reported_in_one_pass_with_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "- name: ok\n  match: hi\n  reply: hello\n"
        "- name: broken\n  match: '(unclosed'\n  reply: x\n"
        "- name: typo\n  match: hi\n  replies: oops\n"
        "- name: who\n  match: hi\n  when: {robot: x}\n  reply: y\n"
        "- name: ok\n  match: again\n  reply: dup\n",
        encoding="utf-8",
    )
    with pytest.raises(RulesError) as caught:
        load_rules(bad)
    lines = str(caught.value).splitlines()
    assert [line.split(": ", 1)[0] for line in lines] == [f"{bad}:5", f"{bad}:9", f"{bad}:12", f"{bad}:14"]
    result = CliRunner().invoke(main, ["serve", "--rules", str(bad), "--port", "0"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 4 and all(line.startswith(f"error: {bad}:") for line in errors), errors
    assert "invalid regex" in errors[0] and "unknown key" in errors[1] and "'when' key" in errors[2]
    assert "duplicate rule name" in errors[3]


# ------------------------------------------------------------------ keys (item 5)


def test_a_plain_sdk_script_with_any_key_works_against_glmeval_serve(tmp_path: Path) -> None:
    serve = subprocess.Popen(
        [sys.executable, "-m", "glmeval", "serve", "--port", "0", "--speed", "0"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        banner = serve.stdout.readline()  # type: ignore[union-attr]
        assert "any well-formed key is accepted" in banner
        url = banner.split(" on ")[1].split()[0]
        script = tmp_path / "app.py"
        script.write_text(
            "import sys\nfrom zhipuai import ZhipuAI\n"
            "client = ZhipuAI(api_key=sys.argv[1], base_url=sys.argv[2], max_retries=0)\n"
            "print(client.chat.completions.create(model='glm-4', messages=[{'role': 'user', 'content': '你好'}])"
            ".choices[0].message.content)\n",
            encoding="utf-8",
        )
        key = f"{secrets.token_hex(8)}.{secrets.token_urlsafe(12)}"
        app = subprocess.run([sys.executable, str(script), key, url], capture_output=True, text=True, timeout=60)
        assert app.returncode == 0, app.stderr
        assert app.stdout.startswith("你好")
    finally:
        serve.terminate()
        serve.wait(timeout=10)


def test_a_strict_server_says_which_key_it_wants_and_what_is_malformed() -> None:
    with LocalServer(speed=0, api_key=DEFAULT_API_KEY) as strict:
        with pytest.raises(zhipuai.APIAuthenticationError) as wrong:
            sdk(strict, key="someone.else-secret").chat.completions.create(model="glm-4", messages=user("你好"))
        error = _error_body(wrong.value)
        assert error["code"] == "1000" and DEFAULT_API_KEY in error["message"] and "else-secret" not in error["message"]
    with LocalServer(speed=0, api_key="team.real-secret") as strict:
        with pytest.raises(zhipuai.APIAuthenticationError) as wrong:
            sdk(strict, key="other.key").chat.completions.create(model="glm-4", messages=user("你好"))
        message = _error_body(wrong.value)["message"]
        assert "--api-key" in message and "real-secret" not in message and "other.key" not in message
    with LocalServer(speed=0) as open_server:
        with httpx.Client(timeout=10) as http:
            spaced = http.post(open_server.base_url + "/chat/completions", json={"model": "glm-4", "messages": user("hi")},
                               headers={"Authorization": "Bearer two words"})
            missing = http.post(open_server.base_url + "/chat/completions", json={"model": "glm-4", "messages": user("hi")})
        assert spaced.status_code == 401 and spaced.json()["error"]["code"] == "1002"
        assert "whitespace" in spaced.json()["error"]["message"]
        assert missing.status_code == 401 and missing.json()["error"]["code"] == "1001"
        assert "Bearer" in missing.json()["error"]["message"]
        assert sdk(open_server, key="sk-anything-works").chat.completions.create(
            model="glm-4", messages=user("你好")).choices[0].message.content
