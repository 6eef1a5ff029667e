"""Providers in a suite: validation in one pass, the provider axis and --provider, job ids and
cache keys, and the three transports (zhipuai, zai-sdk, openai) driven over loopback against
the local server's Zhipu v4 paths, which every zhipu-dialect provider can use today."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import glmeval
from glmeval.cli import main
from glmeval.errors import GlmevalError, SuiteError
from glmeval.plan import build_plan, cache_key, job_id
from glmeval.records import Job
from glmeval.run.client import CallError, Endpoint, GLMClient
from glmeval.run.ratelimit import Limiter, ModelLimit
from glmeval.run.transports import dialect_params
from glmeval.simulator import DEFAULT_API_KEY, LocalServer
from glmeval.store import Store
from glmeval.suite import load_suite, suite_json_schema

BASE = """\
name: {name}
mode: stream
{providers}grid:
{axis}  model: [glm-4.7]
  thinking: [on, off]
messages:
  - {{role: user, content: "What is the capital of France?"}}
cases:
  - id: capital
    checks: [{{contains: Paris}}]
"""


def _suite(tmp_path: Path, name: str = "provs", providers: str = "", axis: str = "") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(BASE.format(name=name, providers=providers, axis=axis), encoding="utf-8")
    return path


def test_every_provider_problem_is_one_line_with_its_place_in_one_pass(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        """\
name: bad
providers:
  selfhosted: {sdk: openia, base_url: "http://gpu-box:8000/v1", api_key_env: VLLM_API_KEY}
  nourl: {sdk: openai, api_key_env: VLLM_API_KEY}
  leaky: {sdk: openai, base_url: "http://x/v1", api_key_env: "sk.abcdef123456"}
  nosdk: {base_url: "http://x"}
  mapped: {sdk: openai, base_url: "http://x/v1", api_key_env: K, models: {glm-4.8x: foo}, dialekt: vllm}
  zai: {dialect: vlm}
grid:
  provider: [zhipu, zia, selfhosted]
  model: [glm-4.7]
messages:
  - {role: user, content: hi}
cases:
  - id: a
""",
        encoding="utf-8",
    )
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2
    out = result.output
    expected = [
        "bad.yaml:3: providers.selfhosted.sdk must be one of zhipuai, zai, openai; got 'openia' (did you mean 'openai'?)",
        "bad.yaml:4: provider 'nourl' uses sdk openai and needs a base_url",
        "bad.yaml:5: api_key_env of provider 'leaky' must name an environment variable",
        "bad.yaml:6: provider 'nosdk' needs sdk: one of zhipuai, zai, openai",
        "bad.yaml:7: models of provider 'mapped' names model 'glm-4.8x', which the suite does not use and glmeval does not know",
        "bad.yaml:7: unknown key 'dialekt' in providers.mapped (did you mean 'dialect'?)",
        "bad.yaml:8: providers.zai.dialect must be one of zhipu, vllm, sglang, dashscope, openrouter; got 'vlm' (did you mean 'vllm'?)",
        "bad.yaml:10: unknown provider 'zia' (did you mean 'zai'?)",
    ]
    for line in expected:
        assert line in out, out
    assert "sk.abcdef123456" not in out  # a value that is no variable name may be the key itself
    assert "Traceback" not in out


def test_schema_describes_providers_and_the_provider_axis() -> None:
    schema = suite_json_schema()
    entry = schema["$defs"]["ProviderEntry"]["properties"]
    assert set(entry) == {"sdk", "base_url", "api_key_env", "dialect", "models", "prices"}
    assert entry["sdk"]["anyOf"][0]["enum"] == ["zhipuai", "zai", "openai"]
    assert "provider" in schema["$defs"]["Grid"]["properties"]
    assert schema["properties"]["providers"]["additionalProperties"] == {"$ref": "#/$defs/ProviderEntry"}


def test_default_provider_keeps_job_ids_and_cache_keys(tmp_path: Path) -> None:
    """A suite without providers (or whose providers it does not use) plans exactly the jobs it
    always did: ids and cache keys from the same formula, no provider in the label."""
    plain = build_plan(load_suite(_suite(tmp_path)))
    extra = build_plan(load_suite(_suite(tmp_path, "provs", providers="providers:\n  zai: {models: {glm-4.7: glm-4.7-intl}}\n")))
    for job in plain.jobs:
        assert job.provider == "zhipu" and "provider" not in job.variant
        assert job.id == job_id("provs", job.case_id, job.variant_id, job.repeat)
        assert job.cache_key == cache_key(job.model, job.mode, job.messages, job.params, job.repeat)
        assert job.limit_key == job.model
    assert [(j.id, j.cache_key) for j in plain.jobs] == [(j.id, j.cache_key) for j in extra.jobs]
    assert plain.variants == ["glm-4.7 thinking=on", "glm-4.7 thinking=off"]


def test_provider_axis_names_each_job_and_keeps_its_answers_apart(tmp_path: Path) -> None:
    providers = 'providers:\n  selfhosted: {sdk: openai, base_url: "http://gpu-box:8000/v1", api_key_env: VLLM_API_KEY, dialect: vllm}\n'
    plan = build_plan(load_suite(_suite(tmp_path, providers=providers, axis="  provider: [zhipu, zai, selfhosted]\n")))
    assert plan.variants == [f"glm-4.7 provider={p} thinking={t}" for p in ("zhipu", "zai", "selfhosted") for t in ("on", "off")]
    assert sorted(plan.providers) == ["selfhosted", "zai", "zhipu"]
    by = {(j.provider, j.variant["thinking"]): j for j in plan.jobs}
    assert all(j.variant["provider"] == p for (p, _), j in by.items())
    # The request is the same (planned in Zhipu's form); the answers are kept apart.
    assert by[("zai", "on")].params == by[("zhipu", "on")].params == {"thinking": {"type": "enabled"}}
    assert len({j.cache_key for j in plan.jobs}) == 6
    assert by[("selfhosted", "on")].limit_key == "selfhosted/glm-4.7"
    # The base URL enters a provider's cache key; the zhipu jobs' keys do not move.
    moved = build_plan(load_suite(_suite(tmp_path, "provs", providers=providers.replace("gpu-box", "other-box"), axis="  provider: [zhipu, zai, selfhosted]\n")))
    again = {(j.provider, j.variant["thinking"]): j.cache_key for j in moved.jobs}
    assert again[("selfhosted", "on")] != by[("selfhosted", "on")].cache_key
    assert again[("zhipu", "on")] == by[("zhipu", "on")].cache_key
    assert again[("zai", "on")] == by[("zai", "on")].cache_key


def test_provider_override_restricts_or_adds_and_names_an_unknown_one(tmp_path: Path) -> None:
    suite = load_suite(_suite(tmp_path, axis="  provider: [zhipu, zai]\n"))
    assert {j.provider for j in build_plan(suite, provider_override=["zai"]).jobs} == {"zai"}
    plain = load_suite(_suite(tmp_path, "plain"))
    added = build_plan(plain, provider_override=["zai"])
    assert added.variants == ["glm-4.7 provider=zai thinking=on", "glm-4.7 provider=zai thinking=off"]
    same = build_plan(plain, provider_override=["zhipu"])
    assert [j.id for j in same.jobs] == [j.id for j in build_plan(plain).jobs]
    with pytest.raises(SuiteError) as err:
        build_plan(suite, provider_override=["zia"])
    assert err.value.problems == [
        "--provider zia: suite 'provs' has no provider 'zia' (did you mean 'zai'?); its providers: zhipu, zai (define others under providers:)"
    ]


def test_openai_provider_in_async_mode_is_a_plan_problem(tmp_path: Path) -> None:
    providers = 'providers:\n  oa: {sdk: openai, base_url: "http://h/v1", api_key_env: OA_KEY}\n'
    suite = load_suite(_suite(tmp_path, providers=providers, axis="  provider: [oa]\n  mode: [async]\n"))
    with pytest.raises(SuiteError) as err:
        build_plan(suite)
    assert len(err.value.problems) == 1 and "has no async mode" in err.value.problems[0]


def test_limits_per_provider_and_model() -> None:
    limiter = Limiter(8, {"glm-4.7": ModelLimit(concurrency=2), "zai/glm-4.7": ModelLimit(rpm=30)})
    assert limiter.limit_for("selfhosted/glm-4.7") == ModelLimit(concurrency=2)  # the model's own, in its own slots
    assert limiter.limit_for("zai/glm-4.7") == ModelLimit(rpm=30)
    one, _ = limiter.try_acquire("glm-4.7")
    two, _ = limiter.try_acquire("glm-4.7")
    third, _ = limiter.try_acquire("glm-4.7")
    other, _ = limiter.try_acquire("selfhosted/glm-4.7")
    assert one and two and third is None and other is not None


@pytest.mark.parametrize(
    ("dialect", "on", "off"),
    [
        ("zhipu", {"thinking": {"type": "enabled"}}, {"thinking": {"type": "disabled"}}),
        ("vllm", {"extra_body": {"chat_template_kwargs": {"enable_thinking": True}}}, {"extra_body": {"chat_template_kwargs": {"enable_thinking": False}}}),
        ("sglang", {"extra_body": {"chat_template_kwargs": {"enable_thinking": True}}}, {"extra_body": {"chat_template_kwargs": {"enable_thinking": False}}}),
        ("dashscope", {"extra_body": {"enable_thinking": True}}, {"extra_body": {"enable_thinking": False}}),
        ("openrouter", {"extra_body": {"reasoning": {"enabled": True}}}, {"extra_body": {"reasoning": {"enabled": False}}}),
    ],
)
def test_each_dialect_gets_its_own_thinking_switch(dialect: Any, on: dict[str, Any], off: dict[str, Any]) -> None:
    assert dialect_params({"thinking": {"type": "enabled"}}, dialect) == on
    assert dialect_params({"thinking": {"type": "disabled"}}, dialect) == off
    assert dialect_params({"temperature": 0.5}, dialect) == {"temperature": 0.5}


# -- the transports, over loopback -------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer(speed=0.0, api_key=DEFAULT_API_KEY) as srv:  # strict: a wrong key must get 401
        yield srv


@pytest.fixture(scope="module")
def client(server: LocalServer) -> Iterator[GLMClient]:
    glm = GLMClient(
        server.api_key,
        server.base_url,
        timeout=10,
        endpoints=[
            Endpoint("zai", "zai", server.base_url, server.api_key, key_env="ZAI_API_KEY"),
            Endpoint("oa", "openai", server.base_url, server.api_key, "zhipu", {"glm-4.7": "glm-4.7"}, "OA_KEY"),
        ],
    )
    yield glm
    glm.close()


ASK = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.mark.parametrize("mode", ["sync", "stream"])
def test_three_sdks_give_the_same_completion(client: GLMClient, mode: Any) -> None:
    got = {p: client.attempt("glm-4.7", mode, ASK, {"thinking": {"type": "enabled"}}, p) for p in ("zhipu", "zai", "oa")}
    for provider, completion in got.items():
        assert "Paris" in completion.text, provider
        assert completion.reasoning and completion.reasoning not in completion.text, provider
        assert completion.reasoning_tokens and not completion.reasoning_estimated, provider
        assert completion.completion_tokens > completion.reasoning_tokens, provider
        assert completion.request_id and completion.finish_reason == "stop", provider
        if mode == "stream":
            assert completion.ttfr_ms is not None and completion.ttft_ms is not None and completion.ttfr_ms < completion.ttft_ms
    assert len({c.text for c in got.values()}) == 1
    assert client.simulated


def test_three_sdks_give_the_same_error_kinds(server: LocalServer) -> None:
    secret = "wrongkey.abcdefghijkl"
    glm = GLMClient(
        secret, server.base_url, timeout=10,
        endpoints=[Endpoint("zai", "zai", server.base_url, secret), Endpoint("oa", "openai", server.base_url, secret, key_env="OA_KEY")],
    )
    try:
        for provider in ("zhipu", "zai", "oa"):
            for mode in ("sync", "stream"):
                with pytest.raises(CallError) as err:
                    glm.attempt("glm-4.7", mode, ASK, {}, provider)
                assert (err.value.info.kind, err.value.info.status, err.value.should_retry) == ("auth", 401, False), provider
                assert secret not in str(err.value.info) and "abcdefghijkl" not in str(err.value.info)
    finally:
        glm.close()
    good = GLMClient(None, endpoints=[Endpoint("oa", "openai", server.base_url, server.api_key, key_env="OA_KEY"), Endpoint("zai", "zai", server.base_url, server.api_key)])
    try:
        for provider in ("zai", "oa"):
            with pytest.raises(CallError) as err:
                good.attempt("glm-nope", "sync", ASK, {}, provider)
            assert (err.value.info.kind, err.value.info.code) == ("bad_request", "1211")
        with pytest.raises(CallError) as err:
            good.attempt("glm-4.7", "async", ASK, {}, "oa")
        assert err.value.info.kind == "bad_request" and "no async mode" in err.value.info.message
    finally:
        good.close()


def test_a_key_a_header_cannot_carry_is_refused_without_quoting_it(server: LocalServer) -> None:
    secret = "abc.defghijk\u00e9lmnop"
    for sdk in ("zai", "openai"):
        with pytest.raises(GlmevalError) as err:
            GLMClient(None, endpoints=[Endpoint("p", sdk, server.base_url, secret, key_env="P_KEY")])  # type: ignore[arg-type]
        assert "non-ASCII" in str(err.value) and "P_KEY" in str(err.value) and "defghijk" not in str(err.value)
    assert "defghijk" not in repr(Endpoint("p", "zai", server.base_url, secret))


# -- through glmeval run --------------------------------------------------------------------------

ZHIPU_WIRE = """\
providers:
  viaopenai: {sdk: openai, base_url: "https://open.bigmodel.cn/api/paas/v4", api_key_env: OA_KEY, prices: {glm-4.7: [1000, 2000]}}
"""


def test_local_run_of_zhipu_wire_providers_is_green(tmp_path: Path) -> None:
    """zhipuai, zai-sdk and the openai SDK (Zhipu's OpenAI-compatible paths) in one --local run."""
    suite = _suite(tmp_path, providers=ZHIPU_WIRE, axis="  provider: [zhipu, zai, viaopenai]\n")
    db = tmp_path / "h.db"
    result = CliRunner().invoke(main, ["run", str(suite), "--local", "--local-speed", "0", "--db", str(db), "--no-report"])
    assert result.exit_code == 0, result.output
    frame = glmeval.results(db=db)
    assert list(frame.columns[frame.columns.get_loc("model") : frame.columns.get_loc("model") + 2]) == ["model", "provider"]
    assert sorted(frame["provider"].astype(str).unique()) == ["viaopenai", "zai", "zhipu"]
    assert (frame["status"] == "pass").all()
    on = frame[frame["thinking"] == "on"]
    assert len(on) == 3 and (on["reasoning"].str.len() > 0).all() and (on["reasoning_tokens"] > 0).all()
    assert (frame[frame["thinking"] == "off"]["reasoning"] == "").all()
    # Each provider's own prices; the others' answers are priced from the catalogue (glm-4.7: unknown).
    costs = {str(p): c for p, c in zip(frame["provider"], frame["cost"])}
    row = frame[(frame["provider"] == "viaopenai") & (frame["thinking"] == "on")].iloc[0]
    assert row["cost"] == pytest.approx((row["prompt_tokens"] * 1000 + row["completion_tokens"] * 2000) / 1e6)
    assert costs["zhipu"] != costs["zhipu"]  # NaN: unknown, never a made-up ¥0
    store = Store(db)
    try:
        stored = json.loads(store.conn.execute("SELECT job FROM results WHERE variant_id LIKE '%viaopenai%' LIMIT 1").fetchone()[0])
    finally:
        store.close()
    assert stored["provider"] == "viaopenai"


def test_each_provider_takes_its_key_from_its_own_variable(tmp_path: Path, server: LocalServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --local: a provider with a base URL on loopback gets the key in its api_key_env;
    a used provider whose variable is unset stops the run before any call, naming it."""
    providers = f"providers:\n  mine: {{sdk: zai, base_url: \"{server.base_url}\", api_key_env: MINE_KEY}}\n"
    suite = _suite(tmp_path, providers=providers, axis="  provider: [mine]\n")
    db = tmp_path / "h.db"
    monkeypatch.delenv("MINE_KEY", raising=False)
    monkeypatch.delenv("ZHIPUAI_API_KEY", raising=False)
    monkeypatch.delenv("ZHIPU_API_KEY", raising=False)
    result = CliRunner().invoke(main, ["run", str(suite), "--db", str(db), "--no-report"])
    assert result.exit_code == 2
    assert "no API key for provider mine (MINE_KEY)" in result.output and "Traceback" not in result.output
    monkeypatch.setenv("MINE_KEY", server.api_key + "\n")
    result = CliRunner().invoke(main, ["run", str(suite), "--db", str(db), "--no-report"])
    assert result.exit_code == 0, result.output
    frame = glmeval.results(db=db)
    assert set(frame["provider"].astype(str)) == {"mine"} and (frame["status"] == "pass").all()
    # The run was against the local server, reached by URL: marked simulated, key nowhere stored.
    assert bool(glmeval.runs(db=db)["local"].iloc[-1])
    dump = b"".join(p.read_bytes() for p in tmp_path.glob("h.db*"))
    assert server.api_key.encode() not in dump


def test_job_records_read_back_their_provider() -> None:
    job = Job("i", "s", "c", "v", {"provider": "zai"}, 0, "glm-4.7", "sync", [], {}, [], provider="zai")
    assert Job.from_dict(json.loads(json.dumps(job.to_dict()))).provider == "zai"
    old = {k: v for k, v in job.to_dict().items() if k != "provider"}
    assert Job.from_dict(old).provider == "zhipu"


def test_an_unreachable_provider_stops_the_run_naming_its_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    providers = 'providers:\n  gone: {sdk: openai, base_url: "http://127.0.0.1:9/v1", api_key_env: GONE_KEY, dialect: vllm}\n'
    suite = _suite(tmp_path, providers=providers, axis="  provider: [gone]\n")
    monkeypatch.setenv("GONE_KEY", "gone.secret-value-123")
    result = CliRunner().invoke(main, ["run", str(suite), "--db", str(tmp_path / "h.db"), "--no-report", "--retries", "0"])
    assert result.exit_code == 2, result.output
    assert "cannot reach http://127.0.0.1:9/v1" in result.output and "the base_url of provider gone" in result.output
    assert "secret-value" not in result.output and "Traceback" not in result.output
