"""Arbitrary YAML never produces a traceback: loading and planning raise only GlmevalError.

Hypothesis writes three kinds of documents: random nested data using the real key names
(plus junk), a valid suite with random parts replaced, and raw text or bytes. The suite folder
holds a few case files (good and bad) so random ``file:`` entries reach the case-file readers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from glmeval.errors import GlmevalError, SuiteError
from glmeval.plan import Plan, build_plan
from glmeval.suite import CASE_KEYS, GRID_AXES, Case, Message, Settings, Suite, load_suite

KEYS = sorted(
    {
        *Suite.model_fields,
        "min-score",
        *CASE_KEYS,
        *Message.model_fields,
        *Settings.model_fields,
        *GRID_AXES,
        *Case.model_fields,
        "include",
        "exclude",
        "file",
        "type",
        "value",
        "not",
        "weight",
        "contains",
        "not-contains",
        "regex",
        "tool-call",
        "function",
        "name",
        "arguments",
        "role",
        "content",
    }
)
TEXTS = st.sampled_from(
    [
        "glm-4", "user", "system", "assistant", "tool", "sync", "stream", "async", "c.csv", "c.jsonl", "c.yaml",
        "bad.csv", "missing.csv", "{{ x }}", "{{ ''.__class__ }}", "{% for %}", "{{", "contains", "auto",
        "json_object", "text", "function", "a,b", "", " ", "\x00", "../", "/",
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    TEXTS,
)
KEY = st.one_of(st.sampled_from(KEYS), st.text(max_size=8), st.integers(-3, 3), st.booleans())


def _nested(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.lists(children, max_size=4), st.dictionaries(KEY, children, max_size=5))


DATA = st.recursive(SCALARS, _nested, max_leaves=40)

BASE: dict[str, Any] = {
    "name": "fuzz",
    "grid": {"model": ["glm-4", "glm-4-flash"], "temperature": [0.2, 1]},
    "params": {"max_tokens": 100},
    "vars": {"x": "1"},
    "prompts": {"a": "简洁。"},
    "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "{{ x }}"}],
    "checks": [{"contains": "{{ x }}"}],
    "matrix": {"y": [1, 2]},
    "cases": [{"id": "one", "vars": {"x": "2"}}, {"file": "c.csv"}, {"id": "two", "checks": ["is-json"]}],
    "settings": {"concurrency": 2},
}


@st.composite
def mutated_suite(draw: st.DrawFn) -> dict[str, Any]:
    """A valid suite with a few parts replaced: reaches the deeper checks random data rarely does."""
    suite = yaml.safe_load(yaml.safe_dump(BASE, allow_unicode=True))
    for _ in range(draw(st.integers(1, 4))):
        key = draw(st.sampled_from(sorted({*BASE, *KEYS})))
        target: Any = suite
        if key in ("cases", "messages", "checks") and draw(st.booleans()):
            items = suite.get(key)
            if isinstance(items, list) and items:
                index = draw(st.integers(0, len(items) - 1))
                if isinstance(items[index], dict):
                    items[index][draw(KEY)] = draw(DATA)
                    continue
        target[key] = draw(DATA)
    return suite


DOCUMENTS = st.one_of(
    DATA.map(lambda d: ("yaml", d)),
    st.dictionaries(KEY, DATA, max_size=8).map(lambda d: ("yaml", d)),
    mutated_suite().map(lambda d: ("yaml", d)),
    st.text(max_size=300).map(lambda t: ("text", t)),
    st.binary(max_size=100).map(lambda b: ("bytes", b)),
)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fuzz")
    (root / "c.csv").write_text("id,x,checks\nr1,a,\"[{contains: a}]\"\nr2,b,\n", encoding="utf-8")
    (root / "c.jsonl").write_text('{"id": "j", "x": 1}\n', encoding="utf-8")
    (root / "c.yaml").write_text("- {id: y, x: 2}\n", encoding="utf-8")
    (root / "bad.csv").write_text("id,x\n1,2,3\n", encoding="utf-8")
    return root


def write_document(path: Path, kind: str, document: Any) -> None:
    if kind == "bytes":
        path.write_bytes(document)
    elif kind == "text":
        path.write_text(document, encoding="utf-8", errors="surrogatepass")
    else:
        path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(doc=DOCUMENTS)
def test_arbitrary_documents_raise_only_glmeval_errors(folder: Path, doc: tuple[str, Any]) -> None:
    path = folder / "suite.yaml"
    write_document(path, *doc)
    try:
        suite = load_suite(path)
    except SuiteError as exc:
        assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)
        assert all("Traceback" not in p for p in exc.problems)
        return
    except GlmevalError:
        return
    assert isinstance(suite, Suite)
    try:
        plan = build_plan(suite)
    except GlmevalError:
        return
    assert isinstance(plan, Plan)


def test_the_base_suite_is_valid(folder: Path) -> None:
    path = folder / "base.yaml"
    write_document(path, "yaml", BASE)
    plan = build_plan(load_suite(path))
    assert plan.jobs
