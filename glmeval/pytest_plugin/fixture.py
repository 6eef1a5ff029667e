"""The object behind the ``glm`` pytest fixture: GLM calls and checks from Python tests.

Some prompts are easier to test in Python (a loop, a computed expectation, a follow-up turn
built from the first answer). Those calls must still go through the same client, retries,
cache and store as suite jobs, so they count in the run's tokens and cost and show up in its
report; hence every call is a one-job run of the session's :class:`Runner` into the
session's stored run, and ``check`` uses the same check registry as suites.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from glmeval.afterrun import as_status
from glmeval.pytest_plugin.verdict import excerpt
from glmeval.records import MODES, CheckResult, CheckSpec, Completion, Job, Mode, Result
from glmeval.sanitize import visible

if TYPE_CHECKING:
    from glmeval.pytest_plugin.state import GlmevalState

# Request parameters that become part of the variant label (scalar knobs people compare).
_VARIANT_PARAMS = ("temperature", "top_p", "max_tokens", "do_sample", "seed", "thinking", "reasoning_effort")


class GlmCallError(Exception):
    """``glm.check`` was given a completion that has no answer (rate limit, timeout...)."""


class Glm:
    """``glm.chat(...)`` -> Completion, ``glm.check(completion, spec, ...)`` -> CheckResults.

    One instance per test; its calls are stored as jobs of a pseudo-suite named after the
    test module, with the test's node id as the case id and the call number as the repeat.
    """

    def __init__(self, state: GlmevalState, node: pytest.Item) -> None:
        self._state = state
        self._node = node
        self._calls = 0
        self._results: dict[int, Result] = {}

    def __repr__(self) -> str:
        return f"<glm fixture of {self._node.nodeid}: {self._calls} call(s)>"

    # -- calling ----------------------------------------------------------------------------

    def chat(
        self,
        messages: str | list[dict[str, Any]],
        model: str = "glm-4",
        mode: Mode = "sync",
        **params: Any,
    ) -> Completion:
        """Send one chat request (a user message as text, or a full message list).

        ``params`` are the keyword arguments of ``chat.completions.create`` (temperature,
        top_p, max_tokens, tools...). The answer is returned even when the call failed:
        ``completion.ok`` / ``completion.error`` say so, and ``glm.check`` refuses it.
        """
        __tracebackhide__ = True  # failures point at the test's line, not into glmeval
        if mode not in MODES or mode == "batch":
            single = [m for m in MODES if m != "batch"]
            raise ValueError(f"mode must be one of {', '.join(single)} (batch is for suites); got {mode!r}")
        if isinstance(messages, str):
            wire = [{"role": "user", "content": messages}]
        else:
            wire = [dict(m) for m in messages]
        if not self._state.ensure_started():
            pytest.fail(self._state.error or "glmeval could not start", pytrace=False)
        job = self._job(wire, model, mode, params)
        result = self._run(job)
        self._results[id(result.completion)] = result
        return result.completion

    def _job(self, messages: list[dict[str, Any]], model: str, mode: Mode, params: dict[str, Any]) -> Job:
        from glmeval.plan import cache_key, job_id, job_thinking, variant_label
        from glmeval.suite.params import thinking_state, wire_params

        thinking = job_thinking(model, params)
        shown = dict(params)
        if "thinking" in params and thinking_state(params["thinking"]) is not None:
            shown["thinking"] = thinking_state(params["thinking"])  # readable in the label: thinking=on
        params = wire_params(params)

        variant: dict[str, Any] = {"model": model}
        if mode != "sync":
            variant["mode"] = mode
        for key in _VARIANT_PARAMS:
            if key in shown:
                variant[key] = shown[key]
        label = variant_label(variant)
        suite = self._node.path.stem if getattr(self._node, "path", None) else "pytest"
        case_id = self._node.nodeid
        repeat = self._calls
        self._calls += 1
        return Job(
            id=job_id(suite, case_id, label, repeat),
            suite=suite,
            case_id=case_id,
            variant_id=label,
            variant=variant,
            repeat=repeat,
            model=model,
            mode=mode,
            messages=messages,
            params=dict(params),
            checks=[],
            cache_key=cache_key(model, mode, messages, params, repeat),
            thinking=thinking,
        )

    def _run(self, job: Job) -> Result:
        from glmeval.run.runner import Runner, RunOptions

        state = self._state
        assert state.store is not None and state.target is not None
        got: list[Result] = []
        options = RunOptions(
            concurrency=1,
            cache="replay" if state.replay else "off",
            suite_dir=self._node.path.parent if getattr(self._node, "path", None) else state.config.rootpath,
        )
        runner = Runner(state.target.client, state.store, options, on_result=lambda r, _c: got.append(r))
        outcome = runner.run([job], state.run_id, total=1)
        state.jobs_run += 1
        state.statuses.append(as_status(outcome.status))
        if not got:
            from glmeval.records import ErrorInfo

            why = outcome.abort_reason or f"the run {outcome.status}"
            return Result(job, Completion(error=ErrorInfo("cancelled", why), attempts=0), [], False, 0.0)
        state.results[job.id] = got[0]
        return got[0]

    # -- checking ---------------------------------------------------------------------------

    def check(
        self,
        completion: Completion | str,
        *checks: dict[str, Any] | str | CheckSpec | list[Any],
        min_score: float | None = None,
    ) -> list[CheckResult]:
        """Apply checks written as in a suite (``{"contains": "北京"}``, ``{"type":
        "max-chars", "value": 200}``, ``"is-json"``) to an answer or a plain string.

        Raises AssertionError listing each failed check's reason and an excerpt of the
        answer; returns the CheckResults when all pass. A completion from ``glm.chat`` gets
        its verdict stored with it, so the run's report shows Python tests too.
        """
        __tracebackhide__ = True
        from glmeval.checks import CheckContext, evaluate_all, load_builtin
        from glmeval.suite import parse_check

        if isinstance(completion, str):
            completion = Completion(text=completion)
        items: list[Any] = []
        for check in checks:
            items.extend(check if isinstance(check, list) else [check])
        specs: list[CheckSpec] = []
        for i, item in enumerate(items):
            specs.append(item if isinstance(item, CheckSpec) else parse_check(item, f"glm.check argument {i + 1}", None))
        stored = self._results.get(id(completion))
        from glmeval.checks import validate_check

        tools = stored.job.params.get("tools") if stored is not None else None
        problems = [f"glm.check argument {i + 1}: check {spec.type}: {p}" for i, spec in enumerate(specs) for p in validate_check(spec, Path.cwd(), tools)]
        if problems:
            raise ValueError("; ".join(problems))
        if completion.error is not None:
            raise GlmCallError(f"no answer to check: {completion.error} (after {completion.attempts} attempts)")
        registry = load_builtin()
        graded = any(registry[s.type].graded for s in specs if s.type in registry)
        grader = None
        judge_model = "glm-4"
        if graded:
            if not self._state.ensure_started():
                pytest.fail(self._state.error or "glmeval could not start", pytrace=False)
            from glmeval.run.runner import Runner

            assert self._state.store is not None and self._state.target is not None
            grader = Runner(self._state.target.client, self._state.store).grader
        job = stored.job if stored is not None else Job(
            id="glm-check", suite="pytest", case_id=self._node.nodeid, variant_id="default", variant={},
            repeat=0, model=completion.model or "", mode="sync", messages=[], params={}, checks=specs,
        )
        ctx = CheckContext(
            job=job,
            suite_dir=self._node.path.parent if getattr(self._node, "path", None) else self._state.config.rootpath,
            grader=grader,
            judge_model=judge_model,
            cost=(stored.cost or 0.0) if stored is not None else 0.0,
        )
        results, passed, score = evaluate_all(completion, specs, ctx, min_score)
        if stored is not None and self._state.store is not None:
            stored.checks = [*stored.checks, *results]
            stored.passed = all(c.passed for c in stored.checks) if min_score is None else passed
            stored.score = score
            self._state.store.add_result(self._state.run_id, stored)
        if not passed:
            failed = [r for r in results if not r.passed]
            lines = [f"glm.check: {len(failed)} of {len(results)} check(s) failed"]
            lines += [visible(f"  FAILED {r.label or r.type}: {r.reason}") for r in failed]
            if min_score is not None:
                lines.append(f"  score {score:.2f} is below min_score {min_score}")
            lines += [f"  {line}" for line in excerpt(completion).splitlines()]
            raise AssertionError("\n".join(lines))
        return results


__all__ = ["Glm", "GlmCallError"]
