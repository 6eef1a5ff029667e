"""Synthesised runs for trying the reports, testing them and timing them.

A report is a view of stored data, so the honest way to exercise it is to put plain records
in a real :class:`~glmeval.store.Store` and render that: no runner, no server, no mocking.
The numbers are deterministic (seeded) and shaped like real runs: models differ in quality,
latency and length; temperature adds variance; a few calls fail with errors.
"""

from __future__ import annotations

import json
import random
from typing import Any

from glmeval.plan import variant_label
from glmeval.records import CheckResult, CheckSpec, Completion, ErrorInfo, Job, Result, ToolCall
from glmeval.store import Store

MODEL_PROFILE: dict[str, dict[str, float]] = {
    # quality (pass probability), base latency ms, tokens per answer, price yuan per 1M tokens
    "glm-4": {"quality": 0.9, "latency": 900.0, "tokens": 60.0, "price": 100.0},
    "glm-3-turbo": {"quality": 0.72, "latency": 420.0, "tokens": 45.0, "price": 5.0},
    "glm-4-flash": {"quality": 0.8, "latency": 260.0, "tokens": 50.0, "price": 0.0},
    "glm-4-plus": {"quality": 0.93, "latency": 700.0, "tokens": 70.0, "price": 5.0},
}

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
) -> str:
    """Store one synthesised run and return its id.

    ``outputs`` forces the answer text of chosen cases (``{case_id: text}``), which is how the
    tests plant markup and ``<script>`` in model output. ``quality_shift`` moves every pass
    probability, to make a later run better or worse than a baseline.
    """
    rng = random.Random(seed)
    grid = [(m, t) for m in models for t in temperatures]
    variants: list[dict[str, Any]] = [{"model": m, "temperature": t} for m, t in grid]
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
    if outputs:
        case_ids = list(outputs) + case_ids[len(outputs):]
    specs = [CheckSpec("contains", {"value": "北京"}), CheckSpec("max-chars", {"value": 200}),
             CheckSpec("max-latency-ms", {"value": 3000})]
    for ci, case_id in enumerate(case_ids):
        difficulty = rng.uniform(-0.25, 0.15)
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": "你是一个乐于助人的中文助手。"},
            {"role": "user", "content": f"问题 {ci}: 中国的首都是哪里？"},
        ]
        for (model, temperature), variant, label in zip(grid, variants, labels):
            prof = MODEL_PROFILE.get(model, MODEL_PROFILE["glm-4"])
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
                    params={"temperature": temperature, "max_tokens": 512},
                    checks=specs,
                    vars={"i": ci},
                )
                p_pass = prof["quality"] + difficulty + quality_shift - 0.12 * (temperature - 0.2)
                ok = rng.random() < p_pass
                latency = prof["latency"] * rng.lognormvariate(0, 0.35)
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
                completion = Completion(
                    text=text,
                    tool_calls=tool_calls,
                    finish_reason=None if error else ("tool_calls" if tool_calls else "stop"),
                    prompt_tokens=prompt_tokens,
                    completion_tokens=completion_tokens,
                    total_tokens=prompt_tokens + completion_tokens,
                    latency_ms=None if error else latency,
                    ttft_ms=None if error else latency * rng.uniform(0.15, 0.35),
                    model=model,
                    error=error,
                    attempts=3 if error else 1,
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
                cost = (prompt_tokens + completion_tokens) * prof["price"] / 1e6
                store.add_result(run_id, Result(job, completion, checks, passed, 1.0 if passed else 0.0, cost))
    store.finish_run(run_id, "complete")
    return run_id


__all__ = ["synth_run", "MODEL_PROFILE"]
