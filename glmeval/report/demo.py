"""Synthesised runs for trying the reports, testing them and timing them.

A report is a view of stored data, so the honest way to exercise it is to put plain records
in a real :class:`~glmeval.store.Store` and render that: no runner, no server, no mocking.
The numbers are deterministic (seeded) and shaped like real runs: models differ in quality,
latency and length; temperature adds variance; a few calls fail with errors. With
``thinking=("on", "off")`` thinking is a grid axis too: thinking-on answers of the thinking
models come with reasoning text, reasoning tokens (part of the completion tokens, a few
marked estimated) and a time to first reasoning token before the first answer token.
"""

from __future__ import annotations

import json
import random
from typing import Any

from glmeval.plan import variant_label
from glmeval.records import CheckResult, CheckSpec, Completion, ErrorInfo, Job, Result, Thinking, ToolCall
from glmeval.store import Store

MODEL_PROFILE: dict[str, dict[str, float]] = {
    # quality (pass probability), base latency ms, tokens per answer, price yuan per 1M tokens
    "glm-4": {"quality": 0.9, "latency": 900.0, "tokens": 60.0, "price": 100.0},
    "glm-3-turbo": {"quality": 0.72, "latency": 420.0, "tokens": 45.0, "price": 5.0},
    "glm-4-flash": {"quality": 0.8, "latency": 260.0, "tokens": 50.0, "price": 0.0},
    "glm-4-plus": {"quality": 0.93, "latency": 700.0, "tokens": 70.0, "price": 5.0},
    # thinking models: "reasoning" is the mean reasoning tokens of a thinking-on answer
    "glm-4.7": {"quality": 0.86, "latency": 650.0, "tokens": 55.0, "price": 8.0, "reasoning": 320.0},
    "glm-5": {"quality": 0.9, "latency": 800.0, "tokens": 60.0, "price": 18.0, "reasoning": 480.0},
    "glm-4.5-flash": {"quality": 0.76, "latency": 300.0, "tokens": 50.0, "price": 0.0, "reasoning": 220.0},
}
THINKING_GAIN = 0.07  # pass probability a thinking-on answer gains
PROVIDER_PROFILE: dict[str, dict[str, float]] = {
    # latency and price factors against Zhipu's own API; "flip": chance a verdict differs from Zhipu's
    "zhipu": {"latency": 1.0, "price": 1.0, "flip": 0.0},
    "zai": {"latency": 0.85, "price": 1.0, "flip": 0.03},
    "selfhosted": {"latency": 0.55, "price": 0.25, "flip": 0.15},
    "openrouter": {"latency": 1.25, "price": 1.1, "flip": 0.05},
}
REASONING_MS_PER_TOKEN = 2.5

REASONING = [
    "用户问的是中国的首都。中国的首都是北京，这是常识。回答要简短、直接。",
    "先确认问题：问首都。北京是中华人民共和国的首都。不需要额外解释，直接回答即可。",
    "Let me think. The question asks for the capital of China, which is Beijing (北京). Answer in Chinese, briefly.",
]

ANSWERS = [
    "你好！很高兴见到你，有什么可以帮你的吗？",
    "中国的首都是北京。",
    "北京今天晴，气温 18 到 27 摄氏度。",
    "Sure: here is a short answer with a list:\n- one\n- two\n- three",
]


def synth_run(
    store: Store,
    *,
    suite: str = "demo",
    cases: int = 10,
    models: tuple[str, ...] = ("glm-4", "glm-3-turbo"),
    temperatures: tuple[float, ...] = (0.2, 0.9),
    repeats: int = 3,
    seed: int = 0,
    local: bool = True,
    replay: bool = False,
    quality_shift: float = 0.0,
    outputs: dict[str, str] | None = None,
    error_rate: float = 0.03,
    thinking: tuple[Thinking, ...] = (),
    reasoning_outputs: dict[str, str] | None = None,
    axes: dict[str, tuple[Any, ...]] | None = None,
    tool_turns: bool = False,
    providers: tuple[str, ...] = (),
) -> str:
    """Store one synthesised run and return its id.

    ``outputs`` forces the answer text of chosen cases (``{case_id: text}``), which is how the
    tests plant markup and ``<script>`` in model output; ``reasoning_outputs`` does the same
    for the reasoning of thinking-on answers. ``quality_shift`` moves every pass probability,
    to make a later run better or worse than a baseline. ``thinking`` (e.g. ``("on", "off")``)
    adds a thinking axis; models without a reasoning profile (glm-4...) never reason. Without
    it the run is exactly what earlier versions made (same random draws, same variants).
    ``axes`` adds further grid axes (``{"top_p": (None, 0.7)}``), sent as request parameters;
    a ``None`` value leaves the key out of the variant, as a suite's ``include`` entry does,
    which is how a report meets a variant without the axis. ``tool_turns`` gives the cases
    that call a tool an earlier assistant ``tool_calls`` turn and its tool result in the
    conversation, as a multi-turn agent suite stores them. ``providers`` (e.g. ``("zhipu", "zai",
    "selfhosted")``) adds a provider axis right after the model: each provider has its own speed
    and price (:data:`PROVIDER_PROFILE`), and its verdicts follow Zhipu's draw for the same case
    except for a provider-specific share of flips, so providers mostly agree, as real hosts of
    one model's weights do.
    """
    rng = random.Random(seed)
    states: tuple[Thinking | None, ...] = tuple(thinking) or (None,)
    vendors: tuple[str | None, ...] = tuple(providers) or (None,)
    grid = [(m, t, th, pv) for m in models for pv in vendors for t in temperatures for th in states]
    variants: list[dict[str, Any]] = [
        {"model": m, **({"provider": pv} if pv else {}), "temperature": t, **({"thinking": th} if th is not None else {})}
        for m, t, th, pv in grid
    ]
    extras: list[dict[str, Any]] = [{}]
    for key, values in (axes or {}).items():
        extras = [{**e, key: v} if v is not None else dict(e) for e in extras for v in values]
    if axes:
        grid = [g for g in grid for _ in extras]
        variants = [{**v, **e} for v in variants for e in extras]
    labels = [variant_label(v) for v in variants]
    run_id = store.start_run(
        suite,
        settings={"concurrency": 8, "retries": 2, "cache": "off", "timeout": 60},
        local=local,
        replay=replay,
        total_jobs=cases * len(variants) * repeats,
        variants=labels,
    )
    case_ids = [f"case-{i:04d}" for i in range(cases)]
    planted = list(dict.fromkeys([*(outputs or {}), *(reasoning_outputs or {})]))
    if planted:
        case_ids = planted + case_ids[len(planted):]
    specs = [CheckSpec("contains", {"value": "北京"}), CheckSpec("max-chars", {"value": 200}),
             CheckSpec("max-latency-ms", {"value": 3000})]
    for ci, case_id in enumerate(case_ids):
        difficulty = rng.uniform(-0.25, 0.15)
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": "你是一个乐于助人的中文助手。"},
            {"role": "user", "content": f"问题 {ci}: 中国的首都是哪里？"},
        ]
        if tool_turns and ci % 9 == 4:
            messages += _tool_turn(ci)
        for (model, temperature, state, vendor), variant, label in zip(grid, variants, labels):
            prof = MODEL_PROFILE.get(model, MODEL_PROFILE["glm-4"])
            host = PROVIDER_PROFILE.get(vendor or "zhipu", PROVIDER_PROFILE["zhipu"])
            reasons = state == "on" and prof.get("reasoning", 0.0) > 0
            params: dict[str, Any] = {"temperature": temperature, "max_tokens": 512}
            params.update({k: val for k, val in variant.items() if k not in ("model", "temperature", "thinking", "provider")})
            if state in ("on", "off"):
                params["thinking"] = {"type": "enabled" if state == "on" else "disabled"}
            for r in range(repeats):
                job = Job(
                    id=f"{ci:05d}-{labels.index(label):02d}-{r}",
                    suite=suite,
                    case_id=case_id,
                    variant_id=label,
                    variant=dict(variant),
                    repeat=r,
                    model=model,
                    mode="stream",
                    messages=messages,
                    params=dict(params),
                    checks=specs,
                    vars={"i": ci},
                    thinking=state if "reasoning" in prof else None,
                    provider=vendor or "zhipu",
                )
                p_pass = prof["quality"] + difficulty + quality_shift - 0.12 * (temperature - 0.2)
                if reasons:
                    p_pass += THINKING_GAIN
                if vendor is None:
                    ok = rng.random() < p_pass
                else:  # one draw per case shared by the providers, then each provider's flips
                    ok = random.Random(f"{seed}/{ci}/{model}/{temperature}/{state}/{r}").random() < p_pass
                    ok = ok != (rng.random() < host["flip"])
                latency = prof["latency"] * host["latency"] * rng.lognormvariate(0, 0.35)
                completion_tokens = max(1, int(rng.gauss(prof["tokens"] * (1 + temperature * 0.3), 12)))
                prompt_tokens = 24 + ci % 7
                if outputs and case_id in outputs:
                    text = outputs[case_id]
                else:
                    text = ANSWERS[1] if ok else rng.choice([ANSWERS[0], ANSWERS[2], ANSWERS[3]])
                error = None
                tool_calls: list[ToolCall] = []
                if rng.random() < error_rate:
                    error = ErrorInfo("rate_limit", "请求过于频繁 (1302)", 429, "1302")
                    text, completion_tokens, prompt_tokens = "", 0, 0
                elif ci % 9 == 4:
                    tool_calls = [ToolCall("get_weather", json.dumps({"city": "北京"}, ensure_ascii=False), id=f"call_{ci}_{r}")]
                thought: dict[str, Any] = {}
                if reasons and not error:
                    thought = _reasoning(rng, prof, case_id, ci, latency, reasoning_outputs)
                elif state == "off" and "reasoning" in prof and not error:
                    thought = {"reasoning_tokens": 0}  # what the API reports with thinking disabled
                ttft = None if error else latency * rng.uniform(0.15, 0.35)
                if thought.get("reasoning_tokens"):
                    completion_tokens += thought["reasoning_tokens"]
                    latency += thought["reasoning_tokens"] * REASONING_MS_PER_TOKEN
                    ttft = (ttft or 0.0) + thought["reasoning_tokens"] * REASONING_MS_PER_TOKEN
                completion = Completion(
                    text=text,
                    tool_calls=tool_calls,
                    finish_reason=None if error else ("tool_calls" if tool_calls else "stop"),
                    prompt_tokens=prompt_tokens,
                    completion_tokens=completion_tokens,
                    total_tokens=prompt_tokens + completion_tokens,
                    latency_ms=None if error else latency,
                    ttft_ms=ttft,
                    model=model,
                    error=error,
                    attempts=3 if error else 1,
                    **thought,
                )
                if error:
                    checks: list[CheckResult] = []
                    passed = False
                else:
                    contains = "北京" in text
                    checks = [
                        CheckResult("contains", contains, 1.0 if contains else 0.0,
                                    "found 北京" if contains else "北京 not found in the answer", label="contains 北京"),
                        CheckResult("max-chars", len(text) <= 200, 1.0, f"{len(text)} chars (max 200)", label="max-chars 200"),
                        CheckResult("max-latency-ms", latency <= 3000, 1.0, f"{latency:.0f} ms (max 3000)",
                                    label="max-latency-ms 3000"),
                    ]
                    passed = all(c.passed for c in checks)
                cost = (prompt_tokens + completion_tokens) * prof["price"] * host["price"] / 1e6
                store.add_result(run_id, Result(job, completion, checks, passed, 1.0 if passed else 0.0, cost))
    store.finish_run(run_id, "complete")
    return run_id


def _tool_turn(ci: int) -> list[dict[str, Any]]:
    """An assistant turn that called a tool, the tool's answer and the user's follow-up."""
    args = json.dumps({"city": "北京", "unit": "celsius", "days": 2}, ensure_ascii=False)
    return [
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": f"call_prev_{ci}", "type": "function", "function": {"name": "get_weather", "arguments": args}}]},
        {"role": "tool", "tool_call_id": f"call_prev_{ci}", "content": json.dumps({"weather": "晴", "high": 27}, ensure_ascii=False)},
        {"role": "user", "content": "那明天呢？"},
    ]


def _reasoning(
    rng: random.Random, prof: dict[str, float], case_id: str, ci: int, latency: float, planted: dict[str, str] | None
) -> dict[str, Any]:
    """The reasoning fields of one thinking-on answer: text, tokens (every fifth case's marked
    estimated, as when the API gives no count) and a first reasoning token well before the answer."""
    text = (planted or {}).get(case_id) or rng.choice(REASONING)
    tokens = max(8, int(rng.gauss(prof["reasoning"], prof["reasoning"] * 0.2)))
    return {
        "reasoning": text,
        "reasoning_tokens": tokens,
        "reasoning_estimated": ci % 5 == 3,
        "ttfr_ms": latency * rng.uniform(0.04, 0.1),
    }


__all__ = ["synth_run", "MODEL_PROFILE", "PROVIDER_PROFILE", "REASONING", "THINKING_GAIN"]
