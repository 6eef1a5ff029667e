"""Comparisons and gates: regressed/fixed/changed cases, metric deltas, significance, --fail-on."""

from __future__ import annotations

import math
import re
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from test_store import make_job, make_result

from glmeval.analysis.compare import compare_runs, compare_variants, format_comparison, verdict
from glmeval.analysis.gate import Rule, evaluate, head_metrics, parse_rule, parse_rules
from glmeval.cli import main
from glmeval.errors import GlmevalError
from glmeval.store import Store

# -- synthetic runs ---------------------------------------------------------------------------


def _run(store: Store, outcomes: dict[tuple[str, str], list[bool | str]], suite: str = "s", texts: dict[str, str] | None = None,
         latency: float = 100.0, threshold: float | None = None) -> str:
    """One stored run; ``outcomes[(variant, case)]`` lists each repeat: True/False or an error kind."""
    variants = list(dict.fromkeys(v for v, _ in outcomes))
    rid = store.start_run(suite, variants=variants)
    for (variant, case), repeats in outcomes.items():
        for rep, outcome in enumerate(repeats):
            job = make_job(case, variant, rep, suite=suite, threshold=threshold)
            text = (texts or {}).get(case, "answer")
            if isinstance(outcome, str):
                store.add_result(rid, make_result(job, False, error=outcome, latency=latency))
            else:
                store.add_result(rid, make_result(job, outcome, text=text, latency=latency))
    store.finish_run(rid, "complete")
    return rid


def test_regressed_fixed_changed_and_metrics(store_db: Path | str) -> None:
    with Store(store_db) as store:
        base = _run(store, {("glm-4", "a"): [True], ("glm-4", "b"): [True], ("glm-4", "c"): [False], ("glm-4", "d"): [True]})
        head = _run(
            store,
            {("glm-4", "a"): [True], ("glm-4", "b"): [False], ("glm-4", "c"): [True], ("glm-4", "e"): [True]},
            texts={"a": "a new answer"},
            latency=150.0,
        )
        cmp = compare_runs(store, base, head)
    assert cmp.base.id == base and cmp.head.id == head
    (v,) = cmp.variants
    assert v.variant == "glm-4"
    assert v.regressed == ["b"] and v.fixed == ["c"] and v.changed == ["a"]
    assert cmp.regressions == [("glm-4", "b")]
    assert v.cases_only_in_base == ["d"] and v.cases_only_in_head == ["e"]
    assert (v.base_n, v.head_n, v.paired) == (4, 4, 3)
    assert v.base_pass_rate == 0.75 and v.head_pass_rate == 0.75
    assert v.metrics["latency_p50_ms"] == (100.0, 150.0, 50.0)
    assert v.metrics["total_tokens"] == (60.0, 60.0, 0.0)
    assert set(v.metrics) == {"pass_rate", "latency_p50_ms", "latency_p95_ms", "total_tokens", "cost"}
    assert v.p_value == 1.0
    assert v.verdict == "HEAD passes as many of 3 cases (1 regressed, 1 fixed); p = 1.00 (could be chance)"
    lo, hi = v.head_ci
    assert lo < 0.75 < hi
    text = format_comparison(cmp)
    assert "regressed (1): b" in text and "fixed (1): c" in text and "output changed (1): a" in text
    assert "only in BASE (1): d" in text


def test_repeats_aggregate_by_threshold(store_db: Path | str) -> None:
    with Store(store_db) as store:
        base = _run(store, {("glm-4", "a"): [True, True, True], ("glm-4", "b"): [True, True, True]})
        strict = _run(store, {("glm-4", "a"): [True, False, True], ("glm-4", "b"): [True, True, True]})
        lenient = _run(store, {("glm-4", "a"): [True, False, True], ("glm-4", "b"): [True, "timeout", False]}, threshold=0.6)
        strict_cmp = compare_runs(store, base, strict)
        lenient_cmp = compare_runs(store, base, lenient)
    # Default: every repeat must pass, so one failed sample fails the case.
    assert strict_cmp.variants[0].regressed == ["a"]
    # threshold 0.6: 2 of 3 passes the case; 1 of 3 (an error counts as not passing) does not.
    assert lenient_cmp.variants[0].regressed == ["b"]
    assert lenient_cmp.variants[0].head_errors == 1


def test_verdict_counts_and_significance(store_db: Path | str) -> None:
    cases = [f"c{i:02d}" for i in range(40)]
    with Store(store_db) as store:
        base = _run(store, {("glm-4", c): [True] for c in cases})
        head = _run(store, {("glm-4", c): [i >= 8] for i, c in enumerate(cases)})
        cmp = compare_runs(store, base, head)
    v = cmp.variants[0]
    assert v.regressed == cases[:8]
    assert v.p_value == pytest.approx(2 / 2**8)
    assert v.verdict == "HEAD passes 8 fewer cases of 40; p = 0.008 (significant)"
    assert verdict("HEAD", 0, 1, 40, 1.0) == "HEAD passes 1 more case of 40; p = 1.00 (could be chance)"
    assert verdict("HEAD", 0, 0, 40, 1.0, passing=38) == "HEAD passes the same 38 of 40 cases"


def test_compare_variants_in_one_run(store_db: Path | str) -> None:
    cases = [f"c{i:02d}" for i in range(40)]
    outcomes: dict[tuple[str, str], list[bool | str]] = {}
    for i, c in enumerate(cases):
        outcomes[("glm-4", c)] = [True]
        outcomes[("glm-3-turbo", c)] = [i >= 7]
    with Store(store_db) as store:
        rid = _run(store, outcomes)
        result = compare_variants(store, rid, "glm-3-turbo", "glm-4")
        swapped = compare_variants(store, rid, "glm-4", "glm-3-turbo")
        with pytest.raises(GlmevalError, match="no variant"):
            compare_variants(store, rid, "glm-4", "glm-9")
        with pytest.raises(GlmevalError, match="same variant"):
            compare_variants(store, rid, "glm-4", "glm-4")
    assert result.fixed == cases[:7] and result.regressed == []
    assert result.verdict == "glm-4 passes 7 more cases of 40 than glm-3-turbo; p = 0.02 (significant)"
    # The verdict names the better variant whichever way round it is asked.
    assert swapped.verdict == result.verdict
    assert (result.base_label, result.head_label) == ("glm-3-turbo", "glm-4")


def test_variants_only_on_one_side(store_db: Path | str) -> None:
    with Store(store_db) as store:
        base = _run(store, {("glm-4", "a"): [True], ("glm-3-turbo", "a"): [True]})
        head = _run(store, {("glm-4", "a"): [True], ("glm-4-flash", "a"): [True]})
        cmp = compare_runs(store, base, head)
    assert [v.variant for v in cmp.variants] == ["glm-4"]
    assert cmp.only_in_base == ["glm-3-turbo"] and cmp.only_in_head == ["glm-4-flash"]


# -- rules ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "metric", "op", "value", "relative"),
    [
        ("regression", "regressions", ">", 0.0, False),
        ("regressions>2", "regressions", ">", 2.0, False),
        ("pass-rate<0.9", "pass-rate", "<", 0.9, False),
        ("pass-rate < 90%", "pass-rate", "<", 0.9, False),
        ("pass-rate<-5%", "pass-rate", "<", -0.05, True),
        ("pass-rate<-0.05", "pass-rate", "<", -0.05, True),
        ("latency-p95>+20%", "latency-p95", ">", 0.2, True),
        ("latency-p50>=+150", "latency-p50", ">=", 150.0, True),
        ("latency-p95>2000", "latency-p95", ">", 2000.0, False),
        ("cost>+10%", "cost", ">", 0.1, True),
        ("tokens>+15%", "tokens", ">", 0.15, True),
        ("errors>0", "errors", ">", 0.0, False),
        ("errors", "errors", ">", 0.0, False),
        ("P95>+20%", "latency-p95", ">", 0.2, True),
    ],
)
def test_parse_good_rules(text: str, metric: str, op: str, value: float, relative: bool) -> None:
    rule = parse_rule(text)
    assert (rule.metric, rule.op, relative) == (metric, op, rule.relative)
    assert rule.value == pytest.approx(value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("latency>+20%", "unknown metric 'latency'"),
        ("pass-rate<1.5", "between 0 and 1"),
        ("cost>10%", "with a sign"),
        ("pass-rate", "needs a comparison"),
        ("regression>+1", "counts cases"),
        ("errors>5%", "counts failed calls"),
        ("latency-p95=>20", "not a rule"),
        ("", "not a rule"),
    ],
)
def test_parse_bad_rules(text: str, message: str) -> None:
    with pytest.raises(GlmevalError, match=re.escape(message)):
        parse_rule(text)


def test_parse_rules_splits_commas() -> None:
    assert [r.metric for r in parse_rules(["regression,cost>+10%", "errors>0"])] == ["regressions", "cost", "errors"]


def test_evaluate_rules_against_a_comparison(store_db: Path | str) -> None:
    with Store(store_db) as store:
        base = _run(store, {("glm-4", "a"): [True], ("glm-4", "b"): [True], ("glm-4", "c"): [True]}, latency=900.0)
        head = _run(store, {("glm-4", "a"): [True], ("glm-4", "b"): [False], ("glm-4", "c"): ["timeout"]}, latency=1250.0)
        cmp = compare_runs(store, base, head)
        metrics = head_metrics(store, head)
    rules = parse_rules(["regression", "pass-rate<0.9", "pass-rate<-5%", "latency-p95>+20%", "errors>0", "cost>+50%", "tokens>+90%"])
    trips = {t.rule.text: t.message for t in evaluate(rules, metrics, cmp)}
    assert trips["regression"] == "fail-on regression: glm-4 regressed 2 cases: b, c"
    assert trips["pass-rate<0.9"] == "fail-on pass-rate<0.9: glm-4 pass rate 33% (1 of 3 cases), limit 90%"
    assert trips["pass-rate<-5%"] == "fail-on pass-rate<-5%: glm-4 pass rate 33% vs 100% (-66.7 pts)"
    assert trips["latency-p95>+20%"] == "fail-on latency-p95>+20%: glm-4 p95 1,250 ms vs 900 ms (+38.9%)"
    assert trips["errors>0"] == "fail-on errors>0: glm-4 has 1 errored call"
    # The errored call cost nothing... but make_result charges every call: cost is flat.
    assert "cost>+50%" not in trips
    # tokens dropped (-0%): a ">" rule does not trip.
    assert "tokens>+90%" not in trips
    # Without a baseline only the absolute rules are checked.
    alone = {t.rule.text for t in evaluate(rules, metrics, None)}
    assert alone == {"pass-rate<0.9", "errors>0"}


def test_rule_with_zero_base() -> None:
    rule = parse_rule("cost>+10%")
    assert rule.trips(math.inf) and not rule.trips(math.nan)
    assert Rule("x", "cost", "<", 1.0, False, False).trips(0.5)


# -- end to end: two runs against the local server, one prompt broken --------------------------

SUITE_V1 = textwrap.dedent(
    """\
    name: regress-demo
    mode: sync
    grid:
      model: [glm-4, glm-3-turbo]
    params: {do_sample: false}  # greedy, so only a changed prompt changes an answer (sampled ones vary)
    messages:
      - {role: user, content: "{{ question }}"}
    cases:
      - id: hello
        vars: {question: 你好}
        checks:
          - contains-any: [你好, 您好]
      - id: capital
        vars: {question: 中国的首都是哪里？}
        checks:
          - contains: 北京
      - id: capital-en
        vars: {question: 中国的首都是哪里？}
        checks:
          - contains: 北京
    """
)
# The broken prompt: the capital question now asks about something else, so 北京 is missing.
SUITE_V2 = SUITE_V1.replace(
    "  - id: capital\n    vars: {question: 中国的首都是哪里？}",
    "  - id: capital\n    vars: {question: 你好}",
)


@pytest.fixture
def two_runs(tmp_path: Path) -> tuple[CliRunner, Path, Path]:
    assert SUITE_V2 != SUITE_V1
    runner = CliRunner()
    db = tmp_path / "h.db"
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE_V1, encoding="utf-8")
    args = ["run", str(suite), "--local", "--local-speed", "0", "--db", str(db), "--out", str(tmp_path / "reports"), "-q"]
    first = runner.invoke(main, args)
    assert first.exit_code == 0, first.output
    suite.write_text(SUITE_V2, encoding="utf-8")
    return runner, db, suite


def test_compare_names_exactly_the_regressed_cases(two_runs: tuple[CliRunner, Path, Path], tmp_path: Path) -> None:
    runner, db, suite = two_runs
    second = runner.invoke(main, ["run", str(suite), "--local", "--local-speed", "0", "--db", str(db), "--no-report", "-q"])
    assert second.exit_code == 1, second.output  # a check failed, no gate: the ordinary exit code
    with Store(db) as store:
        cmp = compare_runs(store, "latest~1", "latest")
    assert sorted(cmp.regressions) == [("glm-3-turbo", "capital"), ("glm-4", "capital")]
    for v in cmp.variants:
        assert v.regressed == ["capital"] and v.fixed == []
        assert v.changed == ["capital"]  # the question changed, so did the answer
        assert v.verdict == "HEAD passes 1 fewer case of 3; p = 1.00 (could be chance)"
    out = runner.invoke(main, ["compare", "latest~1", "latest", "--db", str(db)])
    assert out.exit_code == 0, out.output
    assert out.output.count("regressed (1): capital") == 2
    assert "capital-en" not in out.output.split("output changed")[0]
    gated = runner.invoke(main, ["compare", "latest~1", "latest", "--db", str(db), "--fail-on", "regression"])
    assert gated.exit_code == 1
    assert "fail-on regression: glm-4 regressed 1 case: capital" in gated.output


def test_run_with_baseline_exits_1_naming_the_rule(two_runs: tuple[CliRunner, Path, Path]) -> None:
    runner, db, suite = two_runs
    result = runner.invoke(
        main,
        ["run", str(suite), "--local", "--local-speed", "0", "--db", str(db), "--no-report", "-q",
         "--baseline", "latest", "--fail-on", "regression", "--fail-on", "latency-p95>+100000%"],
    )
    assert result.exit_code == 1, result.output
    assert "regressed (1): capital" in result.output  # the comparison is printed
    assert "fail-on regression: glm-4 regressed 1 case: capital" in result.output
    assert "fail-on regression: glm-3-turbo regressed 1 case: capital" in result.output
    assert "latency-p95>+100000%" not in result.output.split("fail-on regression")[-1]
    with Store(db) as store:
        head, base = store.list_runs(limit=2)
        assert head.baseline == base.id


def test_run_with_baseline_passes_when_nothing_regressed(tmp_path: Path) -> None:
    runner = CliRunner()
    db = tmp_path / "h.db"
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE_V2, encoding="utf-8")  # capital fails in both runs: not a regression
    base_args = ["run", str(suite), "--local", "--local-speed", "0", "--db", str(db), "--no-report", "-q"]
    first = runner.invoke(main, base_args + ["--baseline", "latest", "--fail-on", "regression"])
    assert first.exit_code == 0, first.output
    assert "no earlier run of regress-demo" in first.output
    second = runner.invoke(main, base_args + ["--baseline", "latest", "--fail-on", "regression"])
    assert second.exit_code == 0, second.output
    assert "0 regressed, 0 fixed across 2 variants" in second.output
    absolute = runner.invoke(main, base_args + ["--fail-on", "pass-rate<0.9"])
    assert absolute.exit_code == 1
    assert "fail-on pass-rate<0.9: glm-4 pass rate 67% (2 of 3 cases), limit 90%" in absolute.output


def test_run_rejects_bad_gates_before_calling_anything(tmp_path: Path) -> None:
    runner = CliRunner()
    db = tmp_path / "h.db"
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE_V1, encoding="utf-8")
    base_args = ["run", str(suite), "--local", "--local-speed", "0", "--db", str(db), "--no-report", "-q"]
    bad = runner.invoke(main, base_args + ["--fail-on", "latency>20"])
    assert bad.exit_code == 2 and "unknown metric 'latency'" in bad.output
    needs = runner.invoke(main, base_args + ["--fail-on", "regression"])
    assert needs.exit_code == 2 and "add --baseline latest" in needs.output
    missing = runner.invoke(main, base_args + ["--baseline", "no-such-run"])
    assert missing.exit_code == 2 and "no run 'no-such-run'" in missing.output
    with Store(db) as store:
        assert store.list_runs() == []


def test_run_with_a_missing_latest_n_baseline_stops_before_running(tmp_path: Path) -> None:
    """Only plain `latest` may be missing (the suite's first run); `latest~50` is a mistake,
    like a run id that does not exist, and must not let the gate pass silently."""
    runner = CliRunner()
    db = tmp_path / "h.db"
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE_V1, encoding="utf-8")
    base_args = ["run", str(suite), "--local", "--local-speed", "0", "--db", str(db), "--no-report", "-q"]
    assert runner.invoke(main, base_args).exit_code in (0, 1)
    for ref in ("latest~50", "latest~1", "latest~x"):
        result = runner.invoke(main, base_args + ["--baseline", ref, "--fail-on", "regression"])
        assert result.exit_code == 2, (ref, result.output)
        assert len(result.stderr.splitlines()) == 1, result.stderr
        assert "no rule tripped" not in result.output
    missing = runner.invoke(main, base_args + ["--baseline", "latest~50", "--fail-on", "regression"])
    assert missing.stderr.strip() == f"error: no run 'latest~50' in {db} for suite 'regress-demo' (only 1 run)"
    with Store(db) as store:
        assert len(store.list_runs()) == 1  # nothing ran
    ok = runner.invoke(main, base_args + ["--baseline", "latest~0", "--fail-on", "regression"])
    assert ok.exit_code in (0, 1) and "regressed" in ok.output


def test_gate_after_run_uses_the_previous_run_of_the_same_suite(store_db: Path | str) -> None:
    from glmeval.analysis.gate import gate_after_run

    lines: list[str] = []
    with Store(store_db) as store:
        base = _run(store, {("glm-4", "a"): [True], ("glm-4", "b"): [True]})
        _run(store, {("glm-4", "a"): [False]}, suite="other")  # newer, but another suite
        head = _run(store, {("glm-4", "a"): [True], ("glm-4", "b"): [False]})
        store.conn.execute("UPDATE runs SET status = 'interrupted' WHERE id = ?", (head,))
        trips = gate_after_run(store, head, "latest", parse_rules(["regression"]), lines.append)
        assert store.require_run(head).baseline == base
    text = "\n".join(lines)
    assert f"BASE {base}" in text and f"HEAD {head}" in text
    assert [t.message for t in trips] == [
        "fail-on regression: glm-4 regressed 1 case: b",
        f"fail-on: run {head} is interrupted; a gate needs a complete run",
    ]


# -- case_frame on whole columns ----------------------------------------------------------------


def _case_frame_by_groups(results: pd.DataFrame) -> list[dict[str, object]]:
    """The definition, one pandas group at a time (what case_frame computed before it went
    columnar): the reference the columnar version must reproduce."""
    out = []
    for (variant, case), g in results.groupby(["variant_id", "case_id"], sort=False):
        g = g.sort_values("repeat", kind="stable")
        passes = int((g["status"] == "pass").sum())
        threshold = g["threshold"].iloc[0]
        need = 1.0 if pd.isna(threshold) else float(threshold)
        scores = g["score"].where(g["status"] != "error", 0.0)
        outputs = tuple(
            ("<error>" if s == "error" else "") + (t if isinstance(t, str) else "") + (("\x00" + c) if isinstance(c, str) and c else "")
            for s, t, c in zip(g["status"], g["output"], g["tool_calls"])
        )
        out.append({"variant_id": variant, "case_id": case, "repeats": len(g), "passes": passes,
                    "errors": int((g["status"] == "error").sum()), "rate": passes / len(g), "threshold": need,
                    "passed": passes / len(g) >= need - 1e-9, "score": float(scores.mean()), "outputs": outputs})
    return out


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["v1", "v2"]), st.sampled_from(["a", "b", "c", "d"]), st.integers(0, 3),
                          st.sampled_from(["pass", "fail", "error"]), st.floats(0, 1), st.sampled_from([None, "x", "y"]),
                          st.sampled_from([None, "", '[{"name": "f"}]']), st.sampled_from([math.nan, 0.5])),
                min_size=1, max_size=40))
def test_case_frame_matches_its_group_by_group_definition(rows: list[tuple[object, ...]]) -> None:
    from glmeval.analysis.frames import case_frame

    results = pd.DataFrame(rows, columns=["variant_id", "case_id", "repeat", "status", "score", "output", "tool_calls", "threshold"])
    # One threshold per case, as jobs of one case share theirs.
    results["threshold"] = results.groupby(["variant_id", "case_id"])["threshold"].transform("first")
    got = case_frame(results).to_dict("records")
    want = _case_frame_by_groups(results)
    assert [(r["variant_id"], r["case_id"]) for r in got] == [(r["variant_id"], r["case_id"]) for r in want]
    for g, w in zip(got, want):
        assert {k: g[k] for k in ("repeats", "passes", "errors", "passed", "outputs")} == \
            {k: w[k] for k in ("repeats", "passes", "errors", "passed", "outputs")}
        assert g["rate"] == pytest.approx(w["rate"]) and g["score"] == pytest.approx(w["score"])
        assert g["threshold"] == pytest.approx(w["threshold"])


def test_big_runs_compare_on_digests_exactly_as_small_runs_compare_on_text(store_db: Path | str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past ``FULL_RESULTS`` a comparison reads numbers and answer digests, not the answers:
    the regressed, fixed and changed cases, the metrics and the gate's figures stay the same."""
    import glmeval.analysis.lean as lean

    outcomes_base = {("glm-4", c): [c in "abd", c != "e"] for c in "abcdef"}
    outcomes_head = {("glm-4", c): [c in "acf", c != "e"] for c in "abcdeg"}
    with Store(store_db) as store:
        base = _run(store, outcomes_base, texts={"b": "old", "c": "same"})
        head = _run(store, outcomes_head, texts={"b": "new", "c": "same"}, latency=130.0)
        small = compare_runs(store, base, head)
        small_head = head_metrics(store, head)
        monkeypatch.setattr(lean, "FULL_RESULTS", 5)
        (frame,) = lean.comparison_frame(store, [head])
        assert "output" in frame.columns and "messages" not in frame.columns  # the lean frame, not the text
        big = compare_runs(store, base, head)
        big_head = head_metrics(store, head)
    (s,), (b,) = small.variants, big.variants
    assert (b.regressed, b.fixed, b.changed) == (s.regressed, s.fixed, s.changed) == (["b", "d"], ["c"], ["b"])
    assert (b.cases_only_in_base, b.cases_only_in_head) == (s.cases_only_in_base, s.cases_only_in_head)
    assert b.metrics == s.metrics and b.p_value == s.p_value and b.score == s.score and b.verdict == s.verdict
    assert big_head == small_head


def test_variants_and_providers_of_a_big_run_compare_as_of_a_small_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``compare --variants`` and provider agreement read the lean frame past ``FULL_RESULTS``."""
    import glmeval.analysis.lean as lean
    from glmeval.analysis.compare import compare_providers
    from glmeval.report.demo import synth_run

    with Store(tmp_path / "r.db") as store:
        run = synth_run(store, cases=12, repeats=2, seed=4)
        small = compare_variants(store, run, "glm-4 temperature=0.2", "glm-3-turbo temperature=0.2")
        small_providers = compare_providers(store, run)
        monkeypatch.setattr(lean, "FULL_RESULTS", 10)
        big = compare_variants(store, run, "glm-4 temperature=0.2", "glm-3-turbo temperature=0.2")
        big_providers = compare_providers(store, run)
    assert (big.regressed, big.fixed, big.changed, big.verdict) == (small.regressed, small.fixed, small.changed, small.verdict)
    assert big.metrics == small.metrics and big.p_value == small.p_value and big.score == small.score
    assert small.changed  # two models answer differently: the digests must see it too
    assert big_providers == small_providers
