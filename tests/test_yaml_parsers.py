"""The suite reader parses with libyaml when it can, and a suite means the same either way."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from glmeval.errors import SuiteError
from glmeval.suite import yamlsrc

pytestmark = pytest.mark.skipif(yamlsrc._FastLoader is None, reason="PyYAML was built without libyaml")


def _outcome(load: object, text: str) -> tuple[str, str]:
    try:
        return "ok", repr(load(Path("s.yaml"), text).data)  # type: ignore[operator]
    except SuiteError as exc:
        return "error", str(exc)


def test_both_parsers_read_random_documents_alike() -> None:
    """Random documents over YAML's punctuation, tabs and odd line breaks included: the fast path
    gives the same data or the same error (file:line:column and wording) as the pure-Python parser."""
    rng = random.Random(20261201)
    alphabet = "ab:-[]{}\n '\"&*!|>#%@`,\t\x85\u2028+1好"
    differ = []
    for _ in range(6_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 16)))
        if "?" in text:
            continue
        slow, fast = _outcome(yamlsrc._load_checked, text), _outcome(yamlsrc.load_yaml, text)
        if slow != fast:
            differ.append((text, slow, fast))
    assert differ == []


def test_syntax_errors_keep_the_pure_python_wording() -> None:
    with pytest.raises(SuiteError) as info:
        yamlsrc.load_yaml(Path("s.yaml"), "name: a\ncases:\n  - id: x\n   vars: {q: 1}\n")
    assert str(info.value).startswith("s.yaml:4:")


def test_written_out_values_do_not_count_against_the_alias_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yamlsrc, "MAX_EXPANDED_NODES", 1_000)
    cases = "".join(f"  - {{id: c{i}, vars: {{q: '{i}'}}}}\n" for i in range(2_000))
    source = yamlsrc.load_yaml(Path("s.yaml"), "cases:\n" + cases)
    assert len(source.data["cases"]) == 2_000


def test_what_aliases_expand_still_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yamlsrc, "MAX_EXPANDED_NODES", 1_000)
    text = "base: &b [" + ", ".join(str(i) for i in range(100)) + "]\n" + "".join(f"k{i}: *b\n" for i in range(20))
    with pytest.raises(SuiteError, match=r"s\.yaml:\d+: YAML aliases expand to more than 1,000 values"):
        yamlsrc.load_yaml(Path("s.yaml"), text)
    small = "base: &b [1, 2]\n" + "".join(f"k{i}: *b\n" for i in range(20))
    assert yamlsrc.load_yaml(Path("s.yaml"), small).data["k19"] == [1, 2]
