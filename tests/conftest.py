"""Shared fixtures: one local GLM server per test session, driven through the real SDK."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SUITES = ROOT / "suites"

pytest_plugins = ["pytester", "pgcluster"]  # pgcluster: the PostgreSQL fixtures (pg_server, pg_url, store_db)


@pytest.fixture(scope="session")
def local_server() -> Iterator[object]:
    from glmeval.simulator import DEFAULT_API_KEY, LocalServer

    # Strict: the bad-key tests need a server that refuses other keys (the default accepts any).
    with LocalServer(speed=0.02, api_key=DEFAULT_API_KEY) as srv:
        yield srv


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "results.db"
