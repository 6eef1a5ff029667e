"""Templates render within limits: loop iterations, output and value size, range(), time.

A suite is often copied from someone else; a template that loops forever or builds a
gigabyte must stop with one line naming its file and line (exit 2), not spin in validate.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from glmeval.suite import templating
from glmeval.suite.templating import (
    MAX_TEMPLATE_ITERATIONS,
    MAX_TEMPLATE_OUTPUT,
    MAX_TEMPLATE_RANGE,
    TemplateLimit,
    TemplateProblem,
    render,
)

NESTED = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"


def _limit(template: str, variables: dict[str, object] | None = None) -> str:
    started = time.monotonic()
    with pytest.raises(TemplateLimit) as info:
        render(template, variables or {})
    assert time.monotonic() - started < 15
    return str(info.value)


def test_nested_empty_loops_hit_the_iteration_limit() -> None:
    message = _limit(NESTED + "{{ 1 }}")
    assert f"more than {MAX_TEMPLATE_ITERATIONS:,} loop iterations" in message


def test_loops_over_variables_count_too() -> None:
    items = list(range(2000))
    message = _limit("{% for a in xs %}{% for b in xs %}{% endfor %}{% endfor %}x", {"xs": items})
    assert "loop iterations" in message
    # just under the limit renders
    assert render("{% for a in xs %}{% for b in ys %}{% endfor %}{% endfor %}ok", {"xs": items, "ys": list(range(400))}) == "ok"


@pytest.mark.parametrize(
    "template",
    [
        '{{ "a" * 10**10 }}',
        '{{ ["a"] * 10**10 }}',
        '{{ "a"|center(10**9) }}',
        '{{ "%999999999d" % 1 }}',
        '{{ "{:>999999999}".format(1) }}',
        '{% set ns = namespace(x="a") %}{% for i in range(40) %}{% set ns.x = ns.x ~ ns.x %}{% endfor %}{{ ns.x }}',
        '{% set ns = namespace(x="a") %}{% for i in range(40) %}{% set ns.x = ns.x + ns.x %}{% endfor %}{{ ns.x }}',
        '{% set x %}{% for i in range(2000) %}{{ "a" * 1000 }}{% endfor %}{% endset %}{{ x|length }}',
    ],
)
def test_values_longer_than_the_output_limit_are_refused(template: str) -> None:
    assert f"longer than {MAX_TEMPLATE_OUTPUT:,} characters" in _limit(template)


def test_output_limit() -> None:
    assert f"wrote more than {MAX_TEMPLATE_OUTPUT:,} characters" in _limit('{% for i in range(2000) %}{{ "a" * 1000 }}{% endfor %}')
    assert len(render('{% for i in range(900) %}{{ "a" * 1000 }}{% endfor %}', {})) == 900_000


def test_huge_range() -> None:
    message = _limit("{{ range(10**9)|list|length }}")
    assert f"at most {MAX_TEMPLATE_RANGE:,} numbers; got 1,000,000,000" in message
    assert render("{{ range(100000)|list|length }}", {}) == "100000"


def test_time_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(templating, "MAX_TEMPLATE_SECONDS", 0.3)
    template = "{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}{{ f(40) }}"
    started = time.monotonic()
    assert "took more than 0.3 s" in _limit(template)
    assert time.monotonic() - started < 5


def test_a_template_over_a_limit_is_refused_at_once_the_second_time() -> None:
    template = NESTED + "{{ 2 }}"
    _limit(template)
    started = time.monotonic()
    _limit(template)
    assert time.monotonic() - started < 0.05


def test_normal_templates_still_render() -> None:
    v = {"items": ["a", "b"], "city": "北京", "n": 3}
    assert render("{% for x in items %}{{ loop.index }}.{{ x }}/{{ loop.length }} {% endfor %}", v) == "1.a/2 2.b/2 "
    assert render("{{ '%5d|%s' % (n, city) }} {{ '{:>3}'.format(n) }} {{ city|center(6) }}", v) == "    3|北京   3   北京  "
    assert render("{% for x in items if x != 'a' %}{{ x }}{% else %}none{% endfor %}", v) == "b"
    assert render("{{ 'ab' * 3 }}{{ 2 ** 10 }}{{ items + ['c'] }}", v) == "ababab1024['a', 'b', 'c']"
    with pytest.raises(TemplateProblem):
        render("{{ nothing }}", v)


def test_validate_fails_fast_with_one_line(tmp_path: Path) -> None:
    suite = tmp_path / "bomb.glmeval.yaml"
    cases = "".join(f"  - id: c{i}\n" for i in range(200))
    suite.write_text(
        "name: bomb\nmodel: glm-4-flash\nmessages:\n  - role: user\n"
        f'    content: "{NESTED}hi"\n'
        f"cases:\n{cases}",
        encoding="utf-8",
    )
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "glmeval", "validate", str(suite)], capture_output=True, text=True, timeout=60)
    assert time.monotonic() - started < 30
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {suite}:5: message 1 (user): the template ran more than {MAX_TEMPLATE_ITERATIONS:,} "
                      "loop iterations (nested loops multiply); loop over less"], proc.stderr
    assert "Traceback" not in proc.stderr
