"""pytest plugin (registered through the ``pytest11`` entry point): suites as CI tests.

Teams already run pytest in CI, so a suite file should be a test file there: every case ×
variant is one test item (``greeting.glmeval.yaml::capital[glm-4-temperature=0.2]``) that
works with ``-k``, ``-m``, ``-x``, ``--junitxml`` and pytest-xdist's ``-n``.

How it fits together:

- **Collection** picks up only files matching the ``glmeval_pattern`` ini option (default
  ``*.glmeval.yaml`` / ``*.glmeval.yml``) or listed in ``glmeval_suites``, so the plugin never
  grabs someone's unrelated YAML. A broken suite is one collection error that names the file
  and line, never a traceback.
- **Execution is batched**: pytest runs items one at a time, but calls to a model should run
  concurrently. The first glmeval item to reach setup runs the jobs of every selected item
  this process will run (``-k``/``-m`` already applied) through one :class:`Runner`; later
  items just read their results. Under xdist a worker only knows its own queue, so it batches
  the items queued to it, and again when more arrive.
- **One run in the store** per pytest session: the xdist controller makes the run id and hands
  it to every worker, each worker writes its share into that run, and the controller sets the
  final status and writes the report once all workers are done.
- **Nothing happens without glmeval items**: no server is started and no database opened
  unless a glmeval item reaches setup or a test uses the ``glm`` fixture, because this plugin
  loads into every pytest session on the machine.

This module holds only what pytest looks up (hooks and the ``glm`` fixture); the parts are
:mod:`~glmeval.pytest_plugin.options`, :mod:`~glmeval.pytest_plugin.collect`,
:mod:`~glmeval.pytest_plugin.state` (the session and its run), :mod:`~glmeval.pytest_plugin.verdict`
(how an item came out) and :mod:`~glmeval.pytest_plugin.fixture` (the ``glm`` object).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from glmeval.pytest_plugin.collect import SuiteFile, SuiteItem, add_listed_suites, collect_file
from glmeval.pytest_plugin.fixture import Glm
from glmeval.pytest_plugin.options import add_options
from glmeval.pytest_plugin.state import STATE_KEY, get_state
from glmeval.pytest_plugin.verdict import CaseError, CaseFailed


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "glmeval: a case × variant of a glmeval prompt suite")
    get_state(config)
    add_listed_suites(config)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> SuiteFile | None:
    return collect_file(file_path, parent)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Remember the selected glmeval items (after ``-k``/``-m`` deselection) for batching."""
    get_state(config).selected = [i for i in items if isinstance(i, SuiteItem) and i.jobs]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Our verdicts are complete messages: report them as text, never as a traceback
    (for setup errors pytest would otherwise show the plugin's own stack)."""
    outcome: Any = yield
    if isinstance(item, SuiteItem) and call.excinfo is not None:
        if isinstance(call.excinfo.value, (CaseError, CaseFailed)):
            outcome.get_result().longrepr = str(call.excinfo.value)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist controller: hand the session's run id to every worker so all join one run."""
    node.workerinput["glmeval_run_id"] = get_state(node.config).run_id
    node.workerinput["glmeval_lease"] = get_state(node.config).holder.encode()  # one lease, shared


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist controller: collect what each worker ran, to finish the shared run at the end."""
    output = getattr(node, "workeroutput", {}) or {}
    share = output.get("glmeval")
    if share:
        state = get_state(node.config)
        state.worker_outputs.append(share)
        if share.get("error") and state.error is None:
            state.error = share["error"]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash.get(STATE_KEY, None)
    if state is None:
        return
    try:
        if state.is_worker:
            if state.started or state.error:
                session.config.workeroutput["glmeval"] = state.worker_output()  # type: ignore[attr-defined]
        else:
            state.finalize(exitstatus)
    finally:
        state.close()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(STATE_KEY, None)
    if state is None or state.is_worker or not (state.summary or state.error):
        return
    terminalreporter.write_sep("-", "glmeval")
    if state.error:
        terminalreporter.write_line(state.error)
    for line in state.summary:
        terminalreporter.write_line(line)


@pytest.fixture
def glm(request: pytest.FixtureRequest) -> Glm:
    """Call GLM from a Python test through glmeval's client, retries, cache and store.

    ``glm.chat("你好", model="glm-4")`` returns a Completion; ``glm.check(completion,
    {"contains": "北京"})`` applies registered checks and raises AssertionError with the
    reasons when one fails. Calls join the session's stored run.
    """
    return Glm(get_state(request.config), request.node)
