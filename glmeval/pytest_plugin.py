"""pytest plugin (registered through the ``pytest11`` entry point): suites as CI tests."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("glmeval", "glmeval prompt suites")
    group.addoption("--glmeval-local", action="store_true", help="Run suites against the local GLM server.")
