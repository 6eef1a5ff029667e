"""A plan at scale: jobs made as they are read, never all held; nothing heavy before the first call.

Issue 15's "start fast": ``build_plan`` validates every case up front (every problem in one
pass) but keeps no Job objects, so a large plan costs little memory, iterates to the same jobs
every time, and ``glmeval run`` sends its first request without having loaded pandas, the
reports or an SDK the suite does not use.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import pytest

from glmeval.errors import SuiteError
from glmeval.plan import build_plan
from glmeval.suite import load_suite

ROOT = Path(__file__).resolve().parent.parent

CASES = 5000
SUITE = (
    "name: scale\nmode: sync\n"
    "grid: {model: [glm-4-flash, glm-4-air]}\nrepeat: 2\n"
    'messages:\n  - {role: user, content: "What is {{ a }}+{{ b }}?"}\n'
    'checks:\n  - contains: "{{ sum }}"\n'
    "cases:\n  - file: cases.csv\n"
)


def write_scale_suite(root: Path, cases: int = CASES) -> Path:
    rows = ["id,a,b,sum", *(f"c{i},{i},{i + 7},{2 * i + 7}" for i in range(cases))]
    (root / "cases.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    path = root / "suite.yaml"
    path.write_text(SUITE, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_scale_suite(tmp_path_factory.mktemp("scale"))


def test_a_large_plan_makes_the_same_jobs_on_every_pass(big: Path) -> None:
    plan = build_plan(load_suite(big))
    assert len(plan) == len(plan.jobs) == CASES * 2 * 2
    first = [(j.id, j.cache_key) for j in plan]
    again = [(j.id, j.cache_key) for j in plan]
    assert first == again
    assert [i for i, _ in first] == list(plan.job_ids())
    assert len({i for i, _ in first}) == len(first)
    # Indexing reads the same job the pass made: case, variant, repeat order.
    for n in (0, 1, 2, 3, 4, len(first) // 2 + 1, len(first) - 1, -1):
        job = plan.jobs[n]
        assert (job.id, job.cache_key) == first[n]
    middle = plan.jobs[len(first) // 2 + 1]
    assert middle.case_id == f"c{CASES // 2}" and middle.messages[0]["content"] == f"What is {CASES // 2}+{CASES // 2 + 7}?"
    assert middle.checks[0].args == {"value": str(2 * (CASES // 2) + 7)}
    assert [j.id for j in plan.jobs[2:6]] == [i for i, _ in first[2:6]]
    with pytest.raises(IndexError):
        plan.jobs[len(first)]


def test_a_large_plan_holds_no_jobs(big: Path) -> None:
    """The plan's own memory is a few bytes a job: the cases and their counts, not 20,000
    rendered Jobs (each well over a kilobyte with its messages, checks and keys)."""
    suite = load_suite(big)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        plan = build_plan(suite)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(plan) == CASES * 4
    assert held < 100 * len(plan), f"the plan holds {held:,} bytes for {len(plan):,} jobs"
    assert gc.isenabled(), "loading and planning pause the collector and must turn it back on"


def test_missing_jobs_are_counted_without_making_them(big: Path) -> None:
    plan = build_plan(load_suite(big))
    ids = list(plan.job_ids())
    done = set(ids[::3])
    missing = plan.missing(done)
    assert len(missing) == len(ids) - len(done)
    assert [j.id for j in missing] == [i for i in ids if i not in done]
    assert not plan.missing(set(ids)) and list(plan.missing(set(ids))) == []


def test_every_problem_is_still_reported_in_one_pass(tmp_path: Path) -> None:
    """Validating everything up front is what lets the plan keep nothing: a problem in the
    last case of a large file is found before any job is made."""
    path = write_scale_suite(tmp_path, 2000)
    text = (tmp_path / "cases.csv").read_text(encoding="utf-8")
    (tmp_path / "cases.csv").write_text(text.replace("\nc5,5,12,17\n", "\nc5,5,12,17,x\n"), encoding="utf-8")
    path.write_text(SUITE.replace("{{ b }}?", "{{ b }}? {{ extra }}"), encoding="utf-8")
    with pytest.raises(SuiteError) as info:
        build_plan(load_suite(path))
    assert info.value.problems == [f"{tmp_path / 'cases.csv'}:7: this row has 5 fields but the header has 4 columns"]
    (tmp_path / "cases.csv").write_text(text, encoding="utf-8")
    with pytest.raises(SuiteError) as info:
        build_plan(load_suite(path))
    problems = info.value.problems
    assert len(problems) == 2000 and all("undefined variable 'extra'; defined here: a, b, sum" in p for p in problems)
    assert problems[0] == f"{path}:6: case 'c0': message 1 (user): undefined variable 'extra'; defined here: a, b, sum"
    assert problems[-1].startswith(f"{path}:6: case 'c1999': ")


FIRST_CALL = textwrap.dedent(
    """
    import json, sys
    import glmeval.simulator.stats as stats

    seen = {}
    arrive = stats.Stats._request

    def note(self, route):
        if route == "/chat/completions" and not seen:
            seen["modules"] = sorted(sys.modules)
        return arrive(self, route)

    stats.Stats._request = note
    from glmeval.cli import main

    try:
        main(["run", sys.argv[1], "--local", "--local-speed", "0", "--no-cache", "-q", "--db", sys.argv[2],
              "--out", sys.argv[3], *sys.argv[4:]], standalone_mode=False)
    finally:
        print(json.dumps(seen.get("modules")))
    """
)


@pytest.mark.parametrize("gate", [[], ["--baseline", "latest", "--fail-on", "regression", "--fail-on", "pass-rate<0.5"]])
def test_run_sends_its_first_request_before_loading_pandas_or_reports(tmp_path: Path, gate: list[str]) -> None:
    """What a user waits for before anything is sent: the suite machinery and the zhipuai SDK,
    not pandas (the gate and reports load after the run; its rules are checked first without
    it), not the openai or zai SDKs of providers a zhipu-only suite never calls, not jsonschema
    for a suite without a schema check."""
    suite = write_scale_suite(tmp_path, 200)
    done = subprocess.run(
        [sys.executable, "-c", FIRST_CALL, str(suite), str(tmp_path / "results.db"), str(tmp_path / "reports"), *gate],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    modules = json.loads(done.stdout.strip().splitlines()[-1])
    assert modules, "no chat request arrived"
    loaded = set(modules)
    assert "zhipuai" in loaded and "glmeval.run.runner" in loaded  # the hook saw a real run start
    early = sorted(m for m in loaded if m.split(".")[0] in ("pandas", "numpy", "openai", "zai", "jsonschema"))
    early += sorted(
        m for m in loaded
        if m.startswith(("glmeval.report", "glmeval.analysis", "glmeval.cassette.misses")) and m not in ("glmeval.analysis", "glmeval.analysis.rules")
    )
    assert early == []
    assert (tmp_path / "reports").exists()  # the reports were written after all, once the run was over


def test_validate_loads_no_pandas_or_sdk(big: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "glmeval", "validate", str(big)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"{big}: ok (20000 jobs, 2 variants)" in done.stdout
    loaded = {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "glmeval.plan" in loaded
    assert sorted(m for m in loaded if m.split(".")[0] in ("pandas", "numpy", "zhipuai", "openai", "zai", "httpx")) == []
