"""Model-graded checks: a judge model grades against a rubric, or embeddings measure closeness.

They never open a connection themselves: they ask ``ctx.grader`` (the runner's), so judge and
embedding calls share the client, cache, retries and rate limits of every other call. Each
call is appended to ``ctx.grader_usage`` (model, tokens, yuan) so grading spend is counted
apart from the answer's own cost, and the judge's tokens are also shown in the reason.

The judge prompt is a Jinja2 template rendered in a sandbox (a suite's ``prompt:`` replaces the
shipped ``judge_prompt.j2``). The verdict is parsed leniently because judges do not always
obey: the first JSON object with ``pass`` or ``score`` anywhere in the reply (fenced or not),
then PASS/FAIL or 通过/不通过 keywords; anything else fails with the reply quoted.
"""

from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2.sandbox import SandboxedEnvironment

from glmeval.catalogue import prices
from glmeval.checks.args import got, is_template, number_problem, unknown_args
from glmeval.checks.context import CheckContext
from glmeval.checks.registry import register
from glmeval.records import CheckResult, CheckSpec, Completion

NO_GRADER = "model-graded check needs a runner (no grader available)"
DEFAULT_TEMPLATE_PATH = Path(__file__).with_name("judge_prompt.j2")

_FENCE = re.compile(r"```[ \t]*(?:json)?[ \t]*\r?\n?(.*?)```", re.DOTALL | re.IGNORECASE)
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL)
_FAIL_WORDS = re.compile(r"不通过|未通过|不合格|不及格|(?<![A-Za-z])FAIL(?:ED|S)?(?![A-Za-z])|(?i:verdict\s*[:：]\s*fail)")
_PASS_WORDS = re.compile(r"通过|合格|及格|(?<![A-Za-z])PASS(?:ED|ES)?(?![A-Za-z])|(?i:verdict\s*[:：]\s*pass)")
_TRUE = {"true", "yes", "y", "pass", "passed", "通过", "是", "合格", "1"}
_FALSE = {"false", "no", "n", "fail", "failed", "不通过", "否", "不合格", "0"}


def _excerpt(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


@dataclass
class Verdict:
    """What the judge decided: ``passed``/``score`` may each be missing from its reply."""

    passed: bool | None
    score: float | None
    reason: str
    how: str


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    return None


def _as_score(value: Any) -> float | None:
    """A score in [0, 1]; judges that answer out of 10 or 100 are scaled down."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        score = float(str(value).strip().rstrip("%")) if not isinstance(value, (int, float)) else float(value)
    except ValueError:
        return None
    if math.isnan(score):
        return None
    if isinstance(value, str) and value.strip().endswith("%") or score > 10:
        score /= 100
    elif score > 1:
        score /= 10
    return max(0.0, min(1.0, score))


def _json_objects(text: str) -> list[dict[str, Any]]:
    """Every JSON object in the text: fenced blocks first, then bare ``{...}`` spans."""
    found: list[dict[str, Any]] = []
    for match in _FENCE.finditer(text):
        try:
            value = json.loads(match.group(1).strip())
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            found.append(value)
    decoder = json.JSONDecoder()
    for i, ch in enumerate(text):
        if ch != "{":
            continue
        try:
            value, _ = decoder.raw_decode(text, i)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            found.append(value)
    return found


def _lower_keys(obj: dict[str, Any]) -> dict[str, Any]:
    return {str(k).strip().lower(): v for k, v in obj.items()}


def parse_verdict(reply: str) -> Verdict | None:
    """Read a judge's reply; ``None`` when no verdict can be found in it."""
    text = _THINK.sub("", reply or "").strip()
    for obj in _json_objects(text):
        data = _lower_keys(obj)
        passed = None
        for key in ("pass", "passed", "verdict", "result", "通过"):
            if key in data:
                passed = _as_bool(data[key])
                if passed is not None:
                    break
        score = next((s for s in (_as_score(data.get(k)) for k in ("score", "评分", "分数")) if s is not None), None)
        if passed is None and score is None:
            continue
        reason = next((str(data[k]) for k in ("reason", "reasoning", "explanation", "理由", "原因") if data.get(k)), "")
        return Verdict(passed, score, reason, "json")
    fails = _FAIL_WORDS.findall(text)
    passes = _PASS_WORDS.findall(_FAIL_WORDS.sub(" ", text))
    if fails and not passes:
        return Verdict(False, None, " ".join(text.split())[:300], "keyword")
    if passes and not fails:
        return Verdict(True, None, " ".join(text.split())[:300], "keyword")
    return None


def _question(ctx: CheckContext) -> str:
    for message in reversed(ctx.job.messages):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _template_source(spec: CheckSpec, ctx: CheckContext) -> str:
    custom = spec.args.get("prompt")
    if not custom:
        return DEFAULT_TEMPLATE_PATH.read_text(encoding="utf-8")
    custom = str(custom)
    if custom.startswith("file://"):
        path = Path(custom.removeprefix("file://"))
        path = path if path.is_absolute() else Path(ctx.suite_dir) / path
        if not path.is_file():
            raise ValueError(f"llm-rubric: judge prompt file {custom!r} not found (looked for {path})")
        return path.read_text(encoding="utf-8")
    return custom


_ENV = SandboxedEnvironment(keep_trailing_newline=True, autoescape=False)


@functools.lru_cache(maxsize=64)
def _judge_template(source: str) -> Any:
    """Compile a judge prompt once, not once per graded answer."""
    return _ENV.from_string(source)


def judge_messages(rubric: str, completion: Completion, spec: CheckSpec, ctx: CheckContext) -> list[dict[str, Any]]:
    """Render the judge prompt. A template that renders to a JSON list of ``{role, content}``
    becomes that conversation; anything else is one user message."""
    template = _judge_template(_template_source(spec, ctx))
    tool_calls = [{"name": c.name, "arguments": c.arguments} for c in completion.tool_calls]
    text = template.render(
        rubric=rubric,
        output=completion.text,
        question=_question(ctx),
        messages=ctx.job.messages,
        vars=ctx.vars,
        tool_calls=tool_calls,
    )
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError:
            data = None
        if isinstance(data, list) and data and all(isinstance(m, dict) and "role" in m and "content" in m for m in data):
            return data
    return [{"role": "user", "content": text}]


def _record_chat_usage(ctx: CheckContext, check: str, model: str, reply: Completion) -> str:
    spent = prices.cost(model, reply.prompt_tokens, reply.completion_tokens, ctx.prices)
    ctx.grader_usage.append(
        {
            "check": check,
            "kind": "chat",
            "model": model,
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "cost": spent,
        }
    )
    cached = ", cached" if reply.cached else ""
    return f"judge {model} used {reply.prompt_tokens}+{reply.completion_tokens} tokens, {spent:.4g} yuan{cached}"


_RUBRIC_ARGS = ("value", "rubric", "prompt", "model", "temperature", "top_p", "max_tokens")


def _model_problem(spec: CheckSpec) -> list[str]:
    model = spec.args.get("model")
    if "model" in spec.args and (not isinstance(model, str) or not model.strip()):
        return [f"model must be a model name like glm-4; {got(model)}"]
    return []


def _validate_llm_rubric(spec: CheckSpec, suite_dir: Path, tools: list[Any] | None) -> list[str]:
    """A rubric in words, a judge prompt that exists and parses, judge parameters in range."""
    args = spec.args
    problems = unknown_args(spec, _RUBRIC_ARGS) + _model_problem(spec)
    if "value" in args and "rubric" in args:
        problems.append("give the rubric as value or as rubric, not both")
    rubric = args.get("value", args.get("rubric"))
    if rubric is None or (isinstance(rubric, str) and not rubric.strip()):
        problems.append("needs a rubric, e.g. `llm-rubric: 回答礼貌并给出北京`")
    elif not isinstance(rubric, (str, int, float)) or isinstance(rubric, bool):
        problems.append(f"the rubric must be text; {got(rubric)}")
    prompt = args.get("prompt")
    if "prompt" in args and (not isinstance(prompt, str) or not prompt.strip()):
        problems.append(f"prompt must be a judge prompt template (text, or file://judge.j2); {got(prompt)}")
    elif isinstance(prompt, str):
        source: str | None = prompt
        if prompt.startswith("file://"):
            path = Path(prompt.removeprefix("file://"))
            path = path if path.is_absolute() else Path(suite_dir) / path
            try:
                source = path.read_text(encoding="utf-8") if path.is_file() else None
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                problems.append(f"cannot read judge prompt file {prompt!r}: {exc}")
                source = ""
            if source is None:
                problems.append(f"judge prompt file {prompt!r} not found (looked for {path})")
        if source:
            from jinja2 import TemplateSyntaxError

            try:
                SandboxedEnvironment().parse(source)
            except TemplateSyntaxError as exc:
                problems.append(f"the judge prompt is not a valid template: {exc.message} (line {exc.lineno})")
    if "temperature" in args:
        problem = number_problem(args["temperature"], "temperature", example="temperature: 0.1")
        if problem is None and not is_template(args["temperature"]) and float(args["temperature"]) > 1:
            problem = f"temperature must be a number from 0 to 1; {got(args['temperature'])}"
        problems += [problem] if problem else []
    if "top_p" in args:
        problem = number_problem(args["top_p"], "top_p", example="top_p: 0.7")
        if problem is None and not is_template(args["top_p"]) and not 0 < float(args["top_p"]) <= 1:
            problem = f"top_p must be a number above 0, at most 1; {got(args['top_p'])}"
        problems += [problem] if problem else []
    if "max_tokens" in args:
        problem = number_problem(args["max_tokens"], "max_tokens", whole=True, minimum=1, example="max_tokens: 512")
        problems += [problem] if problem else []
    return problems


@register("llm-rubric", graded=True, validate=_validate_llm_rubric)
def llm_rubric(completion: Completion, spec: CheckSpec, ctx: CheckContext) -> CheckResult:
    """A judge model (glm-4 by default) grades the answer against a rubric you write."""
    rubric = spec.args.get("value", spec.args.get("rubric"))
    if not rubric:
        raise ValueError("llm-rubric needs a rubric, e.g. `llm-rubric: 回答礼貌并给出北京`")
    if ctx.grader is None:
        return CheckResult(spec.type, False, 0.0, NO_GRADER, error=True)
    model = str(spec.args.get("model") or ctx.judge_model)
    messages = judge_messages(str(rubric), completion, spec, ctx)
    params: dict[str, Any] = {"temperature": 0.01, "do_sample": False}
    for key in ("temperature", "top_p", "max_tokens"):
        if key in spec.args:
            params[key] = spec.args[key]
    if "temperature" in spec.args:
        params.pop("do_sample")
    reply = ctx.grader.chat(model, messages, **params)
    if reply.error is not None:
        return CheckResult(spec.type, False, 0.0, f"llm-rubric: the judge call to {model} failed: {reply.error}", error=True)
    usage = _record_chat_usage(ctx, spec.type, model, reply)
    verdict = parse_verdict(reply.text)
    if verdict is None:
        return CheckResult(
            spec.type,
            False,
            0.0,
            f"llm-rubric: could not read a verdict from the judge ({model}); it replied {_excerpt(reply.text)} [{usage}]",
            error=True,
        )
    threshold = spec.threshold if spec.threshold is not None else 0.5
    passed = verdict.passed if verdict.passed is not None else (verdict.score or 0.0) >= threshold
    score = verdict.score if verdict.score is not None else (1.0 if passed else 0.0)
    said = verdict.reason or "(the judge gave no reason)"
    how = "" if verdict.how == "json" else " (verdict read from keywords, not JSON)"
    reason = f"judge {'passed' if passed else 'failed'} it{how}: {said} [score {score:.2f}; {usage}]"
    return CheckResult(spec.type, passed, score, reason)


def cosine(a: list[float], b: list[float]) -> float:
    """Cosine similarity; 0 when either vector is all zeros."""
    dot = sum(x * y for x, y in zip(a, b))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


def _validate_similar(spec: CheckSpec, suite_dir: Path, tools: list[Any] | None) -> list[str]:
    """A reference text (or a non-empty list of them)."""
    args = spec.args
    problems = unknown_args(spec, ("value", "reference", "model")) + _model_problem(spec)
    if "value" in args and "reference" in args:
        problems.append("give the reference as value or as reference, not both")
    value = args.get("value", args.get("reference"))
    items = value if isinstance(value, list) else [value]
    if value is None or value == "" or value == []:
        return problems + ["needs a reference text, e.g. `similar: 北京是中国的首都`"]
    for item in items:
        if isinstance(item, (dict, list, bool)) or item is None or item == "":
            problems.append(f"a reference must be text; {got(item)}")
    return problems


@register("similar", graded=True, validate=_validate_similar)
def similar(completion: Completion, spec: CheckSpec, ctx: CheckContext) -> CheckResult:
    """The answer means the same as a reference text: embedding cosine similarity reaches 0.8."""
    value = spec.args.get("value", spec.args.get("reference"))
    if value is None:
        raise ValueError("similar needs a reference text, e.g. `similar: 北京是中国的首都`")
    references = [str(v) for v in value] if isinstance(value, list) else [str(value)]
    if ctx.grader is None:
        return CheckResult(spec.type, False, 0.0, NO_GRADER, error=True)
    threshold = spec.threshold if spec.threshold is not None else 0.8
    answer = completion.text.strip()
    if not answer:
        return CheckResult(spec.type, False, 0.0, f"similar: the {ctx.subject} is empty; nothing to compare")
    model = str(spec.args.get("model") or ctx.embedding_model or "embedding-3")
    try:
        vectors = ctx.grader.embed(model, [answer, *references])
    except Exception as exc:
        return CheckResult(spec.type, False, 0.0, f"similar: the embedding call to {model} failed: {exc}", error=True)
    ctx.grader_usage.append({"check": spec.type, "kind": "embedding", "model": model, "texts": len(references) + 1})
    if len(vectors) != len(references) + 1:
        raise ValueError(f"embedding call returned {len(vectors)} vectors for {len(references) + 1} texts")
    sims = [cosine(vectors[0], v) for v in vectors[1:]]
    best = max(range(len(sims)), key=sims.__getitem__)
    similarity = sims[best]
    ok = similarity >= threshold
    reason = (
        f"cosine similarity {similarity:.3f} {'>=' if ok else '<'} {threshold:g} to {_excerpt(references[best], 60)} ({model})"
    )
    if not ok:
        reason += f"; {ctx.subject} was {_excerpt(answer, 80)}"
    return CheckResult(spec.type, ok, max(0.0, min(1.0, similarity)), reason)
