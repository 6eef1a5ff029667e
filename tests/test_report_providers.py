"""Reports compare providers as they compare models: who is faster, cheaper, and gives the same verdicts.

Runs are put in a real Store with the Store API (planted outcomes where the numbers must be
exact, the demo's synthesised runs elsewhere, and one run whose answers come from the local
server's provider mounts through the real openai and zai SDKs), then read back through
``glmeval.results()`` and rendered to Markdown, HTML and JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import openai
import pandas as pd
import pytest
from zai import ZaiClient

import glmeval
from glmeval.analysis.compare import compare_providers, provider_agreement
from glmeval.analysis.frames import results_frame, summary_frame
from glmeval.analysis.stats import mcnemar_exact
from glmeval.catalogue.dialects import thinking_fields
from glmeval.plan import variant_label
from glmeval.records import CheckResult, Completion, Job, Result
from glmeval.report import views
from glmeval.report.demo import synth_run
from glmeval.report.html import render_html
from glmeval.report.jsonreport import report_dict
from glmeval.report.load import load_report_data
from glmeval.report.markdown import render_markdown
from glmeval.simulator import LocalServer
from glmeval.store import Store


def _job(case: str, variant: dict[str, Any], provider: str, repeat: int = 0) -> Job:
    label = variant_label(variant)
    return Job(id=f"{case}-{label}-{repeat}", suite="prov", case_id=case, variant_id=label, variant=dict(variant),
               repeat=repeat, model=variant["model"], mode="sync", messages=[{"role": "user", "content": case}],
               params={}, checks=[], provider=provider)


def planted(store: Store, outcomes: dict[str, list[bool]], latency: dict[str, float], price: dict[str, float],
            extra: dict[str, Any] | None = None) -> str:
    """One run: per provider, the pass/fail of cases 0..n-1 (provider an axis of glm-4.7)."""
    variants = [{"model": "glm-4.7", "provider": p, **(extra or {})} for p in outcomes]
    run_id = store.start_run("prov", local=True, variants=[variant_label(v) for v in variants])
    for variant in variants:
        provider = variant["provider"]
        for i, ok in enumerate(outcomes[provider]):
            completion = Completion(text="北京" if ok else "上海", prompt_tokens=10, completion_tokens=5, total_tokens=15,
                                    latency_ms=latency[provider] + i, ttft_ms=latency[provider] / 4, model="glm-4.7")
            check = CheckResult("contains", ok, 1.0 if ok else 0.0, "found" if ok else "missing")
            store.add_result(run_id, Result(_job(f"case-{i:02d}", variant, provider), completion, [check], ok,
                                            1.0 if ok else 0.0, price[provider]))
    store.finish_run(run_id, "complete")
    return run_id


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "prov.db")


def test_agreement_counts_and_mcnemar_are_exact(store: Store) -> None:
    a = [True] * 10
    b = [True] * 7 + [False] * 3
    run_id = planted(store, {"zhipu": a, "selfhosted": b}, {"zhipu": 900.0, "selfhosted": 300.0},
                     {"zhipu": 0.002, "selfhosted": 0.0005})
    (pair,) = compare_providers(store, run_id)
    assert (pair.a, pair.b, pair.model, pair.cases, pair.same, pair.a_only, pair.b_only) == (
        "zhipu", "selfhosted", "glm-4.7", 10, 7, 3, 0)
    assert pair.same_rate == 0.7 and pair.p_value == mcnemar_exact(3, 0) == 0.25 and pair.better == "zhipu"
    data = load_report_data(store, run_id)
    md = render_markdown(data)
    section = md[md.index("## Providers"):md.index("## Cases")]
    assert "| zhipu vs selfhosted | `glm-4.7` | —" in section and "| 70%" in section and "| 0.25 " in section
    assert "On glm-4.7, selfhosted is fastest (p50 304 ms) and cheapest; 70% of paired cases" in section
    rows = {r.provider: r for r in views.provider_rows(data)}
    assert rows["selfhosted"].latency_p50_ms == 304.5 and rows["zhipu"].ttft_p50_ms == 225.0
    assert rows["zhipu"].cost_per_call == pytest.approx(0.002) and rows["selfhosted"].pass_rate == 0.7
    assert "**304**" in section and "**¥0.0005**" in section and "**100%**" in section


def test_ties_and_a_significant_split(store: Store) -> None:
    run_id = planted(store, {"zhipu": [True] * 12, "zai": [True] * 12, "router": [False] * 12},
                     {"zhipu": 500.0, "zai": 500.0, "router": 500.0}, {"zhipu": 0.001, "zai": 0.001, "router": 0.001})
    pairs = {(p.a, p.b): p for p in compare_providers(store, run_id)}
    assert set(pairs) == {("zhipu", "zai"), ("zhipu", "router"), ("zai", "router")}
    assert pairs["zhipu", "zai"].same_rate == 1.0 and pairs["zhipu", "zai"].better is None
    assert pairs["zhipu", "zai"].p_value == 1.0
    assert pairs["zai", "router"].p_value == mcnemar_exact(12, 0) < 0.001
    text = views.headline(load_report_data(store, run_id))
    assert "2 pairs differ significantly" in text and "cheapest" not in text  # every provider costs the same


def test_only_variants_with_equal_other_parameters_pair(store: Store) -> None:
    run_id = synth_run(store, cases=6, models=("glm-4.7",), temperatures=(0.2, 0.9), repeats=1,
                       providers=("zhipu", "zai"), error_rate=0.0)
    pairs = compare_providers(store, run_id)
    assert sorted(p.setting for p in pairs) == ["temperature=0.2", "temperature=0.9"]
    assert all((p.a, p.b, p.cases) == ("zhipu", "zai", 6) for p in pairs)


def test_results_have_a_provider_column_after_model(store: Store) -> None:
    run_id = synth_run(store, cases=4, models=("glm-4.7",), temperatures=(0.2,), repeats=1,
                       providers=("zhipu", "zai", "selfhosted"), thinking=("on", "off"))
    frame = glmeval.results(db=store.path, run=run_id)
    columns = list(frame.columns)
    assert columns[columns.index("model") + 1] == "provider"
    assert isinstance(frame["provider"].dtype, pd.CategoricalDtype)
    assert sorted(frame["provider"].astype(str).unique()) == ["selfhosted", "zai", "zhipu"]
    assert frame.groupby("provider", observed=True).size().tolist() == [8, 8, 8]
    summary = summary_frame(results_frame(store, run_id))
    assert summary.set_index("variant").loc["glm-4.7 provider=zai temperature=0.2 thinking=on", "provider"] == "zai"


def test_a_run_from_before_providers_reads_as_zhipu_and_shows_no_provider_section(store: Store) -> None:
    run_id = synth_run(store, cases=3, repeats=1)
    frame = glmeval.results(db=store.path, run=run_id)
    assert set(frame["provider"].astype(str)) == {"zhipu"}
    data = load_report_data(store, run_id)
    assert "## Providers" not in render_markdown(data) and 'id="providers"' not in render_html(data)
    assert "providers" not in report_dict(data)
    assert "provider" not in views.grid_axes(data)


def test_provider_is_a_parameter_effect_axis(store: Store) -> None:
    run_id = synth_run(store, cases=8, models=("glm-4.7", "glm-5"), temperatures=(0.2,), repeats=1,
                       providers=("zhipu", "selfhosted"))
    data = load_report_data(store, run_id)
    effect = next(e for e in views.effects(data) if e.axis == "provider")
    assert effect.values == ["zhipu", "selfhosted"] and effect.models == ["glm-4.7", "glm-5"]
    fast, slow = (effect.value_at("latency_p50_ms", v, "glm-4.7") for v in ("selfhosted", "zhipu"))
    assert fast < slow  # the demo's self-hosted box is faster
    md = render_markdown(data)
    assert "### provider" in md[md.index("## Parameter effects"):]


def test_html_and_json_show_the_comparison_and_escape_provider_names(store: Store) -> None:
    evil = "<script>alert(1)</script>"
    run_id = planted(store, {"zhipu": [True, False, True], evil: [True, True, False]},
                     {"zhipu": 800.0, evil: 400.0}, {"zhipu": 0.001, evil: 0.002})
    data = load_report_data(store, run_id)
    html = render_html(data)
    assert 'id="providers"' in html and 'id="provider-agreement"' in html and '<a href="#providers">' in html
    assert evil not in html and "&lt;script&gt;" in html
    md = render_markdown(data)
    assert evil not in md
    out = report_dict(data)
    assert out["providers"]["rows"][0]["provider"] == "zhipu"
    (pair,) = out["providers"]["agreement"]
    assert (pair["cases"], pair["same"], pair["a_only"], pair["b_only"], pair["better"]) == (3, 1, 1, 1, None)
    json.dumps(out, allow_nan=False)


def test_provider_agreement_without_variant_values_reads_the_provider_column(store: Store) -> None:
    run_id = planted(store, {"zhipu": [True, True], "zai": [True, False]}, {"zhipu": 1.0, "zai": 1.0},
                     {"zhipu": 0.0, "zai": 0.0}, extra={"temperature": 0.5})
    (pair,) = provider_agreement(results_frame(store, run_id))
    assert (pair.a, pair.b, pair.setting, pair.a_only) == ("zhipu", "zai", "temperature=0.5", 1)


def test_answers_from_three_dialects_land_in_the_same_fields_and_compare(store: Store) -> None:
    """Answers served by the local server's mounts (vLLM and OpenRouter through openai, Z.ai through
    zai-sdk), stored as results: the reasoning arrives in a different wire field on each, and the
    report still pairs the three providers case by case."""
    cases = ["中国的首都是哪里？", "你好", "北京今天天气怎么样？", "1+1等于几？"]
    providers = {"selfhosted": "vllm", "router": "openrouter", "zai": "zhipu"}
    variants = [{"model": "glm-4.7", "provider": p, "thinking": "on"} for p in providers]
    run_id = store.start_run("e2e", local=True, variants=[variant_label(v) for v in variants])
    with LocalServer(speed=0.0, providers=providers) as server:
        for variant in variants:
            provider = variant["provider"]
            for i, text in enumerate(cases):
                messages = [{"role": "user", "content": text}]
                if provider == "zai":
                    api = ZaiClient(api_key=server.api_key, base_url=server.provider_url(provider, "zhipu"), max_retries=0)
                    reply = api.chat.completions.create(model="glm-4.7", messages=messages, thinking={"type": "enabled"})
                    message = reply.choices[0].message
                    reasoning, answer, usage = message.reasoning_content, message.content, reply.usage
                else:
                    dialect = providers[provider]
                    client = openai.OpenAI(api_key=server.api_key, base_url=server.provider_url(provider), max_retries=0)
                    model = "zai-org/GLM-4.7" if dialect == "vllm" else "z-ai/glm-4.7"
                    oreply = client.chat.completions.create(model=model, messages=messages,
                                                            extra_body=thinking_fields(dialect, True))
                    omsg = oreply.choices[0].message
                    reasoning, answer, usage = (omsg.model_extra or {})["reasoning"], omsg.content, oreply.usage
                assert reasoning and usage is not None
                completion = Completion(text=answer or "", reasoning=reasoning, prompt_tokens=usage.prompt_tokens,
                                        completion_tokens=usage.completion_tokens, total_tokens=usage.total_tokens,
                                        reasoning_tokens=usage.completion_tokens_details.reasoning_tokens,
                                        latency_ms=10.0, model="glm-4.7")
                ok = bool(answer) and "北京" in answer if i == 0 else bool(answer)
                store.add_result(run_id, Result(_job(f"c{i}", variant, provider), completion,
                                                [CheckResult("contains", ok, float(ok), "")], ok, float(ok), 0.0))
    store.finish_run(run_id, "complete")
    frame = glmeval.results(db=store.path, run=run_id)
    assert (frame["reasoning"].str.len() > 0).all() and (frame["reasoning_tokens"] > 0).all()
    by_provider = frame.groupby("provider", observed=True)["output"].apply(list)
    assert by_provider["selfhosted"] == by_provider["router"] == by_provider["zai"]  # one rules engine behind every mount
    pairs = compare_providers(store, run_id)
    assert len(pairs) == 3 and all(p.same_rate == 1.0 and p.cases == len(cases) for p in pairs)
    assert "## Providers" in render_markdown(load_report_data(store, run_id))
