"""The ``--fail-on`` rules: their grammar, parsing, and the checks made before a run spends anything.

Kept apart from :mod:`glmeval.analysis.gate` (which evaluates them on a comparison) so that
``glmeval run --baseline ... --fail-on ...`` checks its rules before the first call without
loading pandas: beside a 100,000-case suite that would add its 40 MB to the run's peak.

Grammar (spaces are ignored, case-insensitive)::

    rule      := "regression" | "regressions" [op count]
               | "errors" [op count]
               | metric op threshold
    metric    := pass-rate | latency-p50 | latency-p95 | tokens | cost | errors | regressions
    op        := "<" | "<=" | ">" | ">="
    threshold := [+|-] number ["%"]

The sign decides what the number is measured against:

* **no sign: an absolute value of HEAD.** ``pass-rate<0.9`` (or ``pass-rate<90%``),
  ``latency-p95>2000`` (ms), ``cost>0.5`` (¥, the variant's total: answers plus grading), ``tokens>20000``,
  ``errors>0``. These need no baseline.
* **a sign: a change against the baseline.** ``latency-p95>+20%``, ``cost>+10%``,
  ``tokens>+15%`` compare the relative change; ``latency-p95>+200`` the change in ms. For the
  pass rate a percentage is in points: ``pass-rate<-5%`` and ``pass-rate<-0.05`` both mean
  "dropped by more than five points".
* ``regression`` trips on any case that passed in the baseline and fails now
  (``regressions>2`` allows two).

Every rule is checked per variant, and a tripped rule says which variant and by how much:
``fail-on latency-p95>+20%: glm-4 p95 1,250 ms vs 900 ms (+38.9%)``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

from glmeval.errors import GlmevalError
from glmeval.store import StoreReader

# rule metric name -> comparison metric key (None: computed from case lists / counts)
RULE_METRICS: dict[str, str | None] = {
    "pass-rate": "pass_rate",
    "latency-p50": "latency_p50_ms",
    "latency-p95": "latency_p95_ms",
    "tokens": "total_tokens",
    "cost": "cost",
    "errors": None,
    "regressions": None,
}
_ALIASES = {
    "regression": "regressions",
    "pass_rate": "pass-rate",
    "passrate": "pass-rate",
    "p50": "latency-p50",
    "p95": "latency-p95",
    "latency_p50": "latency-p50",
    "latency_p95": "latency-p95",
    "total-tokens": "tokens",
    "total_tokens": "tokens",
    "error": "errors",
}
_RULE = re.compile(r"^(?P<metric>[a-z0-9_-]+?)(?:(?P<op><=|>=|<|>)(?P<sign>[+-])?(?P<num>\d+(?:\.\d*)?|\.\d+)(?P<pct>%)?)?$")
EXAMPLES = "regression, pass-rate<0.9, pass-rate<-5%, latency-p95>+20%, cost>+10%, tokens>+15%, errors>0"


@dataclass(frozen=True)
class Rule:
    """One parsed ``--fail-on`` rule.

    ``value`` is normalised: pass rates as fractions (``-5%`` -> ``-0.05``), relative changes
    of other metrics as fractions (``+20%`` -> ``0.2``) when ``percent`` is set.
    """

    text: str
    metric: str
    op: str
    value: float
    relative: bool
    percent: bool

    @property
    def needs_baseline(self) -> bool:
        return self.relative or self.metric == "regressions"

    def trips(self, observed: float) -> bool:
        if observed is None or math.isnan(observed):
            return False
        return {
            "<": observed < self.value,
            "<=": observed <= self.value,
            ">": observed > self.value,
            ">=": observed >= self.value,
        }[self.op]


@dataclass
class Trip:
    """A rule that tripped, for one variant (``None``: the run as a whole)."""

    rule: Rule
    variant: str | None
    detail: str

    @property
    def message(self) -> str:
        if self.rule.metric == "run":
            return f"fail-on: {self.detail}"
        return f"fail-on {self.rule.text}: {self.detail}"


def parse_rule(text: str) -> Rule:
    """Parse one rule; a bad rule raises :class:`GlmevalError` (exit 2) saying what is expected."""
    raw = text.strip()
    compact = re.sub(r"\s+", "", raw).lower()
    m = _RULE.match(compact)
    if not m:
        raise GlmevalError(f"--fail-on {raw!r}: not a rule; expected METRIC OP VALUE such as {EXAMPLES}")
    metric = _ALIASES.get(m["metric"], m["metric"])
    if metric not in RULE_METRICS:
        raise GlmevalError(
            f"--fail-on {raw!r}: unknown metric {m['metric']!r}; use one of {', '.join(RULE_METRICS)} (e.g. {EXAMPLES})"
        )
    if m["op"] is None:
        if metric in ("regressions", "errors"):
            return Rule(raw, metric, ">", 0.0, relative=False, percent=False)
        raise GlmevalError(f"--fail-on {raw!r}: {metric} needs a comparison, e.g. {metric}{_example(metric)}")
    op, sign, pct = m["op"], m["sign"], bool(m["pct"])
    value = float(m["num"])
    if sign == "-":
        value = -value
    relative = sign is not None
    if metric == "regressions":
        if relative or pct:
            raise GlmevalError(f"--fail-on {raw!r}: regressions counts cases; write e.g. regressions>2")
        return Rule(raw, metric, op, value, relative=False, percent=False)
    if metric == "errors" and pct:
        raise GlmevalError(f"--fail-on {raw!r}: errors counts failed calls; write e.g. errors>0 or errors>+2")
    if metric == "pass-rate":
        if pct:
            value /= 100.0
        if not relative and not 0.0 <= value <= 1.0:
            raise GlmevalError(
                f"--fail-on {raw!r}: an absolute pass rate is between 0 and 1 (or 0% and 100%); "
                "for a drop against the baseline write e.g. pass-rate<-5%"
            )
        return Rule(raw, metric, op, value, relative=relative, percent=pct)
    if pct and not relative:
        raise GlmevalError(
            f"--fail-on {raw!r}: a percentage of {metric} is a change against the baseline; "
            f"write it with a sign, e.g. {metric}>+{m['num']}%"
        )
    if pct:
        value /= 100.0
    return Rule(raw, metric, op, value, relative=relative, percent=pct)


def _example(metric: str) -> str:
    return {"pass-rate": "<0.9", "latency-p50": ">+20%", "latency-p95": ">+20%", "tokens": ">+15%", "cost": ">+10%"}.get(metric, ">0")


def parse_rules(texts: Iterable[str]) -> list[Rule]:
    """Parse every rule (a comma-separated value holds several: ``regression,cost>+10%``)."""
    rules = []
    for text in texts:
        for part in text.split(","):
            if part.strip():
                rules.append(parse_rule(part))
    return rules


def check_refs(store: StoreReader, baseline: str | None, rules: list[Rule]) -> str | None:
    """Fail before spending anything: a baseline that does not resolve, or rules that need
    one without ``--baseline``. Returns the baseline to use: a resolved run id (so a prefix
    cannot turn ambiguous once this run is stored), or ``latest``/``latest~N`` unchanged,
    which is resolved after the run, per suite."""
    if rules and any(r.needs_baseline for r in rules) and not baseline:
        needing = ", ".join(r.text for r in rules if r.needs_baseline)
        raise GlmevalError(f"--fail-on {needing} compares with a baseline; add --baseline latest (or a run id, or a git ref)")
    if baseline and not is_latest(baseline):
        return store.resolve_run(baseline)
    return baseline


def is_latest(ref: str) -> bool:
    return ref == "latest" or ref.startswith("latest~")


__all__ = ["EXAMPLES", "RULE_METRICS", "Rule", "Trip", "parse_rule", "parse_rules", "check_refs", "is_latest"]
